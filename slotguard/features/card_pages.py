"""A record of what a client saw before saving their card, looked up when no webhook told: a
tick step that asks the provider for the card-setup pages a client completed (what each page
said the card may be charged for, when the card was saved) and records them
(slotguard/payments/card_terms.py), as the `checkout.session.completed` webhook does.

Only for clients whose card paid a fee, deposit or prepayment in the last `WINDOW` and who
have no record yet (the evidence pack is for a dispute about such a charge), at most once a
`AGAIN` per client, so a client who never used a card-setup page costs one call a day for a
week. A provider that cannot be asked (record-only) or a dry run is skipped; a provider
failure is logged and asked again next time.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from slotguard.domain.durations import from_utc_text, to_utc_text
from slotguard.domain.interfaces import AdapterError, CardPageLookup, PaymentUpdate, in_dry_run
from slotguard.domain.model import ActionKind, ActionState
from slotguard.domain.payment_status import PaymentStatus
from slotguard.domain.tick_report import for_log
from slotguard.payments.card_terms import LOOKUP, record_card_saved, seen_by
from slotguard.policies.hookspecs import hookimpl
from slotguard.policies.owners import TickStep
from slotguard.store.ledger import Ledger

log = logging.getLogger("slotguard.payments")

WINDOW = timedelta(days=7)
AGAIN = timedelta(days=1)
LOOKED = "card_terms_lookup:"  # meta key per client: when the provider was last asked


def clients_to_look_up(ledger: Ledger, now: datetime) -> list[str]:
    """Clients charged lately (a paid charge, hold or capture in the last WINDOW) with no
    record of a card-setup page and not asked about in the last AGAIN."""
    since = now - WINDOW
    charged = {
        action.client_email.strip().lower()
        for action in ledger.actions(states=[ActionState.DONE], kinds=[ActionKind.CHARGE, ActionKind.HOLD, ActionKind.CAPTURE],
                                     executed_since=since)  # every tick: only the last WINDOW is read
        if action.context.get("payment_status") == PaymentStatus.PAID
    }
    due = []
    for email in sorted(charged):
        last = ledger.meta(LOOKED + email)
        if not seen_by(ledger, email) and (last is None or from_utc_text(last) <= now - AGAIN):
            due.append(email)
    return due


def look_up_card_pages(settings: Any, ledger: Ledger, provider: Any, now: datetime, report: Any = None) -> None:
    """Ask the provider about each client `clients_to_look_up` names and record what it
    found. Never raises for a provider failure."""
    if not isinstance(provider, CardPageLookup) or in_dry_run(provider):
        return None
    for email in clients_to_look_up(ledger, now):
        try:
            pages = provider.completed_card_pages(email)
        except AdapterError as error:
            log.warning("card_pages_lookup_failed error=%r", for_log(str(error)))  # never the address (docs/privacy.md)
            continue
        with ledger.transaction():
            ledger.set_meta(LOOKED + email, to_utc_text(now))
            for page in pages:
                update = PaymentUpdate(event_id=f"{LOOKUP}{page.reference}", event_type="lookup", change="card_saved",
                                       client_email=email, card_terms=page.card_terms, reference=page.reference, at=page.completed_at)
                if record_card_saved(ledger, update, now):
                    log.info("card_pages_recorded page=%s", page.reference)
    return None


@hookimpl
def slotguard_tick_steps():
    return [TickStep(name="card_pages", order=30, run=look_up_card_pages)]
