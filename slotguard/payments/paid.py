"""The one place that records "the client paid": whether Slotguard found it by polling
(slotguard/payments/poll.py), Stripe told it by webhook (slotguard/payments/webhook_updates.py)
or the practitioner recorded a payment made to them directly (`main.py mark-paid`).
"""

from __future__ import annotations

from datetime import datetime

from slotguard.domain.model import OWED, Action, ActionKind, ActionState
from slotguard.domain.payment_status import PaymentStatus
from slotguard.store.ledger import Ledger

PAID = PaymentStatus.PAID  # payment_status of money the client has paid


def is_owed(action: Action) -> bool:
    """True for a charge or hold carried out whose money the client still owes (payment
    status "unpaid": a link to pay; "receivable": to pay the practitioner directly)."""
    return (action.kind in (ActionKind.CHARGE, ActionKind.HOLD) and action.state is ActionState.DONE
            and action.context.get("payment_status") in OWED)


def record_paid(ledger: Ledger, action: Action, at: datetime, note: str, *, external_id: str = "") -> bool:
    """Record that the client paid `action`: payment status "paid", the provider's detail of
    an earlier failure dropped, and `external_id` (the payment that holds the money, so a
    later refund finds it) kept when given. `note` goes into the action's log.

    The caller read `action` inside its ledger transaction and decided it is paid. Written
    only while the action's state is still the one it was read with (Ledger.update_action);
    returns whether it was written."""
    action.context["payment_status"] = PAID
    action.context.pop("provider_detail", None)
    if external_id:
        action.external_id = external_id
    return ledger.update_action(action, at, note)
