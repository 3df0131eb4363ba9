"""The `record-only` payment provider: no card processor.

A fee becomes a receivable in the ledger, and the client's email tells them how to pay the
practitioner directly (practice.payment_instructions). A refund of a receivable cancels it
(nothing was taken); a refund of one the practitioner marked paid is theirs to hand back.
Nothing leaves the machine, so every call is trivially idempotent.
"""

from __future__ import annotations

from slotguard.domain.interfaces import PaymentResult
from slotguard.domain.model import Action, ActionKind


class RecordOnlyProvider:
    name = "record-only"

    def resolve(self, action: Action) -> PaymentResult | None:
        """Nothing left the machine, so nothing can have happened elsewhere: carry it out again."""
        return None

    def execute(self, action: Action) -> PaymentResult:
        if action.kind is ActionKind.CHARGE:
            return PaymentResult(status="done", external_id=f"receivable:{action.id}", extra={"receivable": "yes"})
        if action.kind is ActionKind.REFUND:
            if action.context.get("target_payment_status") == "receivable":
                return PaymentResult(status="done", external_id=f"credit:{action.id}", detail="receivable cancelled",
                                     extra={"nothing_taken": "yes"})
            # Paid to the practitioner directly (`mark-paid`): they give it back the same way.
            return PaymentResult(status="done", external_id=f"credit:{action.id}",
                                 detail="recorded only: the practitioner pays the client back directly")
        return PaymentResult(status="done", external_id=f"recorded:{action.id}", detail=f"{action.kind.value} recorded only")
