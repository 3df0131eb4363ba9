"""Stripe webhooks: verify, de-duplicate, and turn events into ledger updates.

Off by default; polling (StripeProvider.status_of) stays the fallback, so a missed event
only delays what the ledger shows. Flow for one delivery:

    event = verify(raw_body, stripe_signature_header, secret)    # WebhookRejected -> 400
    update = update_for(event)                                     # pure: what should change
    note = apply_update(ledger, update, now)                       # one transaction, deduped

The event id is recorded in the same ledger transaction as the change, so a crash can only
make Stripe deliver again (it retries non-2xx for days), never apply an event twice.
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
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from slotguard.store.ledger import Ledger
from slotguard.domain.model import Action, ActionKind
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


@dataclass(frozen=True)
class LedgerUpdate:
    """What an event means for the ledger.

    change: "paid" (a fee or deposit was paid or authorised), "payment_failed", "card_saved",
    "refunded", "disputed" or "ignored". `action_id` comes from our metadata tag; refunds
    and disputes are matched by `payment_intent` instead.
    """

    event_id: str
    event_type: str
    change: str
    action_id: str = ""
    payment_intent: str = ""
    amount: Money | None = None
    client_email: str = ""
    detail: str = ""


def _money(minor: Any, currency: Any) -> Money | None:
    if isinstance(minor, int) and isinstance(currency, str) and currency:
        return Money(minor, currency.upper())
    return None


def update_for(event: dict[str, Any]) -> LedgerUpdate:
    """Map a verified event to a LedgerUpdate. Pure; never raises for unknown types."""
    kind = event["type"]
    obj = (event.get("data") or {}).get("object") or {}
    tags = obj.get("metadata") or {}
    base = {"event_id": event["id"], "event_type": kind, "action_id": tags.get("slotguard_action_id", ""),
            "client_email": tags.get("slotguard_client", "")}
    if kind == "checkout.session.completed":
        if obj.get("mode") == "setup":
            return LedgerUpdate(change="card_saved", **base)
        if obj.get("payment_status") in ("paid", "no_payment_required") or obj.get("status") == "complete":
            return LedgerUpdate(change="paid", payment_intent=obj.get("payment_intent") or "",
                                amount=_money(obj.get("amount_total"), obj.get("currency")), **base)
    elif kind == "setup_intent.succeeded":
        return LedgerUpdate(change="card_saved", **base)
    elif kind == "payment_intent.succeeded":
        amount = obj.get("amount_received", obj.get("amount"))
        return LedgerUpdate(change="paid", payment_intent=obj.get("id", ""), amount=_money(amount, obj.get("currency")), **base)
    elif kind == "payment_intent.payment_failed":
        error = obj.get("last_payment_error") or {}
        return LedgerUpdate(change="payment_failed", payment_intent=obj.get("id", ""),
                            detail=error.get("decline_code") or error.get("code") or "payment_failed", **base)
    elif kind == "charge.refunded":
        return LedgerUpdate(change="refunded", payment_intent=obj.get("payment_intent") or "",
                            amount=_money(obj.get("amount_refunded"), obj.get("currency")), **base)
    elif kind == "charge.dispute.created":
        return LedgerUpdate(change="disputed", payment_intent=obj.get("payment_intent") or "",
                            amount=_money(obj.get("amount"), obj.get("currency")), detail=obj.get("reason") or "", **base)
    return LedgerUpdate(change="ignored", **base)


def _action_for(ledger: Ledger, update: LedgerUpdate) -> Action | None:
    if update.action_id:
        action = ledger.action(update.action_id)
        if action is not None:
            return action
    if update.payment_intent:
        kinds = [ActionKind.CHARGE, ActionKind.HOLD]
        for action in ledger.actions(kinds=kinds, client_email=update.client_email or None):
            if action.external_id == update.payment_intent:
                return action
    return None


def apply_update(ledger: Ledger, update: LedgerUpdate, now: datetime) -> str:
    """Apply `update` once: returns a note of what changed ("" for nothing, "duplicate" for an
    event already applied). The event id is recorded in the same transaction, and so is the
    request to rewrite the event's status note when the fee's payment status changed."""
    marker = f"stripe_event:{update.event_id}"
    with ledger.transaction():
        if ledger.meta(marker) is not None:
            return "duplicate"
        ledger.set_meta(marker, now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        action = _action_for(ledger, update) if update.change not in ("ignored", "card_saved") else None
        status_before = action.context.get("payment_status") if action is not None else None
        note = ""
        if update.change == "card_saved":
            note = f"{update.client_email or 'a client'} saved a card"
        elif action is None:
            note = "" if update.change == "ignored" else f"{update.event_type} for a payment Slotguard does not know ({update.payment_intent})"
        elif update.change == "paid" and action.context.get("payment_status") != "paid":
            action.context["payment_status"] = "paid"
            action.context.pop("provider_detail", None)
            if update.payment_intent:
                action.external_id = update.payment_intent  # the PaymentIntent that holds the money
            note = f"paid through Stripe ({update.event_type})"
        elif update.change == "payment_failed" and action.context.get("payment_status") != "paid":
            # A late failure of an earlier attempt never undoes a payment.
            action.context["payment_status"] = "unpaid"
            action.context["provider_detail"] = update.detail
            note = f"payment failed: {update.detail}"
        elif update.change == "refunded":
            action.context["stripe_refunded_minor"] = update.amount.minor if update.amount else 0
            note = f"Stripe reports {update.amount} refunded in total"
        elif update.change == "disputed":
            action.context["disputed"] = update.detail or "dispute"
            note = f"the client disputed {update.amount} with their bank ({update.detail}); answer it in the Stripe dashboard"
        if action is not None and note:
            ledger.update_action(action, now, note)
            if action.event_id and action.context.get("payment_status") != status_before:
                # The event's status note says whether the fee is paid: the daemon's next tick
                # rewrites it (slotguard/practitioner/write_back.py), as after `waive` or `mark-paid`.
                ledger.queue_write_back(action.calendar_id, action.event_id, now)
        log.info("stripe.webhook event=%s type=%s action=%s change=%s", update.event_id, update.event_type,
                 action.id if action else "", update.change)
        return note


def make_handler(ledger: Ledger, secret: str, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> Callable[[bytes, str], tuple[int, str]]:
    """A function (raw body, Stripe-Signature) -> (HTTP status, text) for any HTTP server:
    400 for rejected deliveries, 200 when applied or a duplicate, 500 (Stripe retries) when
    the ledger fails."""

    def handle(body: bytes, signature: str) -> tuple[int, str]:
        try:
            event = verify(body, signature, secret)
        except WebhookRejected as error:
            log.warning("stripe.webhook_rejected reason=%r", str(error))
            return 400, str(error)
        try:
            return 200, apply_update(ledger, update_for(event), clock()) or "ok"
        except Exception as error:  # noqa: BLE001 - answer 500 so that Stripe delivers again
            log.exception("stripe.webhook_failed event=%s", event.get("id"))
            return 500, f"could not apply: {type(error).__name__}"

    return handle


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
    ledger: Ledger, secret: str, port: int, host: str = "127.0.0.1", path: str = "/stripe/webhook",
    *, timeout: float = REQUEST_TIMEOUT_SECONDS, max_body: int = MAX_BODY_BYTES, max_connections: int = MAX_CONNECTIONS,
) -> WebhookServer:
    """An HTTP server for `main.py webhook-server`. Call serve_forever() on it; put TLS in
    front (a reverse proxy).

    Each connection has its own thread, at most `max_connections` at once (more are answered
    503 and closed), and `timeout` seconds for the whole request, headers and body: a client
    that sends nothing, or trickles its request a byte at a time, is dropped when that time is
    up and blocks no one meanwhile. A body is read only with a Content-Length of at most
    `max_body` bytes: larger is refused with 413 before anything is read, none with 411, an
    unreadable one with 400. The ledger is one SQLite connection: the handler threads use it
    one at a time."""
    handle = make_handler(ledger, secret)
    one_at_a_time = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def setup(self) -> None:
            self.timeout = timeout  # StreamRequestHandler.setup() sets it on the socket (writes)
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
            if self.path.split("?")[0] != path:
                return self.reply(404, "not found")
            declared = self.headers.get("Content-Length")
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
            with one_at_a_time:
                status, text = handle(body, self.headers.get("Stripe-Signature", ""))
            return self.reply(status, text)

    server_class = type("LimitedWebhookServer", (WebhookServer,), {"max_connections": max_connections})
    return server_class((host, port), Handler)
