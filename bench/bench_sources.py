"""What each calendar source costs on the wire, side by side with Google's.

For every source of the contract suite (tests/contract/harness_*.py: its own adapter
against its local server or wire fake, behind the same wire tap that counts requests and
bytes both ways, headers included), a practice of --events appointments is read by the real
engine: the first tick (the first, full sync), then --idle-ticks ticks with nothing changed.
Prints, per source: requests and bytes of the first sync, requests and bytes per idle tick
(target: 1 request per idle tick, every source), and the first tick's wall time; the last
columns compare with Google's. A source whose server program is missing is listed as such.

Numbers only; nothing is asserted. Run: .venv/bin/python bench/bench_sources.py
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.contract.harness import Booking, missing, open_harness, source_names  # noqa: E402
from tests.contract.practice import Practice  # noqa: E402


def bookings(practice: Practice, count: int) -> list[Booking]:
    """`count` appointments, two hours apart from tomorrow on (2,000 fit the default 180-day window)."""
    first = practice.now + timedelta(days=1)
    return [Booking("Massage", f"client{n % 97}@example.com", f"Client {n % 97}", first + timedelta(hours=2 * n),
                    first + timedelta(hours=2 * n, minutes=60)) for n in range(count)]


def measure(name: str, events: int, idle_ticks: int) -> dict[str, float] | str:
    """The numbers of one source, or why it could not be measured."""
    why = missing(name)
    if why:
        return why
    with tempfile.TemporaryDirectory() as folder:
        harness = open_harness(name, Path(folder))
        practice = Practice(harness, Path(folder))
        try:
            wanted = bookings(practice, events)
            create_many = getattr(harness, "create_many", None)  # one write for all, where the harness has it
            if create_many is not None:
                create_many(wanted)
            else:
                for booking in wanted:
                    harness.create(booking)
            harness.reset_requests()
            started = time.perf_counter()
            report = practice.tick()
            seconds = time.perf_counter() - started
            if report.problems:
                return f"the first sync reported problems: {report.problems[:2]}"
            first_requests, first_bytes = harness.request_count(), harness.bytes_moved()
            harness.reset_requests()
            for tick in range(idle_ticks):
                practice.tick(practice.now + timedelta(minutes=2 * (tick + 1)))
            return {"first_requests": first_requests, "first_bytes": first_bytes, "first_seconds": seconds,
                    "idle_requests": harness.request_count() / idle_ticks, "idle_bytes": harness.bytes_moved() / idle_ticks,
                    "appointments": len(practice.appointments())}
        finally:
            practice.ledger.close()
            harness.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="appointments in the calendar (default 2000)")
    parser.add_argument("--idle-ticks", type=int, default=5, help="ticks with nothing changed (default 5)")
    parser.add_argument("--sources", nargs="*", default=None, help="sources to measure (default: every harness)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    names = args.sources or source_names()
    results = {name: measure(name, args.events, args.idle_ticks) for name in names}
    google = results.get("google")
    print(f"{args.events} appointments; idle = the mean of {args.idle_ticks} ticks with nothing changed; "
          "bytes = requests and answers, headers included")
    head = f"{'source':<10} {'read':>6} {'first sync req':>15} {'bytes':>11} {'seconds':>8} {'idle req':>9} {'idle bytes':>11} {'first bytes vs google':>22} {'idle bytes vs google':>21}"
    print(head)
    print("-" * len(head))
    for name, numbers in results.items():
        if isinstance(numbers, str):
            print(f"{name:<10} not measured: {numbers}")
            continue
        versus_first = versus_idle = "-"
        if isinstance(google, dict) and name != "google":
            versus_first = f"{numbers['first_bytes'] / max(google['first_bytes'], 1):.2f}x"
            versus_idle = f"{numbers['idle_bytes'] / max(google['idle_bytes'], 1):.2f}x"
        print(f"{name:<10} {numbers['appointments']:>6} {numbers['first_requests']:>15} {numbers['first_bytes']:>11,.0f} "
              f"{numbers['first_seconds']:>8.2f} {numbers['idle_requests']:>9.2f} {numbers['idle_bytes']:>11,.0f} "
              f"{versus_first:>22} {versus_idle:>21}")
    print("target: 1 request per idle tick for every source")


if __name__ == "__main__":
    main()
