"""`main.py client export` and `main.py client forget` as separate processes on the example
practice (config/ copied to a scratch folder; record-only payments, the outbox folder)."""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

from slotguard.store.backend import TEST_URL_ENV
from slotguard.store.daemon_lock import exclusive
from slotguard.store.ledger import Ledger
from slotguard.store.schema import TABLES
from tests.support.cli import NOW, ROOT, main

BJORN, BJORN_NAME = "bjorn@example.com", "Bjørn Haugen"
CLARA, CLARA_NAME = "clara@example.com", "Clara Nowak"


@pytest.fixture()
def practice(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    main(tmp_path, "run", "--once", "--now", NOW)
    return tmp_path


def stored(folder) -> str:
    """Every byte under var/ (the ledger, its lock files, the outbox; messages decoded too) and, when the ledger is
    on PostgreSQL (SLOTGUARD_TEST_BACKEND=postgresql), every row of its schema; lower-cased."""
    parts = [path.read_bytes().decode("utf-8", errors="replace") for path in sorted((folder / "var").rglob("*")) if path.is_file()]
    for path in sorted((folder / "var").rglob("*.eml")):  # decoded too: quoted-printable hides "Bjørn" from the bytes
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        parts += [str(value) for _name, value in message.items()]
        parts += [part.get_content() for part in message.walk() if part.get_content_maintype() == "text"]
    if os.environ.get(TEST_URL_ENV):
        ledger = Ledger(folder / "var/ledger.sqlite3")  # the same stand-in schema the commands used
        try:
            assert ledger.place.postgres
            parts += [json.dumps(dict(row), default=str) for table in TABLES for row in ledger.db.execute(f"SELECT * FROM {table}")]
        finally:
            ledger.close()
    return "\n".join(parts).lower()


def traces(text, *words):
    return [word for word in words if word.lower() in text or json.dumps(word)[1:-1].lower() in text]


def ledger(folder):
    return json.loads(main(folder, "ledger", "--json").stdout)["actions"]


def digest(folder) -> str:
    for path in (folder / "var/outbox").glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        monthly_report = any(part.get_content_type() == "image/png" for part in message.walk())  # its charts
        if "lena@example.com" in str(message["To"]) and not monthly_report:
            return message.get_body(("plain",)).get_content()
    raise AssertionError("no digest in the outbox")


def test_export_writes_private_json_and_a_page_in_the_clients_language(practice):
    (practice / "exports").mkdir()
    out = main(practice, "client", "export", "Clara@Example.com", "--out", "exports/clara.json", "--now", NOW).stdout
    assert "written to" in out
    data = json.loads((practice / "exports/clara.json").read_text())
    assert data["client"] == {"address": CLARA, "spellings": [CLARA], "names": [CLARA_NAME], "locale": "nb"}
    fees = [a["id"] for a in ledger(practice) if a["client"] == CLARA and a["kind"] != "email"]
    assert [m["id"] for m in data["money"]] == fees and fees
    [warning] = data["emails"]
    assert warning["source"] == "outbox" and "Hei Clara" in warning["text"]
    page = (practice / "exports/clara.html").read_text()
    assert 'lang="nb"' in page and "Dine opplysninger hos Lena Berg Massage" in page and "450,00" in page
    for name in ("clara.json", "clara.html"):
        assert stat.S_IMODE((practice / "exports" / name).stat().st_mode) == 0o600
    again = main(practice, "client", "export", CLARA, "--out", "exports/clara.json", check=False)
    assert again.returncode == 1 and "exists" in again.stderr


def test_forget_names_the_open_fee_without_yes_then_erases_only_that_client(practice):
    before = ledger(practice)
    [fee] = [a for a in before if a["client"] == BJORN and a["kind"] == "charge"]
    preview = main(practice, "client", "forget", BJORN, check=False)
    assert preview.returncode == 1 and fee["id"] in preview.stdout and "--yes" in preview.stdout
    assert ledger(practice) == before, "nothing is changed without --yes"
    assert traces(stored(practice), BJORN, BJORN_NAME) == [BJORN, BJORN_NAME]

    done = main(practice, "client", "forget", "Bjorn@Example.com", "--yes", "--now", NOW)
    assert f"{fee['id']}" in done.stdout and "forgotten" in done.stdout
    assert "config/example.toml names bjorn@example.com" in done.stdout  # payments.policy_known_by
    assert traces(stored(practice), BJORN, BJORN_NAME) == []
    after = {a["id"]: a for a in ledger(practice)}
    assert after[fee["id"]]["state"] == "waived" and after[fee["id"]]["client"].startswith("client-")
    assert traces(stored(practice), CLARA, CLARA_NAME, "greta@example.com") == [CLARA, CLARA_NAME, "greta@example.com"]

    main(practice, "client", "forget", CLARA, "--yes", "--now", NOW)
    text = digest(practice)
    assert CLARA_NAME not in text and "client-" in text and "Ledige timer" in text, text  # the rest of the digest stays
    assert traces(stored(practice), CLARA, CLARA_NAME) == []

    # The calendar file still names them: the next runs read it and bring nothing of them back.
    main(practice, "run", "--once", "--now", NOW)
    main(practice, "run", "--once", "--now", "2026-11-28T12:00:00+01:00")
    assert traces(stored(practice), BJORN, BJORN_NAME, CLARA, CLARA_NAME) == []


def test_forget_refuses_while_the_daemon_holds_the_data_folder(practice):
    with exclusive(practice / "var", practice / "var/ledger.sqlite3"):
        refused = subprocess.run([sys.executable, str(ROOT / "main.py"), "client", "forget", BJORN, "--yes"], cwd=practice,
                                 capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert refused.returncode == 1 and str(os.getpid()) in refused.stderr, refused.stderr
    assert traces(stored(practice), BJORN)
