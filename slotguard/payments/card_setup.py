"""The card-setup link a booking email carries, so a client saves a card before a fee can
arise (a Stripe Checkout Session in setup mode; it lasts 24 hours).

Two halves, as everywhere in mail: the executor fetches the link before the email is
rendered (`card_setup_link_for`, a call to the provider; slotguard/run/email_effects.py),
and this feature's `slotguard_email_extras` puts what was fetched into the template's
details, in the slot each template has for it. Rendering makes no call.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from slotguard.config.schema import Settings
from slotguard.domain.interfaces import AdapterError, CardSetupLinks
from slotguard.domain.model import Action, Appointment
from slotguard.mail.compose import EmailExtras, EmailView
from slotguard.policies.hookspecs import hookimpl
from slotguard.policies.info import Policy

log = logging.getLogger("slotguard.payments")

FETCHED = "card_setup_link"  # its key in EmailView.fetched
# Where each email that offers it shows the link: the confirmation in the slot for a payment
# link; a reminder in its own (a reminder carries a fresh one while the client still has no
# card on file: the confirmation's may have run out).
SLOT_IN = {"booking_confirmation": "payment_link", "reminder": "card_link"}


def wants_card_setup_link(action: Action) -> bool:
    """True for an email that offers a card-setup link: a booking confirmation or reminder
    without a payment link of its own."""
    return action.template in SLOT_IN and not action.context.get("payment_link")


def can_offer(provider: Any, settings: Settings, policies: list[Policy]) -> bool:
    """True when card-setup links can be offered at all: the provider makes them
    (`CardSetupLinks`), payments are not in dry-run, and an enabled policy can charge a fee."""
    return (isinstance(provider, CardSetupLinks) and not settings.payments.dry_run
            and any(policy.info.role == "fee" for policy in policies))


def card_setup_link_for(provider: Any, settings: Settings, policies: list[Policy], client_email: str, client_name: str = "") -> str:
    """The link a booking email should carry so the client saves a card, or "".

    A link is made (a Stripe Checkout Session in setup mode, the customer found or created
    by email) only when the provider can make one (`CardSetupLinks`), payments are not in
    dry-run, at least one enabled policy can charge a fee, and the client has no card on
    file yet. Never raises: when Stripe cannot be reached the email goes out without the
    link (logged), rather than not at all. The link expires after 24 hours.
    """
    if not client_email or not can_offer(provider, settings, policies):
        return ""
    try:
        if provider.has_card_on_file(client_email):
            return ""
        return provider.card_setup_link(client_email, client_name)
    except AdapterError as error:
        log.warning("card_setup_link_failed client=%s error=%r", client_email, str(error))
        return ""


@hookimpl
def slotguard_email_extras(action: Action, appointment: Appointment | None, view: EmailView, now: datetime) -> EmailExtras | None:
    """The link fetched for this email, in its template's slot; None when none was fetched."""
    link = view.fetched.get(FETCHED, "")
    if not link or not wants_card_setup_link(action):
        return None
    return EmailExtras(details={SLOT_IN[str(action.template)]: link})
