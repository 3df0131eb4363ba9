"""Sending one email action: first what it needs from the outside world (a card-setup link
from the payment provider for a booking confirmation or reminder to a client with no card on
file, slotguard/payments/card_setup.py), then composing it with what the features add
(slotguard/mail/compose.py, given the fetched results: rendering makes no call), then the
mailer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slotguard.config.schema import Settings
from slotguard.domain.interfaces import Mailer
from slotguard.domain.model import Action
from slotguard.mail.compose import ExtrasHook, compose_email
from slotguard.mail.context import client_name
from slotguard.mail.messages import Renderer
from slotguard.payments.card_setup import FETCHED, can_offer, card_setup_link_for, card_terms_text, wants_card_setup_link
from slotguard.policies.info import Policy
from slotguard.run.email_features import email_extras_hook
from slotguard.store.ledger import Ledger


def fetch_before_rendering(
    provider: Any, settings: Settings, policies: list[Policy], ledger: Ledger, action: Action, renderer: Renderer,
) -> dict[str, str]:
    """What the provider gives for the email `action` (e.g. {"card_setup_link": "https://..."});
    empty when it needs nothing, or its appointment is gone (composing it then says so). The
    card-setup page is made with the card terms in the client's language (`renderer`).
    Never raises for a provider failure: the email goes out without the link (logged)."""
    if not wants_card_setup_link(action) or not action.event_id or not can_offer(provider, settings, policies):
        return {}  # asked before reading the ledger: most emails and providers need nothing
    tracked = ledger.tracked(action.calendar_id, action.event_id)
    if tracked is None:
        return {}
    card_terms = card_terms_text(settings, policies, renderer, action, tracked.appointment)
    link = card_setup_link_for(provider, settings, policies, action.client_email, client_name(action, tracked.appointment), card_terms)
    return {FETCHED: link} if link else {}


def send_email(
    action: Action, now: datetime, settings: Settings, policies: list[Policy], renderer: Renderer, ledger: Ledger,
    provider: Any, mailer: Mailer, extras: ExtrasHook | None = None,
) -> str:
    """Fetch, compose (with the built-in email features unless `extras` is given) and send
    the email `action`; return its Message-ID. Raises what compose_email raises
    (TemplateProblem, ValueError) and the mailer's AdapterError."""
    fetched = fetch_before_rendering(provider, settings, policies, ledger, action, renderer)
    message = compose_email(settings, policies, renderer, ledger, action, now, extras=extras or email_extras_hook(), fetched=fetched)
    mailer.send(message, action.id)
    return str(message["Message-ID"])
