"""A worker of a deployment (`main.py worker --deployment FILE`): any number of them, on any
number of machines, share the practices through the work queue (slotguard/store/work_queue.py).

The loop: read the practices folder into the queue (new practices due now, removed ones
dropped); claim the earliest due practice; take the practice's fence, its PostgreSQL advisory
lock `practice_ID` (slotguard/store/pg_lock.py) and its data folder's lock
(slotguard/store/daemon_lock.py, the ledger's too for a SQLite ledger), so that neither
another worker nor a `main.py run`/`charge-now`/`retry` on that practice can act beside it
(a fence held elsewhere: the claim is given back and the worker goes on); build the
practice's engine (kept for its next ticks, rebuilt when its file changes; its Google and
Stripe requests paced by the limits all workers share, slotguard/store/shared_limits.py);
`recover` (what a worker that died mid-action left executing is finished through the
provider lookup, as at a daemon's restart); with [push] on, keep its push channels
(slotguard/run/push.py); then `tick`; release the practice, due again at next_due(). A
heartbeat renews the claim's lease while the tick runs.

Anything one practice's tick raises (a broken config, its ledger's LedgerError, a bug) is
logged with the practice's id, recorded on its queue row, and the practice is tried again
after a backoff; the worker goes on with the others. What a tick reports without raising (a
calendar that cannot be read, a revoked Google token, Stripe refusing) is logged with the
practice's id, as a single practice's daemon reports it.
SIGTERM/SIGINT (stop()): the current practice's tick stops after its current action, the
practice is released, run() returns. Log lines are key=value with practice=ID.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from slotguard.config.deployment import Deployment
from slotguard.config.schema import ConfigError, Settings
from slotguard.domain.durations import to_utc_text
from slotguard.domain.model import OPEN_STATES
from slotguard.domain.tick_report import TickReport, for_log
from slotguard.run import metrics
from slotguard.run.engine import Engine
from slotguard.run.failures import redact, tick_failure
from slotguard.run.logs import practice_context
from slotguard.run.practices import list_practices, practice_file, practice_settings
from slotguard.run.push import ChannelApi, maintain_channels, next_poll, watched_calendars
from slotguard.run.wiring import build_engine
from slotguard.store import push_channels, work_queue
from slotguard.store.daemon_lock import LockHeld, exclusive, fence_held
from slotguard.store.ledger import Ledger
from slotguard.store.ledger_errors import LedgerError
from slotguard.store.pg import connect, is_postgres, shown_url
from slotguard.store.shared_limits import SharedLimits, publish_usage
from slotguard.store.work_queue import Claim

log = logging.getLogger("slotguard.worker")

MIN_WAIT = timedelta(seconds=30)  # an action still due after a tick (waiting on something) does not make the practice spin


def next_due(settings: Settings, ledger: Ledger, now: datetime, deployment: Deployment) -> datetime:
    """When a practice (its `settings`, its `ledger`) ticked at `now` is due again: at its next
    poll (calendar.poll_interval), or sooner when one of its actions falls due before that;
    never sooner than MIN_WAIT. (With push notifications on, deployment.push, the poll part
    becomes push.poll_fallback: a push wakes the practice sooner through work_queue.wake.)"""
    poll = now + next_poll(settings, deployment)
    due = [action.due_at for action in ledger.actions(states=list(OPEN_STATES), due_before=poll)]
    return max(min([poll, *due]), now + MIN_WAIT)


def default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class _Cached:
    stamp: tuple[int, int, int]  # the practice file's (mtime_ns, size, inode) when read
    settings: Settings
    engine: Engine | None = None


class PracticeBusy(Exception):
    """Another process holds the practice's fence (lock or data folder)."""


class FenceLost(Exception):
    """The practice's fence (its ledger's lock) or its lease was lost during the tick: the tick
    stopped before its next action, and nothing more was done (another process may hold it now)."""


class Heartbeat:
    """Renews a claim's lease every lease/3 on a connection of its own (by the server's clock),
    until stop(); `lost` turns True when a renewal finds the lease taken."""

    def __init__(self, url: str, schema: str, practice: str, worker: str, lease: timedelta):
        self.args = (url, schema, practice, worker, lease)
        self.done = threading.Event()
        self.lost = False
        self.thread = threading.Thread(target=self._beat, name=f"heartbeat-{practice}", daemon=True)
        self.thread.start()

    def _beat(self) -> None:
        url, schema, practice, worker, lease = self.args
        interval = max(lease.total_seconds() / 3, 0.05)
        conn: psycopg.Connection | None = None
        try:
            while not self.done.wait(interval):
                try:
                    conn = conn or connect(url)
                    if not work_queue.renew(conn, practice, worker, lease, schema=schema):
                        self.lost = True
                        log.warning("lease_lost practice=%s worker=%s", practice, worker)
                        return
                except (psycopg.Error, LedgerError) as error:  # the next beat tries again, on a new connection
                    log.warning("lease_renewal_failed practice=%s error=%s", practice, redact(str(error))[:200])
                    if conn is not None:
                        conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


class Worker:
    """One worker process's loop over the deployment's practices (see the module's docstring).

    `clock` gives the time each step runs at (the queue's times too): the real clock, or a
    pretend one for tests and benches (`main.py worker --now`). `until_idle`: run() returns
    once no practice is due. Raises ConfigError from the constructor when the deployment
    names no PostgreSQL server."""

    def __init__(self, deployment: Deployment, name: str = "", *, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 until_idle: bool = False):
        if not is_postgres(deployment.storage.url):
            raise ConfigError(['storage.url: the workers share a PostgreSQL server ("postgresql://user@host/db"); the deployment names none'])
        self.deployment = deployment
        self.url = deployment.storage.url
        self.schema = deployment.workers.queue_schema
        self.name = name or default_name()
        self.clock = clock
        self.until_idle = until_idle
        self.stopping = threading.Event()
        self.cache: OrderedDict[str, _Cached] = OrderedDict()
        # practice -> the stamp of the file whose templates were proven to render: an engine
        # built again for an unchanged file (evicted from the cache) skips that third of a second.
        self.checked: dict[str, tuple[int, int, int]] = {}
        self.reported: set[str] = set()  # folder problems already logged (each once)
        self.last_sync = float("-inf")
        self.ticks = 0
        self.failures = 0
        self.conn: psycopg.Connection | None = None
        # Checks a practice's settings before its tick (raises ConfigError): `worker --now` refuses live money.
        self.vet: Callable[[Settings], None] = lambda settings: None
        # Called at every turn of the loop, and once the practices folder has been read into the
        # queue: the health endpoint's Health.turn and .loaded (slotguard/cli/worker.py).
        self.on_turn: Callable[[], None] = lambda: None
        self.on_loaded: Callable[[], None] = lambda: None
        # Push channels ([push] enabled): the token secret, and how a practice's Google channels are reached.
        self.push_secret = self._push_secret()
        self.push_api: Callable[[Settings], ChannelApi] = LazyGoogleChannels
        # Google's and Stripe's request limits, shared by every worker through PostgreSQL (beside the queue).
        self.limits = SharedLimits.for_deployment(deployment, schema=self.schema)

    def _push_secret(self) -> str:
        """[push] token_secret, resolved once ("" with push off). Raises ConfigError when it
        cannot be read: a worker that would open channels whose notifications fail refuses to start."""
        push = self.deployment.push
        if not push.enabled or push.token_secret is None:
            return ""
        try:
            return push.token_secret.resolve()
        except ConfigError as error:
            raise ConfigError([f"push.token_secret: {problem}" for problem in error.problems]) from None

    def stop(self) -> None:
        """Finish the current practice (its tick stops after the current action), then stop."""
        self.stopping.set()

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> int:
        """Work until stop() (or, with until_idle, until nothing is due). Returns 0. Raises
        LedgerError when the queue's server cannot be reached at the start; later outages are
        logged and waited out."""
        self._queue()  # at once: a wrong storage.url is an error, not a silent wait
        log.info("worker_started worker=%s server=%s queue_schema=%s practices=%s", self.name, shown_url(self.url), self.schema,
                 self.deployment.deployment.practices)
        try:
            while not self.stopping.is_set():
                self.on_turn()
                try:
                    claimed = self._claim_next()
                except (psycopg.Error, LedgerError) as error:
                    self._drop_connection()
                    log.error("queue_unreachable worker=%s error=%s retry_in=%ds", self.name, redact(str(error))[:300],
                              self.deployment.workers.idle_sleep.total_seconds())
                    self.stopping.wait(self.deployment.workers.idle_sleep.total_seconds())
                    continue
                if claimed is None:
                    if self.until_idle:
                        break
                    self.stopping.wait(self.deployment.workers.idle_sleep.total_seconds())
                    continue
                self.run_claim(claimed)
        finally:
            for practice_id in list(self.cache):
                self._forget(practice_id)
            self._drop_connection()
            self.limits.close()
        log.info("worker_stopped worker=%s ticks=%d failures=%d", self.name, self.ticks, self.failures)
        return 0

    def _queue(self) -> psycopg.Connection:
        """The worker's connection to the shared tables (autocommit), made with them when needed."""
        if self.conn is None or self.conn.closed:
            self.conn = connect(self.url)
            work_queue.ensure_tables(self.conn, self.schema)
            if self.push_secret:
                push_channels.ensure_tables(self.conn, self.schema)
        return self.conn

    def _drop_connection(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def _claim_next(self) -> Claim | None:
        conn = self._queue()
        now = self.clock()
        if time.monotonic() - self.last_sync >= self.deployment.workers.idle_sleep.total_seconds():
            self.sync_practices(now)
        claimed = work_queue.claim(conn, self.name, self.deployment.workers.lease, now, schema=self.schema)
        if claimed is None:
            self.queue_metrics(now)
        return claimed

    def queue_metrics(self, now: datetime | None = None) -> None:
        """The work queue's depth and ages, and the shared limits' use, into the metrics (when
        idle, and at each scrape of /metrics, on a connection of its own there: the scrape runs
        on the server's thread)."""
        if now is not None and self.conn is not None:
            stats = work_queue.stats(self.conn, now, schema=self.schema)
        else:
            with connect(self.url) as conn:
                stats = work_queue.stats(conn, self.clock(), schema=self.schema)
        metrics.set_queue(depth=stats.depth, oldest_due_seconds=stats.oldest_due_seconds, lease_age_seconds=stats.lease_age_seconds)
        publish_usage(self.limits, metrics.set_quota)  # the shared limits' use, as quotas
        log.debug("queue depth=%d oldest_due_seconds=%.0f lease_age_seconds=%.0f failing=%d", stats.depth,
                  stats.oldest_due_seconds, stats.lease_age_seconds, stats.failing)

    def sync_practices(self, now: datetime) -> None:
        """The practices folder into the queue; a file that is not a practice is logged (once)."""
        try:
            practices, problems = list_practices(self.deployment)
        except ConfigError as error:  # the folder cannot be read: keep the queue as it is
            log.error("practices_unreadable worker=%s error=%s", self.name, "; ".join(error.problems))
            return
        for problem in problems:
            if problem not in self.reported:
                self.reported.add(problem)
                log.error("practice_file_ignored worker=%s problem=%s", self.name, problem)
        added, removed = work_queue.sync_practices(self._queue(), [p.id for p in practices], now, schema=self.schema)
        for practice_id in added:
            log.info("practice_added practice=%s", practice_id)
        for practice_id in removed:
            log.info("practice_removed practice=%s", practice_id)
            self._forget(practice_id)
            self.checked.pop(practice_id, None)
        if self.last_sync == float("-inf"):
            self.on_loaded()
        self.last_sync = time.monotonic()

    # -- one practice ------------------------------------------------------------------------
    def run_claim(self, claimed: Claim) -> None:
        """Tick the claimed practice and release it; never raises for the practice's own failures."""
        practice_id = claimed.practice
        started = time.monotonic()
        now = self.clock()
        heartbeat = Heartbeat(self.url, self.schema, practice_id, self.name, self.deployment.workers.lease)
        due: datetime = now
        error: str | None = None
        given_back = False  # another process held the fence: given back untouched (its failures kept)
        kind = ""  # of a failure, for the metrics: "config", "ledger" or "tick"
        report: TickReport | None = None
        try:
            with practice_context(practice_id):  # every line logged inside names the practice
                due, report = self.tick_practice(practice_id, claimed, now, lease_lost=lambda: heartbeat.lost)
        except PracticeBusy as busy:
            log.info("practice_busy practice=%s worker=%s holder=%s", practice_id, self.name, busy)
            due, given_back = now + self.deployment.workers.idle_sleep, True
        except ConfigError as problem:
            error, kind = "configuration: " + "; ".join(problem.problems), "config"
            self._forget(practice_id)
        except FenceLost as lost:
            error, kind = f"the practice's lock was lost: {lost}", "lock"
            self._forget(practice_id)
        except Exception as failure:  # noqa: BLE001 - one practice's failure never stops the worker
            error, kind = tick_failure(failure), "ledger" if isinstance(failure, LedgerError) else "tick"
            self._forget(practice_id)  # its engine may hold a broken connection: built anew next time
        finally:
            heartbeat.stop()
        seconds = time.monotonic() - started
        ended = self.clock()
        if error is not None:
            error = redact(error)  # kept on the queue row and logged: never a secret
            self.failures += 1
            failures = claimed.consecutive_failures + 1
            log.error("practice_failed practice=%s worker=%s failures=%d retry_in=%ds error=%s", practice_id, self.name, failures,
                      work_queue.backoff(failures, self.deployment.workers.backoff_max).total_seconds(), error[:1000])
            metrics.count_failure(practice_id, kind)
            due = ended
        elif report is not None:
            self.ticks += 1
            metrics.observe_tick(practice_id, report, seconds)
        try:
            released = work_queue.release(self._queue(), practice_id, self.name, due, error, now=ended, schema=self.schema,
                                          backoff_max=self.deployment.workers.backoff_max, busy=given_back)
        except (psycopg.Error, LedgerError) as failure:  # the lease runs out; another worker takes it then
            self._drop_connection()
            log.error("release_failed practice=%s worker=%s error=%s", practice_id, self.name, redact(str(failure))[:300])
            return
        if not released:
            log.warning("release_ignored practice=%s worker=%s (the lease had run out or the practice was removed)", practice_id, self.name)

    def tick_practice(self, practice_id: str, claimed: Claim, now: datetime, *,
                      lease_lost: Callable[[], bool] = lambda: False) -> tuple[datetime, TickReport]:
        """Fence, recover and tick one practice; returns (when it is due again, the report).
        Raises PracticeBusy when another process holds its fence, ConfigError for its config,
        FenceLost when the fence or the lease (`lease_lost`: the heartbeat's) is lost during
        the tick (the engine stops before its next action: its stop_requested asks), anything
        else the tick raised."""
        cached = self._settings(practice_id)
        settings = cached.settings
        self.vet(settings)
        with ExitStack() as fence:
            # The practice's fence: its data folder's lock and its ledger's (the advisory lock on
            # its PostgreSQL schema, or LEDGER.lock beside a SQLite file), the locks `run`,
            # `charge-now` and `retry` take too (slotguard/store/daemon_lock.py).
            try:
                locks = fence.enter_context(exclusive(settings.storage.data_dir, settings.storage.location, settings.storage.schema_name))
            except LockHeld as held:
                raise PracticeBusy(str(held)) from None

            def lost() -> str:
                if lease_lost():
                    return "its lease in the work queue ran out and another worker may hold it"
                if not fence_held(locks):
                    return "the connection holding its ledger's lock was cut, and the server freed the lock"
                return ""

            def check_fence() -> None:
                why = lost()
                if why:
                    raise FenceLost(why)

            if cached.engine is None:
                cached.engine = build_engine(settings, now, stop_requested=self.stopping.is_set,
                                             gates=self.limits.practice_gates(self.deployment.limits, practice_id),
                                             check_templates=self.checked.get(practice_id) != cached.stamp)
                self.checked[practice_id] = cached.stamp
            engine = cached.engine
            # Before each action the engine asks: the worker stopping, or the fence gone.
            engine.stop_requested = lambda: self.stopping.is_set() or bool(lost())
            check_fence()
            recovered = engine.recover(now)
            if recovered:
                log.warning("recovered practice=%s actions=%d (interrupted by a worker that stopped)", practice_id, recovered)
            check_fence()
            self.before_tick(practice_id, settings, now)
            check_fence()
            wake = f" wake={claimed.wake_reason}" if claimed.wake_reason else ""
            report = engine.tick(now)
            check_fence()  # the tick stopped early because the fence went: nothing more is done
            due = next_due(settings, engine.ledger, self.clock(), self.deployment)
            metrics.observe_ledger(practice_id, engine.ledger, now)  # the ledger's gauges: actions by kind and state
            if engine.ledger.place.postgres:
                # A cached engine keeps no server connection between its ticks (workers x cached
                # practices would exceed max_connections): the ledger opens a new one at its next use.
                engine.ledger.close()
        log.info("tick practice=%s worker=%s events=%d planned=%d executed=%d problems=%d next_due=%s%s", practice_id, self.name,
                 report.events_seen, sum(report.planned.values()), sum(report.executed.values()), len(report.problems),
                 to_utc_text(due), wake)
        for problem in report.problems:
            log.warning("practice_problem practice=%s problem=%s", practice_id, for_log(redact(problem))[:500])
        return due, report

    def before_tick(self, practice_id: str, settings: Settings, now: datetime) -> None:
        """With [push] on: the practice's push channels kept (slotguard/run/push.py
        maintain_channels: opened for each watched Google calendar, renewed before they expire,
        stopped for calendars no longer watched), under the practice's fence and before its
        calendars are read. Never fails the tick: what goes wrong is logged, and polling
        (push.poll_fallback) covers the calendar until the next tick tries again."""
        if not self.push_secret:
            return
        try:
            channels_report = maintain_channels(self._queue(), practice_id, watched_calendars(settings, self.deployment),
                                                self.push_api(settings), self.deployment.push, self.push_secret, now, schema=self.schema)
        except Exception as error:  # noqa: BLE001 - push is an optimisation; the tick goes on without it
            log.warning("push_channels_failed practice=%s error_type=%s error=%s", practice_id, type(error).__name__, redact(str(error))[:300])
            return
        for calendar_id, why in channels_report.failed.items():
            log.warning("push_channel_problem practice=%s calendar=%s problem=%s", practice_id, calendar_id, redact(why)[:300])

    def _settings(self, practice_id: str) -> _Cached:
        """The practice's cached settings (and engine), read again when its file changed."""
        path = practice_file(self.deployment, practice_id).path
        try:
            info = path.stat()
        except OSError as error:
            raise ConfigError([f"{path}: cannot be read ({error.strerror or error})"], f"practice {practice_id}") from None
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        cached = self.cache.get(practice_id)
        if cached is not None and cached.stamp == stamp:
            self.cache.move_to_end(practice_id)
            return cached
        if cached is not None:
            log.info("practice_reloaded practice=%s file=%s", practice_id, path)
        self._forget(practice_id)
        cached = _Cached(stamp, practice_settings(self.deployment, practice_id))
        self.cache[practice_id] = cached
        while len(self.cache) > self.deployment.workers.cached_practices:
            self._forget(next(iter(self.cache)))
        return cached

    def _forget(self, practice_id: str) -> None:
        cached = self.cache.pop(practice_id, None)
        if cached is not None and cached.engine is not None:
            try:
                cached.engine.ledger.close()
            except Exception:  # noqa: BLE001 - closing a broken connection: nothing to do
                pass


class LazyGoogleChannels:
    """A practice's Google push channel API (integration/google_calendar.py), opened at its
    first use: a practice with nothing to open or stop never loads Google's client."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._api: ChannelApi | None = None

    def _opened(self) -> ChannelApi:
        if self._api is None:
            # Imported here: only a deployment with push on and Google practices loads Google's libraries.
            from integration.google_calendar import open_push_channels

            self._api = open_push_channels(self.settings)
        return self._api

    def watch(self, calendar_id: str, channel_id: str, address: str, token: str, ttl: timedelta) -> tuple[str, datetime]:
        return self._opened().watch(calendar_id, channel_id, address, token, ttl)

    def stop_channel(self, channel_id: str, resource_id: str) -> None:
        self._opened().stop_channel(channel_id, resource_id)
