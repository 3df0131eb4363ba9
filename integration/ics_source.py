"""A read-only calendar from an iCalendar (.ics) file or https URL.

Google Calendar's "secret address in iCal format" works this way: no OAuth, read-only, so
no write-back. Every tick reads the whole feed; when its content has not changed since the
last tick, nothing is re-read (the content digest is the sync token). Over http(s) the feed
is asked for with the ETag and Last-Modified its server gave last time, so a server that
knows them answers an unchanged feed with 304 Not Modified and no body. Recurring events are
expanded into instances within the sync window, with ids like Google's: an instance is
UID_YYYYMMDDTHHMMSSZ, its RECURRENCE-ID in UTC (RFC 5545: an instance is its UID and
RECURRENCE-ID, which a moved instance keeps), so a moved instance keeps its id; a single
event (the only VEVENT of its UID, with no RRULE, RDATE or RECURRENCE-ID) is its UID alone,
so a moved appointment stays the same appointment (an appointment an older version stored
as UID_START is renamed when the event is first read: slotguard/store/former_ids.py), unless
its UID ends like an instance's id (INSTANCE_LIKE): that one keeps UID_START. A UID that two
VEVENTs carry with no series among them is a problem and is left out (drop_duplicate_uids). All this
within the limits calendar.max_instances_per_series and calendar.max_events
(integration/ics_expand.py): a series past them is reported as a problem and not read.
One bad VEVENT never blanks the feed: a series (or single event) whose dates the parser or
the recurrence libraries refuse is reported the same way, naming its UID and summary, and
the rest is read (integration/ics_parse.py, ics_expand.py). While anything is left out,
the page is not `full`, so no appointment missing from it is taken as deleted.
Floating times (no TZID, no Z) are local times in practice.timezone (RFC 5545 3.3.5).

Each VEVENT becomes a Google Calendar v3 Event resource, so the engine reads every source in
one shape: ATTENDEE (CN, PARTSTAT) -> attendees, ORGANIZER -> organizer, COLOR (RFC 7986) ->
colorId, LAST-MODIFIED -> updated (DTSTAMP is the export time in Google's feeds, not a change
time, so it is never used).
"""

from __future__ import annotations

import hashlib
import http.client
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from integration.ics_expand import expand
from integration.ics_parse import describe, parse_feed
from slotguard.config.schema import Settings
from slotguard.domain.interfaces import FORMER_ID_PREFIX, AdapterError, SyncPage
from slotguard.domain.untrusted import one_line
from slotguard.intake.normalize import COLOR_IDS

PARTSTAT = {"ACCEPTED": "accepted", "DECLINED": "declined", "TENTATIVE": "tentative", "NEEDS-ACTION": "needsAction"}
STATUS = {"CONFIRMED": "confirmed", "CANCELLED": "cancelled", "TENTATIVE": "tentative"}
FETCH_TIMEOUT = 30
MAX_FEED_BYTES = 50 * 1024 * 1024
# The end of an instance's id (UID_YYYYMMDDTHHMMSSZ, or UID_YYYYMMDD for an all-day series). A
# single event whose UID ends so is named UID_START as an instance is, never by its UID alone:
# a UID is anyone's to choose (a client's invitation), and "<a series' UID>_<its instance>"
# alone would be the id of that series' instance, someone else's appointment.
INSTANCE_LIKE = re.compile(r"_\d{8}(T\d{6}Z?)?\Z")


def _address(value) -> str:
    text = str(value or "")
    return text[7:] if text.lower().startswith("mailto:") else text


def _local(moment: datetime, practice_zone: str) -> datetime:
    """A floating time (no TZID, no Z) is local time where the calendar is used (RFC 5545
    3.3.5): the practice's time zone. A time in a zone is left as it is."""
    return moment.replace(tzinfo=ZoneInfo(practice_zone)) if moment.tzinfo is None else moment


def _when(value, practice_zone: str) -> dict:
    moment = value.dt if hasattr(value, "dt") else value
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            return {"dateTime": _local(moment, practice_zone).isoformat(), "timeZone": practice_zone}
        zone = getattr(moment.tzinfo, "key", None) or getattr(moment.tzinfo, "zone", None)
        result = {"dateTime": moment.isoformat()}
        if zone:
            result["timeZone"] = zone
        return result
    if isinstance(moment, date):
        return {"date": moment.isoformat()}
    raise ValueError(f"unreadable time {value!r}")


def _stamp(component, name: str) -> str | None:
    value = component.get(name)
    if value is None:
        return None
    moment = value.dt
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return None


def _recurring(component) -> bool:
    return any(component.get(name) is not None for name in ("RRULE", "RDATE", "RECURRENCE-ID"))


def single_uids(calendar) -> set[str]:
    """The UIDs of the feed's single events: the only VEVENT of their UID, with no RRULE,
    RDATE or RECURRENCE-ID (an instance alone in the feed, a RECURRENCE-ID without its
    series, is an instance, as Google names it). An event without a UID is never one: its
    id would be empty; nor one whose UID ends like an instance's id (INSTANCE_LIKE)."""
    counts: dict[str, int] = {}
    recurring: set[str] = set()
    for component in calendar.walk("VEVENT"):
        uid = str(component.get("UID") or "")
        counts[uid] = counts.get(uid, 0) + 1
        if _recurring(component):
            recurring.add(uid)
    return {uid for uid, count in counts.items() if uid and count == 1 and uid not in recurring and not INSTANCE_LIKE.search(uid)}


def drop_duplicate_uids(calendar) -> list[tuple[str, str]]:
    """Take out of `calendar` the VEVENTs of each UID that two or more VEVENTs carry with no
    RRULE, RDATE or RECURRENCE-ID among them (RFC 5545: a UID is unique; a client's invitation
    reusing an appointment's UID, or an exporter's fault), and return (UID, problem) for each.
    Read, any of them would rename or replace the appointment known by that UID; left out,
    it stays as it was (the page is then not full) until the feed holds one event again."""
    groups: dict[str, list] = {}
    for component in calendar.walk("VEVENT"):
        uid = str(component.get("UID") or "")
        if uid:
            groups.setdefault(uid, []).append(component)
    bad = {uid for uid, components in groups.items() if len(components) > 1 and not any(map(_recurring, components))}
    if not bad:
        return []

    def keep(component) -> bool:
        if component.name == "VEVENT" and str(component.get("UID") or "") in bad:
            return False
        component.subcomponents = [sub for sub in component.subcomponents if keep(sub)]
        return True

    keep(calendar)
    return [(uid, f"{describe(uid, '', False)} is not read: {len(groups[uid])} events in the calendar share this UID, which "
                  "must be unique; remove or re-create all but one") for uid in sorted(bad)]


def vevent_to_resource(component, practice_zone: str, single: bool = False) -> dict:
    """Convert one VEVENT (an expanded instance) into a v3 Event resource dict.

    `single`: the instance is a single event's (see `single_uids`), whose id is its UID
    alone; recurring_ical_events gives every instance a RECURRENCE-ID, a single event's
    too, so the component itself cannot tell. Otherwise an instance's id is
    UID_RECURRENCE-ID (in UTC; a date for an all-day series), which a moved instance keeps."""
    uid = str(component.get("UID") or "")
    start = component.get("DTSTART")
    event_id = uid
    original_start = None
    series_id = None
    resource_extra: dict = {}
    recurrence = component.get("RECURRENCE-ID")
    if single and uid:
        resource_extra = {FORMER_ID_PREFIX: f"{uid}_"}  # older versions named it UID_START (slotguard/store/former_ids.py)
    elif recurrence is not None or component.get("RRULE") is not None:
        instance = (recurrence or start).dt
        if isinstance(instance, datetime):
            suffix = _local(instance, practice_zone).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        else:
            suffix = instance.strftime("%Y%m%d")
        event_id = f"{uid}_{suffix}"
        series_id = uid
        if recurrence is not None:
            original_start = _when(recurrence, practice_zone)
    resource: dict = {
        **resource_extra,
        "id": event_id,
        "status": STATUS.get(str(component.get("STATUS") or "CONFIRMED").upper(), "confirmed"),
        "summary": str(component.get("SUMMARY") or ""),
        "description": str(component.get("DESCRIPTION") or ""),
        "location": str(component.get("LOCATION") or ""),
    }
    if start is not None:
        resource["start"] = _when(start, practice_zone)
    if original_start is not None:
        resource["originalStartTime"] = original_start
    if series_id:
        resource["recurringEventId"] = series_id
    end = component.get("DTEND")
    if end is None and start is not None and component.get("DURATION") is not None:
        end_value = start.dt + component.get("DURATION").dt
        resource["end"] = _when(end_value, practice_zone)
    elif end is not None:
        resource["end"] = _when(end, practice_zone)
    updated = _stamp(component, "LAST-MODIFIED")
    if updated:
        resource["updated"] = updated
    created = _stamp(component, "CREATED")
    if created:
        resource["created"] = created  # no `cancelled:` line may be earlier (normalize.py)
    organizer = component.get("ORGANIZER")
    if organizer is not None:
        resource["organizer"] = {"email": _address(organizer)}
    attendees = component.get("ATTENDEE")
    if attendees is not None:
        if not isinstance(attendees, list):
            attendees = [attendees]
        resource["attendees"] = [
            {
                "email": _address(attendee),
                "displayName": str(attendee.params.get("CN", "")),
                "responseStatus": PARTSTAT.get(str(attendee.params.get("PARTSTAT", "NEEDS-ACTION")).upper(), "needsAction"),
                **({"resource": True} if str(attendee.params.get("CUTYPE", "")).upper() in ("RESOURCE", "ROOM") else {}),
            }
            for attendee in attendees
        ]
    color = component.get("COLOR")
    if color is not None:
        resource["colorId"] = COLOR_IDS.get(str(color).strip().lower(), str(color).strip().lower())
    return resource


class IcsSource:
    """CalendarSource over one .ics file or URL; `calendar_id` is the path or URL."""

    def __init__(self, settings: Settings, url: str | None = None):
        self.settings = settings
        self.url = url or settings.calendar.url
        self.calendar_id = self.url
        # The digest of the last feed read over http(s) and the validators its server gave
        # (ETag, Last-Modified): asked again with them, the server may answer 304 Not Modified.
        self._validators: tuple[str, dict[str, str]] = ("", {})

    def _read(self, unchanged_since: str | None) -> tuple[bytes | None, dict[str, str]]:
        """The feed's bytes and the validators to ask with next time; (None, {}) when the
        server says it has not changed since the read whose digest is `unchanged_since`."""
        validators: dict[str, str] = {}
        if self.url.startswith(("https://", "http://")):
            digest, known = self._validators
            headers = known if unchanged_since and digest == unchanged_since else {}
            try:
                with urllib.request.urlopen(urllib.request.Request(self.url, headers=headers), timeout=FETCH_TIMEOUT) as response:
                    data = response.read(MAX_FEED_BYTES + 1)
                    if response.length and len(data) <= MAX_FEED_BYTES:  # bytes announced and never sent: the answer broke off
                        raise http.client.IncompleteRead(data, response.length)
                    for asked, given in (("If-None-Match", "ETag"), ("If-Modified-Since", "Last-Modified")):
                        if response.headers.get(given):
                            validators[asked] = response.headers[given]
            except urllib.error.HTTPError as error:
                if error.code == 304 and headers:
                    return None, {}
                raise AdapterError(f"cannot fetch the calendar feed: HTTP {error.code} {one_line(str(error.reason), 100)}") from None
            except (urllib.error.URLError, TimeoutError, OSError) as error:
                raise AdapterError(f"cannot fetch the calendar feed: {getattr(error, 'reason', error)}") from None
            except http.client.HTTPException as error:  # the answer cut off (IncompleteRead) or garbled
                raise AdapterError(f"cannot fetch the calendar feed: its answer broke off ({type(error).__name__}); nothing was changed") from None
        else:
            try:
                data = Path(self.url).read_bytes()
            except OSError as error:
                raise AdapterError(f"cannot read the calendar file {self.url}: {error.strerror}; check calendar.url") from None
        if len(data) > MAX_FEED_BYTES:
            raise AdapterError(f"the calendar feed {self.calendar_id} is larger than {MAX_FEED_BYTES} bytes")
        return data, validators

    def pages(self, sync_token: str | None, now: datetime) -> Iterator[SyncPage]:
        data, validators = self._read(sync_token)
        if data is None:  # 304: the feed is the one read last, whose digest the engine holds
            yield SyncPage(events=[], full=False, last=True, next_sync_token=sync_token)
            return
        digest = hashlib.sha256(data).hexdigest()[:32]
        self._validators = (digest, validators)
        window_start = now - self.settings.calendar.window_past
        window_end = now + self.settings.calendar.window_future
        if sync_token == digest:
            yield SyncPage(events=[], full=False, last=True, next_sync_token=digest)
            return
        calendar_settings = self.settings.calendar
        zone = self.settings.practice.timezone
        try:
            calendar, refused = parse_feed(data)
            refused += drop_duplicate_uids(calendar)
            singles = single_uids(calendar)
            # Each series is counted, expanded and converted on its own: one that cannot be
            # read is reported below and the others are read (integration/ics_expand.py).
            expansion = expand(calendar, window_start, window_end, zone, calendar_settings.max_instances_per_series,
                               calendar_settings.max_events, convert=lambda component: vevent_to_resource(component, zone, str(component.get("UID") or "") in singles))
        except Exception as error:  # the parser raises many kinds for a corrupt file, expand for a feed-wide fault
            raise AdapterError(
                f"the calendar feed {self.calendar_id} is not valid iCalendar ({type(error).__name__}: {one_line(str(error), 200)}); "
                "nothing was changed; fix or re-export the feed",
                retryable=True,
            ) from None
        events = list(expansion.components)
        for uid, problem in refused + expansion.skipped:
            events.append({"id": uid, "_error": f"{problem}; until it is read, an appointment deleted from this calendar is not noticed"})
        # With series left out, a known appointment missing from the feed may be one of
        # theirs: nothing is taken as deleted until the feed is read whole again.
        yield SyncPage(
            events=events, full=expansion.complete and not refused, last=True, next_sync_token=digest, window_start=window_start, window_end=window_end
        )
