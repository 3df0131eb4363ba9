"""The digest's sections about the inbox (docs/templates.md, practitioner_digest; docs/inbox.md):

- `unconfirmed`: tomorrow's appointments whose client had "I'll be there" and "I need to
  cancel" links (an inbox, `inbox.client_links`, and a reminder or booking confirmation sent
  for the appointment) and has confirmed by neither; one cancelled by email is not listed
  (the calendar shows it cancelled). "Not confirmed yet: call them?"
- `client_mail`: messages the inbox did not act on since the previous digest (a client's reply,
  a question, mail from someone unknown): who (the client's name when the ledger knows the
  address, else the address), when it arrived, and where it is (forwarded to the practice, or
  left unread in the inbox: with `inbox.other_mail = "leave"`, and for an automatic message or
  one over `inbox.max_message_size`). Never the message's text: the ledger keeps none.
- `refused`: how many command emails were refused since the previous digest (forged sender,
  bad or expired token, replay), a count for one line.

Read only. Without an inbox every one is empty.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slotguard.config.schema import Settings
from slotguard.domain.durations import from_utc_text
from slotguard.domain.model import ActionKind, ActionState
from slotguard.mail.client_links import inbox_on
from slotguard.mail.context import service_label
from slotguard.mail.messages import ICS_TEMPLATES
from slotguard.store.inbox_rows import CANCEL, CLIENT_MAIL, CONFIRM, OTHER, REFUSED
from slotguard.store.ledger import Ledger


def _had_links(ledger: Ledger, calendar_id: str, event_id: str) -> bool:
    """True when a reminder or booking confirmation of this appointment was sent (it carried
    the links while `inbox.client_links` is on)."""
    return any(
        action.template in ICS_TEMPLATES and action.state is ActionState.DONE
        for action in ledger.actions(kinds=[ActionKind.EMAIL], calendar_id=calendar_id, event_id=event_id)
    )


def unconfirmed(settings: Settings, ledger: Ledger, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Appointments starting in [start, end) whose client had the links and has not answered:
    `client`, `name`, `start`, `end`, `service`."""
    if not inbox_on(settings) or not settings.inbox.client_links:
        return []
    rows = []
    for tracked in ledger.upcoming(start, limit=500):
        appointment = tracked.appointment
        if appointment.start >= end:
            break
        if appointment.client_organised or not appointment.client.email:
            continue
        signals = (ledger.email_signal(appointment.calendar_id, appointment.event_id, appointment.start, kind) for kind in (CONFIRM, CANCEL))
        if any(signal is not None for signal in signals):
            continue
        if not _had_links(ledger, appointment.calendar_id, appointment.event_id):
            continue
        rows.append({
            "client": appointment.client.email,
            "name": appointment.client.name or appointment.client.email,
            "start": appointment.start,
            "end": appointment.end,
            "service": service_label(settings, appointment.service),
        })
    return rows


def client_mail(settings: Settings, ledger: Ledger, since: datetime) -> list[dict[str, Any]]:
    """Messages not acted on since `since`, oldest first: `sender`, `name` (the client's,
    else the address), `known` (a client of the practice), `at`, `where` ("forward" or "leave")."""
    if not inbox_on(settings):
        return []
    rows = []
    for row in ledger.mail_since(since, kinds=(CLIENT_MAIL, OTHER)):
        sender = str(row["sender"] or "").strip().lower()
        name = None
        if row.get("calendar_id") and row.get("event_id"):
            tracked = ledger.tracked(row["calendar_id"], row["event_id"])
            name = tracked.appointment.client.name if tracked else None
        if not name and sender:
            name = ledger.own_client_name(sender)
        rows.append({
            "sender": sender,
            "name": name or sender,
            "known": row["kind"] == CLIENT_MAIL or bool(name),
            "at": from_utc_text(row["received_at"]),
            # left (automatic mail, "leave") or too large: left unread whatever inbox.other_mail says
            "where": "leave" if row["outcome"] in ("left", "too_large") else settings.inbox.other_mail,
        })
    return rows


def refused_count(settings: Settings, ledger: Ledger, since: datetime) -> int:
    """How many command emails were refused since `since`."""
    return len(ledger.mail_since(since, kinds=(REFUSED,))) if inbox_on(settings) else 0
