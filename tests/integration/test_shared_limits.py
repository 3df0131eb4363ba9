"""Limits shared by a deployment's workers, kept in PostgreSQL (slotguard/store/shared_limits.py).

Several processes (spawned: fresh interpreters, sharing nothing but the database) take starts
from one key; the start times they record never put more than the rate into any window of the
limit's length. Small rates and short windows keep each test to a few seconds.
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


def run_processes(target: Any, argument_lists: list[tuple], timeout: float = 30.0) -> list[Any]:
    """Run `target(*arguments, results)` in one spawned process per argument list; return
    what each put on the results queue."""
    results = SPAWN.Queue()
    processes = [SPAWN.Process(target=target, args=(*arguments, results)) for arguments in argument_lists]
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
    limits = SharedLimits(pg_url, schema=pg_schema, margin=0.15)  # see limits_worker.take_starts
    yield limits
    limits.close()


def test_several_processes_sharing_a_key_never_exceed_its_rate_in_any_window(pg_url, pg_schema):
    rate, window, each = 10, 0.5, 8
    start_at = time.monotonic() + 3.0  # time for four interpreters to start
    reports = run_processes(limits_worker.take_starts,
                            [(pg_url, pg_schema, [("stripe:test:shared", rate, window)], each, start_at, f"w{n}") for n in range(4)])

    starts = sorted(moment for _, times in reports for moment in times)
    assert len(starts) == 4 * each
    assert busiest_window(starts, window) <= rate, f"{busiest_window(starts, window)} starts in one {window}s window; the limit is {rate}"
    spacing = (window + 0.15) / rate
    assert starts[-1] - starts[0] < 2 * len(starts) * spacing, "the processes were held back far more than the rate asks"


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
    project, account, window, each = 8, 3, 0.5, 5
    start_at = time.monotonic() + 3.0
    practices = ["lena", "ola", "kari", "nils"]
    reports = run_processes(limits_worker.take_starts, [
        (pg_url, pg_schema, [(PROJECT_KEY, project, window), (google_user_key(name), account, window)], each, start_at, name)
        for name in practices
    ])

    everything = [moment for _, times in reports for moment in times]
    assert len(everything) == len(practices) * each
    assert busiest_window(everything, window) <= project
    for name, times in reports:
        assert busiest_window(times, window) <= account, f"practice {name} went over its account's limit"
    # Four practices at 3 each could do 12 per window: the project's 8 (less the margin's
    # share and some jitter) is what held them.
    assert busiest_window(everything, window) >= project - 2


@pytest.mark.slow
def test_the_limiter_itself_grants_hundreds_of_starts_a_second(pg_url, pg_schema):
    """The cost of the one statement per request (printed with -s; the numbers are in
    docs/deploy.md#7-limits-shared-by-all-workers). The floor is far below what was
    measured, so a slow shared machine does not fail it, but a second round trip or a table
    scan per request would."""
    rates = {}
    for name, keys in (("1 process", ["one"]), ("4 processes, one key", ["one"] * 4), ("4 processes, 4 keys", ["a", "b", "c", "d"])):
        start_at = time.monotonic() + 2.5
        counts = run_processes(limits_worker.grant_flat_out,
                               [(pg_url, pg_schema, f"bench:{key}", 1.5, start_at) for key in keys])
        rates[name] = sum(counts) / 1.5
    print("\nshared limiter grants per second: " + ", ".join(f"{name} {rate:.0f}" for name, rate in rates.items()))
    assert all(rate > 150 for rate in rates.values())


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
    shared = SharedLimits(pg_url, schema=pg_schema, fallback_share=0.5, retry_seconds=1.0)
    gate = shared.gate(Limit("stripe:test:hiccup", 10, 0.5))
    gate.acquire()
    pid = shared._conn.info.backend_pid if shared._conn else 0
    with psycopg.connect(pg_url, autocommit=True) as admin:  # the server drops the worker's connection
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)

    starts = []
    for _ in range(4):  # 0.66 s: all before the database is tried again
        gate.acquire()
        starts.append(time.monotonic())
    offline_spacing = (0.5 + 0.05) / 10 / 0.5
    assert shared.offline
    assert min(later - earlier for earlier, later in zip(starts, starts[1:], strict=False)) >= offline_spacing - 0.005, \
        "offline, starts are spaced at the fallback share of the limit, not let through"

    time.sleep(max(0.0, starts[0] + 1.05 - time.monotonic()))
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
        """The first sleep wakes 150 ms late, as a thread on a busy machine may."""
        sleeps.append(seconds)
        time.sleep(seconds + (0.15 if len(sleeps) == 1 else 0.0))

    shared = SharedLimits(pg_url, schema=pg_schema, margin=0.2, sleep=drowsy)  # late: over 0.1 s
    gate = shared.gate(Limit("stripe:test:drowsy", 5, 0.5))
    gate.acquire()
    started = time.monotonic()
    waited = gate.acquire()

    assert waited == pytest.approx(sum(sleeps), abs=1e-6)
    # Woken at 0.29 s: the start at 0.14 is left empty, the next free one (0.28) taken at once.
    assert time.monotonic() - started == pytest.approx(0.7 / 5 + 0.15, abs=0.06)
    assert any("shared_limits_late" in record.getMessage() for record in caplog.records)
    (use,) = shared.usage()
    assert use.used == 3, "the late start was given up and a second one reserved: three taken, one left empty"
    shared.close()


def test_an_emptied_table_is_filled_again_without_going_offline(shared, pg_url, pg_schema):
    gate = shared.gate(Limit("google:user:lena", 5, 0.5))
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

    assert waits[0] == 0 and all(wait > 0 for wait in waits[1:])
    assert time.monotonic() - started == pytest.approx(3 * (0.55 / 8 / 0.25), abs=0.1)
    assert len(attempts) == 1, "the database is tried again only every retry_seconds, not on every request"
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert logged.count("shared_limits_offline") == 1 and "secret" not in logged


def test_a_practices_gates_come_from_the_deployment_limits(shared):
    gates = shared.practice_gates(Limits(google_project_per_minute=100, google_user_per_minute=10,
                                         stripe_test_per_second=3, stripe_live_per_second=9), "lena")
    (google,) = gates.google
    assert {limit.key: limit.rate for limit in google.limits} == {PROJECT_KEY: 100, google_user_key("lena"): 10}
    assert gates.stripe is not None
    live = gates.stripe("sk_live_51Secret", "live")
    assert [(limit.key, limit.rate) for limit in live.limits] == [(stripe_key("sk_live_51Secret", "live"), 9)]
    assert isinstance(live, RateGate) and isinstance(google, RateGate)


def test_a_stripe_accounts_key_is_a_digest_never_the_key():
    key = stripe_key("sk_test_51AbcSecretValue", "test")
    assert key.startswith("stripe:test:") and "51AbcSecretValue" not in key and "sk_" not in key
    assert key == stripe_key("sk_test_51AbcSecretValue", "test") != stripe_key("sk_test_51Other", "test")
