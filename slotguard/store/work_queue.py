"""The work queue the workers of a deployment share: one row per practice, in PostgreSQL.

A row says when the practice's next tick is due (`due_at`) and who holds it now: a worker
claims the earliest due practice nobody holds (or whose holder's lease ran out) with
`FOR UPDATE SKIP LOCKED`, so two workers claiming at once get different practices and never
wait on each other; it renews the lease while the tick runs and releases the row with the
next due time when done. A worker that dies stops renewing: after `lease` another one takes
the practice over (and its engine's `recover` finishes what the dead one left executing).

The lease only says who should work on a practice; the fence that two workers never run one
practice's tick at once is the practice's advisory lock (slotguard/store/pg_lock.py), which a
worker takes after claiming.

A tick that fails is recorded on the row (`last_error`, `consecutive_failures`) and the
practice is tried again after a wait that doubles with each failure, capped: a broken
practice costs the others nothing. `wake` makes a practice due now (a push notification,
a command); a wake that arrives while the practice is being ticked is kept: the release
makes it due again at once instead of at its next time. Either way a woken practice is due no
sooner than WAKE_FLOOR after its last tick ended: a push is still seen within seconds, but a
storm of (replayed) notifications cannot tick one practice back to back.

When a practice is due (`due_at`, `last_tick_at`) is on the caller's clock (`now`), so that a
test or a bench may run the whole deployment on a pretend clock (`worker --now`). Leases
(`lease_until`, `leased_at`, their renewal and expiry) are on the server's clock
(`clock_timestamp()`), one clock for every worker: a machine whose clock runs fast cannot
take a live lease. The tables live in the schema `schema` (default slotguard_cluster),
created by `ensure_tables`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from slotguard.store.pg import checked_schema, create_shared_tables

CLUSTER_SCHEMA = "slotguard_cluster"
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(minutes=30)
ERROR_CHARS = 1000  # the last error kept on the row, at most
# A wake makes a practice due no sooner than this after its last tick ended (instead of the
# worker's MIN_WAIT of 30 s): push latency stays low, a replay storm cannot spin a practice.
WAKE_FLOOR = timedelta(seconds=5)


@dataclass(frozen=True)
class Claim:
    """A practice a worker has claimed: until `lease_until` it is this worker's."""
    practice: str
    due_at: datetime
    lease_until: datetime
    wake_reason: str | None
    consecutive_failures: int
    last_error: str | None


@dataclass(frozen=True)
class QueueStats:
    """For metrics: practices due now and held by nobody, how long the longest-waiting of them
    has waited (seconds, 0 for none), how long the oldest lease has been held (seconds, 0 for
    none), and practices backing off after failures."""
    depth: int
    oldest_due_seconds: float
    lease_age_seconds: float
    failing: int


def _table(schema: str) -> str:
    return f'"{checked_schema(schema)}".work_queue'


def ensure_tables(conn: psycopg.Connection, schema: str = CLUSTER_SCHEMA) -> None:
    """Create the schema and the queue table when missing (safe to call from every worker at
    once)."""
    table = _table(schema)
    create_shared_tables(conn, schema, f"""
        CREATE TABLE IF NOT EXISTS {table} (
            practice text PRIMARY KEY,
            due_at timestamptz NOT NULL,
            lease_owner text,
            lease_until timestamptz,
            leased_at timestamptz,
            last_error text,
            consecutive_failures integer NOT NULL DEFAULT 0,
            wake_reason text,
            woken_at timestamptz,
            last_tick_at timestamptz
        )""", f"CREATE INDEX IF NOT EXISTS work_queue_due ON {table} (due_at)")


def sync_practices(conn: psycopg.Connection, ids: Iterable[str], now: datetime, schema: str = CLUSTER_SCHEMA) -> tuple[list[str], list[str]]:
    """Make the queue hold exactly the practices `ids`: a new one is added due `now`, one no
    longer there is removed (a worker holding it finds its release ignored). Returns (added,
    removed), each sorted."""
    table = _table(schema)
    wanted = sorted(set(ids))
    with conn.transaction():
        added = [row[0] for row in conn.execute(
            f"INSERT INTO {table} (practice, due_at) SELECT unnest(%s::text[]), %s ON CONFLICT (practice) DO NOTHING RETURNING practice",
            (wanted, now),
        )]
        removed = [row[0] for row in conn.execute(f"DELETE FROM {table} WHERE NOT (practice = ANY(%s::text[])) RETURNING practice", (wanted,))]
    return sorted(added), sorted(removed)


def claim(conn: psycopg.Connection, worker: str, lease: timedelta, now: datetime, schema: str = CLUSTER_SCHEMA) -> Claim | None:
    """Take the earliest practice due at `now` that nobody holds (or whose lease has run out
    by the server's clock) for `worker`, for `lease` from the server's clock; None when none is due. Rows other workers are claiming at
    this moment are skipped, not waited for."""
    table = _table(schema)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cursor:
        row = cursor.execute(
            f"""
            WITH next AS (
                SELECT practice FROM {table}
                WHERE due_at <= %(now)s AND (lease_until IS NULL OR lease_until <= clock_timestamp())
                ORDER BY due_at, practice
                LIMIT 1
                FOR UPDATE SKIP LOCKED
            )
            UPDATE {table} AS q SET lease_owner = %(worker)s, lease_until = clock_timestamp() + %(lease)s,
                leased_at = clock_timestamp(), woken_at = NULL
            FROM next WHERE q.practice = next.practice
            RETURNING q.practice, q.due_at, q.lease_until, q.wake_reason, q.consecutive_failures, q.last_error
            """,
            {"now": now, "worker": worker, "lease": lease},
        ).fetchone()
    return Claim(**row) if row else None


def renew(conn: psycopg.Connection, practice: str, worker: str, lease: timedelta, schema: str = CLUSTER_SCHEMA) -> bool:
    """Extend `worker`'s lease on `practice` to `lease` from now by the server's clock. False
    when the worker no longer holds it (the lease ran out and another worker took it, or the
    practice was removed)."""
    with conn.transaction():
        cursor = conn.execute(
            f"UPDATE {_table(schema)} SET lease_until = clock_timestamp() + %s WHERE practice = %s AND lease_owner = %s",
            (lease, practice, worker),
        )
        return cursor.rowcount == 1


def backoff(failures: int, cap: timedelta = BACKOFF_MAX) -> timedelta:
    """The wait after the `failures`-th failure in a row: 30s, 1m, 2m, ... at most `cap`."""
    if failures <= 0:
        return timedelta(0)
    return min(cap, BACKOFF_BASE * (2 ** min(failures - 1, 30)))


def release(conn: psycopg.Connection, practice: str, worker: str, next_due: datetime, error: str | None = None, *,
            backoff_max: timedelta = BACKOFF_MAX, now: datetime | None = None, busy: bool = False, schema: str = CLUSTER_SCHEMA) -> bool:
    """Give `practice` back, due at `next_due`. With `error` (the tick failed) the error is
    kept on the row and the practice is due after `next_due` plus the backoff of its failures
    in a row (backoff()); without, its failures are cleared. A wake that came while the
    worker held it makes it due at the wake's time instead (no later than `next_due`, no
    sooner than WAKE_FLOOR after `now`).
    `now` is when the tick ended (kept as last_tick_at; default: the clock). `busy`: the
    worker did not tick it (another process held its fence): due at `next_due`, its failures,
    last error, last tick and pending wake are kept as they were. Returns False when `worker`
    no longer held it (nothing is changed then)."""
    ended = now or datetime.now(UTC)
    with conn.transaction(), conn.cursor() as cursor:
        row = cursor.execute(
            f"SELECT consecutive_failures, woken_at FROM {_table(schema)} WHERE practice = %s AND lease_owner = %s FOR UPDATE",
            (practice, worker),
        ).fetchone()
        if row is None:
            return False
        if busy:
            cursor.execute(f"UPDATE {_table(schema)} SET due_at = %s, lease_owner = NULL, lease_until = NULL, leased_at = NULL WHERE practice = %s",
                           (next_due, practice))
            return True
        failures, woken_at = row
        failures = failures + 1 if error is not None else 0
        due = next_due + backoff(failures, backoff_max) if error is not None else next_due
        woken_during = woken_at is not None  # the claim cleared it: a wake came during the tick
        if woken_during and error is None:
            due = min(due, max(woken_at, ended + WAKE_FLOOR))
        cursor.execute(
            f"""UPDATE {_table(schema)} SET due_at = %s, lease_owner = NULL, lease_until = NULL, leased_at = NULL,
                last_error = %s, consecutive_failures = %s, last_tick_at = %s,
                wake_reason = CASE WHEN %s THEN wake_reason ELSE NULL END,
                woken_at = CASE WHEN %s THEN woken_at ELSE NULL END
                WHERE practice = %s""",
            (due, error[:ERROR_CHARS] if error is not None else None, failures, ended, woken_during and error is None,
             woken_during and error is None, practice),
        )
    return True


def wake(conn: psycopg.Connection, practice: str, reason: str, *, now: datetime | None = None, schema: str = CLUSTER_SCHEMA) -> None:
    """Make `practice` due now (`now`, default the database's clock), but no sooner than
    WAKE_FLOOR after its last tick ended, for `reason` (kept on the row until its next tick). A practice backing off after failures keeps its wait: a
    burst of pushes for a broken practice does not make it spin. An unknown practice is
    ignored (it is added when the workers next read the practices folder)."""
    with conn.transaction():
        conn.execute(
            f"""UPDATE {_table(schema)} SET wake_reason = %(reason)s, woken_at = coalesce(%(now)s, now()),
                due_at = CASE WHEN consecutive_failures = 0
                    THEN least(due_at, greatest(coalesce(%(now)s, now()), last_tick_at + %(floor)s)) ELSE due_at END
                WHERE practice = %(practice)s""",
            {"reason": reason[:200], "now": now, "practice": practice, "floor": WAKE_FLOOR},
        )


def stats(conn: psycopg.Connection, now: datetime, schema: str = CLUSTER_SCHEMA) -> QueueStats:
    """The queue's depth and due age at `now`, and its lease age by the server's clock
    (QueueStats), for metrics and the worker's log."""
    row = conn.execute(
        f"""SELECT count(*) FILTER (WHERE due_at <= %(now)s AND (lease_until IS NULL OR lease_until <= clock_timestamp())),
                   min(due_at) FILTER (WHERE due_at <= %(now)s AND (lease_until IS NULL OR lease_until <= clock_timestamp())),
                   extract(epoch FROM clock_timestamp() - min(leased_at) FILTER (WHERE lease_until > clock_timestamp())),
                   count(*) FILTER (WHERE consecutive_failures > 0)
            FROM {_table(schema)}""",
        {"now": now},
    ).fetchone()
    depth, oldest_due, lease_age, failing = row if row else (0, None, None, 0)
    return QueueStats(
        depth=depth,
        oldest_due_seconds=max(0.0, (now - oldest_due).total_seconds()) if oldest_due else 0.0,
        lease_age_seconds=max(0.0, float(lease_age)) if lease_age is not None else 0.0,
        failing=failing,
    )


def rows(conn: psycopg.Connection, schema: str = CLUSTER_SCHEMA) -> list[dict[str, Any]]:
    """Every row, by practice: for `main.py worker --queue` (what each practice waits for) and the tests."""
    with conn.cursor(row_factory=dict_row) as cursor:
        return list(cursor.execute(f"SELECT * FROM {_table(schema)} ORDER BY practice"))
