"""An .ics feed parsed so that one VEVENT the parser refuses does not hide the others.

icalendar records most bad values on the VEVENT that has them (they are then reported when
the event is expanded: integration/ics_expand.py), but raises for some, such as an alarm
whose TRIGGER is not a time, and then the whole feed would be unreadable. When it raises,
the feed is parsed again one VEVENT at a time: the VEVENTs it refuses are left out and
reported, with every other VEVENT of their UID (a series is read whole or not at all).
The rest of the feed (its properties and time zones) must parse: if it does not, the feed
itself is broken and the error is raised as before.
"""

from __future__ import annotations

import icalendar

from slotguard.domain.untrusted import one_line, shown

# Enough of a VEVENT's text to find its UID and SUMMARY in; longer VEVENTs are looked at
# only this far (the parser has refused them anyway).
NAMING_LIMIT = 100_000


def describe(uid: str, summary: str, recurring: bool) -> str:
    """An event or series for a message: its UID and summary, quoted, each on one line."""
    described = f"{'recurring event' if recurring else 'event'} {shown(uid, 60)}"
    return described + (f" ({shown(one_line(summary, 200), 40)})" if summary.strip() else "")


def parse_feed(data: bytes) -> tuple[icalendar.Calendar, list[tuple[str, str]]]:
    """The feed as a Calendar, and (UID, problem) for each VEVENT (with its series) left
    out because the parser refused it.

    Raises what icalendar raises when the feed outside its VEVENTs cannot be parsed."""
    try:
        return icalendar.Calendar.from_ical(data), []
    except Exception:  # noqa: BLE001 - parsed again below, one VEVENT at a time
        pass
    outside, blocks = _split(data.decode("utf-8", errors="replace"))
    calendar = icalendar.Calendar.from_ical("".join(outside))
    refused: dict[str, str] = {}
    parsed = []
    for block in blocks:
        text = "".join(block)
        try:
            events = icalendar.Calendar.from_ical("BEGIN:VCALENDAR\r\n" + text + "END:VCALENDAR\r\n").subcomponents
        except Exception as error:  # noqa: BLE001 - this VEVENT only
            uid, summary, recurring = _naming(text)
            refused.setdefault(uid or "(no UID)", f"{describe(uid, summary, recurring)} is not read: the parser refuses it "
                                    f"({type(error).__name__}: {one_line(str(error), 80)}); correct it or re-export the feed")
            continue
        parsed += events
    calendar.subcomponents += [event for event in parsed if str(event.get("UID") or "") not in refused]
    return calendar, list(refused.items())


def _split(text: str) -> tuple[list[str], list[list[str]]]:
    """The feed's lines outside its top-level VEVENTs, and each VEVENT's lines."""
    outside: list[str] = []
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines(keepends=True):
        word = line.rstrip("\r\n").upper()
        if current is None:
            if word == "BEGIN:VEVENT":
                current = [line]
            else:
                outside.append(line)
            continue
        current.append(line)
        if word == "END:VEVENT":
            blocks.append(current)
            current = None
    if current is not None:
        blocks.append(current)  # never ended: the parser refuses it, and it alone
    return outside, blocks


def _naming(text: str) -> tuple[str, str, bool]:
    """(UID, SUMMARY, recurring) read from a VEVENT's raw text (lines unfolded)."""
    unfolded = text[:NAMING_LIMIT].replace("\r\n ", "").replace("\r\n\t", "").replace("\n ", "").replace("\n\t", "")
    values: dict[str, str] = {}
    for line in unfolded.splitlines():
        name, _, value = line.partition(":")
        values.setdefault(name.partition(";")[0].strip().upper(), value)
    recurring = any(name in values for name in ("RRULE", "RDATE", "RECURRENCE-ID"))
    summary = values.get("SUMMARY", "").replace("\\n", " ").replace("\\N", " ").replace("\\,", ",").replace("\\;", ";").replace("\\\\", "\\")
    return values.get("UID", ""), summary, recurring
