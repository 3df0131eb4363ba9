"""One Slotguard at a time on a PostgreSQL ledger: a session advisory lock per schema.

The SQLite ledger is guarded by file locks (slotguard/store/daemon_lock.py). On PostgreSQL the
same promise (only the holder carries out actions or puts back actions left `executing`) is a
session-level advisory lock keyed by the ledger's schema, held on a connection of its own for
as long as the holder works: `main.py run` holds it for its whole life, a worker while it runs
one practice's tick. When the holder's process dies, however it dies, its connection closes
and PostgreSQL releases the lock at once; a worker that is slow but alive keeps it, so a
second worker never runs the same practice beside it.

The server also frees the lock when the connection is cut under a live holder (a server
restart, pg_terminate_backend, a NAT dropping an idle flow): the connection therefore sends
TCP keepalives and turns idle_session_timeout off, and the holder asks `held()` before each
action (daemon_lock.fence_held, the engine's stop_requested), stopping once it is lost.
"""

from __future__ import annotations

import hashlib

import psycopg

from slotguard.store.pg import checked_schema, connect

# The lock's connection sits idle while its holder works: keepalives keep a NAT or firewall
# from dropping it silently, and let a dead peer be noticed within about a minute.
KEEPALIVES_IDLE, KEEPALIVES_INTERVAL, KEEPALIVES_COUNT = 30, 10, 3  # seconds, seconds, probes


def lock_key(schema: str) -> int:
    """The advisory lock key of a ledger schema: a signed 64-bit number from its name
    (stable across processes and machines, unlike Python's hash)."""
    digest = hashlib.blake2b(f"slotguard-ledger:{checked_schema(schema)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class SchemaLock:
    """The lock on one ledger schema, on its own connection to the server at `url`.

    `try_acquire()` returns False when another session holds it; `holder()` names that
    session's process (application name, pid, client address) for the message;
    `held()` says whether it is still held (its connection alive); `release()` lets it go
    and closes the connection."""

    def __init__(self, url: str, schema: str):
        self.url = url
        self.schema = schema
        self.key = lock_key(schema)
        self._conn: psycopg.Connection | None = None
        self._lost = False

    @property
    def pid(self) -> int | None:
        """The server process of the lock's connection (None when not held)."""
        return self._conn.info.backend_pid if self._conn is not None else None

    def try_acquire(self) -> bool:
        if self._conn is not None:
            return True
        conn = connect(self.url, keepalives=1, keepalives_idle=KEEPALIVES_IDLE, keepalives_interval=KEEPALIVES_INTERVAL,
                       keepalives_count=KEEPALIVES_COUNT)
        try:
            conn.execute("SET idle_session_timeout = 0")  # PostgreSQL 14 on: an idle holder is never cut
        except psycopg.Error:
            pass  # an older server has no such timeout
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        if got and got[0]:
            self._conn = conn
            self._lost = False
            return True
        conn.close()
        return False

    def holder(self) -> str:
        """Who holds the lock, as far as the server knows ("unknown" when it cannot tell)."""
        try:
            with connect(self.url) as conn:
                row = conn.execute(
                    "SELECT a.pid, a.application_name, a.client_addr FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND ((l.classid::bigint << 32) | l.objid::bigint) = (%s::bigint & x'FFFFFFFFFFFFFFFF'::bigint) LIMIT 1",
                    (self.key,),
                ).fetchone()
        except Exception:  # noqa: BLE001 - only for a message
            return "unknown"
        if not row:
            return "unknown"
        return f"server pid {row[0]} ({row[1] or 'unnamed'}{', from ' + str(row[2]) if row[2] else ''})"

    def held(self) -> bool:
        """True while this object holds the lock and its connection is alive: one `SELECT 1`
        on that connection. Never raises; once the connection is found gone it stays False
        (the server freed the lock: only a new try_acquire may take it again)."""
        if self._conn is None or self._lost or self._conn.closed:
            return False
        try:
            self._conn.execute("SELECT 1")
        except Exception:  # noqa: BLE001 - any failure means the lock cannot be counted on
            self._lost = True
            return False
        return True

    def release(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        except psycopg.Error:
            pass  # the connection is gone, and the lock with it
        finally:
            self._conn.close()
            self._conn = None
