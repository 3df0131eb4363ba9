"""The client lifecycle mail as the engine composes it: the recipient's language, the .ics on
reminders, event data that stays inert, freed slots offered to the waitlist, and the
practitioner's daily digest. An in-memory calendar, ledger and mailer; the real engine."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar

from integration.memory import MemoryCalendar, MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import Action, ActionKind, ActionState
from slotguard.domain.money import Money
from slotguard.mail.compose import compose_email
from slotguard.practitioner.digest import digest_action_id
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
WEDNESDAY_10 = datetime(2026, 3, 4, 10, 0, tzinfo=OSLO)


class Practice:
    def __init__(self, **sections):
        sections.setdefault("mail", {})
        sections["mail"] = {"digest_hour": -1, **sections["mail"]}
        self.settings = settings(**sections)
        self.calendar = MemoryCalendar("primary")
        self.mailer = MemoryMailer()
        self.ledger = Ledger(":memory:")
        self.engine = build_engine(
            self.settings, MONDAY, ledger=self.ledger, calendars=[(self.calendar, NullWriteBack())],
            provider=RecordOnlyProvider(), mailer=self.mailer,
        )

    def run(self, start, end, step=timedelta(minutes=30)):
        now = start
        while now <= end:
            self.engine.tick(now)
            now += step

    def sent(self, template=None, to=None):
        found = []
        for action_id, message in self.mailer.sent.items():
            action = self.ledger.action(action_id)
            if (template is None or action.template == template) and (to is None or message["To"].addresses[0].addr_spec == to):
                found.append(message)
        return found


def text(message):
    return message.get_body(("plain",)).get_content()


def ics(message):
    [part] = [part for part in message.iter_attachments() if part.get_content_type() == "text/calendar"]
    return Calendar.from_ical(part.get_content() if isinstance(part.get_content(), str) else part.get_content().decode())


def test_reminders_carry_an_ics_with_a_stable_uid_and_the_online_link_with_how_to_test_it():
    practice = Practice()
    online = event("e1", WEDNESDAY_10, description="link: https://meet.example.com/abc")
    in_person = dict(event("e2", WEDNESDAY_10 + timedelta(hours=3), client="bo@example.com", name="Bo Ek"), location="Storgata 1")
    practice.calendar.put(online, MONDAY)
    practice.calendar.put(in_person, MONDAY)
    practice.run(MONDAY, WEDNESDAY_10)
    ana = practice.sent("reminder", "ana@example.com")
    assert len(ana) == 2, "48 h and 24 h before"
    calendars = [ics(message) for message in ana + practice.sent("booking_confirmation", "ana@example.com")]
    assert all(calendar["METHOD"] == "PUBLISH" for calendar in calendars)
    uids = {str(calendar.walk("VEVENT")[0]["UID"]) for calendar in calendars}
    assert len(uids) == 1, "one UID per appointment, so calendar apps update rather than duplicate"
    vevent = calendars[0].walk("VEVENT")[0]
    assert vevent.decoded("DTSTART") == WEDNESDAY_10 and "massage" in str(vevent["SUMMARY"])
    assert "e1" not in str(vevent["UID"]) and "Massage" not in str(vevent["SUMMARY"].replace("Lena Berg Massage", ""))
    assert "https://meet.example.com/abc" in text(ana[0]) and "sound and camera" in text(ana[0])
    [bo] = practice.sent("reminder", "bo@example.com")[:1]
    assert "Storgata 1" in text(bo) and "camera" not in text(bo)
    assert str(ics(bo).walk("VEVENT")[0]["UID"]) not in uids


def test_each_client_reads_their_own_language():
    practice = Practice(mail={"client_locales": {"Bo@Example.com": "pl"}})
    practice.engine.tick(MONDAY - timedelta(hours=1))  # Slotguard already watches the calendar: these are new bookings
    practice.calendar.put(event("e1", WEDNESDAY_10, description="lang: de"), MONDAY)
    practice.calendar.put(event("e2", WEDNESDAY_10 + timedelta(hours=2), client="bo@example.com", name="Bo Ek"), MONDAY)
    practice.calendar.put(event("e3", WEDNESDAY_10 + timedelta(hours=4), client="cy@example.com", name="Cy Dahl"), MONDAY)
    practice.engine.tick(MONDAY)
    [ana] = practice.sent("booking_confirmation", "ana@example.com")
    [bo] = practice.sent("booking_confirmation", "bo@example.com")
    [cy] = practice.sent("booking_confirmation", "cy@example.com")
    assert ana["Content-Language"] == "de" and ana["Subject"].startswith("Ihr Termin ist gebucht: Mittwoch, 4. März 2026")
    assert bo["Content-Language"] == "pl" and "Dziękujemy za rezerwację" in text(bo) and "450,00\u00a0NOK" in text(bo)
    assert cy["Content-Language"] == "en" and "Thank you for booking" in text(cy)


def test_event_data_is_inert_in_html_and_cannot_add_headers():
    practice = Practice()
    hostile = dict(
        event("e1", WEDNESDAY_10, name="Ana <script>alert(1)</script>\r\nBcc: victim@example.com",
              title="<script>steal()</script> #vip"),
        location='<img src=x onerror="alert(1)">',
    )
    practice.calendar.put(hostile, MONDAY)
    practice.engine.tick(MONDAY)
    [message] = practice.sent("booking_confirmation")
    assert message["Bcc"] is None and "\n" not in str(message["To"]) and "\r" not in str(message["To"])
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html and "<img" not in html and "&lt;img src=x" in html
    assert "steal()" not in html + text(message) + message["Subject"], "the event title never reaches the client"


def test_a_short_notice_cancellation_offers_the_slot_to_the_waitlist_without_naming_the_client():
    practice = Practice(mail={"waitlist": ["bo@example.com", "ana@example.com", "cy@example.com"],
                              "client_locales": {"cy@example.com": "da"}})
    practice.calendar.put(event("e1", WEDNESDAY_10), MONDAY)
    practice.calendar.put(event("e2", WEDNESDAY_10 + timedelta(days=3), client="dag@example.com", name="Dag Ruud"), MONDAY)
    practice.engine.tick(MONDAY)
    cancelled_at = WEDNESDAY_10 - timedelta(hours=20)
    practice.calendar.put(event("e1", WEDNESDAY_10, title="Massage #latecancel"), cancelled_at)
    practice.engine.tick(cancelled_at + timedelta(minutes=2))
    offers = practice.sent("slot_freed")
    assert sorted(m["To"].addresses[0].addr_spec for m in offers) == ["bo@example.com", "cy@example.com"]
    bo = next(m for m in offers if "bo@" in str(m["To"]))
    assert bo["Subject"] == "A time has become free: Wednesday, March 4, 2026 at 10:00\u202fAM"
    assert "https://example.com/book" in text(bo) and "first person to book" in text(bo)
    for message in offers:
        assert "Ana" not in text(message) + message.get_body(("html",)).get_content() and "ana@" not in text(message)
    cy = next(m for m in offers if "cy@" in str(m["To"]))
    assert cy["Content-Language"] == "da" and "Der er netop blevet en tid ledig" in text(cy)
    practice.engine.tick(cancelled_at + timedelta(hours=1))
    assert len(practice.sent("slot_freed")) == 2, "offered once"
    # Dag cancels with three days' notice: no rush, no offer.
    practice.calendar.put(event("e2", WEDNESDAY_10 + timedelta(days=3), client="dag@example.com", title="Massage #latecancel"),
                          cancelled_at + timedelta(hours=2))
    practice.engine.tick(cancelled_at + timedelta(hours=2))
    assert len(practice.sent("slot_freed")) == 2


def test_an_offer_still_unsent_when_the_slot_starts_is_dropped():
    practice = Practice(mail={"waitlist": ["bo@example.com"]})
    practice.calendar.put(event("e1", WEDNESDAY_10), MONDAY)
    practice.engine.tick(MONDAY)
    practice.calendar.put(event("e1", WEDNESDAY_10, title="Massage #latecancel"), WEDNESDAY_10 - timedelta(hours=3))
    practice.mailer.send = lambda message, action_id: (_ for _ in ()).throw(__import__("slotguard.domain.interfaces").interfaces.AdapterError("down"))
    practice.engine.tick(WEDNESDAY_10 - timedelta(hours=3))
    [offer] = [a for a in practice.ledger.actions() if a.template == "slot_freed"]
    assert offer.state is ActionState.PLANNED
    practice.engine.tick(WEDNESDAY_10 + timedelta(minutes=1))
    assert practice.ledger.action(offer.id).state is ActionState.CANCELLED


def test_the_refund_notice_reports_the_refunded_amount():
    practice = Practice()
    practice.calendar.put(event("e1", WEDNESDAY_10), MONDAY)
    practice.engine.tick(MONDAY)
    common = dict(calendar_id="primary", event_id="e1", client_email="ana@example.com", client_name="Ana Silva",
                  happening_key="manual", due_at=MONDAY, created_at=MONDAY, updated_at=MONDAY, appointment_start=WEDNESDAY_10)
    refund = Action(id="act_refund000000000000", kind=ActionKind.REFUND, state=ActionState.DONE, policy="no_show",
                    reason="refund", amount=Money(45000, "NOK"), executed_at=MONDAY, **common)
    notice = Action(id="act_notice000000000000", kind=ActionKind.EMAIL, state=ActionState.PLANNED, policy="no_show",
                    reason="tell", template="refund_notice", reports_on=refund.id, **common)
    practice.ledger.add_action(refund)
    message = compose_email(practice.settings, practice.engine.policies, practice.engine.renderer, practice.ledger, notice, MONDAY)
    assert message["Subject"] == "Your refund of NOK\u00a0450.00" and "NOK\u00a0450.00" in text(message)


def test_the_digest_goes_to_the_practitioner_once_a_day_at_the_configured_hour():
    practice = Practice(mail={"digest_hour": 7}, practice={"locale": "nb"})
    practice.calendar.put(event("e1", WEDNESDAY_10), MONDAY - timedelta(hours=2))
    practice.calendar.put(event("e2", WEDNESDAY_10 + timedelta(days=1), client="bo@example.com", name="Bo Ek"), MONDAY - timedelta(hours=2))
    practice.run(MONDAY - timedelta(hours=2), MONDAY + timedelta(days=2, hours=12))  # Monday 06:00 to Wednesday 20:00
    digests = [a for a in practice.ledger.actions() if a.template == "practitioner_digest"]
    days = {a.context["day"]: a for a in digests}
    assert sorted(days) == ["2026-03-02", "2026-03-03", "2026-03-04"]
    assert days["2026-03-02"].state is ActionState.CANCELLED and "nothing to report" in days["2026-03-02"].reason
    tuesday = days["2026-03-03"]
    assert tuesday.state is ActionState.DONE and tuesday.executed_at == datetime(2026, 3, 3, 7, 0, tzinfo=OSLO)
    assert tuesday.id == digest_action_id("2026-03-03")
    [message] = practice.sent("practitioner_digest")[:1]
    assert message["To"].addresses[0].addr_spec == "lena@example.com"
    body = text(message)
    assert message["Subject"] == "Dagsoversikt for Lena Berg Massage: tirsdag 3. mars 2026"
    assert "I morgen, onsdag 4. mars 2026 (1):" in body and "Ana Silva" in body


def test_the_digest_lists_fees_to_review_with_the_deadline_and_the_clients_to_call():
    practice = Practice(mail={"digest_hour": 7})
    practice.calendar.put(event("e1", WEDNESDAY_10), MONDAY)
    practice.engine.tick(MONDAY)
    practice.calendar.put(event("e1", WEDNESDAY_10, color="11"), WEDNESDAY_10 + timedelta(hours=20))
    practice.engine.tick(WEDNESDAY_10 + timedelta(hours=20))  # Thursday 06:00: marked as a no-show
    practice.engine.tick(WEDNESDAY_10 + timedelta(hours=21))  # Thursday 07:00: the digest
    [fee] = [a for a in practice.ledger.actions() if a.kind is ActionKind.CHARGE]
    [digest] = practice.sent("practitioner_digest")
    body = text(digest)
    assert f"python main.py waive {fee.id}" in body and "NOK\u00a0900.00 for a no-show" in body
    assert "Charged Mar 5, 2026 6:00\u202fPM unless you waive it" in body
    assert "Clients you may want to call (1):\n- Ana Silva (ana@example.com): did not come" in body
    practice.engine.tick(WEDNESDAY_10 + timedelta(hours=23))
    assert len(practice.sent("practitioner_digest")) == 1


def test_no_digest_when_turned_off():
    practice = Practice(mail={"digest_hour": -1})
    practice.calendar.put(event("e1", MONDAY + timedelta(days=1)), MONDAY)
    practice.run(MONDAY, MONDAY + timedelta(days=2))
    assert not [a for a in practice.ledger.actions() if a.template == "practitioner_digest"]


def test_bookings_found_at_the_first_look_get_one_introduction_per_client_in_their_language():
    """Issue 13, item 9: a calendar read for the first time holds bookings made before
    Slotguard watched it. Each client gets one introduction of the policy (the booking
    confirmation worded for an existing booking), for their earliest appointment ahead, never
    "thank you for booking"; a booking made afterwards gets the usual confirmation."""
    practice = Practice(mail={"client_locales": {"Bo@Example.com": "pl"}}, policies={"enabled": ["late_cancel", "no_show"]})
    # Ana's later appointment is read first: her introduction still goes with the earlier one.
    practice.calendar.put(event("e1", WEDNESDAY_10 + timedelta(days=7), description="lang: de"), MONDAY)
    practice.calendar.put(event("e0", WEDNESDAY_10, description="lang: de"), MONDAY)
    practice.calendar.put(event("e2", WEDNESDAY_10 + timedelta(hours=2), client="bo@example.com", name="Bo Ek"), MONDAY)
    practice.calendar.put(event("e3", WEDNESDAY_10 + timedelta(hours=4), client="cy@example.com", name="Cy Dahl"), MONDAY)
    practice.engine.tick(MONDAY)
    [ana] = practice.sent("booking_confirmation", "ana@example.com")
    [bo] = practice.sent("booking_confirmation", "bo@example.com")
    [cy] = practice.sent("booking_confirmation", "cy@example.com")
    assert ana["Subject"] == "Zu Ihrem Termin am Mittwoch, 4. März 2026"
    assert "versendt Terminbestätigungen und Erinnerungen ab jetzt per E-Mail" in text(ana) and "Vielen Dank" not in text(ana)
    assert "wysyła teraz potwierdzenia i przypomnienia" in text(bo) and "Dziękujemy za rezerwację" not in text(bo)
    assert cy["Subject"].startswith("About your") and "now sends confirmations and reminders" in text(cy)
    assert "Thank you for booking" not in text(cy) + cy.get_body(("html",)).get_content()
    assert "we ask for notice if you cannot come" in text(cy), "the introduction carries the cancellation policy"
    intros = [a for a in practice.ledger.actions() if a.template == "booking_confirmation"]
    assert {a.event_id: a.state.value for a in intros} == {"e1": "cancelled", "e0": "done", "e2": "done", "e3": "done"}
    assert all(a.context.get("existing_booking") for a in intros)
    # Once the calendar has been read, a new booking is thanked for as usual.
    practice.calendar.put(event("e4", WEDNESDAY_10 + timedelta(days=1), client="cy@example.com", name="Cy Dahl"), MONDAY + timedelta(hours=1))
    practice.engine.tick(MONDAY + timedelta(hours=1))
    assert "Thank you for booking" in text(practice.sent("booking_confirmation", "cy@example.com")[-1])
