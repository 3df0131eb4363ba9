"""Turn a Google Calendar v3 Event resource (a dict) into an Appointment.

Every calendar source hands the engine events in this one shape (the .ics adapter converts
to it, replay scenarios are written in it), so the practitioner's conventions (who the
client is, which colour or tag means what, what a session costs) are read in one place.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from slotguard.config.schema import Settings
from slotguard.config.sections import MarkRule
from slotguard.domain.durations import DurationError, parse_timestamp
from slotguard.domain.model import Appointment, Client, Mark
from slotguard.domain.money import Money, MoneyError
from slotguard.domain.untrusted import description_text, https_link, one_line, shown
from slotguard.intake.event_client import NAME_LIMIT, AmbiguousClient, candidates, choose_client, never_the_client
from slotguard.intake.own_note import without_own_note, written_note
from slotguard.intake.ownership import foreign_message, foreign_organizer, practitioner_addresses

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

LINE_KEYS = frozenset({"email", "price", "lang", "cancelled", "link"})
# Only this much of a title and a description is read (marks, lines): a description is
# the practitioner's notes, and a megabyte of it is more likely an attack than a note. An
# HTML description (Google's web editor) is cut first, then read as text.
DESCRIPTION_LIMIT = 20_000
# What is kept of text that may reach a client's email (item 17) or the ledger.
TITLE_LIMIT, LOCATION_LIMIT = 500, 300  # a name: event_client.NAME_LIMIT
ID_LIMIT = 1024  # Google's event ids are at most 1024 characters
VALUE_LIMIT = 64  # a price, a time or a language code is never longer
# Times outside these years are typos or attacks; inside them, date arithmetic never overflows.
EARLIEST_YEAR, LATEST_YEAR = 1900, 2999
_LOCALE_RE = re.compile(r"[a-z]{2,3}(?:[-_][a-z0-9]{2,8}){0,3}")
_TAG_CACHE: dict[str, re.Pattern] = {}


class EventError(ValueError):
    """An event that looks like an appointment but cannot be read; the message names it."""


class ForeignEvent(EventError):
    """An event with a would-be client that someone other than the practitioner organised:
    never an appointment (see slotguard/intake/ownership.py); the message says who organised it."""


def description_lines(description: str) -> dict[str, str]:
    """The `key: value` lines of a description read as text (see `description_text`; keys
    in LINE_KEYS, any case, spaces around key, colon and value allowed); the last of
    repeated keys wins. One pass over the text."""
    found: dict[str, str] = {}
    for line in description.split("\n"):
        key, colon, value = line.partition(":")
        if colon:
            key = key.strip().lower()
            value = value.strip()
            if key in LINE_KEYS and value:
                found[key] = value
    return found


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


# What a guest allowed to modify the event could have written that would cause a fee or reach
# a client's email: fee tags, and these description lines.
GUEST_UNTRUSTED_LINES = ("price", "cancelled", "link")


def _refuse_guest_writable(event: dict, title: str, description: str, lines: dict[str, str], settings: Settings, where: str) -> None:
    """Raise EventError when guests may modify the event (Google's `guestsCanModify`) and its
    title or description carries a no-show or late-cancellation tag or a price:, cancelled:
    or link: line: a client could have written it, so it is ambiguous and no fee rests on
    it. A waiver tag still counts (it can only take a fee away, or give the client's own
    money back), and so do colours, which are per calendar (a guest's stays in their copy)."""
    if event.get("guestsCanModify") is not True:
        return
    marks = settings.calendar.marks
    text = f"{title}\n{description}".lower()
    tagged = [name for name, rule in (("no-show", marks.no_show), ("late cancellation", marks.late_cancel)) if _matches(rule, None, text)]
    written = [f"{key}:" for key in GUEST_UNTRUSTED_LINES if key in lines]
    if tagged or written:
        what = ", ".join([f"a {name} tag" for name in tagged] + [f"a {line} line" for line in written])
        raise EventError(
            f"{where}: guests may modify this event, so {what} on it could be theirs; Slotguard takes no fee and "
            "sends nothing on it. Turn off \"Modify event\" for guests in the event's guest permissions, or mark it "
            "by colour (a colour stays in your own calendar)"
        )


def _in_range(moment: datetime, what: str, where: str) -> datetime:
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise EventError(f"{where}: {what} {moment.isoformat()} is not between the years {EARLIEST_YEAR} and {LATEST_YEAR}; check the year")
    return moment


def _timestamp(text: object, what: str, where: str) -> datetime:
    """An aware datetime from an ISO 8601 text, within the years Slotguard reads."""
    if not isinstance(text, str) or len(text) > VALUE_LIMIT:
        raise EventError(f"{where}: {what} {shown(text)} is not a time like 2026-03-02T09:00:00+01:00")
    try:
        moment = parse_timestamp(text)
    except DurationError as error:
        raise EventError(f"{where}: {what} {error}") from None
    return _in_range(moment, what, where)


def _when(value: dict | None, zone_name: str, what: str, where: str) -> tuple[datetime | None, str]:
    """Return (aware datetime, zone name) for a v3 start/end; (None, "") for all-day."""
    if not isinstance(value, dict):
        raise EventError(f"{where}: has no {what} time")
    zone = value.get("timeZone") or zone_name
    if "dateTime" in value:
        moment = _timestamp(value["dateTime"], what, where)
        # Kept in UTC: Python compares and subtracts two datetimes of the same ZoneInfo by
        # wall time, which is wrong across a DST change (02:30 CEST vs 02:30 CET). The zone
        # name travels beside it for display.
        if zone:
            try:
                ZoneInfo(zone)  # an unknown zone is an error here, not at display time
            except (ValueError, KeyError, OSError, TypeError):  # ZoneInfoNotFoundError is a KeyError
                raise EventError(f"{where}: unknown time zone {shown(zone)}") from None
        return moment.astimezone(UTC), zone
    if "date" in value:
        try:
            day = date.fromisoformat(value["date"])
        except (TypeError, ValueError):
            raise EventError(f"{where}: {what} date {shown(value['date'])} is not a date like 2026-03-02") from None
        _in_range(datetime(day.year, 1, 1), f"{what} date", where)
        return None, zone
    raise EventError(f"{where}: {what} has neither dateTime nor date")


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _invited(event: dict, client: Client) -> bool:
    """True when the client is among the attendees, so reads the event in their calendar."""
    return any((attendee.get("email") or "").strip().lower() == client.email for attendee in event.get("attendees") or [])


def _declined(event: dict, client: Client) -> bool:
    for attendee in event.get("attendees") or []:
        if isinstance(attendee, dict) and _text(attendee.get("email")).strip().lower() == client.email:
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


def _meeting_link(event: dict, lines: dict[str, str], where: str) -> str:
    """The meeting link: a `link:` line (an error unless it is an https:// address), else
    Google Meet's link, a video entry point or a location that is an https:// address.
    Only https:// links ever reach a client's email (item 17). On an event guests may
    modify, only Google Meet's link (Google makes it; a `link:` line is refused before):
    a guest could have written the location or a conference entry."""
    if "link" in lines:
        link = https_link(lines["link"])
        if not link:
            raise EventError(f"{where}: the link: line {shown(lines['link'])} is not an https:// address; write it like \"link: https://meet.example.com/abc\"")
        return link
    found = https_link(_text(event.get("hangoutLink")))
    if found or event.get("guestsCanModify") is True:
        return found
    conference = event.get("conferenceData")
    for entry in (conference.get("entryPoints") or []) if isinstance(conference, dict) else []:
        if isinstance(entry, dict) and entry.get("entryPointType") == "video":
            found = https_link(_text(entry.get("uri")))
            if found:
                return found
    return https_link(_text(event.get("location")))


def _price(lines: dict[str, str], default: Money, settings: Settings, where: str) -> Money:
    if "price" not in lines:
        return default
    currency = settings.practice.currency
    text = lines["price"]
    try:
        if len(text) > VALUE_LIMIT:
            raise MoneyError(f"{shown(text, 20)} is too long for an amount")
        price = Money.parse(text, currency)
    except MoneyError as error:
        raise EventError(f"{where}: the price: line cannot be read: {error}; write it like \"price: 900 {currency}\"") from None
    if price.currency != currency or price.minor <= 0:
        raise EventError(f"{where}: price {price} must be a positive amount in {currency}")
    ceiling = settings.services.price_ceiling
    if price > ceiling:
        raise EventError(
            f"{where}: the price: line says {price}, more than the most a price line may say ({ceiling}); "
            "correct the line, or raise services.max_price if this price is right"
        )
    return price


def _cancelled_at(event: dict, lines: dict[str, str], seen_at: datetime, where: str) -> datetime | None:
    """The `cancelled:` time, refused when it is later than when the event was read or
    earlier than the event's creation (item 4): either is a typo, and a fee must never rest
    on it."""
    if "cancelled" not in lines:
        return None
    cancelled_at = _timestamp(lines["cancelled"], "the cancelled: line", where)
    if cancelled_at > seen_at:
        raise EventError(
            f"{where}: the cancelled: line says {cancelled_at.isoformat()}, later than when Slotguard read the event "
            f"({seen_at.isoformat(timespec='minutes')}); check its date and year"
        )
    if event.get("created"):
        created = _timestamp(event["created"], "created", where)
        if cancelled_at < created:
            raise EventError(
                f"{where}: the cancelled: line says {cancelled_at.isoformat()}, before the event was created "
                f"({created.isoformat(timespec='minutes')}); check its date and year"
            )
    return cancelled_at


def _locale(lines: dict[str, str]) -> str | None:
    """The `lang:` line when it is shaped like a language code ("de", "pt-BR"); else None,
    and the practice's default applies."""
    code = lines.get("lang", "").strip().lower()
    return code if len(code) <= VALUE_LIMIT and _LOCALE_RE.fullmatch(code) else None


def _event_id(event: dict) -> str:
    event_id = event.get("id")
    if not event_id:
        raise EventError("an event has no id")
    if not isinstance(event_id, str) or len(event_id) > ID_LIMIT or not event_id.isprintable():
        raise EventError(f"an event has an id Slotguard cannot keep ({shown(event_id)}); it is skipped")
    return event_id


def normalize(
    event: dict,
    calendar_id: str,
    settings: Settings,
    seen_at: datetime,
    previous: Appointment | None = None,
) -> Normalized:
    """Read one v3 Event resource as an appointment.

    Given the event, its calendar id, the settings, when it was seen (stands in for a
    missing `updated` stamp, and no `cancelled:` line may be later) and the last known
    appointment for this event (used when a cancelled event arrives with only its id).
    Returns Normalized with an appointment, or with `skipped` saying why it is not an
    appointment (no client, all-day, someone else's event without a client).
    Raises EventError naming the event when it looks like an appointment but is unreadable,
    ForeignEvent (an EventError) when someone other than the practitioner organised it.
    Calendar text is untrusted: what is kept is folded and capped, links are https only.
    """
    event_id = _event_id(event)
    if event.get("_error"):
        raise EventError(f"event {event_id}: {one_line(str(event['_error']), 300)}")
    status = event.get("status") or "confirmed"
    if status == "cancelled" and "start" not in event:
        if previous is None:
            return Normalized(None, "cancelled event we never saw")
        updated = _updated(event, seen_at, f"event {event_id}")
        return Normalized(replace(previous, status="cancelled", updated=updated))
    title = _text(event.get("summary"))[:DESCRIPTION_LIMIT]
    where = f"event {event_id} ({shown(title, 40)})"
    guests = candidates(event, settings, calendar_id)
    organizer = foreign_organizer(event, settings, calendar_id)
    if organizer is not None:
        if not guests and settings.calendar.client_organised == "remind" and organizer.address \
                and organizer.address not in never_the_client(settings, calendar_id):
            return Normalized(_client_organised(event, event_id, organizer.address, title, status, calendar_id, settings, seen_at, where))
        # Someone else's event: its title, description and colour are theirs, so nothing
        # on it is read. Worth showing only when it names someone who could be billed and
        # is not cancelled.
        if guests and status != "cancelled":
            raise ForeignEvent(f"{where}: {foreign_message(organizer)}")
        return Normalized(None, f"organised by {organizer.label}, with no client or cancelled")
    description = without_own_note(description_text(_text(event.get("description")), DESCRIPTION_LIMIT), written_note(event))
    lines = description_lines(description)
    _refuse_guest_writable(event, title, description, lines, settings, where)
    try:
        client = choose_client(guests, lines)
    except AmbiguousClient as error:
        if status != "cancelled":
            raise EventError(f"{where}: {error}") from None
        # A cancellation needs no client chosen: the one we knew, if any, had it cancelled.
        if previous is None:
            return Normalized(None, "cancelled, with several possible clients")
        return Normalized(replace(previous, status="cancelled", updated=_updated(event, seen_at, where)))
    except ValueError as error:
        raise EventError(f"{where}: {error}") from None
    if client is None:
        return Normalized(None, "no client on the event")
    zone_name = settings.practice.timezone
    start, start_zone = _when(event.get("start"), zone_name, "start", where)
    end, _ = _when(event.get("end"), zone_name, "end", where)
    if start is None or end is None:
        return Normalized(None, "all-day event")
    if end <= start:
        raise EventError(f"{where}: does not end after it starts; check its start and end times")
    service = _service(title, int((end - start).total_seconds() // 60), settings)
    price = _price(lines, settings.services[service].price, settings, where)
    original_start = None
    if isinstance(event.get("originalStartTime"), dict):
        original_start, _ = _when(event["originalStartTime"], zone_name, "originalStartTime", where)
    cancelled_at = _cancelled_at(event, lines, seen_at, where)
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
            (Mark.KNOWS_POLICY, marks_config.knows_policy),
        )
        if _matches(rule, color, text)
    )
    series_id = _text(event.get("recurringEventId"))
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
            title=one_line(title, TITLE_LIMIT),
            updated=_updated(event, seen_at, where),
            marks=marks,
            client_declined=_declined(event, client),
            cancelled_at=cancelled_at,
            location=one_line(_text(event.get("location")), LOCATION_LIMIT),
            meeting_link=_meeting_link(event, lines, where),
            locale=_locale(lines),
            original_start=original_start,
            series_id=one_line(series_id, ID_LIMIT) or None,
            client_invited=_invited(event, client),
        )
    )


def _client_organised(event: dict, event_id: str, organizer: str, title: str, status: str, calendar_id: str,
                      settings: Settings, seen_at: datetime, where: str) -> Appointment | None:
    """The appointment of an event the client `organizer` organised (calendar.client_organised
    = "remind"), or None for an all-day one. Only its times, its series and whether you
    declined are read: its title (beyond choosing the service), description, colour, location
    and lines are the client's, so it has no marks, the service's price, no link, no place."""
    zone_name = settings.practice.timezone
    start, start_zone = _when(event.get("start"), zone_name, "start", where)
    end, _ = _when(event.get("end"), zone_name, "end", where)
    if start is None or end is None:
        return None
    if end <= start:
        raise EventError(f"{where}: does not end after it starts; check its start and end times")
    you = practitioner_addresses(settings, calendar_id)
    declined = any(
        isinstance(attendee, dict) and (attendee.get("self") is True or _text(attendee.get("email")).strip().lower() in you)
        and attendee.get("responseStatus") == "declined"
        for attendee in event.get("attendees") or []
    )
    entry = event.get("organizer")
    name = _text(entry.get("displayName")) if isinstance(entry, dict) else ""
    original_start = None
    if isinstance(event.get("originalStartTime"), dict):
        original_start, _ = _when(event["originalStartTime"], zone_name, "originalStartTime", where)
    service = _service(title, int((end - start).total_seconds() // 60), settings)
    return Appointment(
        calendar_id=calendar_id, event_id=event_id, client=Client(email=organizer, name=one_line(name, NAME_LIMIT)),
        start=start, end=end, timezone=start_zone, status="cancelled" if status == "cancelled" or declined else "confirmed",
        price=settings.services[service].price, service=service, title=one_line(title, TITLE_LIMIT),
        updated=_updated(event, seen_at, where), original_start=original_start,
        series_id=one_line(_text(event.get("recurringEventId")), ID_LIMIT) or None, client_invited=True, client_organised=True,
    )


def _updated(event: dict, fallback: datetime, where: str) -> datetime:
    value = event.get("updated")
    if not value:
        return fallback
    return _timestamp(value, "updated", where)
