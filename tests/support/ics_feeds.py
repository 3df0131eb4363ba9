"""Small builders for .ics feeds read by the real adapter (integration/ics_source.py) and
one engine tick over them (tests/integration/test_ics_*.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from integration.ics_source import IcsSource
from integration.memory import MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import NullWriteBack
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import settings as practice_settings

NOW = datetime(2026, 6, 20, 12, 0, tzinfo=UTC)


def vevent(uid: str, start: str | None, end: str | None, *extra: str, summary: str = "Massage") -> str:
    """One VEVENT organised by the practitioner with Ana as the client. `start` and `end`
    are the DTSTART and DTEND parameters and value (":20260623T080000Z",
    ";VALUE=DATE:20260623"); None leaves the property out. `summary` is escaped."""
    lines = [f"UID:{uid}", "SUMMARY:" + summary.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;").replace("\n", "\\n")]
    lines += [f"DTSTART{start}"] if start is not None else []
    lines += [f"DTEND{end}"] if end is not None else []
    lines += ["ORGANIZER:mailto:lena@example.com", "ATTENDEE;CN=Ana Silva;PARTSTAT=ACCEPTED:mailto:ana@example.com", *extra]
    return "BEGIN:VEVENT\r\n" + "\r\n".join(lines) + "\r\nEND:VEVENT\r\n"


def write_feed(folder, *events: str, header: tuple[str, ...] = ()):
    path = folder / "calendar.ics"
    path.write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + "".join(f"{line}\r\n" for line in header)
                    + "".join(events) + "END:VCALENDAR\r\n")
    return path


def practice(path, timezone_name: str = "Europe/Oslo", **calendar):
    return practice_settings(practice={"timezone": timezone_name},
                             calendar={"source": "ics", "url": str(path), "window_past": "1d", "window_future": "30d", **calendar})


def engine_over(settings, ledger: Ledger | None = None):
    """An engine reading the feed of `settings` into `ledger` (a new in-memory one if None)."""
    return build_engine(settings, NOW, ledger=ledger or Ledger(":memory:"), calendars=[(IcsSource(settings), NullWriteBack())],
                        provider=RecordOnlyProvider(), mailer=MemoryMailer())


def tick(settings):
    """One engine tick over the feed; returns (report, ledger)."""
    engine = engine_over(settings)
    return engine.tick(NOW), engine.ledger


def starts(ledger, uid: str) -> dict[str, str]:
    return {
        tracked.appointment.event_id: tracked.appointment.start.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
        for tracked in ledger.all_tracked() if tracked.appointment.event_id.startswith(uid)
    }
