"""Log lines name no client (docs/privacy.md, "Log lines"): a tick where a client's email
fails for good, a payment fails, and an event naming two clients cannot be read, logs action
and event ids but no address and no title; what `run --once` prints to the practitioner
(the report's problems) still says whose it is. On a real ledger (SQLite, or PostgreSQL under
SLOTGUARD_TEST_BACKEND=postgresql)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from integration.memory import MemoryCalendar, MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import AdapterError, NullWriteBack
from slotguard.domain.model import ActionKind
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
SECRETS = ("ana@example.com", "bob.secret@example.org", "Hemmelig", "Knee surgery")


class RefusingMailer(MemoryMailer):
    def send(self, message, *args, **kwargs):
        raise AdapterError(f"550 {message['To']}: mailbox unavailable", retryable=False)


class RefusingProvider(RecordOnlyProvider):
    def execute(self, action):
        if action.kind is ActionKind.CHARGE:
            raise AdapterError(f"card declined for {action.client_email}", retryable=False)
        return super().execute(action)


def test_a_tick_with_failures_logs_ids_and_no_client(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    practice = settings(storage={"data_dir": str(tmp_path / "var")}, payments={"review_window": "0m"},
                        mail={"digest_hour": -1, "quiet_hours": ""})
    calendar = MemoryCalendar("primary")
    ledger = Ledger(practice.storage.location)
    ledger.record_sync("primary", None, NOW - timedelta(days=30))
    engine = build_engine(practice, NOW - timedelta(days=3), ledger=ledger, calendars=[(calendar, NullWriteBack())],
                          provider=RefusingProvider(), mailer=RefusingMailer())
    shared = event("e1", NOW + timedelta(days=1), client="ana@example.com", title="Knee surgery follow-up, Bob Hemmelig")
    shared["attendees"].append({"email": "bob.secret@example.org", "displayName": "Bob Hemmelig", "responseStatus": "accepted"})
    calendar.put(shared, NOW - timedelta(days=3))
    calendar.put(event("e2", NOW - timedelta(hours=3), client="ana@example.com", name="Ana Silva", title="Massage"), NOW - timedelta(days=3))
    calendar.put(event("e2", NOW - timedelta(hours=3), client="ana@example.com", name="Ana Silva", title="Massage #noshow"), NOW - timedelta(hours=1))

    with caplog.at_level(logging.DEBUG):
        reports = [engine.tick(NOW - timedelta(days=3)), engine.tick(NOW)]

    problems = [problem for report in reports for problem in report.problems]
    failed = [a for a in ledger.actions() if a.state.value == "failed"]
    assert {a.kind for a in failed} >= {ActionKind.EMAIL, ActionKind.CHARGE}, [(a.kind, a.state, a.last_error) for a in ledger.actions()]
    assert any("ana@example.com" in problem for problem in problems), "the practitioner is still told whose it is"
    assert any("Hemmelig" in problem for problem in problems)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert all(action.id in logged for action in failed), "the log names the actions by id"
    assert "e1" in logged
    assert [secret for secret in SECRETS if secret.lower() in logged.lower()] == []
