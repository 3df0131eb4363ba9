"""Shared set-up of the CalDAV tests: settings pointing at a Radicale (or a proxy in front
of it), a fresh calendar per test, and the adapter opened on them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar

from integration.caldav_http import DavClient
from integration.caldav_source import open_calendar
from slotguard.config.schema import Settings
from tests.support import builders
from tests.support.radicale_server import RadicaleServer

PASSWORD_ENV = "SLOTGUARD_TEST_CALDAV_PASSWORD"
NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def at(days: float = 0, hours: float = 0) -> datetime:
    return NOW + timedelta(days=days, hours=hours)


def new_calendar(radicale: RadicaleServer) -> tuple[str, str]:
    """(path, display name) of a new calendar in the Radicale."""
    name = "cal-" + uuid.uuid4().hex[:8]
    display = "Appointments " + name[-4:]
    return radicale.make_calendar(name, display), display


def caldav_settings(tmp_path: Any, url: str, calendar: str, *, user: str = "lena", **calendar_keys: Any) -> Settings:
    caldav = {"url": url, "username": user, "password": {"env": PASSWORD_ENV}, "calendar": calendar, "timeout": "3s",
              **calendar_keys.pop("caldav", {})}
    return builders.settings(
        calendar={"source": "caldav", "window_past": "30d", "window_future": "180d", "caldav": caldav, **calendar_keys},
        storage={"data_dir": str(tmp_path / "data")},
    )


def opened(settings: Settings) -> tuple[Any, Any, DavClient]:
    source, writer = open_calendar(settings)
    return source, writer, source.client


def sync(source: Any, token: str | None, now: datetime = NOW) -> tuple[list[dict], str, bool]:
    """Run pages() to the end, as the engine does; (events, next token, full)."""
    events, token_out, full = [], "", False
    for page in source.pages(token, now):
        events += page.events
        full = full or page.full
        token_out = page.next_sync_token or token_out
    return events, token_out, full


def parsed_without_ours(text: str) -> list[list[tuple[str, str]]]:
    """Each VEVENT's properties (name, iCalendar value) but Slotguard's own, in order, for
    comparing an object before and after a write-back."""
    calendar = icalendar.Calendar.from_ical(text)
    found = []
    for component in calendar.walk("VEVENT"):
        found.append(sorted((name, value.to_ical().decode() if hasattr(value, "to_ical") else str(value))
                            for name, values in component.items()
                            for value in (values if isinstance(values, list) else [values])
                            if not name.upper().startswith("X-SLOTGUARD-")))
    return found
