"""A ledger that cannot be used (disk full, read-only, damaged) and files that are not
scenarios: one clear message and a non-zero exit, never a traceback, nothing half-done; and
`ledger | head` stops quietly (issue 11, item 22)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from slotguard.cli.main import main as main_in_process
from tests.support.cli import NOW, ROOT, main

LATER = "2026-11-27T09:00:00+01:00"  # fees due, notices to send: a tick with much to write


@pytest.fixture()
def practice(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path


def ledger_file(practice: Path) -> Path:
    return practice / "var/ledger.sqlite3"


def counts(practice: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{ledger_file(practice)}?mode=ro", uri=True) as db:
        tables = ("appointments", "happenings", "actions", "action_log", "sync_state", "problems")
        return {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in tables}


def no_traceback(result) -> None:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr


@pytest.mark.sqlite_only  # SQLITE_FULL through max_page_count; PostgreSQL's counterpart: a connection killed mid-tick (test_pg_ledger_trouble.py)
def test_a_full_disk_stops_the_tick_with_one_message_and_nothing_half_done(practice, tmp_path):
    main(practice, "ledger")  # creates the ledger: tables, no history
    with sqlite3.connect(ledger_file(practice)) as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    empty = counts(practice)
    # SQLite answers SQLITE_FULL exactly as on a full disk once the ledger may not grow.
    full = main(practice, "run", "--once", "--now", NOW, check=False, env={"SLOTGUARD_TEST_LEDGER_MAX_PAGES": str(pages)})
    assert full.returncode == 1
    no_traceback(full)
    [message] = [line for line in full.stderr.splitlines() if line.strip()]
    assert "the disk holding the ledger var/ledger.sqlite3 is full" in message and "free some space" in message
    assert counts(practice) == empty, "the calendar page being written was rolled back as a whole"
    # Space again: the next run does the whole tick, exactly as on a ledger that never filled up.
    main(practice, "run", "--once", "--now", NOW)
    clean = tmp_path / "clean"
    shutil.copytree(ROOT / "config", clean / "config")
    main(clean, "run", "--once", "--now", NOW)
    assert main(practice, "ledger", "--json").stdout == main(clean, "ledger", "--json").stdout
    assert sorted(path.name for path in (practice / "var/outbox").iterdir()) == sorted(path.name for path in (clean / "var/outbox").iterdir())


@contextmanager
def read_only(path: Path):
    """`path` cannot be written, for root too: the immutable attribute (chattr +i) as root, no
    write permission otherwise."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("running as root on a file system without the immutable attribute: no way to make a file read-only")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        path.chmod(0o400)
        try:
            yield
        finally:
            path.chmod(0o600)


@pytest.mark.sqlite_only  # the file's mode; PostgreSQL's permissions are the server's
def test_a_read_only_ledger_is_one_clear_message_and_stays_as_it_was(practice):
    main(practice, "run", "--once", "--now", NOW)
    before = ledger_file(practice).read_bytes()
    with read_only(ledger_file(practice)):
        result = main(practice, "run", "--once", "--now", LATER, check=False)
    assert result.returncode == 1
    no_traceback(result)
    assert "the ledger var/ledger.sqlite3 cannot be written" in result.stderr and "chmod 600" in result.stderr
    assert ledger_file(practice).read_bytes() == before
    assert main(practice, "run", "--once", "--now", LATER).returncode == 0  # writable again: it goes on


@pytest.mark.sqlite_only  # a damaged SQLite file
@pytest.mark.parametrize("damage", ["garbage", "pages"])
def test_a_damaged_ledger_is_one_clear_message_and_is_left_alone(practice, damage):
    main(practice, "run", "--once", "--now", NOW)
    path = ledger_file(practice)
    data = bytearray(path.read_bytes())
    if damage == "garbage":
        data = bytearray(b"\x8bslotguard? no: garbage " * 2000)
    else:  # the header is intact; every page after the first is overwritten
        data[4096:] = bytes((index * 7 + 13) % 256 for index in range(len(data) - 4096))
    path.write_bytes(bytes(data))
    for command in (["run", "--once", "--now", LATER], ["status", "--now", LATER], ["ledger"]):
        result = main(practice, *command, check=False)
        assert result.returncode == 1, (command, result.stdout)
        no_traceback(result)
        assert "is damaged" in result.stderr and "restore the ledger from a backup" in result.stderr, result.stderr
    assert path.read_bytes() == bytes(data)


def test_ledger_into_a_closed_pipe_stops_quietly(practice):
    main(practice, "run", "--once", "--now", NOW)
    command = [sys.executable, str(ROOT / "main.py"), "ledger"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    reader_gone = subprocess.Popen(command, cwd=practice, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader_gone.stdout.close()  # like `| head -1` after its line: every write now meets a closed pipe
    errors = reader_gone.stderr.read().decode()
    assert reader_gone.wait(timeout=60) == 141 and errors == ""
    head = subprocess.run(f"{sys.executable} {ROOT / 'main.py'} ledger | head -1", shell=True, cwd=practice, env=env,
                          capture_output=True, text=True, timeout=60)
    assert head.stderr == "" and len(head.stdout.splitlines()) == 1


# -- replay: files that are not scenarios ---------------------------------------------------------

WEEK = json.loads((ROOT / "tests/end_to_end/scenarios/week.json").read_text())


@pytest.mark.parametrize(
    "name, content, words",
    [
        ("zero-tick.json", json.dumps({**WEEK, "tick": "0s"}), "tick '0s' must be longer than zero"),
        ("list-config.json", json.dumps({**WEEK, "config": [WEEK["config"]]}), '"config" is an object'),
        ("list-calendar.json", json.dumps({**WEEK, "config": {**WEEK["config"], "calendar": ["ics"]}}), "config.calendar is an object"),
        ("a-list.json", json.dumps([WEEK]), "a scenario is a JSON object"),
        ("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("latin1.json", json.dumps({**WEEK, "title": "Bj\u00f8rg"}, ensure_ascii=False).encode("latin-1"), "not UTF-8"),
        ("steps.json", json.dumps({**WEEK, "steps": {"at": "x"}}), '"steps" is a list'),
        ("step.json", json.dumps({**WEEK, "steps": ["put"]}), "steps[0]: a step is an object"),
    ],
)
def test_replay_refuses_what_is_not_a_scenario_with_exit_2(tmp_path, capsys, name, content, words):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert main_in_process(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: " in err and words in err


def test_replay_of_a_folder_is_exit_2(tmp_path, capsys):
    assert main_in_process(["replay", str(tmp_path)]) == 2
    assert f"{tmp_path}: is a folder" in capsys.readouterr().err
