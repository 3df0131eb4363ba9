"""Whose event is it? Only the practitioner's own events are appointments.

Anyone with an email address can put an event into the practitioner's calendar by inviting
them: a stranger, or a client who invites the practitioner and someone else. The title,
description and colour of such an event are written by its organizer, so its marks and
`price:` line must never move anyone's money. The rule (issue 11, items 1 and 2): an event is
the practitioner's when

- Google marks its organizer `self` (the owner of the calendar being read organised it),
- the organizer's address is `practice.email`, one of `calendar.practitioner_addresses`, or
  the calendar's own id (Google names a secondary calendar as the organizer of the events
  created on it), or
- it has no organizer at all (only the calendar's owner can put such an event on their own
  calendar; .ics feeds leave ORGANIZER out of events without attendees).

Any other organizer, or one that cannot be read, makes the event someone else's.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from slotguard.config.schema import Settings
from slotguard.domain.untrusted import email_address, shown


@dataclass(frozen=True, slots=True)
class Organizer:
    """Who organised an event: `address` (lower case, "" when there is no usable one) and
    `label`, safe to show in a message or a log line."""

    address: str
    label: str


def practitioner_addresses(settings: Settings, calendar_id: str) -> frozenset[str]:
    """The addresses that are the practitioner for events of this calendar (lower case)."""
    found = {settings.practice.email.strip().lower(), calendar_id.strip().lower()}
    found.update(settings.calendar.practitioner_addresses)
    found.discard("")
    return frozenset(found)


def _organizer_entry(event: dict) -> dict | None:
    """The event's organizer, or the attendee flagged as organizer when the event has no
    organizer field; None when neither is there."""
    organizer = event.get("organizer")
    if organizer is not None:
        return organizer if isinstance(organizer, dict) else {"email": organizer}
    for attendee in event.get("attendees") or []:
        if isinstance(attendee, dict) and attendee.get("organizer"):
            return attendee
    return None


def foreign_organizer(event: dict, settings: Settings, calendar_id: str) -> Organizer | None:
    """Who organised `event` when it is not the practitioner's own; None when it is."""
    entry = _organizer_entry(event)
    if entry is None or entry.get("self") is True:
        return None
    raw = entry.get("email")
    raw = raw if isinstance(raw, str) else ""
    if raw.strip().lower() in practitioner_addresses(settings, calendar_id):
        return None
    address = email_address(raw) or ""
    return Organizer(address=address, label=address or (shown(raw) if raw else "someone without an address"))


def foreign_message(organizer: Organizer) -> str:
    """What the practitioner reads about an event someone else organised."""
    return (
        f"organised by {organizer.label}, not by you: Slotguard ignores it; nothing is sent or charged. "
        "If it is your own appointment, add that address to calendar.practitioner_addresses"
    )
