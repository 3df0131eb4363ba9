"""Stripe webhooks: verify deliveries and say what each event means for a payment.

Off by default; polling (StripeProvider.status_of) stays the fallback, so a missed event
only delays what the ledger shows. Flow for one delivery:

    event = verify(raw_body, stripe_signature_header, secret)    # WebhookRejected -> 400
    update = update_for(event)                                     # pure: a PaymentUpdate
    note = apply(update, now)                                      # given by the caller

This adapter never opens the ledger: `apply` is handed in by its caller (`main.py
webhook-server` passes slotguard.payments.webhook_updates.apply_update bound to the ledger),
which records the event id in the same transaction as the change, so a crash can only make
Stripe deliver again (it retries non-2xx for days), never apply an event twice.

The same server can also receive Google Calendar push notifications on `/google/push`:
`serve(..., push=handler)` with a handler taking the notification's headers (names in lower
case) and returning (status, text); `main.py webhook-server --deployment FILE` passes
slotguard.run.push.make_push_handler. The route has the Stripe route's limits (body size,
time for the whole request, connections at once). Google's notifications have no body.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from integration.stripe_customers import shown_terms
from slotguard.domain.interfaces import PaymentUpdate
from slotguard.domain.money import Money

log = logging.getLogger("slotguard.stripe.webhooks")

TOLERANCE_SECONDS = 300
HANDLED = (
    "checkout.session.completed",
    "setup_intent.succeeded",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
    "charge.dispute.created",
)


class WebhookRejected(Exception):
    """The delivery is not a genuine, fresh Stripe event; answer 400 and change nothing."""


def verify(payload: bytes, signature_header: str, secret: str, *, now: float | None = None, tolerance: int = TOLERANCE_SECONDS) -> dict[str, Any]:
    """Check Stripe-Signature against the raw body and return the parsed event.

    Given the exact bytes received, the header ("t=...,v1=...[,v1=...]") and the endpoint's
    signing secret. Raises WebhookRejected when no v1 signature matches, the timestamp is
    more than `tolerance` seconds away from `now`, or the body is not a JSON event.
    """
    timestamp, signatures = None, []
    for part in (signature_header or "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookRejected("missing or malformed Stripe-Signature header")
    expected = hmac.new(secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise WebhookRejected("signature does not match the body (wrong secret, or the body was changed)")
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise WebhookRejected(f"timestamp is more than {tolerance} s away from now (replayed or clock skew)")
    try:
        event = json.loads(payload)
    except ValueError:
        raise WebhookRejected("body is not JSON") from None
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise WebhookRejected("body is not a Stripe event")
    return event


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for `payload` (what Stripe sends; used by tests and tools)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _money(minor: Any, currency: Any) -> Money | None:
    if isinstance(minor, int) and isinstance(currency, str) and currency:
        return Money(minor, currency.upper())
    return None


def update_for(event: dict[str, Any]) -> PaymentUpdate:
    """Map a verified event to a PaymentUpdate. Pure; never raises for unknown types."""
    kind = event["type"]
    obj = (event.get("data") or {}).get("object") or {}
    tags = obj.get("metadata") or {}
    base = {"event_id": event["id"], "event_type": kind, "action_id": tags.get("slotguard_action_id", ""),
            "client_email": tags.get("slotguard_client", "")}
    if kind == "checkout.session.completed":
        if obj.get("mode") == "setup":
            # Stripe's Session has no completion time of its own: the event is made when it completes.
            created = event.get("created")
            at = datetime.fromtimestamp(created, UTC) if isinstance(created, int) and created > 0 else None
            return PaymentUpdate(change="card_saved", card_terms=shown_terms(obj), reference=str(obj.get("id") or ""), at=at, **base)
        if obj.get("payment_status") in ("paid", "no_payment_required") or obj.get("status") == "complete":
            return PaymentUpdate(change="paid", payment_intent=obj.get("payment_intent") or "",
                                amount=_money(obj.get("amount_total"), obj.get("currency")), **base)
    elif kind == "setup_intent.succeeded":
        return PaymentUpdate(change="card_saved", **base)
    elif kind == "payment_intent.succeeded":
        amount = obj.get("amount_received", obj.get("amount"))
        return PaymentUpdate(change="paid", payment_intent=obj.get("id", ""), amount=_money(amount, obj.get("currency")), **base)
    elif kind == "payment_intent.payment_failed":
        error = obj.get("last_payment_error") or {}
        return PaymentUpdate(change="payment_failed", payment_intent=obj.get("id", ""),
                            detail=error.get("decline_code") or error.get("code") or "payment_failed", **base)
    elif kind == "charge.refunded":
        return PaymentUpdate(change="refunded", payment_intent=obj.get("payment_intent") or "",
                            amount=_money(obj.get("amount_refunded"), obj.get("currency")), **base)
    elif kind == "charge.dispute.created":
        return PaymentUpdate(change="disputed", payment_intent=obj.get("payment_intent") or "",
                            amount=_money(obj.get("amount"), obj.get("currency")), detail=obj.get("reason") or "", **base)
    return PaymentUpdate(change="ignored", **base)


# What the caller does with an update: (update, now) -> a note of what changed ("" for
# nothing, "duplicate" for an event already applied).
Apply = Callable[[PaymentUpdate, datetime], str]


def make_handler(apply: Apply, secret: str, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Callable[[bytes, str], tuple[int, str]]:
    """A function (raw body, Stripe-Signature) -> (HTTP status, text) for any HTTP server:
    400 for rejected deliveries, 200 when applied or a duplicate, 500 (Stripe retries) when
    `apply` fails."""

    def handle(body: bytes, signature: str) -> tuple[int, str]:
        try:
            event = verify(body, signature, secret)
        except WebhookRejected as error:
            log.warning("stripe.webhook_rejected reason=%r", str(error))
            return 400, str(error)
        try:
            return 200, apply(update_for(event), clock()) or "ok"
        except Exception as error:  # noqa: BLE001 - answer 500 so that Stripe delivers again
            log.exception("stripe.webhook_failed event=%s", event.get("id"))
            return 500, f"could not apply: {type(error).__name__}"

    return handle


# Google push: the notification's headers (lower-case names) -> (HTTP status, text)
PushHandler = Callable[[Mapping[str, str]], tuple[int, str]]
PUSH_PATH = "/google/push"

MAX_BODY_BYTES = 1024 * 1024  # Stripe's events are a few KB; nothing larger is read
REQUEST_TIMEOUT_SECONDS = 10.0  # for a whole request: headers and body
MAX_CONNECTIONS = 32  # connections handled at once; more are answered 503 and closed


class _DeadlineReader(io.RawIOBase):
    """The reading side of a connection that gives up at `deadline` (time.monotonic()).

    A socket timeout alone applies to each read, so a client sending a byte every few
    seconds could hold its thread for days; here every read may wait only for what is left
    of the request's time, then raises TimeoutError."""

    def __init__(self, connection: socket.socket, deadline: float):
        self._connection = connection
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request took longer than its time")
        self._connection.settimeout(left)
        return self._connection.recv_into(buffer)


class WebhookServer(ThreadingHTTPServer):
    """One thread per connection, so a slow or silent client never holds up another
    delivery; at most `max_connections` at once (a flood of idle connections cannot use up
    threads: the rest are answered 503, which Stripe retries); the threads do not keep the
    process alive on shutdown."""

    daemon_threads = True
    max_connections = MAX_CONNECTIONS

    def server_activate(self) -> None:
        self._slots = threading.BoundedSemaphore(self.max_connections)
        super().server_activate()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning("stripe.webhook_rejected reason=%r", f"more than {self.max_connections} connections at once")
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def serve(
    apply: Apply | None, secret: str, port: int, host: str = "127.0.0.1", path: str = "/stripe/webhook",
    *, timeout: float = REQUEST_TIMEOUT_SECONDS, max_body: int = MAX_BODY_BYTES, max_connections: int = MAX_CONNECTIONS,
    push: PushHandler | None = None, push_path: str = PUSH_PATH,
) -> WebhookServer:
    """An HTTP server for `main.py webhook-server`. Call serve_forever() on it; put TLS in
    front (a reverse proxy).

    Each connection has its own thread, at most `max_connections` at once (more are answered
    503 and closed), and `timeout` seconds for the whole request, headers and body: a client
    that sends nothing, or trickles its request a byte at a time, is dropped when that time is
    up and blocks no one meanwhile. A body is read only with a Content-Length of at most
    `max_body` bytes: larger is refused with 413 before anything is read, none with 411, an
    unreadable one with 400. `apply` records an update (see make_handler); the handler threads
    call it one at a time (the ledger behind it is one SQLite connection).

    With `push`, Google push notifications are received on `push_path` under the same limits;
    the push handler is called from several threads at once (it opens its own connection per
    notification). With `apply` None only push is served (Stripe's path answers 404)."""
    handle = make_handler(apply, secret) if apply is not None else None
    one_at_a_time = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def setup(self) -> None:
            super().setup()
            # Reads share one deadline for the whole request (see _DeadlineReader).
            self.rfile = io.BufferedReader(_DeadlineReader(self.connection, time.monotonic() + timeout))

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return None

        def reply(self, status: int, text: str) -> None:
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True

        def do_POST(self) -> None:
            route = self.path.split("?")[0]
            if not ((route == path and handle is not None) or (route == push_path and push is not None)):
                return self.reply(404, "not found")
            declared = self.headers.get("Content-Length")
            if declared is None and route == push_path:
                declared = "0"  # a request with neither Content-Length nor chunks has no body (RFC 9112)
            if declared is None:
                return self.reply(411, "Content-Length required")
            if not declared.strip().isdigit():
                log.warning("stripe.webhook_rejected reason=%r", "bad Content-Length")
                return self.reply(400, "Content-Length is not a number")
            length = int(declared.strip())
            if length > max_body:
                log.warning("stripe.webhook_rejected reason=%r length=%d", "body too large", length)
                return self.reply(413, f"body larger than {max_body} bytes")
            try:
                body = self.rfile.read(length)
            except (TimeoutError, OSError):
                log.warning("stripe.webhook_rejected reason=%r", f"no complete request within {timeout:g} s")
                self.close_connection = True
                return None
            if len(body) != length:
                return self.reply(400, "body shorter than its Content-Length")
            if route == push_path and push is not None:
                return self.reply(*push({name.lower(): value for name, value in self.headers.items()}))
            assert handle is not None  # the route check above
            with one_at_a_time:
                status, text = handle(body, self.headers.get("Stripe-Signature", ""))
            return self.reply(status, text)

    Handler.timeout = timeout  # StreamRequestHandler.setup() sets it on the socket (writes); one class per server
    server_class = type("LimitedWebhookServer", (WebhookServer,), {"max_connections": max_connections})
    return server_class((host, port), Handler)
