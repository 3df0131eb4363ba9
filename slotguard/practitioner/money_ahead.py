"""Money asked ahead (a deposit or prepayment) still not paid as the session comes near: the
practitioner is told in time, before the session, not after (issue 13, item 4).

`plan_money_ahead_alerts(settings, ledger, now)` runs at each tick's time check (the feature
slotguard/features/money_ahead.py): for each open appointment starting within `ALERT_LEAD` whose
deposit or prepayment is not paid (`money_ahead` of the digest: asked through a payment link
and not paid, not taken yet, or failed), it plans one email to the practice
(`money_ahead_unpaid`), due at once, its id derived from the money action so it is planned once.
A booking made less than `ALERT_LEAD` before its start is told about at the same tick. No email
when a daily digest already told: one sent after the money was asked lists the appointment
under "tomorrow" with its unpaid deposit or prepayment.

Just before it goes (`alert_stale`), the email is cancelled when the money was paid or waived
meanwhile, or the appointment moved, was cancelled or has started. What it says is read from
the ledger when it is composed (`alert_details`): the client, the session, the amount, and
what the practitioner can do (ask for it at the session and `mark-paid`, or let it go).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from slotguard.config.schema import Settings
from slotguard.domain.durations import from_utc_text
from slotguard.domain.model import Action, ActionKind, ActionState, ActionSubject, action_id_for, new_action
from slotguard.domain.plan import Plan
from slotguard.intake.tracker import Tracked
from slotguard.mail.context import service_label
from slotguard.practitioner.digest_sections import POLICY as DIGEST
from slotguard.practitioner.digest_sections import money_ahead
from slotguard.store.apply import Store
from slotguard.store.ledger import Ledger

log = logging.getLogger("slotguard.money_ahead")

POLICY = "money_ahead"
TEMPLATE = "money_ahead_unpaid"
ALERT_LEAD = timedelta(hours=2)  # how long before the start the practitioner is told
ABOUT = "about"  # context: the deposit or prepayment action the alert is about
PRACTICE = "practice"  # the calendar id of mail to the practice itself (as the digest's)


def _told_by_digest(settings: Settings, ledger: Ledger, money: Action, tracked: Tracked) -> bool:
    """True when a digest sent after `money` was asked listed the appointment (the day before)."""
    day_before = (tracked.appointment.start.astimezone(settings.zone).date() - timedelta(days=1)).isoformat()
    return any(
        digest.context.get("day") == day_before and digest.executed_at is not None and digest.executed_at >= money.created_at
        for digest in ledger.actions(policy=DIGEST, kinds=[ActionKind.EMAIL], states=[ActionState.DONE])
    )


def plan_money_ahead_alerts(settings: Settings, ledger: Ledger, now: datetime) -> list[Action]:
    """Plan the emails to the practice about money asked ahead and not paid for sessions
    starting within ALERT_LEAD; return the ones newly stored."""
    planned: list[Action] = []
    for tracked in ledger.upcoming_open(now, now + ALERT_LEAD):
        found = money_ahead(ledger, tracked)
        if found is None:
            continue
        money = ledger.action(found["id"])
        if money is None:
            continue
        appointment = tracked.appointment
        key = f"{appointment.calendar_id}/{appointment.key_id}/money-ahead"
        action_id = action_id_for(key, POLICY, ActionKind.EMAIL.value, money.id)
        if ledger.action(action_id) is not None or _told_by_digest(settings, ledger, money, tracked):
            continue
        subject = ActionSubject(PRACTICE, "", settings.practice.email, settings.practice.name, appointment.start)
        planned.append(new_action(
            subject, ActionKind.EMAIL, POLICY,
            f"{found['purpose']} of {money.amount} for {appointment.client.email}'s session not paid yet "
            f"({found['status']}); the practitioner is told before the session",
            key=key, action_id=action_id, now=now, template=TEMPLATE,
            context={ABOUT: money.id, "calendar": appointment.calendar_id, "event": appointment.event_id},
        ))
    if not planned:
        return []
    stored = Store(ledger).apply(Plan(actions=tuple(planned)), now=now)
    for action in stored:
        log.info("planned action=%s kind=email template=%s about=%s", action.id, TEMPLATE, action.context.get(ABOUT))
    return stored


def _about(ledger: Ledger, action: Action) -> tuple[Action | None, Tracked | None]:
    money = ledger.action(str(action.context.get(ABOUT) or ""))
    tracked = ledger.tracked(str(action.context.get("calendar") or ""), str(action.context.get("event") or ""))
    return money, tracked


def alert_stale(ledger: Ledger, action: Action, now: datetime) -> str:
    """Why the alert `action` is no longer to be sent ("" while it still is)."""
    money, tracked = _about(ledger, action)
    if money is None or tracked is None:
        return "the appointment or the money asked is no longer in the ledger"
    appointment = tracked.appointment
    if tracked.cancellation or tracked.outcome or appointment.is_cancelled or appointment.start != action.appointment_start:
        return "the appointment was moved, cancelled or has its outcome"
    if appointment.start <= now:
        return "too late: the session has started"
    found = money_ahead(ledger, tracked)
    if found is None or found["id"] != money.id:
        return f"the {money.context.get('purpose') or 'money'} asked was paid or let go meanwhile"
    return ""


def alert_details(settings: Settings, ledger: Ledger, action: Action) -> dict[str, Any]:
    """What the `money_ahead_unpaid` template is given in `details`."""
    money, tracked = _about(ledger, action)
    if money is None or tracked is None:
        raise ValueError(f"{action.id}: the appointment or the money it is about is no longer in the ledger")
    appointment = tracked.appointment
    found = money_ahead(ledger, tracked) or {}
    asked_at = money.executed_at or money.created_at
    return {
        "id": money.id,
        "name": appointment.client.name or appointment.client.email,
        "client": appointment.client.email,
        "start": appointment.start,
        "end": appointment.end,
        "service": service_label(settings, appointment.service),  # the practice's language: this is mail to the practitioner
        "purpose": str(money.context.get("purpose") or "deposit"),
        "amount": money.amount,
        "status": str(found.get("status") or ""),
        "asked_at": asked_at if isinstance(asked_at, datetime) else from_utc_text(str(asked_at)),
    }
