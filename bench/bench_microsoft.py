"""How much Microsoft Graph traffic Slotguard's Microsoft 365 source costs, measured against
the Graph wire fake (tests/support/fake_graph.py, in this process, over TLS).

Prints, for `--events` events in the window (default 2000):
  - the first full sync (one delta round): requests, bytes received, wall time;
  - an idle tick (the delta link, nothing changed): requests and bytes (target: 1 request);
  - a tick after `--changes` events changed: requests and bytes;
  - a start-up of a new process (MSAL reads the authority's OpenID configuration once).
Sign-in goes through the real MSAL device-code flow first (not counted).

`measure(events, changes)` returns the numbers as a dict, for a side-by-side bench of every
source. Numbers only; nothing is asserted. Run: .venv/bin/python bench/bench_microsoft.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from integration.microsoft_graph import PAGE_SIZE, open_calendars  # noqa: E402
from tests.support.fake_graph import FakeGraph, booking  # noqa: E402
from tests.support.microsoft_practice import microsoft_settings, sign_in  # noqa: E402


def _traffic(fake: FakeGraph, since: int) -> tuple[int, int]:
    done = fake.requests[since:]
    return len(done), sum(request.bytes_out for request in done)


def measure(events: int = 2000, changes: int = 5, page_size: int = PAGE_SIZE) -> dict[str, float]:
    """Requests and bytes (received by Slotguard) of a first sync of `events` events, an idle
    tick, a tick after `changes` changes, and a process start, against a fresh fake."""
    with tempfile.TemporaryDirectory() as folder:
        fake = FakeGraph(Path(folder), interval=0).start()
        try:
            settings = microsoft_settings(fake, Path(folder) / "var")
            sign_in(settings)
            now = datetime.now(UTC).replace(microsecond=0)
            for number in range(events):
                start = now - timedelta(days=20) + timedelta(minutes=90 * number)
                fake.put_event(booking(f"event-{number:05}", start, f"client{number % 97}@example.com", f"Client {number % 97}",
                                       body=f"email: client{number % 97}@example.com"))
            results: dict[str, float] = {}
            mark = len(fake.requests)
            [(source, _)] = open_calendars(settings, page_size=page_size)
            started = time.perf_counter()
            pages = list(source.pages(None, now))
            results["first_sync_seconds"] = time.perf_counter() - started
            requests, size = _traffic(fake, mark)
            results["first_sync_requests"], results["first_sync_bytes"] = requests, size
            results["first_sync_events"] = sum(len(page.events) for page in pages)
            # the process start inside that: the authority's OpenID configuration (MSAL)
            results["startup_requests"] = sum(1 for request in fake.requests[mark:] if "/v1.0/" not in request.path)
            token = pages[-1].next_sync_token
            mark = len(fake.requests)
            idle = list(source.pages(token, now))
            results["idle_requests"], results["idle_bytes"] = _traffic(fake, mark)
            for number in range(changes):
                fake.update_event(f"event-{number * 7:05}", subject=f"Session {number} moved")
            mark = len(fake.requests)
            list(source.pages(idle[-1].next_sync_token, now))
            results["changed_requests"], results["changed_bytes"] = _traffic(fake, mark)
            return results
        finally:
            fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument("--page-size", type=int, default=PAGE_SIZE)
    args = parser.parse_args()
    found = measure(args.events, args.changes, args.page_size)
    print(f"Microsoft 365 (Graph calendarView delta, page size {args.page_size}, fake over TLS on loopback)")
    print(f"  first sync of {found['first_sync_events']:.0f} events: {found['first_sync_requests']:.0f} requests "
          f"({found['startup_requests']:.0f} of them sign-in start-up), {found['first_sync_bytes'] / 1024:.0f} KiB received, "
          f"{found['first_sync_seconds']:.2f} s")
    print(f"  idle tick: {found['idle_requests']:.0f} request(s), {found['idle_bytes']:.0f} bytes received")
    print(f"  tick after {args.changes} changes: {found['changed_requests']:.0f} request(s), {found['changed_bytes'] / 1024:.1f} KiB received")


if __name__ == "__main__":
    main()
