"""A PostgreSQL ledger whose connection is killed in the middle of a tick (the server
restarted, an administrator ended it, the network dropped it): the tick ends with one
message, nothing of the interrupted page is stored, and the next tick does all of it, as on
a ledger that never lost its connection. The counterpart of SQLite's full disk
(tests/end_to_end/test_ledger_trouble.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest

from integration.memory import MemoryCalendar
from integration.outbox_dir import OutboxDirMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import Happening
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger, LedgerError
from slotguard.store.schema import TABLES
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)


class KilledMidPage(Ledger):
    """A ledger whose server connection is ended (pg_terminate_backend, from another
    session) just before it stores the `kill_at`-th happening, once."""

    kill_at = 2
    stored = 0
    admin_url = ""

    def add_happening(self, happening: Happening) -> bool:
        self.stored += 1
        if self.stored == self.kill_at:
            with psycopg.connect(self.admin_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (self.db.backend_pid,))
        return super().add_happening(happening)


def counts(ledger: Ledger) -> dict[str, int]:
    return {table: ledger.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in TABLES}


def run_week(ledger: Ledger, outbox, *, expect_failure: bool = False) -> tuple[list[str], dict[str, int]]:
    """Three new bookings, a tick (with `expect_failure`: one that fails, then another);
    returns the failure's message and the ledger's row counts right after it."""
    calendar = MemoryCalendar("primary")
    ledger.record_sync("primary", None, MONDAY - timedelta(days=7))
    for number in range(3):
        calendar.put(event(f"e{number}", MONDAY + timedelta(days=2 + number, hours=2), client=f"client{number}@example.com"), MONDAY)
    engine = build_engine(settings(), MONDAY, ledger=ledger, calendars=[(calendar, NullWriteBack())],
                          provider=RecordOnlyProvider(), mailer=OutboxDirMailer(outbox))
    failures = []
    if expect_failure:
        with pytest.raises(LedgerError) as failed:
            engine.tick(MONDAY)
        failures.append(str(failed.value))
        assert not (outbox.exists() and list(outbox.glob("*.eml"))), "nothing was sent from a tick that stored nothing"
    after_failure = counts(ledger)
    engine.recover(MONDAY)  # what the daemon does after a failed tick
    report = engine.tick(MONDAY)
    assert not report.problems, report.problems
    return failures, after_failure


def test_a_connection_killed_mid_tick_ends_it_with_one_message_and_the_next_tick_does_it_all(pg_url, pg_schema, tmp_path):
    ledger = KilledMidPage(pg_url, pg_schema)
    ledger.admin_url = pg_url
    before = counts(ledger)
    [message], after_failure = run_week(ledger, tmp_path / "outbox", expect_failure=True)
    # Only what was committed before the page: the first-look time (meta) and the sync state.
    assert {**after_failure, "meta": 0} == {**before, "meta": 0, "sync_state": 1}, "nothing of the interrupted page was stored"
    assert "\n" not in message and "connection to the PostgreSQL server" in message and "was lost" in message
    assert "nothing of the interrupted step was stored" in message and f"schema {pg_schema}" in message
    after_failure_then_success = counts(ledger)
    clean = Ledger.scratch()
    run_week(clean, tmp_path / "clean-outbox")  # SQLite, in memory
    assert after_failure_then_success == counts(clean), "the same rows as a tick that never lost its connection"
    assert before["appointments"] == 0 and after_failure_then_success["appointments"] == 3
    sent = sorted(path.name for path in (tmp_path / "outbox").glob("*.eml"))
    assert sent == sorted(path.name for path in (tmp_path / "clean-outbox").glob("*.eml")) and sent, "each email once"
    ledger.close()
