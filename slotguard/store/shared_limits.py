"""Request limits shared by every worker of a deployment, kept in PostgreSQL.

Google allows a Cloud project so many Calendar requests a minute (all practices together) and
one account so many (one practice); Stripe allows an account 25 requests a second in test mode,
100 live. Workers on several machines must keep these together, so the state of each limit is
a row of `slotguard_cluster.rate_limits`, keyed by what it limits: `google:project`,
`google:user:<practice id>`, `stripe:<mode>:<digest of the key>` (the key itself is never
kept, logged or sent).

The promise is the one RateLimiter (integration/rate_limiter.py) keeps in one process: in no
window of the limit's length (plus `margin`) do more than `rate` requests start, counted over
every process and machine. How: starts are spaced evenly, one every (window + margin) / rate
seconds (a generic cell rate algorithm with no burst allowance; a burst allowance would let
nearly twice the rate into one window, and the exact alternative, a log of the last `rate`
starts, is 10,000 timestamps rewritten per request for Google's project quota). Each
request reserves the next free start time in ONE statement, which locks the key's row(s),
reads the server's clock (`clock_timestamp()`, so machines whose clocks disagree still agree)
after the lock is held, takes the later of now and the row's `next_start`, moves `next_start`
one spacing past it and returns how long to wait; the caller sleeps that long. A request
under several limits (Google: the project's and the account's) reserves one start on all of
its keys in the same statement, so no limit's start is used late because another one waited.

A reserved start is used a little after it is given (the answer's trip back, a sleep that
oversleeps); `margin` (default 50 ms) covers that, as in RateLimiter. A start reached later
than half the margin is left empty and the next free one taken (SharedGate.acquire).

When the database cannot be reached (or answers with an error, or takes longer than
`statement_timeout`), a gate does not stop work and does not let requests through unpaced:
it logs once (`shared_limits_offline`) and falls back to spacing starts in process alone, at
`fallback_share` of each limit (0.25: four workers on their own stay within it), tries the
database again every `retry_seconds`, and logs `shared_limits_back` when it answers.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from slotguard.config.deployment import Deployment, Limits
from slotguard.domain.interfaces import Gates, RateGate
from slotguard.store.pg import checked_schema, create_shared_tables, one_line, shown_url

CLUSTER_SCHEMA = "slotguard_cluster"
PROJECT_KEY = "google:project"
GOOGLE_WINDOW, STRIPE_WINDOW = 60.0, 1.0
RESERVE_TRIES = 3  # reservations one request may make when it reaches its start late

log = logging.getLogger("slotguard.limits")


def google_user_key(owner: str) -> str:
    """The key of one Google account's quota: the practice id (one practice, one account)."""
    return f"google:user:{owner}"


def stripe_key(secret: str, mode: str) -> str:
    """The key of a Stripe account's rate, from its secret key without keeping the key: a
    digest of it (two keys of one account, say a secret and a restricted one, count as two)."""
    digest = hashlib.sha256(b"slotguard stripe account\0" + secret.encode()).hexdigest()[:16]
    return f"stripe:{mode}:{digest}"


def ensure_tables(conn: psycopg.Connection, schema: str = CLUSTER_SCHEMA) -> None:
    """Create `schema` and its rate_limits table when missing (every worker calls this; an
    advisory lock keeps two first workers from racing on CREATE)."""
    name = sql.Identifier(checked_schema(schema))
    create_shared_tables(conn, schema, sql.SQL("""
        CREATE TABLE IF NOT EXISTS {}.rate_limits (
            key text PRIMARY KEY,
            rate integer NOT NULL,                -- at most this many starts ...
            window_seconds double precision NOT NULL,  -- ... in any window this long
            next_start timestamptz NOT NULL,      -- the earliest start the next request may have
            last_start timestamptz NOT NULL,      -- the start given last
            minute_at timestamptz NOT NULL,       -- the minute in_minute counts
            in_minute integer NOT NULL DEFAULT 0, -- starts given in that minute
            in_previous integer NOT NULL DEFAULT 0 -- and in the minute before it
        )""").format(name))


@dataclass(frozen=True)
class Limit:
    """At most `rate` request starts in any window of `window` seconds, under `key`."""

    key: str
    rate: int
    window: float


@dataclass(frozen=True)
class QuotaUse:
    """A key's requests in about the last minute and its limit per minute, for metrics."""

    key: str
    used: int
    limit: int


# One start on every key: lock the keys' rows (in key order: no deadlock), read the clock
# once the locks are held, start at the latest of now and their next_start, move each one
# spacing on. Returns one row per key found; the wait is the same in each.
_RESERVE = """
WITH wanted(key, spacing) AS (SELECT * FROM unnest(%(keys)s::text[], %(spacings)s::float8[])),
locked AS (SELECT l.key, l.next_start FROM {table} l WHERE l.key = ANY(%(keys)s) ORDER BY l.key FOR UPDATE),
chosen AS (SELECT greatest(clock_timestamp(), max(locked.next_start)) AS at FROM locked)
UPDATE {table} l SET
    last_start = chosen.at,
    next_start = chosen.at + wanted.spacing * interval '1 second',
    in_previous = CASE WHEN l.minute_at = date_trunc('minute', statement_timestamp()) THEN l.in_previous
                       WHEN l.minute_at = date_trunc('minute', statement_timestamp()) - interval '1 minute' THEN l.in_minute
                       ELSE 0 END,
    in_minute = CASE WHEN l.minute_at = date_trunc('minute', statement_timestamp()) THEN l.in_minute + 1 ELSE 1 END,
    minute_at = date_trunc('minute', statement_timestamp())
FROM chosen, wanted
WHERE l.key = wanted.key
RETURNING extract(epoch FROM chosen.at - clock_timestamp())::float8
"""
_DECLARE = """
INSERT INTO {table} (key, rate, window_seconds, next_start, last_start, minute_at)
SELECT k.key, k.rate, k.window_seconds, '-infinity', '-infinity', '-infinity'
FROM unnest(%(keys)s::text[], %(rates)s::int[], %(windows)s::float8[]) AS k(key, rate, window_seconds)
ON CONFLICT (key) DO UPDATE SET rate = EXCLUDED.rate, window_seconds = EXCLUDED.window_seconds
"""
# The minute counters as a sliding estimate of the last 60 s: this minute's count plus the
# part of the previous minute's still inside the last 60 s.
_USAGE = """
SELECT key, rate, window_seconds,
       CASE WHEN minute_at = date_trunc('minute', now())
                THEN in_minute + in_previous * (1 - extract(second FROM now()) / 60)
            WHEN minute_at = date_trunc('minute', now()) - interval '1 minute'
                THEN in_minute * (1 - extract(second FROM now()) / 60)
            ELSE 0 END
FROM {table} ORDER BY key
"""


class SharedLimits:
    """One process's connection to the shared limits, and the gates made from it.

    `url` is the deployment's PostgreSQL server; the table lives in `schema`. The connection
    is opened on first use and kept (one round trip per request); its statements may take
    `statement_timeout` seconds. Thread-safe: a worker's threads share one SharedLimits.
    `sleep` and `connect` are injectable for tests.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str = CLUSTER_SCHEMA,
        margin: float = 0.05,
        fallback_share: float = 0.25,
        retry_seconds: float = 10.0,
        statement_timeout: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        connect: Callable[[], psycopg.Connection] | None = None,
    ):
        if margin < 0 or not 0 < fallback_share <= 1 or retry_seconds <= 0 or statement_timeout <= 0:
            raise ValueError("margin >= 0, 0 < fallback_share <= 1, retry_seconds > 0 and statement_timeout > 0")
        self.url, self.schema, self.margin = url, checked_schema(schema), margin
        self.fallback_share, self.retry_seconds = fallback_share, retry_seconds
        self.sleep = sleep
        self._connect = connect or (lambda: psycopg.connect(
            url, autocommit=True, connect_timeout=max(2, int(statement_timeout + 0.999)), application_name="slotguard limits",
            options=f"-c statement_timeout={int(statement_timeout * 1000)}",
            tcp_user_timeout=int(statement_timeout * 1000) + 1000,  # a server gone silent, not only a slow one
        ))
        table = sql.Identifier(self.schema, "rate_limits")
        self._reserve, self._declare, self._usage = (sql.SQL(text).format(table=table) for text in (_RESERVE, _DECLARE, _USAGE))
        self._conn: psycopg.Connection | None = None
        self._declared: set[tuple[Limit, ...]] = set()
        self._lock = threading.Lock()
        self._offline_since: float | None = None  # time.monotonic() when the database went away
        self._next_try = 0.0
        self._local_next: dict[str, float] = {}  # key -> next start (time.monotonic) while offline

    @classmethod
    def for_deployment(cls, deployment: Deployment, **options: Any) -> SharedLimits:
        """The shared limits on the deployment's server, with its [limits] settings."""
        settings = deployment.limits
        return cls(deployment.storage.url, margin=settings.margin_seconds, fallback_share=settings.fallback_share,
                   retry_seconds=settings.offline_retry.total_seconds(), **options)

    # --- gates ------------------------------------------------------------------------

    def gate(self, *limits: Limit) -> SharedGate:
        """A gate taking one start under every one of `limits` at once."""
        if not limits:
            raise ValueError("a gate needs at least one limit")
        for limit in limits:
            if limit.rate < 1 or limit.window <= 0:
                raise ValueError(f"limit {limit.key}: rate must be at least 1 and window positive")
        return SharedGate(self, tuple(sorted(limits, key=lambda limit: limit.key)))

    def spacing(self, limit: Limit) -> float:
        """Seconds between two starts under `limit`."""
        return (limit.window + self.margin) / limit.rate

    def reserve(self, limits: tuple[Limit, ...]) -> float:
        """Reserve one start under `limits`; return the seconds until it (0 or more). Uses
        the process's own spacing at `fallback_share` while the database is away."""
        with self._lock:
            conn = self._usable_connection()
            if conn is not None:
                try:
                    return self._reserve_shared(conn, limits)
                except psycopg.Error as error:
                    self._went_offline(error)
            return self._reserve_local(limits)

    def _reserve_shared(self, conn: psycopg.Connection, limits: tuple[Limit, ...]) -> float:
        keys = [limit.key for limit in limits]
        for _ in range(2):
            if limits not in self._declared:
                conn.execute(self._declare, {"keys": keys, "rates": [limit.rate for limit in limits],
                                             "windows": [limit.window for limit in limits]})
                self._declared.add(limits)
            rows = conn.execute(self._reserve, {"keys": keys, "spacings": [self.spacing(limit) for limit in limits]}).fetchall()
            if len(rows) == len(limits):
                return max(0.0, rows[0][0])
            self._declared.discard(limits)  # a row went missing (someone emptied the table): declare it again
        raise psycopg.DataError(f"the rate_limits rows of {', '.join(keys)} cannot be written")

    def _reserve_local(self, limits: tuple[Limit, ...]) -> float:
        now = time.monotonic()
        start = max([now] + [self._local_next.get(limit.key, now) for limit in limits])
        for limit in limits:
            self._local_next[limit.key] = start + self.spacing(limit) / self.fallback_share
        return start - now

    def _usable_connection(self) -> psycopg.Connection | None:
        """The connection, opening it when there is none and it is time to try; None while
        the database is away."""
        if self._conn is not None and not self._conn.closed:
            return self._conn
        if time.monotonic() < self._next_try:
            return None
        try:
            conn = self._connect()
            ensure_tables(conn, self.schema)
        except psycopg.Error as error:
            self._went_offline(error)
            return None
        self._conn, self._declared = conn, set()
        if self._offline_since is not None:
            log.warning("shared_limits_back server=%s offline_seconds=%.1f", shown_url(self.url), time.monotonic() - self._offline_since)
            self._offline_since = None
        return conn

    def _went_offline(self, error: BaseException) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None
        self._next_try = time.monotonic() + self.retry_seconds
        if self._offline_since is None:
            self._offline_since = time.monotonic()
            self._local_next.clear()
            log.warning("shared_limits_offline server=%s problem=%r fallback_share=%g retry_seconds=%g: each worker "
                        "now paces itself alone at this share of every limit until the database answers",
                        shown_url(self.url), one_line(error), self.fallback_share, self.retry_seconds)

    @property
    def offline(self) -> bool:
        """True while the gates pace in process because the database is away."""
        return self._offline_since is not None

    # --- metrics -------------------------------------------------------------------------

    def usage(self) -> list[QuotaUse]:
        """Per key: starts given in about the last minute (an estimate from two minute
        counters) and the limit per minute. Raises psycopg.Error when the database is away."""
        with self._lock:
            conn = self._usable_connection()
            if conn is None:
                raise psycopg.OperationalError("the shared limits' database is away")
            rows = conn.execute(self._usage).fetchall()
        return [QuotaUse(key, round(used), int(rate * 60 / window)) for key, rate, window, used in rows]

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # --- a practice's gates --------------------------------------------------------------

    def practice_gates(self, config: Limits, practice_id: str) -> Gates:
        """The gates of one practice of a deployment: Google's project and account quotas
        together, and its Stripe account's rate (test or live)."""
        google = self.gate(Limit(PROJECT_KEY, config.google_project_per_minute, GOOGLE_WINDOW),
                           Limit(google_user_key(practice_id), config.google_user_per_minute, GOOGLE_WINDOW))

        def stripe(secret: str, mode: str) -> RateGate:
            rate = config.stripe_live_per_second if mode == "live" else config.stripe_test_per_second
            return self.gate(Limit(stripe_key(secret, mode), rate, STRIPE_WINDOW))

        return Gates(google=(google,), stripe=stripe)


class SharedGate:
    """A RateGate over one or more shared limits (every start is taken on all of them)."""

    def __init__(self, limits: SharedLimits, keys: tuple[Limit, ...]):
        self._limits, self.limits = limits, keys

    @property
    def keys(self) -> list[str]:
        return [limit.key for limit in self.limits]

    def acquire(self) -> float:
        """Reserve a start under every limit and sleep until it; return the seconds waited.

        A start reached late (the answer slow to come back, a sleep that woke late on a busy
        machine: more than half the margin, at least 10 ms) is not used: it is left empty
        and a new one reserved, up to RESERVE_TRIES times, so a late start does not crowd
        the next one; the last is used however late it is."""
        waited = 0.0
        for attempt in range(1, RESERVE_TRIES + 1):
            asked = time.monotonic()
            wait = self._limits.reserve(self.limits)
            if wait > 0:
                self._limits.sleep(wait)
            waited += wait
            late = time.monotonic() - asked - wait
            if late <= max(self._limits.margin / 2, 0.01) or attempt == RESERVE_TRIES:
                return waited
            log.debug("shared_limits_late keys=%s late_seconds=%.3f attempt=%d: the start is left empty and another taken",
                     ",".join(self.keys), late, attempt)
        return waited


USER_KEYS = "google:user:busiest"  # the one metrics name standing for every account's key


def publish_usage(limits: SharedLimits, set_quota: Callable[[str, int, int], Any]) -> None:
    """Hand the keys' use to `set_quota(name, used, limit)` (slotguard/run/metrics.py's
    set_quota; a worker calls this once a round). Metrics names must stay few, so the
    per-practice Google keys are given as one, `google:user:busiest`: the account nearest its
    limit. A database away is logged by the gates already, so it is skipped here."""
    try:
        uses = limits.usage()
    except psycopg.Error:
        return
    accounts = [use for use in uses if use.key.startswith("google:user:")]
    for use in uses:
        if use not in accounts:
            set_quota(use.key, use.used, use.limit)
    if accounts:
        busiest = max(accounts, key=lambda use: use.used / use.limit)
        set_quota(USER_KEYS, busiest.used, busiest.limit)


def keys_of(gates: Sequence[RateGate]) -> list[str]:
    """The shared keys behind `gates` (for logs), in-process gates left out."""
    return [key for gate in gates if isinstance(gate, SharedGate) for key in gate.keys]
