"""Running `main.py` as a separate process, as the end-to-end tests do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOW = "2026-11-26T12:00:00+01:00"  # Thursday noon of the bundled sample week


def main(cwd, *args, check=True, env=None):
    """Run `python main.py ARGS` in `cwd` (with `env` added to the environment); raise with
    its output when `check` and it fails."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def example_practice_over_smtp(folder: Path, port: int, security: str) -> Path:
    """A copy of config/ in `folder` whose example practice sends through an SMTP server on
    127.0.0.1:`port` (no ca_file); returns `folder`."""
    shutil.copytree(ROOT / "config", folder / "config")
    path = folder / "config/example.toml"
    text = path.read_text()
    assert 'transport = "outbox-dir"' in text
    text = text.replace('transport = "outbox-dir"', 'transport = "smtp"')
    text += f'\n[mail.smtp]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "{security}"\ntimeout = "5s"\n'
    path.write_text(text)
    return folder


def clara_knows_the_policy(folder):
    """Lena says Clara knows the policy (payments.policy_known_by), so her late cancellation's
    fee stands as Bjørn's does (the example week has no confirmation sent to her before it)."""
    path = folder / "config/example.toml"
    text = path.read_text()
    assert 'policy_known_by = ["bjorn@example.com"]' in text
    path.write_text(text.replace('policy_known_by = ["bjorn@example.com"]', 'policy_known_by = ["bjorn@example.com", "clara@example.com"]'))
