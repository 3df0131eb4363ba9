"""Google Calendar in the contract suite: the Calendar v3 wire fake
(tests/support/fake_google_calendar.py) behind a wire tap (tests/contract/wire.py), spoken to
by the real adapter (integration/google_calendar.py) through the real google-api-python-client
and google-auth. Marks: the tomato colour (colorId 11) for a no-show, a tag in the title for
the others. Token requests go to the fake directly (they are not calendar requests)."""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from google.oauth2.credentials import Credentials

from integration.google_auth import SCOPE_OWNED
from integration.google_calendar import PROPERTY_PREFIX, open_calendars, strip_status_line
from slotguard.config.schema import Settings
from slotguard.domain.interfaces import CalendarSource, CalendarWriteBack
from tests.contract.harness import Booking, StoredEvent
from tests.contract.wire import WireTap
from tests.support.fake_google_calendar import FakeGoogleCalendar

CALENDAR = "primary"
PRACTITIONER = "lena@example.com"
TOMATO = "11"
TAGS = {"late_cancel": "#latecancel", "waive": "#waive"}
BUMPED = ("etag", "updated")


def _slot(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.isoformat(), "timeZone": "Europe/Oslo"}


class GoogleHarness:
    name = "google"
    writes_back = True
    known_gaps: dict[str, str] = {}

    def __init__(self, fake: FakeGoogleCalendar, tap: WireTap):
        self.fake, self.tap = fake, tap
        self.last_edit: StoredEvent | None = None  # the event right after edit_before_next_write's edit

    # --- config and the adapter --------------------------------------------------------

    def calendar_table(self) -> dict[str, Any]:
        return {"source": "google", "calendar_ids": [CALENDAR], "api_endpoint": f"{self.tap.base_url}/calendar/v3/",
                "token_uri": self.fake.token_uri,
                "marks": {"no_show": {"color": "tomato", "tags": ["#noshow"]}, "late_cancel": {"tags": [TAGS["late_cancel"]]},
                          "waive": {"tags": [TAGS["waive"]]}}}

    def open_calendars(self, settings: Settings) -> list[tuple[CalendarSource, CalendarWriteBack]]:
        credentials = Credentials(
            token=self.fake.issue_access_token([SCOPE_OWNED]), refresh_token=self.fake.issue_refresh_token([SCOPE_OWNED]),
            token_uri=self.fake.token_uri, client_id=self.fake.client_id, client_secret=self.fake.client_secret,
            scopes=[SCOPE_OWNED], expiry=datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1),
        )
        return list(open_calendars(settings, credentials=credentials, retry_budget=1.0, timeout=0.5, sleep=time.sleep))

    # --- the practitioner and the client ------------------------------------------------

    def _resource(self, booking: Booking) -> dict[str, Any]:
        return {
            "summary": booking.title, "description": booking.description,
            "start": _slot(booking.start), "end": _slot(booking.end),
            "organizer": {"email": PRACTITIONER, "self": True},
            "attendees": [
                {"email": PRACTITIONER, "organizer": True, "self": True, "responseStatus": "accepted"},
                {"email": booking.client_email, "displayName": booking.client_name, "responseStatus": "accepted"},
            ],
        }

    def create(self, booking: Booking) -> str:
        return self.fake.put_event(CALENDAR, self._resource(booking))["id"]

    def mark(self, event_id: str, mark: str) -> None:
        if mark == "no_show":
            self.fake.modify_event(CALENDAR, event_id, colorId=TOMATO)
        else:
            title = self.fake.get_event(CALENDAR, event_id)["summary"]
            self.fake.modify_event(CALENDAR, event_id, summary=f"{title} {TAGS[mark]}")

    def move(self, event_id: str, start: datetime, end: datetime) -> None:
        self.fake.modify_event(CALENDAR, event_id, start=_slot(start), end=_slot(end))

    def cancel(self, event_id: str) -> None:
        self.fake.modify_event(CALENDAR, event_id, status="cancelled")

    def delete(self, event_id: str) -> None:
        self.fake.delete_event(CALENDAR, event_id)

    def decline(self, event_id: str) -> None:
        attendees = copy.deepcopy(self.fake.get_event(CALENDAR, event_id)["attendees"])
        for attendee in attendees:
            if not attendee.get("self"):
                attendee["responseStatus"] = "declined"
        self.fake.modify_event(CALENDAR, event_id, attendees=attendees)

    def create_series(self, booking: Booking, count: int, *, moved: tuple[int, datetime], cancelled: int) -> list[str]:
        ids = [instance["id"] for instance in self.fake.put_recurring(CALENDAR, self._resource(booking), count)]
        index, start = moved
        self.move(ids[index], start, start + (booking.end - booking.start))
        self.delete(ids[cancelled])  # Google keeps a cancelled instance as a cancelled exception
        return ids

    def expire_sync_token(self) -> None:
        self.fake.expire_sync_tokens(CALENDAR)

    # --- faults and the stored event -----------------------------------------------------

    def fail(self, kind: str, *, after: int = 0) -> None:
        self.tap.fail(kind, after=after)

    def heal(self) -> None:
        self.tap.heal()

    def small_pages(self) -> None:
        self.fake.page_size_cap = 2

    def edit_before_next_write(self, event_id: str) -> None:
        def edit() -> None:
            self.fake.modify_event(CALENDAR, event_id, location="Room 2, upstairs")
            self.last_edit = self.stored(event_id)

        self.tap.before_next("PATCH", event_id, edit)

    def stored(self, event_id: str) -> StoredEvent:
        resource = self.fake.get_event(CALENDAR, event_id)
        private = dict((resource.get("extendedProperties") or {}).get("private") or {})
        own = {key: value for key, value in private.items() if key.startswith(PROPERTY_PREFIX)}
        rest = {key: value for key, value in resource.items() if key not in BUMPED}
        kept = {key: value for key, value in private.items() if key not in own}
        properties = dict(rest.pop("extendedProperties", {}) or {})
        properties["private"] = kept
        rest["extendedProperties"] = {scope: values for scope, values in properties.items() if values}
        description = rest.get("description") or ""
        rest["description"] = strip_status_line(description, own.get("slotguard_note", ""))
        if rest["description"] != description:
            own["description line"] = description
        return StoredEvent(own, rest)

    def request_count(self) -> int:
        return self.tap.count()

    def bytes_moved(self) -> int:
        return self.tap.bytes_moved()

    def reset_requests(self) -> None:
        self.tap.reset()

    def close(self) -> None:
        self.tap.stop()
        self.fake.stop()


def open_harness(tmp_path: Path) -> GoogleHarness:
    fake = FakeGoogleCalendar(require_auth=True).start()
    tap = WireTap.forwarding(fake.base_url)
    return GoogleHarness(fake, tap)
