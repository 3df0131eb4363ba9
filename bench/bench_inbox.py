"""What the inbox costs a tick: messages handled per second, and what the email-signal overlay
adds to reading a calendar.

A practice (tests/support/builders.py) with --appointments sessions of --clients clients on a
SQLite ledger in a temporary folder; the real engine with an in-memory inbox. Then:
1. a tick reading --messages messages at once: a quarter "I'll be there", a quarter "I need
   to cancel" (each a real link, so each cancel is observed again and planned for by the
   policies), a quarter free text (forwarded: spooled and planned), a quarter forged links
   (refused); prints the tick's wall time and the time per message;
2. the first full sync of the calendar with the inbox on and off (the overlay looks up a
   cancellation by email only for a known appointment no longer open: on a first sync none).

Numbers only; nothing is asserted. Run: .venv/bin/python bench/bench_inbox.py
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from integration.memory import MemoryCalendar, MemoryInbox, MemoryMailer  # noqa: E402
from integration.record_only import RecordOnlyProvider  # noqa: E402
from slotguard.domain.interfaces import NullWriteBack  # noqa: E402
from slotguard.mail.links import appointment_target, load_secret, secret_path, sign  # noqa: E402
from slotguard.run.wiring import build_engine  # noqa: E402
from slotguard.store.ledger import Ledger  # noqa: E402
from tests.support.builders import event, settings  # noqa: E402

OSLO = ZoneInfo("Europe/Oslo")
START = datetime(2026, 12, 1, 8, 0, tzinfo=OSLO)
INBOX = "lena+slotguard@example.com"


def practice(folder: Path, appointments: int, clients: int, inbox: bool):
    options = {"inbox": {"source": "memory", "address": INBOX}} if inbox else {}
    practice_settings = settings(storage={"data_dir": str(folder)}, mail={"quiet_hours": ""}, **options)
    calendar = MemoryCalendar("primary")
    for n in range(appointments):
        start = START + timedelta(days=1, hours=2 * n)
        calendar.put(event(f"e{n}", start, client=f"c{n % clients}@example.com", name=f"Client {n % clients}"), START)
    memory_inbox = MemoryInbox() if inbox else None
    engine = build_engine(practice_settings, START, ledger=Ledger(folder / "ledger.sqlite3"), calendars=[(calendar, NullWriteBack())],
                          provider=RecordOnlyProvider(), mailer=MemoryMailer(), inbox=memory_inbox)
    return engine, calendar, memory_inbox


def message(sender: str, subject: str, body: str, n: int, at: datetime) -> bytes:
    return (f"From: {sender}\r\nTo: {INBOX}\r\nSubject: {subject}\r\nMessage-ID: <b{n}@bench.example>\r\n"
            f"Date: {format_datetime(at)}\r\n\r\n{body}\r\n").encode()


def inbox_tick(appointments: int, clients: int, messages: int) -> tuple[float, dict[str, int]]:
    with tempfile.TemporaryDirectory() as folder:
        engine, _, inbox = practice(Path(folder), appointments, clients, inbox=True)
        assert inbox is not None
        engine.tick(START)
        secret = load_secret(secret_path(engine.settings))
        at = START + timedelta(hours=1)
        for n in range(messages):
            kind = n % 4
            event_id, start, client = f"e{n}", START + timedelta(days=1, hours=2 * n), f"c{n % clients}@example.com"
            if kind in (0, 1):
                command = "confirm" if kind == 0 else "cancel"
                token = sign(secret, command, appointment_target("primary", event_id, start, client), start)
                raw = message(client, f"{command} [{token}]", "", n, at)
            elif kind == 2:
                raw = message(client, "A question", "Can I bring my daughter next time?", n, at)
            else:
                raw = message(client, "waive [sg1-waive-0123456789abcdef0123-zzzzzz-aaaaaaaaaaaaaaaaaaaaaaaaaa]", "", n, at)
            inbox.deliver(raw, at)
        started = time.perf_counter()
        engine.tick(at + timedelta(minutes=1))
        elapsed = time.perf_counter() - started
        kinds: dict[str, int] = {}
        for row in engine.ledger.mail_since(START):
            label = f"{row['kind']}:{row['command'] or row['outcome']}"
            kinds[label] = kinds.get(label, 0) + 1
        engine.ledger.close()
        return elapsed, kinds


def first_sync(appointments: int, clients: int, inbox: bool, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as folder:
            engine, _, _ = practice(Path(folder), appointments, clients, inbox)
            started = time.perf_counter()
            engine.tick(START)
            times.append(time.perf_counter() - started)
            engine.ledger.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appointments", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    elapsed, kinds = inbox_tick(args.appointments, args.clients, args.messages)
    print(f"inbox tick: {args.messages} messages in {elapsed:.2f} s, {1000 * elapsed / args.messages:.1f} ms per message "
          f"(the tick includes carrying out what they planned: receipts, forwards, fees' notices)")
    print("  recorded: " + ", ".join(f"{label} {count}" for label, count in sorted(kinds.items())))
    off = first_sync(args.appointments, args.clients, False, args.rounds)
    on = first_sync(args.appointments, args.clients, True, args.rounds)
    print(f"first sync of {args.appointments} appointments: inbox off {off:.2f} s, on {on:.2f} s ({100 * (on - off) / off:+.1f} %), median of {args.rounds}")


if __name__ == "__main__":
    main()
