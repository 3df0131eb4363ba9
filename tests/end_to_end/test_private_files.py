"""Only the practitioner's user reads Slotguard's files, and `--out` never overwrites by
surprise (issue 11, items 18 and 19): the data folder 0700; the ledger with its -wal and -shm
files, the outbox, evidence, previews and digests 0600, also when they were created looser
before; an existing `--out` file only replaced with --force, never the ledger."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

from slotguard.store.ledger import Ledger, LedgerError
from tests.support.cli import NOW, ROOT, main


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture()
def practice(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path


@pytest.mark.sqlite_only  # the modes of the SQLite file and its -wal/-shm files
def test_a_run_keeps_its_folder_ledger_and_outbox_to_the_owner(practice):
    usual = os.umask(0o022)  # files 0644 and folders 0755 unless Slotguard says otherwise
    try:
        main(practice, "run", "--once", "--now", NOW)
    finally:
        os.umask(usual)
    var = practice / "var"
    assert mode(var) == 0o700
    assert mode(var / "ledger.sqlite3") == 0o600
    assert mode(var / "outbox") == 0o700
    messages = list((var / "outbox").glob("*.eml"))
    assert messages and {mode(path) for path in messages} == {0o600}


@pytest.mark.sqlite_only  # the modes of the SQLite file and its -wal/-shm files
def test_files_made_looser_before_are_tightened_when_opened(practice):
    var = practice / "var"
    var.mkdir(mode=0o755)
    os.chmod(var, 0o755)
    path = var / "ledger.sqlite3"
    Ledger(path).close()
    # A ledger open elsewhere has its -wal and -shm files; all three made world-readable.
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
    for suffix in ("", "-wal", "-shm"):
        os.chmod(f"{path}{suffix}", 0o644)
    try:
        ledger = Ledger(path)
        assert {suffix: mode(Path(f"{path}{suffix}")) for suffix in ("", "-wal", "-shm")} == {"": 0o600, "-wal": 0o600, "-shm": 0o600}
        ledger.close()
    finally:
        other.close()
    result = main(practice, "run", "--once", "--now", NOW)
    assert mode(var) == 0o700
    assert "permissions_tightened" in result.stderr and "from=755 to=700" in result.stderr


@pytest.mark.sqlite_only  # --out naming the SQLite ledger file
def test_out_refuses_an_existing_file_unless_forced_and_never_the_ledger(practice):
    main(practice, "run", "--once", "--now", NOW)
    fee = next(a for a in json.loads(main(practice, "ledger", "--json").stdout)["actions"] if a["kind"] == "charge")["id"]
    ledger = practice / "var/ledger.sqlite3"
    kept = ledger.read_bytes()
    for force in ([], ["--force"]):
        result = main(practice, "evidence", fee, "--out", "var/ledger.sqlite3", *force, check=False)
        assert result.returncode == 1 and "var/ledger.sqlite3 is Slotguard's ledger" in result.stderr
    assert ledger.read_bytes() == kept
    notes = practice / "notes.html"
    notes.write_text("my own notes")
    for command in (["evidence", fee], ["preview", "reminder"], ["digest", "--now", NOW]):
        refused = main(practice, *command, "--out", "notes.html", check=False)
        assert refused.returncode == 1 and "notes.html exists; add --force to replace it" in refused.stderr, command
        assert notes.read_text() == "my own notes"
    before = os.stat(notes).st_ino
    main(practice, "evidence", fee, "--out", "notes.html", "--force")
    assert "<html" in notes.read_text() and mode(notes) == 0o600
    assert os.stat(notes).st_ino != before, "a new file renamed into place, not the old one rewritten"
    for command, name in ((["evidence", fee], "evidence.html"), (["preview", "reminder"], "preview.html"), (["digest", "--now", NOW], "digest.html")):
        main(practice, *command, "--out", name)
        assert mode(practice / name) == 0o600 and "<html" in (practice / name).read_text()
    assert not [path.name for path in practice.iterdir() if path.name.endswith(".tmp")], "no temporary file is left"


@pytest.mark.sqlite_only  # a SQLite path that is a folder
def test_a_folder_given_as_the_ledger_is_refused_and_left_as_it_was(tmp_path):
    folder = tmp_path / "ledger.sqlite3"
    folder.mkdir()
    os.chmod(folder, 0o755)
    with pytest.raises(LedgerError, match="cannot be opened"):
        Ledger(folder)
    assert mode(folder) == 0o755
