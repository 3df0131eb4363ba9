"""A worker process for the shared-limits tests: takes starts from a shared gate and reports
when each request would have gone out.

Run through multiprocessing with the "spawn" start method (a fresh interpreter, as a worker on
another machine has), so nothing of the parent's limiter state is shared but the database.
"""

from __future__ import annotations

import time
from typing import Any


def take_starts(url: str, schema: str, limits: list[tuple[str, int, float]], count: int, label: str, margin: float,
                ready: Any, results: Any) -> None:
    """Connect, wait at the barrier `ready` until every process has connected (however long
    the interpreters take to start on a busy machine), then acquire the gate over `limits`
    `count` times; put (label, start times) on `results` (time.monotonic, the same clock in
    every process of a machine). `margin` is far wider than the default: on a test machine
    shared by many processes a process may be descheduled for a long moment between its
    start and the moment it records it (what the margin is for)."""
    from slotguard.store.shared_limits import Limit, SharedLimits  # in the child: a fresh import, as on another machine

    shared = SharedLimits(url, schema=schema, margin=margin)
    gate = shared.gate(*(Limit(key, rate, window) for key, rate, window in limits))
    starts = []
    try:
        shared.usage()  # open the connection (and create the table) before the clock runs
        ready.wait(timeout=120)
        for _ in range(count):
            gate.acquire()
            starts.append(time.monotonic())
    finally:
        shared.close()
        results.put((label, starts))


def grant_flat_out(url: str, schema: str, key: str, seconds: float, ready: Any, results: Any) -> None:
    """Acquire a gate whose limit is never reached for `seconds`; put the number of grants
    on `results` (what the limiter itself costs: one statement per request)."""
    from slotguard.store.shared_limits import Limit, SharedLimits  # in the child: a fresh import, as on another machine

    shared = SharedLimits(url, schema=schema)
    gate = shared.gate(Limit(key, 10**9, 1.0))
    gate.acquire()  # connect and declare the key before the clock runs
    ready.wait(timeout=120)
    granted, until = 0, time.monotonic() + seconds
    while time.monotonic() < until:
        gate.acquire()
        granted += 1
    shared.close()
    results.put(granted)
