"""Prometheus metrics of one Slotguard process (a worker, or `main.py run --metrics-listen`).

Other code reports through the functions at the bottom (`observe_tick`, `observe_sync`,
`set_queue`, `set_quota`, `count_failure`, `observe_ledger`); slotguard/run/ops_server.py
serves them at /metrics. They live in one registry per process, not prometheus-client's
global default one, so a test builds its own (`configure()`) and reads exactly what it did.

Labels. A practice id is a label (`practice`), so a dashboard can show which practice is
failing. That costs series: about 15 to 60 per practice that has ticked in this process
(executed actions by kind and outcome, the ledger's actions by kind and state), each worker
exporting every practice it has ticked; docs/deploy.md gives the numbers measured.
`[metrics] per_practice = false` drops the label: counters then add up over practices, and
the ledger gauges are the sum over the practices this process last read. Calendar ids are
never labels (they are often the practitioner's email address, and there can be many).
Durations are histograms without the practice label: their buckets would multiply the cost.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram, disable_created_metrics
from prometheus_client import Counter as CounterMetric
from prometheus_client.metrics import MetricWrapperBase

from slotguard.domain.durations import from_utc_text, to_utc_text
from slotguard.domain.model import OPEN_STATES
from slotguard.domain.tick_report import TickReport
from slotguard.store.ledger import Ledger

# No `_created` twin beside every counter and histogram: it would double the series.
disable_created_metrics()
# Seconds: a tick of a practice with nothing to do takes milliseconds, a first sync minutes.
TICK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
SYNC_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """Every metric of the process, in its own registry. With `per_practice` False, no
    metric has a `practice` label."""

    def __init__(self, per_practice: bool = True) -> None:
        self.per_practice = per_practice
        self.registry = CollectorRegistry()
        practice = ["practice"] if per_practice else []
        registry = self.registry
        self.ticks = CounterMetric("slotguard_ticks", "Ticks finished (a tick that raised counts in slotguard_failures_total, kind tick).", practice, registry=registry)
        self.tick_seconds = Histogram("slotguard_tick_duration_seconds", "How long a tick took.", buckets=TICK_BUCKETS, registry=registry)
        self.executed = CounterMetric("slotguard_actions_executed", "Actions carried out, by kind and outcome (done, retry, failed, waiting).", [*practice, "kind", "outcome"], registry=registry)
        self.planned = CounterMetric("slotguard_actions_planned", "Actions planned, by kind and the state they were planned in.", [*practice, "kind", "state"], registry=registry)
        self.problems = CounterMetric("slotguard_tick_problems", "Problems a tick reported (a bad event, a failing calendar, a failed action).", practice, registry=registry)
        self.failures = CounterMetric("slotguard_failures", "Failures outside a tick's own report, by kind (tick: a tick that raised).", [*practice, "kind"], registry=registry)
        self.sync_seconds = Histogram("slotguard_sync_duration_seconds", "How long reading one calendar took (sync latency).", buckets=SYNC_BUCKETS, registry=registry)
        self.syncs = CounterMetric("slotguard_calendar_syncs", "Calendar reads.", practice, registry=registry)
        self.last_tick = Gauge("slotguard_last_tick_timestamp_seconds", "When the last tick finished (Unix time).", practice, registry=registry)
        self.actions = Gauge("slotguard_actions", "Actions in the ledger by kind and state, as last read.", [*practice, "kind", "state"], registry=registry)
        self.oldest_due = Gauge("slotguard_oldest_due_action_age_seconds", "Age of the oldest action due and not carried out (0 for none), as last read.", practice, registry=registry)
        self.queue_depth = Gauge("slotguard_queue_depth", "Work items waiting in the work queue.", registry=registry)
        self.queue_oldest = Gauge("slotguard_queue_oldest_due_seconds", "How long the longest-waiting work item has been due.", registry=registry)
        self.lease_age = Gauge("slotguard_lease_age_seconds", "Age of the oldest lease held on a work item.", registry=registry)
        self.quota_used = Gauge("slotguard_quota_used", "Requests counted against a shared limit in its current window.", ["quota"], registry=registry)
        self.quota_limit = Gauge("slotguard_quota_limit", "The shared limit's size for its window.", ["quota"], registry=registry)
        self._ledger_counts: dict[str, Counter] = {}  # practice -> (kind, state) -> count, as last read
        self._ledger_total: Counter = Counter()  # their sum, for per_practice False
        self._ledger_oldest: dict[str, float] = {}

    def _practice(self, practice: str) -> dict[str, str]:
        return {"practice": practice} if self.per_practice else {}

    def of(self, metric: MetricWrapperBase, practice: str, **labels: str) -> Any:
        """`metric`'s series for `practice` (when per practice) and `labels`."""
        labels = {**self._practice(practice), **labels}
        return metric.labels(**labels) if labels else metric

    def observe_tick(self, practice: str, report: TickReport, seconds: float) -> None:
        self.of(self.ticks, practice).inc()
        self.tick_seconds.observe(seconds)
        for key, count in report.executed.items():
            kind, _, outcome = key.partition(":")
            self.of(self.executed, practice, kind=kind, outcome=outcome).inc(count)
        for key, count in report.planned.items():
            kind, _, state = key.partition(":")
            self.of(self.planned, practice, kind=kind, state=state).inc(count)
        if report.problems:
            self.of(self.problems, practice).inc(len(report.problems))
        self.of(self.last_tick, practice).set_to_current_time()

    def observe_sync(self, practice: str, seconds: float) -> None:
        self.sync_seconds.observe(seconds)
        self.of(self.syncs, practice).inc()

    def observe_ledger(self, practice: str, ledger: Ledger, now: datetime) -> None:
        counts = Counter({(row["kind"], row["state"]): int(row["n"]) for row in
                          ledger.db.execute("SELECT kind, state, COUNT(*) AS n FROM actions GROUP BY kind, state")})
        states = ",".join(f"'{state.value}'" for state in sorted(OPEN_STATES))  # enum values, not input
        row = ledger.db.execute(f"SELECT MIN(due_at) AS oldest FROM actions WHERE state IN ({states}) AND due_at <= ?",
                                [to_utc_text(now)]).fetchone()
        oldest = row["oldest"] if row else None
        if isinstance(oldest, str):  # SQLite keeps times as text; PostgreSQL may give a datetime
            oldest = from_utc_text(oldest)
        age = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
        self._ledger_oldest[practice] = age
        if self.per_practice:
            for kind, state in set(self._ledger_counts.get(practice, ())) - set(counts):
                self.actions.labels(practice=practice, kind=kind, state=state).set(0)  # none left in that state
            self._ledger_counts[practice] = counts
            for (kind, state), count in counts.items():
                self.actions.labels(practice=practice, kind=kind, state=state).set(count)
            self.oldest_due.labels(practice=practice).set(age)
            return
        before = self._ledger_total
        self._ledger_total = before - self._ledger_counts.get(practice, Counter()) + counts  # the practice's last reading replaced
        self._ledger_counts[practice] = counts
        for kind, state in set(before) - set(self._ledger_total):
            self.actions.labels(kind=kind, state=state).set(0)
        for (kind, state), count in self._ledger_total.items():
            self.actions.labels(kind=kind, state=state).set(count)
        self.oldest_due.set(max(self._ledger_oldest.values()))


_current = Metrics()


def configure(per_practice: bool = True) -> Metrics:
    """Start this process's metrics over, in a new registry (at start-up; tests)."""
    global _current
    _current = Metrics(per_practice)
    return _current


def current() -> Metrics:
    """The process's metrics (what /metrics serves)."""
    return _current


def observe_tick(practice: str, report: TickReport, seconds: float) -> None:
    """A tick of `practice` finished in `seconds`: counts it, its duration, the actions it
    carried out (by kind and outcome) and planned, and the problems it reported."""
    _current.observe_tick(practice, report, seconds)


def observe_sync(practice: str, calendar_id: str, seconds: float) -> None:
    """Reading the calendar `calendar_id` of `practice` took `seconds` (the calendar id is
    not a label: see the module's docstring)."""
    _current.observe_sync(practice, seconds)


def observe_ledger(practice: str, ledger: Ledger, now: datetime) -> None:
    """Read the ledger's actions by kind and state and its oldest due action's age at `now`
    into the gauges (after a tick; two aggregate queries). Raises LedgerError as the ledger does."""
    _current.observe_ledger(practice, ledger, now)


def set_queue(*, depth: int, oldest_due_seconds: float, lease_age_seconds: float) -> None:
    """The work queue as last read: items waiting, how long the oldest has been due, the
    age of the oldest lease held."""
    _current.queue_depth.set(depth)
    _current.queue_oldest.set(oldest_due_seconds)
    _current.lease_age.set(lease_age_seconds)


def set_quota(name: str, used: float, limit: float) -> None:
    """A shared limit (e.g. "google_project", "stripe:acct_1") used `used` of `limit` in its
    current window. `name` is a label: keep the set of names small."""
    _current.quota_used.labels(quota=name).set(used)
    _current.quota_limit.labels(quota=name).set(limit)


def count_failure(practice: str, kind: str) -> None:
    """One failure of `kind` (a short fixed word: tick, config, claim, ...) for `practice`."""
    _current.of(_current.failures, practice, kind=kind).inc()
