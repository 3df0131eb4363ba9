"""Recording what the payment provider told by webhook (integration/stripe_webhooks.py maps
each verified event to a PaymentUpdate; `main.py webhook-server` hands it `apply_update`
bound to the ledger, so the adapter never opens the ledger itself).

For one update, in one ledger transaction: the event id is recorded (an event delivered
twice is applied once), the action it is about is found (by our tag, else by the
PaymentIntent), the change recorded ("paid" through slotguard.payments.paid.record_paid, as
polling and `mark-paid` do; a card saved through a Checkout page with what that page said the
card may be charged for, through slotguard.payments.card_terms), and the event's status note
queued for rewriting when the payment status changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from slotguard.domain.interfaces import PaymentUpdate
from slotguard.domain.model import Action, ActionKind
from slotguard.domain.payment_status import PaymentStatus
from slotguard.payments.card_terms import record_card_saved
from slotguard.payments.paid import PAID, record_paid
from slotguard.store.ledger import Ledger

log = logging.getLogger("slotguard.stripe.webhooks")


def _action_for(ledger: Ledger, update: PaymentUpdate) -> Action | None:
    if update.action_id:
        action = ledger.action(update.action_id)
        if action is not None:
            return action
    if update.payment_intent:
        kinds = [ActionKind.CHARGE, ActionKind.HOLD]
        for action in ledger.actions(kinds=kinds, client_email=update.client_email or None):
            if action.external_id == update.payment_intent:
                return action
    return None


def apply_update(ledger: Ledger, update: PaymentUpdate, now: datetime) -> str:
    """Apply `update` once: returns a note of what changed ("" for nothing, "duplicate" for an
    event already applied). The event id is recorded in the same transaction, and so is the
    request to rewrite the event's status note when the fee's payment status changed."""
    marker = f"stripe_event:{update.event_id}"
    with ledger.transaction():
        if ledger.meta(marker) is not None:
            return "duplicate"
        ledger.set_meta(marker, now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        action = _action_for(ledger, update) if update.change not in ("ignored", "card_saved") else None
        status_before = action.context.get("payment_status") if action is not None else None
        note, paid = "", False
        if update.change == "card_saved":
            note = f"{update.client_email or 'a client'} saved a card"
            if record_card_saved(ledger, update, now):
                # What the page showed and when: evidence for a dispute (slotguard/payments/card_terms.py).
                note += " (what the page said the card may be charged for is recorded)"
        elif action is None:
            note = "" if update.change == "ignored" else f"{update.event_type} for a payment Slotguard does not know ({update.payment_intent})"
        elif update.change == "paid" and action.context.get("payment_status") != PAID:
            # The PaymentIntent that holds the money, when the event names one.
            note = f"paid through Stripe ({update.event_type})"
            record_paid(ledger, action, now, note, external_id=update.payment_intent)
            paid = True
        elif update.change == "payment_failed" and action.context.get("payment_status") != PaymentStatus.PAID:
            # A late failure of an earlier attempt never undoes a payment.
            action.context["payment_status"] = PaymentStatus.UNPAID
            action.context["provider_detail"] = update.detail
            note = f"payment failed: {update.detail}"
        elif update.change == "refunded":
            action.context["stripe_refunded_minor"] = update.amount.minor if update.amount else 0
            note = f"Stripe reports {update.amount} refunded in total"
        elif update.change == "disputed":
            action.context["disputed"] = update.detail or "dispute"
            note = f"the client disputed {update.amount} with their bank ({update.detail}); answer it in the Stripe dashboard"
        if action is not None and note:
            if not paid:  # record_paid has written it
                ledger.update_action(action, now, note)
            if action.event_id and action.context.get("payment_status") != status_before:
                # The event's status note says whether the fee is paid: the daemon's next tick
                # rewrites it (slotguard/practitioner/write_back.py), as after `waive` or `mark-paid`.
                ledger.queue_write_back(action.calendar_id, action.event_id, now)
        log.info("stripe.webhook event=%s type=%s action=%s change=%s", update.event_id, update.event_type,
                 action.id if action else "", update.change)
        return note


def applier(ledger: Ledger) -> Callable[[PaymentUpdate, datetime], str]:
    """`apply_update` bound to `ledger`: what the webhook server is given."""
    return partial(apply_update, ledger)
