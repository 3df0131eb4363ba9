"""`main.py report` on the example week (what `make run` does): the page is written 0600 with
its four charts inline, an existing file is kept unless --force, the text goes to stdout
without --out, a month that is no month is refused; and the first tick of the month put
October's report in the outbox."""

from __future__ import annotations

import email
import email.policy
import os
import shutil
import stat
from pathlib import Path

import pytest

from slotguard.cli.main import main

ROOT = Path(__file__).resolve().parents[3]
NOW = "2026-11-26T12:00:00+01:00"


@pytest.fixture
def example(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--once", "--config", "config/example.toml", "--now", NOW]) == 0
    return tmp_path


@pytest.mark.timeout(300)
def test_the_example_week_report_page_and_last_months_email(example, capsys):
    reports = []
    for path in sorted((example / "var/outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if "Månedsrapport" in str(message["Subject"]):
            reports.append(message)
    assert len(reports) == 1 and "oktober 2026" in str(reports[0]["Subject"])

    capsys.readouterr()
    out = example / "var/report.html"
    args = ["report", "--config", "config/example.toml", "--month", "2026-11", "--now", NOW, "--out", str(out)]
    assert main(args) == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600, "it names clients"
    page = out.read_text()
    assert page.count("<svg") >= 4 and 'lang="nb"' in page and "november 2026" in page
    # The example week: Bjørn's no-show (900 kr, waiting for review) and Clara's late cancellation (let go: not told the policy).
    assert "900,00\u00a0kr" in page and "Klienten hadde ikke fått reglene ennå" in page

    before = out.read_text()
    assert main(args) == 1, "an existing file is kept without --force"
    assert out.read_text() == before
    assert main([*args, "--force"]) == 0

    capsys.readouterr()
    assert main(["report", "--config", "config/example.toml", "--month", "2026-11", "--now", NOW]) == 0
    text = capsys.readouterr().out
    assert "OPPMØTE" in text and "andel uteblivelser" in text


def test_a_month_that_is_not_a_month_is_refused(tmp_path, monkeypatch, capsys):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_status:
        main(["report", "--config", "config/example.toml", "--month", "November"])
    assert exit_status.value.code == 2
    assert "YYYY-MM" in capsys.readouterr().err
