"""The receipt for a fee the practitioner recorded as paid to them directly (`main.py
mark-paid`: Vipps, cash, a bank transfer) before the ladder chased it. A fee the ladder
chased gets its receipt from the ladder (slotguard/collections/decide.py), with every part
paid; this is the one for a fee paid in full at once, ladder or no ladder. Same id as the
ladder's receipt, so the client is thanked once."""

from __future__ import annotations

from datetime import datetime

from slotguard.collections.debts import COLLECTIONS, COLLECTS, RECEIPT, RECEIPT_TEMPLATE
from slotguard.domain.durations import to_utc_text
from slotguard.domain.model import Action, ActionKind, ActionSubject, new_action
from slotguard.domain.payment_status import PaymentStatus
from slotguard.policies.account import FEE, purpose_of


def direct_payment_receipt(fee: Action, related: list[Action], now: datetime) -> Action | None:
    """The payment_receipt email (planned, due `now`) for `fee` just recorded as paid, or None:
    when it is not a fee (a deposit or a prepayment: the booking confirmation says it is
    paid), is not paid, or has collection actions (the ladder sends its own receipt).
    `related` are the actions of the fee's appointment. Pure."""
    if (fee.kind is not ActionKind.CHARGE or fee.amount is None or fee.policy == COLLECTIONS
            or purpose_of(fee.kind, fee.context) != FEE or fee.context.get("payment_status") != PaymentStatus.PAID):
        return None
    if any(action.policy == COLLECTIONS and action.context.get(COLLECTS) == fee.id for action in related):
        return None
    return new_action(
        ActionSubject(fee.calendar_id, fee.event_id, fee.client_email, fee.client_name, fee.appointment_start),
        ActionKind.EMAIL, COLLECTIONS, f"collections: thank the client: {fee.amount} paid directly, nothing more is owed",
        key=f"collections/{fee.id}", slot="receipt", now=now, template=RECEIPT_TEMPLATE, reports_on=fee.id,
        context={COLLECTS: fee.id, "role": RECEIPT, "fee_policy": fee.policy, "paid_total": fee.amount.as_json(),
                 "original": fee.amount.as_json(), "written_off": None,
                 "payments": [{"amount": fee.amount.as_json(), "at": to_utc_text(now)}]},
    )
