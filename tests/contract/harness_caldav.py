"""CalDAV in the contract suite: a real Radicale (tests/support/radicale_server.py) behind a
wire tap (tests/contract/wire.py), spoken to by the real adapter (integration/caldav_source.py,
caldav_write.py). The practitioner's calendar app is played by editing the stored iCalendar
objects directly on Radicale (not through the tap, so not counted): marks are CATEGORIES (the
adapter's default names), a moved or marked instance of a series an override VEVENT
(RECURRENCE-ID), a cancelled or deleted one an EXDATE, a declined invitation the client's
PARTSTAT=DECLINED, an expired token Radicale's stored sync-token states deleted."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar

from integration.caldav_source import open_calendar
from slotguard.config.schema import Settings
from slotguard.domain.interfaces import CalendarSource, CalendarWriteBack
from tests.contract.harness import Booking, StoredEvent
from tests.contract.wire import WireTap, forward_to
from tests.support.radicale_server import RadicaleServer

PRACTITIONER = "lena@example.com"
PASSWORD_ENV = "SLOTGUARD_CONTRACT_CALDAV_PASSWORD"
CATEGORY = {"no_show": "No-show", "late_cancel": "Late cancellation", "waive": "Waive fee"}
DISPLAY_NAME = "Appointments"
TIMEOUT_SECONDS = 15  # long enough for Radicale to list 2,000 events (bench/bench_sources.py) on a small machine


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _own_and_rest(text: str, uid: str, suffix: str) -> StoredEvent:
    """Slotguard's X-SLOTGUARD-* properties that belong to the event, and everything else
    of the object (each VEVENT's other properties, as iCalendar text), comparable with ==."""
    calendar = icalendar.Calendar.from_ical(text)
    own: dict[str, str] = {}
    rest = []
    for component in calendar.walk("VEVENT"):
        recurrence = component.get("RECURRENCE-ID")
        here = _utc(recurrence.dt) if recurrence is not None else ""
        properties = []
        for name, values in component.items():
            for value in values if isinstance(values, list) else [values]:
                text_value = value.to_ical().decode() if hasattr(value, "to_ical") else str(value)
                if name.upper().startswith("X-SLOTGUARD-"):
                    # A property is the event's when it stands on the event's own VEVENT (the
                    # override, or a single event) without an instance, or on the master for it.
                    instance = getattr(value, "params", {}).get("X-SLOTGUARD-INSTANCE", "")
                    if (here or instance) == suffix and not (here and instance):
                        own[name.upper()] = text_value
                    continue
                properties.append((name, text_value))
        rest.append(sorted(properties))
    return StoredEvent(own, rest)


class CalDavHarness:
    name = "caldav"
    writes_back = True
    known_gaps: dict[str, str] = {}

    def __init__(self, folder: Path):
        self.folder = folder
        self.server = RadicaleServer().start()
        self.calendar = self.server.make_calendar("appointments", DISPLAY_NAME)
        # The adapter waits TIMEOUT for an answer; a "timeout" fault holds a request longer.
        self.tap = WireTap(forward_to(self.server.url), stall=TIMEOUT_SECONDS + 2).start()
        os.environ[PASSWORD_ENV] = self.server.password
        self.last_edit: StoredEvent | None = None
        self.ids: dict[str, tuple[str, datetime | None]] = {}  # event id -> (UID, the instance's original start)

    # --- config and the adapter --------------------------------------------------------

    def calendar_table(self) -> dict[str, Any]:
        return {"source": "caldav",
                "caldav": {"url": f"{self.tap.base_url}/", "username": self.server.user, "password": {"env": PASSWORD_ENV},
                           "calendar": DISPLAY_NAME, "timeout": f"{TIMEOUT_SECONDS}s"}}

    def open_calendars(self, settings: Settings) -> list[tuple[CalendarSource, CalendarWriteBack]]:
        return [open_calendar(settings, data_dir=str(self.folder / "caldav-data"))]

    # --- editing objects as a calendar app does ------------------------------------------

    def _lines(self, uid: str, booking: Booking, extra: list[str]) -> str:
        lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Slotguard contract harness//EN", "BEGIN:VEVENT", f"UID:{uid}",
                 "DTSTAMP:20261201T000000Z", f"DTSTART:{_utc(booking.start)}", f"DTEND:{_utc(booking.end)}", f"SUMMARY:{booking.title}"]
        if booking.description:
            lines.append(f"DESCRIPTION:{booking.description}")
        lines += [f"ORGANIZER:mailto:{PRACTITIONER}",
                  f"ATTENDEE;CN={booking.client_name};PARTSTAT=ACCEPTED;RSVP=TRUE:mailto:{booking.client_email}", *extra,
                  "END:VEVENT", "END:VCALENDAR"]
        return "".join(f"{line}\r\n" for line in lines)

    def _edit(self, event_id: str, change: Any) -> None:
        """Read the object, `change(component)` the event's VEVENT (an override made for a
        series instance that has none), store it back with If-Match."""
        uid, instance = self.ids[event_id]
        text, etag = self.server.get(self.calendar, uid)
        calendar = icalendar.Calendar.from_ical(text)
        events = calendar.walk("VEVENT")
        master = next(event for event in events if event.get("RECURRENCE-ID") is None)
        target = master
        if instance is not None:
            target = next((event for event in events if event.get("RECURRENCE-ID") is not None
                           and event.get("RECURRENCE-ID").dt.astimezone(UTC) == instance), None)
            if target is None:
                target = icalendar.Event()
                length = master.get("DTEND").dt - master.get("DTSTART").dt
                for name in ("UID", "DTSTAMP", "SUMMARY", "DESCRIPTION", "ORGANIZER", "ATTENDEE", "CATEGORIES"):
                    if master.get(name) is not None:
                        target[name] = master[name]
                target.add("RECURRENCE-ID", instance)
                target.add("DTSTART", instance)
                target.add("DTEND", instance + length)
                calendar.add_component(target)
        change(target)
        self.server.put(self.calendar, uid, calendar.to_ical().decode(), etag)

    # --- the practitioner and the client ------------------------------------------------

    def create(self, booking: Booking) -> str:
        uid = uuid.uuid4().hex
        self.server.put(self.calendar, uid, self._lines(uid, booking, []))
        self.ids[uid] = (uid, None)
        return uid

    def create_many(self, bookings: list[Booking]) -> list[str]:
        """All of `bookings` written straight into Radicale's storage (for the bench)."""
        ids = []
        for booking in bookings:
            uid = uuid.uuid4().hex
            self.server.store_directly(self.calendar, uid, self._lines(uid, booking, []))
            self.ids[uid] = (uid, None)
            ids.append(uid)
        # Radicale indexes files it did not receive by PUT when first asked (about a minute for
        # 2,000 on a small machine); a real server has its events indexed: ask once, directly.
        self.server.request("PROPFIND", self.calendar, '<?xml version="1.0"?><propfind xmlns="DAV:"><prop><sync-token/></prop></propfind>',
                            {"Depth": "0", "Content-Type": "application/xml"}, timeout=600)
        return ids

    def mark(self, event_id: str, mark: str) -> None:
        self._edit(event_id, lambda event: event.add("CATEGORIES", [CATEGORY[mark]]))

    def move(self, event_id: str, start: datetime, end: datetime) -> None:
        def moved(event: Any) -> None:
            del event["DTSTART"]
            del event["DTEND"]
            event.add("DTSTART", start.astimezone(UTC))
            event.add("DTEND", end.astimezone(UTC))

        self._edit(event_id, moved)

    def cancel(self, event_id: str) -> None:
        def cancelled(event: Any) -> None:
            event.pop("STATUS", None)
            event.add("STATUS", "CANCELLED")

        self._edit(event_id, cancelled)

    def delete(self, event_id: str) -> None:
        uid, instance = self.ids[event_id]
        if instance is None:
            self.server.delete(self.calendar, uid)
            return
        text, etag = self.server.get(self.calendar, uid)
        calendar = icalendar.Calendar.from_ical(text)
        calendar.subcomponents = [component for component in calendar.subcomponents
                                  if not (component.name == "VEVENT" and component.get("RECURRENCE-ID") is not None
                                          and component.get("RECURRENCE-ID").dt.astimezone(UTC) == instance)]
        master = next(event for event in calendar.walk("VEVENT") if event.get("RECURRENCE-ID") is None)
        master.add("EXDATE", instance)
        self.server.put(self.calendar, uid, calendar.to_ical().decode(), etag)

    def decline(self, event_id: str) -> None:
        def declined(event: Any) -> None:
            attendees = event.get("ATTENDEE")
            for attendee in attendees if isinstance(attendees, list) else [attendees]:
                attendee.params["PARTSTAT"] = "DECLINED"

        self._edit(event_id, declined)

    def create_series(self, booking: Booking, count: int, *, moved: tuple[int, datetime], cancelled: int) -> list[str]:
        uid = uuid.uuid4().hex
        self.server.put(self.calendar, uid, self._lines(uid, booking, [f"RRULE:FREQ=WEEKLY;COUNT={count}"]))
        ids = []
        for number in range(count):
            start = (booking.start + timedelta(weeks=number)).astimezone(UTC)
            ids.append(f"{uid}_{_utc(start)}")
            self.ids[ids[-1]] = (uid, start)
        index, start = moved
        self.move(ids[index], start, start + (booking.end - booking.start))
        self.delete(ids[cancelled])
        return ids

    def expire_sync_token(self) -> None:
        self.server.expire_sync_tokens()

    # --- faults and the stored event -----------------------------------------------------

    def fail(self, kind: str, *, after: int = 0) -> None:
        self.tap.fail(kind, after=after)

    def heal(self) -> None:
        self.tap.heal()

    def small_pages(self) -> None:
        """The adapter reads a window in one REPORT: a half read cuts that answer."""

    def edit_before_next_write(self, event_id: str) -> None:
        uid, _ = self.ids[event_id]

        def edit() -> None:
            def located(event: Any) -> None:
                event.pop("LOCATION", None)
                event.add("LOCATION", "Room 2, upstairs")

            self._edit(event_id, located)
            self.last_edit = self.stored(event_id)

        self.tap.before_next("PUT", f"{uid}.ics", edit)

    def stored(self, event_id: str) -> StoredEvent:
        uid, instance = self.ids[event_id]
        text, _ = self.server.get(self.calendar, uid)
        return _own_and_rest(text, uid, _utc(instance) if instance else "")

    def request_count(self) -> int:
        return self.tap.count()

    def bytes_moved(self) -> int:
        return self.tap.bytes_moved()

    def reset_requests(self) -> None:
        self.tap.reset()

    def close(self) -> None:
        self.tap.stop()
        self.server.stop()
        os.environ.pop(PASSWORD_ENV, None)


def missing() -> str:
    """Why Radicale cannot run here ("" when it can)."""
    try:
        import radicale  # noqa: F401
    except ImportError:
        return "Radicale is not installed (pip install radicale==3.9.0, as in requirements.txt)"
    return ""


def open_harness(tmp_path: Path) -> CalDavHarness:
    folder = tmp_path / "caldav"
    folder.mkdir(exist_ok=True)
    return CalDavHarness(folder)
