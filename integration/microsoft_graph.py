"""Microsoft 365 / Outlook through Microsoft Graph: incremental sync in, status write-back out.

- `MicrosoftCalendarSource.pages()` runs calendarView delta rounds: a full round
  (`/me/calendarView/delta?startDateTime&endDateTime`, or `/me/calendars/{id}/...` for a
  calendar named in `calendar.microsoft.calendar`) lists the window, following each
  `@odata.nextLink` until the last page's `@odata.deltaLink`; that link is the sync token, and
  the next tick GETs it: an idle calendar costs one request per tick. `Prefer:
  outlook.timezone="UTC"` makes every time UTC (Graph would otherwise answer in the
  mailbox's Windows zone), `outlook.body-content-type="text"` gives bodies as text,
  `odata.maxpagesize` sets the page size. Rows are converted to v3 Event dicts
  (integration/microsoft_events.py). A row `@removed` (deleted, or moved out of the window:
  Graph does not say which) is read once by id to tell the two apart.
- Errors: 410 (or a 400 naming the sync state, `syncStateNotFound`) raises SyncTokenExpired,
  and so does a stored link that is not under `calendar.microsoft.graph_endpoint` (the
  endpoint changed; a link of graph.microsoft.com with the endpoint's path is moved onto a
  configured proxy). 429, 500, 502, 503, 504 and network errors are retried, honouring
  Retry-After, within a bounded time budget, then AdapterError(retryable=True, retry_after).
  A 401 refreshes the token once, then ReauthorizationNeeded. A link (nextLink, deltaLink)
  outside the configured endpoint is never followed: the bearer token goes nowhere else.
- `MicrosoftWriteBack.write_status()` reads the event (with Slotguard's extended property),
  then PATCHes with If-Match on its ETag only the single-value extended property
  `String {GUID} Name slotguard` (JSON of the state and the note text, private to the
  mailbox) and, where `calendar.write_note` allows it and the event has no attendees, the one
  "Slotguard:" line of the body. Outlook sends a meeting update to every attendee when the
  organizer changes the body, so the line never goes on an event with attendees, whatever
  write_note says. 412: read again and redo (never overwrite an edit made in between).

Objects here are not thread-safe: the engine polls calendars one after another.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from integration.microsoft_auth import GraphToken, http_session, reauthorize_message
from integration.microsoft_events import body_with_note, to_v3
from integration.rate_limiter import take_all
from slotguard.domain.interfaces import (
    AdapterError,
    CalendarWriteBack,
    NullWriteBack,
    RateGate,
    ReauthorizationNeeded,
    SyncPage,
    SyncTokenExpired,
)
from slotguard.domain.model import Appointment
from slotguard.domain.untrusted import one_line
from slotguard.intake.own_note import note_line

PROPERTY_ID = "String {6d3f8e52-2b1c-4c8e-9f3a-51a2c7d0b9e4} Name slotguard"
PAGE_SIZE = 200
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Hosts whose links are rebased onto calendar.microsoft.graph_endpoint (a proxy in front of
# Graph hands on Graph's own links).
GRAPH_HOSTS = frozenset({"graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn"})
SYNC_STATE_CODES = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})
DEFAULT_CALENDAR = "default"
PREFER_READ = 'outlook.timezone="UTC", outlook.body-content-type="text"'
WRITE_SELECT = "id,subject,body,attendees,isOrganizer,isCancelled,type"

log = logging.getLogger("slotguard.microsoft")


class _PreconditionFailed(AdapterError):
    """412: the event changed between our read and our write."""


class _NotFound(AdapterError):
    """404: no such event or calendar (deleted, or not in this mailbox)."""


def _error_code(response: requests.Response) -> str:
    """Graph's machine-readable error code ("TooManyRequests"), never its whole text."""
    try:
        error = response.json().get("error") or {}
        return str(error.get("code") or "")[:80]
    except (ValueError, AttributeError):
        return ""


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class GraphClient:
    """HTTP to Microsoft Graph for one practice: the bearer token, the retries, the errors.

    `session` is the requests session (tests and benches point it at the wire fake through
    the endpoint settings); every attempt first passes `gates`; `sleep` is how retries wait.
    """

    def __init__(self, settings: Any, token: GraphToken, session: requests.Session, *, retry_budget: float = 30.0,
                 timeout: float = 20.0, sleep: Callable[[float], None] = time.sleep, gates: Sequence[RateGate] = (),
                 base_delay: float = 0.5, max_delay: float = 8.0):
        self.root = settings.calendar.microsoft.graph_endpoint.rstrip("/")
        self.token, self.session, self.timeout, self.sleep = token, session, timeout, sleep
        self.retry_budget, self.gates, self.base_delay, self.max_delay = retry_budget, tuple(gates), base_delay, max_delay

    def under_root(self, url: str) -> bool:
        return url.startswith(self.root + "/") or url.startswith(self.root + "?")

    def rebased(self, url: str) -> str | None:
        """`url` when it is under the configured root; a link of Graph's own hosts with the
        root's path, moved onto the root (a proxy hands on Graph's links); else None."""
        if self.under_root(url):
            return url
        parts, root = urlsplit(url), urlsplit(self.root)
        if parts.scheme == "https" and parts.hostname in GRAPH_HOSTS and (parts.path + "/").startswith(root.path.rstrip("/") + "/"):
            return f"{root.scheme}://{root.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        return None

    def call(self, method: str, target: str, what: str, *, params: dict | None = None, body: dict | None = None,
             headers: dict | None = None, gone: Callable[[], AdapterError] | None = None) -> tuple[dict, requests.Response]:
        """Send one Graph request (a path under the root, or a link Graph gave); return the
        decoded JSON ({} for an empty answer) and the response. Raises as the module says."""
        url = self.rebased(target) if target.startswith(("https://", "http://")) else self.root + target
        if url is None:
            raise AdapterError(f"Microsoft 365: Graph gave a link outside {self.root}; not followed", retryable=False)
        deadline = time.monotonic() + self.retry_budget
        attempt, refreshed = 0, False
        retry_after: float | None = None
        while True:
            deadline += take_all(self.gates)
            token = self.token.access_token()
            sent = {"Authorization": f"Bearer {token}", "Accept": "application/json", **(headers or {})}
            try:
                response = self.session.request(method, url, params=params, json=body, headers=sent, timeout=self.timeout)
            except requests.RequestException as error:
                problem, retry_after = f"network error ({type(error).__name__})", None
            else:
                status = response.status_code
                if status < 300:
                    return (response.json() if response.content else {}), response
                code = _error_code(response)
                if status == 401 and not refreshed:
                    refreshed = True
                    self.token.access_token(force_refresh=True)
                    continue
                self._raise_final(status, code, what, gone)
                problem, retry_after = f"HTTP {status} {code}".strip(), _retry_after(response)
            attempt += 1
            delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
            delay = max(delay / 2 + random.random() * delay / 2, retry_after or 0.0)
            if time.monotonic() + delay > deadline:
                raise AdapterError(
                    f"Microsoft 365: {what} failed {attempt} time(s), last with {problem}; gave up after "
                    f"{self.retry_budget:g} s and will try again next time", retry_after=retry_after,
                )
            log.warning("microsoft_retry what=%r problem=%r attempt=%d delay=%.2f", what, problem, attempt, delay)
            self.sleep(delay)

    def _raise_final(self, status: int, code: str, what: str, gone: Callable[[], AdapterError] | None) -> None:
        """Raise for an answer that retrying cannot change; return for a retryable one."""
        if status in RETRY_STATUSES:
            return
        if status == 410 or (status == 400 and code.lower() in SYNC_STATE_CODES):
            raise (gone() if gone else AdapterError(f"Microsoft 365: {what}: the item is gone", retryable=False))
        if status == 412:
            raise _PreconditionFailed(f"Microsoft 365: {what}: the event changed meanwhile")
        if status == 401:
            self.token.forget()
            raise ReauthorizationNeeded(reauthorize_message(f"Microsoft 365: Graph rejected Slotguard's sign-in for {what}"))
        if status == 403:
            raise ReauthorizationNeeded(reauthorize_message(
                f"Microsoft 365: Graph refused {what} ({code or 'forbidden'}); the sign-in lacks a permission (Calendars.ReadWrite) or the calendar is not yours"))
        if status == 404:
            raise _NotFound(f"Microsoft 365: {what}: not found in the signed-in mailbox", retryable=False)
        raise AdapterError(f"Microsoft 365: Graph rejected {what} (HTTP {status} {code})".rstrip(), retryable=False)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class MicrosoftCalendarSource:
    """Reads one Outlook calendar (CalendarSource). `calendar_id` is the configured calendar
    (its name or id) or "default"."""

    def __init__(self, client: GraphClient, settings: Any, page_size: int = PAGE_SIZE):
        self._client, self.settings, self.page_size = client, settings, page_size
        self.calendar_id = settings.calendar.microsoft.calendar or DEFAULT_CALENDAR
        self._base: str | None = None

    def base_path(self) -> str:
        """"/me" for the default calendar, "/me/calendars/{id}" for a named one (found by
        name or id with one request, the first time)."""
        if self._base is None:
            wanted = self.settings.calendar.microsoft.calendar
            if not wanted:
                self._base = "/me"
            else:
                listing, _ = self._client.call("GET", "/me/calendars", "listing your calendars", params={"$select": "id,name", "$top": "250"})
                calendars = [entry for entry in listing.get("value") or [] if isinstance(entry, dict)]
                match = [entry for entry in calendars if entry.get("id") == wanted] or [
                    entry for entry in calendars if str(entry.get("name", "")).strip().lower() == wanted.strip().lower()]
                if not match:
                    names = ", ".join(one_line(str(entry.get("name", "")), 60) for entry in calendars[:10])
                    raise AdapterError(f"Microsoft 365: no calendar named {wanted!r} in the signed-in mailbox (it has: {names}); correct calendar.microsoft.calendar", retryable=False)
                self._base = f"/me/calendars/{quote(str(match[0]['id']), safe='')}"
        return self._base

    def pages(self, sync_token: str | None, now: datetime) -> Iterator[SyncPage]:
        """Yield the pages of a full delta round (sync_token None) or of the changes since
        the deltaLink `sync_token`. Raises SyncTokenExpired (call again with None),
        ReauthorizationNeeded or AdapterError."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        full = sync_token is None
        window_start = window_end = None
        params: dict | None = None
        if full:
            window_start, window_end = now - self.settings.calendar.window_past, now + self.settings.calendar.window_future
            target = self.base_path() + "/calendarView/delta"
            params = {"startDateTime": _utc(window_start), "endDateTime": _utc(window_end)}
        else:
            target = self._client.rebased(str(sync_token)) or ""
            if not target:
                raise SyncTokenExpired(f"Microsoft 365 {self.calendar_id}: the saved delta link is not under calendar.microsoft.graph_endpoint; a full sync is needed")

        def expired() -> AdapterError:
            return SyncTokenExpired(f"Microsoft 365 {self.calendar_id}: Graph no longer knows the saved delta state; a full sync is needed")

        headers = {"Prefer": f"{PREFER_READ}, odata.maxpagesize={self.page_size}"}
        while True:
            response, _ = self._client.call("GET", target, "reading the calendar's changes", params=params, headers=headers, gone=expired)
            rows = [item for item in response.get("value") or [] if isinstance(item, dict)]
            events = [event for event in (self._convert(item, headers) for item in rows) if event is not None]
            next_link, delta_link = response.get("@odata.nextLink"), response.get("@odata.deltaLink")
            if next_link:
                if next_link == target:
                    raise AdapterError(f"Microsoft 365 {self.calendar_id}: Graph repeated a page link; will try again")
                target, params = str(next_link), None
                yield SyncPage(events, full=full, last=False, window_start=window_start, window_end=window_end)
                continue
            if not delta_link:
                raise AdapterError(f"Microsoft 365 {self.calendar_id}: the last page carried no delta link; will try again")
            log.info("microsoft_synced calendar=%s full=%s", self.calendar_id, full)
            yield SyncPage(events, full=full, last=True, next_sync_token=str(delta_link), window_start=window_start, window_end=window_end)
            return


    def _convert(self, item: dict, headers: dict) -> dict | None:
        """One delta row as a v3 Event. A row `@removed` from the window may be an event that
        was only moved out of it (Graph says the same for both): it is read once by id, so a
        session moved months ahead is seen moved, never cancelled (a late-cancellation fee
        would follow). Gone (404): cancelled."""
        if "@removed" in item and item.get("id"):
            try:
                event, _ = self._client.call("GET", f"/me/events/{quote(str(item['id']), safe='')}", "reading a removed event", headers=headers)
            except _NotFound:
                return to_v3(item, self.settings)
            return to_v3(event, self.settings)
        return to_v3(item, self.settings)


class MicrosoftWriteBack:
    """Writes Slotguard's status onto events of one Outlook calendar (CalendarWriteBack)."""

    def __init__(self, client: GraphClient, calendar_id: str, write_note: str):
        self._client, self.calendar_id, self.write_note = client, calendar_id, write_note

    def write_status(self, appointment: Appointment, state: dict[str, str], note: str) -> None:
        """Store `state` and the note's text in the extended property and, where allowed,
        the note as the body's "Slotguard:" line; touches nothing else; skips deleted and
        cancelled events and writes that change nothing. Raises AdapterError or
        ReauthorizationNeeded."""
        if appointment.calendar_id != self.calendar_id:
            raise AdapterError(f"Microsoft 365 {self.calendar_id}: asked to write to {appointment.ref}, an event of another calendar", retryable=False)
        path = f"/me/events/{quote(appointment.event_id, safe='')}"
        query = {"$select": WRITE_SELECT, "$expand": f"singleValueExtendedProperties($filter=id eq '{PROPERTY_ID}')"}
        for _ in range(3):
            try:
                event, _ = self._client.call("GET", path, f"reading event {appointment.event_id}", params=query)
            except _NotFound:
                log.info("microsoft_write_skipped calendar=%s event=%s why=deleted", self.calendar_id, appointment.event_id)
                return
            if event.get("isCancelled") is True:
                return
            patch = self._patch(event, state, note)
            if patch is None:
                return
            try:
                self._client.call("PATCH", path, f"writing the status of event {appointment.event_id}", body=patch,
                                  headers={"If-Match": str(event.get("@odata.etag") or "*")})
            except _PreconditionFailed:
                log.info("microsoft_write_conflict calendar=%s event=%s", self.calendar_id, appointment.event_id)
                continue
            log.info("microsoft_status_written calendar=%s event=%s keys=%s body=%s", self.calendar_id, appointment.event_id,
                     ",".join(sorted(state)), "body" in patch)
            return
        raise AdapterError(f"Microsoft 365 {self.calendar_id}: event {appointment.event_id} kept changing while Slotguard wrote its status; will try again")

    def note_allowed(self, event: dict) -> bool:
        """The body line only where write_note allows it and no one is invited (Outlook
        emails every attendee an update when the organizer changes the body)."""
        return self.write_note != "never" and not event.get("attendees") and event.get("isOrganizer") is not False

    def _patch(self, event: dict, state: dict[str, str], note: str) -> dict | None:
        """The PATCH body, or None when the event already says all this."""
        line = note_line(note) if note.strip() and self.note_allowed(event) else ""
        value = json.dumps({"state": dict(sorted(state.items())), "note": line}, ensure_ascii=False, separators=(",", ":"))
        current = next((entry.get("value") for entry in event.get("singleValueExtendedProperties") or []
                        if isinstance(entry, dict) and str(entry.get("id", "")).lower() == PROPERTY_ID.lower()), None)
        patch: dict[str, Any] = {}
        if line:
            found = event.get("body")
            body: dict = found if isinstance(found, dict) else {"contentType": "text", "content": ""}
            updated = body_with_note(body, note)
            if updated["content"] != (body.get("content") or ""):
                patch["body"] = updated
        if current != value:
            patch["singleValueExtendedProperties"] = [{"id": PROPERTY_ID, "value": value}]
        return patch or None


def open_calendars(settings: Any, *, session: requests.Session | None = None, retry_budget: float = 30.0, timeout: float = 20.0,
                   sleep: Callable[[float], None] = time.sleep, gates: Sequence[RateGate] = (),
                   page_size: int = PAGE_SIZE) -> list[tuple[MicrosoftCalendarSource, CalendarWriteBack]]:
    """The (source, write-back) pair of `calendar.microsoft`'s calendar. The token cache is
    read on first use, so this never raises for a missing sign-in (the first `pages()` does,
    with ReauthorizationNeeded). With write_back off the write-back is a NullWriteBack."""
    session = session or http_session(settings, timeout)
    client = GraphClient(settings, GraphToken(settings, session, timeout), session, retry_budget=retry_budget,
                         timeout=timeout, sleep=sleep, gates=gates)
    source = MicrosoftCalendarSource(client, settings, page_size)
    writer: CalendarWriteBack = MicrosoftWriteBack(client, source.calendar_id, settings.calendar.write_note) if settings.calendar.write_back else NullWriteBack()
    return [(source, writer)]
