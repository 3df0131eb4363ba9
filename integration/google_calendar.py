"""Google Calendar v3 adapter: incremental sync in, status write-back out.

- `GoogleCalendarSource.pages()` does Google's "synchronize resources efficiently" dance:
  one full listing of the window (singleEvents=true, so recurring series arrive as
  instances; showDeleted=false; maxResults=2500), then incremental listings with the
  stored syncToken (no timeMin/timeMax/orderBy: Google forbids them with a token; deleted
  events are then always included, possibly as bare {id, status: "cancelled"}). An idle
  calendar costs one request per tick.
- Errors: 410 Gone raises SyncTokenExpired; 403 rateLimitExceeded/userRateLimitExceeded,
  429, 5xx and network errors are retried with exponential backoff and jitter inside a
  bounded time budget, then AdapterError(retryable=True); a 401 refreshes the token once
  and then raises ReauthorizationNeeded. Every message names the calendar.
- `GoogleWriteBack.write_status()` reads the event, then PATCHes (sendUpdates=none,
  If-Match on the etag it read) only `extendedProperties.private.slotguard_*` keys and,
  where `calendar.write_note` allows it, the one description line starting with
  "Slotguard:" (by default only on events no one else can read: Google shows the
  description to everyone invited). The exact text of that line is kept in the private
  `slotguard_note`, so that only that text is ever replaced or left unread, and what the
  practitioner types after it on its line (" #waive") stays and counts
  (slotguard/intake/own_note.py).
- `is_own_write(event)` tells whether an event's content is unchanged since our last
  write, so the engine can skip events whose only change is our own PATCH.

Objects here are not thread-safe: the engine polls calendars one after another.
"""

from __future__ import annotations

import copy
import hashlib
import html
import http.client
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httplib2
from google.auth.exceptions import RefreshError, TransportError
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from integration.google_auth import StoredCredentials, reauthorize_message, translate_auth_error
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
from slotguard.intake.own_note import NOTE_PREFIX, NOTE_PROPERTY, NOTE_PROPERTY_LIMIT, note_line, written_note

PROPERTY_PREFIX = "slotguard_"
SIGNATURE_KEY = "slotguard_sig"
STATUS_PREFIX = NOTE_PREFIX
MAX_KEY_LENGTH, MAX_VALUE_LENGTH = 44, 1024  # Google drops longer keys and truncates longer values
PAGE_SIZE = 2500  # the most Google returns per page
RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
SIGNED_FIELDS = (
    "status", "summary", "description", "location", "colorId", "start", "end", "attendees",
    "organizer", "recurringEventId", "originalStartTime", "hangoutLink", "conferenceData",
    "transparency", "visibility", "extendedProperties",
)
_STATUS_LINE = re.compile(r"(^|\r?\n|<br\s*/?>)[ \t]*" + re.escape(STATUS_PREFIX) + r"[^\r\n<]*", re.IGNORECASE)
_HTML_HINT = re.compile(r"<br\s*/?>|</(?:p|div|b|i|a|span|ul|li)>", re.IGNORECASE)

log = logging.getLogger("slotguard.google")
# Event id -> etag as last listed, shared by a calendar's source and write-back; both come
# from Google's JSON as they are (`.get`), so either may be None.
Seen = dict[str | None, str | None]


# --- the description line and own-write detection ----------------------------------------


def _written_span(description: str, written: str) -> tuple[int, int] | None:
    """Where `written`, the line Slotguard wrote last, stands verbatim in `description` (as
    written into an HTML description: escaped), or None."""
    if not written:
        return None
    forms = (html.escape(written, quote=False), written) if _HTML_HINT.search(description) else (written,)
    for form in forms:
        at = description.find(form)
        if at >= 0:
            return at, at + len(form)
    return None


def _line_around(description: str, span: tuple[int, int]) -> str:
    """The text on the same line as `span`, before and after it (a line ends at a newline
    or, in HTML, at a tag)."""
    start = max(description.rfind("\n", 0, span[0]), description.rfind(">", 0, span[0])) + 1
    ends = [at for at in (description.find("\n", span[1]), description.find("<", span[1])) if at >= 0]
    return description[start:span[0]] + description[span[1]:min(ends, default=len(description))]


def strip_status_line(description: str, written: str = "") -> str:
    """The description without Slotguard's own "Slotguard: ..." line(s).

    `written` is the line Slotguard wrote last (the event's private `slotguard_note`): where
    it stands verbatim with the practitioner's own text on its line (" #waive" typed after
    it), only it is taken out and that text stays. Otherwise every "Slotguard:" line goes.
    """
    if not description:
        return ""
    span = _written_span(description, written)
    if span is not None and _line_around(description, span).strip():
        head, tail = description[:span[0]], description[span[1]:]
        return _STATUS_LINE.sub("", head).lstrip("\r\n") + _STATUS_LINE.sub("", tail)
    return _STATUS_LINE.sub("", description).lstrip("\r\n")


def set_status_line(description: str, note: str, written: str = "") -> str:
    """`description` with Slotguard's line replaced by `note`, or `note` appended.

    `written` is the line Slotguard wrote last: where it stands verbatim, exactly it is
    replaced, and the rest of its line (what the practitioner typed there) is kept. Else the
    line starting "Slotguard:" is replaced whole. The note becomes one line (whitespace
    collapsed, HTML-escaped when the description is HTML, as the Calendar web UI writes it);
    everything else is kept byte for byte.
    """
    description = description or ""
    is_html = bool(_HTML_HINT.search(description))
    text = note_line(note)
    line = html.escape(text, quote=False) if is_html else text
    span = _written_span(description, written)
    if span is not None:
        return description[:span[0]] + line + description[span[1]:]
    found = list(_STATUS_LINE.finditer(description))
    if found:
        first = found[0]
        head = description[:first.start()] + first.group(1) + line
        rest = description[first.end():]
        return head + _STATUS_LINE.sub("", rest)  # a second, stale line would only confuse
    if not description:
        return line
    separator = "" if description.endswith(("\n", "<br>")) else ("<br>" if is_html else "\n")
    return description + separator + line


def readable_by_others(event: dict) -> bool:
    """True when Google shows this event's title and description to someone besides the
    calendar's owner: an attendee who is not the owner (rooms and other resources read
    nothing), or an organizer who is someone else. Colours and private extended properties
    stay with the owner's calendar either way."""
    organizer = event.get("organizer") or {}
    if organizer.get("email") and not organizer.get("self"):
        return True
    return any(not attendee.get("self") and not attendee.get("resource") for attendee in event.get("attendees") or [])


def content_signature(event: dict) -> str:
    """A digest of an event's content, leaving out what Slotguard writes (its private
    properties and its description line) and what Google bumps on every write (updated,
    etag, sequence)."""
    content = {name: event[name] for name in SIGNED_FIELDS if name in event}
    description = strip_status_line(content.pop("description", ""), written_note(event))
    if description:  # no description and one holding only our line are the same content
        content["description"] = description
    properties = copy.deepcopy(content.get("extendedProperties") or {})
    private = {k: v for k, v in (properties.get("private") or {}).items() if not k.startswith(PROPERTY_PREFIX)}
    if private or properties.get("shared"):
        content["extendedProperties"] = {"private": private, "shared": properties.get("shared") or {}}
    else:
        content.pop("extendedProperties", None)
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:20]


def is_own_write(event: dict) -> bool:
    """True when this event's content equals what it was when Slotguard last wrote to it,
    and the engine had already received that content from `pages()` at the time.

    So an event arriving with is_own_write(event) True changed only by our own PATCH (or
    not at all): its `updated` stamp moved, nothing the practitioner or client did. It is
    still present in the calendar: on a full sync count it as seen, just skip re-reading it.
    """
    private = (event.get("extendedProperties") or {}).get("private") or {}
    signature = private.get(SIGNATURE_KEY)
    return bool(signature) and event.get("status") != "cancelled" and signature == content_signature(event)


# --- talking to Google ----------------------------------------------------------------


class _PreconditionFailed(AdapterError):
    """412: the event changed between our read and our write."""


class GoogleSession:
    """The authorized API client shared by all calendars of one account.

    Builds the service lazily from the token in the data dir (or from injected credentials
    or http, for tests). After ReauthorizationNeeded it re-reads the token file on the next
    call, so running `main.py auth google` fixes a running daemon without a restart.
    """

    def __init__(self, settings: Any, *, credentials: Any = None, http: Any = None, timeout: float = 20.0,
                 token_uri: str | None = None):
        self.settings, self.timeout, self.token_uri = settings, timeout, token_uri
        self._credentials, self._http = credentials, http
        self._keeper: StoredCredentials | None = None
        self._service: Any = None

    def service(self) -> Any:
        """The googleapiclient Resource; raises ReauthorizationNeeded without a usable token."""
        if self._service is None:
            http = self._http
            if http is None:
                credentials = self._credentials
                if credentials is None:
                    self._keeper = StoredCredentials.load(self.settings, self.token_uri)
                    credentials = self._keeper.credentials
                # One refresh on a 401, then we give up and ask for the auth command.
                http = AuthorizedHttp(credentials, http=httplib2.Http(timeout=self.timeout), max_refresh_attempts=1)
            options = {"api_endpoint": self.settings.calendar.api_endpoint} if self.settings.calendar.api_endpoint else None
            self._service = build("calendar", "v3", http=http, static_discovery=True, cache_discovery=False, client_options=options)
        return self._service

    def succeeded(self) -> None:
        if self._keeper is not None:
            self._keeper.save_if_refreshed()

    def forget_credentials(self) -> None:
        if self._credentials is None and self._http is None:
            self._service, self._keeper = None, None


class _Caller:
    """Executes one API call for one calendar with bounded retries."""

    def __init__(self, session: GoogleSession, calendar_id: str, budget: float, sleep: Callable[[float], None],
                 base_delay: float = 0.5, max_delay: float = 8.0, gates: Sequence[RateGate] = ()):
        self.session, self.calendar_id, self.budget, self.sleep = session, calendar_id, budget, sleep
        self.base_delay, self.max_delay, self.gates = base_delay, max_delay, tuple(gates)

    def execute(self, make_request: Callable[[Any], Any], what: str, gone: Callable[[], AdapterError] | None = None) -> dict:
        """Run `make_request(service).execute()`; return the decoded JSON.

        Every attempt first passes `gates` (the deployment's quotas; a wait there is not
        counted against `budget`). Retries rate limits, 429, 5xx and network errors until
        `budget` seconds have gone, then raises AdapterError(retryable=True). Raises `gone()` on 410, _PreconditionFailed
        on 412, ReauthorizationNeeded on 401 or a refused refresh, AdapterError otherwise.
        """
        deadline = time.monotonic() + self.budget
        attempt = 0
        while True:
            deadline += take_all(self.gates)
            try:
                result = make_request(self.session.service()).execute(num_retries=0)
                self.session.succeeded()
                return result
            except HttpError as error:
                retry_after, problem = self._classify(error, what, gone)
            except (RefreshError, TransportError) as error:
                failure = translate_auth_error(error, self.calendar_id)
                if isinstance(failure, ReauthorizationNeeded):
                    self.session.forget_credentials()
                raise failure from None
            except (OSError, httplib2.HttpLib2Error, http.client.HTTPException) as error:  # timeouts, refused or reset connections, answers cut off
                retry_after, problem = None, f"network error ({type(error).__name__})"
            attempt += 1
            delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
            delay = delay / 2 + random.random() * delay / 2  # jitter: calendars must not retry in lockstep
            delay = max(delay, retry_after or 0.0)
            if time.monotonic() + delay > deadline:
                raise AdapterError(
                    f"Google Calendar {self.calendar_id}: {what} failed {attempt} time(s), last with {problem}; "
                    f"gave up after {self.budget:g} s and will try again next time"
                )
            log.warning("google_retry calendar=%s what=%r problem=%r attempt=%d delay=%.2f",
                        self.calendar_id, what, problem, attempt, delay)
            self.sleep(delay)

    def _classify(self, error: HttpError, what: str, gone: Callable[[], AdapterError] | None) -> tuple[float | None, str]:
        """Raise for a final error; return (Retry-After seconds, description) for a retryable one."""
        status, reason = error.resp.status, _reason(error)
        where = f"Google Calendar {self.calendar_id}"
        if status == 410:
            raise (gone() if gone else AdapterError(f"{where}: {what}: the item is gone", retryable=False))
        if status == 412:
            raise _PreconditionFailed(f"{where}: {what}: the event changed meanwhile")
        if status == 401:
            self.session.forget_credentials()
            raise ReauthorizationNeeded(reauthorize_message(f"{where}: Google rejected Slotguard's authorization"))
        if status == 403 and reason == "insufficientPermissions":
            self.session.forget_credentials()
            raise ReauthorizationNeeded(reauthorize_message(f"{where}: the Google authorization lacks the permission for {what}"))
        if status == 429 or status >= 500 or (status == 403 and reason in RATE_LIMIT_REASONS):
            try:
                retry_after = float(error.resp.get("retry-after", "")) if error.resp.get("retry-after") else None
            except ValueError:
                retry_after = None
            return retry_after, f"HTTP {status} {reason}".strip()
        if status == 403 and reason in ("quotaExceeded", "dailyLimitExceeded"):
            raise AdapterError(f"{where}: Google's daily request quota is used up; {what} will be tried again later")
        if status == 404:
            raise AdapterError(f"{where}: {what}: not found, or not shared with the connected Google account", retryable=False)
        if status == 403:
            raise AdapterError(f"{where}: Google refused {what} ({reason or 'forbidden'}); does the connected account own this calendar?", retryable=False)
        raise AdapterError(f"{where}: Google rejected {what} (HTTP {status} {reason})", retryable=False)


def _reason(error: HttpError) -> str:
    """Google's machine-readable reason ("rateLimitExceeded") from an error body."""
    try:
        body = json.loads(error.content.decode("utf-8"))["error"]
        return str((body.get("errors") or [{}])[0].get("reason") or body.get("status") or "")
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return ""


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the source ----------------------------------------------------------------------


class GoogleCalendarSource:
    """Reads one Google calendar (CalendarSource)."""

    def __init__(self, caller: _Caller, window_past: Any, window_future: Any, seen: Seen | None = None,
                 page_size: int = PAGE_SIZE):
        self.calendar_id = caller.calendar_id
        self._caller, self.window_past, self.window_future = caller, window_past, window_future
        self._seen, self.page_size = seen, page_size

    def pages(self, sync_token: str | None, now: datetime) -> Iterator[SyncPage]:
        """Yield the pages of a full listing (sync_token None) or of changes since the token.

        Gets timezone-aware `now`. Each SyncPage holds raw Event resources; only the last
        has `last=True` and `next_sync_token`. Raises SyncTokenExpired on 410 (call again
        with None), ReauthorizationNeeded, or AdapterError naming the calendar.
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        params: dict[str, Any] = {"calendarId": self.calendar_id, "singleEvents": True, "maxResults": self.page_size}
        full = sync_token is None
        window_start = window_end = None
        if full:
            window_start, window_end = now - self.window_past, now + self.window_future
            params.update(timeMin=_rfc3339(window_start), timeMax=_rfc3339(window_end), showDeleted=False)
        else:
            params["syncToken"] = sync_token

        def expired() -> AdapterError:
            why = "the saved sync token has expired" if not full else "Google dropped the listing mid-way"
            return SyncTokenExpired(f"Google Calendar {self.calendar_id}: {why}; a full sync is needed")

        page_token: str | None = None
        while True:
            query = dict(params, pageToken=page_token) if page_token else params
            response = self._caller.execute(lambda service: service.events().list(**query), "listing events", expired)  # noqa: B023 (called at once)
            items = response.get("items") or []
            if self._seen is not None:
                for event in items:
                    if event.get("status") == "cancelled":
                        self._seen.pop(event.get("id"), None)
                    else:
                        self._seen[event.get("id")] = event.get("etag")
            next_page = response.get("nextPageToken")
            if next_page:
                if next_page == page_token:
                    raise AdapterError(f"Google Calendar {self.calendar_id}: Google repeated a page token; will try again")
                page_token = next_page
                yield SyncPage(items, full=full, last=False, window_start=window_start, window_end=window_end)
                continue
            token = response.get("nextSyncToken")
            if not token:
                raise AdapterError(f"Google Calendar {self.calendar_id}: the last page carried no sync token; will try again")
            log.info("google_synced calendar=%s full=%s", self.calendar_id, full)
            yield SyncPage(items, full=full, last=True, next_sync_token=token, window_start=window_start, window_end=window_end)
            return

    def event_colors(self) -> dict[str, str]:
        """colorId -> background hex of event colours (colors.get; not allowed by the
        calendar.events.readonly scope). Raises AdapterError."""
        palette = self._caller.execute(lambda service: service.colors().get(), "reading the colour palette")
        return {key: value.get("background", "") for key, value in (palette.get("event") or {}).items()}


# --- the write-back ----------------------------------------------------------------------


class GoogleWriteBack:
    """Writes Slotguard's status onto events of one calendar (CalendarWriteBack).

    Why read before writing: the Appointment carries no description, and the description
    must be rewritten whole; reading the event fresh (one GET, writes are rare) and PATCHing
    with If-Match on its etag means a practitioner's edit made in between is never lost: on
    412 we read again and redo. It also works right after a restart, with no cache.
    """

    def __init__(self, caller: _Caller, write_note: str, seen: Seen):
        self.calendar_id = caller.calendar_id
        self._caller, self.write_note, self._seen = caller, write_note, seen

    def write_status(self, appointment: Appointment, state: dict[str, str], note: str) -> None:
        """Store `state` as private properties `slotguard_<key>` and `note` as the
        description's "Slotguard:" line where `write_note` allows it: "always"; "no_attendees"
        only while no one else can read the description (see `readable_by_others`; on an
        event others can read, a line of ours from before is taken out); "never". Touches
        nothing else, notifies nobody; skips deleted events and no-op writes. Raises
        AdapterError (too long a key or value, another calendar's event, Google errors) or
        ReauthorizationNeeded."""
        if appointment.calendar_id != self.calendar_id:
            raise AdapterError(f"Google Calendar {self.calendar_id}: asked to write to {appointment.ref}, an event of another calendar", retryable=False)
        properties = _state_properties(state, self.calendar_id)
        event_id = appointment.event_id
        for _ in range(3):
            event = self._caller.execute(
                lambda service: service.events().get(calendarId=self.calendar_id, eventId=event_id),
                f"reading event {event_id}",
            )
            if event.get("status") == "cancelled":
                log.info("google_write_skipped calendar=%s event=%s why=deleted", self.calendar_id, event_id)
                return
            body = self._patch_body(event, properties, note)
            if body is None:
                return

            def patch(service: Any, body: dict = body, etag: str = event.get("etag", "")) -> Any:
                request = service.events().patch(calendarId=self.calendar_id, eventId=event_id, body=body, sendUpdates="none")
                if etag:
                    request.headers["If-Match"] = etag
                return request

            try:
                written = self._caller.execute(patch, f"writing the status of event {event_id}")
            except _PreconditionFailed:
                log.info("google_write_conflict calendar=%s event=%s", self.calendar_id, event_id)
                continue
            if self._seen.get(event_id) == event.get("etag"):
                self._seen[event_id] = written.get("etag")  # same content the engine saw, plus only our write
            log.info("google_status_written calendar=%s event=%s keys=%s", self.calendar_id, event_id, ",".join(sorted(body["extendedProperties"]["private"])))
            return
        raise AdapterError(f"Google Calendar {self.calendar_id}: event {event_id} kept changing while Slotguard wrote its status; will try again")

    def _patch_body(self, event: dict, properties: dict[str, str], note: str) -> dict | None:
        """The PATCH body, or None when the event already says all this."""
        private = (event.get("extendedProperties") or {}).get("private") or {}
        wanted = dict(properties)
        # Sign only content the engine has already been given, so is_own_write never hides
        # an edit the practitioner made after the last sync.
        if self._seen.get(event.get("id")) == event.get("etag"):
            wanted[SIGNATURE_KEY] = content_signature(event)
        body: dict[str, Any] = {}
        description = event.get("description") or ""
        updated, written = description, written_note(event)
        if self.write_note == "always" or (self.write_note == "no_attendees" and not readable_by_others(event)):
            if note.strip():
                updated = set_status_line(description, note, written)
                line = note_line(note)  # kept so that exactly it is replaced or left unread later
                wanted[NOTE_PROPERTY] = line if len(line) <= NOTE_PROPERTY_LIMIT else ""
        elif self.write_note == "no_attendees" and (_STATUS_LINE.search(description) or _written_span(description, written)):
            updated = strip_status_line(description, written)  # invited people read the description
            wanted[NOTE_PROPERTY] = ""
        changed = {key: value for key, value in wanted.items() if private.get(key, "" if key == NOTE_PROPERTY else None) != value}
        if updated != description:
            body["description"] = updated
        if not changed and not body:
            return None
        body["extendedProperties"] = {"private": changed}
        return body


def _state_properties(state: dict[str, str], calendar_id: str) -> dict[str, str]:
    """Prefix and check state keys against Google's limits (44-character keys, 1024-character
    values); raises AdapterError(retryable=False) rather than let Google cut them silently."""
    properties = {}
    for key, value in state.items():
        name = key if key.startswith(PROPERTY_PREFIX) else PROPERTY_PREFIX + key
        if name in (SIGNATURE_KEY, NOTE_PROPERTY):
            raise AdapterError(f"Google Calendar {calendar_id}: the status key {key!r} is reserved", retryable=False)
        if len(name) > MAX_KEY_LENGTH:
            raise AdapterError(f"Google Calendar {calendar_id}: status key {name!r} is {len(name)} characters; Google keeps at most {MAX_KEY_LENGTH}", retryable=False)
        if not isinstance(value, str) or len(value) > MAX_VALUE_LENGTH:
            raise AdapterError(f"Google Calendar {calendar_id}: the value of status key {name!r} must be text of at most {MAX_VALUE_LENGTH} characters", retryable=False)
        properties[name] = value
    return properties


# --- wiring ----------------------------------------------------------------------------


def open_calendars(settings: Any, *, credentials: Any = None, http: Any = None, retry_budget: float = 30.0,
                   timeout: float = 20.0, sleep: Callable[[float], None] = time.sleep, token_uri: str | None = None,
                   gates: Sequence[RateGate] = ()) -> list[tuple[GoogleCalendarSource, CalendarWriteBack]]:
    """One (source, write-back) pair per `settings.calendar.calendar_ids`, sharing one
    authorized client.

    Credentials come from `<data_dir>/google-token.json`, read on first use (so this never
    raises for a missing token; the first `pages()` does, with ReauthorizationNeeded).
    Tests may inject `credentials` (google.oauth2 Credentials) or a ready `http`, or point
    refreshes of the stored token at a local `token_uri` (else `calendar.token_uri` when the
    config has it, else Google's).
    `retry_budget` bounds the seconds one call spends retrying; `timeout` bounds one HTTP
    request. With write_back off the write-back is a NullWriteBack. Every request first
    passes `gates` (a deployment's shared Google quotas; none for one practice).
    """
    token_uri = token_uri or getattr(settings.calendar, "token_uri", "") or None
    session = GoogleSession(settings, credentials=credentials, http=http, timeout=timeout, token_uri=token_uri)
    pairs: list[tuple[GoogleCalendarSource, CalendarWriteBack]] = []
    for calendar_id in settings.calendar.calendar_ids:
        caller = _Caller(session, calendar_id, retry_budget, sleep, gates=gates)
        seen: Seen | None = {} if settings.calendar.write_back else None
        source = GoogleCalendarSource(caller, settings.calendar.window_past, settings.calendar.window_future, seen)
        writer: CalendarWriteBack = GoogleWriteBack(caller, settings.calendar.write_note, seen) if seen is not None else NullWriteBack()
        pairs.append((source, writer))
    return pairs


# --- push channels (events.watch, channels.stop) ----------------------------------------

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
MAX_CHANNEL_ID_LENGTH = 64  # Google's limit for a channel id
MAX_CHANNEL_TOKEN_LENGTH = 256  # Google's limit for a channel token


def checked_push_address(address: str, *, allow_loopback_http: bool = False) -> str:
    """`address` when Google may be asked to POST notifications to it: https with a host.

    Google only delivers to https (with a certificate it trusts). Plain http is accepted only
    for a loopback host (127.0.0.1, ::1, localhost) and only when the caller says so with
    `allow_loopback_http=True`, which only tests do (the Google wire fake delivers to a local
    server); a deployment never passes it. Raises AdapterError(retryable=False) otherwise."""
    parts = urlsplit(address or "")
    if parts.scheme == "https" and parts.hostname:
        return address
    if parts.scheme == "http" and allow_loopback_http and (parts.hostname or "") in LOOPBACK_HOSTS:
        return address
    raise AdapterError(
        f"push.address {address!r}: Google delivers notifications only to an https address with a public "
        "certificate (e.g. https://hooks.example.com/google/push)", retryable=False,
    )


def _expiration(channel: dict, calendar_id: str) -> datetime:
    """The channel's expiry from Google's answer (Unix milliseconds, as a string)."""
    try:
        return datetime.fromtimestamp(int(channel["expiration"]) / 1000, UTC)
    except (KeyError, TypeError, ValueError):
        raise AdapterError(f"Google Calendar {calendar_id}: the new push channel came back without an expiry; will try again") from None


class GooglePushChannels:
    """Opens and closes push notification channels on one Google account's calendars.

    `watch` asks Google to POST to `address` whenever an event of a calendar changes
    (events.watch); `stop_channel` ends a channel early (channels.stop). Both go through the
    same authorized client and bounded retries as the source (one _Caller per call)."""

    def __init__(self, session: GoogleSession, *, retry_budget: float = 30.0, sleep: Callable[[float], None] = time.sleep,
                 allow_loopback_http: bool = False):
        self._session, self._budget, self._sleep = session, retry_budget, sleep
        self._allow_loopback_http = allow_loopback_http

    def watch(self, calendar_id: str, channel_id: str, address: str, token: str, ttl: timedelta) -> tuple[str, datetime]:
        """Open channel `channel_id` on the events of `calendar_id`, delivering to `address`
        with `token` in each notification's X-Goog-Channel-Token, asked to live `ttl`
        (Google may give it less; the expiry it answers is the one that counts).

        Returns (resource id, expiry): the resource id is needed to stop the channel. Raises
        AdapterError (a non-https address, a too long id or token, Google errors) or
        ReauthorizationNeeded."""
        checked_push_address(address, allow_loopback_http=self._allow_loopback_http)
        if not channel_id or len(channel_id) > MAX_CHANNEL_ID_LENGTH or len(token) > MAX_CHANNEL_TOKEN_LENGTH:
            raise AdapterError(f"Google Calendar {calendar_id}: a channel id must have 1 to {MAX_CHANNEL_ID_LENGTH} characters and a token at most {MAX_CHANNEL_TOKEN_LENGTH}", retryable=False)
        body = {"id": channel_id, "type": "web_hook", "address": address, "token": token,
                "params": {"ttl": str(max(1, int(ttl.total_seconds())))}}
        caller = _Caller(self._session, calendar_id, self._budget, self._sleep)
        channel = caller.execute(lambda service: service.events().watch(calendarId=calendar_id, body=body), "opening a push channel")
        resource_id = str(channel.get("resourceId") or "")
        if not resource_id:
            raise AdapterError(f"Google Calendar {calendar_id}: the new push channel came back without a resource id; will try again")
        expires = _expiration(channel, calendar_id)
        log.info("google_channel_opened calendar=%s channel=%s expires=%s", calendar_id, channel_id, _rfc3339(expires))
        return resource_id, expires

    def stop_channel(self, channel_id: str, resource_id: str) -> None:
        """End channel `channel_id` (with the resource id `watch` returned). A channel Google
        no longer knows (expired, or stopped before) counts as stopped. Raises AdapterError
        or ReauthorizationNeeded."""
        caller = _Caller(self._session, f"(channel {channel_id})", self._budget, self._sleep)
        try:
            caller.execute(lambda service: service.channels().stop(body={"id": channel_id, "resourceId": resource_id}), "stopping a push channel")
        except AdapterError as error:
            if "not found" not in str(error):
                raise
            log.info("google_channel_gone channel=%s", channel_id)
            return
        log.info("google_channel_stopped channel=%s", channel_id)


def open_push_channels(settings: Any, *, credentials: Any = None, http: Any = None, retry_budget: float = 30.0,
                       timeout: float = 20.0, sleep: Callable[[float], None] = time.sleep, token_uri: str | None = None,
                       allow_loopback_http: bool = False) -> GooglePushChannels:
    """A GooglePushChannels for the Google account of `settings` (a practice's config), with
    the same credentials as `open_calendars`. `allow_loopback_http` is for tests only (see
    checked_push_address)."""
    token_uri = token_uri or getattr(settings.calendar, "token_uri", "") or None
    session = GoogleSession(settings, credentials=credentials, http=http, timeout=timeout, token_uri=token_uri)
    return GooglePushChannels(session, retry_budget=retry_budget, sleep=sleep, allow_loopback_http=allow_loopback_http)
