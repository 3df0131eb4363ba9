"""CalDAV calendars (calendar.source = "caldav"): iCloud, Fastmail, Nextcloud, Radicale, Baïkal.

`CalDavSource.pages()` (CalendarSource) reads one calendar of a CalDAV account
([calendar.caldav]: a base address, a user name, a password by reference, the calendar by
display name or address), found once by integration/caldav_discovery.py:

- A full sync (no token): the calendar's DAV:sync-token (PROPFIND), then a calendar-query
  REPORT of the sync window with every object's ETag and data: two requests.
- Then incremental syncs with `sync-collection` (RFC 6578) and that token, asking for the
  changed objects' data in the same REPORT: an idle calendar costs one request per tick,
  a changed one too (a server that leaves the data out costs one calendar-multiget more).
  A token the server refuses (403/409 DAV:valid-sync-token, 410) raises SyncTokenExpired,
  the path Google's 410 takes: the engine then asks for a full sync.
- A server without sync-collection: each tick lists the window's ETags (calendar-query,
  one request) and compares them with the last listing; changed objects and objects that
  left the listing are fetched with one calendar-multiget (gone: deleted).

Objects become v3 Event dicts through integration/caldav_events.py (the .ics source's
expansion and caps; marks from CATEGORIES; Slotguard's X-SLOTGUARD-* properties). Which
instances each object gave is kept in a 0600 state file (integration/caldav_state.py), so
an instance dropped from a series (an EXDATE) or a deleted object arrives as a cancelled
event, as Google sends it. Write-back: integration/caldav_write.py.

Requests go through integration/caldav_http.py (credentials with the first request;
faults as AdapterError, retryable; a 401 as ReauthorizationNeeded).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from integration.caldav_account import CalDavAccount, calendar_key
from integration.caldav_events import Converter
from integration.caldav_http import CALDAV, DavClient, cal, dav, parse_multistatus
from integration.caldav_state import Remembered, save
from integration.caldav_write import CalDavWriteBack
from slotguard.domain.interfaces import AdapterError, CalendarWriteBack, NullWriteBack, SyncPage, SyncTokenExpired
from slotguard.domain.untrusted import one_line

log = logging.getLogger("slotguard.caldav")
MAX_SYNC_ROUNDS = 50  # a server that truncates sync-collection answers (507) gives the rest in more rounds
_XML = '<?xml version="1.0" encoding="utf-8"?>'
_NS = f'xmlns:D="DAV:" xmlns:C="{CALDAV}"'
TOKEN_BODY = f'{_XML}<D:propfind {_NS}><D:prop><D:sync-token/></D:prop></D:propfind>'


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def query_body(start: datetime, end: datetime, with_data: bool) -> str:
    data = "<C:calendar-data/>" if with_data else ""
    return (f'{_XML}<C:calendar-query {_NS}><D:prop><D:getetag/>{data}</D:prop><C:filter><C:comp-filter name="VCALENDAR">'
            f'<C:comp-filter name="VEVENT"><C:time-range start="{_stamp(start)}" end="{_stamp(end)}"/></C:comp-filter>'
            "</C:comp-filter></C:filter></C:calendar-query>")


def sync_body(token: str) -> str:
    return (f'{_XML}<D:sync-collection {_NS}><D:sync-token>{escape(token)}</D:sync-token><D:sync-level>1</D:sync-level>'
            "<D:prop><D:getetag/><C:calendar-data/></D:prop></D:sync-collection>")


def _start_of(event: dict) -> str:
    start = event.get("start") or {}
    return str(start.get("dateTime") or start.get("date") or "")


def _within(start: str, window_start: datetime, window_end: datetime) -> bool:
    """True when an instance starting at `start` (ISO, as remembered) lies in the window, or
    its start is not known (then it is said gone rather than kept for ever)."""
    try:
        moment = datetime.fromisoformat(start)
    except ValueError:
        return True
    if moment.tzinfo is None:  # an all-day date
        moment = moment.replace(tzinfo=UTC)
    return window_start <= moment <= window_end


class CalDavSource:
    """Reads one CalDAV calendar (CalendarSource); `calendar_id` is calendar_key(settings)."""

    def __init__(self, account: CalDavAccount):
        self.account = account
        self.calendar_id = account.calendar_id

    @property
    def client(self) -> DavClient:
        return self.account.client

    def pages(self, sync_token: str | None, now: datetime) -> Iterator[SyncPage]:
        """One page: the whole window (no token), or what changed since `sync_token`.
        Raises SyncTokenExpired (the server refused the token, or the state file does not go
        with it), ReauthorizationNeeded, or AdapterError."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        state = self.account.discovered()
        window_start = now - self.account.settings.calendar.window_past
        window_end = now + self.account.settings.calendar.window_future
        if sync_token is not None and sync_token != state.token:
            raise SyncTokenExpired(f"{self.account.where}: Slotguard's record of the calendar does not go with the saved sync token; a full sync is needed")
        if sync_token is None:
            page, new_state = self._full(state, window_start, window_end)
        elif state.sync:
            page, new_state = self._changes(state, self._synced(state, sync_token), window_start, window_end)
        else:
            page, new_state = self._compared(state, window_start, window_end)
        yield page
        # The engine has stored the page's token (it asks for the next page only then). An
        # idle tick changes nothing, and writes nothing.
        if new_state != self.account.state:
            self.account.state = new_state
            save(self.account.path, new_state)

    # -- full listing ------------------------------------------------------------------

    def _full(self, state: Remembered, window_start: datetime, window_end: datetime) -> tuple[SyncPage, Remembered]:
        token = ""
        if state.sync:
            items, _ = self.client.multistatus("PROPFIND", state.calendar_url, TOKEN_BODY, "0", "reading the sync token")
            token = next((item.text(dav("sync-token")) for item in items if item.text(dav("sync-token"))), "")
        items, _ = self.client.multistatus("REPORT", state.calendar_url, query_body(window_start, window_end, True), "1", "listing the events of the sync window")
        items = [item for item in items if item.status == 200 and item.href.rstrip("/") != state.calendar_url.rstrip("/")]
        listing = {item.href: item.text(dav("getetag")) for item in items}
        data = {item.href: item.text(cal("calendar-data")).encode("utf-8") for item in items if item.props.get(cal("calendar-data")) is not None}
        missing = [href for href in listing if href not in data]
        for href, (etag, body) in self.account.fetch(missing, "reading events").items():
            listing[href], data[href] = etag or listing[href], body
        events, objects, complete = self._read(list(data.items()), listing, {}, window_start, window_end)
        if not state.sync or not token:
            token = _listing_token(listing)
        new_state = replace(state, sync=state.sync and bool(token) and not token.startswith("etags:"), token=token, objects=objects)
        log.info("caldav_synced calendar=%s full=True events=%d requests=%d", self.calendar_id, len(events), self.client.requests)
        return SyncPage(events=events, full=complete, last=True, next_sync_token=token, window_start=window_start, window_end=window_end), new_state

    # -- incremental, with sync-collection ----------------------------------------------

    def _synced(self, state: Remembered, token: str) -> tuple[str, dict[str, tuple[str, bytes] | None]]:
        """(new token, href -> (ETag, data) of changed objects, None for deleted ones)."""
        changes: dict[str, tuple[str, bytes] | None] = {}
        without_data: list[str] = []
        for _ in range(MAX_SYNC_ROUNDS):
            answer = self.client.request("REPORT", state.calendar_url, sync_body(token), {"Depth": "0"}, what="asking what changed (sync-collection)")
            if answer.status in (403, 409, 410, 400, 412) and (b"valid-sync-token" in answer.body or answer.status == 410):
                raise SyncTokenExpired(f"{self.account.where}: the server no longer knows the saved sync token; a full sync is needed")
            if answer.status != 207:
                raise AdapterError(f"{self.account.where}: asking what changed: HTTP {answer.status} "
                                   f"({one_line(answer.body.decode('utf-8', 'replace'), 120)}); will try again next tick")
            items, new_token = parse_multistatus(answer.body, answer.url)
            truncated = False
            for item in items:
                if item.href.rstrip("/") == state.calendar_url.rstrip("/"):
                    truncated = truncated or item.status == 507
                    continue
                if item.status == 404:
                    changes[item.href] = None
                elif item.props.get(cal("calendar-data")) is not None:
                    changes[item.href] = (item.text(dav("getetag")), item.text(cal("calendar-data")).encode("utf-8"))
                elif item.status == 200:
                    without_data.append(item.href)
            if not new_token:
                raise AdapterError(f"{self.account.where}: the server's sync-collection answer carried no sync token; will try again next tick")
            token = new_token
            if not truncated:
                break
        fetched = self.account.fetch(without_data, "reading changed events")
        for href in without_data:
            changes[href] = fetched.get(href)
        return token, changes

    def _changes(self, state: Remembered, synced: tuple[str, dict[str, tuple[str, bytes] | None]],
                 window_start: datetime, window_end: datetime) -> tuple[SyncPage, Remembered]:
        token, changes = synced
        if not changes:
            return SyncPage(events=[], full=False, last=True, next_sync_token=token), replace(state, token=token)
        changed = {href: value for href, value in changes.items() if value is not None}
        listing = {href: value[0] for href, value in changed.items()}
        events, objects, _ = self._read([(href, value[1]) for href, value in changed.items()], listing, state.objects, window_start, window_end)
        remembered = {href: known for href, known in state.objects.items() if href not in changes}
        for href, value in changes.items():
            if value is None:
                events += [{"id": event_id, "status": "cancelled"} for event_id in state.objects.get(href, {}).get("ids", {})]
        remembered.update(objects)
        log.info("caldav_synced calendar=%s full=False changed=%d deleted=%d", self.calendar_id, len(changed), len(changes) - len(changed))
        return SyncPage(events=events, full=False, last=True, next_sync_token=token), replace(state, token=token, objects=remembered)

    # -- incremental, comparing ETags ----------------------------------------------------

    def _compared(self, state: Remembered, window_start: datetime, window_end: datetime) -> tuple[SyncPage, Remembered]:
        items, _ = self.client.multistatus("REPORT", state.calendar_url, query_body(window_start, window_end, False), "1", "listing the ETags of the sync window")
        listing = {item.href: item.text(dav("getetag")) for item in items if item.status == 200 and item.href.rstrip("/") != state.calendar_url.rstrip("/")}
        token = _listing_token(listing)
        stale = [href for href, etag in listing.items() if state.objects.get(href, {}).get("etag") != etag]
        left = [href for href in state.objects if href not in listing]
        if not stale and not left:
            return SyncPage(events=[], full=False, last=True, next_sync_token=token), replace(state, token=token)
        fetched = self.account.fetch(stale + left, "reading changed events")
        changes: dict[str, tuple[str, bytes] | None] = {href: fetched.get(href) for href in stale + left}
        page, new_state = self._changes(state, (token, changes), window_start, window_end)
        for href in left:  # moved out of the window: read once, not remembered
            new_state.objects.pop(href, None)
        return page, new_state

    # -- converting ----------------------------------------------------------------------

    def _read(self, objects: list[tuple[str, bytes]], listing: dict[str, str], before: dict[str, dict],
              window_start: datetime, window_end: datetime) -> tuple[list[dict], dict[str, dict], bool]:
        """(events, href -> remembered object, complete) for changed `objects`; instances an
        object had before (`before`) and has no more within the window arrive cancelled.
        An object that cannot be read is reported (an event with `_error`) and keeps what
        was remembered of it."""
        converter = Converter(self.account.settings, self.account.state.addresses)
        read, problems = converter.read(objects, window_start, window_end)
        events: list[dict] = []
        remembered: dict[str, dict] = {}
        unread = {href for href, _, _ in problems}
        for href, instances in read.items():
            if href in unread:
                continue
            ids = {str(event["id"]): _start_of(event) for event in instances}
            old = before.get(href, {}).get("ids", {})
            events += instances
            events += [{"id": event_id, "status": "cancelled"} for event_id, start in old.items()
                       if event_id not in ids and _within(start, window_start, window_end)]
            remembered[href] = {"etag": listing.get(href, ""), "ids": ids}
        for href, uid, problem in problems:
            events.append({"id": uid or href, "_error": f"{problem}; until it is read, an appointment deleted from this calendar is not noticed"})
            remembered[href] = {**before.get(href, {"ids": {}}), "etag": ""}  # read again next time
        return events, remembered, not problems


def _listing_token(listing: dict[str, str]) -> str:
    """A token for a server without sync-collection: a digest of the window's ETags."""
    digest = hashlib.sha256("\n".join(f"{href} {etag}" for href, etag in sorted(listing.items())).encode()).hexdigest()[:32]
    return f"etags:{digest}"


def open_calendar(settings: Any, *, client: DavClient | None = None, data_dir: str | None = None) -> tuple[CalDavSource, CalendarWriteBack]:
    """The (source, write-back) pair of [calendar.caldav]. The password is read from its
    reference now (ConfigError naming it when it cannot be); `client` replaces the HTTP
    client (bench/ and tests count its requests); `data_dir` the folder of the state file
    (default storage.data_dir)."""
    caldav = settings.calendar.caldav
    calendar_id = calendar_key(settings)
    if client is None:
        client = DavClient(caldav.url, caldav.username, caldav.password.resolve, timeout=caldav.timeout.total_seconds(),
                           ca_file=caldav.ca_file, where=f"CalDAV calendar {calendar_id}")
    account = CalDavAccount(settings, client, calendar_id, data_dir)
    source = CalDavSource(account)
    if not settings.calendar.write_back:
        return source, NullWriteBack()
    return source, CalDavWriteBack(account)

