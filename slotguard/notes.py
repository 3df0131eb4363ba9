"""The one-line status note written back onto a calendar event, and its machine state.

The practitioner reads the calendar, so the note says in plain words what Slotguard will do
and how to stop it, e.g. "Slotguard: late-cancel fee 450.00 NOK pending review, charged
Thu 26 Nov 14:00 unless you add #waive".
"""

from __future__ import annotations

from slotguard.config import Settings
from slotguard.model import Action, ActionKind, ActionState

MAX_NOTE = 300


def _label(policy: str) -> str:
    return policy.replace("_", "-")


def status_note(actions: list[Action], settings: Settings) -> tuple[dict[str, str], str]:
    """Return (machine state, human note) for an event's money actions (latest fee first).

    The state uses short keys and values (Google's extended properties allow 44-character
    keys and 1024-character values).
    """
    fees = [action for action in actions if action.kind in (ActionKind.CHARGE, ActionKind.WAIVE)]
    refunds = [action for action in actions if action.kind is ActionKind.REFUND]
    if not fees:
        return {}, ""
    fee = fees[-1]
    amount = str(fee.amount) if fee.amount else ""
    what = f"{_label(fee.policy)} fee {amount}".strip()
    waive_tag = (settings.calendar.marks.waive.tags or ["#waive"])[0]
    local_due = fee.due_at.astimezone(settings.zone).strftime("%a %d %b %H:%M")
    status = fee.context.get("payment_status", "")
    if fee.kind is ActionKind.WAIVE:
        note = f"Slotguard: {_label(fee.policy)} fee waived ({fee.reason.rpartition('; ')[2]})"
    elif fee.state in (ActionState.PENDING_REVIEW, ActionState.PLANNED):
        note = f"Slotguard: {what} pending review, charged {local_due} unless you add {waive_tag}"
    elif fee.state is ActionState.EXECUTING:
        note = f"Slotguard: {what} being charged"
    elif fee.state is ActionState.WAIVED:
        note = f"Slotguard: {what} waived"
    elif fee.state is ActionState.CANCELLED:
        note = f"Slotguard: {what} not charged ({fee.reason.rpartition('; ')[2]})"
    elif fee.state is ActionState.FAILED:
        note = f"Slotguard: {what} could not be charged: {fee.last_error}"
    elif status == "receivable":
        note = f"Slotguard: {what} asked from the client (pay to you directly)"
    elif status == "unpaid":
        note = f"Slotguard: {what} not paid yet; the client was sent a payment link"
    else:
        note = f"Slotguard: {what} charged"
    done_refunds = [refund for refund in refunds if refund.state is ActionState.DONE]
    if done_refunds:
        note += f"; refunded {done_refunds[-1].amount}"
    state = {
        "slotguard_fee": fee.id,
        "slotguard_state": fee.state.value if fee.kind is not ActionKind.WAIVE else "waived",
        "slotguard_amount": str(fee.amount.minor) if fee.amount else "",
        "slotguard_currency": fee.amount.currency if fee.amount else "",
    }
    return state, note[:MAX_NOTE]
