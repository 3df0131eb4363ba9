"""What a payment provider's answer means for a money action in the ledger.

One place turns a `PaymentResult` into the action's fields (external id, payment status,
payment link, the amount actually refunded), for an action just carried out
(Engine._move_money) and for one whose outcome was looked up after a crash
(slotguard/recovery.py), so both are recorded the same way. Pure: no I/O, no clock.
"""

from __future__ import annotations

from slotguard.interfaces import PaymentResult
from slotguard.model import NOTHING_TAKEN, REFUNDED_ELSEWHERE, Action
from slotguard.money import Money


def record_payment_result(action: Action, result: PaymentResult) -> str:
    """Write `result` into `action` (state aside); return a note for the action log.

    A refund that found part of the money given back already (a refund made in the Stripe
    dashboard) records what it refunded as its amount, what was asked
    (`context["asked_minor"]`), what had been refunded before (`refunded_before_minor`) and
    those refunds' ids (`refunded_outside`); one that found nothing left records a zero
    amount and payment status `refunded_elsewhere`.
    """
    action.external_id = result.external_id
    status = "paid" if result.status == "done" else "unpaid"
    if result.extra.get("receivable"):
        status = "receivable"
    if result.extra.get("nothing_taken"):
        status = NOTHING_TAKEN
    note = "done"
    refunded = result.extra.get("refunded_minor")
    if refunded is not None and action.amount is not None:
        asked = action.amount
        action.amount = Money(int(refunded), asked.currency)
        action.context["asked_minor"] = int(result.extra.get("asked_minor") or asked.minor)
        action.context["refunded_before_minor"] = int(result.extra.get("refunded_before_minor") or 0)
        outside = [item for item in str(result.extra.get("refunded_outside") or "").split(",") if item]
        if outside:
            action.context["refunded_outside"] = outside
        if action.amount.minor == 0:
            status = REFUNDED_ELSEWHERE
        note = f"done: refunded {action.amount} of the {asked} asked"
    action.context["payment_status"] = status
    if result.payment_link:
        action.context["payment_link"] = result.payment_link
    if result.detail:
        action.context["provider_detail"] = result.detail
        if refunded is not None:
            note += f" ({result.detail})"
    return note
