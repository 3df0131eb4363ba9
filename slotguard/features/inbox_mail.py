"""The inbox's emails (slotguard/inbox/replies.py) as a plugin: their details come from the
action's context, and a forwarded message is attached as it came. What the ledger knows
fills in the rest when the email is written: the client and the appointment a forwarded
cancellation was about (for its subject), and when a fee kept as it is gets charged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slotguard.domain.model import Action, Appointment
from slotguard.inbox.replies import POLICY, RECEIPT_TEMPLATE, REPLY, SPOOL, TEMPLATE, spooled, what_fee
from slotguard.mail.compose import EmailExtras, EmailView
from slotguard.mail.messages import Attachment
from slotguard.policies.hookspecs import hookimpl
from slotguard.store.ledger import Ledger


def _from_ledger(ledger: Ledger, action: Action, details: dict[str, Any]) -> dict[str, Any]:
    """What the ledger adds to a reply's details (nothing when the row is gone)."""
    row = ledger.mail_row(action.happening_key.removeprefix("inbox/"))
    if row is None:
        return {}
    if details.get("kind") == "forward" and details.get("outcome") == "cancelled" and row.get("event_id"):
        tracked = ledger.tracked(row["calendar_id"], row["event_id"])
        if tracked is not None:
            appointment = tracked.appointment
            return {"name": appointment.client.name or appointment.client.email, "start": appointment.start.isoformat()}
    if details.get("outcome") == "kept" and row.get("action_id"):
        fee = what_fee(ledger.action(row["action_id"]))
        return {"due": fee["due"], "purpose": fee["purpose"]}
    return {}


@hookimpl
def slotguard_email_extras(action: Action, appointment: Appointment | None, view: EmailView, now: datetime) -> EmailExtras | None:
    if action.policy != POLICY or action.template not in (TEMPLATE, RECEIPT_TEMPLATE):
        return None
    details = dict(action.context.get(REPLY) or {})
    if action.template == RECEIPT_TEMPLATE:
        return EmailExtras(details=details)
    details.update(_from_ledger(view.ledger, action, details))
    attachments = (Attachment("message.eml", "message", "rfc822", spooled(view.settings, action)),) if action.context.get(SPOOL) else ()
    return EmailExtras(details=details, attachments=attachments)
