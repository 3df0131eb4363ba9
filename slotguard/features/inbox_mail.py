"""The inbox's emails to the practice (slotguard/inbox/replies.py) as a plugin: their details
come from the action's context, and a forwarded message is attached as it came."""

from __future__ import annotations

from datetime import datetime

from slotguard.domain.model import Action, Appointment
from slotguard.inbox.replies import POLICY, REPLY, SPOOL, TEMPLATE, spooled
from slotguard.mail.compose import EmailExtras, EmailView
from slotguard.mail.messages import Attachment
from slotguard.policies.hookspecs import hookimpl


@hookimpl
def slotguard_email_extras(action: Action, appointment: Appointment | None, view: EmailView, now: datetime) -> EmailExtras | None:
    if action.template != TEMPLATE or action.policy != POLICY:
        return None
    attachments = (Attachment("message.eml", "message", "rfc822", spooled(view.settings, action)),) if action.context.get(SPOOL) else ()
    return EmailExtras(details=dict(action.context.get(REPLY) or {}), attachments=attachments)
