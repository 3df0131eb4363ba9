"""Limits shared by a deployment's workers, kept in PostgreSQL (slotguard/store/shared_limits.py).

Several processes (spawned: fresh interpreters, sharing nothing but the database) take starts
from one key; the start times they record never put more than the rate into any window of the
limit's length. Small rates and short windows keep each test to a few seconds.

These tests run on a loaded 2-core machine: a process may be descheduled for a long moment
between the start the limiter gave it and the moment it records it. What they check is the
promise (never more than the rate in a window; no start given before the pacing allows it),
with a margin wide enough for that lateness (MARGIN), never how fast the machine is.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from typing import Any

import psycopg
import pytest

from slotguard.config.deployment import Limits
from slotguard.domain.interfaces import RateGate
from slotguard.store.shared_limits import PROJECT_KEY, Limit, SharedLimits, google_user_key, publish_usage, stripe_key
from tests.support import limits_worker
from tests.support.stripe_proxy import busiest_window

SPAWN = multiprocessing.get_context("spawn")
# The limiter's margin in these tests (the default is 50 ms): a recorded start may be this late
# against the one given, on a busy machine, without the check of the rate failing.
MARGIN = 0.3


def run_processes(target: Any, argument_lists: list[tuple], timeout: float = 120.0) -> list[Any]:
    """Run `target(*arguments, ready, results)` in one spawned process per argument list, where
    `ready` is a barrier every process waits at before it starts (the interpreters take their
    time to start on a busy machine); return what each put on the results queue."""
    results, ready = SPAWN.Queue(), SPAWN.Barrier(len(argument_lists))
    processes = [SPAWN.Process(target=target, args=(*arguments, ready, results)) for arguments in argument_lists]
    for process in processes:
        process.start()
    try:
        return [results.get(timeout=timeout) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=10)
            assert process.exitcode == 0, f"a worker process ended with {process.exitcode}"


@pytest.fixture
def shared(pg_url, pg_schema):
    limits = SharedLimits(pg_url, schema=pg_schema, margin=MARGIN)
    yield limits
    limits.close()


def test_several_processes_sharing_a_key_never_exceed_its_rate_in_any_window(pg_url, pg_schema):
    rate, window, each = 10, 0.5, 8
    reports = run_processes(limits_worker.take_starts,
                            [(pg_url, pg_schema, [("stripe:test:shared", rate, window)], each, f"w{n}", MARGIN) for n in range(4)])

    starts = sorted(moment for _, times in reports for moment in times)
    assert len(starts) == 4 * each
    assert busiest_window(starts, window) <= rate, f"{busiest_window(starts, window)} starts in one {window}s window; the limit is {rate}"
    # Generous (a late start costs its slot, up to three per request): only a limiter holding
    # the processes back many times longer than the rate asks fails it.
    spacing = (window + MARGIN) / rate
    assert starts[-1] - starts[0] < 4 * len(starts) * spacing, "the processes were held back far more than the rate asks"


def test_two_keys_are_independent(shared):
    one, other = shared.gate(Limit("google:user:lena", 4, 0.5)), shared.gate(Limit("google:user:ola", 4, 0.5))
    starts: dict[str, list[float]] = {"lena": [], "ola": []}

    def take(gate: RateGate, name: str) -> None:
        for _ in range(8):
            gate.acquire()
            starts[name].append(time.monotonic())

    threads = [threading.Thread(target=take, args=(one, "lena")), threading.Thread(target=take, args=(other, "ola"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert busiest_window(starts["lena"], 0.5) <= 4 and busiest_window(starts["ola"], 0.5) <= 4
    # Together they had twice one key's rate: neither waited for the other.
    assert busiest_window(starts["lena"] + starts["ola"], 0.5) > 4


def test_the_project_key_bounds_the_sum_of_several_practices_and_each_account_its_own(pg_url, pg_schema):
    project, account, window, each = 8, 4, 0.5, 5
    practices = ["lena", "ola", "kari", "nils"]
    reports = run_processes(limits_worker.take_starts, [
        (pg_url, pg_schema, [(PROJECT_KEY, project, window), (google_user_key(name), account, window)], each, name, MARGIN)
        for name in practices
    ])

    everything = sorted(moment for _, times in reports for moment in times)
    assert len(everything) == len(practices) * each
    # The accounts alone (one start every 0.2 s each) would let 12 into a window: the project's 8 holds.
    assert busiest_window(everything, window) <= project
    for name, times in reports:
        assert busiest_window(times, window) <= account, f"practice {name} went over its account's limit"
    # And the project key paced them all together: 20 starts one project spacing (0.1 s) apart
    # take about 1.9 s, where the accounts alone would have let them all go in 0.8 s. (A lower
    # bound: a busy machine only makes it longer.)
    assert everything[-1] - everything[0] >= 0.75 * (len(everything) - 1) * (window + MARGIN) / project


@pytest.mark.slow
def test_the_limiter_itself_grants_hundreds_of_starts_a_second(pg_url, pg_schema):
    """The cost of the one statement per request (printed with -s; the numbers are in
    docs/deploy.md#7-limits-shared-by-all-workers). A measurement, not a check of the machine's speed: how fast a
    shared test machine is says nothing of the limiter (that a request is one statement is
    test_a_request_is_one_statement's); it only fails when a process is granted nothing."""
    rates = {}
    for name, keys in (("1 process", ["one"]), ("4 processes, one key", ["one"] * 4), ("4 processes, 4 keys", ["a", "b", "c", "d"])):
        counts = run_processes(limits_worker.grant_flat_out, [(pg_url, pg_schema, f"bench:{key}", 1.5) for key in keys])
        rates[name] = sum(counts) / 1.5
    print("\nshared limiter grants per second: " + ", ".join(f"{name} {rate:.0f}" for name, rate in rates.items()))
    assert all(rate > 0 for rate in rates.values())


def test_a_request_is_one_statement(pg_url, pg_schema, caplog):
    """One round trip per request, however many keys it is under (what keeps the limiter
    cheap; the benchmark above measures it). An answer slow to come back (a busy machine) is
    a start reached late: left empty, another reserved, logged (shared_limits_late)."""
    caplog.set_level(logging.DEBUG, logger="slotguard.limits")
    statements: list[object] = []

    class Counting(psycopg.Connection):
        def execute(self, query, params=None, **options):
            statements.append(query)
            return super().execute(query, params, **options)

    shared = SharedLimits(pg_url, schema=pg_schema, connect=lambda: Counting.connect(pg_url, autocommit=True))
    gate = shared.gate(Limit(PROJECT_KEY, 10**9, 60.0), Limit(google_user_key("lena"), 10**9, 60.0))
    gate.acquire()  # connects, creates the table, declares the keys
    statements.clear()
    caplog.clear()
    for _ in range(20):
        gate.acquire()
    shared.close()
    late = sum("shared_limits_late" in record.getMessage() for record in caplog.records)
    assert len(statements) == 20 + late


def test_use_is_reported_per_key_with_its_limit_per_minute(shared):
    lena = shared.gate(Limit(PROJECT_KEY, 10000, 60.0), Limit(google_user_key("lena"), 600, 60.0))
    ola = shared.gate(Limit(PROJECT_KEY, 10000, 60.0), Limit(google_user_key("ola"), 1200, 60.0))
    for _ in range(6):
        lena.acquire()
    ola.acquire()
    shared.gate(Limit("stripe:test:abc", 25, 1.0)).acquire()

    assert {use.key: use.limit for use in shared.usage()} == {
        PROJECT_KEY: 10000, google_user_key("lena"): 600, google_user_key("ola"): 1200, "stripe:test:abc": 1500}
    reported: dict[str, tuple[int, int]] = {}
    publish_usage(shared, lambda name, used, limit: reported.__setitem__(name, (used, limit)))

    # The practices' keys are one metric, the account nearest its limit: few names, as metrics need.
    assert set(reported) == {PROJECT_KEY, "stripe:test:abc", "google:user:busiest"}
    assert reported["stripe:test:abc"] == (1, 1500)
    assert reported["google:user:busiest"][1] == 600
    assert 5 <= reported[PROJECT_KEY][0] <= 7  # an estimate across a minute boundary, exact within a minute


def test_a_database_hiccup_falls_back_to_pacing_alone_logs_once_and_comes_back(pg_url, pg_schema, caplog):
    caplog.set_level(logging.WARNING, logger="slotguard.limits")
    retry = 3.0  # the four offline requests (0.33 s) are all made before the database is tried again
    shared = SharedLimits(pg_url, schema=pg_schema, fallback_share=0.5, retry_seconds=retry)
    gate = shared.gate(Limit("stripe:test:hiccup", 10, 0.5))
    gate.acquire()
    pid = shared._conn.info.backend_pid if shared._conn else 0
    with psycopg.connect(pg_url, autocommit=True) as admin:  # the server drops the worker's connection
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)

    before = time.monotonic()
    starts = []
    for _ in range(4):
        gate.acquire()
        starts.append(time.monotonic())
    assert shared.offline
    # Offline, starts are spaced at the fallback share of the limit (0.11 s), not at the full
    # rate (0.055 s) nor let through: a lower bound, which a busy machine only makes longer.
    offline_spacing = (0.5 + 0.05) / 10 / 0.5
    assert starts[-1] - before >= 3 * offline_spacing - 1e-3, "offline, starts are paced at the fallback share, not let through"

    time.sleep(max(0.0, starts[0] + retry + 0.05 - time.monotonic()))
    gate.acquire()  # the retry time has come: the database answers again
    assert not shared.offline
    messages = [record.getMessage() for record in caplog.records]
    assert sum("shared_limits_offline" in message for message in messages) == 1
    assert sum("shared_limits_back" in message for message in messages) == 1
    shared.close()


def test_a_start_reached_late_is_left_empty_and_another_taken(pg_url, pg_schema, caplog):
    caplog.set_level(logging.DEBUG, logger="slotguard.limits")
    sleeps: list[float] = []

    def drowsy(seconds: float) -> None:
        """The first sleep wakes 500 ms late, as a thread on a busy machine may."""
        sleeps.append(seconds)
        time.sleep(seconds + (0.5 if len(sleeps) == 1 else 0.0))

    shared = SharedLimits(pg_url, schema=pg_schema, margin=0.2, sleep=drowsy)  # late: over 0.1 s
    waits: list[float] = []  # what each reservation answered
    reserve = shared.reserve
    shared.reserve = lambda limits: waits.append(reserve(limits)) or waits[-1]
    gate = shared.gate(Limit("stripe:test:drowsy", 2, 0.5))  # a start every 0.35 s
    gate.acquire()
    started = time.monotonic()
    waited = gate.acquire()

    assert waited == pytest.approx(sum(sleeps), abs=1e-6) == pytest.approx(sum(waits[1:]), abs=1e-6)
    assert 0 < waits[1] <= 0.35 + 0.01, "the second start is paced"
    assert time.monotonic() - started >= waits[1] + 0.5
    # Woken 0.5 s after its start (0.35 s): that start is left empty and the next free one
    # (0.70 s) is already due, taken at once. (On a busy machine that reservation may itself
    # come back late, more than 0.1 s, and is left empty too: each one logged.)
    late = [record for record in caplog.records if "shared_limits_late" in record.getMessage()]
    assert len(late) >= 1 and len(waits) == 2 + len(late)
    assert waits[2] == 0, "the start after the late one was already due: no second wait"
    (use,) = shared.usage()
    assert use.used == len(waits), "every late start was given up and another reserved: all of them counted, the late ones left empty"
    shared.close()


def test_an_emptied_table_is_filled_again_without_going_offline(shared, pg_url, pg_schema):
    gate = shared.gate(Limit("google:user:lena", 2, 0.5))  # a start every 0.4 s
    gate.acquire()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f'DELETE FROM "{pg_schema}".rate_limits')

    assert gate.acquire() == 0 and not shared.offline
    assert gate.acquire() > 0, "the key is paced again from its new row"


def test_no_database_at_all_still_paces_and_never_blocks_work(caplog):
    caplog.set_level(logging.WARNING, logger="slotguard.limits")
    attempts = []

    def refuse() -> psycopg.Connection:
        attempts.append(time.monotonic())
        raise psycopg.OperationalError("connection refused")

    shared = SharedLimits("postgresql://slotguard:secret@127.0.0.1:1/none", connect=refuse, fallback_share=0.25, retry_seconds=60)
    gate = shared.gate(Limit("stripe:test:none", 8, 0.5))
    started = time.monotonic()
    waits = [gate.acquire() for _ in range(4)]
    elapsed = time.monotonic() - started

    assert waits[0] == 0 and all(wait > 0 for wait in waits[1:])
    # Paced at a quarter of the limit (0.275 s apart: a lower bound), and never blocked on the
    # database (retry_seconds is 60): a generous upper bound, as a busy machine's late wakes
    # each cost a start.
    assert 3 * (0.55 / 8 / 0.25) - 1e-3 <= elapsed < 3 * (0.55 / 8 / 0.25) + 2.0
    assert len(attempts) == 1, "the database is tried again only every retry_seconds, not on every request"
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert logged.count("shared_limits_offline") == 1 and "secret" not in logged


LIVE_KEY = "sk_" + "live_" + "notarealkey0000000000"  # built at run time: no secret-looking text in the repository


def test_a_practices_gates_come_from_the_deployment_limits(shared):
    gates = shared.practice_gates(Limits(google_project_per_minute=100, google_user_per_minute=10,
                                         stripe_test_per_second=3, stripe_live_per_second=9), "lena")
    (google,) = gates.google
    assert {limit.key: limit.rate for limit in google.limits} == {PROJECT_KEY: 100, google_user_key("lena"): 10}
    assert gates.stripe is not None
    live = gates.stripe(LIVE_KEY, "live")
    assert [(limit.key, limit.rate) for limit in live.limits] == [(stripe_key(LIVE_KEY, "live"), 9)]
    assert isinstance(live, RateGate) and isinstance(google, RateGate)


def test_a_stripe_accounts_key_is_a_digest_never_the_key():
    key = stripe_key("sk_test_51AbcSecretValue", "test")
    assert key.startswith("stripe:test:") and "51AbcSecretValue" not in key and "sk_" not in key
    assert key == stripe_key("sk_test_51AbcSecretValue", "test") != stripe_key("sk_test_51Other", "test")
