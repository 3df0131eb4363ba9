"""The loop on hostile calendar input: a real SQLite ledger, a real outbox folder, an
in-memory calendar. Issue 11 as the practitioner meets it: only the practitioner's own
events can cause a fee or an email (items 1 and 2); a price line has a ceiling (item 3); a
cancellation time cannot lie in the future (item 4); one bad event never stops the others
(item 10); calendar text never reaches a client's email as markup, a paragraph of its own
or a link that is not https (items 17 and 20)."""

import dataclasses
import email
import email.policy
import logging
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from integration.memory import MemoryCalendar
from integration.outbox_dir import OutboxDirMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import NullWriteBack, SyncPage
from slotguard.domain.model import MONEY_KINDS, ActionKind, HappeningKind
from slotguard.policies.hookspecs import hookimpl
from slotguard.policies.info import Policy, PolicyInfo
from slotguard.policies.loading import _hooks_of, plugin_manager
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
WEDNESDAY_10 = datetime(2026, 3, 4, 10, 0, tzinfo=OSLO)
AFTER_REVIEW = WEDNESDAY_10 + timedelta(days=1)


class Loop:
    def __init__(self, tmp_path, sources_before=(), extra_policies=(), **sections):
        self.settings = settings(**sections)
        self.calendar = MemoryCalendar("primary")
        calendars = [*((source, NullWriteBack()) for source in sources_before), (self.calendar, NullWriteBack())]
        self.outbox = OutboxDirMailer(tmp_path / "outbox")
        self.ledger = Ledger(tmp_path / "ledger.sqlite3")
        engine = build_engine(
            self.settings, MONDAY, ledger=self.ledger,
            calendars=calendars,
            provider=RecordOnlyProvider(), mailer=self.outbox,
        )
        self.engine = dataclasses.replace(engine, policies=[*engine.policies, *extra_policies]) if extra_policies else engine

    def put(self, resource, at=MONDAY):
        self.calendar.put(resource, at)

    def tick(self, at):
        return self.engine.tick(at)

    def fees(self, event_id=None):
        return [a for a in self.ledger.actions(event_id=event_id) if a.kind in MONEY_KINDS]

    def messages(self):
        folder = self.outbox.folder
        return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                for path in sorted(folder.glob("*.eml"))] if folder.exists() else []

    def problems(self):
        return {p["item"]: p["message"] for p in self.ledger.problems()}


def invitation(event_id, organizer, *guests, title="Coffee? #noshow", color=None, description=""):
    """An event someone else organised, in the practitioner's calendar."""
    resource = event(event_id, WEDNESDAY_10, client=None, title=title, color=color, description=description)
    resource["organizer"] = {"email": organizer}
    resource["attendees"] = [
        {"email": organizer, "organizer": True, "responseStatus": "accepted"},
        {"email": "lena@example.com", "self": True, "responseStatus": "accepted"},
        *({"email": guest, "displayName": guest.split("@")[0].title(), "responseStatus": "accepted"} for guest in guests),
    ]
    return resource


# -- items 1 and 2: only the practitioner's events can carry a fee ------------------------------


def test_a_strangers_invitation_marked_no_show_charges_nobody_and_mails_nobody(tmp_path):
    loop = Loop(tmp_path, mail={"digest_hour": -1})
    loop.put(invitation("coffee", "stranger@x.example", "ana@example.com", color="11", description="price: 1500 NOK"))
    loop.tick(MONDAY)
    for hour in range(0, 48, 6):
        loop.tick(WEDNESDAY_10 + timedelta(hours=hour))
    assert loop.fees() == [] and loop.messages() == []
    assert "stranger@x.example" in loop.problems()["coffee"] and "nothing is sent or charged" in loop.problems()["coffee"]


def test_a_meeting_a_client_organised_bills_no_co_invitee(tmp_path):
    loop = Loop(tmp_path, mail={"digest_hour": -1})
    loop.put(invitation("meet", "ana@example.com", "bo@example.com", title="Catch-up #noshow"))
    loop.tick(MONDAY)
    loop.tick(AFTER_REVIEW)
    assert loop.fees() == [] and not [m for m in loop.messages() if "bo@example.com" in str(m["To"])]
    assert "ana@example.com" in loop.problems()["meet"]


def test_an_appointment_that_turns_foreign_gets_no_new_fee_nor_mail(tmp_path):
    loop = Loop(tmp_path, reminders={"offsets": ["24h"]}, mail={"digest_hour": -1})
    loop.put(event("e1", WEDNESDAY_10))
    loop.tick(MONDAY)
    sent_before = len(loop.messages())
    handed_over = invitation("e1", "stranger@x.example", "ana@example.com", title="Massage #noshow", color="11")
    loop.put(handed_over, MONDAY + timedelta(hours=1))
    loop.tick(MONDAY + timedelta(hours=1))
    for hour in range(0, 48, 3):
        loop.tick(WEDNESDAY_10 - timedelta(hours=24) + timedelta(hours=hour))
    assert loop.fees() == []
    assert len(loop.messages()) == sent_before, "no reminder for an event the practitioner no longer organises"
    kinds = [h["kind"] for h in loop.ledger.happenings_for("primary", "e1")]
    assert kinds == [HappeningKind.BOOKED.value], "time alone does not settle it either"
    assert "stranger@x.example" in loop.problems()["e1"]
    # Handed back to the practitioner, it is an appointment again and its mark counts.
    loop.put(event("e1", WEDNESDAY_10, color="11"), AFTER_REVIEW)
    loop.tick(AFTER_REVIEW)
    assert [f.kind for f in loop.fees()] == [ActionKind.CHARGE] and "e1" not in loop.problems()


def test_on_an_event_guests_may_modify_a_fee_tag_or_price_line_bills_nobody_but_a_colour_still_counts(tmp_path):
    # Google's "Modify event" guest permission lets the client edit the title and description
    # the practitioner sees: a #noshow or price: line there could be the client's (or a
    # co-invitee's) doing. A colour stays in the practitioner's own copy.
    loop = Loop(tmp_path, mail={"digest_hour": -1})
    tagged = event("tagged", WEDNESDAY_10, title="Massage #noshow") | {"guestsCanModify": True}
    priced = event("priced", WEDNESDAY_10, client="bo@example.com", description="price: 1900 NOK", color="11") | {"guestsCanModify": True}
    coloured = event("coloured", WEDNESDAY_10, client="cy@example.com", color="11") | {"guestsCanModify": True}
    for resource in (tagged, priced, coloured):
        loop.put(resource)
    loop.tick(MONDAY)
    loop.tick(AFTER_REVIEW)
    assert loop.fees("tagged") == [] and loop.fees("priced") == []
    assert "guests may modify this event" in loop.problems()["tagged"] and "no-show tag" in loop.problems()["tagged"]
    assert "price: line" in loop.problems()["priced"]
    [fee] = loop.fees("coloured")
    assert fee.kind is ActionKind.CHARGE and fee.amount.minor == 90000


# -- item 3: a price line has a ceiling ---------------------------------------------------------


def test_a_million_kroner_price_line_is_refused_and_nothing_is_billed(tmp_path):
    loop = Loop(tmp_path, payments={"max_single_charge": None})
    loop.put(event("e1", WEDNESDAY_10, description="price: 1000000 NOK", color="11"))
    loop.put(event("e2", WEDNESDAY_10 + timedelta(hours=2), client="bo@example.com", description="price: 1200 NOK", color="11"))
    loop.tick(AFTER_REVIEW)
    assert loop.fees("e1") == []
    assert "services.max_price" in loop.problems()["e1"]
    [fee] = loop.fees("e2")
    assert fee.amount.minor == 120000


# -- item 4: a cancellation time in the future ---------------------------------------------------


def test_a_cancelled_line_with_a_year_typo_bills_nothing_and_is_reported(tmp_path):
    loop = Loop(tmp_path, mail={"digest_hour": -1})
    loop.put(event("e1", WEDNESDAY_10))
    loop.tick(MONDAY)
    typo = "2027-03-04T09:00:00+01:00"  # meant 2026: "cancelled after the start" by a year
    loop.put(event("e1", WEDNESDAY_10, title="Massage #latecancel", description=f"cancelled: {typo}"), MONDAY + timedelta(hours=1))
    loop.tick(MONDAY + timedelta(hours=1))
    loop.tick(AFTER_REVIEW)
    assert loop.fees() == []
    assert "cancelled:" in loop.problems()["e1"]


# -- item 10: one failing event, calendar or step never stops the others ----------------------


@pytest.mark.parametrize("title, poison", [
    ("Massage #latecancel", "cancelled: 0001-01-01T00:00:00+01:00"),
    ("Massage #noshow", "price: 100000000000000000000000 NOK"),
])
def test_a_poison_line_is_a_problem_on_its_event_and_the_page_goes_on(tmp_path, title, poison):
    loop = Loop(tmp_path, payments={"max_single_charge": None})
    loop.put(event("good1", WEDNESDAY_10 - timedelta(hours=3), client="cy@example.com"))
    loop.put(event("bad", WEDNESDAY_10, title=title, description=poison))
    loop.put(event("good2", WEDNESDAY_10 + timedelta(hours=2), client="bo@example.com"))
    report = loop.tick(WEDNESDAY_10 + timedelta(hours=1))
    assert loop.ledger.tracked("primary", "good1") and loop.ledger.tracked("primary", "good2")
    assert loop.ledger.tracked("primary", "bad") is None and "bad" in loop.problems()
    assert any("bad" in problem for problem in report.problems)
    assert loop.ledger.sync_token("primary") is not None, "the page was committed"


class _Crashes:
    """A third-party policy with a bug that fires for one client."""

    @hookimpl
    def slotguard_propose(self, happening, appointment):
        if appointment.client.email == "bo@example.com":
            raise RuntimeError("policy bug")
        return []


def _crashing_policy() -> Policy:
    manager = plugin_manager()
    plugin = _Crashes()
    manager.register(plugin, name="crashes")
    return Policy(info=PolicyInfo(name="crashes", role="fee"), config=None, hooks=_hooks_of(manager, plugin))


def test_any_exception_while_processing_one_event_rolls_back_only_that_event(tmp_path):
    loop = Loop(tmp_path, extra_policies=[_crashing_policy()], mail={"digest_hour": -1})
    loop.put(event("ana", WEDNESDAY_10))
    loop.put(event("bo", WEDNESDAY_10 + timedelta(hours=2), client="bo@example.com"))
    loop.put(event("cy", WEDNESDAY_10 + timedelta(hours=4), client="cy@example.com"))
    report = loop.tick(MONDAY)
    assert loop.ledger.tracked("primary", "bo") is None, "its snapshot was rolled back with the rest of it"
    assert loop.ledger.happenings_for("primary", "bo") == [] and loop.ledger.actions(event_id="bo") == []
    assert "RuntimeError" in loop.problems()["bo"] and "policy bug" in loop.problems()["bo"]
    assert {m["To"].addresses[0].addr_spec for m in loop.messages()} == {"ana@example.com", "cy@example.com"}
    assert report.planned["email:planned"] == 2, "the rolled-back event's plans are not counted"


class _BrokenSource:
    """A calendar source with a bug: raises something that is not an AdapterError."""

    calendar_id = "broken"

    def pages(self, sync_token, now):
        raise KeyError("surprise")
        yield SyncPage(events=[], full=False, last=True)  # pragma: no cover


def test_a_calendar_that_raises_anything_is_reported_and_the_tick_goes_on(tmp_path):
    loop = Loop(tmp_path, sources_before=[_BrokenSource()], mail={"digest_hour": -1})
    loop.put(event("e1", WEDNESDAY_10))
    report = loop.tick(MONDAY)
    assert any("broken" in problem and "KeyError" in problem for problem in report.problems)
    assert [m["To"].addresses[0].addr_spec for m in loop.messages()] == ["ana@example.com"], "later calendars and phases ran"
    assert "KeyError" in {s["calendar_id"]: s["last_error"] for s in loop.ledger.sync_states()}["broken"]


def test_a_problem_clears_once_the_event_reads_again(tmp_path):
    loop = Loop(tmp_path, mail={"digest_hour": -1})
    loop.put(event("e1", WEDNESDAY_10, description="price: a lot"))
    loop.tick(MONDAY)
    assert "price" in loop.problems()["e1"] and loop.ledger.tracked("primary", "e1") is None
    loop.put(event("e1", WEDNESDAY_10, description="price: 1200 NOK"), MONDAY + timedelta(hours=1))
    loop.tick(MONDAY + timedelta(hours=1))
    assert loop.problems() == {} and loop.ledger.tracked("primary", "e1").appointment.price.minor == 120000


# -- item 17: calendar text in the client's emails ----------------------------------------------


PHISH = "Storgata 1\n\n\nIMPORTANT: you have an unpaid fee of 900 NOK.\r\nPay today at https://evil.example/pay\n\n"


def test_calendar_text_cannot_make_its_own_paragraph_or_link_in_client_emails(tmp_path):
    loop = Loop(tmp_path, reminders={"offsets": ["24h"]}, mail={"digest_hour": -1})
    loop.tick(MONDAY - timedelta(hours=1))  # Slotguard already watches the calendar: these are new bookings
    visit = event("visit", WEDNESDAY_10, name="Ana\n\nYour card will be charged")
    visit["location"] = PHISH
    online = event("online", WEDNESDAY_10 + timedelta(hours=2), client="bo@example.com", description="link: javascript:alert(1)")
    online["hangoutLink"] = "javascript:alert(2)"
    loop.put(visit)
    loop.put(online)
    loop.tick(MONDAY)
    assert "online" in loop.problems() and "link:" in loop.problems()["online"]
    online["description"] = ""
    loop.put(online, MONDAY + timedelta(hours=1))
    loop.tick(MONDAY + timedelta(hours=1))
    assert "online" not in loop.problems(), "fixed, the event reads again and its problem is gone"
    loop.tick(WEDNESDAY_10 - timedelta(hours=21))
    messages = loop.messages()
    templates = sorted(m["Subject"].split(":")[0] for m in messages)
    assert len(messages) == 4, templates  # a confirmation and a reminder each
    for message in messages:
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert not re.search(r"\n\s*\n\s*IMPORTANT", text), "a location never starts its own paragraph"
        assert not any(line.startswith("Your card will be charged") for line in text.splitlines())
        hrefs = re.findall(r'href="([^"]*)"', html)
        assert hrefs and all(href.startswith("https://") or href == "mailto:lena@example.com" for href in hrefs), hrefs
        assert "javascript:" not in html and "javascript:" not in text
    [to_ana] = [m for m in messages if "ana@example.com" in str(m["To"]) and "booked" in m["Subject"]]
    text = to_ana.get_body(("plain",)).get_content()
    assert "Place: Storgata 1 IMPORTANT: you have an unpaid fee of 900 NOK. Pay today at https://evil.example/pay" in text


# -- item 20: addresses with line breaks ----------------------------------------------------------


def test_an_attendee_address_with_line_breaks_is_never_stored_nor_logged_raw(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    loop = Loop(tmp_path, mail={"digest_hour": -1})
    bad = event("bad", WEDNESDAY_10, client="ana@example.com\r\nX-Injected: yes")
    other = event("other", WEDNESDAY_10 + timedelta(hours=2), client="bo@example.com")
    other["attendees"].append({"email": "cy@example.com\nX-Injected: yes", "responseStatus": "accepted"})
    loop.put(bad)
    loop.put(other)
    loop.tick(MONDAY)
    assert loop.ledger.tracked("primary", "bad") is None and "not an email address" in loop.problems()["bad"]
    assert loop.ledger.tracked("primary", "other").appointment.client.email == "bo@example.com"
    assert all("\n" not in record.getMessage() and "\r" not in record.getMessage() for record in caplog.records)
    stored = [*loop.ledger.db.execute("SELECT message FROM problems"), *loop.ledger.db.execute("SELECT snapshot FROM appointments")]
    assert stored and not [row[0] for row in stored if "\r" in row[0] or "\n" in row[0]]


def test_a_snapshot_kept_before_this_check_still_sends_no_script_link_nor_paragraph(tmp_path):
    """A ledger written by an earlier Slotguard may hold a raw location and link."""
    loop = Loop(tmp_path, reminders={"offsets": ["24h"]}, mail={"digest_hour": -1})
    loop.put(event("e1", WEDNESDAY_10))
    loop.tick(MONDAY)
    tracked = loop.ledger.tracked("primary", "e1")
    raw = dataclasses.replace(tracked.appointment, meeting_link="javascript:alert(1)", location=PHISH)
    with loop.ledger.transaction():
        loop.ledger.save_tracked(dataclasses.replace(tracked, appointment=raw))
    loop.tick(WEDNESDAY_10 - timedelta(hours=23))
    [reminder] = [m for m in loop.messages() if m["Subject"].startswith("Reminder")]
    text = reminder.get_body(("plain",)).get_content()
    html = reminder.get_body(("html",)).get_content()
    assert "javascript:" not in text + html and not re.search(r"\n\s*\n\s*IMPORTANT", text)
    ics = next(part for part in reminder.iter_attachments() if part.get_content_type() == "text/calendar").get_content()
    assert "javascript:" not in ics


# -- review findings: who the client is, HTML descriptions, guest-writable links -------------------


def to(loop, address):
    """The subjects of the emails sent to `address`, in order."""
    return [m["Subject"] for m in loop.messages() if address in str(m["To"])]


def guest_added(resource, guest="bo@example.com"):
    """`resource` after a guest (Google's default guestsCanInviteOthers) added someone, listed first."""
    resource["attendees"].insert(1, {"email": guest, "displayName": guest.split("@")[0].title(), "responseStatus": "needsAction"})
    return resource


def test_a_guest_added_to_a_clients_appointment_is_never_billed_and_the_practitioner_says_who_pays(tmp_path):
    loop = Loop(tmp_path, mail={"digest_hour": -1})
    loop.put(event("e1", WEDNESDAY_10))
    loop.tick(MONDAY)
    loop.put(guest_added(event("e1", WEDNESDAY_10, color="11")), MONDAY + timedelta(hours=30))
    loop.tick(AFTER_REVIEW)
    loop.tick(AFTER_REVIEW + timedelta(hours=13))
    assert "bo@example.com" not in {fee.client_email for fee in loop.fees("e1")}
    assert to(loop, "bo@example.com") == []
    assert "2 possible clients" in loop.problems()["e1"] and "email: bo@example.com" in loop.problems()["e1"]
    # The practitioner says who the client is: Ana's no-show fee, and still nothing for Bo.
    later = AFTER_REVIEW + timedelta(hours=14)
    loop.put(guest_added(event("e1", WEDNESDAY_10, color="11", description="email: ana@example.com")), later)
    loop.tick(later)
    loop.tick(later + timedelta(hours=13))
    assert "e1" not in loop.problems()
    [fee] = loop.fees("e1")
    assert fee.client_email == "ana@example.com" and fee.kind is ActionKind.CHARGE and fee.amount.minor == 90000
    assert to(loop, "bo@example.com") == []


def test_a_new_client_on_a_booking_is_a_new_booking_and_the_old_client_hears_no_more(tmp_path):
    loop = Loop(tmp_path, reminders={"offsets": ["24h"]}, mail={"digest_hour": -1})
    loop.tick(MONDAY - timedelta(hours=1))  # Slotguard already watches the calendar: Ana's is a new booking
    loop.put(event("e1", WEDNESDAY_10))
    loop.tick(MONDAY)
    # Ana's slot goes to Bo: the practitioner replaces the guest.
    loop.put(event("e1", WEDNESDAY_10, client="bo@example.com", name="Bo"), MONDAY + timedelta(hours=2))
    loop.tick(MONDAY + timedelta(hours=2))
    loop.tick(WEDNESDAY_10 - timedelta(hours=23))
    loop.put(event("e1", WEDNESDAY_10, client="bo@example.com", name="Bo", color="11"), WEDNESDAY_10 + timedelta(hours=2))
    loop.tick(WEDNESDAY_10 + timedelta(hours=2))
    loop.tick(AFTER_REVIEW)
    [to_ana] = to(loop, "ana@example.com")
    assert "booked" in to_ana, "Ana got her confirmation, then nothing: no reminder for Bo's slot, no fee notice"
    bo = to(loop, "bo@example.com")
    assert any("booked" in subject for subject in bo) and any(subject.startswith("Reminder") for subject in bo), bo
    assert [(fee.client_email, fee.kind) for fee in loop.fees("e1")] == [("bo@example.com", ActionKind.CHARGE)]
    kinds = [(h["kind"], h["client_email"]) for h in loop.ledger.happenings_for("primary", "e1")]
    assert kinds[:3] == [("booked", "ana@example.com"), ("cancelled_by_practitioner", "ana@example.com"),
                         ("booked", "bo@example.com")]


def test_a_new_client_after_a_no_show_leaves_the_fee_with_the_client_who_missed_it(tmp_path):
    loop = Loop(tmp_path, mail={"digest_hour": -1})
    after_session = WEDNESDAY_10 + timedelta(hours=2)
    loop.put(event("e1", WEDNESDAY_10))
    loop.tick(MONDAY)
    loop.put(event("e1", WEDNESDAY_10, color="11"), after_session)
    loop.tick(after_session)
    # The event is handed to Bo afterwards (reused, or the guest list edited): the tomato stays.
    loop.put(event("e1", WEDNESDAY_10, client="bo@example.com", name="Bo", color="11"), after_session + timedelta(hours=1))
    loop.tick(after_session + timedelta(hours=1))
    loop.tick(AFTER_REVIEW)
    [fee] = loop.fees("e1")
    assert fee.client_email == "ana@example.com" and fee.state.value == "done"
    assert to(loop, "bo@example.com") == [], "Bo is never told of, nor billed for, Ana's no-show"


@pytest.mark.parametrize("tag_removed_later", [False, True])
def test_a_slot_given_to_a_new_client_after_a_late_cancellation_keeps_the_late_fee(tmp_path, tag_removed_later):
    loop = Loop(tmp_path, mail={"digest_hour": -1})
    tuesday = MONDAY + timedelta(hours=30)
    loop.put(event("e1", WEDNESDAY_10))
    loop.tick(MONDAY)
    loop.put(event("e1", WEDNESDAY_10, title="Massage #latecancel"), tuesday)
    loop.tick(tuesday)
    # The practitioner gives the freed slot to Bo, in one edit or two.
    if tag_removed_later:
        loop.put(event("e1", WEDNESDAY_10, title="Massage #latecancel", client="bo@example.com", name="Bo"), tuesday + timedelta(hours=1))
        loop.tick(tuesday + timedelta(hours=1))
    loop.put(event("e1", WEDNESDAY_10, client="bo@example.com", name="Bo"), tuesday + timedelta(hours=2))
    loop.tick(tuesday + timedelta(hours=2))
    loop.tick(AFTER_REVIEW)
    [fee] = loop.fees("e1")
    assert fee.client_email == "ana@example.com" and fee.amount.minor == 45000 and fee.state.value == "done"
    assert any("booked" in subject for subject in to(loop, "bo@example.com"))
    kinds = [(h["kind"], h["client_email"]) for h in loop.ledger.happenings_for("primary", "e1")]
    assert ("attended", "bo@example.com") in kinds and not [k for k in kinds if k[1] == "bo@example.com" and k[0] == "waived"]


def test_a_price_line_after_an_html_line_break_sets_the_fee(tmp_path):
    loop = Loop(tmp_path, mail={"digest_hour": -1})
    description = "lang: de<br>price: 450 NOK"  # two lines, as Google Calendar's web editor stores them
    loop.put(event("e1", WEDNESDAY_10, description=description))
    loop.tick(MONDAY)
    loop.put(event("e1", WEDNESDAY_10, description=description, color="11"), WEDNESDAY_10 + timedelta(hours=2))
    loop.tick(AFTER_REVIEW)
    [fee] = loop.fees("e1")
    assert fee.amount.minor == 45000, f"a 450 NOK session was billed {fee.amount}"


def test_a_waive_tag_typed_after_a_note_of_an_older_slotguard_waives_the_fee(tmp_path):
    """The note on the event was written before Slotguard kept its text (or by hand from
    the digest); the practitioner types #waive after it, as the note says."""
    from slotguard.practitioner.notes import status_note

    loop = Loop(tmp_path, mail={"digest_hour": -1})
    after_session = WEDNESDAY_10 + timedelta(hours=2)
    loop.put(event("e1", WEDNESDAY_10, client=None, description="email: ana@example.com"))
    loop.tick(MONDAY)
    loop.put(event("e1", WEDNESDAY_10, client=None, description="email: ana@example.com", color="11"), after_session)
    loop.tick(after_session)
    _, note = status_note(loop.fees("e1"), loop.settings)
    assert note.endswith("unless you add #waive")
    edited = f"email: ana@example.com\n{note} #waive"
    loop.put(event("e1", WEDNESDAY_10, client=None, description=edited, color="11"), after_session + timedelta(hours=1))
    loop.tick(after_session + timedelta(hours=1))
    loop.tick(AFTER_REVIEW)
    [fee] = loop.fees("e1")
    assert fee.state.value == "waived", f"the fee was {fee.state.value}: the practitioner's #waive was not read"


def test_reminders_for_an_event_guests_may_modify_carry_no_link_a_guest_could_have_written(tmp_path):
    loop = Loop(tmp_path, reminders={"offsets": ["24h"]}, mail={"digest_hour": -1})
    guest_written = event("e1", WEDNESDAY_10) | {"guestsCanModify": True, "location": "https://pay-lena-massage.example/fee"}
    guest_written["conferenceData"] = {"entryPoints": [{"entryPointType": "video", "uri": "https://pay-lena-massage.example/join"}]}
    meet = event("e2", WEDNESDAY_10 + timedelta(hours=2), client="bo@example.com") | {
        "guestsCanModify": True, "location": "https://pay-lena-massage.example/fee", "hangoutLink": "https://meet.google.com/abc-defg-hij"}
    loop.put(guest_written)
    loop.put(meet)
    loop.tick(MONDAY)
    loop.tick(WEDNESDAY_10 - timedelta(hours=21))
    reminders = [m for m in loop.messages() if m["Subject"].startswith("Reminder")]
    assert len(reminders) == 2
    for message in loop.messages():
        body = message.get_body(("plain",)).get_content() + message.get_body(("html",)).get_content()
        assert "pay-lena-massage" not in body, message["Subject"]
    [to_bo] = [m for m in reminders if "bo@example.com" in str(m["To"])]
    assert "https://meet.google.com/abc-defg-hij" in to_bo.get_body(("plain",)).get_content()
