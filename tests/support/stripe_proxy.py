"""A small HTTP proxy in front of localstripe that fills its gaps and injects faults.

Gaps it fills, following Stripe's documented shapes:
- Checkout Sessions: POST/GET /v1/checkout/sessions (with `custom_text`, given back as
  Stripe does), GET /v1/checkout/sessions/{id},
  POST /v1/checkout/sessions/{id}/expire, plus a page at each session's `url`, and a test
  hook that plays the client paying or saving a card (`complete_checkout`, or
  POST /_proxy/checkout/sessions/{id}/complete).
- Idempotency: a POST repeating an Idempotency-Key gets the stored response back (header
  `Idempotent-Replayed: true`); the same key with another path or body is a 400
  idempotency_error, as on Stripe. Validation errors (400/404) are not stored; successes,
  card errors (402) and 5xx are.
- GET /v1/setup_intents with a `customer` filter (localstripe rejects it),
- GET /v1/payment_intents with `customer` / `created[...]` filters and GET /v1/refunds
  with `created[...]` (localstripe rejects them), and GET /v1/payment_intents/search,
  /v1/customers/search for the simple
  `field:'value' AND metadata['key']:'value'` queries.
- `description` and other display-only fields on PaymentIntents, which localstripe rejects,
  are dropped before forwarding.

Faults (see `Fault`): an error status or a 429 without forwarding, a timeout (the request
never arrives), and "lost response": the request is applied upstream and then the client
gets a 500 or a dropped connection.

Runs in a thread with the standard library's ThreadingHTTPServer; `start()` returns once
it listens on a free loopback port, `stop()` shuts it down.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

Response = tuple[int, dict[str, str], bytes]

_STRIPPED_INTENT_FIELDS = {"description", "statement_descriptor", "statement_descriptor_suffix", "receipt_email"}
_SEARCHABLE = {
    "payment_intents": "/v1/payment_intents",
    "customers": "/v1/customers",
}


@dataclass
class Fault:
    """A fault for requests whose method and path match (path: a regular expression).

    kind:
      "error"          answer `status` (default 500; `body` replaces the generic api_error
                       JSON, e.g. a card_error) without forwarding: nothing applied.
      "rate_limit"     answer 429 rate_limit without forwarding (with a `Retry-After:
                       retry_after` header when `retry_after` is set).
      "timeout"        hold the connection `delay` seconds, then drop it: nothing applied.
      "lose_response"  forward (the request is applied and stored for idempotency), wait
                       `delay` seconds, then answer 500, or drop the connection if `drop`.
    `times`: how many matching requests it hits (-1: all), after letting the first `skip`
    matching requests through untouched.
    """

    kind: str
    path: str = r"/v1/.*"
    method: str = "POST"
    times: int = 1
    status: int = 500
    delay: float = 0.0
    drop: bool = False
    body: dict[str, Any] | None = None
    retry_after: str | None = None
    skip: int = 0
    hits: int = 0
    skipped: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times != -1 and self.hits >= self.times:
            return False
        if not (self.method in ("*", method) and re.fullmatch(self.path, path) is not None):
            return False
        if self.skipped < self.skip:
            self.skipped += 1
            return False
        return True


@dataclass
class Exchange:
    """One request the proxy saw, for assertions. `at` is when it arrived (time.monotonic)."""

    method: str
    path: str
    query: str
    idempotency_key: str | None
    status: int = 0
    fault: str = ""
    replayed: bool = False
    at: float = field(default_factory=time.monotonic)


def busiest_window(times: list[float], seconds: float = 1.0) -> int:
    """The most of `times` that fall in any half-open window [t, t + seconds)."""
    ordered = sorted(times)
    most, first = 0, 0
    for last, moment in enumerate(ordered):
        while ordered[first] <= moment - seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


@dataclass
class _Stored:
    fingerprint: str
    response: Response


@dataclass
class _Session:
    public: dict[str, Any]
    intent_data: dict[str, Any] = field(default_factory=dict)
    setup_data: dict[str, Any] = field(default_factory=dict)
    auth: str = ""


def _json_response(status: int, payload: Any) -> Response:
    return status, {"Content-Type": "application/json"}, json.dumps(payload, indent=2).encode()


def _error(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None, **more: Any) -> Response:
    body: dict[str, Any] = {"type": type_, "message": message}
    if code:
        body["code"] = code
    body.update(more)
    return _json_response(status, {"error": body})


def unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Turn Stripe's form encoding (a[b][0][c]=v) into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+|\[\]", key)
        node = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})

    def listify(value: Any) -> Any:
        if isinstance(value, dict):
            converted = {k: listify(v) for k, v in value.items()}
            if converted and all(k.isdigit() for k in converted):
                return [converted[k] for k in sorted(converted, key=int)]
            return converted
        return value

    return listify(root)


def flatten(params: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Inverse of `unflatten`: nested params to Stripe's form encoding."""
    pairs: list[tuple[str, str]] = []
    items = params.items() if isinstance(params, dict) else enumerate(params)
    for key, value in items:
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, (dict, list)):
            pairs.extend(flatten(value, name))
        elif isinstance(value, bool):
            pairs.append((name, "true" if value else "false"))
        elif value is not None:
            pairs.append((name, str(value)))
    return pairs


class StripeProxy:
    """The proxy. `upstream` is localstripe's base URL, e.g. http://127.0.0.1:8420."""

    def __init__(self, upstream: str, *, host: str = "127.0.0.1"):
        split = urlsplit(upstream)
        self.upstream_host = split.hostname or "127.0.0.1"
        self.upstream_port = split.port or 80
        self.host = host
        self.exchanges: list[Exchange] = []
        self.faults: list[Fault] = []
        self.sessions: dict[str, _Session] = {}
        self._idempotency: dict[str, _Stored] = {}
        self._key_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        # PaymentIntent ids by customer, kept up to date incrementally (localstripe lists
        # in creation order, so only intents after `_intent_cursor` need reading).
        self._index_lock = threading.Lock()
        self._intent_cursor: str | None = None
        self._intents_by_customer: dict[str, list[str]] = {}
        self._indexed: set[str] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> StripeProxy:
        handler = type("Handler", (_Handler,), {"proxy": self})
        self._server = ThreadingHTTPServer((self.host, 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="stripe-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the proxy first"
        return f"http://{self.host}:{self._server.server_address[1]}"

    # -- test controls ----------------------------------------------------------------

    def inject(self, kind: str, **options: Any) -> Fault:
        """Add a Fault (see its docstring) and return it; `fault.hits` counts its uses."""
        fault = Fault(kind, **options)
        with self._lock:
            self.faults.append(fault)
        return fault

    def forget_idempotency(self) -> None:
        """Forget stored idempotent responses, as Stripe does after 24 hours."""
        with self._lock:
            self._idempotency.clear()

    def reset(self) -> None:
        """Clear faults, the request log, stored idempotent responses and sessions."""
        with self._lock:
            self.faults.clear()
            self.exchanges.clear()
            self._idempotency.clear()
            self.sessions.clear()
        with self._index_lock:
            self._intent_cursor = None
            self._intents_by_customer.clear()
            self._indexed.clear()

    def busiest_second(self, since: float = 0.0) -> int:
        """The most requests that arrived in any one-second window (since `since`, a
        time.monotonic value): what Stripe's rate limiter would count."""
        with self._lock:
            times = [e.at for e in self.exchanges if e.at >= since]
        return busiest_window(times)

    def requests(self, method: str, path: str) -> list[Exchange]:
        """Logged requests with this method whose path fully matches the regex `path`."""
        with self._lock:
            return [e for e in self.exchanges if e.method == method and re.fullmatch(path, e.path)]

    def complete_checkout(self, session_id: str, payment_method: str = "pm_card_visa") -> dict[str, Any]:
        """Play the client finishing Checkout with a card. Returns the session, or the
        Stripe error dict ({"error": ...}) when the card is declined."""
        status, _, body = self._complete_session(session_id, payment_method)
        return json.loads(body)

    # -- request handling ---------------------------------------------------------------

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.hits += 1
                    return fault
        return None

    def _idempotent(self, key: str, method: str, path: str, body: bytes, run: Any) -> tuple[Response, bool]:
        fingerprint = hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                stored = self._idempotency.get(key)
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    return _error(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                        type_="idempotency_error",
                    ), False
                status, headers, data = stored.response
                return (status, {**headers, "Idempotent-Replayed": "true"}, data), True
            response = run()
            if 200 <= response[0] < 300 or response[0] == 402 or response[0] >= 500:
                with self._lock:
                    self._idempotency[key] = _Stored(fingerprint, response)
            return response, False

    def _dispatch(self, method: str, path: str, query: str, body: bytes, headers: dict[str, str]) -> Response:
        auth = headers.get("Authorization", "")
        if path.startswith("/c/pay/"):
            return self._session_page(path.rsplit("/", 1)[-1])
        if not path.startswith("/_config/") and not self._authorised(auth):
            return _error(401, "Invalid API Key provided.")
        params = unflatten(parse_qsl(query, keep_blank_values=True))
        form = unflatten(parse_qsl(body.decode(), keep_blank_values=True)) if body else {}
        if path == "/v1/checkout/sessions":
            return self._create_session(form, auth) if method == "POST" else self._list_sessions(params)
        match = re.fullmatch(r"/v1/checkout/sessions/([\w]+)(/expire)?", path)
        if match:
            return self._session_action(match.group(1), bool(match.group(2)) and method == "POST")
        match = re.fullmatch(r"/_proxy/checkout/sessions/([\w]+)/complete", path)
        if match and method == "POST":
            return self._complete_session(match.group(1), form.get("payment_method", "pm_card_visa"))
        match = re.fullmatch(r"/v1/(payment_intents|customers)/search", path)
        if match and method == "GET":
            return self._search(match.group(1), params, auth)
        if method == "GET" and path == "/v1/payment_intents" and ("customer" in params or "created" in params):
            return self._filtered_intents(params, auth)
        if method == "GET" and path == "/v1/setup_intents" and "customer" in params:
            items = [item for item in self._all_upstream("/v1/setup_intents", auth) if item.get("customer") == params["customer"]]
            return self._page(items, params, "/v1/setup_intents")
        if method == "GET" and path == "/v1/refunds" and "created" in params:
            items = self._created_filter(self._all_upstream("/v1/refunds", auth), params.get("created"))
            return self._page(items, params, "/v1/refunds")
        if method == "POST" and re.fullmatch(r"/v1/payment_intents(/\w+)?", path) and body:
            pairs = [(k, v) for k, v in parse_qsl(body.decode(), keep_blank_values=True) if k.split("[")[0] not in _STRIPPED_INTENT_FIELDS]
            body = urlencode(pairs).encode()
        return self._forward(method, path + (f"?{query}" if query else ""), body, headers)

    @staticmethod
    def _authorised(auth: str) -> bool:
        scheme, _, token = auth.partition(" ")
        return scheme in ("Bearer", "Basic") and bool(token)

    def _forward(self, method: str, target: str, body: bytes, headers: dict[str, str]) -> Response:
        keep = ("authorization", "content-type", "stripe-version", "user-agent", "accept")
        outgoing = {k: v for k, v in headers.items() if k.lower() in keep}
        if body:
            outgoing["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=30)
        try:
            connection.request(method, target, body=body or None, headers=outgoing)
            reply = connection.getresponse()
            data = reply.read()
            return reply.status, {"Content-Type": reply.getheader("Content-Type", "application/json")}, data
        except OSError as error:
            return _error(502, f"localstripe unreachable: {error}", type_="api_error")
        finally:
            connection.close()

    def _upstream(self, method: str, path: str, params: dict[str, Any], auth: str) -> tuple[int, dict[str, Any]]:
        encoded = urlencode(flatten(params))
        headers = {"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"}
        if method == "GET":
            status, _, data = self._forward(method, f"{path}?{encoded}" if encoded else path, b"", headers)
        else:
            status, _, data = self._forward(method, path, encoded.encode(), headers)
        return status, json.loads(data or b"{}")

    def _all_upstream(self, path: str, auth: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 100}
        while True:
            status, page = self._upstream("GET", path, params, auth)
            if status != 200:
                raise RuntimeError(f"localstripe {path}: {status} {page}")
            items.extend(page["data"])
            if not page.get("has_more") or not page["data"]:
                return items
            params["starting_after"] = page["data"][-1]["id"]

    @staticmethod
    def _page(items: list[dict[str, Any]], params: dict[str, Any], url: str) -> Response:
        items = sorted(items, key=lambda item: item.get("created", 0), reverse=True)
        after = params.get("starting_after")
        if after:
            ids = [item["id"] for item in items]
            items = items[ids.index(after) + 1:] if after in ids else []
        limit = int(params.get("limit", 10))
        return _json_response(200, {"object": "list", "url": url, "has_more": len(items) > limit, "data": items[:limit]})

    def _customer_intents(self, customer: str, auth: str) -> list[dict[str, Any]]:
        with self._index_lock:
            params: dict[str, Any] = {"limit": 100}
            while True:
                if self._intent_cursor:
                    params["starting_after"] = self._intent_cursor
                status, page = self._upstream("GET", "/v1/payment_intents", params, auth)
                if status != 200:
                    raise RuntimeError(f"localstripe /v1/payment_intents: {status} {page}")
                for item in page["data"]:
                    if item["id"] not in self._indexed:
                        self._indexed.add(item["id"])
                        self._intents_by_customer.setdefault(item.get("customer") or "", []).append(item["id"])
                if page["data"]:
                    self._intent_cursor = page["data"][-1]["id"]
                if not page.get("has_more"):
                    break
            ids = list(self._intents_by_customer.get(customer, []))
        found = []
        for intent_id in ids:
            status, intent = self._upstream("GET", f"/v1/payment_intents/{intent_id}", {}, auth)
            if status == 200:
                found.append(intent)
        return found

    def _filtered_intents(self, params: dict[str, Any], auth: str) -> Response:
        if "customer" in params:
            items = self._customer_intents(params["customer"], auth)
        else:
            items = self._all_upstream("/v1/payment_intents", auth)
        return self._page(self._created_filter(items, params.get("created")), params, "/v1/payment_intents")

    @staticmethod
    def _created_filter(items: list[dict[str, Any]], created: Any) -> list[dict[str, Any]]:
        """Stripe's `created` list filter: an exact Unix time or {gt, gte, lt, lte}."""
        if isinstance(created, dict):
            ops = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
            for op, bound in created.items():
                items = [i for i in items if ops[op](int(i.get("created", 0)), int(bound))]
        elif created:
            items = [i for i in items if int(i.get("created", 0)) == int(created)]
        return items

    def _search(self, resource: str, params: dict[str, Any], auth: str) -> Response:
        query = params.get("query", "")
        clauses = []
        for clause in query.split(" AND "):
            match = re.fullmatch(r"\s*(?:metadata\['([^']+)'\]|(\w+)):'([^']*)'\s*", clause)
            if not match:
                return _error(400, f"The test proxy does not understand the search clause {clause!r}", code="parameter_invalid_string")
            clauses.append(match.groups())
        items = self._all_upstream(_SEARCHABLE[resource], auth)

        def hit(item: dict[str, Any]) -> bool:
            for meta_key, field_name, value in clauses:
                actual = (item.get("metadata") or {}).get(meta_key) if meta_key else item.get(field_name)
                if str(actual) != value:
                    return False
            return True

        found = sorted((i for i in items if hit(i)), key=lambda i: i.get("created", 0), reverse=True)
        limit = int(params.get("limit", 10))
        return _json_response(200, {
            "object": "search_result", "url": f"/v1/{resource}/search", "has_more": len(found) > limit,
            "next_page": None, "data": found[:limit],
        })

    # -- Checkout Sessions ----------------------------------------------------------------

    def _create_session(self, form: dict[str, Any], auth: str) -> Response:
        mode = form.get("mode")
        if mode not in ("payment", "setup"):
            return _error(400, "mode must be payment or setup (subscription is not simulated)", code="parameter_invalid_empty", param="mode")
        customer = form.get("customer")
        if customer:
            status, _ = self._upstream("GET", f"/v1/customers/{customer}", {}, auth)
            if status != 200:
                return _error(400, f"No such customer: '{customer}'", code="resource_missing", param="customer")
        now = int(time.time())
        expires_at = int(form.get("expires_at", now + 86400))
        if not now + 1800 <= expires_at <= now + 86400:
            return _error(400, "expires_at must be between 30 minutes and 24 hours from now", param="expires_at")
        currency = form.get("currency")
        amount_total = None
        if mode == "payment":
            items = form.get("line_items") or []
            if not items:
                return _error(400, "line_items is required in payment mode", code="parameter_missing", param="line_items")
            amount_total = 0
            for item in items:
                price = item.get("price_data")
                if not price or "unit_amount" not in price or not (price.get("product_data") or {}).get("name"):
                    return _error(400, "each line item needs price_data with currency, unit_amount and product_data[name]", code="parameter_missing")
                if currency and price["currency"] != currency:
                    return _error(400, "all line items must have the same currency")
                currency = price["currency"]
                amount_total += int(price["unit_amount"]) * int(item.get("quantity", 1))
        elif not currency and not form.get("payment_method_types"):
            return _error(400, "currency is required in setup mode", code="parameter_missing", param="currency")
        custom_text = {name: None for name in ("after_submit", "shipping_address", "submit", "terms_of_service_acceptance")}
        for name, value in (form.get("custom_text") or {}).items():
            if name not in custom_text or not isinstance(value, dict) or not isinstance(value.get("message"), str):
                return _error(400, f"Invalid custom_text[{name}]", code="parameter_invalid", param=f"custom_text[{name}]")
            if len(value["message"]) > 1200:
                return _error(400, "custom_text messages must be at most 1200 characters", code="parameter_invalid", param=f"custom_text[{name}][message]")
            custom_text[name] = {"message": value["message"]}
        session_id = "cs_test_" + secrets.token_hex(16)
        public = {
            "id": session_id,
            "object": "checkout.session",
            "mode": mode,
            "status": "open",
            "payment_status": "unpaid" if mode == "payment" else "no_payment_required",
            "url": f"{self.base_url}/c/pay/{session_id}",
            "customer": customer,
            "customer_email": form.get("customer_email"),
            "client_reference_id": form.get("client_reference_id"),
            "currency": currency,
            "amount_subtotal": amount_total,
            "amount_total": amount_total,
            "metadata": form.get("metadata") or {},
            "payment_intent": None,
            "setup_intent": None,
            "payment_method_types": form.get("payment_method_types") or ["card"],
            "success_url": form.get("success_url"),
            "cancel_url": form.get("cancel_url"),
            "expires_at": expires_at,
            "created": now,
            "livemode": False,
            "locale": form.get("locale"),
            "custom_text": custom_text,
        }
        with self._lock:
            self.sessions[session_id] = _Session(
                public, form.get("payment_intent_data") or {}, form.get("setup_intent_data") or {}, auth
            )
        return _json_response(200, public)

    def _current(self, session_id: str) -> _Session | None:
        with self._lock:
            session = self.sessions.get(session_id)
        if session and session.public["status"] == "open" and session.public["expires_at"] < time.time():
            session.public["status"] = "expired"
        return session

    def _list_sessions(self, params: dict[str, Any]) -> Response:
        with self._lock:
            ids = list(self.sessions)
        items = [s.public for s in (self._current(i) for i in ids) if s]
        for name in ("customer", "status", "payment_intent"):
            if name in params:
                items = [s for s in items if s.get(name) == params[name]]
        return self._page(items, params, "/v1/checkout/sessions")

    def _session_action(self, session_id: str, expire: bool) -> Response:
        session = self._current(session_id)
        if session is None:
            return _error(404, f"No such checkout.session: '{session_id}'", code="resource_missing")
        if expire:
            if session.public["status"] != "open":
                return _error(400, "Only open sessions can be expired")
            session.public["status"] = "expired"
        return _json_response(200, session.public)

    def _session_page(self, session_id: str) -> Response:
        session = self._current(session_id)
        if session is None or session.public["status"] != "open":
            return 404, {"Content-Type": "text/html"}, b"<p>This link has expired.</p>"
        text = f"<h1>Test checkout</h1><p>{session.public['mode']} {session.public['amount_total'] or ''} {session.public['currency'] or ''}</p>"
        return 200, {"Content-Type": "text/html"}, text.encode()

    def _complete_session(self, session_id: str, payment_method: str) -> Response:
        session = self._current(session_id)
        if session is None:
            return _error(404, f"No such checkout.session: '{session_id}'", code="resource_missing")
        public = session.public
        if public["status"] != "open":
            return _error(400, f"checkout session {session_id} is {public['status']}")
        customer, auth = public["customer"], session.auth
        saves_card = public["mode"] == "setup" or session.intent_data.get("setup_future_usage")
        card = payment_method
        if customer and saves_card:
            status, attached = self._upstream("POST", f"/v1/payment_methods/{payment_method}/attach", {"customer": customer}, auth)
            if status != 200:
                return _json_response(status, attached)
            card = attached["id"]
        if public["mode"] == "setup":
            status, intent = self._upstream("POST", "/v1/setup_intents", {
                "customer": customer, "metadata": session.setup_data.get("metadata") or {}, "payment_method_types": ["card"],
            }, auth)
            status, intent = self._upstream("POST", f"/v1/setup_intents/{intent['id']}/confirm", {"payment_method": card}, auth)
            if status != 200:
                return _json_response(status, intent)
            public["setup_intent"] = intent["id"]
        else:
            params = {
                "amount": public["amount_total"], "currency": public["currency"], "customer": customer,
                "payment_method": card, "metadata": session.intent_data.get("metadata") or {}, "confirm": True,
            }
            if session.intent_data.get("capture_method"):
                params["capture_method"] = session.intent_data["capture_method"]
            status, intent = self._upstream("POST", "/v1/payment_intents", params, auth)
            if status == 200 and intent.get("status") == "requires_action":
                # The client authenticates (3-D Secure) on the hosted page.
                status, intent = self._upstream("POST", f"/v1/payment_intents/{intent['id']}/_authenticate", {
                    "client_secret": intent["client_secret"], "success": True,
                }, auth)
            if status != 200:
                return _json_response(status, intent)
            public["payment_intent"] = intent["id"]
            public["payment_status"] = "paid"
        public["status"] = "complete"
        return _json_response(200, public)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: StripeProxy

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return None

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        proxy = self.proxy
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        key = self.headers.get("Idempotency-Key")
        exchange = Exchange(method, split.path, split.query, key)
        with proxy._lock:
            proxy.exchanges.append(exchange)
        fault = proxy._take_fault(method, split.path)
        if fault is not None:
            exchange.fault = fault.kind
        if fault is not None and fault.kind == "error":
            if fault.body is not None:
                return self._send(exchange, _json_response(fault.status, fault.body))
            return self._send(exchange, _error(fault.status, "An unknown error occurred (injected).", type_="api_error"))
        if fault is not None and fault.kind == "rate_limit":
            status, headers, data = _error(429, "Too many requests hit the API too quickly (injected).", code="rate_limit")
            if fault.retry_after is not None:
                headers = {**headers, "Retry-After": fault.retry_after}
            return self._send(exchange, (status, headers, data))
        if fault is not None and fault.kind == "timeout":
            time.sleep(fault.delay)
            return self._drop()
        headers = dict(self.headers.items())

        def run() -> Response:
            return proxy._dispatch(method, split.path, split.query, body, headers)

        if method == "POST" and key:
            response, exchange.replayed = proxy._idempotent(key, method, split.path, body, run)
        else:
            response = run()
        if fault is not None and fault.kind == "lose_response":
            exchange.status = response[0]
            time.sleep(fault.delay)
            if fault.drop:
                return self._drop()
            return self._send(exchange, _error(500, "An unknown error occurred (injected after applying).", type_="api_error"))
        self._send(exchange, response)

    def _send(self, exchange: Exchange, response: Response) -> None:
        status, headers, data = response
        exchange.status = exchange.status or status
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Request-Id", "req_" + secrets.token_hex(7))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
