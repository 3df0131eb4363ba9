"""The daily digest's sections, gathered from the ledger as plain data (see
docs/templates.md, practitioner_digest): fees pending review, failed payments and actions,
receivables, collections, clients to call and to talk to, freed slots, tomorrow, tomorrow's
unconfirmed appointments and mail the inbox did not act on (slotguard/practitioner/digest_inbox.py),
problems.
Read only: slotguard/practitioner/digest.py plans the digest and adds these to its email.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from slotguard.collections.views import collections_view
from slotguard.config.schema import Settings
from slotguard.domain.durations import from_utc_text
from slotguard.domain.model import OPEN_STATES, OWED, Action, ActionKind, ActionState, HappeningKind
from slotguard.domain.money import Money
from slotguard.domain.payment_status import PaymentStatus
from slotguard.domain.plan import LATE_MARK, POLICY_UNTOLD
from slotguard.intake.tracker import Tracked
from slotguard.mail.context import service_label
from slotguard.payments.results import GAVE_UP_AFTER
from slotguard.policies.account import DEPOSIT, FEE, PREPAYMENT, TARGET, purpose_of
from slotguard.practitioner.digest_inbox import client_mail, refused_count, unconfirmed
from slotguard.practitioner.mark_privacy import digest_warning
from slotguard.store.ledger import Ledger

POLICY = "digest"  # the digest's own email actions carry this policy name
RECENT = timedelta(days=1)
FAILED_SHOWN_FOR = timedelta(days=7)
# Each makes the digest worth sending on its own (a note, `mark_privacy` or `refused`, never does).
SECTIONS = ("pending", "payment_failed", "failed", "receivables", "collections", "not_charged", "to_call", "talk_to", "freed",
            "tomorrow", "unconfirmed", "client_mail", "problems")
NOT_LIVE = (ActionState.WAIVED, ActionState.CANCELLED)  # the practitioner said no, or never in force
# What a policy may write in an action's context for the digest (docs/plugins.md, "Proposal context"):
NOTE = "practitioner_note"  # what the practitioner should read about the client
INCIDENTS = "incidents"  # beside a note: how many late cancellations or no-shows ...
WINDOW_DAYS = "window_days"  # ... within how many days, so each language can say it in its own words
# A record planned for a later time that keeps money for good then (a deposit kept when a
# rescheduling credit ends unused): listed as pending review until it is carried out.
PENDING_UNTIL_DUE = "pending_until_due"


def _recent_happenings(ledger: Ledger, kinds: tuple[HappeningKind, ...], since: datetime) -> list[dict[str, Any]]:
    return ledger.happenings_seen_since(kinds, since)


def _name_of(ledger: Ledger, calendar_id: str, event_id: str, fallback: str) -> str:
    tracked = ledger.tracked(calendar_id, event_id)
    return tracked.appointment.client.name if tracked and tracked.appointment.client.name else fallback


def _service(settings: Settings, key: str) -> str:
    return service_label(settings, key)


def _totals(amounts: list[Money]) -> list[Money]:
    by_currency: dict[str, Money] = {}
    for amount in amounts:
        by_currency[amount.currency] = by_currency[amount.currency] + amount if amount.currency in by_currency else amount
    return [by_currency[currency] for currency in sorted(by_currency)]


def _previous_digest_at(ledger: Ledger, day: str, now: datetime) -> datetime:
    """When the practitioner last had a digest before `day`: the time the last one was read
    from the ledger (sent, or found empty). What is newer is news. One that failed or is not
    sent yet does not count; without any (the first digest, or digests turned off), the last
    day."""
    read = [
        action.executed_at or action.created_at
        for action in ledger.actions(policy=POLICY, kinds=[ActionKind.EMAIL], states=[ActionState.DONE, ActionState.CANCELLED])
        if str(action.context.get("day", "")) < day
    ]
    return max(read) if read else now - RECENT


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _note_row(ledger: Ledger, action: Action) -> dict[str, Any]:
    """What a policy's `practitioner_note` says, as data each language can word: the counts
    the policy wrote beside it (`incidents` within `window_days`), whether to suggest ending
    the relationship, and what brought it up: a booking (a prepayment was asked) or the
    no-show or cancellation itself."""
    note = str(action.context.get(NOTE, "")).removeprefix(f"{action.client_email}: ")  # the digest names the client
    if purpose_of(action.kind, action.context) == PREPAYMENT:
        trigger = "booking"
    else:
        kinds = {row["key"]: row["kind"] for row in ledger.happenings_for(action.calendar_id, action.event_id)}
        trigger = kinds.get(action.happening_key, "")
    return {
        "note": note,
        "incidents": _number(action.context.get(INCIDENTS)),
        "days": _number(action.context.get(WINDOW_DAYS)),
        "suggest_ending": bool(action.context.get("suggest_ending")),
        "trigger": trigger,
        "start": action.appointment_start,
        "amount": action.amount if trigger == "booking" else None,
    }


def _noted(ledger: Ledger) -> dict[str, list[Action]]:
    """Per client, the actions carrying a `practitioner_note` that still stand (not waived,
    not cancelled), oldest first."""
    found: dict[str, list[Action]] = {}
    for action in ledger.actions(kinds=[kind for kind in ActionKind if kind is not ActionKind.EMAIL]):
        if action.context.get(NOTE) and action.state not in NOT_LIVE:
            found.setdefault(action.client_email, []).append(action)
    return found


def _talk_to(ledger: Ledger, noted: dict[str, list[Action]], since: datetime) -> list[dict[str, Any]]:
    """Each client with a note that is news once, with their most recent note. News: planned
    since the previous digest (the practitioner has not read it yet), or on an action still
    open (a fee or prepayment that can still be waived, so the conversation can still change
    it). Told once and settled, it is not repeated every morning."""
    rows = []
    for actions in noted.values():
        if not any(action.created_at > since or action.state in OPEN_STATES for action in actions):
            continue
        latest = actions[-1]
        rows.append({
            "client": latest.client_email,
            "name": latest.client_name or latest.client_email,
            "at": latest.created_at,
            **_note_row(ledger, latest),
        })
    rows.sort(key=lambda row: row["at"])
    return rows


def _not_charged(ledger: Ledger, since: datetime) -> list[dict[str, Any]]:
    """Fees planning let go or kept uncharged since the previous digest, oldest first: the
    client had not been told the policy (a kind warning went instead: "untold"), or the mark
    came more than `calendar.marks.honour_for` after the end ("late_mark", with the number of
    days and the fee's id for `main.py charge-now`). See slotguard/planning/fee_stands.py."""
    rows: list[dict[str, Any]] = []
    for action in ledger.actions(kinds=[ActionKind.WAIVE, ActionKind.CHARGE]):
        if action.created_at <= since or not action.amount:
            continue
        if action.kind is ActionKind.WAIVE and action.context.get(POLICY_UNTOLD):
            why, days = "untold", 0
        elif action.kind is ActionKind.CHARGE and action.state is ActionState.CANCELLED and action.context.get(LATE_MARK):
            hours = _number(action.context[LATE_MARK].get("hours_after_end")) or 0
            why, days = "late_mark", max(1, round(hours / 24))
        else:
            continue
        rows.append({
            "why": why, "id": action.id, "client": action.client_email, "name": action.client_name or action.client_email,
            "amount": action.amount, "start": action.appointment_start, "days": days, "at": action.created_at,
        })
    rows.sort(key=lambda row: row["at"])
    return rows


def money_ahead(ledger: Ledger, tracked: Tracked) -> dict[str, Any] | None:
    """The deposit or prepayment asked for this appointment and not paid yet: None when none
    was asked, or it is paid, held on the card, or paid by a credit."""
    appointment = tracked.appointment
    asked = [
        action
        for action in ledger.actions(calendar_id=appointment.calendar_id, event_id=appointment.event_id)
        if action.kind in (ActionKind.CHARGE, ActionKind.HOLD, ActionKind.CREDIT)
        and action.amount
        and purpose_of(action.kind, action.context) in (DEPOSIT, PREPAYMENT)
        and action.state not in NOT_LIVE
    ]
    for action in reversed(asked):  # the latest first: a moved hold replaces the earlier one
        if action.state in OPEN_STATES or action.state is ActionState.EXECUTING:
            status = "not_taken"
        elif action.state is ActionState.FAILED:
            status = "failed"
        elif action.kind is not ActionKind.CREDIT and action.context.get("payment_status") in OWED:
            status = str(action.context["payment_status"])
        else:
            continue
        return {"id": action.id, "purpose": purpose_of(action.kind, action.context), "amount": action.amount, "status": status}
    return None


def _tomorrow(
    settings: Settings, ledger: Ledger, start: datetime, end: datetime,
    owed_by_client: dict[str, list[Money]], noted: dict[str, list[Action]],
) -> tuple[list[dict[str, Any]], int]:
    """Tomorrow's appointments that need something from the practitioner, and how many
    appointments there are in all. The calendar already shows every appointment; listed here
    are those with a deposit or prepayment not paid, a client who owes fees, a client with
    repeated late cancellations or no-shows (a prepayment asked for this booking, or a note
    made since it was booked), or a first session (the client has attended none)."""
    rows, total = [], 0
    for tracked in ledger.upcoming(start, limit=500):
        appointment = tracked.appointment
        if appointment.start >= end:
            break
        total += 1
        email = appointment.client.email
        money = money_ahead(ledger, tracked)
        # The prepayment asked for this booking carries the note; a client who became a
        # repeat case after booking has a note newer than the booking (none asked for it).
        on_booking = [action for action in noted.get(email, []) if action.event_ref == appointment.ref]
        since_booked = [action for action in noted.get(email, []) if action.created_at >= tracked.first_seen]
        notes = on_booking or since_booked
        repeat = _note_row(ledger, notes[-1]) if notes else None
        owes = owed_by_client.get(email, [])
        first = ledger.history(email).attended == 0
        if not (money or repeat or owes or first):
            continue
        rows.append({
            "start": appointment.start,
            "end": appointment.end,
            "client": email,
            "name": appointment.client.name or email,
            "service": _service(settings, appointment.service),
            "price": appointment.price,
            "online": bool(appointment.meeting_link),
            "deposit": money,
            "owes": owes,
            "repeat": repeat,
            "first_visit": first,
        })
    return rows, total


def digest_details(settings: Settings, ledger: Ledger, now: datetime) -> dict[str, Any]:
    """The digest's sections as plain data (see docs/templates.md, practitioner_digest)."""
    zone = settings.zone
    local = now.astimezone(zone)
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    # Wall-clock arithmetic on a zoneinfo datetime: midnight stays midnight across DST.
    tomorrow = today + timedelta(days=1)
    after_tomorrow = tomorrow + timedelta(days=1)

    def fee_row(action: Action) -> dict[str, Any]:
        return {
            "id": action.id,
            "client": action.client_email,
            "name": action.client_name or action.client_email,
            "amount": action.amount,
            "policy": action.policy,
            "kind": action.kind.value,
            "appointment_start": action.appointment_start,
            "charge_at": action.due_at,
            "since": action.executed_at or action.updated_at,
            "payment_link": action.context.get("payment_link", ""),
            "purpose": purpose_of(action.kind, action.context),
            "paid_from": paid_from(action),
        }

    def paid_from(action: Action) -> str:
        """For a credit: what the client paid ahead that it keeps ("deposit", "prepayment")."""
        if action.kind is not ActionKind.CREDIT or not action.context.get(TARGET):
            return ""
        source = ledger.action(str(action.context[TARGET]))
        return purpose_of(source.kind, source.context) if source else ""

    money_kinds = [ActionKind.CHARGE, ActionKind.CAPTURE]
    # Waiting for review: fees and prepayments (charges, captures) and deposits kept for a fee
    # (credits); also records a policy planned for later and marked to be listed until then
    # (e.g. a deposit kept for good when a rescheduling credit ends unused).
    reviewed = ledger.actions(states=[ActionState.PENDING_REVIEW], kinds=[*money_kinds, ActionKind.CREDIT])
    ending = [a for a in ledger.actions(states=[ActionState.PLANNED], kinds=[ActionKind.CREDIT]) if a.context.get(PENDING_UNTIL_DUE)]
    pending = [fee_row(a) for a in reviewed + ending if a.amount]
    pending.sort(key=lambda row: row["charge_at"])
    done = [a for a in ledger.actions(states=[ActionState.DONE], kinds=money_kinds) if a.amount]
    done, collections = collections_view(ledger, settings, now, done)  # requests folded into their fee; balances
    payment_failed = [fee_row(a) for a in done if a.context.get("payment_status") == PaymentStatus.UNPAID]
    receivables = [fee_row(a) for a in done if a.context.get("payment_status") == PaymentStatus.RECEIVABLE]
    provider = "Stripe" if settings.payments.provider == "stripe" else settings.payments.provider
    failed = [
        {
            "id": a.id,
            "kind": a.kind.value,
            "template": a.template or "",
            "client": a.client_email,
            "amount": a.amount,
            "error": a.last_error,
            "at": a.updated_at,
            # A money action that could not reach the provider for its whole retry budget.
            "unreachable": bool(a.context.get(GAVE_UP_AFTER)),
            "tried_for": str(a.context.get(GAVE_UP_AFTER, "")),
            "provider": provider,
        }
        for a in ledger.actions(states=[ActionState.FAILED])
        if a.updated_at >= now - FAILED_SHOWN_FOR
    ]
    to_call = []
    for row in _recent_happenings(ledger, (HappeningKind.NO_SHOW, HappeningKind.CANCELLED_BY_CLIENT), now - RECENT):
        notice = from_utc_text(row["start_utc"]) - from_utc_text(row["at"])
        if row["kind"] == HappeningKind.CANCELLED_BY_CLIENT.value and notice > settings.mail.slot_freed_within:
            continue  # cancelled in good time: nothing to call about (the slot is under "freed")
        to_call.append({
            "client": row["client_email"],
            "name": _name_of(ledger, row["calendar_id"], row["event_id"], row["client_email"]),
            "kind": row["kind"],
            "start": from_utc_text(row["start_utc"]),
        })
    freed = []
    offers: dict[tuple[str, str], int] = {}
    for offer in ledger.actions(kinds=[ActionKind.EMAIL]):
        if offer.template == "slot_freed" and offer.state is ActionState.DONE:
            offers[(offer.calendar_id, offer.event_id)] = offers.get((offer.calendar_id, offer.event_id), 0) + 1
    kinds = (HappeningKind.CANCELLED_BY_CLIENT, HappeningKind.CANCELLED_BY_PRACTITIONER)
    for row in _recent_happenings(ledger, kinds, now - RECENT):
        start = from_utc_text(row["start_utc"])
        if start > now:
            tracked = ledger.tracked(row["calendar_id"], row["event_id"])
            freed.append({
                "start": start,
                "end": tracked.appointment.end if tracked else start,
                "service": _service(settings, tracked.appointment.service) if tracked else "",
                "by_client": row["kind"] == HappeningKind.CANCELLED_BY_CLIENT.value,
                "offered_to": offers.get((row["calendar_id"], row["event_id"]), 0),
            })
    noted = _noted(ledger)
    previous_digest = _previous_digest_at(ledger, local.date().isoformat(), now)
    talk_to = _talk_to(ledger, noted, previous_digest)
    owed: dict[str, list[Money]] = {}
    for row in payment_failed + receivables:
        if row["purpose"] == FEE:
            owed.setdefault(row["client"], []).append(row["amount"])
    owed_by_client = {client: _totals(amounts) for client, amounts in owed.items()}
    tomorrow_rows, tomorrow_total = _tomorrow(settings, ledger, tomorrow, after_tomorrow, owed_by_client, noted)
    problems = [{"where": f"{p['calendar_id']} {p['item']}", "message": p["message"]} for p in ledger.problems()]
    problems += [
        {"where": state["calendar_id"], "message": state["last_error"]}
        for state in ledger.sync_states()
        if state["last_error"]
    ]
    return {
        "date": today,
        "tomorrow": tomorrow_rows,
        "tomorrow_total": tomorrow_total,
        "tomorrow_date": tomorrow,
        "pending": pending,
        "payment_failed": payment_failed,
        "failed": failed,
        "receivables": receivables,
        "receivables_total": _totals([row["amount"] for row in receivables + payment_failed]),
        "collections": collections,
        "not_charged": _not_charged(ledger, previous_digest),
        "to_call": to_call,
        "talk_to": talk_to,
        "freed": freed,
        "problems": problems,
        # The inbox (slotguard/practitioner/digest_inbox.py): tomorrow's clients who did not
        # confirm, mail it did not act on, and a count of refused commands (one line).
        "unconfirmed": unconfirmed(settings, ledger, tomorrow, after_tomorrow),
        "client_mail": client_mail(settings, ledger, previous_digest),
        "refused": refused_count(settings, ledger, previous_digest),
        "review_hint": bool(pending),
        # One line, not a section: it never makes a quiet day's digest worth sending.
        "mark_privacy": digest_warning(settings, ledger, now),
    }
