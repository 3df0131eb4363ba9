"""An .ics feed read by the real adapter and the engine: floating times are local time in
the practice's zone (issue 11, item 13), and recurrence bombs are capped, reported and left
out while the rest of the feed is read (item 11)."""

from __future__ import annotations

import pytest

from integration.ics_source import IcsSource
from tests.support.ics_feeds import NOW, practice, starts, tick, vevent, write_feed


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


# A reader that spins on a bomb fails here instead of hanging the suite; CPU time and memory
# of this feed are printed by bench/bench_ics_feed.py (0.1 s and 0.1 MB; the issue saw 97 s
# and 1.8 GB for the MINUTELY series alone).
@pytest.mark.timeout(120)
def test_recurrence_bombs_are_capped_reported_and_the_rest_is_read(tmp_path):
    path = write_feed(
        tmp_path,
        vevent("minutely", ":20260620T080000Z", ":20260620T081500Z", "RRULE:FREQ=MINUTELY", summary="Flood"),
        vevent("secondly", ":20260620T080000Z", ":20260620T080001Z", "RRULE:FREQ=SECONDLY", summary="Worse"),
        vevent("long-ago", ":20250101T000000Z", ":20250101T000001Z", "RRULE:FREQ=SECONDLY", summary="From last year"),
        vevent("never", ":20260620T080000Z", ":20260620T090000Z", "RRULE:FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", summary="30 February"),
        vevent("single", ":20260623T080000Z", ":20260623T090000Z"),
        vevent("weekly", ":20260622T070000Z", ":20260622T080000Z", "RRULE:FREQ=WEEKLY"),
    )
    [page] = list(IcsSource(practice(path)).pages(None, NOW))
    errors = {event["id"]: event["_error"] for event in page.events if "_error" in event}
    assert set(errors) == {"minutely", "secondly", "long-ago", "never"}
    assert "recurring event 'minutely' ('Flood') is not read: it has more than 1000 instances in the sync window (calendar.max_instances_per_series)" in errors["minutely"]
    assert "'Worse'" in errors["secondly"] and "calendar.max_instances_per_series" in errors["secondly"]
    assert "more than 20000 instances before the sync window" in errors["long-ago"]
    assert "never occurs" in errors["never"]
    assert not page.full, "with series left out, nothing is taken as deleted"
    read = sorted(event["id"] for event in page.events if "_error" not in event)
    assert len(read) == 1 + 5 and read[0].startswith("single") and all(event_id.startswith("weekly_") for event_id in read[1:])
    # Through the engine: the bombs are problems of their own, the appointments are tracked.
    report, ledger = tick(practice(path))
    assert len([problem for problem in report.problems if "is not read" in problem]) == 4
    assert len(starts(ledger, "single")) == 1 and len(starts(ledger, "weekly")) == 5


def test_past_the_feed_limit_the_largest_series_are_left_out(tmp_path):
    path = write_feed(
        tmp_path,
        vevent("weekly", ":20260622T070000Z", ":20260622T080000Z", "RRULE:FREQ=WEEKLY"),  # 5 in the window
        vevent("daily", ":20260622T070000Z", ":20260622T080000Z", "RRULE:FREQ=DAILY;COUNT=4"),
        *(vevent(f"single-{number}", f":2026062{number}T120000Z", f":2026062{number}T130000Z") for number in range(1, 4)),
    )
    [page] = list(IcsSource(practice(path, max_events=8)).pages(None, NOW))
    errors = {event["id"]: event["_error"] for event in page.events if "_error" in event}
    assert list(errors) == ["weekly"] and "the feed has more than 8 events in the sync window" in errors["weekly"]
    assert "(calendar.max_events)" in errors["weekly"]
    read = [event["id"] for event in page.events if "_error" not in event]
    assert len(read) == 3 + 4 and not page.full
