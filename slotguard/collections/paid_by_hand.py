"""A fee paid to the practitioner directly: `main.py mark-paid` and the practitioner's "mark
paid" by email (docs/inbox.md) share this one copy.

A fee the ladder asks for in parts (an offer, an installment, the rest): the payment is that
part, as for a client paying through a link. The event's status note is rewritten at the next
tick, and the client gets a receipt when nothing more is owed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from slotguard.collections.debts import COLLECTIONS
from slotguard.collections.receipts import direct_payment_receipt
from slotguard.collections.views import payable
from slotguard.domain.model import Action, ActionKind
from slotguard.domain.plan import Plan
from slotguard.payments.paid import is_owed, record_paid
from slotguard.store.apply import Store
from slotguard.store.ledger import Ledger


@dataclass
class MarkedPaid:
    """`action`: the fee asked about (None: no such fee); `paid`: the part recorded as paid
    (None: nothing is owed on it); `receipt`: the receipt email planned, if any."""

    action: Action | None
    paid: Action | None = None
    receipt: Action | None = None


def mark_paid(ledger: Ledger, action_id: str, note: str, now: datetime, part: str = "") -> MarkedPaid:
    """Record the fee `action_id` (or its ladder's `part`) as paid to the practitioner, with
    `note`; one transaction, read under the write lock."""
    action = ledger.action(action_id)
    if action is None or action.kind is not ActionKind.CHARGE:
        return MarkedPaid(None)
    if action.policy != COLLECTIONS:
        action = payable(ledger.actions(calendar_id=action.calendar_id, event_id=action.event_id), part) or action
    with ledger.transaction():  # read under the write lock: the daemon may be changing it
        paid = ledger.action(action.id)
        if paid is None or paid.kind is not ActionKind.CHARGE or not is_owed(paid) or not record_paid(ledger, paid, now, note):
            return MarkedPaid(action)
        ledger.queue_write_back(paid.calendar_id, paid.event_id, now)  # the next tick rewrites the event's status note
        receipt = direct_payment_receipt(paid, ledger.actions(calendar_id=paid.calendar_id, event_id=paid.event_id), now)
        if receipt is not None:
            Store(ledger).apply(Plan(actions=(receipt,)), now=now)
    return MarkedPaid(action, paid, receipt)
