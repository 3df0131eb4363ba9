"""A small HTTP proxy in front of a CalDAV server (Radicale) that records and injects faults.

Like tests/support/stripe_proxy.py for localstripe: every request is recorded (method,
path, whether it carried credentials, bytes) and forwarded, unless a `Fault` matches it:

- "error": answer `status` (default 503) without forwarding;
- "timeout": hold the connection `delay` seconds, answer nothing, drop it;
- "before": call `action()` and then forward (a concurrent edit made between the
  adapter's read and its write: the write then meets the new ETag);
- "rewrite": forward, then pass the answer body through `rewrite(bytes) -> bytes` (a
  server without sync-collection: its name taken out of supported-report-set).

Runs in a thread (ThreadingHTTPServer) on a free loopback port; `stop()` shuts it down.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Fault:
    kind: str
    method: str = "*"
    path: str = r".*"
    times: int = 1
    status: int = 503
    delay: float = 0.0
    action: Callable[[], None] | None = None
    rewrite: Callable[[bytes], bytes] | None = None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times != -1 and self.hits >= self.times:
            return False
        return self.method in ("*", method) and re.fullmatch(self.path, path) is not None


@dataclass
class Seen:
    method: str
    path: str
    authorized: bool
    status: int = 0
    sent: int = 0
    received: int = 0


class DavProxy:
    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self.host, self.port_upstream = parts.hostname or "127.0.0.1", parts.port or 80
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> DavProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
                return

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                record = Seen(self.command, self.path, "authorization" in {k.lower() for k in self.headers}, sent=len(body))
                proxy.seen.append(record)
                fault = next((f for f in proxy.faults if f.matches(self.command, self.path)), None)
                if fault is not None:
                    fault.hits += 1
                    if fault.kind == "error":
                        self._answer(record, fault.status, {"Content-Type": "text/plain"}, b"injected fault")
                        return
                    if fault.kind == "timeout":
                        time.sleep(fault.delay)
                        self.close_connection = True
                        return
                    if fault.kind == "before" and fault.action is not None:
                        fault.action()
                connection = http.client.HTTPConnection(proxy.host, proxy.port_upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")}
                connection.request(self.command, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                content = response.read()
                if fault is not None and fault.kind == "rewrite" and fault.rewrite is not None:
                    content = fault.rewrite(content)
                answer_headers = {k: v for k, v in response.getheaders() if k.lower() not in ("transfer-encoding", "connection", "content-length")}
                connection.close()
                self._answer(record, response.status, answer_headers, content)

            def _answer(self, record: Seen, status: int, headers: dict[str, str], content: bytes) -> None:
                record.status, record.received = status, len(content)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_PUT = do_DELETE = do_PROPFIND = do_REPORT = do_MKCALENDAR = do_OPTIONS = _any  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def count(self) -> int:
        return len(self.seen)
