#!/usr/bin/env python3
"""Benchmark of the engine's tick on a large synthetic practice.

Generates N appointments over M calendars as Google Calendar v3 Event resources (mostly
plain bookings, some weekly series, some no-show colour marks, "#latecancel" titles,
declined invitations, cancelled events, private blocks without a client and all-day
events), loads them into in-memory calendars and runs the real engine on them
(slotguard.run.wiring.build_engine with the record-only provider, the in-memory mailer and a
file-backed SQLite ledger in a temporary folder), then times three ticks:

  1. the first tick: every appointment is new;
  2. an idle tick two minutes later: nothing changed in the calendars;
  3. a tick in which 1% of the events changed (moves, late cancellations, deletions,
     no-show marks, edits that change nothing the tracker reacts to).

Each tick is split into its phases by timing the engine's own methods: `sync` (calendar
source -> normalize -> tracker -> policies -> actions in the ledger: the throughput
figure), `time` (check_time: attendance settling for appointments that started),
`execute` (execute_due: due emails rendered and "sent" into memory, due fees recorded) and
`write-back`. Only numbers are printed; nothing is asserted.

Usage: .venv/bin/python bench/bench_tick.py [--appointments 100000] [--calendars 10]
       [--profile]   (cProfile of the first tick's sync phase, top functions printed)
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import io
import os
import pstats
import random
import resource
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Callable, Iterator
from zoneinfo import ZoneInfo

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from integration.memory import MemoryCalendar, MemoryMailer  # noqa: E402
from integration.record_only import RecordOnlyProvider  # noqa: E402
from slotguard.config.schema import parse_settings, read_toml  # noqa: E402
from slotguard.domain.durations import to_utc_text  # noqa: E402
from slotguard.run.engine import Engine  # noqa: E402
from slotguard.domain.tick_report import TickReport  # noqa: E402
from slotguard.domain.interfaces import NullWriteBack, SyncPage  # noqa: E402
from slotguard.store.backend import shown_location  # noqa: E402
from slotguard.store.ledger import Ledger  # noqa: E402
from slotguard.run.wiring import build_engine  # noqa: E402

ZONE = ZoneInfo("Europe/Oslo")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=ZONE)  # a Thursday noon, like `make run`
POLL = timedelta(minutes=2)
GOOGLE_PAGE_SIZE = 250  # events.list maxResults default
FIRST_NAMES = ["Kari", "Ola", "Ingrid", "Lars", "Anna", "Jonas", "Sofie", "Erik", "Maja", "Noah", "Ewa", "Piotr", "Dana", "Yossi", "Mette", "Jens"]
LAST_NAMES = ["Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Kowalska", "Nowak", "Cohen", "Levi", "Jensen", "Schmidt", "Berg"]


# -- measuring ---------------------------------------------------------------------------


def current_rss_mb() -> float:
    """Resident set size now (Linux /proc), else the peak so far."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident set size of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class PhaseTimer:
    """Wraps the engine's phase methods on the instance, so `engine.tick` runs unchanged and
    each phase is timed. `budget` caps how many due actions the execute phase carries out,
    through the engine's own stop hook (checked before each action)."""

    PHASES = (("sync", "sync_calendar"), ("time", "check_time"), ("execute", "execute_due"), ("write-back", "write_back"))

    def __init__(self, engine: Engine):
        self.seconds: dict[str, float] = defaultdict(float)
        self.rss_after: dict[str, float] = {}
        self.phase = ""
        self.budget: int | None = None
        self.profiler: cProfile.Profile | None = None
        for phase, method in self.PHASES:
            setattr(engine, method, self._timed(phase, getattr(engine, method)))
        carry_out = engine.execute

        def counted_execute(*args, **kwargs):
            if self.phase == "execute" and self.budget is not None:
                self.budget -= 1
            return carry_out(*args, **kwargs)

        engine.execute = counted_execute
        engine.stop_requested = self.stop_requested

    def stop_requested(self) -> bool:
        return self.phase == "execute" and self.budget is not None and self.budget <= 0

    def _timed(self, phase: str, function: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            self.phase = phase
            if self.profiler is not None and phase == "sync":
                self.profiler.enable()
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - started
                if self.profiler is not None and phase == "sync":
                    self.profiler.disable()
                self.phase = ""
                self.rss_after[phase] = current_rss_mb()

        return wrapper

    def reset(self) -> None:
        self.seconds = defaultdict(float)
        self.rss_after = {}


class CountingMailer(MemoryMailer):
    """The in-memory mailer, keeping only the subject of each message.

    MemoryMailer keeps every EmailMessage object (about 150 KB each with the email package's
    parsed headers); tens of thousands of them would measure the bench, not the engine.
    """

    def send(self, message: EmailMessage, action_id: str) -> None:
        self.sent.setdefault(action_id, message["Subject"])  # type: ignore[arg-type]


# -- the synthetic calendars -------------------------------------------------------------


class PagedMemoryCalendar(MemoryCalendar):
    """MemoryCalendar that hands out its events in pages of `page_size`, as Google does.

    The engine commits one transaction per page, and a real source never holds a whole
    calendar's copy at once, so paging keeps both commit size and memory realistic.
    """

    def __init__(self, calendar_id: str, page_size: int):
        super().__init__(calendar_id)
        self.page_size = page_size
        self.seconds = 0.0  # spent building pages (the stand-in for Google's HTTP + JSON)

    def pages(self, sync_token: str | None, now: datetime) -> Iterator[SyncPage]:
        since = int(sync_token) if sync_token else 0
        keys = [key for key, version in self.changed_at.items() if version > since]
        if since == 0:
            keys = [key for key in keys if self.events[key].get("status") != "cancelled"]
        token = str(self.version)
        if not keys:
            yield SyncPage(events=[], full=False, last=True, next_sync_token=token)
            return
        for offset in range(0, len(keys), self.page_size):
            started = time.perf_counter()
            events = [copy.deepcopy(self.events[key]) for key in keys[offset : offset + self.page_size]]
            self.seconds += time.perf_counter() - started
            last = offset + self.page_size >= len(keys)
            yield SyncPage(events=events, full=False, last=last, next_sync_token=token if last else None)


def iso(moment: datetime) -> str:
    return moment.astimezone(ZONE).isoformat()


def slot_start(rng: random.Random, now: datetime, days_past: int, days_future: int) -> datetime:
    """A weekday start between 08:00 and 17:45 local time, on a quarter hour."""
    while True:
        day = now.date() + timedelta(days=rng.randint(-days_past, days_future))
        if day.weekday() < 5:
            break
    minutes = rng.randrange(8 * 60, 18 * 60, 15)
    return datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=ZONE)


def make_event(
    calendar_index: int,
    event_id: str,
    start: datetime,
    minutes: int,
    client: tuple[str, str] | None,
    *,
    title: str,
    description: str = "",
    color: str | None = None,
    declined: bool = False,
    status: str = "confirmed",
    series_id: str | None = None,
    online: bool = False,
    email_in_description: bool = False,
) -> dict:
    """One Google Calendar v3 Event resource, with the fields Google returns."""
    owner = f"therapist{calendar_index}@example.com"
    event: dict = {
        "kind": "calendar#event",
        "etag": f'"{abs(hash(event_id)) % 10**16}"',
        "id": event_id,
        "status": status,
        "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
        "created": "2026-09-01T10:00:00.000Z",
        "summary": title,
        "creator": {"email": owner, "self": True},
        "organizer": {"email": owner, "self": True},
        "start": {"dateTime": iso(start), "timeZone": "Europe/Oslo"},
        "end": {"dateTime": iso(start + timedelta(minutes=minutes)), "timeZone": "Europe/Oslo"},
        "iCalUID": f"{series_id or event_id}@google.com",
        "sequence": 0,
        "reminders": {"useDefault": True},
        "eventType": "default",
    }
    if description:
        event["description"] = description
    if color:
        event["colorId"] = color
    if series_id:
        event["recurringEventId"] = series_id
        event["originalStartTime"] = {"dateTime": iso(start), "timeZone": "Europe/Oslo"}
    if online:
        event["hangoutLink"] = f"https://meet.google.com/{event_id[-10:]}"
    else:
        event["location"] = "Storgata 1, 0155 Oslo"
    if client is not None:
        email, name = client
        if email_in_description:
            event["description"] = f"email: {email}\n{description}".strip()
        else:
            event["attendees"] = [
                {"email": owner, "organizer": True, "self": True, "responseStatus": "accepted"},
                {"email": email, "displayName": name, "responseStatus": "declined" if declined else "accepted"},
            ]
    return event


def generate(
    calendars: list[MemoryCalendar], total: int, clients_per_calendar: int, now: datetime, days_past: int, days_future: int, seed: int
) -> dict[str, int]:
    """Put `total` events into the calendars; return how many of each sort."""
    rng = random.Random(seed)
    counts: dict[str, int] = defaultdict(int)
    per_calendar = [total // len(calendars) + (1 if index < total % len(calendars) else 0) for index in range(len(calendars))]
    written_at = now - timedelta(hours=1)
    for index, (calendar, wanted) in enumerate(zip(calendars, per_calendar)):
        clients = [
            (f"client{index}-{number}@example.net", f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}")
            for number in range(clients_per_calendar)
        ]
        made = 0
        # Weekly regulars: about 40% of the bookings are instances of recurring series.
        series_count = 0
        while made < wanted * 0.4:
            client = rng.choice(clients)
            series_id = f"s{index}x{series_count}"
            series_count += 1
            first = slot_start(rng, now - timedelta(days=days_past), 0, 6)
            week = 0
            while made < wanted * 0.4 and week < (days_past + days_future) // 7:
                start = first + timedelta(weeks=week)
                event_id = f"{series_id}_{start.astimezone(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
                calendar.put(make_event(index, event_id, start, 60, client, title=f"Massage {client[1]}", series_id=series_id), written_at)
                counts["series instance"] += 1
                made += 1
                week += 1
        while made < wanted:
            event_id = f"e{index}x{made}"
            start = slot_start(rng, now, days_past, days_future)
            client = rng.choice(clients)
            roll = rng.random()
            at = written_at
            if roll < 0.04:
                calendar.put(make_event(index, event_id, start, 60, None, title=rng.choice(["Lunch", "Admin", "Supervision"])), at)
                counts["private block (no client)"] += 1
            elif roll < 0.05:
                event = make_event(index, event_id, start, 60, None, title="Holiday")
                event["start"], event["end"] = {"date": start.date().isoformat()}, {"date": (start.date() + timedelta(days=1)).isoformat()}
                calendar.put(event, at)
                counts["all-day"] += 1
            elif roll < 0.08:
                calendar.put(make_event(index, event_id, start, 60, client, title=f"Massage {client[1]}", status="cancelled"), at)
                counts["cancelled"] += 1
            elif roll < 0.11:
                at = min(start - timedelta(minutes=rng.randint(30, 40 * 60)), now - timedelta(minutes=1))
                calendar.put(make_event(index, event_id, start, 60, client, title=f"Massage {client[1]} #latecancel"), at)
                counts["#latecancel"] += 1
            elif roll < 0.13:
                at = min(start - timedelta(minutes=rng.randint(30, 40 * 60)), now - timedelta(minutes=1))
                calendar.put(make_event(index, event_id, start, 60, client, title=f"Massage {client[1]}", declined=True), at)
                counts["declined"] += 1
            elif roll < 0.16 and start < now:
                calendar.put(make_event(index, event_id, start, 60, client, title=f"Massage {client[1]}", color="11"), at)
                counts["no-show colour"] += 1
            elif roll < 0.22:
                calendar.put(make_event(index, event_id, start, 30, client, title=f"Intro {client[1]}", online=True), at)
                counts["intro (online)"] += 1
            else:
                by_description = rng.random() < 0.1
                calendar.put(
                    make_event(index, event_id, start, 60, client, title=f"Massage {client[1]}", email_in_description=by_description,
                               description="Prefers firm pressure." if rng.random() < 0.3 else ""),
                    at,
                )
                counts["plain"] += 1
            made += 1
    return counts


def change_some(calendars: list[MemoryCalendar], share: float, now: datetime, seed: int) -> dict[str, int]:
    """Change `share` of the events the way a practitioner's day does; return how many of each."""
    rng = random.Random(seed + 1)
    counts: dict[str, int] = defaultdict(int)
    for calendar in calendars:
        candidates = sorted(key for key, event in calendar.events.items() if event.get("status") != "cancelled" and event.get("attendees"))
        for event_id in rng.sample(candidates, max(1, int(len(calendar.events) * share))):
            event = copy.deepcopy(calendar.events[event_id])
            start = datetime.fromisoformat(event["start"]["dateTime"])
            roll = rng.random()
            if start < now:
                if roll < 0.5:
                    event["colorId"] = "11"
                    counts["no-show colour added"] += 1
                else:
                    event["description"] = (event.get("description", "") + "\nPaid in cash.").strip()
                    counts["note edited (no tracked change)"] += 1
            elif roll < 0.3:
                moved = start + timedelta(days=rng.randint(1, 3))
                event["start"]["dateTime"] = iso(moved)
                event["end"]["dateTime"] = iso(moved + timedelta(hours=1))
                counts["moved"] += 1
            elif roll < 0.5:
                event["summary"] += " #latecancel"
                counts["#latecancel added"] += 1
            elif roll < 0.65:
                calendar.delete(event_id, now)
                counts["deleted"] += 1
                continue
            else:
                event["description"] = (event.get("description", "") + "\nParking: back entrance.").strip()
                counts["note edited (no tracked change)"] += 1
            calendar.put(event, now)
    return counts


def settings_for(folder: Path, now: datetime, days_past: int, storage_url: str = "", schema: str = ""):
    """config/example.toml with an in-memory calendar and a ledger in `folder` (with
    `storage_url`: in `schema` on that PostgreSQL server)."""
    data = read_toml(ROOT / "config" / "example.toml")
    data["calendar"]["source"] = "memory"
    data["calendar"].pop("url", None)
    data["storage"] = {"data_dir": str(folder), "ledger": str(folder / "ledger.sqlite3")}
    if storage_url:
        data["storage"].update(url=storage_url, schema=schema)
    data["mail"]["outbox_dir"] = str(folder / "outbox")
    # Watch from the start of the generated window, so past appointments' fees are real.
    data["payments"]["charge_from"] = now - timedelta(days=days_past + 1)
    return parse_settings(data, "bench settings")


# -- running -----------------------------------------------------------------------------


def print_tick(label: str, report: TickReport, timer: PhaseTimer, source_seconds: float, new_appointments: int) -> None:
    seconds = timer.seconds
    engine_sync = seconds.get("sync", 0.0) - source_seconds
    print(f"\n{label}")
    print(f"  events read                 {report.events_seen}")
    print(f"  new appointments stored     {new_appointments}")
    print(f"  happenings                  {sum(report.happenings.values())}  {dict(sorted(report.happenings.items()))}")
    print(f"  actions planned             {sum(report.planned.values())}  {dict(sorted(report.planned.items()))}")
    print(f"  actions carried out         {sum(report.executed.values())}  {dict(sorted(report.executed.items()))}")
    print(f"  problems                    {len(report.problems)}")
    print(f"  {'phase':<16}{'seconds':>10}{'RSS after, MB':>16}")
    for phase, _ in PhaseTimer.PHASES:
        print(f"  {phase:<16}{seconds.get(phase, 0.0):>10.3f}{timer.rss_after.get(phase, 0.0):>16.1f}")
    print(f"  {'  of sync: source':<16}{source_seconds:>10.3f}   (building the pages: the stand-in for Google's HTTP + JSON)")
    print(f"  {'tick total':<16}{sum(seconds.values()):>10.3f}")
    if report.events_seen and engine_sync > 0:
        print(f"  events/s through normalize+tracker+policies+ledger (sync minus source)  {report.events_seen / engine_sync:,.0f}")
    executed = sum(report.executed.values())
    if executed and seconds.get("execute"):
        print(f"  actions carried out/s (execute phase)                                  {executed / seconds['execute']:,.0f}")


def count(ledger: Ledger, sql: str) -> int:
    return ledger.db.execute(sql).fetchone()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appointments", type=int, default=100_000, help="events to generate (default 100000)")
    parser.add_argument("--calendars", type=int, default=10, help="calendars to spread them over (default 10)")
    parser.add_argument("--clients", type=int, default=0, help="clients per calendar (default: one per 8 events)")
    parser.add_argument("--days-past", type=int, default=30, help="events start from this many days ago (default 30)")
    parser.add_argument("--days-future", type=int, default=90, help="up to this many days ahead (default 90)")
    parser.add_argument("--page-size", type=int, default=GOOGLE_PAGE_SIZE, help="events per sync page (default 250)")
    parser.add_argument("--changed", type=float, default=0.01, help="share of events changed before the third tick (default 0.01)")
    parser.add_argument("--mail-sample", type=int, default=2000,
                        help="due actions the first tick really carries out (default 2000; -1 for all, slow)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--storage-url", default="",
                        help="a PostgreSQL server for the ledger (storage.url), in a new schema dropped at the end; default: a SQLite file")
    parser.add_argument("--profile", action="store_true", help="cProfile the first tick's sync phase and print the top functions")
    args = parser.parse_args(argv)

    rss_start = current_rss_mb()
    started = time.perf_counter()
    calendars = [PagedMemoryCalendar(f"cal{index}@example.com", args.page_size) for index in range(args.calendars)]
    clients = args.clients or max(1, args.appointments // args.calendars // 8)
    mix = generate(calendars, args.appointments, clients, NOW, args.days_past, args.days_future, args.seed)
    rss_fixture = current_rss_mb()
    print(f"Slotguard tick benchmark: {args.appointments} events, {args.calendars} calendars, {clients} clients per calendar")
    print(f"  window: {args.days_past} days back, {args.days_future} days ahead of {NOW.isoformat()}; pages of {args.page_size}")
    print(f"  mix: {dict(sorted(mix.items()))}")
    print(f"  generated in {time.perf_counter() - started:.1f}s; RSS {rss_start:.1f} MB after imports, "
          f"{rss_fixture:.1f} MB with the synthetic calendars held in memory")

    def source_seconds() -> float:
        return sum(calendar.seconds for calendar in calendars)

    with tempfile.TemporaryDirectory(prefix="slotguard-bench-") as folder:
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        settings = settings_for(Path(folder), NOW, args.days_past, args.storage_url, schema)
        print(f"  ledger: {shown_location(settings.storage.location, settings.storage.schema_name)}")
        ledger = Ledger(settings.storage.location, settings.storage.schema_name)
        mailer = CountingMailer()
        engine = build_engine(
            settings, NOW, ledger=ledger, calendars=[(calendar, NullWriteBack()) for calendar in calendars],
            provider=RecordOnlyProvider(), mailer=mailer,
        )
        timer = PhaseTimer(engine)
        if args.profile:
            timer.profiler = cProfile.Profile()

        # Tick 1. Every booking confirmation is due at once (planned with due = now), so no
        # choice of `now` keeps the first tick's mail out; it is timed as its own phase, on
        # the first --mail-sample due actions.
        timer.budget = None if args.mail_sample < 0 else args.mail_sample
        before = source_seconds()
        report = engine.tick(NOW)
        first_count = count(ledger, "SELECT COUNT(*) FROM appointments")
        print_tick("Tick 1: first sync, every appointment new", report, timer, source_seconds() - before, first_count)
        backlog = count(ledger, "SELECT COUNT(*) FROM actions WHERE state IN ('planned', 'pending_review') "
                        f"AND due_at <= '{to_utc_text(NOW)}'")
        executed = sum(report.executed.values())
        if executed and backlog:
            rate = executed / timer.seconds["execute"]
            print(f"  due actions left after the sample: {backlog}; at the measured rate the whole first-tick backlog "
                  f"({executed + backlog}) takes {(executed + backlog) / rate:,.0f}s")
        later = count(ledger, "SELECT COUNT(*) FROM actions WHERE state IN ('planned', 'pending_review')")
        print(f"  open actions in the ledger after tick 1: {later} (reminders, fees in review, notices waiting for their fee)")
        if timer.profiler is not None:
            stream = io.StringIO()
            stats = pstats.Stats(timer.profiler, stream=stream)
            stats.sort_stats("cumulative").print_stats(35)
            stats.sort_stats("tottime").print_stats(25)
            print("\ncProfile of tick 1, sync phase (times inflated by the profiler):\n" + stream.getvalue())
            timer.profiler = None

        if backlog:
            # Drain the rest of tick 1's mail, untimed, with rendering skipped, so tick 2 is idle.
            drain_started = time.perf_counter()
            engine._send = lambda action, now: setattr(action, "external_id", "bench-drained")  # type: ignore[method-assign]
            timer.budget = None
            engine.execute_due(NOW, TickReport())
            del engine._send
            print(f"  (drained the remaining {backlog} due actions without rendering, untimed: {time.perf_counter() - drain_started:.1f}s)")
        mailer.sent.clear()

        timer.reset()
        timer.budget = None
        before = source_seconds()
        report = engine.tick(NOW + POLL)
        print_tick("Tick 2: idle, two minutes later, nothing changed", report, timer, source_seconds() - before,
                   count(ledger, "SELECT COUNT(*) FROM appointments") - first_count)

        changes = change_some(calendars, args.changed, NOW + 2 * POLL, args.seed)
        timer.reset()
        before = source_seconds()
        report = engine.tick(NOW + 2 * POLL)
        print_tick(f"Tick 3: {sum(changes.values())} events changed {dict(sorted(changes.items()))}", report, timer,
                   source_seconds() - before, 0)

        size = sum(path.stat().st_size for path in Path(folder).iterdir() if path.is_file())
        if args.storage_url:
            size = count(ledger, "SELECT SUM(pg_total_relation_size(c.oid))::bigint FROM pg_class c JOIN pg_namespace n "
                                 f"ON n.oid = c.relnamespace WHERE n.nspname = '{schema}' AND c.relkind = 'r'")
        ledger.close()
        if args.storage_url:
            with psycopg.connect(args.storage_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    peak = peak_rss_mb()
    print(f"\nledger size MB (the file, or the schema's tables) {size / 2**20:.1f}")
    print(f"peak RSS MB (ru_maxrss, whole process)          {peak:.1f}")
    print(f"peak RSS MB minus the synthetic calendars       {peak - rss_fixture + rss_start:.1f}")
    print("targets: >= 5000 appointments/s through tracker+policies+ledger; RSS < 200 MB at 100000 appointments")
    return 0


if __name__ == "__main__":
    sys.exit(main())
