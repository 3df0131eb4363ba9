"""Microsoft Graph events read as the Google Calendar v3 Event dicts every source speaks
(slotguard/intake/normalize.py reads them), and Slotguard's status line in an Outlook body.

Pure: no I/O, no clock.

What maps to what (Graph -> v3):
- `id` -> `id`; `@removed` (a delta row of a deleted event, or one that left the window) ->
  {"id", "status": "cancelled"}; `isCancelled` (a meeting the organizer cancelled) ->
  status "cancelled"; `type` "seriesMaster" -> not an appointment (calendarView lists the
  series' occurrences and exceptions themselves), `seriesMasterId` -> `recurringEventId`,
  `originalStart` -> `originalStartTime`.
- `start`/`end` arrive in UTC (the adapter sends `Prefer: outlook.timezone="UTC"`) as
  {"dateTime": "2026-03-02T08:00:00.0000000", "timeZone": "UTC"}; the zone the organizer
  chose is `originalStartTimeZone`, a Windows name ("W. Europe Standard Time") or an IANA one,
  mapped to IANA by WINDOWS_ZONES (an unknown one is left out: the practice's zone is shown).
  `isAllDay` -> {"date": ...}.
- `organizer.emailAddress` -> `organizer` ({"self": true} when `isOrganizer`), `attendees`
  with `status.response` -> `responseStatus` (declined, accepted, tentativelyAccepted ->
  tentative, none/notResponded -> needsAction), `type` "resource" -> `resource`; on someone
  else's event, your own answer (`responseStatus.response`) as a first attendee entry
  {"self": true, "responseStatus": ...} with no address.
- `subject` -> `summary`, `body.content` -> `description`, `location.displayName` ->
  `location`, `onlineMeeting.joinUrl` -> a video entry point, `createdDateTime` and
  `lastModifiedDateTime` -> `created` and `updated`.
- `categories`: each one that `calendar.microsoft.categories` names for a mark adds that
  mark's first tag (or, with no tag, its colour) to what normalize reads. Categories are
  private to the mailbox, so an attendee can never add one.
"""

from __future__ import annotations

import html
import re
from typing import Any
from zoneinfo import ZoneInfo

from slotguard.intake.normalize import color_id
from slotguard.intake.own_note import NOTE_PREFIX, note_line

# Windows time zone names Outlook writes -> IANA (the CLDR windowsZones table, territory
# "001"), for the zones practices using Slotguard are in and their neighbours.
WINDOWS_ZONES = {
    "UTC": "UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw",
    "E. Europe Standard Time": "Europe/Chisinau",
    "FLE Standard Time": "Europe/Kiev",
    "GTB Standard Time": "Europe/Bucharest",
    "Israel Standard Time": "Asia/Jerusalem",
    "Russian Standard Time": "Europe/Moscow",
    "Turkey Standard Time": "Europe/Istanbul",
    "South Africa Standard Time": "Africa/Johannesburg",
    "Arabian Standard Time": "Asia/Dubai",
    "India Standard Time": "Asia/Calcutta",
    "China Standard Time": "Asia/Shanghai",
    "Tokyo Standard Time": "Asia/Tokyo",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "New Zealand Standard Time": "Pacific/Auckland",
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "US Mountain Standard Time": "America/Phoenix",
    "Pacific Standard Time": "America/Los_Angeles",
    "Alaskan Standard Time": "America/Anchorage",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Atlantic Standard Time": "America/Halifax",
    "E. South America Standard Time": "America/Sao_Paulo",
    "Canada Central Standard Time": "America/Regina",
}
RESPONSES = {
    "accepted": "accepted",
    "organizer": "accepted",
    "declined": "declined",
    "tentativelyAccepted": "tentative",
    "none": "needsAction",
    "notResponded": "needsAction",
}
_FRACTION = re.compile(r"(\.\d{1,6})\d*$")
_DIV_LINE = re.compile(r"<div[^>]*>\s*" + re.escape(NOTE_PREFIX) + r"[^<]*</div>", re.IGNORECASE)
_TEXT_LINE = re.compile(r"(^|\r?\n)[ \t]*" + re.escape(NOTE_PREFIX) + r"[^\r\n]*", re.IGNORECASE)


def iana_zone(name: object) -> str:
    """The IANA name of an Outlook time zone name (Windows or IANA); "" when unknown."""
    if not isinstance(name, str) or not name:
        return ""
    if name in WINDOWS_ZONES:
        return WINDOWS_ZONES[name]
    try:
        ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return ""
    return name


def _utc_text(value: object) -> str | None:
    """Graph's UTC {"dateTime": "2026-03-02T08:00:00.0000000", "timeZone": "UTC"} as an
    RFC 3339 text ("2026-03-02T08:00:00.000000Z"); None when it is not that shape."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        return None
    zone = value.get("timeZone") or "UTC"
    if zone not in ("UTC", "Etc/UTC", "tzone://Microsoft/Utc"):
        return None  # asked in UTC; another zone means the answer is not what we asked for
    text = _FRACTION.sub(lambda match: match.group(1)[:7], value["dateTime"].strip())
    return text if text.endswith("Z") else text + "Z"


def _when(value: object, zone: str, all_day: bool) -> Any:
    text = _utc_text(value)
    if text is None:
        return value  # not Graph's UTC shape: normalize says what is wrong with it, naming the event
    if all_day:
        return {"date": text[:10]}
    return {"dateTime": text, **({"timeZone": zone} if zone else {})}


def _address(entry: object) -> tuple[str, str]:
    email = entry.get("emailAddress") if isinstance(entry, dict) else None
    if not isinstance(email, dict):
        return "", ""
    return str(email.get("address") or ""), str(email.get("name") or "")


def _attendee(entry: Any) -> dict[str, Any]:
    address, name = _address(entry)
    status = entry.get("status") if isinstance(entry, dict) else None
    response = status.get("response") if isinstance(status, dict) else None
    found: dict[str, Any] = {"email": address, "responseStatus": RESPONSES.get(str(response), "needsAction")}
    if name:
        found["displayName"] = name
    if isinstance(entry, dict) and entry.get("type") == "resource":
        found["resource"] = True
    if response == "organizer":
        found["organizer"] = True
    return found


def mark_text(categories: object, settings: Any) -> str:
    """The tags (one line each) that the event's categories mean, by
    `calendar.microsoft.categories` and `calendar.marks`; "" for none."""
    microsoft = settings.calendar.microsoft
    if microsoft is None or not isinstance(categories, list):
        return ""
    lines = []
    for mark in microsoft.categories.marks_of(categories):
        rule = getattr(settings.calendar.marks, mark)
        if rule.tags:
            lines.append(rule.tags[0])
    return "\n".join(lines)


def mark_color(categories: object, settings: Any) -> str | None:
    """The colorId of the first mark the categories mean whose rule has a colour and no tag."""
    microsoft = settings.calendar.microsoft
    if microsoft is None or not isinstance(categories, list):
        return None
    for mark in microsoft.categories.marks_of(categories):
        rule = getattr(settings.calendar.marks, mark)
        if rule.color and not rule.tags:
            return color_id(rule.color)
    return None


def to_v3(item: dict, settings: Any) -> dict | None:
    """The v3 Event dict for one Graph event (or delta row); None for a series master
    (its occurrences come on their own). Never raises: what normalize cannot read is left for
    it to say so, naming the event."""
    event_id = item.get("id")
    if "@removed" in item:
        return {"id": event_id, "status": "cancelled"}
    if item.get("type") == "seriesMaster":
        return None
    zone = iana_zone(item.get("originalStartTimeZone"))
    all_day = item.get("isAllDay") is True
    event: dict[str, Any] = {
        "id": event_id,
        "status": "cancelled" if item.get("isCancelled") is True else "confirmed",
        "summary": item.get("subject") or "",
        "start": _when(item.get("start"), zone, all_day),
        "end": _when(item.get("end"), iana_zone(item.get("originalEndTimeZone")) or zone, all_day),
    }
    body = item.get("body")
    description = str(body.get("content") or "") if isinstance(body, dict) else ""
    tags = mark_text(item.get("categories"), settings)
    if tags:
        description = f"{description}\n{tags}" if description else tags
    if description:
        event["description"] = description
    color = mark_color(item.get("categories"), settings)
    if color:
        event["colorId"] = color
    address, name = _address(item.get("organizer"))
    if address or item.get("isOrganizer") is True:
        event["organizer"] = {"email": address, **({"displayName": name} if name else {}), **({"self": True} if item.get("isOrganizer") is True else {})}
    attendees = [_attendee(entry) for entry in item.get("attendees") or [] if isinstance(entry, dict)]
    answer = item.get("responseStatus")
    if item.get("isOrganizer") is not True and isinstance(answer, dict) and answer.get("response"):
        # Your own answer to someone else's invitation is the event's `responseStatus` (your
        # entry among the attendees need not carry it): first, as Google's `self` entry.
        attendees.insert(0, {"email": "", "self": True, "responseStatus": RESPONSES.get(str(answer["response"]), "needsAction")})
    if attendees:
        event["attendees"] = attendees
    location = item.get("location")
    if isinstance(location, dict) and location.get("displayName"):
        event["location"] = str(location["displayName"])
    meeting = item.get("onlineMeeting")
    join = meeting.get("joinUrl") if isinstance(meeting, dict) else None
    if isinstance(join, str) and join:
        event["conferenceData"] = {"entryPoints": [{"entryPointType": "video", "uri": join}]}
    if item.get("seriesMasterId"):
        event["recurringEventId"] = item["seriesMasterId"]
    if isinstance(item.get("originalStart"), str):
        event["originalStartTime"] = {"dateTime": item["originalStart"]}
    for source, target in (("createdDateTime", "created"), ("lastModifiedDateTime", "updated")):
        if isinstance(item.get(source), str):
            event[target] = item[source]
    if "@odata.etag" in item:
        event["etag"] = item["@odata.etag"]
    return event


# --- the status line in an Outlook body ---------------------------------------------------


def without_note_line(content: str) -> str:
    """`content` (an Outlook body, HTML or text) without Slotguard's status line(s)."""
    return _TEXT_LINE.sub("", _DIV_LINE.sub("", content)).rstrip("\n") if content else content


def body_with_note(body: dict, note: str) -> dict:
    """`body` ({"contentType": "html" | "text", "content": ...}) with Slotguard's line set to
    `note`: replaced where a line of ours stands (in HTML, a <div> holding only it), else
    appended (in HTML, before </body>). Everything else is kept byte for byte."""
    content = str(body.get("content") or "")
    line = note_line(note)
    if str(body.get("contentType", "text")).lower() == "html":
        element = f"<div>{html.escape(line, quote=False)}</div>"
        if _DIV_LINE.search(content):
            return {"contentType": "html", "content": _DIV_LINE.sub(lambda _: element, content, count=1)}
        at = content.lower().rfind("</body>")
        updated = content[:at] + element + content[at:] if at >= 0 else content + element
        return {"contentType": "html", "content": updated}
    found = _TEXT_LINE.search(content)
    if found:
        updated = content[:found.start()] + found.group(1) + line + content[found.end():]
    else:
        updated = f"{content}\n{line}" if content and not content.endswith("\n") else content + line
    return {"contentType": "text", "content": updated}
