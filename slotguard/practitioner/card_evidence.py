"""The evidence pack's section on the client's saved card: when the client saved it, on which
page, and what that page said the card may be charged for and when, as the provider gave it
back (slotguard/payments/card_terms.py). For a dispute about a charge made without the client
present, card networks ask for proof that the cardholder agreed to such charges, the terms
they were shown, and when they agreed.
"""

from __future__ import annotations

from html import escape

from slotguard.config.schema import Settings
from slotguard.domain.model import Action
from slotguard.payments.card_terms import LOOKUP, saved_at, seen_by
from slotguard.store.ledger import Ledger


def card_terms_section(settings: Settings, ledger: Ledger, fee: Action) -> str:
    """The HTML section for `fee`'s client (a heading and what is recorded, or why nothing is)."""
    head = "<h2>The saved card, and what the client was told it may be charged for</h2>"
    records = seen_by(ledger, fee.client_email)
    if not records:
        return head + ('<p class="muted">No card-setup page completed by this client is recorded (webhooks were not set '
                       "up then, or the card was saved another way, such as while paying through a payment link).</p>")
    parts = [head]
    for record in records:
        moment = saved_at(record).astimezone(settings.zone)
        when = f"{moment.strftime('%Y-%m-%d %H:%M')} ({settings.practice.timezone})"
        order = ""
        if fee.executed_at is not None:
            order = " before the fee was charged" if saved_at(record) <= fee.executed_at else " after the fee was charged"
        source = ("found by asking Stripe, as no webhook told; the time is when Stripe saved the card"
                  if record.event_id.startswith(LOOKUP) else f"reported by Stripe's event <code>{escape(record.event_id)}</code>")
        parts.append(f"<p>The client saved a card on {escape(when)}{escape(order)}, on Stripe Checkout page "
                     f"<code>{escape(record.reference)}</code> ({source}).</p>")
        if record.card_terms:
            parts.append(f'<p class="muted">Beside the button that saves the card, the page said:</p><pre>{escape(record.card_terms)}</pre>')
        else:
            parts.append('<p class="muted">The page showed no terms of ours (it was made before Slotguard showed them there).</p>')
    return "\n".join(parts)
