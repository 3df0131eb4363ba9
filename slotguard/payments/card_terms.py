"""What a client saw before saving a card, and when they saved it: the record a card network
asks for when a client disputes a charge made without them (an off-session charge under the
practice's cancellation policy).

The card-setup page shows what the card may be charged for and when (card_setup.py,
`card_terms_text`); when the client completes it, the provider's webhook gives that text back
with the session id and the time (a "card_saved" PaymentUpdate), and webhook_updates.py
records it here, in the same ledger transaction as the event id. Without webhooks, a tick
step asks the provider for the pages of clients charged lately (slotguard/features/card_pages.py). One record per completed
page, kept per client in the ledger's meta table; the evidence pack shows them
(slotguard/practitioner/evidence.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from slotguard.domain.durations import from_utc_text, to_utc_text
from slotguard.domain.interfaces import PaymentUpdate
from slotguard.store.ledger import Ledger

PREFIX = "card_terms:"
LOOKUP = "lookup:"  # the event id of a record found by asking the provider (no webhook told)


@dataclass(frozen=True)
class CardTermsSeen:
    """One completed card-setup page: the session, when the client completed it (UTC), the
    text it showed (empty when the provider gave none back), and which event said so."""

    reference: str
    saved_at: str
    card_terms: str
    event_id: str


def _key(client_email: str) -> str:
    return PREFIX + client_email.strip().lower()


def seen_by(ledger: Ledger, client_email: str) -> list[CardTermsSeen]:
    """The card-setup pages `client_email` completed, oldest first."""
    raw = ledger.meta(_key(client_email))
    return [CardTermsSeen(**entry) for entry in json.loads(raw)] if raw else []


def saved_at(record: CardTermsSeen) -> datetime:
    return from_utc_text(record.saved_at)


def record_card_saved(ledger: Ledger, update: PaymentUpdate, now: datetime) -> bool:
    """Record a "card_saved" update that names its client and its page (`reference`): True
    when a new record was written. Call inside the webhook's ledger transaction. The same
    page reported again (another event about it) is not recorded twice."""
    if update.change != "card_saved" or not update.client_email or not update.reference:
        return False
    records = seen_by(ledger, update.client_email)
    if any(record.reference == update.reference for record in records):
        return False
    when = (update.at or now).astimezone(UTC)
    records.append(CardTermsSeen(update.reference, to_utc_text(when), update.card_terms, update.event_id))
    ledger.set_meta(_key(update.client_email), json.dumps([asdict(record) for record in records], ensure_ascii=False))
    return True
