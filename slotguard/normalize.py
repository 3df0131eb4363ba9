"""Turn a Google Calendar v3 Event resource (a dict) into an Appointment.

Every calendar source hands the engine events in this one shape (the .ics adapter converts
to it, replay scenarios are written in it), so the practitioner's conventions (who the
client is, which colour or tag means what, what a session costs) are read in one place.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from slotguard.config import MarkRule, Settings
from slotguard.durations import DurationError, parse_timestamp
from slotguard.model import Appointment, Client, Mark
from slotguard.money import Money, MoneyError

# Google Calendar's event colours (colors.get "event" palette): name -> colorId.
COLOR_IDS = {
    "lavender": "1",
    "sage": "2",
    "grape": "3",
    "flamingo": "4",
    "banana": "5",
    "tangerine": "6",
    "peacock": "7",
    "graphite": "8",
    "blueberry": "9",
    "basil": "10",
    "tomato": "11",
}

_LINE_RE = re.compile(r"^\s*(email|price|lang|cancelled|link)\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_EMAIL_RE = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
_TAG_CACHE: dict[str, re.Pattern] = {}


# Slotguard's own status line on an event ("Slotguard: ... unless you add #waive"): never read
# as the practitioner's marks or lines. Plain-text and HTML descriptions (up to <br> or newline).
_OWN_NOTE_RE = re.compile(r"(^|\r?\n|<br\s*/?>)[ \t]*Slotguard:[^\r\n<]*", re.IGNORECASE)


def without_own_note(description: str) -> str:
    """The description without Slotguard's status line(s)."""
    return _OWN_NOTE_RE.sub(r"\1", description or "")


class EventError(ValueError):
    """An event that looks like an appointment but cannot be read; the message names it."""


@dataclass(frozen=True, slots=True)
class Normalized:
    """The result for one event: an appointment, or None with a reason it was skipped."""

    appointment: Appointment | None
    skipped: str = ""


def color_id(name_or_id: str | None) -> str | None:
    """Map "tomato" or "11" to the colorId "11"; None passes through."""
    if name_or_id is None:
        return None
    key = str(name_or_id).strip().lower()
    return COLOR_IDS.get(key, key)


def _tag_pattern(tag: str) -> re.Pattern:
    pattern = _TAG_CACHE.get(tag)
    if pattern is None:
        pattern = re.compile(r"(?<![\w#])" + re.escape(tag.lower()) + r"(?!\w)")
        _TAG_CACHE[tag] = pattern
    return pattern


def _matches(rule: MarkRule, color: str | None, text: str) -> bool:
    if rule.color and color and color_id(rule.color) == color:
        return True
    return any(_tag_pattern(tag).search(text) for tag in rule.tags if tag)


def _when(value: dict | None, zone_name: str, what: str, event_id: str) -> tuple[datetime | None, str]:
    """Return (aware datetime, zone name) for a v3 start/end; (None, "") for all-day."""
    if not isinstance(value, dict):
        raise EventError(f"event {event_id}: has no {what} time")
    zone = value.get("timeZone") or zone_name
    if "dateTime" in value:
        try:
            moment = parse_timestamp(value["dateTime"])
        except DurationError as error:
            raise EventError(f"event {event_id}: {what} {error}") from None
        # Kept in UTC: Python compares and subtracts two datetimes of the same ZoneInfo by
        # wall time, which is wrong across a DST change (02:30 CEST vs 02:30 CET). The zone
        # name travels beside it for display.
        if zone:
            try:
                ZoneInfo(zone)  # an unknown zone is an error here, not at display time
            except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
                raise EventError(f"event {event_id}: unknown time zone {zone!r}") from None
        return moment.astimezone(timezone.utc), zone
    if "date" in value:
        date.fromisoformat(value["date"])
        return None, zone
    raise EventError(f"event {event_id}: {what} has neither dateTime nor date")


def _client(event: dict, lines: dict[str, str], settings: Settings) -> Client | None:
    excluded = {address.lower() for address in settings.calendar.exclude_addresses}
    excluded.add(settings.practice.email.lower())
    organizer = (event.get("organizer") or {}).get("email", "").lower()
    for attendee in event.get("attendees") or []:
        email = (attendee.get("email") or "").strip()
        if (
            not email
            or attendee.get("organizer")
            or attendee.get("resource")
            or attendee.get("self")
            or email.lower() == organizer
            or email.lower() in excluded
        ):
            continue
        return Client(email=email.lower(), name=(attendee.get("displayName") or "").strip())
    if "email" in lines:
        email = lines["email"].strip().strip("<>").lower()
        if not _EMAIL_RE.match(email):
            raise EventError(f"the email: line {lines['email']!r} is not an email address")
        return Client(email=email, name="")
    return None


def _invited(event: dict, client: Client) -> bool:
    """True when the client is among the attendees, so reads the event in their calendar."""
    return any((attendee.get("email") or "").strip().lower() == client.email for attendee in event.get("attendees") or [])


def _declined(event: dict, client: Client) -> bool:
    for attendee in event.get("attendees") or []:
        if (attendee.get("email") or "").lower() == client.email:
            return attendee.get("responseStatus") == "declined"
    return False


def _service(title: str, minutes: int, settings: Settings) -> str:
    lowered = title.lower()
    for name, service in settings.services.items():
        if any(word.lower() in lowered for word in service.match):
            return name
    for name, service in settings.services.items():
        if name != "default" and not service.match and service.duration.total_seconds() == minutes * 60:
            return name
    return "default"


def _meeting_link(event: dict, lines: dict[str, str]) -> str:
    if lines.get("link"):
        return lines["link"]
    if event.get("hangoutLink"):
        return event["hangoutLink"]
    for entry in (event.get("conferenceData") or {}).get("entryPoints") or []:
        if entry.get("entryPointType") == "video" and entry.get("uri"):
            return entry["uri"]
    location = event.get("location") or ""
    return location if location.startswith("https://") else ""


def normalize(
    event: dict,
    calendar_id: str,
    settings: Settings,
    seen_at: datetime,
    previous: Appointment | None = None,
) -> Normalized:
    """Read one v3 Event resource as an appointment.

    Given the event, its calendar id, the settings, when it was seen (stands in for a
    missing `updated` stamp) and the last known appointment for this event (used when a
    cancelled event arrives with only its id). Returns Normalized with an
    appointment, or with `skipped` saying why it is not an appointment (no client, all-day).
    Raises EventError naming the event when it looks like an appointment but is unreadable.
    """
    event_id = str(event.get("id") or "")
    if not event_id:
        raise EventError("an event has no id")
    if event.get("_error"):
        raise EventError(f"event {event_id}: {event['_error']}")
    status = event.get("status") or "confirmed"
    if status == "cancelled" and "start" not in event:
        if previous is None:
            return Normalized(None, "cancelled event we never saw")
        updated = _updated(event, seen_at, event_id)
        return Normalized(replace(previous, status="cancelled", updated=updated))
    title = event.get("summary") or ""
    description = without_own_note(event.get("description") or "")
    lines = {key.lower(): value for key, value in _LINE_RE.findall(description)}
    try:
        client = _client(event, lines, settings)
    except EventError as error:
        raise EventError(f"event {event_id} ({title!r}): {error}") from None
    if client is None:
        return Normalized(None, "no client on the event")
    zone_name = settings.practice.timezone
    start, start_zone = _when(event.get("start"), zone_name, "start", event_id)
    end, _ = _when(event.get("end"), zone_name, "end", event_id)
    if start is None or end is None:
        return Normalized(None, "all-day event")
    if end <= start:
        raise EventError(f"event {event_id} ({title!r}): does not end after it starts; check its start and end times")
    service = _service(title, int((end - start).total_seconds() // 60), settings)
    price = settings.services[service].price
    if "price" in lines:
        try:
            price = Money.parse(lines["price"], settings.practice.currency)
        except MoneyError as error:
            raise EventError(
                f"event {event_id} ({title!r}): the price: line cannot be read: {error}; "
                f"write it like \"price: 900 {settings.practice.currency}\""
            ) from None
        if price.currency != settings.practice.currency or price.minor <= 0:
            raise EventError(
                f"event {event_id} ({title!r}): price {price} must be a positive amount in "
                f"{settings.practice.currency}"
            )
    original_start = None
    if isinstance(event.get("originalStartTime"), dict):
        original_start, _ = _when(event["originalStartTime"], zone_name, "originalStartTime", event_id)
    cancelled_at = None
    if "cancelled" in lines:
        try:
            cancelled_at = parse_timestamp(lines["cancelled"])
        except DurationError as error:
            raise EventError(f"event {event_id} ({title!r}): the cancelled: line {error}") from None
    marks_config = settings.calendar.marks
    color = event.get("colorId")
    text = f"{title}\n{description}".lower()
    marks = frozenset(
        mark.value
        for mark, rule in (
            (Mark.NO_SHOW, marks_config.no_show),
            (Mark.LATE_CANCEL, marks_config.late_cancel),
            (Mark.WAIVE, marks_config.waive),
            (Mark.ATTENDED, marks_config.attended),
            (Mark.WANTS_EARLIER, marks_config.wants_earlier),
        )
        if _matches(rule, color, text)
    )
    return Normalized(
        Appointment(
            calendar_id=calendar_id,
            event_id=event_id,
            client=client,
            start=start,
            end=end,
            timezone=start_zone,
            status="cancelled" if status == "cancelled" else "confirmed",
            price=price,
            service=service,
            title=title,
            updated=_updated(event, seen_at, event_id),
            marks=marks,
            client_declined=_declined(event, client),
            cancelled_at=cancelled_at,
            location=event.get("location") or "",
            meeting_link=_meeting_link(event, lines),
            locale=lines.get("lang", "").strip().lower() or None,
            original_start=original_start,
            series_id=event.get("recurringEventId") or None,
            client_invited=_invited(event, client),
        )
    )


def _updated(event: dict, fallback: datetime, event_id: str) -> datetime:
    value = event.get("updated")
    if not value:
        return fallback
    try:
        return parse_timestamp(value)
    except DurationError as error:
        raise EventError(f"event {event_id}: updated {error}") from None
