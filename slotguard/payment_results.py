"""What a payment provider's answer means for a money action in the ledger.

One place turns a `PaymentResult` into the action's fields (external id, payment status,
payment link, the amount actually refunded: `record_payment_result`, pure) and makes the
changes that outcome implies beside it (`after_money`), for an action just carried out
(Engine.execute) and for one whose outcome was looked up after a crash
(slotguard/recovery.py), so both are recorded the same way. No clock: `now` is given.
"""

from __future__ import annotations

import logging
from datetime import datetime

from slotguard.interfaces import PaymentResult
from slotguard.ledger import Ledger
from slotguard.model import NOTHING_TAKEN, OWED, REFUNDED_ELSEWHERE, WAIVED_UNPAID, Action, ActionState
from slotguard.money import Money
from slotguard.planner import cancel_reports
from slotguard.plugins import TARGET

log = logging.getLogger("slotguard.engine")


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


def after_money(ledger: Ledger, action: Action, now: datetime) -> None:
    """What a money action's outcome changes beside it; call in the transaction that stores
    it done. A refund of a fee the client never paid takes the fee off the receivables; a
    refund that found the money given back already in the dashboard sends no "we refunded"
    email."""
    status = action.context.get("payment_status")
    if status == NOTHING_TAKEN:
        no_longer_owed(ledger, action, now)
    elif status == REFUNDED_ELSEWHERE:
        cancel_reports(ledger, action, now, "nothing was refunded now: the money had been refunded outside Slotguard already")


def no_longer_owed(ledger: Ledger, refund: Action, now: datetime) -> None:
    """A refund of a fee the client never paid: the fee is no longer asked for, so it
    leaves the receivables, the unpaid-link polling and the collections ladder."""
    fee = ledger.action(str(refund.context.get(TARGET, "")))
    if fee is None or fee.state is not ActionState.DONE or fee.context.get("payment_status") not in OWED:
        return
    fee.context["payment_status"] = WAIVED_UNPAID
    fee.context.pop("payment_link", None)
    ledger.update_action(fee, now, f"no longer owed: {refund.reason} ({refund.id}); nothing had been paid", expect=[ActionState.DONE])
    log.info("no longer owed action=%s refund=%s", fee.id, refund.id)
