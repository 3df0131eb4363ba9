"""The practitioner's daily digest: what needs a look today, in one email.

Once per local day, at `mail.digest_hour`, `plan_digest` stores one email action with an id
derived from the date (so a restart, a second tick or a replay never plans it twice). Its
content is read from the ledger when it is sent, so it is current:

- fees and deposits pending review: fees and prepayments with the time they will be charged,
  deposits kept for a fee with the time they are kept for good (all unless waived), and
  deposits kept as a rescheduling credit with the time they are kept if not used;
- failed payments (the client has to pay through a link) and actions that failed (money
  actions that could not reach Stripe for their whole retry budget, `payments.retry_for`,
  with the `main.py retry` command);
- receivables not yet paid;
- clients to call: no-shows and client cancellations at short notice (within
  `mail.slot_freed_within` of the start, as for waitlist offers) seen in the last day;
- clients to talk to: the `practitioner_note` a policy left (repeated late cancellations or
  no-shows), once per client, while it is news: planned since the previous digest, or on an
  action still open;
- freed slots: cancellations in the last day of appointments still ahead;
- tomorrow: only the appointments that need something from the practitioner (a deposit or
  prepayment not paid, unpaid fees, repeated late cancellations or no-shows, a first session);
- problems: calendar events that cannot be read, calendars that fail to sync;
- one line when fee marks are tags only and clients are invited to their appointments, so
  they can read the tags (slotguard/intake/mark_privacy.py); it never makes a digest worth sending.

A day with nothing to report is recorded as a cancelled digest action ("nothing to report")
and sends nothing. The digest is the one message that shows action ids, for `main.py waive`.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

from slotguard.config.schema import Settings
from slotguard.collections.ladder import collections_view
from slotguard.domain.durations import from_utc_text, to_utc_text
from slotguard.store.ledger import Ledger
from slotguard.intake.mark_privacy import digest_warning
from slotguard.mail.messages import DIGEST_TEMPLATE
from slotguard.domain.model import OPEN_STATES, OWED, Action, ActionKind, ActionState, ActionSubject, HappeningKind, action_id_for, new_action
from slotguard.domain.money import Money
from slotguard.payments.results import GAVE_UP_AFTER
from slotguard.policies.loading import DEPOSIT, FEE, PREPAYMENT, TARGET, purpose_of
from slotguard.intake.tracker import Tracked

log = logging.getLogger("slotguard.digest")

POLICY = "digest"
CALENDAR_ID = "practice"
RECENT = timedelta(days=1)
FAILED_SHOWN_FOR = timedelta(days=7)
SECTIONS = ("pending", "payment_failed", "failed", "receivables", "collections", "to_call", "talk_to", "freed", "tomorrow", "problems")
NOTE = "practitioner_note"  # what a policy wants the practitioner to read (docs/plugins.md)
# The counts in repeat_offender_prepay's note ("ana@example.com: 3 late cancellations or
# no-shows in 180 days; ..."), so each language can say it in its own words.
NOTE_COUNTS = re.compile(r"(\d+) late cancellations or no-shows in (\d+) days")
NOT_LIVE = (ActionState.WAIVED, ActionState.CANCELLED)  # the practitioner said no, or never in force
# reschedule_credit's record that keeps the deposit when the credit ends unused (planned for
# the credit's end, so still open until then).
CREDIT_ENDS_KEPT = "credit_expired"


def digest_action_id(day: str) -> str:
    return action_id_for(f"digest/{day}", POLICY, ActionKind.EMAIL.value, day)


def plan_digest(settings: Settings, ledger: Ledger, now: datetime) -> Action | None:
    """Store today's digest action once the local hour `mail.digest_hour` has come; return
    it when newly stored (None: disabled, too early, or already planned today)."""
    hour = settings.mail.digest_hour
    if hour < 0:
        return None
    local = now.astimezone(settings.zone)
    due = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if local < due:
        return None
    day = local.date().isoformat()
    action_id = digest_action_id(day)
    if ledger.action(action_id) is not None:
        return None
    details = digest_details(settings, ledger, now)
    empty = not any(details[section] for section in SECTIONS)
    action = new_action(
        ActionSubject(CALENDAR_ID, "", settings.practice.email, settings.practice.name),
        ActionKind.EMAIL, POLICY, f"daily digest for {day}" + ("; nothing to report" if empty else ""),
        key=f"digest/{day}", action_id=action_id, now=now,
        state=ActionState.CANCELLED if empty else ActionState.PLANNED, template=DIGEST_TEMPLATE, context={"day": day},
    )
    with ledger.transaction():
        added = ledger.add_action(action)
    if added:
        log.info("planned action=%s kind=email digest=%s state=%s", action.id, day, action.state.value)
    return action if added else None


def _recent_happenings(ledger: Ledger, kinds: tuple[HappeningKind, ...], since: datetime) -> list[dict[str, Any]]:
    # Read-only; a candidate for a Ledger method (happenings seen since a time).
    marks = ",".join("?" * len(kinds))
    rows = ledger.db.execute(
        f"SELECT kind, calendar_id, event_id, client_email, start_utc, at, seen_at FROM happenings "
        f"WHERE kind IN ({marks}) AND seen_at >= ? ORDER BY seq",
        [kind.value for kind in kinds] + [to_utc_text(since)],
    )
    return [dict(row) for row in rows]


def _name_of(ledger: Ledger, calendar_id: str, event_id: str, fallback: str) -> str:
    tracked = ledger.tracked(calendar_id, event_id)
    return tracked.appointment.client.name if tracked and tracked.appointment.client.name else fallback


def _service(settings: Settings, key: str) -> str:
    service = settings.services.get(key)
    return service.label if service and service.label else ""


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


def _note_row(ledger: Ledger, action: Action) -> dict[str, Any]:
    """What a policy's `practitioner_note` says, as data each language can word: the counts
    (when the note has them), whether to suggest ending the relationship, and what brought
    it up: a booking (a prepayment was asked) or the no-show or cancellation itself."""
    note = str(action.context.get(NOTE, "")).removeprefix(f"{action.client_email}: ")  # the digest names the client
    counts = NOTE_COUNTS.search(note)
    incidents = action.context.get("incidents")
    if purpose_of(action.kind, action.context) == PREPAYMENT:
        trigger = "booking"
    else:
        kinds = {row["key"]: row["kind"] for row in ledger.happenings_for(action.calendar_id, action.event_id)}
        trigger = kinds.get(action.happening_key, "")
    return {
        "note": note,
        "incidents": int(counts.group(1)) if counts else (int(incidents) if isinstance(incidents, int) else None),
        "days": int(counts.group(2)) if counts else None,
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


def _money_ahead(ledger: Ledger, tracked: Tracked) -> dict[str, Any] | None:
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
        money = _money_ahead(ledger, tracked)
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
    # (credits); also deposits kept as a rescheduling credit, kept for good at the credit's end.
    reviewed = ledger.actions(states=[ActionState.PENDING_REVIEW], kinds=[*money_kinds, ActionKind.CREDIT])
    ending = [
        a for a in ledger.actions(states=[ActionState.PLANNED], kinds=[ActionKind.CREDIT])
        if purpose_of(a.kind, a.context) == CREDIT_ENDS_KEPT
    ]
    pending = [fee_row(a) for a in reviewed + ending if a.amount]
    pending.sort(key=lambda row: row["charge_at"])
    done = [a for a in ledger.actions(states=[ActionState.DONE], kinds=money_kinds) if a.amount]
    done, collections = collections_view(ledger, settings, now, done)  # requests folded into their fee; balances
    payment_failed = [fee_row(a) for a in done if a.context.get("payment_status") == "unpaid"]
    receivables = [fee_row(a) for a in done if a.context.get("payment_status") == "receivable"]
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
    offers = {}
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
    talk_to = _talk_to(ledger, noted, _previous_digest_at(ledger, local.date().isoformat(), now))
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
        "to_call": to_call,
        "talk_to": talk_to,
        "freed": freed,
        "problems": problems,
        "review_hint": bool(pending),
        # One line, not a section: it never makes a quiet day's digest worth sending.
        "mark_privacy": digest_warning(settings, ledger, now),
    }


def digest_context(settings: Settings, ledger: Ledger, now: datetime) -> dict[str, Any]:
    """What the `practitioner_digest` template gets: practice, client (the practitioner),
    details (the sections), payments."""
    from slotguard.mail.context import practice_context

    name = settings.practice.name
    return {
        "practice": practice_context(settings),
        "client": {"name": name, "first_name": name.split()[0] if name else "", "email": settings.practice.email},
        "details": digest_details(settings, ledger, now),
        "payments": {"provider": settings.payments.provider},
    }


def sample_digest_details(settings: Settings) -> dict[str, Any]:
    """A digest with something in every section, for checking and previewing the template."""
    zone = settings.zone
    today = datetime(2026, 3, 4, tzinfo=zone)
    tomorrow = datetime(2026, 3, 5, tzinfo=zone)
    price = settings.services["default"].price
    half = price.percent(50)
    label = _service(settings, "default")
    return {
        "date": today,
        "tomorrow_date": tomorrow,
        "pending": [
            {
                "id": "act_0a1b2c3d4e5f60718293", "client": "bo@example.com", "name": "Bo Ek", "amount": price,
                "policy": "no_show", "kind": "charge", "appointment_start": today - timedelta(hours=14),
                "charge_at": today + timedelta(hours=21), "since": today, "payment_link": "", "purpose": "fee", "paid_from": "",
            },
            {
                "id": "act_7182930415263748596a", "client": "hal@example.com", "name": "Hal Berg", "amount": half,
                "policy": "late_cancel", "kind": "credit", "appointment_start": today - timedelta(hours=20),
                "charge_at": today + timedelta(hours=22), "since": today, "payment_link": "", "purpose": "fee", "paid_from": "deposit",
            },
            {
                "id": "act_8293041526374859607b", "client": "ivy@example.com", "name": "Ivy Nes", "amount": price,
                "policy": "repeat_offender_prepay", "kind": "charge", "appointment_start": today + timedelta(days=6, hours=10),
                "charge_at": today + timedelta(hours=23), "since": today, "payment_link": "", "purpose": "prepayment", "paid_from": "",
            },
            {
                "id": "act_930415263748596071c8", "client": "jon@example.com", "name": "Jon Lie", "amount": half,
                "policy": "reschedule_credit", "kind": "credit", "appointment_start": today + timedelta(days=1, hours=14),
                "charge_at": today + timedelta(days=4, hours=14), "since": today, "payment_link": "", "purpose": "credit_expired",
                "paid_from": "deposit",
            },
        ],
        "payment_failed": [{
            "id": "act_1b2c3d4e5f6071829304", "client": "cy@example.com", "name": "Cy Dahl", "amount": half,
            "policy": "late_cancel", "kind": "charge", "appointment_start": today - timedelta(days=3),
            "charge_at": today - timedelta(days=2), "since": today - timedelta(days=2),
            "payment_link": "https://pay.example.com/p/sample", "purpose": "fee", "paid_from": "",
        }],
        "failed": [
            {
                "id": "act_2c3d4e5f607182930415", "kind": "email", "template": "reminder", "client": "dag@example.com",
                "amount": None, "error": "550 mailbox unavailable", "at": today - timedelta(hours=3),
                "unreachable": False, "tried_for": "", "provider": "Stripe",
            },
            {
                "id": "act_e4859607182930415263", "kind": "charge", "template": "", "client": "bo@example.com",
                "amount": price, "error": "could not reach Stripe (payment intents); will retry", "at": today - timedelta(hours=2),
                "unreachable": True, "tried_for": "24h", "provider": "Stripe",
            },
        ],
        "receivables": [
            {
                "id": "act_3d4e5f60718293041526", "client": "eva@example.com", "name": "Eva Lund", "amount": half,
                "policy": "late_cancel", "kind": "charge", "appointment_start": today - timedelta(days=9),
                "charge_at": today - timedelta(days=8), "since": today - timedelta(days=8), "payment_link": "",
                "purpose": "fee", "paid_from": "",
            },
            {
                "id": "act_a04152637485960718d9", "client": "ana@example.com", "name": "Ana Silva", "amount": half,
                "policy": "deposit", "kind": "charge", "appointment_start": tomorrow + timedelta(hours=9),
                "charge_at": today - timedelta(days=3), "since": today - timedelta(days=3), "payment_link": "",
                "purpose": "deposit", "paid_from": "",
            },
        ],
        "receivables_total": [half + half + half],
        "collections": [
            {"id": "act_4e5f6071829304152637", "client": "fay@example.com", "name": "Fay Moe", "policy": "no_show", "amount": price,
             "balance": price, "paid": price - price, "state": "referred", "step": 4, "steps": 4, "plan_paid": 0, "plan_of": 0,
             "appointment_start": today - timedelta(days=50), "since": today - timedelta(days=49), "next_at": None},
            {"id": "act_5f607182930415263748", "client": "eva@example.com", "name": "Eva Lund", "policy": "late_cancel", "amount": half,
             "balance": half.percent(50), "paid": half.percent(50), "state": "plan", "step": 3, "steps": 4, "plan_paid": 1, "plan_of": 2,
             "appointment_start": today - timedelta(days=40), "since": today - timedelta(days=39), "next_at": None},
            {"id": "act_6071829304152637485a", "client": "gus@example.com", "name": "Gus Holm", "policy": "no_show", "amount": price,
             "balance": price, "paid": price - price, "state": "owed", "step": 1, "steps": 4, "plan_paid": 0, "plan_of": 0,
             "appointment_start": today - timedelta(days=6), "since": today - timedelta(days=5), "next_at": today + timedelta(days=9)},
        ],
        "to_call": [{"client": "bo@example.com", "name": "Bo Ek", "kind": "no_show", "start": today - timedelta(hours=14)}],
        "talk_to": [
            {"client": "bo@example.com", "name": "Bo Ek", "at": today - timedelta(hours=13), "trigger": "no_show",
             "start": today - timedelta(hours=14), "amount": None, "incidents": 3, "days": 180, "suggest_ending": False,
             "note": "3 late cancellations or no-shows in 180 days; bookings need full prepayment"},
            {"client": "ivy@example.com", "name": "Ivy Nes", "at": today - timedelta(hours=2), "trigger": "booking",
             "start": today + timedelta(days=6, hours=10), "amount": price, "incidents": 5, "days": 180, "suggest_ending": True,
             "note": "5 late cancellations or no-shows in 180 days; bookings need full prepayment; "
                     "consider ending the relationship, kindly"},
            {"client": "kim@example.com", "name": "Kim Ro", "at": today - timedelta(hours=1), "trigger": "",
             "start": None, "amount": None, "incidents": None, "days": None, "suggest_ending": False,
             "note": "always books the last slot of the day and comes late"},
        ],
        "freed": [{
            "start": today + timedelta(hours=15), "end": today + timedelta(hours=16), "service": label,
            "by_client": True, "offered_to": 3,
        }],
        "tomorrow": [
            {
                "start": tomorrow + timedelta(hours=9), "end": tomorrow + timedelta(hours=10), "client": "ana@example.com",
                "name": "Ana Silva", "service": label, "price": price, "online": True, "first_visit": True, "owes": [], "repeat": None,
                "deposit": {"id": "act_a04152637485960718d9", "purpose": "deposit", "amount": half, "status": "receivable"},
            },
            {
                "start": tomorrow + timedelta(hours=11), "end": tomorrow + timedelta(hours=12), "client": "eva@example.com",
                "name": "Eva Lund", "service": label, "price": price, "online": False, "first_visit": False, "owes": [half],
                "repeat": None, "deposit": None,
            },
            {
                "start": tomorrow + timedelta(hours=13), "end": tomorrow + timedelta(hours=14), "client": "lea@example.com",
                "name": "Lea Dal", "service": "", "price": price, "online": False, "first_visit": False, "owes": [],
                "repeat": {"note": "4 late cancellations or no-shows in 180 days; bookings need full prepayment",
                           "incidents": 4, "days": 180, "suggest_ending": True, "trigger": "booking",
                           "start": tomorrow + timedelta(hours=13), "amount": price},
                "deposit": {"id": "act_b1526374859607182930", "purpose": "prepayment", "amount": price, "status": "unpaid"},
            },
            {
                "start": tomorrow + timedelta(hours=15), "end": tomorrow + timedelta(hours=16), "client": "max@example.com",
                "name": "Max Vik", "service": label, "price": price, "online": False, "first_visit": False, "owes": [],
                "repeat": {"note": "asked to talk about the late cancellations", "incidents": None, "days": None, "suggest_ending": False,
                           "trigger": "", "start": None, "amount": None},
                "deposit": {"id": "act_c2637485960718293041", "purpose": "deposit", "amount": half, "status": "failed"},
            },
            {
                "start": tomorrow + timedelta(hours=16), "end": tomorrow + timedelta(hours=17), "client": "ned@example.com",
                "name": "Ned Aas", "service": label, "price": price, "online": False, "first_visit": False, "owes": [],
                "repeat": None, "deposit": {"id": "act_d3748596071829304152", "purpose": "deposit", "amount": half, "status": "not_taken"},
            },
        ],
        "tomorrow_total": 7,
        "problems": [{"where": "primary evt123", "message": "price: 'a lot' is not an amount"}],
        "review_hint": True,
        "mark_privacy": {"rules": ["late_cancel", "waive"], "tags": ["#latecancel", "#waive", "#emergency"]},
    }


__all__ = ["plan_digest", "digest_details", "digest_context", "sample_digest_details"]
