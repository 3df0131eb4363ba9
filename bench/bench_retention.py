"""How long the daily retention pruning takes, and how long its daily look takes once there is
nothing left to prune (the usual day).

Builds a SQLite ledger of --appointments appointments spread over --years years (one
appointment every so often, each with two happenings, a paid fee and a notice; one in
--open with an unpaid fee), then times: the first pruning (most of the history pruned and
pseudonymised), a second one the same day (nothing to do: what every later day costs until
records pass the bookkeeping period), and the migration of titles when the file is opened
as a schema-3 ledger. Prints wall times and the file size before and after.

Numbers only; nothing is asserted. Run: .venv/bin/python bench/bench_retention.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from slotguard.domain.model import ActionKind, ActionState, ActionSubject, Happening, HappeningKind, new_action  # noqa: E402
from slotguard.domain.money import Money  # noqa: E402
from slotguard.intake.normalize import normalize  # noqa: E402
from slotguard.intake.tracker import Tracked  # noqa: E402
from slotguard.privacy.retention import bookkeeping_cutoff, prune  # noqa: E402
from slotguard.store.ledger import Ledger  # noqa: E402
from slotguard.store.rows import appointment_to_json  # noqa: E402
from slotguard.store.schema import TITLES_TAKEN_OUT  # noqa: E402
from tests.support.builders import event, settings  # noqa: E402

NOW = datetime(2027, 6, 15, 12, 0, tzinfo=UTC)


def build(ledger: Ledger, count: int, years: int, open_every: int) -> None:
    practice = settings()
    step = timedelta(days=365 * years) / count
    with ledger.transaction():
        for index in range(count):
            start = NOW - timedelta(days=365 * years) + step * index
            email = f"client{index % 400}@example.com"
            appointment = normalize(event(f"e{index}", start, client=email), "primary", practice, start - timedelta(days=2)).appointment
            ledger.save_tracked(Tracked(appointment, "", "no_show", start - timedelta(days=2)))
            stored = json.loads(appointment_to_json(appointment))
            stored["title"] = f"Massage, notes about {email}'s back {index}"
            ledger.db.execute("UPDATE appointments SET snapshot = ? WHERE calendar_id = ? AND event_id = ?", (json.dumps(stored), "primary", f"e{index}"))
            for kind in (HappeningKind.BOOKED, HappeningKind.NO_SHOW):
                ledger.add_happening(Happening(f"e{index}/{kind.value}", kind, "primary", f"e{index}", email, start, start, start))
            subject = ActionSubject.of_appointment(appointment)
            status = "unpaid" if index % open_every == 0 else "paid"
            ledger.add_action(new_action(subject, ActionKind.CHARGE, "no_show", "fee", key=f"e{index}", now=start, state=ActionState.DONE,
                                         amount=Money(50000, "NOK"), context={"payment_status": status}), note="charged")
            ledger.add_action(new_action(subject, ActionKind.EMAIL, "no_show", "notice", key=f"e{index}", now=start, state=ActionState.DONE,
                                         template="no_show_followup"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--appointments", type=int, default=20_000)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--open", type=int, default=50, help="one appointment in this many has an unpaid fee")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ledger.sqlite3"
        ledger = Ledger(path)
        started = time.perf_counter()
        build(ledger, arguments.appointments, arguments.years, arguments.open)
        print(f"built {arguments.appointments} appointments over {arguments.years} years in {time.perf_counter() - started:.1f}s; "
              f"file {path.stat().st_size / 1e6:.1f} MB")
        ledger.set_meta("schema_version", str(TITLES_TAKEN_OUT - 1))
        ledger.close()
        started = time.perf_counter()
        ledger = Ledger(path)
        print(f"migration 4 (titles out, VACUUM): {time.perf_counter() - started:.2f}s; file {path.stat().st_size / 1e6:.1f} MB")
        cutoff, past = NOW - timedelta(days=548), bookkeeping_cutoff(NOW, 10)
        started = time.perf_counter()
        first = prune(ledger, cutoff, past)
        print(f"first pruning: {time.perf_counter() - started:.2f}s ({first.line()})")
        started = time.perf_counter()
        again = prune(ledger, cutoff, past)
        print(f"the next day's look: {time.perf_counter() - started:.2f}s ({again.line()})")
        ledger.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        print(f"file after pruning: {path.stat().st_size / 1e6:.1f} MB")
        ledger.close()


if __name__ == "__main__":
    main()
