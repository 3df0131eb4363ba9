#!/usr/bin/env python3
"""How long the .ics adapter takes, and how much memory it holds, on feeds built to be
slow (issue 11, items 10 and 11): each poison VEVENT of tests/integration/test_ics_poison_events.py
beside three good events, and the recurrence bombs of test_ics_feed_limits.py.

The tests assert what a practitioner cares about (the bad event is a problem of its own,
every other appointment is read) and stop a reader that hangs (pytest-timeout); the
numbers live here. Each line prints the CPU seconds of this process (the best of --repeat
runs) and the peak of Python allocations in one more, traced, read. Nothing is asserted.

Usage: .venv/bin/python bench/bench_ics_feed.py [--repeat 3] [--only SUBSTRING]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from integration.ics_source import IcsSource  # noqa: E402
from tests.integration.test_ics_poison_events import GOOD, POISONS  # noqa: E402
from tests.support.ics_feeds import NOW, practice, vevent, write_feed  # noqa: E402

BOMBS = (
    vevent("minutely", ":20260620T080000Z", ":20260620T081500Z", "RRULE:FREQ=MINUTELY", summary="Flood"),
    vevent("secondly", ":20260620T080000Z", ":20260620T080001Z", "RRULE:FREQ=SECONDLY", summary="Worse"),
    vevent("long-ago", ":20250101T000000Z", ":20250101T000001Z", "RRULE:FREQ=SECONDLY", summary="From last year"),
    vevent("never", ":20260620T080000Z", ":20260620T090000Z", "RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", summary="30 February"),
)


def measure(events: tuple[str, ...], repeat: int) -> tuple[float, int]:
    """(best CPU seconds of `repeat` untraced reads, peak traced bytes of one more) of a feed of `events`."""
    with tempfile.TemporaryDirectory() as folder:
        source = IcsSource(practice(write_feed(Path(folder), *events)))
        best = float("inf")
        for _ in range(repeat):
            began = time.process_time()
            list(source.pages(None, NOW))
            best = min(best, time.process_time() - began)
        tracemalloc.start()
        list(source.pages(None, NOW))
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return best, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="untraced runs per feed, the best CPU time printed; one more traced run gives the memory peak")
    parser.add_argument("--only", default="", help="only the feeds whose name contains this")
    args = parser.parse_args()
    feeds = {"three good events (for scale)": GOOD}
    feeds |= {f"poison: {name}": (GOOD[0], poison, *GOOD[1:]) for name, poison in POISONS.items()}
    feeds |= {"four recurrence bombs beside two good series": (*BOMBS, *GOOD)}
    print(f"CPU seconds (best of {args.repeat}) and peak traced memory (one more run) per feed")
    for name, events in feeds.items():
        if args.only in name:
            seconds, peak = measure(events, args.repeat)
            print(f"{name[:90]:90} {seconds:8.3f} s {peak / 1e6:8.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
