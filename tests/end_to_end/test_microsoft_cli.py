"""`main.py auth microsoft`, `check-config` and `run --once` as separate processes on a config
with `calendar.source = "microsoft"`, against the Graph wire fake (tests/support/fake_graph.py)
running in this process."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.fake_graph import USER, FakeGraph, booking

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(180)


def main(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args, "--config", "slotguard.toml"], cwd=folder,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def write_config(folder: Path, fake: FakeGraph, extra: str = "") -> None:
    (folder / "slotguard.toml").write_text(f"""
[practice]
name = "Lena Berg Massage"
email = "{USER}"
timezone = "Europe/Oslo"
currency = "NOK"

[calendar]
source = "microsoft"

{fake.config(extra=extra)}
[services]
default = {{ price = "900 NOK", duration = "60m", label = "massage" }}

[mail]
outbox_dir = "var/outbox"
digest_hour = -1

[storage]
data_dir = "var"

[policies]
enabled = ["no_show"]
""")


@pytest.fixture
def fake(tmp_path):
    server = FakeGraph(tmp_path, interval=0).start()
    yield server
    server.stop()


def test_auth_then_run_once_reads_the_outlook_calendar(fake, tmp_path):
    write_config(tmp_path, fake)
    assert main(tmp_path, "check-config").returncode == 0
    signed = main(tmp_path, "auth", "microsoft")
    assert signed.returncode == 0, signed.stderr
    assert "enter the code" in signed.stdout and "Connected as lena@contoso.example" in signed.stdout
    cache = tmp_path / "var" / "microsoft-token-cache.json"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600

    fake.put_event(booking("ana", datetime.now(UTC) + timedelta(days=1), "ana@example.com", "Ana Silva"))
    ran = main(tmp_path, "run", "--once")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "events read: 1" in ran.stdout and "problems" not in ran.stdout
    assert fake.count("GET", "/calendarView/delta") == 1
    assert "access_token" not in ran.stdout + ran.stderr and "refresh_token" not in ran.stdout + ran.stderr


def test_run_before_auth_says_which_command_connects(fake, tmp_path):
    write_config(tmp_path, fake)
    ran = main(tmp_path, "run", "--once")
    assert "main.py auth microsoft" in ran.stdout + ran.stderr


def test_check_config_names_a_wrong_microsoft_setting(fake, tmp_path):
    write_config(tmp_path, fake, extra='tenant = "a b"')
    checked = main(tmp_path, "check-config")
    assert checked.returncode == 2 and "calendar.microsoft.tenant" in checked.stderr + checked.stdout
