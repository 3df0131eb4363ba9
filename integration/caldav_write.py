"""Slotguard's status written onto a CalDAV event, and nothing else (CalendarWriteBack).

The state goes into X-SLOTGUARD-* properties of the practitioner's (the organizer's) copy:
X-SLOTGUARD-FEE, -STATE, -AMOUNT, -CURRENCY, and -NOTE (the exact status line written, so
that it alone is ever replaced: slotguard/intake/own_note.py). An instance of a series that
has no exception of its own gets its properties on the series' master with an
X-SLOTGUARD-INSTANCE parameter naming it, so no exception is created (that would change
the series for everyone invited).

How the object is written (read, edit the text, PUT with If-Match):
- The edit is made in the object's text: our property lines are taken out of the one
  VEVENT and new ones put in before its END:VEVENT; every other line stays byte for byte
  (no re-serialisation, no SEQUENCE or DTSTAMP change, never SCHEDULE-AGENT=CLIENT).
- A server that schedules (RFC 6638: Nextcloud, Fastmail, iCloud) emails attendees when
  SUMMARY, DESCRIPTION or LOCATION of a future event changes, and sends the whole event, X-
  properties included, with the next real update. So the status line goes into DESCRIPTION
  only of events without any ATTENDEE (never on a series' shared description either), as
  calendar.write_note allows ("always" counts as "no_attendees" here); and on an event
  with attendees only the fee's id and state are kept (no amount, no note text). When
  attendees were added after a line was written, the next write takes that line (exactly
  the text X-SLOTGUARD-NOTE recorded; the practitioner's text stays) out of DESCRIPTION and
  drops -AMOUNT, -CURRENCY and -NOTE in the same PUT.
- `If-Match` carries the ETag read: a 412 means the practitioner (or a client) changed the
  event meanwhile; it is read again and the edit redone on the new text, three times at
  most, then AdapterError (retryable): a concurrent edit is never overwritten.
- A write that would change nothing is not sent.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import icalendar
from icalendar.parser import Contentline

from integration.caldav_account import CalDavAccount
from integration.caldav_events import INSTANCE, PREFIX, instance_suffix, property_name
from integration.ics_source import vevent_to_resource
from slotguard.domain.interfaces import AdapterError
from slotguard.domain.model import Appointment
from slotguard.domain.untrusted import one_line
from slotguard.intake.own_note import NOTE_PREFIX, NOTE_PROPERTY, NOTE_PROPERTY_LIMIT, note_line

log = logging.getLogger("slotguard.caldav")
MAX_VALUE_LENGTH = 1024
SHARED_WITH_ATTENDEES = ("slotguard_fee", "slotguard_state")  # what may travel to attendees with a later update
_KEY = re.compile(r"slotguard_[a-z][a-z0-9_]{0,40}")


def _fold(line: str, newline: str) -> str:
    """One content line folded at 75 octets (RFC 5545 3.1), never inside a UTF-8 character."""
    parts, current, size, limit = [], "", 0, 75
    for character in line:
        width = len(character.encode("utf-8"))
        if size + width > limit:
            parts.append(current)
            current, size, limit = " ", 1, 75
        current += character
        size += width
    parts.append(current)
    return newline.join(parts) + newline


def _content_line(name: str, value: str, params: dict[str, str] | None = None) -> str:
    parameters = icalendar.Parameters(params or {}).to_ical().decode() if params else ""
    return f"{name}{';' + parameters if parameters else ''}:{icalendar.vText(value).to_ical().decode()}"


def _logical_lines(text: str) -> list[str]:
    """The text's content lines, each with its folded continuations and line end."""
    lines: list[str] = []
    for physical in text.splitlines(keepends=True):
        if physical[:1] in (" ", "\t") and lines:
            lines[-1] += physical
        else:
            lines.append(physical)
    return lines


def _unfolded(line: str) -> str:
    return re.sub(r"\r?\n[ \t]", "", line).rstrip("\r\n")


def _name(line: str) -> str:
    return re.split(r"[;:]", _unfolded(line), maxsplit=1)[0].upper()


def _vevent_blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(first, last) line index of each top-level VEVENT (its BEGIN and END lines)."""
    blocks, depth, start = [], 0, -1
    for index, line in enumerate(lines):
        text = _unfolded(line).upper()
        if text.startswith("BEGIN:"):
            depth += 1
            if text == "BEGIN:VEVENT" and depth == 2:
                start = index
        elif text.startswith("END:"):
            if text == "END:VEVENT" and depth == 2 and start >= 0:
                blocks.append((start, index))
            depth -= 1
    return blocks


def _own_lines(lines: list[str], first: int, last: int, instance: str) -> dict[int, tuple[str, str]]:
    """Index -> (state key, value) of our property lines directly in the block, for
    `instance` ("" for properties without an X-SLOTGUARD-INSTANCE parameter)."""
    found, depth = {}, 0
    for index in range(first + 1, last):
        text = _unfolded(lines[index])
        upper = text.upper()
        if upper.startswith("BEGIN:"):
            depth += 1
        elif upper.startswith("END:"):
            depth -= 1
        elif depth == 0 and upper.startswith(PREFIX):
            try:
                name, params, value = Contentline(text).parts()
            except ValueError:
                continue
            if params.get(INSTANCE, "") == instance:
                found[index] = ("slotguard_" + name.upper()[len(PREFIX):].lower().replace("-", "_"), str(icalendar.vText.from_ical(value)))
    return found


def _with_note(description: str, note: str, written: str) -> str:
    """`description` with Slotguard's line (`written`, else a line starting "Slotguard:")
    replaced by `note`, or `note` appended on a line of its own."""
    line = note_line(note)
    if written and written in description:
        return description.replace(written, line, 1)
    lines = description.split("\n")
    for index, text in enumerate(lines):
        if text.lstrip(" \t").lower().startswith(NOTE_PREFIX.lower()):
            lines[index] = line
            return "\n".join(lines)
    return f"{description}\n{line}" if description and not description.endswith("\n") else description + line


def _written_note(value: str) -> str:
    """`value` of X-SLOTGUARD-NOTE if Slotguard could have written it (one line starting
    "Slotguard:", not too long), else "", so no other text is ever taken for our line."""
    if len(value) > NOTE_PROPERTY_LIMIT or "\n" in value or "\r" in value or not value.startswith(NOTE_PREFIX):
        return ""
    return value


def _without_note(description: str, written: str) -> str | None:
    """`description` without `written` (the line Slotguard wrote last): a line that is just
    it goes with its line break, else the text alone is taken out and the rest of that
    line (the practitioner's) kept; None when it is not there verbatim (nothing changes)."""
    if not written or written not in description:
        return None
    lines = description.split("\n")
    for index, line in enumerate(lines):
        at = line.find(written)
        if at >= 0:
            rest = line[:at] + line[at + len(written):]
            if rest in ("", "\r"):
                del lines[index]
            else:
                lines[index] = rest
            return "\n".join(lines)
    return None


def _direct_line(lines: list[str], first: int, last: int, name: str) -> int:
    """Index of the block's own `name` line (not one of a VALARM inside it); -1 if none."""
    depth = 0
    for index in range(first + 1, last):
        upper = _unfolded(lines[index]).upper()
        if upper.startswith("BEGIN:"):
            depth += 1
        elif upper.startswith("END:"):
            depth -= 1
        elif depth == 0 and _name(lines[index]) == name:
            return index
    return -1


def edited(text: str, event_id: str, state: dict[str, str], note: str, write_note: str, zone: str) -> str | None:
    """The object's text with `state` (and, where allowed, `note`) written for `event_id`;
    None when the object holds no such event. Returns `text` itself when nothing changes."""
    calendar = icalendar.Calendar.from_ical(text)
    events = [component for component in calendar.subcomponents if component.name == "VEVENT"]
    if not events:
        return None
    uid = str(events[0].get("UID") or "")
    suffix = instance_suffix(event_id, uid)
    if not suffix and event_id != uid:
        return None
    master = next((index for index, event in enumerate(events) if event.get("RECURRENCE-ID") is None), None)
    target, instance = master, ""
    if suffix:
        override = next((index for index, event in enumerate(events)
                         if event.get("RECURRENCE-ID") is not None and vevent_to_resource(event, zone)["id"] == event_id), None)
        recurring = master is not None and any(events[master].get(name) is not None for name in ("RRULE", "RDATE"))
        # An instance without an exception of its own is written on the master, for it
        # alone; a single event (the .ics expansion gives it an instance id too) is its master.
        target, instance = (override, "") if override is not None else (master, suffix if recurring else "")
    if target is None:
        return None
    component = events[target]
    shared = component.get("ATTENDEE") is not None or (master is not None and events[master].get("ATTENDEE") is not None)
    wanted = {key: value for key, value in state.items() if value and (not shared or key in SHARED_WITH_ATTENDEES)}
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = _logical_lines(text)
    blocks = _vevent_blocks(lines)
    if len(blocks) != len(events):
        raise AdapterError("the calendar object's VEVENTs cannot be told apart in its text; it is left as it is", retryable=False)
    first, last = blocks[target]
    own = _own_lines(lines, first, last, instance)
    written = _written_note(next((value for key, value in own.values() if key == NOTE_PROPERTY), ""))
    description = str(component.get("DESCRIPTION") or "")
    description_line = None
    if shared:
        # Attendees added since the line was written: it leaves the description ("" drops
        # an emptied DESCRIPTION) and no note is kept, in this same PUT.
        description_line = _without_note(description, written)
    elif write_note != "never" and not instance and note.strip():
        updated = _with_note(description, note, written)
        line = note_line(note)
        if len(line) <= NOTE_PROPERTY_LIMIT:
            wanted[NOTE_PROPERTY] = line
        if updated != description:
            description_line = updated
    elif written:
        wanted[NOTE_PROPERTY] = written  # keep knowing our line where it stays (attendees added since)
    if dict(own.values()) == wanted and description_line is None:
        return text
    params = {INSTANCE: instance} if instance else None
    new_lines = [_fold(_content_line(property_name(key), value, params), newline) for key, value in sorted(wanted.items())]
    at = _direct_line(lines, first, last, "DESCRIPTION")
    result: list[str] = []
    for index, line in enumerate(lines):
        if index in own:
            continue
        if description_line is not None and index == at:
            if description_line:
                name, old_params, _ = Contentline(_unfolded(line)).parts()
                result.append(_fold(_content_line(name, description_line, dict(old_params)), newline))
            description_line = None
            continue
        if index == last:
            if description_line:
                result.append(_fold(_content_line("DESCRIPTION", description_line), newline))
            result += new_lines
        result.append(line)
    return "".join(result)


class CalDavWriteBack:
    """Writes Slotguard's status onto events of one CalDAV calendar (see the module docstring)."""

    def __init__(self, account: CalDavAccount):
        self.account = account
        self.calendar_id = account.calendar_id

    def write_status(self, appointment: Appointment, state: dict[str, str], note: str) -> None:
        """Store `state` and, where allowed, `note`; see the module docstring. Skips a
        deleted event and a write that changes nothing. Raises AdapterError (retryable for
        faults and for an event not listed yet) or ReauthorizationNeeded."""
        where = self.account.where
        if appointment.calendar_id != self.calendar_id:
            raise AdapterError(f"{where}: asked to write to {appointment.ref}, an event of another calendar", retryable=False)
        checked = _checked_state(state, where)
        href = self.account.state.href_of(appointment.event_id)
        if href is None:
            raise AdapterError(f"{where}: event {appointment.event_id} was not in the last listing; will try again after the next sync")
        settings: Any = self.account.settings
        client = self.account.client
        for _ in range(3):
            answer = client.request("GET", href, what=f"reading event {appointment.event_id}")
            if answer.status in (404, 410):
                log.info("caldav_write_skipped calendar=%s event=%s why=deleted", self.calendar_id, appointment.event_id)
                return
            etag = answer.header("etag")
            if answer.status != 200 or not etag:
                raise AdapterError(f"{where}: reading event {appointment.event_id}: HTTP {answer.status}"
                                   f"{'' if etag else ' without an ETag (Slotguard writes only with If-Match)'}; will try again")
            text = answer.body.decode("utf-8", "replace")
            try:
                new_text = edited(text, appointment.event_id, checked, note, settings.calendar.write_note, settings.practice.timezone)
            except ValueError as error:
                raise AdapterError(f"{where}: event {appointment.event_id} cannot be read to write the status ({one_line(str(error), 80)})", retryable=False) from None
            if new_text is None:
                raise AdapterError(f"{where}: event {appointment.event_id} is no longer in its calendar object; will try again after the next sync")
            if new_text == text:
                return
            put = client.request("PUT", href, new_text.encode("utf-8"), {"If-Match": etag, "Content-Type": "text/calendar; charset=utf-8"},
                                 what=f"writing the status of event {appointment.event_id}")
            if put.status == 412:
                log.info("caldav_write_conflict calendar=%s event=%s", self.calendar_id, appointment.event_id)
                continue
            if put.status not in (200, 201, 204):
                raise AdapterError(f"{where}: writing the status of event {appointment.event_id}: HTTP {put.status} "
                                   f"({one_line(put.body.decode('utf-8', 'replace'), 120)})", retryable=put.status in (409, 423))
            log.info("caldav_status_written calendar=%s event=%s keys=%s", self.calendar_id, appointment.event_id, ",".join(sorted(checked)))
            return
        raise AdapterError(f"{where}: event {appointment.event_id} kept changing while Slotguard wrote its status; will try again")


def _checked_state(state: dict[str, str], where: str) -> dict[str, str]:
    checked = {}
    for key, value in state.items():
        name = key if key.startswith("slotguard_") else f"slotguard_{key}"
        if not _KEY.fullmatch(name) or name == NOTE_PROPERTY:
            raise AdapterError(f"{where}: the status key {key!r} cannot be written", retryable=False)
        if not isinstance(value, str) or len(value) > MAX_VALUE_LENGTH:
            raise AdapterError(f"{where}: the value of status key {name!r} must be text of at most {MAX_VALUE_LENGTH} characters", retryable=False)
        checked[name] = value
    return checked
