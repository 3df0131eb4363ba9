"""What a payment provider's answer means for a money action in the ledger.

One place turns a `PaymentResult` into the action's fields (external id, payment status,
payment link, the amount actually refunded: `record_payment_result`, pure) and makes the
changes that outcome implies beside it (`after_money`), for an action just carried out
(Engine.execute) and for one whose outcome was looked up after a crash
(slotguard/payments/recovery.py), so both are recorded the same way. No clock: `now` is given.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from slotguard.config.schema import Payments
from slotguard.domain.durations import format_duration, from_utc_text, to_utc_text
from slotguard.domain.interfaces import AdapterError, PaymentResult
from slotguard.domain.model import NOTHING_TAKEN, OWED, REFUNDED_ELSEWHERE, WAIVED_UNPAID, Action, ActionState
from slotguard.domain.money import Money
from slotguard.domain.payment_status import PaymentStatus
from slotguard.planning.holds import renewal_done
from slotguard.planning.planner import OUTCOME_UNKNOWN, cancel_reports
from slotguard.policies.account import RENEWS, TARGET
from slotguard.store.ledger import Ledger

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
    action.context.pop(OUTCOME_UNKNOWN, None)
    status = PaymentStatus.PAID if result.status == "done" else PaymentStatus.UNPAID
    if result.extra.get("receivable"):
        status = PaymentStatus.RECEIVABLE
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


def after_money(ledger: Ledger, action: Action, now: datetime) -> str:
    """What a money action's outcome changes beside it; call in the transaction that stores
    it done (after the call, or when a lookup found it done). A refund of a fee the client
    never paid takes the fee off the receivables; a refund that found the money given back
    already in the dashboard sends no "we refunded" email; a fresh card hold that replaces
    one about to lapse plans the old one's release (slotguard/planning/holds.py). Returns a problem
    for the practitioner ("" when there is none)."""
    status = action.context.get("payment_status")
    if status == NOTHING_TAKEN:
        no_longer_owed(ledger, action, now)
    elif status == REFUNDED_ELSEWHERE:
        cancel_reports(ledger, action, now, "nothing was refunded now: the money had been refunded outside Slotguard already")
    if action.context.get(RENEWS):
        return renewal_done(ledger, action, now)
    return ""


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


# Context of a money action that failed with a retryable error: when it first did (the retry
# budget, payments.retry_for, counts from there; `main.py retry` starts it again).
FIRST_FAILED_AT = "first_failed_at"
# Context of a money action that failed for good after its retry budget: how long it was
# tried (the digest lists it as "could not reach Stripe" with the retry command).
GAVE_UP_AFTER = "gave_up_after"
MONEY_RETRY_BASE = timedelta(minutes=2)


def next_money_try(payments: Payments, action: Action, error: AdapterError, now: datetime) -> datetime | None:
    """When to try a money action again after a retryable failure at `now`, or None when its
    budget (`payments.retry_for` from the first failure) is used up. The wait doubles from
    2 minutes per attempt, at most `payments.retry_max_wait`, and is never shorter than the
    provider's Retry-After; the last try comes when the budget ends. Records the first
    failure in the action's context (FIRST_FAILED_AT); when giving up, GAVE_UP_AFTER."""
    first = from_utc_text(str(action.context.setdefault(FIRST_FAILED_AT, to_utc_text(now))))
    ends = first + payments.retry_for
    if now >= ends:
        action.context[GAVE_UP_AFTER] = format_duration(payments.retry_for)
        return None
    exponent = min(max(action.attempts, 1) - 1, 30)  # no overflow after weeks of tries
    wait = min(MONEY_RETRY_BASE * 2**exponent, payments.retry_max_wait)
    if error.retry_after:
        wait = max(wait, timedelta(seconds=error.retry_after))
    # The last try when the budget ends; a Retry-After is kept even past it.
    return now + wait if error.retry_after else min(now + wait, ends)
