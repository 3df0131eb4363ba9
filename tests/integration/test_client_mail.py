"""A client's "I need to cancel" / "I'll be there" by email (docs/inbox.md, "Clients"): the real
engine on a real ledger (both engines), messages delivered into a MemoryInbox and read by the
tick's inbox step, the late-cancel policy deciding the fee, the status note written back."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import format_datetime
from zoneinfo import ZoneInfo

import pytest

from integration.memory import MemoryCalendar, MemoryInbox, MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.model import ActionKind, Appointment, HappeningKind
from slotguard.domain.tick_report import TickReport
from slotguard.inbox.parse import incoming
from slotguard.mail.links import appointment_target, load_secret, secret_path, sign, verify
from slotguard.run.client_mail import client_command
from slotguard.run.wiring import build_engine
from slotguard.store.inbox_rows import CANCEL, CLIENT_COMMAND, CONFIRM
from slotguard.store.ledger import Ledger
from tests.support.builders import event
from tests.support.builders import settings as practice_settings

OSLO = ZoneInfo("Europe/Oslo")
INBOX = "lena+slotguard@example.com"
ANA = "ana@example.com"


class RecordingWriteBack:
    """The calendar's write-back, keeping what it was asked to write (the note and state)."""

    def __init__(self) -> None:
        self.written: dict[str, tuple[dict[str, str], str]] = {}

    def write_status(self, appointment: Appointment, state: dict[str, str], note: str) -> None:
        self.written[appointment.event_id] = (dict(state), note)


class Practice:
    def __init__(self, tmp_path, now: datetime, **sections) -> None:
        self.settings = practice_settings(
            storage={"data_dir": str(tmp_path / "data")},
            inbox={"source": "memory", "address": INBOX, **sections.pop("inbox", {})},
            mail={"quiet_hours": ""},
            **sections,
        )
        self.ledger = Ledger(tmp_path / "ledger.sqlite3")
        self.calendar = MemoryCalendar("primary")
        self.write_back = RecordingWriteBack()
        self.inbox = MemoryInbox()
        self.engine = build_engine(self.settings, now, ledger=self.ledger, calendars=[(self.calendar, self.write_back)],
                                   provider=RecordOnlyProvider(), mailer=MemoryMailer(), inbox=self.inbox)
        self.secret = load_secret(secret_path(self.settings))  # the one the inbox step loads
        self.sent = 0

    def book(self, event_id: str, start: datetime, at: datetime, client: str = ANA) -> None:
        self.calendar.put(event(event_id, start, client=client), at)
        self.engine.tick(at)

    def link(self, command: str, event_id: str, start: datetime, client: str = ANA) -> str:
        """The subject of the link in the client's reminder (as the links helper signs it)."""
        token = sign(self.secret, command, appointment_target("primary", event_id, start, client), expires=start)
        return f"{'Cancel' if command == 'cancel' else 'Confirm'} my appointment [{token}]"

    def send(self, sender: str, subject: str, received_at: datetime, date: datetime | None = None, message_id: str = "",
             body: str = "Sorry!\r\n") -> bytes:
        self.sent += 1
        raw = (
            f"From: Ana Silva <{sender}>\r\nTo: {INBOX}\r\nSubject: {subject}\r\n"
            f"Message-ID: {message_id or f'<m{self.sent}@mail.example.com>'}\r\n"
            f"Date: {format_datetime(date or received_at)}\r\n\r\n{body}"
        ).encode()
        self.inbox.deliver(raw, received_at)
        return raw

    def happenings(self, event_id: str, kind: HappeningKind) -> list[dict]:
        return [row for row in self.ledger.happenings_for("primary", event_id) if row["kind"] == kind.value]

    def fees(self, event_id: str) -> list:
        return self.ledger.actions(kinds=[ActionKind.CHARGE], event_id=event_id)


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=OSLO)


@pytest.fixture
def practice(tmp_path):
    made: list[Practice] = []

    def make(now: datetime, **sections) -> Practice:
        made.append(Practice(tmp_path, now, **sections))
        return made[-1]

    yield make
    for one in made:
        one.ledger.close()


# A tier boundary at midnight: the session is at 10:00, the 50 % tier covers the last 34 hours.
TIERS = {"late_cancel": {"tiers": [{"within": "34h", "fee": "50%"}, {"within": "2h", "fee": "100%"}]}}


@pytest.mark.parametrize(("received", "lying_date", "fee"), [
    (local(2026, 12, 8, 23, 59), local(2026, 12, 9, 0, 30), None),
    (local(2026, 12, 9, 0, 1), local(2026, 12, 8, 22, 0), "450.00 NOK"),
], ids=["23:59 no fee", "00:01 half"])
def test_a_cancellation_across_a_tier_boundary_is_timed_by_the_servers_receipt(practice, received, lying_date, fee):
    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0), policies=TIERS)
    p.book("e1", start, local(2026, 12, 1, 9, 0))
    p.send(ANA, p.link("cancel", "e1", start), received, date=lying_date)

    p.engine.tick(received + timedelta(minutes=5))

    [cancelled] = p.happenings("e1", HappeningKind.CANCELLED_BY_CLIENT)
    assert datetime.fromisoformat(cancelled["at"]) == received
    amounts = [str(action.amount) for action in p.fees("e1")]
    assert amounts == ([fee] if fee else [])
    signal = p.ledger.email_signal("primary", "e1", start, CANCEL)
    assert signal is not None and datetime.fromisoformat(signal["received_at"]) == received
    [row] = p.ledger.mail_since(received - timedelta(days=1), (CLIENT_COMMAND,))
    assert (row["command"], row["event_id"], row["outcome"]) == ("cancel", "e1", "cancelled by the client")


def test_a_cancel_three_hours_before_gives_the_half_fee_and_the_note_says_so(practice):
    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0))
    p.book("e2", start, local(2026, 12, 1, 9, 0))
    received = start - timedelta(hours=3)
    p.send(ANA, p.link("cancel", "e2", start), received)

    p.engine.tick(received + timedelta(minutes=2))

    [fee] = p.fees("e2")
    assert (str(fee.amount), fee.policy) == ("450.00 NOK", "late_cancel")
    tracked = p.ledger.tracked("primary", "e2")
    assert tracked is not None and tracked.cancellation == "client" and tracked.appointment.cancelled_at == received
    state, note = p.write_back.written["e2"]
    assert note.startswith("Slotguard: cancelled by the client by email, received Thu 10 Dec 07:00 (cancelled: 2026-12-10T07:00:00+01:00); ")
    assert "late-cancel fee 450.00 NOK pending review" in note
    assert state["slotguard_cancelled"] == "client_email" and state["slotguard_fee"] == fee.id
    assert state["slotguard_cancelled_at"] == "2026-12-10T06:00:00Z"


def test_a_cancel_without_a_fee_is_written_onto_the_event_too(practice):
    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0))
    p.book("e1", start, local(2026, 12, 1, 9, 0))
    received = local(2026, 12, 5, 12, 0)
    p.send(ANA, p.link("cancel", "e1", start), received)

    p.engine.tick(received + timedelta(minutes=1))

    assert p.fees("e1") == []
    state, note = p.write_back.written["e1"]
    assert note == "Slotguard: cancelled by the client by email, received Sat 05 Dec 12:00 (cancelled: 2026-12-05T12:00:00+01:00)"
    assert state == {"slotguard_cancelled": "client_email", "slotguard_cancelled_at": "2026-12-05T11:00:00Z"}


def test_the_calendar_read_again_keeps_the_cancellation(practice):
    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0))
    p.book("e2", start, local(2026, 12, 1, 9, 0))
    received = start - timedelta(hours=3)
    p.send(ANA, p.link("cancel", "e2", start), received)
    p.engine.tick(received + timedelta(minutes=2))
    # The event is unchanged in the calendar but listed again (an edit of its description, a full listing).
    p.calendar.put(event("e2", start, description="Bring the referral letter."), received + timedelta(minutes=20))
    p.ledger.set_meta("full_sync:primary", "2000-01-01T00:00:00Z")

    p.engine.tick(received + timedelta(minutes=30))
    p.engine.tick(start + timedelta(hours=4))  # after the session: no attended, no no-show, no waiver

    kinds = [row["kind"] for row in p.ledger.happenings_for("primary", "e2")]
    assert kinds == ["booked", "cancelled_by_client"]
    [fee] = p.fees("e2")
    assert fee.state.value in ("pending_review", "planned", "done")
    tracked = p.ledger.tracked("primary", "e2")
    assert tracked is not None and tracked.cancellation == "client"


def test_a_cancel_from_another_address_does_nothing(practice):
    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0))
    p.book("e1", start, local(2026, 12, 1, 9, 0))
    p.book("e2", start + timedelta(hours=2), local(2026, 12, 1, 9, 0), client="bo@example.com")
    received = start - timedelta(hours=3)
    p.send("bo@example.com", p.link("cancel", "e1", start), received)  # Ana's link, sent by Bo

    p.engine.tick(received + timedelta(minutes=2))

    assert p.happenings("e1", HappeningKind.CANCELLED_BY_CLIENT) == [] and p.fees("e1") == []
    assert p.ledger.email_signal("primary", "e1", start, CANCEL) is None
    assert "e1" not in p.write_back.written


def refusal_of(p: Practice, raw_at: int, now: datetime) -> str:
    """client_command's own answer for the message delivered `raw_at`, called as the inbox
    step calls it (the token verified: its expiry is not what is tested here)."""
    message = incoming(p.inbox.mails[raw_at], p.settings)
    token = verify(p.secret, message.token, local(2026, 1, 1, 0, 0))
    return client_command(p.engine, message, token, now, TickReport())


def test_a_cancel_after_the_start_does_nothing(practice):
    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0))
    p.book("e1", start, local(2026, 12, 1, 9, 0))
    p.send(ANA, p.link("cancel", "e1", start), start + timedelta(minutes=1))

    assert refusal_of(p, 0, start + timedelta(minutes=2)).startswith("refused: received at or after the start")
    p.engine.tick(start + timedelta(minutes=2))

    assert p.happenings("e1", HappeningKind.CANCELLED_BY_CLIENT) == [] and p.fees("e1") == []
    assert p.ledger.email_signal("primary", "e1", start, CANCEL) is None


def test_a_link_for_the_old_time_of_a_moved_appointment_does_nothing(practice):
    old = local(2026, 12, 10, 10, 0)
    new = old + timedelta(days=1)
    p = practice(local(2026, 12, 1, 9, 0))
    p.book("e1", old, local(2026, 12, 1, 9, 0))
    p.book("e1", new, local(2026, 12, 2, 9, 0))  # the practitioner moved it
    received = old - timedelta(hours=3)
    p.send(ANA, p.link("cancel", "e1", old), received)

    assert refusal_of(p, 0, received).startswith("refused: no appointment of the sender matches the link")
    p.engine.tick(received + timedelta(minutes=2))
    p.engine.tick(new - timedelta(hours=1))

    assert p.happenings("e1", HappeningKind.CANCELLED_BY_CLIENT) == [] and p.fees("e1") == []
    tracked = p.ledger.tracked("primary", "e1")
    assert tracked is not None and tracked.cancellation == "" and tracked.appointment.start == new


def test_a_confirmation_is_recorded_and_changes_nothing_else(practice):
    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0))
    p.book("e1", start, local(2026, 12, 1, 9, 0))
    before = (p.ledger.tracked("primary", "e1"), len(p.ledger.actions()), p.ledger.happenings_for("primary", "e1"))
    received = local(2026, 12, 9, 18, 0)
    p.send(ANA, p.link("confirm", "e1", start), received)

    p.engine.tick(received + timedelta(minutes=1))

    signal = p.ledger.email_signal("primary", "e1", start, CONFIRM)
    assert signal is not None and signal["client_email"] == ANA and datetime.fromisoformat(signal["received_at"]) == received
    assert p.ledger.email_signal("primary", "e1", start, CANCEL) is None
    after = (p.ledger.tracked("primary", "e1"), p.ledger.happenings_for("primary", "e1"))
    assert after == (before[0], before[2])
    assert len([a for a in p.ledger.actions() if a.kind is not ActionKind.EMAIL]) == 0
    assert "e1" not in p.write_back.written
    [row] = p.ledger.mail_since(received - timedelta(days=1), (CLIENT_COMMAND,))
    assert row["command"] == "confirm"


def test_a_second_cancel_does_nothing(practice):
    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0))
    p.book("e2", start, local(2026, 12, 1, 9, 0))
    received = start - timedelta(hours=3)
    p.send(ANA, p.link("cancel", "e2", start), received)
    p.engine.tick(received + timedelta(minutes=2))
    p.send(ANA, p.link("cancel", "e2", start), received + timedelta(minutes=10))  # the same link tapped again
    p.send(ANA, "Re: " + p.link("cancel", "e2", start), received + timedelta(minutes=11), message_id="<m1@mail.example.com>")

    assert refusal_of(p, 1, received + timedelta(minutes=12)).startswith("refused: the appointment is cancelled already")
    p.engine.tick(received + timedelta(minutes=15))

    assert len(p.happenings("e2", HappeningKind.CANCELLED_BY_CLIENT)) == 1
    [fee] = p.fees("e2")
    assert str(fee.amount) == "450.00 NOK"
    signal = p.ledger.email_signal("primary", "e2", start, CANCEL)
    assert signal is not None and datetime.fromisoformat(signal["received_at"]) == received
    assert len(p.ledger.mail_since(received - timedelta(days=1), (CLIENT_COMMAND,))) == 1


def test_an_appointment_handed_to_another_client_is_not_cancelled_by_the_old_clients_link(practice):
    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0))
    p.book("e1", start, local(2026, 12, 1, 9, 0))
    p.book("e1", start, local(2026, 12, 2, 9, 0), client="bo@example.com")
    received = start - timedelta(hours=3)
    p.send(ANA, p.link("cancel", "e1", start), received)

    p.engine.tick(received + timedelta(minutes=2))

    assert p.happenings("e1", HappeningKind.CANCELLED_BY_CLIENT) == [] and p.fees("e1") == []



def test_moving_an_appointment_cancelled_by_email_withdraws_the_cancellation_for_good(practice):
    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0))
    p.book("e2", start, local(2026, 12, 1, 9, 0))
    received = start - timedelta(hours=3)
    p.send(ANA, p.link("cancel", "e2", start), received)
    p.engine.tick(received + timedelta(minutes=2))

    p.book("e2", start + timedelta(days=7), received + timedelta(minutes=10))  # the practitioner gives her another time
    p.book("e2", start, received + timedelta(minutes=20))  # and back: a new booking at the old time

    kinds = [row["kind"] for row in p.ledger.happenings_for("primary", "e2")]
    assert kinds == ["booked", "cancelled_by_client", "rescheduled", "waived", "rescheduled"]
    tracked = p.ledger.tracked("primary", "e2")
    assert tracked is not None and tracked.cancellation == "" and not tracked.appointment.client_declined


def forwarded(p: Practice) -> list:
    """The inbox's emails to the practice that forward a message (slotguard/inbox/replies.py)."""
    return [a for a in p.ledger.actions(kinds=[ActionKind.EMAIL]) if a.policy == "inbox" and a.context.get("reply", {}).get("kind") == "forward"]


def test_a_cancel_received_just_before_the_start_counts_though_it_is_read_after_it(practice):
    """The link expires at the start; what counts is when the inbox received the message, not
    when Slotguard read it (the tick after a server was down, say)."""
    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0))
    p.book("e1", start, local(2026, 12, 1, 9, 0))
    received = start - timedelta(minutes=5)
    p.send(ANA, p.link("cancel", "e1", start), received)

    p.engine.tick(start + timedelta(minutes=20))

    [cancelled] = p.happenings("e1", HappeningKind.CANCELLED_BY_CLIENT)
    assert datetime.fromisoformat(cancelled["at"]) == received
    assert [str(fee.amount) for fee in p.fees("e1")] == ["900.00 NOK"]  # within 2 h: the 100 % tier


@pytest.mark.parametrize("late", [timedelta(minutes=1), timedelta(hours=30)], ids=["after the start", "link expired"])
def test_a_clients_cancel_that_cannot_be_carried_out_reaches_the_practitioner(practice, late):
    """Never lost: a cancel too late (or sent from a link long expired) is not acted on, and the
    practitioner gets the message, as any other mail from a client."""
    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0))
    p.book("e1", start, local(2026, 12, 1, 9, 0))
    p.send(ANA, p.link("cancel", "e1", start), start + late)

    p.engine.tick(start + late + timedelta(minutes=2))

    assert p.happenings("e1", HappeningKind.CANCELLED_BY_CLIENT) == [] and p.fees("e1") == []
    assert len(forwarded(p)) == 1, "the client's message is forwarded to the practitioner"
    [row] = p.ledger.mail_since(start, None)
    assert row["kind"] == "client_mail"


def test_words_a_client_writes_with_a_cancel_reach_the_practitioner(practice):
    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0))
    p.book("e1", start, local(2026, 12, 1, 9, 0))
    p.book("e2", start + timedelta(days=1), local(2026, 12, 1, 9, 0))
    prefill = "Press send to cancel your appointment on Thu 10 Dec at 10:00. If you want to tell Lena Berg Massage something, write it here:"
    p.send(ANA, p.link("cancel", "e1", start), start - timedelta(hours=30), body=f"{prefill}\r\n\r\nMy daughter is ill, can we move it to Friday?")
    p.send(ANA, p.link("cancel", "e2", start + timedelta(days=1)), start - timedelta(hours=29), body=f"{prefill}\r\n")

    p.engine.tick(start - timedelta(hours=28))

    assert len(p.happenings("e1", HappeningKind.CANCELLED_BY_CLIENT)) == 1
    assert len(p.happenings("e2", HappeningKind.CANCELLED_BY_CLIENT)) == 1
    assert len(forwarded(p)) == 1, "the message with the client's words is forwarded; the bare cancel is not"
    [cover] = [p.engine.mailer.sent[a.id] for a in forwarded(p)]
    assert cover["Subject"] == "Ana Silva cancelled Dec 10, 2026 10:00\u202fAM and wrote to you"
    assert len(receipts(p)) == 2  # each carried-out cancel: the client hears it worked


def test_a_cancel_read_after_the_practitioner_marked_a_no_show_leaves_the_mark_and_its_fee(practice):
    """The inbox read late (a server down): the practitioner marked the no-show first. The
    email does not undo the mark (that would waive every fee); it goes to the practitioner."""
    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0))
    p.book("e1", start, local(2026, 12, 1, 9, 0))
    p.send(ANA, p.link("cancel", "e1", start), start - timedelta(hours=1))
    marked = start + timedelta(hours=2)
    p.calendar.put(event("e1", start, title="Massage #noshow"), marked)

    p.engine.tick(marked + timedelta(minutes=5))

    fees = p.fees("e1")
    assert [(fee.policy, fee.state.value) for fee in fees] == [("no_show", "pending_review")], [(f.policy, f.state.value) for f in fees]
    assert p.ledger.email_signal("primary", "e1", start, CANCEL) is None
    assert len(forwarded(p)) == 1, "the practitioner gets the client's message"


@pytest.mark.parametrize(("body", "passed_on"), [
    ("{prefill}\r\n\r\nSent from my iPhone\r\n", False),
    ("I have a fever, sorry\r\n{prefill}\r\n", True),
    ("Trykk på send for å avbestille timen din tor. 10. des. kl. 10:00. Hvis du vil si noe til Lena Berg\r\nMassage, kan du skrive det her:\r\n\r\nSendt fra min iPhone\r\n", False),
], ids=["signature only", "words above the prefill", "nb prefill folded, signature"])
def test_only_a_clients_own_words_are_passed_on(practice, body, passed_on):
    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0))
    p.book("e1", start, local(2026, 12, 1, 9, 0))
    prefill = "Press send to cancel your appointment on Thu 10 Dec at 10:00. If you want to tell Lena Berg Massage something, write it here:"
    p.send(ANA, p.link("cancel", "e1", start), start - timedelta(hours=30), body=body.format(prefill=prefill))

    p.engine.tick(start - timedelta(hours=29))

    assert len(p.happenings("e1", HappeningKind.CANCELLED_BY_CLIENT)) == 1
    assert len(forwarded(p)) == (1 if passed_on else 0)


def test_with_leave_what_a_client_wrote_beside_a_cancel_stays_unread(practice):
    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0), inbox={"other_mail": "leave"})
    p.book("e1", start, local(2026, 12, 1, 9, 0))
    p.send(ANA, p.link("cancel", "e1", start), start - timedelta(hours=30), body="Can we move it to Friday instead?\r\n")
    p.send(ANA, p.link("cancel", "e1", start), start - timedelta(hours=30), body="Can we move it to Friday instead?\r\n",
           message_id="<m1@mail.example.com>")  # the same message read again (a crash before it was filed)

    p.engine.tick(start - timedelta(hours=29))

    assert len(p.happenings("e1", HappeningKind.CANCELLED_BY_CLIENT)) == 1
    assert forwarded(p) == []
    assert p.inbox.filed == {"1": False, "2": False}, "left unread both times"


def test_a_clients_cancel_failing_the_receiving_servers_check_is_not_carried_out_and_reaches_the_practitioner(practice):
    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0))
    p.book("e1", start, local(2026, 12, 1, 9, 0))
    subject = p.link("cancel", "e1", start)
    raw = (f"Authentication-Results: mx.example.com; spf=fail smtp.mailfrom={ANA}; dkim=none\r\nFrom: {ANA}\r\nTo: {INBOX}\r\n"
           f"Subject: {subject}\r\nMessage-ID: <forged@x>\r\nDate: {format_datetime(start)}\r\n\r\nSorry!\r\n").encode()
    p.inbox.deliver(raw, start - timedelta(hours=3))

    p.engine.tick(start - timedelta(hours=2, minutes=55))

    assert p.happenings("e1", HappeningKind.CANCELLED_BY_CLIENT) == [] and p.fees("e1") == []
    assert len(forwarded(p)) == 1


def receipts(p: Practice) -> list:
    """The client's receipts, as sent (the memory mailer keeps each email by its action)."""
    return [p.engine.mailer.sent[a.id] if a.id in p.engine.mailer.sent else None
            for a in p.ledger.actions(kinds=[ActionKind.EMAIL]) if a.template == "inbox_receipt"]


def test_a_cancel_carried_out_gets_a_receipt_in_the_clients_language_replying_to_the_practice(practice):
    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0), practice={"locale": "nb"})
    p.book("e1", start, local(2026, 12, 1, 9, 0))
    received = local(2026, 12, 5, 12, 0)
    p.send(ANA, p.link("cancel", "e1", start), received, body="")

    p.engine.tick(received + timedelta(minutes=1))

    [receipt] = receipts(p)
    assert receipt is not None and receipt["To"].addresses[0].addr_spec == ANA
    assert receipt["Reply-To"].addresses[0].addr_spec == p.settings.practice.email
    assert receipt["Subject"].startswith("Avbestilt: timen din ")
    body = receipt.get_body(("plain",)).get_content()
    assert "Vi har fått avbestillingen din av timen" in body and "mottatt" in body and "12:00" in body


def test_a_late_cancel_whose_fee_notice_waits_for_the_review_window_gets_a_receipt_now(practice):
    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0))
    p.book("e2", start, local(2026, 12, 1, 9, 0))
    received = start - timedelta(hours=3)
    p.send(ANA, p.link("cancel", "e2", start), received, body="")

    p.engine.tick(received + timedelta(minutes=2))

    [notice] = [a for a in p.ledger.actions(kinds=[ActionKind.EMAIL]) if a.template == "late_cancel_notice"]
    assert notice.due_at > received + timedelta(minutes=2)  # after the review window: not this tick
    [receipt] = receipts(p)
    assert receipt is not None and "We have your cancellation of" in receipt.get_body(("plain",)).get_content()


def test_no_receipt_when_an_email_to_the_client_about_that_cancellation_goes_in_the_same_tick(practice):
    from slotguard.domain.interfaces import ReceivedMail
    from slotguard.domain.model import ActionSubject, new_action
    from slotguard.inbox.replies import plan_receipt

    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0))
    p.book("e1", start, local(2026, 12, 1, 9, 0))
    now = local(2026, 12, 9, 12, 0)
    appointment = p.ledger.tracked("primary", "e1").appointment
    raw = p.send(ANA, p.link("cancel", "e1", start), now)
    message = incoming(ReceivedMail("1", raw, now), p.settings)
    with p.ledger.transaction():
        notice = new_action(ActionSubject.of_appointment(appointment), ActionKind.EMAIL, "late_cancel", "notice now",
                            key="test", now=now, template="late_cancel_notice")
        p.ledger.add_action(notice)
        assert plan_receipt(p.settings, p.ledger, appointment, "cancel", message, now) is None
    # the same email due later (after a review window) does not stand in for the receipt
    later = now + timedelta(minutes=5)
    with p.ledger.transaction():
        p.ledger.add_action(new_action(ActionSubject.of_appointment(appointment), ActionKind.EMAIL, "late_cancel", "notice later",
                                       key="test2", now=later, due=later + timedelta(hours=12), template="late_cancel_notice"))
        assert plan_receipt(p.settings, p.ledger, appointment, "cancel", message, later) is not None


def test_a_confirmation_gets_a_one_line_thanks_and_a_link_not_carried_out_gets_no_receipt(practice):
    start = local(2026, 12, 10, 10, 0)
    p = practice(local(2026, 12, 1, 9, 0))
    p.book("e1", start, local(2026, 12, 1, 9, 0))
    p.send(ANA, p.link("confirm", "e1", start), local(2026, 12, 9, 18, 0), body="")
    p.send("someone@example.org", p.link("cancel", "e1", start), local(2026, 12, 9, 18, 1), body="")  # another address: not carried out

    p.engine.tick(local(2026, 12, 9, 18, 5))

    [thanks] = receipts(p)
    assert thanks is not None and thanks["Subject"].startswith("Thank you: see you on ")
    assert "we have your confirmation for" in thanks.get_body(("plain",)).get_content()
    assert p.ledger.email_signal("primary", "e1", start, CANCEL) is None
