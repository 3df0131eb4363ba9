"""`calendar.client_organised` (issue 14): an event a client organised (the client invited the
practitioner) never carries a fee, whatever it says; with "remind" its client gets the
reminders, and nothing else, and they quote nothing the client wrote on it; with "ignore" (the
default) nothing at all happens for it. The loop is real: a SQLite (or PostgreSQL) ledger, the
outbox folder, an in-memory calendar."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from integration.memory import MemoryCalendar
from integration.outbox_dir import OutboxDirMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import MONEY_KINDS
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import settings

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
WEDNESDAY_10 = datetime(2026, 3, 4, 10, 0, tzinfo=OSLO)
UNTRUSTED = ("Coffee with Lena", "Evil Street 1", "evil.example", "1500", "#noshow")


class Loop:
    def __init__(self, tmp_path, **calendar):
        self.settings = settings(calendar=calendar, mail={"digest_hour": -1, "quiet_hours": ""})
        self.calendar = MemoryCalendar("primary")
        self.outbox = OutboxDirMailer(tmp_path / "outbox")
        self.ledger = Ledger(tmp_path / "ledger.sqlite3")
        self.engine = build_engine(self.settings, MONDAY, ledger=self.ledger, calendars=[(self.calendar, NullWriteBack())],
                                   provider=RecordOnlyProvider(), mailer=self.outbox)

    def run_until(self, end, start=MONDAY, step=timedelta(hours=1)):
        at = start
        while at <= end:
            self.engine.tick(at)
            at += step

    def fees(self):
        return [action for action in self.ledger.actions() if action.kind in MONEY_KINDS]

    def messages(self):
        folder = self.outbox.folder
        return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                for path in sorted(folder.glob("*.eml"))] if folder.exists() else []


def invited_by_the_client(event_id="e1", *, guests=(), status="confirmed", you_answer="accepted"):
    """An event Ana organised and invited Lena (the practitioner) to, with everything a
    client could write on it: a no-show tag, the no-show colour, a price line, a link, a place."""
    return {
        "id": event_id, "status": status, "summary": "Coffee with Lena #noshow", "colorId": "11",
        "description": "price: 1500 NOK\nlink: https://evil.example/join\nlang: de", "location": "Evil Street 1",
        "start": {"dateTime": WEDNESDAY_10.isoformat(), "timeZone": "Europe/Oslo"},
        "end": {"dateTime": (WEDNESDAY_10 + timedelta(hours=1)).isoformat(), "timeZone": "Europe/Oslo"},
        "organizer": {"email": "ana@example.com", "displayName": "Ana Silva"},
        "attendees": [
            {"email": "ana@example.com", "displayName": "Ana Silva", "organizer": True, "responseStatus": "accepted"},
            {"email": "lena@example.com", "self": True, "responseStatus": you_answer},
            *({"email": guest, "responseStatus": "accepted"} for guest in guests),
        ],
    }


def text_of(message) -> str:
    return "\n".join(part.get_content() for part in message.walk() if part.get_content_type() in ("text/plain", "text/html"))


def test_with_remind_the_client_gets_the_reminders_and_never_a_fee_even_when_marked(tmp_path):
    loop = Loop(tmp_path, client_organised="remind")
    loop.calendar.put(invited_by_the_client(), MONDAY)
    loop.run_until(WEDNESDAY_10 + timedelta(days=2))

    assert loop.fees() == [], "no fee, though the event is coloured and tagged no-show and names a price"
    messages = loop.messages()
    assert [m["To"].addresses[0].addr_spec for m in messages] == ["ana@example.com", "ana@example.com"]
    assert all(m["Subject"].startswith("Reminder: your massage") for m in messages)
    for message in messages:
        body = text_of(message)
        assert "Dear Ana" in body
        assert not [words for words in UNTRUSTED if words in body], "nothing the client wrote on the event is quoted"
        assert "policy" not in body.lower() and "900" not in body, "no fee policy is quoted: none applies"
        assert "card" not in body.lower()
    [tracked] = loop.ledger.all_tracked()
    assert tracked.appointment.client.email == "ana@example.com" and tracked.appointment.marks == frozenset()
    assert [h["kind"] for h in loop.ledger.happenings_for("primary", "e1")] == ["booked", "attended"]


def test_with_ignore_nothing_happens_for_it(tmp_path):
    loop = Loop(tmp_path)  # the default
    assert loop.settings.calendar.client_organised == "ignore"
    loop.calendar.put(invited_by_the_client(), MONDAY)
    loop.run_until(WEDNESDAY_10 + timedelta(days=2), step=timedelta(hours=3))
    assert loop.fees() == [] and loop.messages() == [] and loop.ledger.all_tracked() == []


def test_a_meeting_with_other_guests_is_no_client_appointment_even_with_remind(tmp_path):
    loop = Loop(tmp_path, client_organised="remind")
    loop.calendar.put(invited_by_the_client(guests=("bo@example.com",)), MONDAY)
    loop.run_until(WEDNESDAY_10 + timedelta(days=1), step=timedelta(hours=3))
    assert loop.fees() == [] and loop.messages() == [] and loop.ledger.all_tracked() == []
    assert "ana@example.com" in {p["item"]: p["message"] for p in loop.ledger.problems()}["e1"]


def test_a_client_cancelling_or_you_declining_stops_the_reminders_and_costs_nothing(tmp_path):
    loop = Loop(tmp_path, client_organised="remind")
    loop.calendar.put(invited_by_the_client("cancelled_by_them"), MONDAY)
    loop.calendar.put(invited_by_the_client("declined_by_you") | {"start": {"dateTime": (WEDNESDAY_10 + timedelta(hours=2)).isoformat()},
                                                                 "end": {"dateTime": (WEDNESDAY_10 + timedelta(hours=3)).isoformat()}}, MONDAY)
    loop.engine.tick(MONDAY)
    loop.calendar.put(invited_by_the_client("cancelled_by_them", status="cancelled"), MONDAY + timedelta(hours=1))
    loop.calendar.put(invited_by_the_client("declined_by_you", you_answer="declined") | {
        "start": {"dateTime": (WEDNESDAY_10 + timedelta(hours=2)).isoformat()},
        "end": {"dateTime": (WEDNESDAY_10 + timedelta(hours=3)).isoformat()}}, MONDAY + timedelta(hours=1))
    loop.run_until(WEDNESDAY_10 + timedelta(days=1), start=MONDAY + timedelta(hours=1))
    assert loop.messages() == [] and loop.fees() == []
    assert {t.appointment.event_id for t in loop.ledger.all_tracked() if t.cancellation} == {"cancelled_by_them", "declined_by_you"}
