"""Composing the one message an email action sends: its template's context, what the
features add to it, rendered in the recipient's language.

Composition knows no feature. Each feature (the daily digest, the evidence pack, the card
setup link, ...) adds template details or attachments by answering the hook
`slotguard_email_extras(action, appointment, view, now)` (slotguard/policies/hookspecs.py);
the executor passes the hook in, with the features registered (slotguard/run/email_features.py).
Rendering is pure: what needs a call to the outside (a card-setup link from the payment
provider) is fetched by the executor before, and comes in `fetched`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from slotguard.config.schema import Settings
from slotguard.domain.model import Action, Appointment
from slotguard.mail.context import appointment_attachment, email_context, practitioner_context, recipient_locale
from slotguard.mail.messages import ICS_TEMPLATES, Attachment, Renderer, build_email, message_id_for
from slotguard.policies.info import Policy
from slotguard.store.ledger import Ledger

# The hook's caller: pluggy's `manager.hook.slotguard_email_extras`, which takes the hook's
# arguments by name and returns the answers that are not None.
ExtrasHook = Callable[..., list[Any]]


@dataclass(frozen=True)
class EmailExtras:
    """What one feature adds to one email: `details` merged into the template's `details`,
    and files attached after the appointment's .ics (if any)."""

    details: Mapping[str, Any] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class EmailView:
    """What a feature may read while adding to an email: the settings, the enabled policies,
    the renderer, the ledger (to read only), what the executor fetched before rendering
    (e.g. {"card_setup_link": "https://..."}), and the hook itself (to compose another email,
    as the evidence pack does). Nothing here calls out."""

    settings: Settings
    policies: list[Policy]
    renderer: Renderer
    ledger: Ledger
    fetched: Mapping[str, str] = field(default_factory=dict)
    extras: ExtrasHook | None = None


def compose_email(
    settings: Settings,
    policies: list[Policy],
    renderer: Renderer,
    ledger: Ledger,
    action: Action,
    now: datetime,
    *,
    extras: ExtrasHook | None = None,
    fetched: Mapping[str, str] | None = None,
) -> EmailMessage:
    """The message an email action sends, in its recipient's language. An action about no
    appointment (no event id: the daily digest) is mail to the practice itself.

    `extras` is the `slotguard_email_extras` hook (None: no feature adds anything); `fetched`
    what the executor fetched for this email before (see EmailView). Makes no call.

    Raises TemplateProblem (a template fails), ValueError (an unusable address, or the
    appointment is no longer in the ledger).
    """
    assert action.template
    view = EmailView(settings, policies, renderer, ledger, dict(fetched or {}), extras)
    attachments: list[Attachment] = []
    appointment: Appointment | None = None
    if action.event_id:
        tracked = ledger.tracked(action.calendar_id, action.event_id)
        if tracked is None:
            raise ValueError(f"the appointment {action.event_ref} is no longer in the ledger")
        appointment = tracked.appointment
    # The language the email is written in, so the practitioner's own words (service label,
    # payment instructions) are given in it too.
    locale = renderer.pick_locale(action.template, recipient_locale(settings, action, appointment))
    if appointment is None:
        context = practitioner_context(settings, {}, locale)
        to_name = settings.practice.name
    else:
        fee = ledger.action(action.reports_on) if action.reports_on else None
        context = email_context(settings, policies, action, appointment, fee, locale)
        to_name = context["client"]["name"]
        if action.template in ICS_TEMPLATES:
            attachments.append(appointment_attachment(settings, appointment, context, now))
    for added in (extras(action=action, appointment=appointment, view=view, now=now) if extras else []):
        context["details"].update(added.details)
        attachments.extend(added.attachments)
    rendered = renderer.render(action.template, context, locale)
    return build_email(
        rendered,
        sender_name=settings.practice.name,
        sender_email=settings.sender,
        reply_to=settings.practice.email,
        to_name=to_name,
        to_email=action.client_email,
        message_id=message_id_for(action.id, settings.sender),
        date=now,
        attachments=attachments,
    )
