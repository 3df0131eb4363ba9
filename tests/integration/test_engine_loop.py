"""The whole loop on a real SQLite ledger and a real outbox folder, with an in-memory calendar."""

import email
import email.policy
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from integration.memory import MemoryCalendar
from integration.outbox_dir import OutboxDirMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import ActionKind, ActionState
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
WEDNESDAY_10 = datetime(2026, 3, 4, 10, 0, tzinfo=OSLO)


class Loop:
    """One practice's engine on an in-memory calendar. `watched` (the default): Slotguard has
    read this calendar before the test begins, so every booking put in it is a new booking;
    False: the test's first tick is Slotguard's first look at the calendar (slotguard/planning/
    planner.py: an introduction of the policy, nothing asked ahead)."""

    def __init__(self, tmp_path, watched: bool = True, **sections):
        self.settings = settings(**sections)
        self.calendar = MemoryCalendar("primary")
        self.outbox = OutboxDirMailer(tmp_path / "outbox")
        self.ledger = Ledger(tmp_path / "ledger.sqlite3")
        if watched:
            self.ledger.record_sync("primary", None, MONDAY - timedelta(days=7))
        self.engine = build_engine(
            self.settings, MONDAY, ledger=self.ledger, calendars=[(self.calendar, NullWriteBack())],
            provider=RecordOnlyProvider(), mailer=self.outbox,
        )

    def put(self, resource, at):
        self.calendar.put(resource, at)

    def tick(self, at):
        return self.engine.tick(at)

    def run_until(self, start, end, step=timedelta(hours=1)):
        now = start
        while now <= end:
            self.engine.tick(now)
            now += step

    def messages(self):
        found = {}
        folder = self.outbox.folder
        for path in sorted(folder.glob("*.eml")) if folder.exists() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            found[path.stem] = message
        return found

    def fees(self):
        return self.ledger.actions(kinds=[ActionKind.CHARGE, ActionKind.WAIVE])

    def body(self, message):
        return message.get_body(("plain",)).get_content()


def test_a_late_cancellation_waits_for_review_then_becomes_a_receivable_and_the_client_is_told(tmp_path):
    loop = Loop(tmp_path)
    loop.put(event("e1", WEDNESDAY_10), MONDAY)
    loop.tick(MONDAY)
    cancel_at = WEDNESDAY_10 - timedelta(hours=5)
    loop.put(event("e1", WEDNESDAY_10, title="Massage #latecancel"), cancel_at)
    loop.tick(cancel_at + timedelta(minutes=2))
    [fee] = loop.fees()
    assert fee.state is ActionState.PENDING_REVIEW and fee.amount.minor == 45000
    assert fee.due_at == cancel_at + timedelta(minutes=2, hours=12)
    subjects = [m["Subject"] for m in loop.messages().values()]
    assert not any("cancelled" in s.lower() for s in subjects), "no notice before the review window ends"
    loop.tick(fee.due_at + timedelta(minutes=1))
    [fee] = loop.fees()
    assert fee.state is ActionState.DONE and fee.context["payment_status"] == "receivable"
    notice = [m for m in loop.messages().values() if "cancelled" in m["Subject"].lower()]
    assert len(notice) == 1
    text = loop.body(notice[0])
    assert "450.00" in text and "Vipps 400 00 000" in text and "https://example.com/book" in text
    assert notice[0]["To"] == "Ana Silva <ana@example.com>" and notice[0]["Reply-To"].endswith("<lena@example.com>")


def test_a_waive_tag_during_review_cancels_the_fee_and_the_email_says_there_is_none(tmp_path):
    loop = Loop(tmp_path)
    loop.put(event("e1", WEDNESDAY_10), MONDAY)
    loop.tick(MONDAY)
    after = WEDNESDAY_10 + timedelta(hours=1)
    loop.put(event("e1", WEDNESDAY_10, color="11"), after)
    loop.tick(after)
    assert [f.state for f in loop.fees()] == [ActionState.PENDING_REVIEW]
    loop.put(event("e1", WEDNESDAY_10, color="11", title="Massage #emergency"), after + timedelta(hours=2))
    loop.tick(after + timedelta(hours=2))
    loop.tick(after + timedelta(days=1))
    [fee] = loop.fees()
    assert fee.state is ActionState.WAIVED and "waived" in fee.reason
    [followup] = [m for m in loop.messages().values() if m["Subject"].startswith("We missed you on ")]
    text = loop.body(followup)
    assert "900" not in text and "book one here" in text.lower()


def test_the_same_tick_twice_plans_and_sends_nothing_new(tmp_path):
    loop = Loop(tmp_path)
    loop.put(event("e1", WEDNESDAY_10), MONDAY)
    loop.put(event("e2", WEDNESDAY_10 + timedelta(hours=2), client="bo@example.com", color="11"), MONDAY)
    now = WEDNESDAY_10 + timedelta(hours=5)
    first = loop.tick(now)
    actions = [(a.id, a.state) for a in loop.ledger.actions()]
    files = set(loop.messages())
    loop.calendar.version += 0
    second = loop.tick(now)
    assert sum(first.planned.values()) > 0
    assert sum(second.planned.values()) == 0 and sum(second.executed.values()) == 0
    assert [(a.id, a.state) for a in loop.ledger.actions()] == actions
    assert set(loop.messages()) == files


def test_one_bad_event_is_reported_and_the_others_go_on(tmp_path):
    loop = Loop(tmp_path)
    loop.put(event("bad", WEDNESDAY_10, description="price: a lot"), MONDAY)
    loop.put(event("good", WEDNESDAY_10 + timedelta(hours=2), client="bo@example.com"), MONDAY)
    report = loop.tick(MONDAY)
    assert any("bad" in p and "price" in p for p in report.problems)
    assert loop.ledger.tracked("primary", "good") is not None
    assert [p["item"] for p in loop.ledger.problems()] == ["bad"]
    assert any(m["To"].addresses[0].addr_spec == "bo@example.com" for m in loop.messages().values())


def test_an_unwritable_outbox_is_retried_and_reported_without_losing_the_message(tmp_path):
    loop = Loop(tmp_path)
    blocked = tmp_path / "outbox"
    blocked.write_text("not a folder")  # the outbox path is a file: writing fails
    loop.put(event("e1", WEDNESDAY_10), MONDAY)
    report = loop.tick(MONDAY)
    [confirmation] = [a for a in loop.ledger.actions() if a.template == "booking_confirmation"]
    assert confirmation.state is ActionState.PLANNED and confirmation.attempts == 1
    assert "outbox" in confirmation.last_error and report.executed["email:retry"] == 1
    blocked.unlink()
    loop.tick(confirmation.due_at)
    assert loop.ledger.action(confirmation.id).state is ActionState.DONE
    assert len(loop.messages()) == 1


def test_an_action_interrupted_while_executing_is_carried_out_once_after_restart(tmp_path):
    loop = Loop(tmp_path)
    loop.put(event("e1", WEDNESDAY_10), MONDAY)
    loop.tick(MONDAY)
    [confirmation] = [a for a in loop.ledger.actions() if a.template == "booking_confirmation"]
    # Simulate a crash after the message was written but before it was marked done.
    confirmation.state = ActionState.EXECUTING
    loop.ledger.update_action(confirmation, MONDAY, "simulated crash")
    assert loop.engine.recover(MONDAY) == 1
    loop.tick(MONDAY + timedelta(minutes=2))
    assert loop.ledger.action(confirmation.id).state is ActionState.DONE
    assert len(loop.messages()) == 1


def test_a_reschedule_moves_the_reminders_and_a_cancellation_stops_them(tmp_path):
    loop = Loop(tmp_path)
    friday = WEDNESDAY_10 + timedelta(days=2)
    loop.put(event("e1", WEDNESDAY_10), MONDAY)
    loop.put(event("e2", WEDNESDAY_10 + timedelta(hours=3), client="bo@example.com"), MONDAY)
    loop.tick(MONDAY)
    loop.put(event("e1", friday), MONDAY + timedelta(hours=1))
    loop.calendar.delete("e2", MONDAY + timedelta(hours=1))
    loop.run_until(MONDAY + timedelta(hours=1), friday + timedelta(hours=2))
    reminders = [a for a in loop.ledger.actions() if a.template == "reminder"]
    sent = sorted((a.client_email, a.appointment_start) for a in reminders if a.state is ActionState.DONE)
    assert sent == [("ana@example.com", friday), ("ana@example.com", friday)]
    subjects = sorted(m["Subject"] for m in loop.messages().values())
    assert sum("new time" in s for s in subjects) == 1
    assert not any(a.state is ActionState.DONE for a in reminders if a.client_email == "bo@example.com")


def test_no_fee_for_appointments_before_slotguard_started_watching(tmp_path):
    loop = Loop(tmp_path)  # first run: MONDAY
    earlier = MONDAY - timedelta(days=2)
    loop.put(event("old", earlier, color="11"), MONDAY)
    loop.tick(MONDAY)
    [fee] = loop.fees()
    assert fee.state is ActionState.CANCELLED and "charge_from" in fee.reason
    loop.tick(MONDAY + timedelta(days=2))
    assert not [m for m in loop.messages().values() if m["Subject"].startswith("We missed you on ")]


def test_a_fee_never_exceeds_max_single_charge(tmp_path):
    loop = Loop(tmp_path, services={"max_price": "5000 NOK"})  # a 3000 NOK price line is allowed
    loop.put(event("e1", WEDNESDAY_10, description="price: 3000 NOK", color="11"), MONDAY)
    loop.tick(WEDNESDAY_10 + timedelta(hours=2))
    [fee] = loop.fees()
    assert fee.amount.minor == 200000 and "max_single_charge" in fee.reason


def test_event_data_cannot_inject_headers_or_markup(tmp_path):
    loop = Loop(tmp_path)
    resource = event("e1", WEDNESDAY_10, name="Ana\r\nBcc: victim@example.com", title="<script>alert(1)</script>")
    loop.put(resource, MONDAY)
    loop.tick(MONDAY)
    [message] = loop.messages().values()
    assert message["Bcc"] is None and "\n" not in str(message["To"])
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html


def test_a_booking_made_30_hours_ahead_gets_only_the_24_hour_reminder_and_only_once(tmp_path):
    loop = Loop(tmp_path)
    booked_at = WEDNESDAY_10 - timedelta(hours=30)
    loop.put(event("e1", WEDNESDAY_10), booked_at)
    loop.run_until(booked_at, WEDNESDAY_10 + timedelta(hours=1), step=timedelta(minutes=30))
    reminders = [a for a in loop.ledger.actions() if a.template == "reminder"]
    assert [(a.state, a.due_at) for a in reminders] == [(ActionState.DONE, WEDNESDAY_10 - timedelta(hours=24))]
    assert reminders[0].executed_at - reminders[0].due_at < timedelta(minutes=30)


def test_a_written_off_fee_is_not_asked_of_the_client(tmp_path):
    loop = Loop(tmp_path, policies={"enabled": ["late_cancel", "no_show", "small_amount_writeoff"],
                                    "no_show": {"fee": "50 NOK"}, "small_amount_writeoff": {"below": "100 NOK"}})
    loop.put(event("e1", WEDNESDAY_10), MONDAY)
    loop.tick(MONDAY)
    after = WEDNESDAY_10 + timedelta(hours=1)
    loop.put(event("e1", WEDNESDAY_10, color="11"), after)
    loop.run_until(after, after + timedelta(hours=13))
    assert [a.kind for a in loop.ledger.actions() if a.kind in (ActionKind.CHARGE, ActionKind.WRITEOFF)] == [ActionKind.WRITEOFF]
    [followup] = [m for m in loop.messages().values() if m["Subject"].startswith("We missed you on ")]
    text = loop.body(followup)
    assert "50" not in text and "Vipps" not in text


def test_a_slot_freed_at_short_notice_is_offered_to_the_waitlist_and_to_clients_who_asked_for_earlier(tmp_path):
    loop = Loop(tmp_path, mail={"waitlist": ["wait@example.com"], "digest_hour": -1})
    loop.put(event("ana", WEDNESDAY_10), MONDAY)
    loop.put(event("bo", WEDNESDAY_10 + timedelta(days=2), client="bo@example.com", name="Bo Ek", title="Massage #earlier"), MONDAY)
    loop.put(event("cy", WEDNESDAY_10 + timedelta(days=2, hours=2), client="cy@example.com", name="Cy Dahl"), MONDAY)
    loop.put(event("dee", WEDNESDAY_10 - timedelta(hours=2), client="dee@example.com", title="Massage #earlier"), MONDAY)
    loop.tick(MONDAY)
    cancel_at = WEDNESDAY_10 - timedelta(hours=5)
    loop.put(event("ana", WEDNESDAY_10, title="Massage #latecancel"), cancel_at)
    loop.tick(cancel_at)
    offers = [a for a in loop.ledger.actions() if a.template == "slot_freed"]
    assert sorted(a.client_email for a in offers) == ["bo@example.com", "wait@example.com"]
    # Freed at 05:00, in quiet hours: offered at 08:00, two hours before the slot.
    assert not [a for a in offers if a.state is ActionState.DONE]
    loop.tick(cancel_at + timedelta(hours=3))
    offers = [a for a in loop.ledger.actions() if a.template == "slot_freed"]
    assert all(a.state is ActionState.DONE and a.executed_at == cancel_at + timedelta(hours=3) for a in offers)
    [bo] = [m for m in loop.messages().values()
            if m["To"].addresses[0].addr_spec == "bo@example.com" and m["Subject"].startswith("A time has become free")]
    assert "Dear Bo" in loop.body(bo) and "Ana" not in loop.body(bo), "an offer never names the client who cancelled"
