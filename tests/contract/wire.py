"""A loopback HTTP server that answers through a function and can be made to misbehave:
what the contract harnesses put between a calendar adapter and its server or wire fake.

`WireTap(answer)` serves every request with `answer(method, path_and_query, headers, body)
-> (status, headers, body)`; `forward_to(base_url)` makes an `answer` that passes requests on
to another loopback server (a wire fake, Radicale), so the adapter talks to the tap and the
tap to the server. `WireTap.forwarding(base_url)` is that, started, with the server's own
address in its answers (next-page and delta links, Location headers) rewritten to the tap's,
so that following them is counted too. Every request is recorded with its size both ways (`requests`), so a
harness counts requests and bytes the same way for every source.

Faults, until `heal()`: `fail("server_error")` answers 503; `fail("timeout")` holds the
request and then closes the connection without an answer (the adapter's own timeout fires
first); `fail("half_read")` answers with the real status and headers but only half the body,
then closes: a read cut off partway. `after=n` lets n requests through first (the first page
of a listing, then the fault). `before_next(method, path_contains, callback)` runs the
callback once, just before the next matching request is answered (a concurrent edit between
an adapter's read and its write).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

Answer = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]
FAULTS = ("server_error", "timeout", "half_read")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "host", "content-length"}


@dataclass
class Seen:
    """One request the tap received, and how it was answered."""

    method: str
    path: str
    status: int = 0  # 0: no answer (a timeout or a cut-off read)
    bytes_in: int = 0
    bytes_out: int = 0


def forward_to(base_url: str, timeout: float = 30.0, public_url: Callable[[], str] | None = None) -> Answer:
    """An `answer` passing each request on to the server at `base_url` (http, loopback).
    With `public_url` (the tap's own base URL), every `base_url` in an answer's headers and
    body is written as that URL instead, so that links the server hands out (a next page, a
    delta link, a Location) lead back through the tap and are counted too: see
    `WireTap.forwarding`."""
    parts = urlsplit(base_url)
    upstream = base_url.rstrip("/")

    def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
            connection.request(method, path, body=body or None, headers=sent)
            response = connection.getresponse()
            payload = response.read()
            kept = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP | {"date", "server"}}
            if public_url is not None:
                public = public_url().rstrip("/")
                payload = payload.replace(upstream.encode(), public.encode())
                kept = {k: v.replace(upstream, public) for k, v in kept.items()}
            return response.status, kept, payload
        finally:
            connection.close()

    return answer


class WireTap:
    """The tap's server; `start()` serves it on a free loopback port, `stop()` ends it."""

    def __init__(self, answer: Answer, *, stall: float = 3.0, error_body: bytes | None = None):
        self.answer = answer
        self.stall = stall  # seconds a "timeout" holds a request: longer than the adapter's timeout
        self.error_body = error_body or json.dumps({"error": {"code": 503, "message": "injected fault", "errors": [{"reason": "backendError"}]}}).encode()
        self.requests: list[Seen] = []
        self._fault: str | None = None
        self._let_through = 0
        self._hooks: list[tuple[str, str, Callable[[], None]]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @classmethod
    def forwarding(cls, base_url: str, *, stall: float = 3.0, error_body: bytes | None = None) -> WireTap:
        """A started tap in front of the server at `base_url`, rewriting the server's own
        address in its answers to the tap's (`forward_to` with `public_url`)."""
        tap = cls(lambda method, path, headers, body: (502, {}, b""), stall=stall, error_body=error_body)
        tap.answer = forward_to(base_url, public_url=lambda: tap.base_url)
        return tap.start()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> WireTap:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="wire-tap", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the tap first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # --- faults and hooks -----------------------------------------------------------------

    def fail(self, kind: str, *, after: int = 0) -> None:
        """Every request after the next `after` gets `kind` (one of FAULTS) until heal()."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULTS)}")
        with self._lock:
            self._fault, self._let_through = kind, after

    def heal(self) -> None:
        with self._lock:
            self._fault, self._let_through = None, 0

    def before_next(self, method: str, path_contains: str, callback: Callable[[], None]) -> None:
        with self._lock:
            self._hooks.append((method, path_contains, callback))

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def bytes_moved(self) -> int:
        with self._lock:
            return sum(seen.bytes_in + seen.bytes_out for seen in self.requests)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    # --- serving (server threads) -------------------------------------------------------------

    def _fault_now(self) -> str | None:
        with self._lock:
            if self._fault is None:
                return None
            if self._let_through > 0:
                self._let_through -= 1
                return None
            return self._fault

    def _hook_for(self, method: str, path: str) -> Callable[[], None] | None:
        with self._lock:
            for index, (hook_method, contains, callback) in enumerate(self._hooks):
                if hook_method == method and contains in path:
                    del self._hooks[index]
                    return callback
        return None


def _handler(tap: WireTap) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = dict(self.headers.items())
            seen = Seen(self.command, self.path, bytes_in=len(self.requestline) + 2 + len(str(self.headers)) + len(body))
            with tap._lock:
                tap.requests.append(seen)
            fault = tap._fault_now()
            if fault == "timeout":
                tap._stopping.wait(tap.stall)
                self.close_connection = True
                return
            if fault == "server_error":
                self._reply(seen, 503, {"Content-Type": "application/json; charset=UTF-8"}, tap.error_body)
                return
            hook = tap._hook_for(self.command, self.path)
            if hook is not None:
                hook()
            status, answer_headers, payload = tap.answer(self.command, self.path, headers, body)
            if fault == "half_read":
                self._reply(seen, status, answer_headers, payload, cut=True)
                return
            self._reply(seen, status, answer_headers, payload)

        def _reply(self, seen: Seen, status: int, headers: dict[str, str], payload: bytes, cut: bool = False) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            if cut:
                self.send_header("Connection", "close")
            head = sum(len(chunk) for chunk in getattr(self, "_headers_buffer", []))
            self.end_headers()
            sent = payload[: len(payload) // 2] if cut else payload
            self.wfile.write(sent)
            seen.status, seen.bytes_out = (0 if cut else status), head + 2 + len(sent)
            if cut:
                self.wfile.flush()
                self.close_connection = True

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_REPORT = do_PROPFIND = do_OPTIONS = do_HEAD = do_MKCALENDAR = _serve

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """True once `condition()` holds (polled), False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()
