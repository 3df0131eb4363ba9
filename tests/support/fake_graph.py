"""A local HTTPS server speaking Microsoft Graph's calendar wire format and the Microsoft
identity platform's endpoints that MSAL uses, for tests and benches.

Served over TLS on 127.0.0.1 with a certificate from a private authority made for the run
(tests/support/smtp_server.py PrivateAuthority; its PEM is `ca_file`): MSAL accepts only an
https authority, and the adapter's `calendar.microsoft.ca_file` is exercised on every call.

Sign-in (the real MSAL library talks to it; `authority` = https://127.0.0.1:PORT/TENANT):
- GET  /{tenant}/v2.0/.well-known/openid-configuration
- POST /{tenant}/oauth2/v2.0/devicecode: a device code and a user code (`interval` seconds
  between polls); the sign-in counts as done after `pending_polls` polls answered
  `authorization_pending` (or `deny_device()` makes it `access_denied`).
- POST /{tenant}/oauth2/v2.0/token: device_code and refresh_token grants; access tokens live
  `token_lifetime` seconds (`expires_in`), refresh tokens rotate, `revoke_refresh_tokens()`
  makes the next refresh `invalid_grant`. The id_token (unsigned, as MSAL does not check a
  signature) and client_info carry the account MSAL caches.

Graph (`graph_endpoint` = https://127.0.0.1:PORT/v1.0; every call needs a live Bearer token,
else 401 InvalidAuthenticationToken):
- GET /me/calendars (id, name).
- GET /me/calendarView/delta and /me/calendars/{id}/calendarView/delta: a round starts with
  startDateTime/endDateTime and lists the events of the window; pages of `Prefer:
  odata.maxpagesize=N` (default 10) chained by @odata.nextLink ($skiptoken), the last with
  @odata.deltaLink ($deltatoken). A delta link lists what changed since (an event changed
  inside the window: the whole resource; a deleted one: {"id", "@removed": {"reason":
  "deleted"}}); `expire_delta_tokens()` makes the stored ones answer 410 SyncStateNotFound.
  Series masters are never listed; occurrences and exceptions are, with seriesMasterId.
  Delta rows never carry extended properties (Graph does not $expand in delta).
- GET /me/events/{id}: $select and $expand=singleValueExtendedProperties($filter=id eq '...').
- PATCH /me/events/{id} (`before_next_patch` runs an edit just before one): top-level merge, singleValueExtendedProperties merged by id; If-Match
  on the ETag (412 ErrorIrresolvableConflict when stale); bumps changeKey,
  lastModifiedDateTime and the delta sequence. Every PATCH body is kept in `patches`.
- Times are stored and answered in UTC (7 fraction digits, "timeZone": "UTC"), with the
  organizer's zone in originalStartTimeZone; bodies come as text when `Prefer:
  outlook.body-content-type="text"` is sent (tags stripped), else as stored.

Faults: `fail(method, path_part, status, retry_after=None, times=1)` answers the next matching
requests with that status and Graph's error JSON. Every request is kept in `requests` with
its sizes and headers.

Gaps (what real Graph does and this fake does not): no time zone but UTC in answers (a
`Prefer: outlook.timezone` naming another zone is ignored); recurrence is not expanded (a
test puts each occurrence); no meeting messages are sent or modelled (whether a PATCH of an
extended property alone mails attendees cannot be observed here); an event moved out of a
round's window is reported @removed only when a test says so (`removed_from_window`); throttling happens only when queued;
$filter, $orderby, $top are ignored except where named above; the device code is approved by
polling, not by a browser page; tokens are not JWTs Graph could validate.
"""

from __future__ import annotations

import base64
import copy
import html
import json
import re
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tests.support.smtp_server import PrivateAuthority

CLIENT_ID = "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"
TENANT_ID = "9e8d7c6b-1111-4222-8333-444455556666"
USER_ID = "2b3c4d5e-7777-4888-9999-aaaabbbbcccc"
USER = "lena@contoso.example"
DEFAULT_PAGE = 10
_TAG = re.compile(r"<[^>]+>")
_EXPAND = re.compile(r"singleValueExtendedProperties\(\$filter=id eq '([^']*)'\)", re.IGNORECASE)


def graph_time(moment: datetime) -> dict[str, str]:
    """`moment` as Graph answers in UTC: {"dateTime": "2026-03-02T08:00:00.0000000", "timeZone": "UTC"}."""
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def _parse(value: dict) -> datetime:
    return datetime.fromisoformat(value["dateTime"][:26]).replace(tzinfo=UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def booking(event_id: str, start: datetime, client: str, name: str, *, minutes: int = 60, subject: str = "",
            organizer: str = USER, categories: list[str] | None = None, body: str = "", response: str = "accepted",
            zone: str = "W. Europe Standard Time", **extra: Any) -> dict[str, Any]:
    """A Graph event the practitioner organised with one client invited."""
    return {
        "id": event_id,
        "subject": subject or f"Massage - {name}",
        "body": {"contentType": "html", "content": f"<html><body><p>{html.escape(body)}</p></body></html>" if body else ""},
        "start": graph_time(start),
        "end": graph_time(start + timedelta(minutes=minutes)),
        "originalStartTimeZone": zone,
        "originalEndTimeZone": zone,
        "isAllDay": False,
        "isCancelled": False,
        "isOrganizer": organizer == USER,
        "type": "singleInstance",
        "categories": categories or [],
        "organizer": {"emailAddress": {"name": "Lena Berg", "address": organizer}},
        "attendees": [{"type": "required", "status": {"response": response, "time": "0001-01-01T00:00:00Z"},
                       "emailAddress": {"name": name, "address": client}}] if client else [],
        "location": {"displayName": ""},
        **extra,
    }


@dataclass
class Recorded:
    method: str
    path: str
    status: int
    bytes_in: int
    bytes_out: int
    headers: dict[str, str]


@dataclass
class _Round:
    """A delta round's saved state: the calendar and window, and the sequence it is at."""

    calendar: str
    start: datetime
    end: datetime
    seq: int


@dataclass
class _Pages:
    """Rows still to give in a round, and the round state its last page hands on."""

    rows: list[dict]
    after: _Round
    base: str


@dataclass
class _State:
    events: dict[str, dict] = field(default_factory=dict)
    tombstones: list[tuple[int, str, str]] = field(default_factory=list)
    seq: int = 0
    rounds: dict[str, _Round] = field(default_factory=dict)
    pages: dict[str, _Pages] = field(default_factory=dict)
    access: dict[str, float] = field(default_factory=dict)
    refresh: set[str] = field(default_factory=set)
    devices: dict[str, int] = field(default_factory=dict)
    device_scope: dict[str, str] = field(default_factory=dict)


class FakeGraph:
    def __init__(self, folder: Path, *, tenant: str = "contoso", interval: int = 1, pending_polls: int = 1,
                 token_lifetime: int = 3600, calendars: dict[str, str] | None = None):
        self.folder, self.tenant, self.interval, self.pending_polls = folder, tenant, interval, pending_polls
        self.token_lifetime = token_lifetime
        self.calendars = calendars or {"AAMkDefault": "Calendar"}
        self.state = _State()
        self.lock = threading.RLock()
        self.requests: list[Recorded] = []
        self.patches: list[dict] = []
        self.device_scopes: list[str] = []
        self.faults: list[dict] = []
        self.denied = False
        self.before_patch: list[tuple[str, Any]] = []
        self.link_base = ""  # where @odata links point (a proxy or tap in front); "" = graph_endpoint
        self.page_size_cap = 0  # the most rows a page holds whatever the client prefers; 0 = no cap
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life ----------------------------------------------------------------------------
    def start(self) -> FakeGraph:
        authority = PrivateAuthority(self.folder, "graph")
        certificate = authority.issue()
        self.ca = authority  # issues certificates for a tap or proxy in front, trusted through the same ca_file
        self.ca_file = str(authority.cert_file)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificate.cert_file, certificate.key_file)
        fake = self

        class Handler(_Handler):
            graph = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base(self) -> str:
        assert self._server is not None
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def authority(self) -> str:
        return f"{self.base}/{self.tenant}"

    @property
    def graph_endpoint(self) -> str:
        return f"{self.base}/v1.0"

    def config(self, *, calendar: str = "", extra: str = "") -> str:
        """The `[calendar.microsoft]` table that points Slotguard at this fake."""
        lines = [f'client_id = "{CLIENT_ID}"', f'authority = "{self.authority}"', f'graph_endpoint = "{self.graph_endpoint}"',
                 f'ca_file = "{self.ca_file}"']
        if calendar:
            lines.append(f'calendar = "{calendar}"')
        return "[calendar.microsoft]\n" + "\n".join(lines) + ("\n" + extra if extra else "") + "\n"

    # -- events --------------------------------------------------------------------------
    def put_event(self, event: dict, calendar: str = "AAMkDefault") -> dict:
        with self.lock:
            self.state.seq += 1
            stored = copy.deepcopy(event)
            previous = self.state.events.get(stored["id"])
            stored.setdefault("createdDateTime", previous["createdDateTime"] if previous else _now_text())
            stored["lastModifiedDateTime"] = _now_text()
            stored["changeKey"] = secrets.token_urlsafe(12)
            if previous and "singleValueExtendedProperties" in previous and "singleValueExtendedProperties" not in stored:
                stored["singleValueExtendedProperties"] = previous["singleValueExtendedProperties"]
            stored["_calendar"], stored["_seq"] = calendar, self.state.seq
            self.state.events[stored["id"]] = stored
            return self._shown(stored)

    def update_event(self, event_id: str, **changes: Any) -> dict:
        """Change an event as Outlook would (a new changeKey; the delta round sees it)."""
        with self.lock:
            event = {key: value for key, value in self.state.events[event_id].items() if not key.startswith("_")}
            event.update(changes)
            return self.put_event(event, self.state.events[event_id]["_calendar"])

    def delete_event(self, event_id: str) -> None:
        with self.lock:
            event = self.state.events.pop(event_id)
            self.state.seq += 1
            self.state.tombstones.append((self.state.seq, event_id, event["_calendar"]))

    def removed_from_window(self, event_id: str) -> None:
        """Report `event_id` in the next delta rows as @removed, as Graph does for an event
        moved out of a round's window (the event itself stays)."""
        with self.lock:
            self.state.seq += 1
            self.state.tombstones.append((self.state.seq, event_id, self.state.events[event_id]["_calendar"]))

    def event(self, event_id: str) -> dict:
        with self.lock:
            return copy.deepcopy(self.state.events[event_id])

    def property_value(self, event_id: str, property_id: str) -> str | None:
        for entry in self.event(event_id).get("singleValueExtendedProperties") or []:
            if entry["id"].lower() == property_id.lower():
                return entry["value"]
        return None

    # -- faults and tokens ---------------------------------------------------------------
    def fail(self, method: str, path_part: str, status: int, *, retry_after: float | None = None, times: int = 1, code: str = "") -> None:
        with self.lock:
            self.faults.append({"method": method, "part": path_part, "status": status, "retry_after": retry_after, "times": times,
                                "code": code or {429: "TooManyRequests", 503: "ServiceUnavailable", 410: "SyncStateNotFound"}.get(status, "ErrorInternalServerError")})

    def before_next_patch(self, event_id: str, action: Any) -> None:
        """Run `action(fake)` just before the next PATCH of `event_id` is handled (a
        practitioner's edit landing between Slotguard's read and its write)."""
        with self.lock:
            self.before_patch.append((event_id, action))

    def expire_delta_tokens(self) -> None:
        with self.lock:
            self.state.rounds.clear()

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.state.access.clear()

    def revoke_refresh_tokens(self) -> None:
        with self.lock:
            self.state.refresh.clear()

    def count(self, method: str = "", part: str = "") -> int:
        return sum(1 for request in self.requests if (not method or request.method == method) and part in request.path)

    # -- internals -----------------------------------------------------------------------
    def _shown(self, stored: dict, *, text_body: bool = False, expand: str | None = None, select: list[str] | None = None) -> dict:
        event = {key: copy.deepcopy(value) for key, value in stored.items() if not key.startswith("_")}
        event["@odata.etag"] = f'W/"{stored["changeKey"]}"'
        properties = event.pop("singleValueExtendedProperties", None)
        if expand is not None:
            chosen = [entry for entry in properties or [] if entry["id"].lower() == expand.lower()]
            if chosen:
                event["singleValueExtendedProperties"] = chosen
        body = event.get("body")
        if text_body and isinstance(body, dict) and body.get("contentType") == "html":
            text = _TAG.sub("\n", re.sub(r"(?is)<head>.*?</head>", "", body.get("content") or ""))
            event["body"] = {"contentType": "text", "content": html.unescape("\n".join(line.strip() for line in text.split("\n") if line.strip()))}
        if select:
            keep = {*select, "id", "@odata.etag", "singleValueExtendedProperties"}
            event = {key: value for key, value in event.items() if key in keep}
        return event

    def _issue(self, scope: str) -> dict:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(32)
        self.state.access[access] = time.time() + self.token_lifetime
        self.state.refresh.add(refresh)
        now = int(time.time())
        claims = {"aud": CLIENT_ID, "iss": f"{self.base}/{TENANT_ID}/v2.0", "iat": now, "nbf": now, "exp": now + 3600,
                  "sub": "sub-lena", "oid": USER_ID, "tid": TENANT_ID, "preferred_username": USER, "name": "Lena Berg"}
        id_token = ".".join([_b64(b'{"alg":"none","typ":"JWT"}'), _b64(json.dumps(claims).encode()), ""])
        return {"token_type": "Bearer", "scope": scope, "expires_in": self.token_lifetime, "ext_expires_in": self.token_lifetime,
                "access_token": access, "refresh_token": refresh, "id_token": id_token,
                "client_info": _b64(json.dumps({"uid": USER_ID, "utid": TENANT_ID}).encode())}


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "innerError": {"request-id": secrets.token_hex(8), "date": _now_text()}}}


class _Handler(BaseHTTPRequestHandler):
    graph: FakeGraph
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        graph = self.graph
        with graph.lock:
            status, headers, body = self._answer(method, unquote(parts.path), query, raw)
            data = json.dumps(body).encode() if body is not None else b""
            graph.requests.append(Recorded(method, parts.path, status, len(raw) + len(self.path), len(data), dict(self.headers.items())))
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, method: str, path: str, query: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], Any]:
        graph = self.graph
        for fault in graph.faults:
            if fault["method"] == method and fault["part"] in path and fault["times"] > 0:
                fault["times"] -= 1
                headers = {"Retry-After": f"{fault['retry_after']:g}"} if fault["retry_after"] is not None else {}
                return fault["status"], headers, _error(fault["code"], "queued fault")
        tenant = f"/{graph.tenant}"
        if path == f"{tenant}/v2.0/.well-known/openid-configuration":
            return 200, {}, {"authorization_endpoint": f"{graph.authority}/oauth2/v2.0/authorize",
                             "token_endpoint": f"{graph.authority}/oauth2/v2.0/token",
                             "device_authorization_endpoint": f"{graph.authority}/oauth2/v2.0/devicecode",
                             "issuer": f"{graph.base}/{TENANT_ID}/v2.0"}
        if path == f"{tenant}/oauth2/v2.0/devicecode" and method == "POST":
            form = {key: values[-1] for key, values in parse_qs(raw.decode()).items()}
            graph.device_scopes = form.get("scope", "").split()
            code, user_code = secrets.token_urlsafe(16), secrets.token_hex(4).upper()
            graph.state.devices[code] = 0
            graph.state.device_scope[code] = form.get("scope", "")
            return 200, {}, {"device_code": code, "user_code": user_code, "verification_uri": f"{graph.base}/devicelogin",
                             "expires_in": 900, "interval": graph.interval,
                             "message": f"To sign in, use a web browser to open the page {graph.base}/devicelogin and enter the code {user_code} to authenticate."}
        if path == f"{tenant}/oauth2/v2.0/token" and method == "POST":
            return self._token({key: values[-1] for key, values in parse_qs(raw.decode()).items()})
        if path.startswith("/v1.0/"):
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            if graph.state.access.get(token, 0) < time.time():
                return 401, {}, _error("InvalidAuthenticationToken", "Access token has expired or is not yet valid.")
            return self._graph(method, path[len("/v1.0"):], query, raw)
        return 404, {}, _error("ResourceNotFound", f"no route {method} {path}")

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        graph = self.graph
        if form.get("client_id") != CLIENT_ID:
            return 400, {}, {"error": "unauthorized_client", "error_description": "AADSTS700016: Application not found in the directory."}
        asked = form.get("scope", "")
        if form.get("grant_type") == "urn:ietf:params:oauth:grant-type:device_code":
            asked = graph.state.device_scope.get(form.get("device_code", ""), asked)  # the scope is the device code's
        scope = " ".join(sorted(set(asked.split()) | {"openid", "profile", "offline_access"}))
        if form.get("grant_type") == "urn:ietf:params:oauth:grant-type:device_code":
            code = form.get("device_code", "")
            if code not in graph.state.devices:
                return 400, {}, {"error": "expired_token", "error_description": "AADSTS70019: Verification code expired."}
            if graph.denied:
                return 400, {}, {"error": "access_denied", "error_description": "AADSTS70016: the user declined."}
            graph.state.devices[code] += 1
            if graph.state.devices[code] <= graph.pending_polls:
                return 400, {}, {"error": "authorization_pending", "error_description": "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending."}
            del graph.state.devices[code]
            return 200, {}, graph._issue(scope)
        if form.get("grant_type") == "refresh_token":
            refresh = form.get("refresh_token", "")
            if refresh not in graph.state.refresh:
                return 400, {}, {"error": "invalid_grant", "error_description": "AADSTS700082: The refresh token has expired due to inactivity.",
                                 "error_codes": [700082], "suberror": "bad_token"}
            graph.state.refresh.discard(refresh)
            return 200, {}, graph._issue(scope)
        return 400, {}, {"error": "unsupported_grant_type", "error_description": "AADSTS70003"}

    # -- Graph ---------------------------------------------------------------------------
    def _graph(self, method: str, path: str, query: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], Any]:
        graph = self.graph
        prefer = self.headers.get("Prefer") or ""
        if method == "GET" and path == "/me/calendars":
            return 200, {}, {"value": [{"id": key, "name": name} for key, name in graph.calendars.items()]}
        match = re.fullmatch(r"/me(?:/calendars/([^/]+))?/calendarView/delta", path)
        if method == "GET" and match:
            calendar = match.group(1) or next(iter(graph.calendars))
            if calendar not in graph.calendars:
                return 404, {}, _error("ErrorItemNotFound", "The specified object was not found in the store.")
            return self._delta(calendar, path, query, prefer)
        match = re.fullmatch(r"/me/events/([^/]+)", path)
        if match:
            stored = graph.state.events.get(match.group(1))
            if stored is None:
                return 404, {}, _error("ErrorItemNotFound", "The specified object was not found in the store.")
            if method == "GET":
                expanded = _EXPAND.search(query.get("$expand", ""))
                select = [name for name in query.get("$select", "").split(",") if name]
                return 200, {}, graph._shown(stored, text_body="body-content-type=\"text\"" in prefer,
                                             expand=expanded.group(1) if expanded else None, select=select or None)
            if method == "PATCH":
                return self._patch(stored, json.loads(raw or b"{}"))
        return 400, {}, _error("BadRequest", f"the fake does not serve {method} {path}")

    def _delta(self, calendar: str, path: str, query: dict[str, str], prefer: str) -> tuple[int, dict[str, str], Any]:
        graph = self.graph
        size = int(m.group(1)) if (m := re.search(r"odata\.maxpagesize=(\d+)", prefer)) else DEFAULT_PAGE
        size = min(size, graph.page_size_cap) if graph.page_size_cap else size
        state = graph.state
        if "$skiptoken" in query:
            pages = state.pages.get(query["$skiptoken"])  # a page may be asked again (a retry)
            if pages is None:
                return 410, {}, _error("SyncStateNotFound", "The sync state was not found.")
        elif "$deltatoken" in query:
            previous = state.rounds.get(query["$deltatoken"])
            if previous is None or previous.calendar != calendar:
                return 410, {}, _error("SyncStateNotFound", "The sync state root folder is not found.")
            rows = [graph._shown(event, text_body="body-content-type=\"text\"" in prefer) for event in self._in_window(calendar, previous.start, previous.end)
                    if event["_seq"] > previous.seq]
            rows += [{"@odata.type": "#microsoft.graph.event", "id": event_id, "@removed": {"reason": "deleted"}}
                     for seq, event_id, where in state.tombstones if seq > previous.seq and where == calendar]
            pages = _Pages(rows, _Round(calendar, previous.start, previous.end, state.seq), path)
        else:
            try:
                start, end = (datetime.fromisoformat(query[name].replace("Z", "+00:00")) for name in ("startDateTime", "endDateTime"))
            except (KeyError, ValueError):
                return 400, {}, _error("ErrorInvalidParameter", "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.")
            rows = [graph._shown(event, text_body="body-content-type=\"text\"" in prefer) for event in self._in_window(calendar, start, end)]
            pages = _Pages(rows, _Round(calendar, start, end, state.seq), path)
        page, rest = pages.rows[:size], pages.rows[size:]
        answer: dict[str, Any] = {"@odata.context": f"{graph.graph_endpoint}/$metadata#Collection(event)", "value": page}
        if rest:
            skip = secrets.token_urlsafe(12)
            state.pages[skip] = _Pages(rest, pages.after, pages.base)
            answer["@odata.nextLink"] = f"{graph.link_base or graph.graph_endpoint}{quote(pages.base)}?$skiptoken={skip}"
        else:
            token = secrets.token_urlsafe(12)
            state.rounds[token] = pages.after
            answer["@odata.deltaLink"] = f"{graph.link_base or graph.graph_endpoint}{quote(pages.base)}?$deltatoken={token}"
        return 200, {}, answer

    def _in_window(self, calendar: str, start: datetime, end: datetime) -> list[dict]:
        return sorted((event for event in self.graph.state.events.values()
                       if event["_calendar"] == calendar and event.get("type") != "seriesMaster"
                       and _parse(event["start"]) < end and _parse(event["end"]) > start), key=lambda event: (event["start"]["dateTime"], event["id"]))

    def _patch(self, stored: dict, change: dict) -> tuple[int, dict[str, str], Any]:
        graph = self.graph
        for hook in [hook for hook in graph.before_patch if hook[0] == stored["id"]]:
            graph.before_patch.remove(hook)
            hook[1](graph)
            stored = graph.state.events[stored["id"]]
        expected = self.headers.get("If-Match")
        if expected and expected != "*" and expected != f'W/"{stored["changeKey"]}"':
            return 412, {}, _error("ErrorIrresolvableConflict", "The change key passed in the request does not match the current change key for the item.")
        graph.patches.append(copy.deepcopy(change))
        for key, value in change.items():
            if key == "singleValueExtendedProperties":
                merged = {entry["id"].lower(): entry for entry in stored.get(key) or []}
                merged.update({entry["id"].lower(): entry for entry in value})
                stored[key] = list(merged.values())
            else:
                stored[key] = value
        graph.state.seq += 1
        stored["_seq"] = graph.state.seq
        stored["changeKey"] = secrets.token_urlsafe(12)
        stored["lastModifiedDateTime"] = _now_text()
        return 200, {}, graph._shown(stored)
