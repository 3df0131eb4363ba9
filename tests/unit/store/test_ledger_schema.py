"""The ledger's schema is migrated on open: an older ledger keeps everything it holds."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from slotguard.intake.normalize import normalize
from slotguard.intake.tracker import Tracked
from slotguard.store.ledger import MIGRATIONS, SCHEMA_VERSION, Ledger, LedgerError
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=OSLO)


def stored(ledger: Ledger, event_id: str, start: datetime, title: str, client: str) -> None:
    appointment = normalize(event(event_id, start, title=title, client=client), "cal", settings(), MONDAY).appointment
    ledger.save_tracked(Tracked(appointment=appointment, cancellation="", outcome="", first_seen=MONDAY))


def version_one_ledger(path) -> None:
    """A ledger as Slotguard's first schema wrote it."""
    db = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[1].split(";"):
        if statement.strip():
            db.execute(statement)
    db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '1')")
    db.close()


@pytest.mark.sqlite_only  # an old SQLite file, and SQLite's query plans; PostgreSQL's migration: tests/integration/test_ledger_postgres.py
def test_a_version_one_ledger_is_migrated_and_keeps_its_appointments(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    version_one_ledger(path)
    old = Ledger.__new__(Ledger)  # write rows with today's code into the old schema
    old.db = sqlite3.connect(path, isolation_level=None)
    stored(old, "bo-1", MONDAY + timedelta(days=3), "Massage #earlier", "bo@example.com")
    stored(old, "cy-1", MONDAY + timedelta(days=4), "Massage", "cy@example.com")
    old.db.close()

    ledger = Ledger(path)

    assert ledger.meta("schema_version") == str(SCHEMA_VERSION)
    assert ledger.tracked("cal", "cy-1") is not None
    assert [email for email, _ in ledger.clients_wanting_earlier(MONDAY)] == ["bo@example.com"]
    plan = ledger.db.execute(
        "EXPLAIN QUERY PLAN SELECT client_email, snapshot FROM appointments WHERE cancellation = '' "
        "AND status != 'cancelled' AND start_utc > ? AND snapshot LIKE '%\"wants_earlier\"%' ORDER BY start_utc",
        ("2026-01-01",),
    ).fetchall()
    assert "appointments_wants_earlier" in plan[0]["detail"]
    plan = ledger.db.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM happenings WHERE calendar_id = ? AND event_id = ? ORDER BY seq", ("cal", "cy-1")
    ).fetchall()
    assert "happenings_event" in plan[0]["detail"], "one appointment's happenings without reading them all"
    ledger.close()
    assert Ledger(path).meta("schema_version") == str(SCHEMA_VERSION)  # opening again changes nothing


def version_two_ledger(path) -> None:
    """A ledger as schema 2 left it (before the table of status notes still to be written)."""
    db = sqlite3.connect(path, isolation_level=None)
    for version in (1, 2):
        for statement in MIGRATIONS[version].split(";"):
            if statement.strip():
                db.execute(statement)
    db.execute("INSERT INTO meta (key, value) VALUES ('schema_version', '2')")
    db.close()


@pytest.mark.sqlite_only  # an old SQLite file; PostgreSQL's migration: tests/integration/test_ledger_postgres.py
def test_a_version_two_ledger_is_migrated_and_can_keep_status_notes_to_write_later(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    version_two_ledger(path)
    old = Ledger.__new__(Ledger)
    old.db = sqlite3.connect(path, isolation_level=None)
    stored(old, "cy-1", MONDAY + timedelta(days=4), "Massage", "cy@example.com")
    old.db.close()

    ledger = Ledger(path)

    assert ledger.meta("schema_version") == str(SCHEMA_VERSION) and SCHEMA_VERSION >= 3
    assert ledger.tracked("cal", "cy-1") is not None
    with ledger.transaction():
        ledger.queue_write_back("cal", "cy-1", MONDAY, "HTTP 503")
        ledger.queue_write_back("cal", "cy-1", MONDAY + timedelta(minutes=4), "HTTP 503")
    assert ledger.write_backs_due(MONDAY + timedelta(minutes=3)) == []
    assert ledger.write_backs_due(MONDAY + timedelta(minutes=4)) == [("cal", "cy-1", 2)]
    ledger.close()
    ledger = Ledger(path)  # opening again changes nothing and keeps the queue
    assert [row["attempts"] for row in ledger.pending_write_backs()] == [2]


def test_wants_earlier_ignores_a_client_whose_booking_is_before_the_freed_slot(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    stored(ledger, "bo-1", MONDAY + timedelta(days=1), "Massage #earlier", "bo@example.com")
    stored(ledger, "dee-1", MONDAY + timedelta(days=5), "Massage #earlier", "dee@example.com")
    assert [email for email, _ in ledger.clients_wanting_earlier(MONDAY + timedelta(days=2))] == ["dee@example.com"]


def test_a_ledger_from_a_newer_slotguard_is_refused(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).set_meta("schema_version", str(SCHEMA_VERSION + 1))
    with pytest.raises(LedgerError, match="newer Slotguard"):
        Ledger(path)
