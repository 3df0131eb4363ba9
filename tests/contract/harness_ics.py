"""An .ics feed in the contract suite: the harness keeps the calendar in memory and rewrites
the feed file on every change, as a calendar app exporting it would; a wire tap
(tests/contract/wire.py) serves that file over HTTP to the real adapter
(integration/ics_source.py), so that faults and request counts work as for the other sources.
Marks are tags in the SUMMARY (Apple's and Outlook's feeds carry no colours); a cancelled
instance of a series is an EXDATE, a moved one a RECURRENCE-ID override. Read-only: nothing
is written back. The tap answers like a web server: with an ETag, and 304 Not Modified to a
request carrying the ETag of the unchanged feed."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import integration.ics_source as ics_source
from slotguard.config.schema import Settings
from slotguard.domain.interfaces import CalendarSource, CalendarWriteBack, NullWriteBack
from tests.contract.harness import Booking, StoredEvent
from tests.contract.wire import WireTap

PRACTITIONER = "lena@example.com"
TAGS = {"no_show": "#noshow", "late_cancel": "#latecancel", "waive": "#waive"}
TIMEOUT = 0.5  # seconds the adapter waits for the feed in these tests (30 in production)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _instance_start(event_id: str) -> datetime:
    """The original start of a series instance, from its id (UID_YYYYMMDDTHHMMSSZ)."""
    return datetime.strptime(event_id.rsplit("_", 1)[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def _text(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\n", "\\n")


@dataclass
class _Event:
    uid: str
    booking: Booking
    start: datetime
    end: datetime
    summary: str
    status: str = "CONFIRMED"
    partstat: str = "ACCEPTED"
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))
    rrule: str = ""
    exdates: list[datetime] = field(default_factory=list)
    recurrence_id: datetime | None = None

    def lines(self) -> list[str]:
        lines = ["BEGIN:VEVENT", f"UID:{self.uid}", f"DTSTAMP:{_utc(self.modified)}", f"LAST-MODIFIED:{_utc(self.modified)}"]
        if self.recurrence_id is not None:
            lines.append(f"RECURRENCE-ID:{_utc(self.recurrence_id)}")
        lines += [f"DTSTART:{_utc(self.start)}", f"DTEND:{_utc(self.end)}", f"SUMMARY:{_text(self.summary)}"]
        if self.booking.description:
            lines.append(f"DESCRIPTION:{_text(self.booking.description)}")
        lines += [f"STATUS:{self.status}", f"ORGANIZER:mailto:{PRACTITIONER}",
                  f"ATTENDEE;CN={self.booking.client_name};PARTSTAT={self.partstat}:mailto:{self.booking.client_email}"]
        if self.rrule:
            lines.append(f"RRULE:{self.rrule}")
        lines += [f"EXDATE:{_utc(moment)}" for moment in self.exdates]
        return [*lines, "END:VEVENT"]


class IcsHarness:
    name = "ics"
    writes_back = False
    known_gaps = {
        "test_a_moved_appointment_is_rescheduled_never_cancelled": (
            "the .ics adapter names a single event UID_START (recurring_ical_events gives every instance a "
            "RECURRENCE-ID), so a moved event comes back under a new id: the old booking reads as cancelled "
            "by the practitioner and the new one as a new booking; fixing it renames every single event of "
            "an existing ledger, which needs a migration"),
    }

    def __init__(self, folder: Path):
        self.path = folder / "calendar.ics"
        self.events: dict[str, _Event] = {}  # by the id the engine sees
        self.series: dict[str, _Event] = {}  # the master VEVENT of each series, by UID
        self.overrides: list[_Event] = []
        self.last_edit: StoredEvent | None = None  # never: nothing is written to a feed
        self.tap = WireTap(self._answer).start()
        self._timeout = ics_source.FETCH_TIMEOUT
        self._write()

    def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """The feed as a web server gives a file: with an ETag, and 304 Not Modified (no body)
        when asked with the ETag it still has."""
        feed = self.path.read_bytes()
        etag = '"' + hashlib.sha256(feed).hexdigest()[:16] + '"'
        if {k.lower(): v for k, v in headers.items()}.get("if-none-match") == etag:
            return 304, {"ETag": etag}, b""
        return 200, {"Content-Type": "text/calendar; charset=utf-8", "ETag": etag}, feed

    def _write(self) -> None:
        singles = [event for event in self.events.values() if event.uid not in self.series]
        lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Slotguard contract harness//EN"]
        for event in [*singles, *self.series.values(), *self.overrides]:
            lines += event.lines()
        lines.append("END:VCALENDAR")
        self.path.write_text("".join(f"{line}\r\n" for line in lines), encoding="utf-8")

    def _change(self, event_id: str, **changes: Any) -> None:
        event = self._editable(event_id)
        for name, value in changes.items():
            setattr(event, name, value)
        event.modified = datetime.now(UTC)
        self._write()

    def _editable(self, event_id: str) -> _Event:
        """The VEVENT holding this event: the event itself, or an override made for the
        series instance."""
        event = self.events[event_id]
        if not event.rrule:
            return event
        moment = _instance_start(event_id)
        override = _Event(event.uid, event.booking, moment, moment + (event.end - event.start), event.summary, recurrence_id=moment)
        self.overrides.append(override)
        self.events[event_id] = override
        return override

    # --- config and the adapter --------------------------------------------------------

    def calendar_table(self) -> dict[str, Any]:
        return {"source": "ics", "url": f"{self.tap.base_url}/calendar.ics",
                "marks": {"no_show": {"tags": [TAGS["no_show"]]}, "late_cancel": {"tags": [TAGS["late_cancel"]]},
                          "waive": {"tags": [TAGS["waive"]]}}}

    def open_calendars(self, settings: Settings) -> list[tuple[CalendarSource, CalendarWriteBack]]:
        ics_source.FETCH_TIMEOUT = TIMEOUT  # read at each fetch; restored by close()
        return [(ics_source.IcsSource(settings), NullWriteBack())]

    # --- the practitioner and the client ------------------------------------------------

    def create(self, booking: Booking) -> str:
        uid = uuid.uuid4().hex
        event_id = f"{uid}_{_utc(booking.start)}"  # the adapter names even a single event by UID and start
        self.events[event_id] = _Event(uid, booking, booking.start, booking.end, booking.title)
        self._write()
        return event_id

    def create_many(self, bookings: list[Booking]) -> list[str]:
        """Put all of `bookings` in the calendar with one rewrite of the feed (for the bench)."""
        ids = []
        for booking in bookings:
            uid = uuid.uuid4().hex
            ids.append(f"{uid}_{_utc(booking.start)}")
            self.events[ids[-1]] = _Event(uid, booking, booking.start, booking.end, booking.title)
        self._write()
        return ids

    def mark(self, event_id: str, mark: str) -> None:
        self._change(event_id, summary=f"{self.events[event_id].summary} {TAGS[mark]}")

    def move(self, event_id: str, start: datetime, end: datetime) -> None:
        self._change(event_id, start=start, end=end)

    def cancel(self, event_id: str) -> None:
        self._change(event_id, status="CANCELLED")

    def delete(self, event_id: str) -> None:
        event = self.events.pop(event_id)
        if event.uid in self.series:  # an instance: the series leaves it out from now on
            if event in self.overrides:
                self.overrides.remove(event)
            master = self.series[event.uid]
            master.exdates.append(_instance_start(event_id))
            master.modified = datetime.now(UTC)
        self._write()

    def decline(self, event_id: str) -> None:
        self._change(event_id, partstat="DECLINED")

    def create_series(self, booking: Booking, count: int, *, moved: tuple[int, datetime], cancelled: int) -> list[str]:
        uid = uuid.uuid4().hex
        master = _Event(uid, booking, booking.start, booking.end, booking.title, rrule=f"FREQ=WEEKLY;COUNT={count}")
        ids = [f"{uid}_{_utc(booking.start + timedelta(weeks=n))}" for n in range(count)]
        self.series[uid] = master
        for event_id in ids:
            self.events[event_id] = master
        index, start = moved
        self.move(ids[index], start, start + (booking.end - booking.start))
        self.delete(ids[cancelled])
        return ids

    def expire_sync_token(self) -> None:
        """A feed has no sync token: every read is whole (the digest only saves work)."""

    # --- faults and the stored event -----------------------------------------------------

    def fail(self, kind: str, *, after: int = 0) -> None:
        # One request reads the whole feed: "the second page" of a half read is its one answer.
        self.tap.fail(kind, after=0 if kind == "half_read" else after)

    def heal(self) -> None:
        self.tap.heal()

    def small_pages(self) -> None:
        """A feed is one answer: a half read cuts that answer."""

    def edit_before_next_write(self, event_id: str) -> None:
        raise AssertionError("an .ics feed is never written to")

    def stored(self, event_id: str) -> StoredEvent:
        return StoredEvent({}, "\r\n".join(self._editable_view(event_id)))

    def _editable_view(self, event_id: str) -> list[str]:
        return [line for line in self.events[event_id].lines() if not line.startswith(("DTSTAMP", "LAST-MODIFIED"))]

    def request_count(self) -> int:
        return self.tap.count()

    def bytes_moved(self) -> int:
        return self.tap.bytes_moved()

    def reset_requests(self) -> None:
        self.tap.reset()

    def close(self) -> None:
        ics_source.FETCH_TIMEOUT = self._timeout
        self.tap.stop()


def open_harness(tmp_path: Path) -> IcsHarness:
    folder = tmp_path / "ics"
    folder.mkdir(exist_ok=True)
    return IcsHarness(folder)
