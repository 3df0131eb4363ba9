"""Client emails as MIME messages: rendered text and HTML, headers, attachments (.ics).

Rendering (one template per email, words from the locale's message catalog) is in
slotguard/mail/render.py; its names are exported here too, so callers import one module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from zoneinfo import ZoneInfo

from slotguard.mail.render import (
    BUNDLED_TEMPLATES,
    CLIENT_TEMPLATES,
    DIGEST_TEMPLATE,
    LOCALE_ALIASES,
    LOCALES,
    TEMPLATE_NAMES,
    Rendered,
    Renderer,
    TemplateProblem,
    fee_variants,
    header_safe,
    normalize_locale,
)

__all__ = [
    "BUNDLED_TEMPLATES", "CLIENT_TEMPLATES", "DIGEST_TEMPLATE", "ICS_TEMPLATES", "LOCALES", "LOCALE_ALIASES",
    "TEMPLATE_NAMES", "Attachment", "Rendered", "Renderer", "TemplateProblem", "appointment_ics",
    "appointment_uid", "build_email", "fee_variants", "header_safe", "message_id_for", "normalize_locale",
]

# Templates whose message carries the appointment as an .ics file.
ICS_TEMPLATES = frozenset({"booking_confirmation", "reminder"})
_SEQUENCE_EPOCH = datetime(2026, 1, 1, tzinfo=ZoneInfo("UTC"))


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    maintype: str
    subtype: str
    data: bytes
    params: Mapping[str, str] = field(default_factory=dict)
    # Set for a part the HTML shows inline (<img src="cid:CONTENT_ID">, a chart of the monthly
    # report): it goes beside the HTML in a multipart/related, not after it as a file.
    content_id: str = ""


def build_email(
    rendered: Rendered,
    *,
    sender_name: str,
    sender_email: str,
    reply_to: str,
    to_name: str,
    to_email: str,
    message_id: str,
    date: datetime,
    attachments: tuple[Attachment, ...] | list[Attachment] = (),
) -> EmailMessage:
    """A multipart/alternative message (plain text + HTML), mixed with attachments, with
    safe headers. Attachments with a `content_id` are parts of the HTML (multipart/related)
    that it shows inline.

    Names are folded to one line so event data cannot inject headers; addresses are checked
    by the email package. Raises ValueError on an address that cannot be used.
    """
    message = EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = Address(display_name=header_safe(sender_name), addr_spec=header_safe(sender_email))
    message["To"] = Address(display_name=header_safe(to_name), addr_spec=header_safe(to_email))
    message["Reply-To"] = Address(display_name=header_safe(sender_name), addr_spec=header_safe(reply_to))
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    inline = [attachment for attachment in attachments if attachment.content_id]
    if inline:
        html = message.get_body(("html",))
        assert isinstance(html, EmailMessage)
        for attachment in inline:
            html.add_related(
                attachment.data, maintype=attachment.maintype, subtype=attachment.subtype,
                cid=f"<{header_safe(attachment.content_id)}>", filename=attachment.filename, disposition="inline",
            )
    for attachment in attachments:
        if attachment.content_id:
            continue
        if (attachment.maintype, attachment.subtype) == ("message", "rfc822") and attachment.data.isascii():
            # A message forwarded as it came (docs/inbox.md): 7bit as RFC 2046 wants it, opened
            # as an email by the mail app. One with 8-bit bytes goes base64 (most apps still open it).
            message.add_attachment(message_from_bytes(attachment.data, policy=policy.SMTP), cte="7bit", filename=attachment.filename)
            continue
        message.add_attachment(
            attachment.data,
            maintype=attachment.maintype,
            subtype=attachment.subtype,
            filename=attachment.filename,
            params=dict(attachment.params),
        )
    # Set last: set_content() drops Content-* headers set before it.
    message["Content-Language"] = rendered.locale
    return message


def message_id_for(action_id: str, sender_email: str) -> str:
    """Stable per action, so a resend after a crash is recognisable as the same message."""
    domain = sender_email.rpartition("@")[2] or "slotguard.invalid"
    return f"<{action_id}@{header_safe(domain)}>"


def appointment_uid(calendar_id: str, event_id: str, sender_email: str) -> str:
    """The .ics UID of an appointment: the same for every message about it (so a calendar
    app updates its entry instead of adding a second one), and no internal id in clear."""
    digest = hashlib.sha256(f"{calendar_id}/{event_id}".encode()).hexdigest()[:24]
    domain = sender_email.rpartition("@")[2] or "slotguard.invalid"
    return f"slotguard-{digest}@{header_safe(domain)}"


def appointment_ics(
    *,
    uid: str,
    summary: str,
    start: datetime,
    end: datetime,
    stamp: datetime,
    location: str = "",
    description: str = "",
    url: str = "",
) -> Attachment:
    """An iCalendar file (METHOD:PUBLISH: information, not an invitation to answer) for one
    appointment. Times are written in UTC; the client's calendar shows them in its own zone."""
    from icalendar import Calendar, Event

    calendar = Calendar()
    calendar.add("prodid", "-//Slotguard//appointment//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp.astimezone(ZoneInfo("UTC")))
    event.add("dtstart", start.astimezone(ZoneInfo("UTC")))
    event.add("dtend", end.astimezone(ZoneInfo("UTC")))
    # A message sent later describes a newer version of the appointment (it may have moved).
    event.add("sequence", max(0, int((stamp - _SEQUENCE_EPOCH).total_seconds() // 60)))
    event.add("summary", header_safe(summary))
    event.add("status", "CONFIRMED")
    if location:
        event.add("location", header_safe(location))
    if description:
        event.add("description", description)
    if url:
        event.add("url", url)
    calendar.add_component(event)
    return Attachment(
        filename="appointment.ics",
        maintype="text",
        subtype="calendar",
        data=calendar.to_ical(),
        params={"method": "PUBLISH", "charset": "utf-8"},
    )
