"""A local HTTP server speaking the Google Calendar v3 wire format, for tests and benches.

It serves the parts Slotguard uses, following Google's documented rules so that tests
catch our mistakes rather than the fake's:

- GET  /calendar/v3/calendars/{calendarId}/events: full listing (timeMin/timeMax/
  singleEvents/maxResults/pageToken/showDeleted) and incremental sync (syncToken). With a
  syncToken, iCalUID/orderBy/privateExtendedProperty/q/sharedExtendedProperty/timeMin/
  timeMax/updatedMin and showDeleted=false are rejected with 400; an invalidated token
  gets 410 Gone; only the last page carries nextSyncToken, the others nextPageToken; a
  pageToken must come with the same query it was issued for.
- GET/PATCH /calendar/v3/calendars/{calendarId}/events/{eventId}: PATCH is a JSON merge
  (null deletes a key), honours If-Match (412 on a stale etag), bumps `updated` and `etag`,
  and applies the extended-property limits (keys over 44 characters are dropped, values
  over 1024 characters truncated).
- GET /calendar/v3/colors.
- POST /calendar/v3/calendars/{calendarId}/events/watch and POST /calendar/v3/channels/stop
  (push notifications, see `_Push` below): a channel needs an id (at most 64 characters,
  unique among live channels), type "web_hook" (or "webhook") and an https address (plain
  http only to a loopback host, which real Google never allows: `allow_loopback_http`, on
  by default for tests); its life is params.ttl seconds (default 604800), capped at
  `channel_ttl_cap`. It first gets a `sync` message, then `exists` on every change to an
  event of its calendar (a deletion too: the watched resource, the calendar's event
  collection, still exists); stopped or expired channels get nothing. Notifications are
  POSTed from one sender thread, in order, with Google's X-Goog-* headers and no body;
  500/502/503/504 answers are retried with exponential backoff, as Google does.
- POST /token (refresh_token and authorization_code grants, PKCE S256 checked) and
  GET /o/oauth2/auth (redirects to the installed app's loopback server with a code).

With `require_auth` on, each API call needs a Bearer token this server issued and a scope
the discovery document allows for that method. Faults can be queued per method and path;
every request is recorded with its size. Start it with `FakeGoogleCalendar().start()`
(a free loopback port) and stop it with `.stop()`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import queue
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import googleapiclient

MAX_PAGE = 2500
DEFAULT_PAGE = 250
NOT_WITH_SYNC_TOKEN = (
    "iCalUID", "orderBy", "privateExtendedProperty", "q", "sharedExtendedProperty",
    "timeMin", "timeMax", "updatedMin",
)
READ_ONLY_FIELDS = (
    "kind", "etag", "id", "created", "updated", "htmlLink", "iCalUID", "recurringEventId",
    "originalStartTime", "creator", "organizer",
)
EVENT_COLORS = {
    "1": "#a4bdfc", "2": "#7ae7bf", "3": "#dbadff", "4": "#ff887c", "5": "#fbd75b",
    "6": "#ffb878", "7": "#46d6db", "8": "#e1e1e1", "9": "#5484ed", "10": "#51b749",
    "11": "#dc2127",
}
_EVENTS_RE = re.compile(r"^/calendar/v3/calendars/([^/]+)/events(?:/([^/]+))?$")
_WATCH_RE = re.compile(r"^/calendar/v3/calendars/([^/]+)/events/watch$")
DEFAULT_CHANNEL_TTL = 604800.0  # seconds, Google's documented default for params.ttl
RETRIED_BY_GOOGLE = (500, 502, 503, 504)


def _scopes_by_method() -> dict[str, list[str]]:
    """Allowed scopes per method, read from the client library's own discovery document."""
    path = os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents", "calendar.v3.json")
    with open(path, encoding="utf-8") as handle:
        resources = json.load(handle)["resources"]
    return {
        "events.list": resources["events"]["methods"]["list"]["scopes"],
        "events.get": resources["events"]["methods"]["get"]["scopes"],
        "events.patch": resources["events"]["methods"]["patch"]["scopes"],
        "colors.get": resources["colors"]["methods"]["get"]["scopes"],
        "events.watch": resources["events"]["methods"]["watch"]["scopes"],
        "channels.stop": resources["channels"]["methods"]["stop"]["scopes"],
    }


def _stamp(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse_rfc3339(text: str) -> datetime:
    """RFC 3339 with a mandatory offset, as Google requires; ValueError otherwise."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("missing offset")
    return value


def _event_time(slot: dict) -> datetime:
    if "dateTime" in slot:
        return _parse_rfc3339(slot["dateTime"])
    return datetime.fromisoformat(slot["date"]).replace(tzinfo=UTC)


def _encode(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def _merge(target: dict, patch: dict) -> None:
    """RFC 7386 JSON merge patch, in place."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def error_body(code: int, reason: str, message: str, domain: str = "global") -> dict:
    """Google's JSON error envelope."""
    return {"error": {"errors": [{"domain": domain, "reason": reason, "message": message}], "code": code, "message": message}}


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, domain: str = "global"):
        super().__init__(message)
        self.code, self.body = code, error_body(code, reason, message, domain)


@dataclass
class _Record:
    resource: dict
    seq: int
    deleted: bool = False
    start: datetime | None = None
    end: datetime | None = None
    cached: bytes | None = None

    def wire(self) -> bytes:
        if self.cached is None:
            if self.deleted:
                keep = ("kind", "etag", "id", "status", "recurringEventId", "originalStartTime")
                self.cached = json.dumps({k: self.resource[k] for k in keep if k in self.resource}).encode()
            else:
                self.cached = json.dumps(self.resource).encode()
        return self.cached


@dataclass
class _Calendar:
    records: dict[str, _Record] = field(default_factory=dict)
    series: dict[str, list[str]] = field(default_factory=dict)
    seq: int = 0
    epoch: int = 0
    name: str = ""


@dataclass
class Fault:
    status: int
    times: int
    reason: str
    method: str | None
    path_contains: str | None
    retry_after: str | None = None


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


class FakeGoogleCalendar:
    """The fake's state and its test helpers; `start()` serves it on 127.0.0.1."""

    def __init__(self, *, require_auth: bool = False, client_id: str = "test-client.apps.googleusercontent.com", client_secret: str = "test-secret"):
        self.require_auth = require_auth
        self.client_id, self.client_secret = client_id, client_secret
        self.page_size_cap = MAX_PAGE
        self.requests: list[RecordedRequest] = []
        self.auth_requests: list[dict[str, str]] = []
        self._calendars: dict[str, _Calendar] = {"primary": _Calendar(name="primary")}  # Google always has one
        self._snapshots: dict[str, tuple[list[str], int, str]] = {}
        self._faults: list[Fault] = []
        self._hooks: list[tuple[str, str, Callable[[FakeGoogleCalendar], None]]] = []
        self._access: dict[str, tuple[float, list[str]]] = {}
        self._refresh: dict[str, list[str]] = {}
        self._codes: dict[str, dict[str, str]] = {}
        self._scopes = _scopes_by_method()
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.push = _Push(self)

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> FakeGoogleCalendar:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-google", daemon=True)
        self._thread.start()
        self.push.start()
        return self

    def stop(self) -> None:
        self.push.stop()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> FakeGoogleCalendar:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_endpoint(self) -> str:
        return f"{self.base_url}/calendar/v3/"

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    @property
    def auth_uri(self) -> str:
        return f"{self.base_url}/o/oauth2/auth"

    # --- events -----------------------------------------------------------------------

    def _calendar(self, calendar_id: str) -> _Calendar:
        return self._calendars.setdefault(calendar_id, _Calendar(name=calendar_id))

    def _store(self, calendar: _Calendar, resource: dict, deleted: bool = False) -> dict:
        calendar.seq += 1
        resource["updated"] = _stamp()
        resource["etag"] = f'"{int(time.time() * 1000)}{calendar.seq:06d}"'
        record = _Record(resource, calendar.seq, deleted, _event_time(resource["start"]), _event_time(resource["end"]))
        calendar.records[resource["id"]] = record
        self.push.changed(calendar.name)
        return copy.deepcopy(resource)

    def put_event(self, calendar_id: str, event: dict) -> dict:
        """Create or replace an event (as the practitioner would); returns the stored resource."""
        with self._lock:
            resource = copy.deepcopy(event)
            resource.setdefault("id", uuid.uuid4().hex)
            resource.setdefault("kind", "calendar#event")
            resource.setdefault("status", "confirmed")
            resource.setdefault("created", _stamp())
            resource.setdefault("iCalUID", f"{resource['id']}@google.com")
            resource.setdefault("organizer", {"email": calendar_id if "@" in calendar_id else "owner@example.com", "self": True})
            return self._store(self._calendar(calendar_id), resource)

    def put_recurring(self, calendar_id: str, event: dict, count: int, every: timedelta = timedelta(days=7)) -> list[dict]:
        """Create a series as Google expands it for singleEvents=true: instances with ids
        `{base}_{YYYYMMDDTHHMMSSZ}`, each with recurringEventId and originalStartTime."""
        base_id = event.get("id") or uuid.uuid4().hex
        start, end = _event_time(event["start"]), _event_time(event["end"])
        zone = event["start"].get("timeZone")
        with self._lock:
            self._calendar(calendar_id).series[base_id] = [f"RRULE:FREQ=WEEKLY;COUNT={count}"]
        created = []
        for n in range(count):
            begin = start + every * n
            instance = copy.deepcopy(event)
            instance["id"] = f"{base_id}_{begin.astimezone(UTC):%Y%m%dT%H%M%SZ}"
            instance["recurringEventId"] = base_id
            instance["start"] = {"dateTime": begin.isoformat(), **({"timeZone": zone} if zone else {})}
            instance["end"] = {"dateTime": (end + every * n).isoformat(), **({"timeZone": zone} if zone else {})}
            instance["originalStartTime"] = dict(instance["start"])
            created.append(self.put_event(calendar_id, instance))
        return created

    def modify_event(self, calendar_id: str, event_id: str, **changes: Any) -> dict:
        """Change fields of an event (None deletes a field), bumping updated/etag."""
        with self._lock:
            calendar = self._calendar(calendar_id)
            record = calendar.records[event_id]
            resource = copy.deepcopy(record.resource)
            _merge(resource, changes)
            return self._store(calendar, resource, record.deleted)

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        """Delete an event: incremental sync then reports it as a minimal cancelled resource."""
        with self._lock:
            calendar = self._calendar(calendar_id)
            resource = copy.deepcopy(calendar.records[event_id].resource)
            resource["status"] = "cancelled"
            self._store(calendar, resource, deleted=True)

    def get_event(self, calendar_id: str, event_id: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._calendars[calendar_id].records[event_id].resource)

    def expire_sync_tokens(self, calendar_id: str) -> None:
        """Make every sync token issued so far for this calendar answer 410 Gone."""
        with self._lock:
            self._calendar(calendar_id).epoch += 1

    # --- faults, hooks, request log ----------------------------------------------------

    def fail_next(self, status: int, *, times: int = 1, reason: str = "", method: str | None = None,
                  path_contains: str | None = None, retry_after: str | None = None) -> None:
        """Answer the next `times` matching requests with `status` and Google's error body."""
        default = {403: "rateLimitExceeded", 429: "rateLimitExceeded", 401: "authError", 410: "fullSyncRequired", 412: "conditionNotMet"}
        with self._lock:
            self._faults.append(Fault(status, times, reason or default.get(status, "backendError"), method, path_contains, retry_after))

    def before_next(self, method: str, path_contains: str, callback: Callable[[FakeGoogleCalendar], None]) -> None:
        """Run `callback(fake)` once, just before the next matching request is handled."""
        with self._lock:
            self._hooks.append((method, path_contains, callback))

    def api_requests(self) -> list[RecordedRequest]:
        """Recorded Calendar API requests (token and auth endpoints left out)."""
        with self._lock:
            return [r for r in self.requests if r.path.startswith("/calendar/")]

    def reset_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # --- OAuth --------------------------------------------------------------------------

    def issue_refresh_token(self, scopes: list[str]) -> str:
        with self._lock:
            token = f"1//fake-refresh-{secrets.token_hex(8)}"
            self._refresh[token] = list(scopes)
            return token

    def issue_access_token(self, scopes: list[str], lifetime: float = 3600) -> str:
        with self._lock:
            token = f"ya29.fake-{secrets.token_hex(12)}"
            self._access[token] = (time.time() + lifetime, list(scopes))
            return token

    def revoke_refresh_token(self, token: str) -> None:
        with self._lock:
            self._refresh.pop(token, None)

    def expire_access_tokens(self) -> None:
        with self._lock:
            self._access.clear()

    # --- request handling (server threads) ----------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            for index, (hook_method, hook_path, callback) in enumerate(self._hooks):
                if hook_method == method and hook_path in path:
                    del self._hooks[index]
                    callback(self)
                    break
            for fault in self._faults:
                if fault.times > 0 and (fault.method in (None, method)) and (fault.path_contains is None or fault.path_contains in path):
                    fault.times -= 1
                    extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                    domain = "usageLimits" if fault.reason.endswith("RateLimitExceeded") or fault.reason == "rateLimitExceeded" else "global"
                    return fault.status, extra, json.dumps(error_body(fault.status, fault.reason, f"injected {fault.reason}", domain)).encode()
            try:
                if path == "/token" and method == "POST":
                    return self._token(parse_qs(body.decode()), headers.get("authorization", ""))
                if path == "/o/oauth2/auth" and method == "GET":
                    return self._authorize({k: v[0] for k, v in query.items()})
                watch = _WATCH_RE.match(path)
                if watch and method == "POST":
                    self._check_auth(headers, "events.watch")
                    return self.push.watch(unquote(watch.group(1)), body)
                if path == "/calendar/v3/channels/stop" and method == "POST":
                    self._check_auth(headers, "channels.stop")
                    return self.push.stop_channel(body)
                return 200, {}, self._api(method, path, query, headers, body)
            except ApiError as error:
                return error.code, {}, json.dumps(error.body).encode()

    def _check_auth(self, headers: dict[str, str], method_name: str) -> None:
        if not self.require_auth:
            return
        token = headers.get("authorization", "").removeprefix("Bearer ").strip()
        expiry, scopes = self._access.get(token, (0.0, []))
        if expiry < time.time():
            raise ApiError(401, "authError", "Invalid Credentials")
        if not set(scopes) & set(self._scopes[method_name]):
            raise ApiError(403, "insufficientPermissions", "Request had insufficient authentication scopes.")

    def _api(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes) -> bytes:
        if path == "/calendar/v3/colors" and method == "GET":
            self._check_auth(headers, "colors.get")
            return json.dumps({"kind": "calendar#colors", "updated": _stamp(), "calendar": {},
                               "event": {k: {"background": v, "foreground": "#1d1d1d"} for k, v in EVENT_COLORS.items()}}).encode()
        match = _EVENTS_RE.match(path)
        if not match:
            raise ApiError(404, "notFound", "Not Found")
        calendar_id, event_id = unquote(match.group(1)), match.group(2) and unquote(match.group(2))
        if calendar_id not in self._calendars:
            self._check_auth(headers, "events.list")
            raise ApiError(404, "notFound", "Not Found")
        if event_id is None and method == "GET":
            self._check_auth(headers, "events.list")
            return self._list(calendar_id, {k: v[-1] for k, v in query.items()})
        if event_id is not None and method == "GET":
            self._check_auth(headers, "events.get")
            return json.dumps(self._record(calendar_id, event_id).resource).encode()
        if event_id is not None and method == "PATCH":
            self._check_auth(headers, "events.patch")
            return self._patch(calendar_id, event_id, {k: v[-1] for k, v in query.items()}, headers, body)
        raise ApiError(405, "methodNotAllowed", "Method not allowed")

    def _record(self, calendar_id: str, event_id: str) -> _Record:
        record = self._calendars[calendar_id].records.get(event_id)
        if record is None:
            raise ApiError(404, "notFound", "Not Found")
        return record

    def _list(self, calendar_id: str, params: dict[str, str]) -> bytes:
        calendar = self._calendars[calendar_id]
        single = params.get("singleEvents", "false") == "true"
        try:
            page_size = min(int(params.get("maxResults", DEFAULT_PAGE)), MAX_PAGE, self.page_size_cap)
        except ValueError:
            raise ApiError(400, "invalid", "Invalid value for maxResults") from None
        if page_size < 1:
            raise ApiError(400, "invalid", "Invalid value for maxResults")
        if params.get("orderBy") == "startTime" and not single:
            raise ApiError(400, "invalid", "The requested ordering is not available for the particular query.")
        query_sig = hashlib.sha256(json.dumps({k: v for k, v in sorted(params.items()) if k != "pageToken"}).encode()).hexdigest()
        sync_token = params.get("syncToken")
        if sync_token is not None:
            clashing = [name for name in NOT_WITH_SYNC_TOKEN if name in params]
            if clashing:
                raise ApiError(400, "invalid", f"Sync token cannot be used together with: {', '.join(clashing)}.")
            if params.get("showDeleted") == "false":
                raise ApiError(400, "invalid", "showDeleted cannot be false when a sync token is used.")
        if "pageToken" in params:
            try:
                page = _decode(params["pageToken"])
                ids, snapshot_seq, issued_for = self._snapshots[page["k"]]
            except (ValueError, KeyError):
                raise ApiError(400, "invalid", "Invalid page token value.") from None
            if issued_for != query_sig:
                raise ApiError(400, "invalid", "The page token was issued for a different query.")
            offset = page["o"]
        else:
            offset = 0
            ids, snapshot_seq = self._select(calendar_id, calendar, params, single, sync_token)
        chunk = ids[offset:offset + page_size]
        items = [calendar.records[i].wire() for i in chunk]
        if single is False:
            items = self._collapse_series(calendar, chunk, items)
        head = {"kind": "calendar#events", "etag": f'"{snapshot_seq}"', "summary": calendar_id, "updated": _stamp(),
                "timeZone": "Europe/Oslo", "accessRole": "owner", "defaultReminders": []}
        if offset + page_size < len(ids):
            key = secrets.token_hex(8)
            self._snapshots[key] = (ids, snapshot_seq, query_sig)
            head["nextPageToken"] = _encode({"k": key, "o": offset + page_size})
        else:
            head["nextSyncToken"] = _encode({"c": calendar_id, "s": snapshot_seq, "e": calendar.epoch, "single": single})
        return json.dumps(head).encode()[:-1] + b', "items": [' + b",".join(items) + b"]}"

    def _select(self, calendar_id: str, calendar: _Calendar, params: dict[str, str], single: bool, sync_token: str | None) -> tuple[list[str], int]:
        if sync_token is not None:
            try:
                token = _decode(sync_token)
                since, epoch, token_calendar, token_single = token["s"], token["e"], token["c"], token["single"]
            except (ValueError, KeyError):
                raise ApiError(400, "invalid", "Invalid sync token value.") from None
            if token_calendar != calendar_id:
                raise ApiError(400, "invalid", "Invalid sync token value.")
            if epoch != calendar.epoch:
                raise ApiError(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required.")
            if token_single != single:
                raise ApiError(400, "invalid", "singleEvents must match the request that issued the sync token.")
            changed = sorted((r for r in calendar.records.values() if r.seq > since), key=lambda r: r.seq)
            return [r.resource["id"] for r in changed], calendar.seq
        try:
            low = _parse_rfc3339(params["timeMin"]) if "timeMin" in params else None
            high = _parse_rfc3339(params["timeMax"]) if "timeMax" in params else None
        except ValueError:
            raise ApiError(400, "badRequest", "Bad Request: timeMin/timeMax must be RFC3339 with an offset.") from None
        if low and high and low >= high:
            raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
        show_deleted = params.get("showDeleted") == "true"
        chosen = [
            r for r in calendar.records.values()
            if (show_deleted or not r.deleted)
            and (low is None or r.end > low) and (high is None or r.start < high)
        ]
        chosen.sort(key=lambda r: (r.start, r.resource["id"]))
        return [r.resource["id"] for r in chosen], calendar.seq

    def _collapse_series(self, calendar: _Calendar, chunk: list[str], items: list[bytes]) -> list[bytes]:
        """Without singleEvents, Google lists a recurring series once, as its master event."""
        out, seen = [], set()
        for event_id, wire in zip(chunk, items):
            resource = calendar.records[event_id].resource
            base = resource.get("recurringEventId")
            if not base:
                out.append(wire)
            elif base not in seen:
                seen.add(base)
                master = {k: v for k, v in resource.items() if k not in ("recurringEventId", "originalStartTime")}
                master.update(id=base, recurrence=calendar.series.get(base, []))
                out.append(json.dumps(master).encode())
        return out

    def _patch(self, calendar_id: str, event_id: str, params: dict[str, str], headers: dict[str, str], body: bytes) -> bytes:
        record = self._record(calendar_id, event_id)
        if record.deleted:
            raise ApiError(410, "deleted", "Resource has been deleted")
        if params.get("sendUpdates", "false") not in ("all", "externalOnly", "none", "false"):
            raise ApiError(400, "invalid", "Invalid value for sendUpdates")
        if_match = headers.get("if-match")
        if if_match and if_match != record.resource["etag"]:
            raise ApiError(412, "conditionNotMet", "Precondition Failed")
        try:
            changes = json.loads(body or b"{}")
        except ValueError:
            raise ApiError(400, "parseError", "Parse Error") from None
        for name in READ_ONLY_FIELDS:
            changes.pop(name, None)
        for scope in ("private", "shared"):
            props = changes.get("extendedProperties", {}).get(scope)
            if isinstance(props, dict):  # Google's documented limits: drop long keys, cut long values
                changes["extendedProperties"][scope] = {
                    k: (v[:1024] if isinstance(v, str) else v) for k, v in props.items() if len(k) <= 44
                }
        resource = copy.deepcopy(record.resource)
        _merge(resource, changes)
        stored = self._store(self._calendars[calendar_id], resource)
        return json.dumps(stored).encode()

    def _token(self, form: dict[str, list[str]], authorization: str) -> tuple[int, dict[str, str], bytes]:
        field_ = {k: v[0] for k, v in form.items()}
        if authorization.startswith("Basic "):  # client credentials may come as HTTP Basic, as Google allows
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            field_.setdefault("client_id", unquote(user))
            field_.setdefault("client_secret", unquote(password))

        def deny(error: str, text: str) -> tuple[int, dict[str, str], bytes]:
            return 400, {}, json.dumps({"error": error, "error_description": text}).encode()

        if field_.get("client_id") != self.client_id or field_.get("client_secret") != self.client_secret:
            return 401, {}, json.dumps({"error": "invalid_client", "error_description": "The OAuth client was not found."}).encode()
        grant = field_.get("grant_type")
        if grant == "refresh_token":
            scopes = self._refresh.get(field_.get("refresh_token", ""))
            if scopes is None:
                return deny("invalid_grant", "Token has been expired or revoked.")
            refresh_token = None
        elif grant == "authorization_code":
            issued = self._codes.pop(field_.get("code", ""), None)
            if issued is None or issued["redirect_uri"] != field_.get("redirect_uri"):
                return deny("invalid_grant", "Malformed auth code.")
            digest = hashlib.sha256(field_.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).decode().rstrip("=") != issued["code_challenge"]:
                return deny("invalid_grant", "Invalid code verifier.")
            scopes = issued["scope"].split()
            refresh_token = self.issue_refresh_token(scopes) if issued.get("access_type") == "offline" else None
        else:
            return deny("unsupported_grant_type", "Invalid grant_type.")
        answer = {"access_token": self.issue_access_token(scopes), "expires_in": 3599, "scope": " ".join(scopes), "token_type": "Bearer"}
        if refresh_token:
            answer["refresh_token"] = refresh_token
        return 200, {}, json.dumps(answer).encode()

    def _authorize(self, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        self.auth_requests.append(params)
        if params.get("client_id") != self.client_id or params.get("response_type") != "code":
            return 400, {}, b"invalid_request"
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return 400, {}, b"PKCE required"
        code = f"4/fake-code-{secrets.token_hex(6)}"
        self._codes[code] = params
        target = params["redirect_uri"] + "?" + urlencode({"state": params.get("state", ""), "code": code, "scope": params.get("scope", "")})
        return 302, {"Location": target}, b""


def _make_handler(fake: FakeGoogleCalendar) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as googleapis.com does

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            recorded = RecordedRequest(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True), headers, body)
            recorded.bytes_in = len(self.requestline) + 2 + len(str(self.headers)) + len(body)
            with fake._lock:
                fake.requests.append(recorded)
            status, extra, payload = fake.handle(self.command, parts.path, recorded.query, headers, body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in extra.items():
                self.send_header(name, value)
            head_size = sum(len(chunk) for chunk in getattr(self, "_headers_buffer", []))
            # Recorded before the client can see the answer, so a test never reads a half record.
            recorded.status, recorded.bytes_out = status, head_size + 2 + len(payload)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


# --- push notifications ------------------------------------------------------------------


@dataclass
class Channel:
    """A live notification channel, as Google keeps it."""

    id: str
    calendar_id: str
    resource_id: str
    address: str
    token: str
    expires: float  # Unix seconds
    messages: int = 0


@dataclass
class Delivery:
    """One notification POSTed to a channel's address, and what the receiver answered."""

    channel_id: str
    state: str
    number: int
    status: int  # 0: no answer (refused, timed out)
    attempts: int = 1


class _Push:
    """events.watch / channels.stop and the notifications they cause (see the module doc)."""

    def __init__(self, fake: FakeGoogleCalendar):
        self.fake = fake
        self.channels: dict[str, Channel] = {}
        self.deliveries: list[Delivery] = []
        self.channel_ttl_cap = DEFAULT_CHANNEL_TTL  # seconds; tests shorten it to see renewals
        self.allow_loopback_http = True
        self.retry_delays = (0.2, 0.4, 0.8)  # Google backs off exponentially on 500/502/503/504
        self._outbox: queue.Queue[tuple[Channel, str, int, dict[str, str]] | None] = queue.Queue()
        self._sender: threading.Thread | None = None

    def start(self) -> None:
        self._sender = threading.Thread(target=self._send_all, name="fake-google-push", daemon=True)
        self._sender.start()

    def stop(self) -> None:
        if self._sender is not None:
            self._outbox.put(None)
            self._sender.join(timeout=5)
            self._sender = None

    @staticmethod
    def resource_id(calendar_id: str) -> str:
        """Google's opaque id of a calendar's event collection: the same for every channel on it."""
        return "res" + hashlib.sha256(calendar_id.encode()).hexdigest()[:24]

    def live(self, calendar_id: str | None = None) -> list[Channel]:
        """Channels not stopped and not expired (of one calendar, or all)."""
        now = time.time()
        with self.fake._lock:
            return [c for c in self.channels.values() if c.expires > now and calendar_id in (None, c.calendar_id)]

    def wait_delivered(self, count: int, timeout: float = 30.0) -> list[Delivery]:
        """The deliveries once at least `count` were made (or `timeout` passed: generous, for a
        busy machine; it returns as soon as they are)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.deliveries) < count:
            time.sleep(0.02)
        with self.fake._lock:
            return list(self.deliveries)

    # --- the API (server threads, under the fake's lock) ---------------------------------

    def watch(self, calendar_id: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if calendar_id not in self.fake._calendars:
            raise ApiError(404, "notFound", "Not Found")
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            raise ApiError(400, "parseError", "Parse Error") from None
        channel_id, kind, address = request.get("id") or "", request.get("type") or "", request.get("address") or ""
        if not channel_id:
            raise ApiError(400, "required", "Required channel id")
        if len(channel_id) > 64:
            raise ApiError(400, "invalid", "Channel id is longer than 64 characters")
        if kind not in ("web_hook", "webhook"):
            raise ApiError(400, "invalid", f"Unknown channel type: {kind}", "push")
        parts = urlsplit(address)
        loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost") and self.allow_loopback_http
        if not (parts.scheme == "https" and parts.hostname) and not loopback:
            raise ApiError(400, "push.webhookUrlNotHttps", "WebHook callback must be HTTPS: " + address, "push")
        token = request.get("token") or ""
        if len(token) > 256:
            raise ApiError(400, "invalid", "Channel token is longer than 256 characters")
        existing = self.channels.get(channel_id)
        if existing is not None and existing.expires > time.time():
            raise ApiError(400, "channelIdNotUnique", f"Channel id {channel_id} not unique", "push")
        try:
            asked = float((request.get("params") or {}).get("ttl") or DEFAULT_CHANNEL_TTL)
        except (TypeError, ValueError):
            raise ApiError(400, "invalid", "Invalid value for params.ttl") from None
        if asked <= 0:
            raise ApiError(400, "invalid", "Invalid value for params.ttl")
        channel = Channel(channel_id, calendar_id, self.resource_id(calendar_id), address, token,
                          time.time() + min(asked, self.channel_ttl_cap))
        self.channels[channel_id] = channel
        self._queue(channel, "sync")
        answer = {"kind": "api#channel", "id": channel_id, "resourceId": channel.resource_id,
                  "resourceUri": self._resource_uri(calendar_id), "expiration": str(int(channel.expires * 1000))}
        if token:
            answer["token"] = token
        return 200, {}, json.dumps(answer).encode()

    def stop_channel(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            raise ApiError(400, "parseError", "Parse Error") from None
        channel = self.channels.get(request.get("id") or "")
        if channel is None or channel.resource_id != request.get("resourceId") or channel.expires <= time.time():
            raise ApiError(404, "notFound", f"Channel '{request.get('id')}' not found for project")
        del self.channels[channel.id]
        return 204, {}, b""

    def changed(self, calendar_id: str) -> None:
        """An event of `calendar_id` was created, changed or deleted: tell its live channels."""
        now = time.time()
        for channel in list(self.channels.values()):
            if channel.calendar_id == calendar_id and channel.expires > now:
                self._queue(channel, "exists")

    # --- delivery (the sender thread) -----------------------------------------------------

    @staticmethod
    def _resource_uri(calendar_id: str) -> str:
        return f"https://www.googleapis.com/calendar/v3/calendars/{quote(calendar_id, safe='')}/events?alt=json"

    def _queue(self, channel: Channel, state: str) -> None:
        channel.messages += 1
        headers = {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Channel-Expiration": format_datetime(datetime.fromtimestamp(channel.expires, UTC), usegmt=True),
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-URI": self._resource_uri(channel.calendar_id),
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": str(channel.messages),
        }
        if channel.token:
            headers["X-Goog-Channel-Token"] = channel.token
        self._outbox.put((channel, state, channel.messages, headers))

    def _send_all(self) -> None:
        while True:
            item = self._outbox.get()
            if item is None:
                return
            channel, state, number, headers = item
            delivery = Delivery(channel.id, state, number, 0, 0)
            for delay in (*self.retry_delays, None):
                delivery.attempts += 1
                delivery.status = self._post(channel.address, headers)
                if delivery.status not in RETRIED_BY_GOOGLE or delay is None:
                    break
                time.sleep(delay)
            with self.fake._lock:
                self.deliveries.append(delivery)

    @staticmethod
    def _post(address: str, headers: dict[str, str]) -> int:
        request = urllib.request.Request(address, data=b"", method="POST", headers={**headers, "Content-Length": "0"})
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                return answer.status
        except urllib.error.HTTPError as error:
            return error.code
        except (OSError, urllib.error.URLError):
            return 0
