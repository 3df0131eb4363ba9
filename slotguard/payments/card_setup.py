"""The card-setup link a booking email carries, so a client saves a card before a fee can
arise (a Stripe Checkout Session in setup mode; it lasts 24 hours).

Two halves, as everywhere in mail: the executor fetches the link before the email is
rendered (`card_setup_link_for`, a call to the provider; slotguard/run/email_effects.py),
and this feature's `slotguard_email_extras` puts what was fetched into the template's
details, in the slot each template has for it. Rendering makes no call.

What the card may be charged for, and when, is said twice before the card is saved: in the
email beside the link, and on the Stripe page itself (`card_terms_text`, the same words in the
client's language, sent as the Checkout Session's custom text). Stripe gives that text back
when the session completes, and the webhook records it with the time
(slotguard/payments/card_terms.py), for the evidence pack: what a card network asks for when
a client disputes an off-session charge.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from slotguard.config.schema import Settings
from slotguard.domain.interfaces import AdapterError, CardSetupLinks
from slotguard.domain.model import Action, Appointment
from slotguard.mail.compose import EmailExtras, EmailView
from slotguard.mail.context import payments_context, recipient_locale, terms
from slotguard.mail.messages import Renderer
from slotguard.planning.reminders import CLIENT_ORGANISED
from slotguard.policies.hookspecs import hookimpl
from slotguard.policies.info import Policy

log = logging.getLogger("slotguard.payments")

FETCHED = "card_setup_link"  # its key in EmailView.fetched
# Where each email that offers it shows the link: the confirmation in the slot for a payment
# link; a reminder in its own (a reminder carries a fresh one while the client still has no
# card on file: the confirmation's may have run out).
SLOT_IN = {"booking_confirmation": "payment_link", "reminder": "card_link"}
# Stripe shows at most this many characters of a Checkout Session's custom text.
TERMS_LIMIT = 1200


def wants_card_setup_link(action: Action) -> bool:
    """True for an email that offers a card-setup link: a booking confirmation or reminder
    without a payment link of its own, about an event you organised (no fee can arise from
    one the client organised: calendar.client_organised)."""
    return action.template in SLOT_IN and not action.context.get("payment_link") and not action.context.get(CLIENT_ORGANISED)


def can_offer(provider: Any, settings: Settings, policies: list[Policy]) -> bool:
    """True when card-setup links can be offered at all: the provider makes them
    (`CardSetupLinks`), payments are not in dry-run, and an enabled policy can charge a fee."""
    return (isinstance(provider, CardSetupLinks) and not settings.payments.dry_run
            and any(policy.info.role == "fee" for policy in policies))


def card_terms_text(settings: Settings, policies: list[Policy], renderer: Renderer, action: Action, appointment: Appointment) -> str:
    """What a saved card may be charged for and when, in the language of `action`'s client:
    the sentence the email shows beside the card-setup link, then the policy in short (the
    cancellation policy's lines), cut to whole lines within Stripe's limit. "" when no policy
    says anything of it. Raises TemplateProblem when the template fails."""
    locale = renderer.pick_locale("booking_confirmation", recipient_locale(settings, action, appointment))
    env = renderer.env_for(locale)
    # The templates' macros (a TemplateModule's attributes, unknown to the type checker).
    card_terms: Any = env.get_template("_decided.txt.j2").make_module({}).card_terms  # type: ignore[attr-defined]
    policy_lines: Any = env.get_template("_policy.txt.j2").make_module({}).policy_lines  # type: ignore[attr-defined]
    found = terms(policies, appointment)
    lines = [str(card_terms(found, payments_context(settings), {})).strip(), str(policy_lines(found)).strip()]
    text = ""
    for line in "\n".join(part for part in lines if part).splitlines():
        if len(text) + len(line) + 1 > TERMS_LIMIT:
            break
        text = f"{text}\n{line}" if text else line
    return text


def card_setup_link_for(provider: Any, settings: Settings, policies: list[Policy], client_email: str, client_name: str = "", card_terms: str = "") -> str:
    """The link a booking email should carry so the client saves a card, or "".

    A link is made (a Stripe Checkout Session in setup mode, the customer found or created
    by email) only when the provider can make one (`CardSetupLinks`), payments are not in
    dry-run, at least one enabled policy can charge a fee, and the client has no card on
    file yet. `card_terms` (card_terms_text) is shown on the provider's page before the card is
    saved. Never raises: when Stripe cannot be reached the email goes out without the
    link (logged), rather than not at all. The link expires after 24 hours.
    """
    if not client_email or not can_offer(provider, settings, policies):
        return ""
    try:
        if provider.has_card_on_file(client_email):
            return ""
        return provider.card_setup_link(client_email, client_name, card_terms)
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
