"""A worker process for the shared-limits tests: takes starts from a shared gate and reports
when each request would have gone out.

Run through multiprocessing with the "spawn" start method (a fresh interpreter, as a worker on
another machine has), so nothing of the parent's limiter state is shared but the database.
"""

from __future__ import annotations

import time
from typing import Any


def take_starts(url: str, schema: str, limits: list[tuple[str, int, float]], count: int, start_at: float,
                label: str, results: Any, margin: float = 0.15) -> None:
    """Wait until `start_at` (time.monotonic, the same clock in every process of a machine),
    then acquire the gate over `limits` `count` times; put (label, start times) on `results`.
    `margin` is wider than the default: on a test machine shared by many processes a sleep
    sometimes ends tens of milliseconds late (what the margin is for)."""
    from slotguard.store.shared_limits import Limit, SharedLimits  # in the child: a fresh import, as on another machine

    shared = SharedLimits(url, schema=schema, margin=margin)
    gate = shared.gate(*(Limit(key, rate, window) for key, rate, window in limits))
    starts = []
    try:
        time.sleep(max(0.0, start_at - time.monotonic()))
        for _ in range(count):
            gate.acquire()
            starts.append(time.monotonic())
    finally:
        shared.close()
        results.put((label, starts))


def grant_flat_out(url: str, schema: str, key: str, seconds: float, start_at: float, results: Any) -> None:
    """Acquire a gate whose limit is never reached for `seconds`; put the number of grants
    on `results` (what the limiter itself costs: one statement per request)."""
    from slotguard.store.shared_limits import Limit, SharedLimits  # in the child: a fresh import, as on another machine

    shared = SharedLimits(url, schema=schema)
    gate = shared.gate(Limit(key, 10**9, 1.0))
    gate.acquire()  # connect and declare the key before the clock runs
    time.sleep(max(0.0, start_at - time.monotonic()))
    granted, until = 0, time.monotonic() + seconds
    while time.monotonic() < until:
        gate.acquire()
        granted += 1
    shared.close()
    results.put(granted)
