"""The operations endpoints of a worker (or of `main.py run --metrics-listen ADDR`):

- `/metrics`: this process's Prometheus metrics (slotguard/run/metrics.py);
- `/healthz`: 200 while the process's loop turns, 503 once it has not turned for
  `[metrics] stuck_after` (a tick stuck on a call that never returns); restart it;
- `/readyz`: 200 when the ledger's database answers and the process has loaded its
  practices, else 503; take it out of rotation, it may come back by itself.

A 503 carries one line saying why. A small standard-library HTTP server on its own
daemon threads, so a busy or stuck loop never keeps it from answering. It answers on
`[metrics] listen` of the deployment file; "" serves nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from slotguard.config.deployment import Deployment
from slotguard.config.schema import ConfigError
from slotguard.run import metrics
from slotguard.store.pg import is_postgres, one_line, shown_url

log = logging.getLogger("slotguard.ops")
LISTEN_VARIABLE = "SLOTGUARD_METRICS_LISTEN"
DATABASE_TIMEOUT_SECONDS = 2  # libpq's smallest connect_timeout; a probe must answer well within the prober's


class Health:
    """What the loop tells the endpoints: `turn()` at every turn of the loop, `loaded()`
    once the practices are loaded (`not_loaded(why)` when they are not any more).
    `database` answers "" when the ledger's database answers, else why not."""

    def __init__(self, stuck_after: timedelta, database: Callable[[], str], clock: Callable[[], float] = time.monotonic):
        self.stuck_after = stuck_after.total_seconds()
        self.database = database
        self.clock = clock
        self.on_scrape: list[Callable[[], None]] = []  # e.g. reading the work queue's depth, before /metrics answers
        self._last_turn = clock()  # start-up counts as a turn: the first tick may take a while
        self._not_loaded = "the practices are not loaded yet"

    def turn(self) -> None:
        self._last_turn = self.clock()

    def loaded(self) -> None:
        self._not_loaded = ""

    def not_loaded(self, why: str) -> None:
        self._not_loaded = why

    def alive(self) -> str:
        """"" while the loop turned within `stuck_after`, else why the process looks stuck."""
        quiet = self.clock() - self._last_turn
        if quiet > self.stuck_after:
            return f"the loop has not turned for {quiet:.0f}s (limit {self.stuck_after:.0f}s): a tick is stuck; restart the process"
        return ""

    def ready(self) -> str:
        """"" when the process can do its work, else why not."""
        return self._not_loaded or self.database()


def database_check(location: str) -> Callable[[], str]:
    """A check of the ledger at `location` (a postgresql:// URL or a SQLite path): it
    answers "" when the database answers a query, else one line saying which and why."""
    if is_postgres(location):
        def postgres() -> str:
            try:
                with psycopg.connect(location, connect_timeout=DATABASE_TIMEOUT_SECONDS, application_name="slotguard-readyz") as conn:
                    conn.execute("SELECT 1")
            except psycopg.Error as error:
                return f"the database {shown_url(location)} does not answer: {one_line(error)}"
            return ""
        return postgres

    def sqlite() -> str:
        if location != ":memory:" and not Path(location).exists():
            return f"the ledger {location} does not exist yet"
        try:
            uri = ":memory:" if location == ":memory:" else Path(location).resolve().as_uri() + "?mode=ro"
            with sqlite3.connect(uri, uri=True, timeout=DATABASE_TIMEOUT_SECONDS) as conn:
                conn.execute("SELECT 1").fetchone()
        except sqlite3.Error as error:
            return f"the ledger {location} does not answer: {one_line(error)}"
        return ""
    return sqlite


def parse_listen(listen: str) -> tuple[str, int]:
    """("host", port) from "host:port", "[::1]:port" or ":port" (every address). Raises
    ValueError for anything else."""
    host, colon, port = listen.rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise ValueError(f'metrics listen address {listen!r} is not "host:port" (e.g. "127.0.0.1:9108")')
    return host.strip("[]"), int(port)


class OpsServer:
    """The endpoints, served on daemon threads until `stop()`."""

    def __init__(self, listen: str, health: Health):
        host, port = parse_listen(listen)
        server_class = type("Server", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6 if ":" in host else socket.AF_INET,
                                                               "daemon_threads": True})
        self.health = health
        self.server = server_class((host, port), _handler(health))
        self.address = self.server.server_address[:2]
        self.thread = threading.Thread(target=self.server.serve_forever, name="slotguard-ops", daemon=True)
        self.thread.start()
        log.info("ops_server listen=%s:%d endpoints=/metrics,/healthz,/readyz", *self.address)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{f'[{host}]' if ':' in host else host}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _handler(health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                for hook in health.on_scrape:
                    try:
                        hook()
                    except Exception as error:  # noqa: BLE001 - a failed reading never hides the other metrics
                        log.warning("scrape_hook_failed error_type=%s error=%s", type(error).__name__, one_line(error))
                self._answer(200, generate_latest(metrics.current().registry), CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/readyz"):
                try:
                    why = health.alive() if path == "/healthz" else health.ready()
                except Exception as error:  # noqa: BLE001 - a check that breaks is an answer too
                    why = f"the check failed: {type(error).__name__}: {one_line(error)}"
                self._answer(503 if why else 200, ((why or "ok") + "\n").encode(), "text/plain; charset=utf-8")
            else:
                self._answer(404, b"not found: /metrics, /healthz and /readyz are served here\n", "text/plain; charset=utf-8")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
            log.debug("ops_request %s", format % args)

    return Handler


def deployment_health(settings: Deployment) -> Health:
    """The health of a worker of the deployment `settings`: stuck after `[metrics]
    stuck_after`, ready when the deployment's PostgreSQL server answers."""
    return Health(settings.metrics.stuck_after, database_check(settings.storage.url))


def start_ops_server(settings: Deployment, health: Health, listen: str | None = None) -> OpsServer | None:
    """For `main.py worker`: start this process's metrics afresh (`[metrics] per_practice`)
    and serve the endpoints on `listen`, else $SLOTGUARD_METRICS_LISTEN (several workers on
    one machine each need a port: deploy/systemd/slotguard-worker@.service), else
    `[metrics] listen`; None when that is "". Raises ConfigError when the address is not
    host:port or cannot be listened on (in use, not this machine's)."""
    metrics.configure(per_practice=settings.metrics.per_practice)
    if listen is None:
        listen = os.environ.get(LISTEN_VARIABLE, settings.metrics.listen)
    if not listen:
        return None
    return serve(listen, health, "metrics.listen")


def serve(listen: str, health: Health, where: str) -> OpsServer:
    """The endpoints served on `listen`. Raises ConfigError naming `where` (the setting or
    option that gave the address) when it is not host:port or cannot be listened on."""
    try:
        return OpsServer(listen, health)
    except ValueError as error:
        raise ConfigError([f"{where}: {error}"]) from None
    except OSError as error:
        raise ConfigError([f"{where}: cannot listen on {listen}: {error.strerror or error}; choose another address or port"]) from None
