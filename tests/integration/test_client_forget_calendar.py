"""A forgotten client stays forgotten when the calendar still names them: the practitioner
editing one of their events, or a new instance of their recurring series entering the window,
brings no booking, no email and no fee, and the address is not written back into the ledger.
On a real ledger (SQLite, or PostgreSQL under SLOTGUARD_TEST_BACKEND=postgresql)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from integration.memory import MemoryCalendar, MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.cli.clients import forget_now
from slotguard.domain.interfaces import NullWriteBack
from slotguard.privacy.client_forget import FORGOTTEN_FINGERPRINT
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from slotguard.store.schema import TABLES
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
ANA = "ana@example.com"


def instance(number: int) -> dict:
    start = NOW + timedelta(weeks=number, days=1)
    resource = event(f"weekly_{number}", start, client=ANA, name="Ana Silva")
    resource["recurringEventId"] = "weekly"
    resource["originalStartTime"] = resource["start"]
    return resource


def stored(ledger) -> str:
    return "\n".join(json.dumps(dict(row), default=str) for table in TABLES for row in ledger.db.execute(f"SELECT * FROM {table}")).lower()


def test_an_edited_event_and_a_new_series_instance_of_a_forgotten_client_stay_forgotten(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    practice = settings(storage={"data_dir": str(tmp_path / "var")}, mail={"digest_hour": -1, "quiet_hours": ""})
    calendar = MemoryCalendar("primary")
    ledger = Ledger(practice.storage.location)
    ledger.record_sync("primary", None, NOW - timedelta(days=30))
    engine = build_engine(practice, NOW, ledger=ledger, calendars=[(calendar, NullWriteBack())],
                          provider=RecordOnlyProvider(), mailer=MemoryMailer())
    future = NOW + timedelta(days=3)
    calendar.put(event("single", future, client=ANA, name="Ana Silva"), NOW)
    calendar.put(instance(0), NOW)
    engine.tick(NOW)
    assert {a.template for a in ledger.actions(client_email=ANA)} >= {"booking_confirmation"}

    assert forget_now(practice, engine, ANA, NOW + timedelta(minutes=5), "lena") == 0
    assert "take the client off them" in capsys.readouterr().out
    assert ANA not in stored(ledger)
    fingerprints = {row["fingerprint"] for row in ledger.db.execute("SELECT fingerprint FROM appointments")}
    assert fingerprints == {FORGOTTEN_FINGERPRINT}, "no digest of the address is kept"
    count = len(ledger.actions())

    # The practitioner moves her event and renames it; the series' next week enters the window.
    calendar.put(event("single", future + timedelta(hours=2), client=ANA, name="Ana Silva", title="Massage (moved)"), NOW + timedelta(hours=1))
    calendar.put(instance(1), NOW + timedelta(hours=1))
    calendar.put(event("bob", future, client="bob@example.com", name="Bob Berg"), NOW + timedelta(hours=1))
    engine.tick(NOW + timedelta(hours=1))
    ledger.clear_sync_token("primary")  # and read again in full
    engine.tick(NOW + timedelta(hours=2))
    engine.tick(future + timedelta(hours=6))  # her sessions' times pass

    new = ledger.actions()[count:]
    assert [(a.client_email, a.template) for a in new if a.client_email != "bob@example.com"] == []
    assert any(a.template == "booking_confirmation" for a in new), "another client's booking is read as ever"
    assert ANA not in stored(ledger) and "ana silva" not in stored(ledger)
    assert ledger.tracked("primary", "weekly_1") is None
