"""CalDAV calendar objects read as the Google Calendar v3 Event dicts every source speaks.

Each object (one href, one UID: a single event, or a series with its moved, changed and
cancelled instances) is parsed and expanded by the .ics source's own code
(integration/ics_parse.py, ics_expand.py: the same instance ids, the same caps on series,
the same "one bad series never blanks the others"), and each instance converted by
ics_source.vevent_to_resource (attendees and PARTSTAT, ORGANIZER, RFC 7986 COLOR, STATUS).
This module adds what a CalDAV calendar carries besides:

- An object that is no series (one VEVENT, no RRULE, RDATE or RECURRENCE-ID) keeps its UID
  as the event's id, as Google does, so a moved appointment is the same appointment (the
  .ics expansion names every instance UID_START), unless its UID ends like an instance's id
  (ics_source.INSTANCE_LIKE: anyone can choose a UID that is "<a series' UID>_<instance>"),
  which keeps UID_START. An object with two VEVENTs of one UID and no series is not read
  (ics_source.drop_duplicate_uids): the known appointment stays as it was.

- CATEGORIES values named in calendar.caldav.categories become the mark they name: the
  engine reads marks from tags and colours (slotguard/intake/normalize.py), so a matched
  category adds that mark's first tag on a line of its own to the description the engine
  reads (or, for a mark with no tag, sets its colour). The event itself is not changed.
- Slotguard's own X-SLOTGUARD-* properties (integration/caldav_write.py) become the
  event's `extendedProperties.private.slotguard_*`, where the engine and own_note.py look
  for them (so Slotguard's own status line is never read as the practitioner's words). A
  property with an X-SLOTGUARD-INSTANCE parameter belongs to that instance of a series only.
- An organizer or attendee whose address is one of the account's own
  (calendar-user-address-set) is marked `self`, as Google does.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import icalendar

from integration.ics_expand import Expansion, expand
from integration.ics_parse import parse_feed
from integration.ics_source import INSTANCE_LIKE, drop_duplicate_uids, vevent_to_resource
from slotguard.intake.normalize import color_id

PREFIX = "X-SLOTGUARD-"
INSTANCE = "X-SLOTGUARD-INSTANCE"
MARK_NAMES = ("no_show", "late_cancel", "waive", "attended", "wants_earlier", "knows_policy")


def property_name(key: str) -> str:
    """"slotguard_fee" -> "X-SLOTGUARD-FEE"."""
    return PREFIX + key.removeprefix("slotguard_").upper().replace("_", "-")


def state_key(name: str) -> str:
    """"X-SLOTGUARD-FEE" -> "slotguard_fee"."""
    return "slotguard_" + name[len(PREFIX):].lower().replace("-", "_")


def instance_suffix(event_id: str, uid: str) -> str:
    """The part of an instance id after "UID_" ("" for a single event's id, the UID)."""
    return event_id[len(uid) + 1:] if event_id.startswith(uid + "_") else ""


def _values(component: Any, name: str) -> list:
    value = component.get(name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _categories(component: Any) -> list[str]:
    found = []
    for value in _values(component, "CATEGORIES"):
        found += [str(text).strip().casefold() for text in getattr(value, "cats", [value])]
    return found


def _unescape(value: Any) -> str:
    text = value.to_ical().decode("utf-8", "replace") if hasattr(value, "to_ical") else str(value)
    return text.replace("\\n", "\n").replace("\\N", "\n").replace("\\,", ",").replace("\\;", ";").replace("\\\\", "\\")


class Converter:
    """Turns one calendar's objects into v3 Event dicts (see the module docstring)."""

    def __init__(self, settings: Any, addresses: list[str]):
        self.settings = settings
        self.zone = settings.practice.timezone
        self.addresses = {address.lower() for address in addresses}
        caldav = settings.calendar.caldav
        marks = settings.calendar.marks
        self.category_marks: list[tuple[set[str], Any]] = []
        for name in MARK_NAMES:
            values = {value.strip().casefold() for value in getattr(caldav.categories, name) if value.strip()} if caldav else set()
            if values:
                self.category_marks.append((values, getattr(marks, name)))

    def resource(self, component: Any, single: bool = False) -> dict:
        """The v3 dict of one instance; `single`: of an object that is no series, which
        keeps its UID as id (as Google's ids do), so a moved appointment stays the same one."""
        event = vevent_to_resource(component, self.zone)
        if single:
            event["id"] = str(component.get("UID") or event["id"])
            event.pop("recurringEventId", None)
            event.pop("originalStartTime", None)
        suffix = instance_suffix(event["id"], str(component.get("UID") or ""))
        private = {}
        for name in list(component):
            if not name.upper().startswith(PREFIX) or name.upper() == INSTANCE:
                continue
            for value in _values(component, name):
                instance = getattr(value, "params", {}).get(INSTANCE, "")
                if instance and instance != suffix:
                    continue
                private[state_key(name.upper())] = _unescape(value)
        if private:
            event["extendedProperties"] = {"private": private}
        added, color = [], None
        categories = set(_categories(component))
        for values, rule in self.category_marks:
            if categories & values:
                if rule.tags:
                    added.append(rule.tags[0])
                elif rule.color:
                    color = rule.color
        if added:
            event["description"] = "\n".join([event.get("description") or "", *added]).lstrip("\n")
        if color and "colorId" not in event:
            event["colorId"] = color_id(color)
        organizer = event.get("organizer")
        if isinstance(organizer, dict) and organizer.get("email", "").lower() in self.addresses:
            organizer["self"] = True
        for attendee in event.get("attendees") or []:
            if attendee.get("email", "").lower() in self.addresses:
                attendee["self"] = True
        return event

    def read(self, objects: list[tuple[str, bytes]], start: datetime, end: datetime) -> tuple[dict[str, list[dict]], list[tuple[str, str, str]]]:
        """The events of each object (href -> v3 dicts, instances between `start` and `end`;
        a single event outside them still, so a reschedule far ahead is seen as one), and
        (href, UID, problem) for each object not read (unparsable, past the caps)."""
        calendar_settings = self.settings.calendar
        read: dict[str, list[dict]] = {}
        problems: list[tuple[str, str, str]] = []
        for href, data in objects:
            try:
                calendar, refused = parse_feed(data)
            except Exception as error:  # noqa: BLE001 - one object never stops the others
                problems.append((href, href.rstrip("/").rpartition("/")[2], f"calendar object {href} is not valid iCalendar ({type(error).__name__})"))
                continue
            for uid, problem in refused + drop_duplicate_uids(calendar):
                problems.append((href, uid, problem))
            first, last = start, end
            events = calendar.walk("VEVENT")
            single = (len(events) == 1 and not any(events[0].get(name) is not None for name in ("RRULE", "RDATE", "RECURRENCE-ID"))
                      and not INSTANCE_LIKE.search(str(events[0].get("UID") or "")))
            if single:
                moment = events[0].get("DTSTART")
                moment = getattr(moment, "dt", None)
                if isinstance(moment, datetime):
                    moment = moment if moment.tzinfo else moment.replace(tzinfo=start.tzinfo)
                    first, last = min(start, moment - timedelta(days=1)), max(end, moment + timedelta(days=1))
            try:
                expansion: Expansion = expand(calendar, first, last, self.zone, calendar_settings.max_instances_per_series,
                                              calendar_settings.max_events, convert=lambda component: self.resource(component, single))  # noqa: B023 (called at once)
            except Exception as error:  # noqa: BLE001 - a calendar-wide fault of this object only
                problems.append((href, "", f"calendar object {href} cannot be read ({type(error).__name__})"))
                continue
            read[href] = list(expansion.components)
            problems += [(href, uid, problem) for uid, problem in expansion.skipped]
        return read, problems


def parse_object(data: bytes) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(data)
