"""The client's links in a reminder or booking confirmation: "I'll be there" and "I need to
cancel" (docs/inbox.md, "The links in the emails").

With an inbox (`inbox.source` not "none") and `inbox.client_links`, this feature's
`slotguard_email_extras` gives the two templates that carry the appointment (ICS_TEMPLATES)
`details.client_links`: the inbox address and one signed token per command, each bound to
this appointment of this client at this start time (`appointment_target`) and valid until the
start. The templates word the subject and body in the client's language and build the
`mailto:` links (the `command_link` filter). None for an appointment already started or
cancelled, one the client organised (no fee can arise from it: reminders only), or an email
to someone other than the appointment's client. The secret is read once per email.
"""

from __future__ import annotations

from datetime import datetime

from slotguard.config.schema import Settings
from slotguard.domain.model import Action, Appointment
from slotguard.mail.compose import EmailExtras, EmailView
from slotguard.mail.links import appointment_target, load_secret, secret_path, sign
from slotguard.mail.messages import ICS_TEMPLATES
from slotguard.policies.hookspecs import hookimpl

KEY = "client_links"  # its key in the template's details
CLIENT_ORGANISED = "client_organised"  # set on reminders of events the client organised (planning/reminders.py)


def inbox_on(settings: Settings) -> bool:
    return settings.inbox.source != "none" and bool(settings.inbox.address)


def client_links(settings: Settings, secret: bytes, appointment: Appointment, client_email: str) -> dict[str, str]:
    """{"address", "confirm", "cancel"}: the inbox and the two tokens of this appointment."""
    target = appointment_target(appointment.calendar_id, appointment.event_id, appointment.start, client_email)
    return {
        "address": settings.inbox.address,
        "confirm": sign(secret, "confirm", target, appointment.start),
        "cancel": sign(secret, "cancel", target, appointment.start),
    }


def wants_links(settings: Settings, action: Action, appointment: Appointment | None, now: datetime) -> bool:
    if action.template not in ICS_TEMPLATES or appointment is None:
        return False
    if not inbox_on(settings) or not settings.inbox.client_links:
        return False
    if appointment.client_organised or action.context.get(CLIENT_ORGANISED) or appointment.status == "cancelled":
        return False
    return appointment.start > now and action.client_email.strip().lower() == appointment.client.email.strip().lower()


@hookimpl
def slotguard_email_extras(action: Action, appointment: Appointment | None, view: EmailView, now: datetime) -> EmailExtras | None:
    """`details.client_links` for a reminder or booking confirmation that may carry them."""
    if not wants_links(view.settings, action, appointment, now):
        return None
    assert appointment is not None
    secret = load_secret(secret_path(view.settings))
    return EmailExtras(details={KEY: client_links(view.settings, secret, appointment, action.client_email)})
