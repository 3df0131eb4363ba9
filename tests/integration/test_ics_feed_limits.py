"""An .ics feed read by the real adapter and the engine: floating times are local time in
the practice's zone (issue 11, item 13)."""

from __future__ import annotations

from datetime import datetime, timezone

from integration.ics_source import IcsSource
from integration.memory import MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.interfaces import NullWriteBack
from slotguard.ledger import Ledger
from slotguard.wiring import build_engine
from tests.support.builders import settings as practice_settings

NOW = datetime(2026, 6, 20, 12, 0, tzinfo=timezone.utc)


def vevent(uid: str, start: str, end: str, *extra: str, summary: str = "Massage") -> str:
    lines = [f"UID:{uid}", f"SUMMARY:{summary}", f"DTSTART{start}", f"DTEND{end}", "ORGANIZER:mailto:lena@example.com",
             "ATTENDEE;CN=Ana Silva;PARTSTAT=ACCEPTED:mailto:ana@example.com", *extra]
    return "BEGIN:VEVENT\r\n" + "\r\n".join(lines) + "\r\nEND:VEVENT\r\n"


def write_feed(folder, *events: str):
    path = folder / "calendar.ics"
    path.write_text("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n" + "".join(events) + "END:VCALENDAR\r\n")
    return path


def practice(path, **calendar):
    return practice_settings(calendar={"source": "ics", "url": str(path), "window_past": "1d", "window_future": "30d", **calendar})


def tick(settings):
    """One engine tick over the feed; returns (report, ledger)."""
    ledger = Ledger(":memory:")
    engine = build_engine(settings, NOW, ledger=ledger, calendars=[(IcsSource(settings), NullWriteBack())],
                          provider=RecordOnlyProvider(), mailer=MemoryMailer())
    return engine.tick(NOW), ledger


def starts(ledger, uid: str) -> dict[str, str]:
    return {
        tracked.appointment.event_id: tracked.appointment.start.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
        for tracked in ledger.all_tracked() if tracked.appointment.event_id.startswith(uid)
    }


def test_floating_times_are_local_time_in_the_practice_zone(tmp_path):
    path = write_feed(
        tmp_path,
        vevent("single", ":20260701T100000", ":20260701T110000"),  # summer in Oslo: UTC+2
        vevent("weekly", ":20260622T090000", ":20260622T100000", "RRULE:FREQ=WEEKLY;COUNT=3"),
        # The second instance moved from 09:00 to 13:00 (local), also written without a zone.
        vevent("weekly", ":20260629T130000", ":20260629T140000", "RECURRENCE-ID:20260629T090000"),
    )
    report, ledger = tick(practice(path))
    assert not report.problems, report.problems
    assert list(starts(ledger, "single").values()) == ["2026-07-01T08:00Z"]
    assert starts(ledger, "weekly") == {
        "weekly_20260622T070000Z": "2026-06-22T07:00Z",
        "weekly_20260629T070000Z": "2026-06-29T11:00Z",  # the moved instance keeps its instance id
        "weekly_20260706T070000Z": "2026-07-06T07:00Z",
    }
