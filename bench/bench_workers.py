"""Many practices, several `main.py worker` processes, one PostgreSQL server (issue 16).

For each worker count (--workers, default 1,2,4) a fresh deployment of --practices practices
(tests/support/practices.py), each with --events bookings on its own calendar of one Google
wire fake (run in this process), money recorded by the record-only provider, is worked by that
many `main.py worker` processes. Prints, per worker count:

  first sync     seconds from the workers' start until every practice's first tick is done
                 (every row of the work queue ticked without failure), and its requests;
  due actions/s  --marks recent bookings per practice are marked `#noshow` at once and every
                 practice is woken (work_queue.wake, what a push notification does): actions
                 carried out (fees and their emails) per second, from the wake to the last one;
  latency        mark-to-action (a fee's executed_at minus when its mark was made), p50 and
                 p95, for --latency-marks marks made one at a time: with polling only
                 (calendar.poll_interval, --poll), and with a wake after each mark (the
                 path a push notification takes once the webhook server has it; Google's own
                 delay before it notifies is not in it);
  idle requests  Google API requests per minute with nothing changing, counted over one poll
                 interval (--idle-seconds to choose); with --push ([push] on, channels opened,
                 calendars read at push.poll_fallback, 30m) over 2 minutes.

and the scaling ratio from the fewest workers to the most (first sync and due actions/s).
Numbers only; nothing is asserted. Needs the test PostgreSQL server (SLOTGUARD_TEST_PG or
127.0.0.1:5432). Small run: .venv/bin/python bench/bench_workers.py --practices 20 --events 20
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from slotguard.domain.durations import parse_duration  # noqa: E402
from slotguard.store import work_queue  # noqa: E402
from tests.support.fake_google_calendar import FakeGoogleCalendar  # noqa: E402
from tests.support.pg import reachable, test_pg_url  # noqa: E402
from tests.support.practices import NO_SHOW, Booking, GeneratedDeployment, write_deployment  # noqa: E402

# [push] on: each worker opens a channel per calendar on the fake and polls at poll_fallback.
# Google delivers only to https, and a worker process allows nothing else, so the channels name
# an address nobody listens on: notifications are not delivered here, the wake after each mark
# stands in for them (the latency "wake" below).
PUSH_SECRET_VARIABLE = "SLOTGUARD_BENCH_PUSH_SECRET"
PUSH = f"""
[push]
enabled = true
address = "https://127.0.0.1:9/google/push"
token_secret = {{ env = "{PUSH_SECRET_VARIABLE}" }}
poll_fallback = "30m"
"""


def parse_utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


class Run:
    """One deployment and its worker processes (ours; stopped by `stop`)."""

    def __init__(self, root: Path, args: argparse.Namespace, url: str):
        self.google = FakeGoogleCalendar().start()
        started = time.monotonic()
        spread = timedelta(days=58)  # from 29 days back to 29 ahead: inside the default sync window
        self.deployment: GeneratedDeployment = write_deployment(
            root, args.practices, url=url, google=self.google, bookings=max(args.events - args.marks, 0), clients=args.clients,
            past_hours=29 * 24, spread=spread, poll_interval=args.poll,
            workers='lease = "2m"\nidle_sleep = "1s"\n' + (f"cached_practices = {args.cached}\n" if args.cached else ""),
            sections=PUSH if args.push else "")
        # The bookings the bench marks: ended an hour or more ago (a mark is honoured for 3 days).
        self.recent: dict[str, list[Booking]] = {}
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        for practice in self.deployment.practices:
            self.recent[practice.id] = [self.deployment.add_booking(practice, now - timedelta(hours=2, minutes=30 * n))
                                        for n in range(args.marks)]
        self.written = time.monotonic() - started
        self.processes: list[subprocess.Popen] = []
        self.queue = psycopg.connect(url, autocommit=True)
        self.pause = max(1.0, args.practices / 250)  # between two looks at the ledgers: a look reads every practice's schema

    def start_workers(self, count: int) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), PUSH_SECRET_VARIABLE: "bench-push-secret"}
        for number in range(count):
            log = open(self.deployment.root / f"worker{number}.log", "w")  # noqa: SIM115 - the child owns it
            self.processes.append(subprocess.Popen(
                [sys.executable, str(ROOT / "main.py"), "worker", "--deployment", str(self.deployment.file), "--name", f"bench{number}"],
                cwd=self.deployment.root, env=env, stdout=log, stderr=subprocess.STDOUT))
            log.close()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.queue.close()
        self.google.stop()

    def died(self) -> str:
        dead = [process.args[-1] for process in self.processes if process.poll() is not None]
        return f"worker(s) {dead} died; see {self.deployment.root}/worker*.log" if dead else ""

    def ticked(self) -> int:
        """Practices whose first tick is done without failure (work queue rows)."""
        try:
            return self.queue.execute(
                f'SELECT count(*) FROM "{self.deployment.queue_schema}".work_queue WHERE last_tick_at IS NOT NULL AND consecutive_failures = 0'
            ).fetchone()[0]
        except psycopg.errors.UndefinedTable:
            return 0

    def fees(self, practice_ids: set[str] | None = None) -> dict[tuple[str, str], datetime]:
        """(practice, event id) -> when its fee was carried out, for every fee carried out (in
        the practices `practice_ids`, default all)."""
        found = {}
        for practice in self.deployment.practices:
            if practice_ids is not None and practice.id not in practice_ids:
                continue
            rows = self.queue.execute(
                f"""SELECT event_id, executed_at FROM "{practice.schema}".actions
                    WHERE kind = 'charge' AND executed_at IS NOT NULL""").fetchall()
            for event_id, executed_at in rows:
                found[(practice.id, event_id)] = parse_utc(executed_at)
        return found

    def executed_since(self, since: datetime) -> list[datetime]:
        """When each action carried out at or after `since` (any kind) was carried out."""
        text = since.strftime("%Y-%m-%dT%H:%M:%SZ")
        times: list[datetime] = []
        for practice in self.deployment.practices:
            rows = self.queue.execute(f'SELECT executed_at FROM "{practice.schema}".actions WHERE executed_at >= %s', (text,)).fetchall()
            times += [parse_utc(row[0]) for row in rows]
        return times

    def wait(self, condition, timeout: float, what: str) -> float:
        started = time.monotonic()
        while not condition():
            if self.died():
                raise SystemExit(self.died())
            if time.monotonic() - started > timeout:
                raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}; see {self.deployment.root}")
            time.sleep(self.pause)
        return time.monotonic() - started


def latency(run: Run, bookings: list[Booking], wake: bool, gap: float, timeout: float) -> list[float]:
    """Mark `bookings` one at a time, `gap` seconds apart (waking each practice when `wake`);
    return each fee's seconds from its mark to its executed_at (whole seconds, as the ledger keeps them)."""
    marked: dict[tuple[str, str], datetime] = {}
    for booking in bookings:
        run.deployment.tag(booking, NO_SHOW)
        marked[(booking.practice.id, booking.event_id)] = datetime.now(UTC)
        if wake:
            work_queue.wake(run.queue, booking.practice.id, "bench mark", schema=run.deployment.queue_schema)
        time.sleep(gap)
    practice_ids = {booking.practice.id for booking in bookings}
    run.wait(lambda: set(marked) <= set(run.fees(practice_ids)), timeout, f"the fees of {len(marked)} marks")
    done = run.fees(practice_ids)
    return [max(0.0, (done[key] - at.replace(microsecond=0)).total_seconds()) for key, at in marked.items()]


def bench(workers: int, args: argparse.Namespace, url: str, root: Path) -> dict[str, float]:
    run = Run(root / f"workers{workers}", args, url)
    result: dict[str, float] = {"workers": workers, "written": run.written}
    try:
        run.google.reset_requests()
        run.start_workers(workers)
        result["first_sync"] = run.wait(lambda: run.ticked() == args.practices, args.timeout, "every practice's first sync")
        result["first_sync_requests"] = len(run.google.api_requests())

        # The bookings marked one at a time for the latency (one per practice, --latency-marks in
        # all), and the others, marked at once for the due actions per second.
        singles = [run.recent[practice.id][0] for practice in run.deployment.practices if run.recent[practice.id]][:args.latency_marks]
        chosen = {(booking.practice.id, booking.event_id) for booking in singles}
        burst = [booking for practice in run.deployment.practices for booking in run.recent[practice.id]
                 if (booking.practice.id, booking.event_id) not in chosen]

        # Mark-to-action latency: with polling only, then with a wake after each mark (push's path);
        # before the burst, while the practices' polls are spread as the first sync left them.
        # (With push on, a calendar is polled every 30 minutes: no polling latency then.)
        half = 0 if args.push else len(singles) // 2
        for label, chosen_now, wake in (("poll", singles[:half], False), ("wake", singles[half:], True)):
            if chosen_now:
                seconds = latency(run, chosen_now, wake, args.gap, args.timeout)
                result[f"{label}_p50"], result[f"{label}_p95"] = percentile(seconds, 0.5), percentile(seconds, 0.95)
                result[f"{label}_marks"] = len(seconds)

        # Due actions per second: all marked at once, every practice woken.
        if burst:
            for booking in burst:
                run.deployment.tag(booking, NO_SHOW)
            woken = datetime.now(UTC).replace(microsecond=0)
            began = time.monotonic()
            for practice in run.deployment.practices:
                work_queue.wake(run.queue, practice.id, "bench burst", schema=run.deployment.queue_schema)
            wanted = {(b.practice.id, b.event_id) for b in burst}
            run.wait(lambda: wanted <= set(run.fees()), args.timeout, f"{len(wanted)} fees")
            executed = run.executed_since(woken)
            # From the wake to the last action's executed_at (whole seconds, +1 for the last one's
            # own second), not to when this bench saw it: a look at 1,000 ledgers takes a while.
            elapsed = (max(executed) - woken).total_seconds() + 1 if executed else time.monotonic() - began
            result["burst_fees"] = len(wanted)
            result["burst_actions"] = len(executed)
            result["burst_seconds"] = elapsed
            result["actions_per_second"] = len(executed) / max(elapsed, 1e-9)

        # Idle: nothing changes; what the workers ask Google for.
        # Over one poll interval by default: right after the burst the practices' polls come in
        # clusters, so a shorter window would catch a cluster or none.
        idle = args.idle_seconds or (120.0 if args.push else parse_duration(args.poll).total_seconds())
        time.sleep(2)
        run.google.reset_requests()
        time.sleep(idle)
        result["idle_seconds"] = idle
        result["idle_per_minute"] = len(run.google.api_requests()) * 60 / idle
    finally:
        run.stop()
        if not args.keep:
            run.deployment.drop()
    return result


def seconds_text(result: dict[str, float], label: str) -> str:
    """"poll p50 60s p95 110s", or "poll -" when that latency was not measured."""
    if f"{label}_p50" not in result:
        return f"{label} -"
    return f"{label} p50 {result[f'{label}_p50']:.0f}s p95 {result[f'{label}_p95']:.0f}s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--practices", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200, help="bookings per practice (its --marks recent no-shows included)")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to run, comma-separated")
    parser.add_argument("--clients", type=int, default=10, help="clients per practice")
    parser.add_argument("--marks", type=int, default=3, help="recent bookings per practice that get marked #noshow")
    parser.add_argument("--latency-marks", type=int, default=40,
                        help="marks made one at a time for the latency, one per practice (half with polling, half with a wake)")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between two latency marks")
    parser.add_argument("--poll", default="2m", help="calendar.poll_interval of every practice")
    parser.add_argument("--idle-seconds", type=float, default=0.0,
                        help="how long the idle requests are counted (default: one --poll interval; 120 s with --push)")
    parser.add_argument("--cached", type=int, default=0, help="workers.cached_practices: engines a worker keeps (default: the deployment's default)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="longest wait for any phase, seconds")
    parser.add_argument("--push", action="store_true",
                        help="[push] on (channels opened, calendars polled at push.poll_fallback, 30m): idle requests with push")
    parser.add_argument("--keep", action="store_true", help="keep the schemas and files (for a look afterwards)")
    args = parser.parse_args()
    url = test_pg_url()
    why = reachable(url)
    if why:
        raise SystemExit(f"PostgreSQL is not reachable at {url} ({why}); set SLOTGUARD_TEST_PG")
    print(f"bench_workers: {args.practices} practices x {args.events} events, poll {args.poll}{', push on' if args.push else ''}, {os.cpu_count()} cores, "
          f"PostgreSQL {url.rsplit('@', 1)[-1]}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as folder:
        for count in [int(n) for n in args.workers.split(",")]:
            result = bench(count, args, url, Path(folder))
            results.append(result)
            print(f"workers={count}: written in {result['written']:.1f}s; first sync {result['first_sync']:.1f}s "
                  f"({result['first_sync_requests']:.0f} requests); "
                  f"{result.get('actions_per_second', 0):.1f} due actions/s ({result.get('burst_actions', 0):.0f} actions in {result.get('burst_seconds', 0):.0f}s for "
                  f"{result.get('burst_fees', 0):.0f} fees); latency {seconds_text(result, 'poll')}, {seconds_text(result, 'wake')}; idle {result['idle_per_minute']:.0f} requests/min "
                  f"(over {result['idle_seconds']:.0f}s)", flush=True)
    if len(results) > 1:
        first, last = results[0], results[-1]
        print(f"scaling {first['workers']} -> {last['workers']} workers: first sync x{first['first_sync'] / last['first_sync']:.2f}, "
              f"due actions/s x{last.get('actions_per_second', 0) / max(first.get('actions_per_second', 0), 1e-9):.2f} "
              f"({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
