"""The `record-only` payment provider: no card processor.

A fee becomes a receivable in the ledger, and the client's email tells them how to pay the
practitioner directly (practice.payment_instructions). A refund of a receivable cancels it.
Nothing leaves the machine, so every call is trivially idempotent.
"""

from __future__ import annotations

from slotguard.interfaces import PaymentResult
from slotguard.model import Action, ActionKind


class RecordOnlyProvider:
    name = "record-only"

    def execute(self, action: Action) -> PaymentResult:
        if action.kind is ActionKind.CHARGE:
            return PaymentResult(status="done", external_id=f"receivable:{action.id}", extra={"receivable": "yes"})
        if action.kind is ActionKind.REFUND:
            return PaymentResult(status="done", external_id=f"credit:{action.id}", detail="receivable cancelled")
        return PaymentResult(status="done", external_id=f"recorded:{action.id}", detail=f"{action.kind.value} recorded only")
