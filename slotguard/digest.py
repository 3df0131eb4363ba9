"""The practitioner's daily digest: what needs a look today, in one email.

Once per local day, at `mail.digest_hour`, `plan_digest` stores one email action with an id
derived from the date (so a restart, a second tick or a replay never plans it twice). Its
content is read from the ledger when it is sent, so it is current:

- fees pending review, with the time they will be charged unless waived;
- failed payments (the client has to pay through a link) and actions that failed;
- receivables not yet paid;
- clients to call: no-shows and client cancellations seen in the last day;
- freed slots: cancellations in the last day of appointments still ahead;
- tomorrow's appointments;
- problems: calendar events that cannot be read, calendars that fail to sync.

A day with nothing to report is recorded as a cancelled digest action ("nothing to report")
and sends nothing. The digest is the one message that shows action ids, for `main.py waive`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from slotguard.config import Settings
from slotguard.collections_ladder import collections_view
from slotguard.durations import from_utc_text, to_utc_text
from slotguard.ledger import Ledger
from slotguard.messages import DIGEST_TEMPLATE
from slotguard.model import Action, ActionKind, ActionState, HappeningKind, action_id_for
from slotguard.money import Money

log = logging.getLogger("slotguard.digest")

POLICY = "digest"
CALENDAR_ID = "practice"
RECENT = timedelta(days=1)
FAILED_SHOWN_FOR = timedelta(days=7)
SECTIONS = ("pending", "payment_failed", "failed", "receivables", "collections", "to_call", "freed", "tomorrow", "problems")


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
    action = Action(
        id=action_id,
        kind=ActionKind.EMAIL,
        state=ActionState.CANCELLED if empty else ActionState.PLANNED,
        policy=POLICY,
        reason=f"daily digest for {day}" + ("; nothing to report" if empty else ""),
        calendar_id=CALENDAR_ID,
        event_id="",
        client_email=settings.practice.email,
        client_name=settings.practice.name,
        happening_key=f"digest/{day}",
        due_at=now,
        created_at=now,
        updated_at=now,
        template=DIGEST_TEMPLATE,
        context={"day": day},
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
        }

    money_kinds = [ActionKind.CHARGE, ActionKind.CAPTURE]
    pending = [fee_row(a) for a in ledger.actions(states=[ActionState.PENDING_REVIEW], kinds=money_kinds) if a.amount]
    pending.sort(key=lambda row: row["charge_at"])
    done = [a for a in ledger.actions(states=[ActionState.DONE], kinds=money_kinds) if a.amount]
    done, collections = collections_view(ledger, settings, now, done)  # requests folded into their fee; balances
    payment_failed = [fee_row(a) for a in done if a.context.get("payment_status") == "unpaid"]
    receivables = [fee_row(a) for a in done if a.context.get("payment_status") == "receivable"]
    failed = [
        {
            "id": a.id,
            "kind": a.kind.value,
            "template": a.template or "",
            "client": a.client_email,
            "amount": a.amount,
            "error": a.last_error,
            "at": a.updated_at,
        }
        for a in ledger.actions(states=[ActionState.FAILED])
        if a.updated_at >= now - FAILED_SHOWN_FOR
    ]
    to_call = []
    for row in _recent_happenings(ledger, (HappeningKind.NO_SHOW, HappeningKind.CANCELLED_BY_CLIENT), now - RECENT):
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
    tomorrow_rows = []
    for tracked in ledger.upcoming(tomorrow, limit=500):
        appointment = tracked.appointment
        if appointment.start >= after_tomorrow:
            break
        tomorrow_rows.append({
            "start": appointment.start,
            "end": appointment.end,
            "client": appointment.client.email,
            "name": appointment.client.name or appointment.client.email,
            "service": _service(settings, appointment.service),
            "price": appointment.price,
            "online": bool(appointment.meeting_link),
        })
    problems = [{"where": f"{p['calendar_id']} {p['item']}", "message": p["message"]} for p in ledger.problems()]
    problems += [
        {"where": state["calendar_id"], "message": state["last_error"]}
        for state in ledger.sync_states()
        if state["last_error"]
    ]
    return {
        "date": today,
        "tomorrow": tomorrow_rows,
        "tomorrow_date": tomorrow,
        "pending": pending,
        "payment_failed": payment_failed,
        "failed": failed,
        "receivables": receivables,
        "receivables_total": _totals([row["amount"] for row in receivables + payment_failed]),
        "collections": collections,
        "to_call": to_call,
        "freed": freed,
        "problems": problems,
        "review_hint": bool(pending),
    }


def digest_context(settings: Settings, ledger: Ledger, now: datetime) -> dict[str, Any]:
    """What the `practitioner_digest` template gets: practice, client (the practitioner),
    details (the sections), payments."""
    from slotguard.context import practice_context

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
        "pending": [{
            "id": "act_0a1b2c3d4e5f60718293", "client": "bo@example.com", "name": "Bo Ek", "amount": price,
            "policy": "no_show", "kind": "charge", "appointment_start": today - timedelta(hours=14),
            "charge_at": today + timedelta(hours=21), "since": today, "payment_link": "",
        }],
        "payment_failed": [{
            "id": "act_1b2c3d4e5f6071829304", "client": "cy@example.com", "name": "Cy Dahl", "amount": half,
            "policy": "late_cancel", "kind": "charge", "appointment_start": today - timedelta(days=3),
            "charge_at": today - timedelta(days=2), "since": today - timedelta(days=2),
            "payment_link": "https://pay.example.com/p/sample",
        }],
        "failed": [{
            "id": "act_2c3d4e5f607182930415", "kind": "email", "template": "reminder", "client": "dag@example.com",
            "amount": None, "error": "550 mailbox unavailable", "at": today - timedelta(hours=3),
        }],
        "receivables": [{
            "id": "act_3d4e5f60718293041526", "client": "eva@example.com", "name": "Eva Lund", "amount": half,
            "policy": "late_cancel", "kind": "charge", "appointment_start": today - timedelta(days=9),
            "charge_at": today - timedelta(days=8), "since": today - timedelta(days=8), "payment_link": "",
        }],
        "receivables_total": [half + half],
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
        "freed": [{
            "start": today + timedelta(hours=15), "end": today + timedelta(hours=16), "service": label,
            "by_client": True, "offered_to": 3,
        }],
        "tomorrow": [{
            "start": tomorrow + timedelta(hours=9), "end": tomorrow + timedelta(hours=10), "client": "ana@example.com",
            "name": "Ana Silva", "service": label, "price": price, "online": True,
        }],
        "problems": [{"where": "primary evt123", "message": "price: 'a lot' is not an amount"}],
        "review_hint": True,
    }


__all__ = ["plan_digest", "digest_details", "digest_context", "sample_digest_details"]
