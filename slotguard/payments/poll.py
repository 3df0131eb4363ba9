"""Payment-provider features the engine uses only when the provider offers them.

- `poll_unpaid`: the polling fallback. A fee the client has to pay through a link (card
  declined, authentication needed, no card on file) is stored `done` with
  payment_status "unpaid". Each tick asks the provider what it now holds for each such fee
  (`provider.status_of(action)`), and marks the fee paid once the client has paid, with the
  PaymentIntent that holds the money as `external_id` (so a later refund finds it).
  Webhooks do the same sooner when they are on; this keeps the ledger right without them.
  A fee with a refund pending (waived while unpaid) is left to that refund: it closes the
  link and refunds a payment made meanwhile; polling would only renew the link.

Providers that cannot be asked (`StatusLookup`, slotguard/domain/interfaces.py; record-only)
are skipped: nothing to ask. Nothing here reads the clock; `now` is given. The card-setup
link a booking email carries is in slotguard/payments/card_setup.py.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from slotguard.domain.interfaces import AdapterError, StatusLookup, in_dry_run
from slotguard.domain.model import OPEN_STATES, ActionKind, ActionState
from slotguard.domain.payment_status import PaymentStatus
from slotguard.domain.tick_report import TickReport
from slotguard.payments.paid import record_paid
from slotguard.policies.account import TARGET
from slotguard.store.ledger import Ledger

log = logging.getLogger("slotguard.payments")


def poll_unpaid(ledger: Ledger, provider: Any, now: datetime, report: TickReport | None = None) -> set[tuple[str, str]]:
    """Mark fees and holds paid that clients paid through their link since the last look.

    Given the ledger, the payment provider (skipped unless it is a `StatusLookup`), `now` and
    the tick's report (paid fees are counted as "charge:paid"; a permanent failure is a
    problem). Returns the (calendar_id, event_id) of every appointment whose fee changed,
    for the calendar write-back. Never raises for a provider failure: the fee stays unpaid
    and is asked about again next tick.
    """
    if not isinstance(provider, StatusLookup) or in_dry_run(provider):
        return set()
    changed: set[tuple[str, str]] = set()
    withdrawing = _withdrawing(ledger)
    for action in ledger.actions(states=[ActionState.DONE], kinds=[ActionKind.CHARGE, ActionKind.HOLD]):
        if action.context.get("payment_status") != PaymentStatus.UNPAID or action.id in withdrawing:
            continue
        try:
            result = provider.status_of(action)
        except AdapterError as error:
            log.warning("payment_poll_failed action=%s retryable=%s error=%r", action.id, error.retryable, str(error))
            if report is not None and not error.retryable:
                report.problem(f"could not check whether {action.client_email} paid fee {action.id}: {error}")
            continue
        if result is None:
            continue
        with ledger.transaction():
            # Read again under the write lock: while Stripe answered, `mark-paid`, a webhook
            # or a waiver (other processes) may have settled the fee; that stands.
            fee_id, current = action.id, ledger.action(action.id)
            if (current is None or current.state is not ActionState.DONE or current.context.get("payment_status") != PaymentStatus.UNPAID
                    or fee_id in _withdrawing(ledger, current.calendar_id, current.event_id)):
                log.info("payment_poll_skipped action=%s reason=changed_meanwhile", fee_id)
                continue
            action = current
            if result.status == "done":
                paid_with = result.external_id or action.external_id
                record_paid(ledger, action, now, f"paid by the client through the payment link ({paid_with}; found by polling)",
                            external_id=result.external_id)
                log.info("payment_poll_paid action=%s external_id=%s", action.id, action.external_id)
                if report is not None:
                    report.executed[f"{action.kind.value}:paid"] += 1
                changed.add((action.calendar_id, action.event_id))
            elif result.payment_link and result.payment_link != action.context.get("payment_link"):
                # Checkout links expire after 24 hours; keep a working one for reminders.
                action.context["payment_link"] = result.payment_link
                ledger.update_action(action, now, "payment link renewed (the previous one expired)")
    return changed


def _withdrawing(ledger: Ledger, calendar_id: str | None = None, event_id: str | None = None) -> set[str]:
    """Ids of the fees being withdrawn (waived while unpaid; the refund action closes the
    link and refunds a payment made meanwhile): asking about them could hand out a fresh
    link. Only those of one event when `calendar_id` and `event_id` are given."""
    return {
        str(refund.context.get(TARGET) or "")
        for refund in ledger.actions(states=[*OPEN_STATES, ActionState.EXECUTING], kinds=[ActionKind.REFUND],
                                     calendar_id=calendar_id, event_id=event_id)
    }
