"""`client export` hands the client only their own data: a calendar entry naming them that
could not be read is listed, but without other people's addresses or any text quoted from
the calendar (a title may name someone else). On a real ledger (SQLite, or PostgreSQL under
SLOTGUARD_TEST_BACKEND=postgresql), the problem recorded by the engine itself."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from integration.memory import MemoryCalendar, MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import NullWriteBack
from slotguard.privacy.client_export import export_client
from slotguard.privacy.client_records import find_client
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)


def test_a_problem_naming_the_client_is_exported_without_other_people(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    practice = settings(storage={"data_dir": str(tmp_path / "var")})
    calendar = MemoryCalendar("primary")
    ledger = Ledger(practice.storage.location)
    engine = build_engine(practice, NOW, ledger=ledger, calendars=[(calendar, NullWriteBack())],
                          provider=RecordOnlyProvider(), mailer=MemoryMailer())
    shared = event("e1", NOW + timedelta(days=1), client="ana@example.com", name="Ana Silva", title="Massage Ana + Bob Hemmelig")
    shared["attendees"].append({"email": "bob.secret@example.org", "displayName": "Bob Hemmelig", "responseStatus": "accepted"})
    calendar.put(shared, NOW)
    calendar.put(event("e2", NOW + timedelta(days=2), client="ana@example.com", name="Ana Silva"), NOW)
    engine.tick(NOW)
    [problem] = [dict(row) for row in ledger.problems()]
    assert "bob.secret@example.org" in problem["message"] and "Hemmelig" in problem["message"]  # what the practitioner reads

    data = export_client(practice, ledger, find_client(ledger, "ana@example.com"), NOW)

    [exported] = data["problems"]
    assert exported["item"] == "e1" and "ana@example.com" in exported["message"]
    assert "(another address)" in exported["message"]
    text = json.dumps(data)
    assert "bob.secret" not in text and "Hemmelig" not in text
