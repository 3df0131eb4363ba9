"""The one-line status note written back onto a calendar event, and its machine state.

The practitioner reads the calendar, so the note says in plain words what Slotguard will do
and how to stop it, e.g. "Slotguard: late-cancel fee 450.00 NOK pending review, charged
Thu 26 Nov 14:00 unless you add #waive".
"""

from __future__ import annotations

from datetime import datetime

from slotguard.collections.debts import COLLECTIONS, COLLECTS, INSTALLMENT
from slotguard.config.schema import Settings
from slotguard.domain.durations import to_utc_text
from slotguard.domain.model import NOTHING_TAKEN, OWED, REFUNDED_ELSEWHERE, WAIVED_UNPAID, Action, ActionKind, ActionState
from slotguard.domain.money import Money
from slotguard.domain.payment_status import PaymentStatus
from slotguard.intake.own_note import NOTE_PREFIX, WAIVE_HINT

MAX_NOTE = 300


def _label(policy: str) -> str:
    return policy.replace("_", "-")


def status_note(actions: list[Action], settings: Settings, cancelled_by_email: datetime | None = None) -> tuple[dict[str, str], str]:
    """Return (machine state, human note) for an event's money actions, in the order planned,
    and, when the client cancelled by email (`cancelled_by_email`: when the inbox received
    it), saying so first: "Slotguard: cancelled by the client by email, received Tue 08 Dec
    23:59 (cancelled: 2026-12-08T23:59:00+01:00); late-cancel fee ..." with the state key
    `slotguard_cancelled` ("client_email") and `slotguard_cancelled_at` (UTC).

    The note is about the appointment's latest fee (never a collection request or an
    installment the ladder made for it: those only add how much was paid so far). The state
    uses short keys and values (Google's extended properties allow 44-character keys and
    1024-character values).
    """
    state, note = _fee_note(actions, settings)
    if cancelled_by_email is None:
        return state, note
    local = cancelled_by_email.astimezone(settings.zone)
    said = f"{NOTE_PREFIX} cancelled by the client by email, received {local:%a %d %b %H:%M} (cancelled: {local.isoformat(timespec='seconds')})"
    note = f"{said}; {note.removeprefix(NOTE_PREFIX).strip()}" if note else said
    state = {**state, "slotguard_cancelled": "client_email", "slotguard_cancelled_at": to_utc_text(cancelled_by_email)}
    return state, note[:MAX_NOTE]


def _fee_note(actions: list[Action], settings: Settings) -> tuple[dict[str, str], str]:
    own = [action for action in actions if action.policy != COLLECTIONS]
    fees = [action for action in own if action.kind in (ActionKind.CHARGE, ActionKind.WAIVE)]
    if not fees:
        return {}, ""
    fee = fees[-1]
    amount = str(fee.amount) if fee.amount else ""
    what = f"{_label(fee.policy)} fee {amount}".strip()
    waive_tag = (settings.calendar.marks.waive.tags or ["#waive"])[0]
    local_due = fee.due_at.astimezone(settings.zone).strftime("%a %d %b %H:%M")
    status = fee.context.get("payment_status", "")
    paid_later = _paid_through_collections(actions, fee)
    if fee.kind is ActionKind.WAIVE:
        note = f"Slotguard: {_label(fee.policy)} fee waived ({fee.reason.rpartition('; ')[2]})"
    elif fee.state in (ActionState.PENDING_REVIEW, ActionState.PLANNED):
        note = f"Slotguard: {what} pending review, charged {local_due} {WAIVE_HINT} {waive_tag}"
    elif fee.state is ActionState.EXECUTING:
        note = f"Slotguard: {what} being charged"
    elif fee.state is ActionState.WAIVED:
        note = f"Slotguard: {what} waived"
    elif fee.state is ActionState.CANCELLED:
        note = f"Slotguard: {what} not charged ({fee.reason.rpartition('; ')[2]})"
    elif fee.state is ActionState.FAILED:
        note = f"Slotguard: {what} could not be charged: {fee.last_error}"
    elif status == WAIVED_UNPAID:
        note = f"Slotguard: {what} waived before the client paid it; nothing to collect"
    elif status == PaymentStatus.SETTLED:
        note = f"Slotguard: {what} settled" + (f" ({paid_later} paid)" if paid_later else "")
    elif status == PaymentStatus.WRITTEN_OFF:
        note = f"Slotguard: {what} written off" + (f" after {paid_later} paid" if paid_later else "")
    elif status in OWED:
        how = "pay to you directly" if status == PaymentStatus.RECEIVABLE else "the client was sent a payment link"
        note = f"Slotguard: {what} not paid yet ({how})"
        if paid_later:
            note += f"; {paid_later} paid so far"
        plan = _plan_progress(actions, fee)
        if plan:
            note += f"; payment plan {plan}"
    else:
        note = f"Slotguard: {what} charged"
    # A refund of a fee never paid moved no money (NOTHING_TAKEN): it is not a refund.
    refunds = [a for a in own if a.kind is ActionKind.REFUND and a.state is ActionState.DONE
               and a.context.get("payment_status") != NOTHING_TAKEN]
    if refunds:
        note += _refunded(refunds[-1])
    state = {
        "slotguard_fee": fee.id,
        "slotguard_state": fee.state.value if fee.kind is not ActionKind.WAIVE else "waived",
        "slotguard_amount": str(fee.amount.minor) if fee.amount else "",
        "slotguard_currency": fee.amount.currency if fee.amount else "",
    }
    return state, note[:MAX_NOTE]


def _refunded(refund: Action) -> str:
    """"; refunded 600.00 NOK", saying so when part or all of it was refunded before,
    outside Slotguard (the refund then gave back only what was left)."""
    if refund.context.get("payment_status") == REFUNDED_ELSEWHERE:
        return "; refunded outside Slotguard already (nothing left to refund)"
    before = int(refund.context.get("refunded_before_minor") or 0)
    if before and refund.amount is not None:
        return f"; refunded {refund.amount} ({Money(before, refund.amount.currency)} had been refunded before)"
    return f"; refunded {refund.amount}"


def _collected_for(actions: list[Action], fee: Action) -> list[Action]:
    return [a for a in actions if a.policy == COLLECTIONS and a.context.get(COLLECTS) == fee.id]


def _paid_through_collections(actions: list[Action], fee: Action) -> Money | None:
    """What the client paid towards `fee` through the collections ladder (installments, a
    settlement, the rest), or None."""
    paid = [a.amount for a in _collected_for(actions, fee)
            if a.kind is ActionKind.CHARGE and a.state is ActionState.DONE and a.amount
            and a.context.get("payment_status") == PaymentStatus.PAID]
    if not paid:
        return None
    return Money(sum(money.minor for money in paid), paid[0].currency)


def _plan_progress(actions: list[Action], fee: Action) -> str:
    """"2 of 3 paid" for the latest payment plan on `fee`, or ""."""
    installments = [a for a in _collected_for(actions, fee) if a.context.get("role") == INSTALLMENT]
    if not installments:
        return ""
    plan = max(int(a.context.get("plan", 0)) for a in installments)
    mine = [a for a in installments if int(a.context.get("plan", 0)) == plan]
    total = max(int(a.context.get("of", 0) or 0) for a in mine) or len(mine)
    paid = sum(1 for a in mine if a.state is ActionState.DONE and a.context.get("payment_status") == PaymentStatus.PAID)
    return f"{paid} of {total} paid"
