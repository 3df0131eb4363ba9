"""What the practitioner reads in the morning digest, with the ledger built by the real engine
(an in-memory calendar and mailer, the record-only provider, hourly ticks): repeat cases to
talk to, told once; deposits kept for a fee or as a rescheduling credit, with when they become
final; tomorrow's appointments only when they need something; and no digest on a quiet day."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from integration.memory import MemoryCalendar, MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import ActionKind, ActionState
from slotguard.practitioner.digest import digest_action_id, digest_details
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
MON_10 = datetime(2026, 3, 2, 10, 0, tzinfo=OSLO)
DAY = timedelta(days=1)
NO_SHOW = "11"  # the tomato colour, marked as a no-show in the test config
TALK = "Clients to talk to about repeated late cancellations or no-shows"
REVIEW = "Fees and deposits waiting for your review"


class Practice:
    def __init__(self, **sections):
        sections["mail"] = {"digest_hour": 7, **sections.get("mail", {})}
        self.settings = settings(**sections)
        self.calendar = MemoryCalendar("primary")
        self.mailer = MemoryMailer()
        self.ledger = Ledger(":memory:")
        # Slotguard has watched the calendar before: every booking put in it is a new one.
        self.ledger.record_sync("primary", None, MONDAY - timedelta(days=7))
        self.engine = build_engine(
            self.settings, MONDAY, ledger=self.ledger, calendars=[(self.calendar, NullWriteBack())],
            provider=RecordOnlyProvider(), mailer=self.mailer,
        )
        self.now = MONDAY

    def put(self, resource, at):
        """Change the calendar at `at`, ticking every hour up to then (and at `at`)."""
        self.run_until(at)
        self.calendar.put(resource, at)
        self.engine.tick(at)

    def run_until(self, end):
        while self.now + timedelta(hours=1) <= end:
            self.now += timedelta(hours=1)
            self.engine.tick(self.now)
        self.now = max(self.now, end)

    def digest(self, day: str, part: str = "plain") -> str:
        """The text (or HTML) the practitioner received for `day` ("" when nothing was sent)."""
        self.run_until(datetime.fromisoformat(f"{day}T07:00:00").replace(tzinfo=OSLO))
        action = self.ledger.action(digest_action_id(day))
        assert action is not None, f"no digest planned for {day}"
        message = self.mailer.sent.get(action.id)
        return message.get_body((part,)).get_content() if message else ""


def section(text: str, heading: str) -> list[str]:
    """The lines of one section of the digest, heading first ([] when it is not there)."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(heading):
            found = []
            for line in lines[index:]:
                if not line.strip():
                    break
                found.append(line)
            return found
    return []


def repeat_practice(**repeat):
    return Practice(policies={
        "enabled": ["late_cancel", "no_show", "repeat_offender_prepay"],
        "repeat_offender_prepay": {"incidents": 2, **repeat},
    })


def test_a_client_reaching_the_repeat_threshold_is_in_the_talk_to_section_once_and_only_while_it_is_news():
    practice = repeat_practice()
    practice.put(event("ana-mon", MON_10), MONDAY)
    practice.put(event("ana-tue", MON_10 + DAY), MONDAY)
    practice.put(event("ana-mon", MON_10, color=NO_SHOW), MON_10 + timedelta(hours=2))
    assert section(practice.digest("2026-03-03"), TALK) == [], "one incident is not a pattern yet"
    practice.put(event("ana-tue", MON_10 + DAY, color=NO_SHOW), MON_10 + DAY + timedelta(hours=2))
    wednesday = practice.digest("2026-03-04")
    assert section(wednesday, TALK) == [
        f"{TALK} (1):",
        "- Ana Silva (ana@example.com): 2 late cancellations or no-shows in 180 days, the latest Mar 3, 2026 "
        "10:00\u202fAM (did not come); from now on bookings need full prepayment.",
    ]
    assert "ending the relationship" not in wednesday
    # Told on Wednesday and the fee has been charged since: not repeated on Thursday.
    thursday = practice.digest("2026-03-05")
    assert thursday, "the unpaid fees still make Thursday's digest"
    assert section(thursday, TALK) == []


def test_a_repeat_client_who_books_again_is_listed_once_with_the_latest_note_and_flagged_for_tomorrow():
    practice = repeat_practice(end_relationship_after=3)
    for day in range(3):
        practice.put(event(f"ana-{day}", MON_10 + day * DAY), MONDAY)
    for day in range(3):
        practice.put(event(f"ana-{day}", MON_10 + day * DAY, color=NO_SHOW), MON_10 + day * DAY + timedelta(hours=2))
    friday_10 = MON_10 + 4 * DAY
    practice.put(event("ana-fri", friday_10), MON_10 + 2 * DAY + timedelta(hours=4))  # Wednesday 14:00
    noted = [a for a in practice.ledger.actions(client_email="ana@example.com") if a.context.get("practitioner_note")]
    assert len(noted) >= 2, "the third no-show's fee and the new booking's prepayment both carry a note"
    thursday = practice.digest("2026-03-05")
    talk = section(thursday, TALK)
    assert talk == [
        f"{TALK} (1):",
        "- Ana Silva (ana@example.com): 3 late cancellations or no-shows in 180 days; new booking for Mar 6, 2026 "
        "10:00\u202fAM, prepayment of NOK\u00a0900.00 asked. Consider ending the relationship, kindly.",
    ]
    tomorrow = section(thursday, "Tomorrow, Friday, March 6, 2026")
    assert tomorrow == [
        "Tomorrow, Friday, March 6, 2026 (1):",
        # The prepayment was asked at once (a link the client pays) and is not paid yet;
        # Wednesday's no-show fee waits for 08:00 (its window ends in the client's quiet hours),
        # after this 07:00 digest, and 2 fees are owed.
        "- 10:00\u202fAM–11:00\u202fAM  Ana Silva, massage: first session; prepayment of NOK\u00a0900.00 not paid yet; "
        "owes NOK\u00a01,800.00 in unpaid fees; 3 late cancellations or no-shows in 180 days; "
        "consider ending the relationship, kindly",
    ]
    html = practice.digest("2026-03-05", part="html")
    assert f"{TALK} (1)</h3>" in html and "<strong>Consider ending the relationship, kindly.</strong>" in html
    assert "Ana Silva, massage: first session; prepayment of NOK\u00a0900.00 not paid yet;" in html, "HTML in step with the text"


def test_a_prepayment_is_asked_at_once_and_the_digest_lists_it_as_not_yet_paid_not_as_waiting_for_review():
    """Issue 13, item 4: a prepayment is a request the client pays (a link, never the saved
    card), so it does not wait for review: the morning after, it is listed as not yet paid,
    with the session it is for, and the client is among those to talk to."""
    practice = repeat_practice()
    practice.put(event("ana-mon", MON_10), MONDAY)
    practice.put(event("ana-tue", MON_10 + DAY), MONDAY)
    practice.put(event("ana-mon", MON_10, color=NO_SHOW), MON_10 + timedelta(hours=2))
    practice.put(event("ana-tue", MON_10 + DAY, color=NO_SHOW), MON_10 + DAY + timedelta(hours=2))
    tuesday_20 = MON_10 + DAY + timedelta(hours=10)
    practice.put(event("ana-sat", MON_10 + 5 * DAY), tuesday_20)
    [prepayment] = [a for a in practice.ledger.actions(kinds=[ActionKind.CHARGE]) if a.context.get("purpose") == "prepayment"]
    assert prepayment.executed_at == tuesday_20, "asked when booked, not after the review window"
    wednesday = practice.digest("2026-03-04")
    # Only Tuesday's no-show fee waits for review (its window ends in quiet hours: 08:00).
    review = section(wednesday, REVIEW)
    assert len([line for line in review if line.startswith("- ")]) == 1 and "prepayment" not in " ".join(review), review
    assert "- Ana Silva (ana@example.com): NOK\u00a0900.00 prepayment for the session on Mar 7, 2026 10:00\u202fAM, since Mar 3, 2026" in wednesday
    assert "new booking for Mar 7, 2026 10:00\u202fAM, prepayment of NOK\u00a0900.00 asked." in " ".join(section(wednesday, TALK))


def deposit_practice(**sections):
    policies = {"enabled": ["deposit", "late_cancel", "no_show"], "deposit": {"amount": "50%"}}
    return Practice(policies={**policies, **sections.pop("policies", {})}, **sections)


def test_a_deposit_kept_for_a_no_show_waits_for_review_with_its_deadline_and_the_waive_tag_gives_it_back():
    practice = deposit_practice(payments={"review_window": "36h"})
    wednesday_10 = MON_10 + 2 * DAY
    practice.put(event("ana", wednesday_10), MONDAY)
    practice.put(event("ana", wednesday_10, color=NO_SHOW), wednesday_10 + timedelta(hours=2))
    [kept] = practice.ledger.actions(kinds=[ActionKind.CREDIT], states=[ActionState.PENDING_REVIEW])
    assert kept.due_at == datetime(2026, 3, 6, 8, 0, tzinfo=OSLO)  # the window ends at midnight: kept in the morning
    review = section(practice.digest("2026-03-05"), REVIEW)
    assert (
        "- Ana Silva (ana@example.com): NOK\u00a0450.00 of the deposit kept for a no-show on Mar 4, 2026 "
        "10:00\u202fAM. Kept for good Mar 6, 2026 8:00\u202fAM unless you waive it: add #waive to the event, "
        "and the deposit is given back."
    ) in review
    assert any("NOK\u00a0450.00 for a no-show" in line for line in review), "the rest of the fee, charged"
    # What the digest promises: the waive tag waives the kept deposit and gives the deposit back.
    practice.put(event("ana", wednesday_10, color=NO_SHOW, title="Massage #waive"), practice.now + timedelta(hours=1))
    practice.run_until(practice.now + timedelta(hours=1))
    assert practice.ledger.action(kept.id).state is ActionState.WAIVED
    refunds = [a for a in practice.ledger.actions(kinds=[ActionKind.REFUND]) if a.context.get("purpose") == "deposit_return"]
    assert [(a.amount.minor, a.state) for a in refunds] == [(45000, ActionState.DONE)]


def test_a_deposit_kept_as_a_rescheduling_credit_shows_when_it_is_kept_for_good():
    practice = deposit_practice(policies={
        "enabled": ["deposit", "reschedule_credit", "late_cancel", "no_show"],
        "reschedule_credit": {"if_not_rebooked": "keep"},
    })
    saturday_10 = MON_10 + 5 * DAY
    practice.put(event("bo", saturday_10, client="bo@example.com", name="Bo Ek"), MONDAY)
    practice.put(event("bo", saturday_10, client="bo@example.com", name="Bo Ek", response="declined"), MON_10 + 2 * DAY)
    review = section(practice.digest("2026-03-05"), REVIEW)
    assert (
        "- Bo Ek (bo@example.com): NOK\u00a0450.00 deposit held as a credit after a cancellation in good time "
        "(the appointment on Mar 7, 2026 10:00\u202fAM). Kept for good Mar 10, 2026 10:00\u202fAM if the client "
        "has not booked again by then."
    ) in review


def test_tomorrow_lists_only_the_appointments_that_need_something_and_counts_the_others():
    practice = Practice()
    wednesday_10 = MON_10 + 2 * DAY
    practice.put(event("ana-mon", MON_10), MONDAY)
    practice.put(event("cy-mon", MON_10 + timedelta(hours=4), client="cy@example.com", name="Cy Dahl"), MONDAY)
    practice.put(event("ana-wed", wednesday_10), MONDAY)
    practice.put(event("bo-wed", wednesday_10 + timedelta(hours=2), client="bo@example.com", name="Bo Ek"), MONDAY)
    practice.put(event("cy-wed", wednesday_10 + timedelta(hours=4), client="cy@example.com", name="Cy Dahl"), MONDAY)
    late = event("cy-mon", MON_10 + timedelta(hours=4), client="cy@example.com", name="Cy Dahl", title="Massage #latecancel")
    practice.put(late, MON_10 - timedelta(hours=2))  # 6 hours ahead: half the price, charged at 20:00
    tuesday = practice.digest("2026-03-03")
    assert section(tuesday, "Tomorrow, Wednesday, March 4, 2026") == [
        "Tomorrow, Wednesday, March 4, 2026 (2):",
        "- 12:00\u202fPM–1:00\u202fPM  Bo Ek, massage: first session",
        "- 2:00\u202fPM–3:00\u202fPM  Cy Dahl, massage: first session; owes NOK\u00a0450.00 in unpaid fees",
        "Other appointments tomorrow, with nothing to do: 1.",
    ]
    assert "Ana Silva" not in "\n".join(section(tuesday, "Tomorrow")), "Ana came on Monday and owes nothing"


def test_an_unpaid_deposit_puts_a_returning_client_on_tomorrows_list_until_it_is_paid():
    practice = deposit_practice()
    practice.put(event("ana-mon", MON_10), MONDAY)
    practice.put(event("ana-wed", MON_10 + 2 * DAY), MONDAY + timedelta(hours=6))  # after Monday's session
    [deposit] = [a for a in practice.ledger.actions(kinds=[ActionKind.CHARGE], event_id="ana-wed")]
    assert deposit.context["payment_status"] == "receivable"
    tuesday = practice.digest("2026-03-03")
    assert section(tuesday, "Tomorrow, Wednesday, March 4, 2026") == [
        "Tomorrow, Wednesday, March 4, 2026 (1):",
        "- 10:00\u202fAM–11:00\u202fAM  Ana Silva, massage: deposit of NOK\u00a0450.00 not paid yet",
    ]
    practice.ledger.mark_paid(deposit.id, practice.now, "paid in cash")
    assert digest_details(practice.settings, practice.ledger, practice.now)["tomorrow"] == []


def test_a_quiet_day_with_only_ordinary_appointments_tomorrow_sends_nothing():
    practice = Practice()
    practice.put(event("ana-mon", MON_10), MONDAY)
    practice.put(event("ana-wed", MON_10 + 2 * DAY), MONDAY + timedelta(hours=6))
    assert practice.digest("2026-03-03") == ""
    tuesday = practice.ledger.action(digest_action_id("2026-03-03"))
    assert tuesday.state is ActionState.CANCELLED and "nothing to report" in tuesday.reason
    assert not practice.mailer.sent.get(tuesday.id)
    # A new client booking for tomorrow is something to prepare for: that digest is sent.
    practice.put(event("bo-thu", MON_10 + 3 * DAY, client="bo@example.com", name="Bo Ek"), MON_10 + DAY)
    wednesday = practice.digest("2026-03-04")
    assert "Bo Ek, massage: first session" in wednesday and "Ana Silva" not in wednesday


def test_only_short_notice_cancellations_are_among_the_clients_to_call():
    """A client who cancelled days ahead needs no call (the freed slot is listed elsewhere);
    one who cancelled the same morning does."""
    practice = Practice()
    wed_10 = MON_10 + 2 * DAY
    practice.put(event("bo-fri", MON_10 + 4 * DAY, client="bo@example.com", name="Bo Ek"), MONDAY)
    practice.put(event("cy-wed", wed_10, client="cy@example.com", name="Cy Dahl"), MONDAY)
    # The client declines the invitation: their cancellation (deleting the event would be yours).
    practice.put(event("bo-fri", MON_10 + 4 * DAY, client="bo@example.com", name="Bo Ek", response="declined"),
                 MON_10 + DAY)  # 72 hours ahead
    practice.put(event("cy-wed", wed_10, client="cy@example.com", name="Cy Dahl", response="declined"),
                 wed_10 - timedelta(hours=5))  # 5 hours ahead
    wednesday = section(practice.digest("2026-03-04"), "Clients you may want to call")  # both seen in the last day
    assert not any("Bo Ek" in line for line in wednesday), wednesday
    assert any("Cy Dahl" in line and "short notice" in line for line in wednesday), wednesday
