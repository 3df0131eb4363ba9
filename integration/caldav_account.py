"""One CalDAV calendar's HTTP client, remembered state and discovery, shared by its source
(integration/caldav_source.py) and its write-back (integration/caldav_write.py)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

from integration.caldav_discovery import discover, is_address
from integration.caldav_http import CALDAV, DavClient, cal, dav
from integration.caldav_state import Remembered, load, state_path

log = logging.getLogger("slotguard.caldav")


def multiget_body(hrefs: list[str]) -> str:
    listed = "".join(f"<D:href>{escape(urlsplit(href).path)}</D:href>" for href in hrefs)
    return (f'<?xml version="1.0" encoding="utf-8"?><C:calendar-multiget xmlns:D="DAV:" xmlns:C="{CALDAV}"><D:prop><D:getetag/>'
            f"<C:calendar-data/></D:prop>{listed}</C:calendar-multiget>")


def calendar_key(settings: Any) -> str:
    """The calendar's id in the ledger: its configured address, else user@host/name."""
    caldav = settings.calendar.caldav
    if is_address(caldav.calendar):
        return caldav.calendar if caldav.calendar.startswith("http") else f"{caldav.url.rstrip('/')}{caldav.calendar}"
    return f"{caldav.username}@{urlsplit(caldav.url).hostname}/{caldav.calendar or '(the only calendar)'}"


class CalDavAccount:
    """The client, the state and discovery, shared by one calendar's source and write-back."""

    def __init__(self, settings: Any, client: DavClient, calendar_id: str, data_dir: str | None = None):
        self.settings, self.client, self.calendar_id = settings, client, calendar_id
        self.path = state_path(data_dir or settings.storage.data_dir, calendar_id)
        self.state = load(self.path, calendar_id)

    @property
    def where(self) -> str:
        return f"CalDAV calendar {self.calendar_id}"

    def discovered(self) -> Remembered:
        """The state, after discovery if it was never done (three requests, once)."""
        if not self.state.calendar_url:
            found = discover(self.client, self.settings.calendar.caldav.calendar)
            self.state = replace(self.state, calendar_url=found.calendar_url, display_name=found.display_name, sync=found.sync,
                                 addresses=list(found.addresses), token="", objects={})
            log.info("caldav_discovered calendar=%s url=%s sync=%s", self.calendar_id, found.calendar_url, found.sync)
        return self.state

    def fetch(self, hrefs: list[str], what: str) -> dict[str, tuple[str, bytes]]:
        """href -> (ETag, data) of the objects among `hrefs` the server still has (one
        calendar-multiget); a missing one is deleted."""
        if not hrefs:
            return {}
        items, _ = self.client.multistatus("REPORT", self.state.calendar_url, multiget_body(hrefs), "1", what)
        return {item.href: (item.text(dav("getetag")), item.text(cal("calendar-data")).encode("utf-8"))
                for item in items if item.status == 200 and item.props.get(cal("calendar-data")) is not None}
