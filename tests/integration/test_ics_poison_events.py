"""One bad VEVENT never blanks an .ics feed (issue 11, item 10): a VEVENT whose dates the
recurrence libraries cannot handle (a year 1 or 9999 DTSTART, DTEND or RECURRENCE-ID, a
DURATION of a million weeks, dates that are not dates, no DTSTART) is reported as a problem
naming its UID and summary, and every other appointment of the feed is read.

Before this, any of them made the whole feed "not valid iCalendar" (or dropped the series
without a word), so every appointment of the practice stopped: reminders, fees, everything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from integration.ics_source import IcsSource
from slotguard.domain.interfaces import AdapterError
from slotguard.domain.model import HappeningKind
from slotguard.intake.normalize import normalize
from slotguard.store.ledger import Ledger
from tests.support.ics_feeds import NOW, engine_over, practice, starts, vevent, write_feed

GOOD = (
    vevent("good-single", ":20260623T080000Z", ":20260623T090000Z"),
    vevent("good-floating", ":20260701T100000", ":20260701T110000"),
    vevent("good-weekly", ":20260622T070000Z", ":20260622T080000Z", "RRULE:FREQ=WEEKLY;COUNT=3"),
)
# A single event is named by its UID, an instance of a series UID_RECURRENCE-ID (in UTC).
GOOD_IDS = {"good-single", "good-floating", "good-weekly_20260622T070000Z", "good-weekly_20260629T070000Z", "good-weekly_20260706T070000Z"}
SUMMARY = 'Bad "one"\nsecond line'
IN_WINDOW = (datetime(2026, 6, 20, tzinfo=UTC) + timedelta(seconds=25 * number) for number in range(100_000))


def poison(start: str | None = ":20260624T080000Z", end: str | None = ":20260624T090000Z", *extra: str) -> str:
    return vevent("poison", start, end, *extra, summary=SUMMARY)


POISONS = {
    "DTSTART in year 1": poison(":00010101T000000Z"),
    "DTSTART in year 1 in a time zone": poison(";TZID=Europe/Oslo:00010101T000000"),
    "DTEND in year 9999": poison(end=":99991231T235959Z"),
    "DTEND in year 1": poison(end=":00010101T000000Z"),
    "an all-day DTSTART in year 9999": poison(";VALUE=DATE:99991231", None),
    "an all-day DTEND in year 9999": poison(";VALUE=DATE:20260624", ";VALUE=DATE:99991231"),
    "a RECURRENCE-ID in year 1": poison(":20260624T080000Z", ":20260624T090000Z", "RECURRENCE-ID;TZID=Europe/Oslo:00010101T000000"),
    "a moved instance whose RECURRENCE-ID is in year 9999": (
        poison(":20260624T080000Z", ":20260624T090000Z", "RRULE:FREQ=WEEKLY;COUNT=3")
        + poison(":20260625T080000Z", ":20260625T090000Z", "RECURRENCE-ID;TZID=America/New_York:99991231T235959")
    ),
    "a DURATION of a million weeks": poison(":20260624T080000Z", None, "DURATION:P1000000W"),
    "a weekly series with a DURATION of a million weeks": poison(":20260624T080000Z", None, "DURATION:P1000000W", "RRULE:FREQ=WEEKLY"),
    "a series lasting 500,000 weeks each time": poison(":20260624T080000Z", None, "DURATION:P500000W", "RRULE:FREQ=WEEKLY;COUNT=3"),
    "a yearly all-day series starting in year 9999": poison(";VALUE=DATE:99991231", None, "RRULE:FREQ=YEARLY"),
    "an RDATE period of a million weeks": poison(":20260624T080000Z", ":20260624T090000Z", "RDATE;VALUE=PERIOD:20260625T080000Z/P1000000W"),
    "an RDATE that is not a date": poison(":20260624T080000Z", ":20260624T090000Z", "RDATE:junk"),
    "an EXDATE that is not a date": poison(":20260624T080000Z", ":20260624T090000Z", "RRULE:FREQ=DAILY;COUNT=3", "EXDATE:junk"),
    "a DTSTART that is not a date": poison(":junk"),
    "no DTSTART": poison(None),
    # dateutil looks for the next instance of these until the year 9999, a day at a time.
    "an RRULE no day can match (every second of 366 January)": poison(":20260624T080000Z", ":20260624T090000Z", "RRULE:FREQ=SECONDLY;BYYEARDAY=366;BYMONTH=1"),
    "an RRULE no day can match (daily at Easter in June)": poison(":20260624T080000Z", ":20260624T090000Z", "RRULE:FREQ=DAILY;BYEASTER=0;BYMONTH=6"),
    "an RRULE no day can match (hourly in week 53 of June)": poison(":20260624T080000Z", ":20260624T090000Z", "RRULE:FREQ=HOURLY;BYWEEKNO=53;BYMONTH=6"),
    # dateutil never moves on from the first day, and never stops: the daemon hung.
    "an RRULE with INTERVAL=0": poison(":20260624T080000Z", ":20260624T090000Z", "RRULE:FREQ=DAILY;INTERVAL=0;BYMONTH=1"),
    "an RRULE whose BYSETPOS no day reaches (the 6th instance of each day)": poison(":20260624T080000Z", ":20260624T090000Z", "RRULE:FREQ=DAILY;BYSETPOS=6"),
    "an RRULE whose BYSETPOS no week reaches (the 6th of one day a week)": poison(":20260624T080000Z", ":20260624T090000Z", "RRULE:FREQ=WEEKLY;INTERVAL=7;BYSETPOS=6"),
    "an alarm whose TRIGGER is not a time": poison(":20260624T080000Z", ":20260624T090000Z", "BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:junk", "END:VALARM"),
    "a moved instance with an alarm whose TRIGGER is not a time": (
        poison(":20260624T080000Z", ":20260624T090000Z", "RRULE:FREQ=WEEKLY;COUNT=3")
        + poison(":20260701T100000Z", ":20260701T110000Z", "RECURRENCE-ID:20260701T080000Z", "BEGIN:VALARM", "TRIGGER:junk", "END:VALARM")
    ),
    # It occurs (29 February 2044 is a Monday), but dateutil gets there a second at a time.
    "a secondly RRULE on chosen days and hours": poison(":20260624T080000Z", ":20260624T080001Z", "RRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;BYHOUR=3"),
    "an RDATE list of 100,000 dates": poison(":20260624T080000Z", ":20260624T080001Z",
                                             "RDATE:" + ",".join(moment.strftime("%Y%m%dT%H%M%SZ") for moment in IN_WINDOW)),
}


def read(tmp_path, *events: str, header: tuple[str, ...] = (), timezone_name: str = "Europe/Oslo"):
    """The one page the adapter reads from a feed of `events`: (page, settings)."""
    settings = practice(write_feed(tmp_path, *events, header=header), timezone_name)
    [page] = list(IcsSource(settings).pages(None, NOW))
    return page, settings


def assert_good_ones_read(page, settings) -> None:
    read = {event["id"]: event for event in page.events if "_error" not in event}
    assert GOOD_IDS <= set(read), f"missing: {GOOD_IDS - set(read)}"
    for event_id in GOOD_IDS:
        appointment = normalize(read[event_id], settings.calendar.url, settings, NOW).appointment
        assert appointment is not None and appointment.client.email == "ana@example.com", event_id


# A reader that spins on a poison event (INTERVAL=0 hung the daemon) fails here instead of
# hanging the suite; how long each feed takes is printed by bench/bench_ics_feed.py.
@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", POISONS)
def test_one_poison_vevent_is_a_problem_and_the_others_are_read(tmp_path, kind):
    page, settings = read(tmp_path, GOOD[0], POISONS[kind], *GOOD[1:])
    assert_good_ones_read(page, settings)
    errors = {event["id"]: event["_error"] for event in page.events if "_error" in event}
    assert list(errors) == ["poison"], errors
    message = errors["poison"]
    assert "event 'poison' ('Bad \"one\" second line') is not read" in message, message
    assert "\n" not in message and "\r" not in message
    assert not [event for event in page.events if event["id"].startswith("poison_")], "a bad series is left out whole"
    assert not page.full, "while a bad VEVENT is left out, a missing appointment is not taken as deleted"


ORDINARY_RULES = [
    "FREQ=WEEKLY;BYDAY=MO,WE", "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU;WKST=SU", "FREQ=MONTHLY;BYDAY=1MO", "FREQ=MONTHLY;BYDAY=-1FR",
    "FREQ=MONTHLY;BYDAY=5FR", "FREQ=MONTHLY;BYMONTHDAY=31", "FREQ=MONTHLY;BYMONTHDAY=-1", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29", "FREQ=YEARLY;BYWEEKNO=53;BYDAY=TH", "FREQ=YEARLY;BYYEARDAY=366", "FREQ=YEARLY;BYEASTER=0",
    "FREQ=DAILY;BYHOUR=9,10;BYSETPOS=2", "FREQ=DAILY;COUNT=5", "FREQ=HOURLY;INTERVAL=6;COUNT=3",
]


@pytest.mark.parametrize("rule", ORDINARY_RULES)
def test_ordinary_rules_are_never_refused_as_poison(tmp_path, rule):
    """The checks for rules that never occur or step a second at a time refuse none of
    these (some occur only in some years: 29 February, week 53, day 366)."""
    page, _ = read(tmp_path, vevent("series", ":20260622T070000Z", ":20260622T080000Z", f"RRULE:{rule}"))
    assert not [event["_error"] for event in page.events if "_error" in event]
    assert page.full


def test_a_year_one_date_in_a_feed_with_a_calendar_time_zone(tmp_path):
    """Google's feeds carry X-WR-TIMEZONE; moving a year-1 time into New York's zone (west
    of UTC) overflowed for the whole feed."""
    header = ("X-WR-TIMEZONE:America/New_York",)
    clean, _ = read(tmp_path, *GOOD, header=header)
    assert len(clean.events) == len(GOOD_IDS) and clean.full
    page, _ = read(tmp_path, *GOOD, poison(":00010101T000000Z", ":00010101T010000Z"), header=header)
    assert [event for event in page.events if "_error" not in event] == clean.events
    assert [event["id"] for event in page.events if "_error" in event] == ["poison"]


@pytest.mark.parametrize("rule", ["UNTIL=99991231", "UNTIL=99991231T235959", "UNTIL=99991231T235959Z"])
def test_a_series_until_year_9999_is_read_west_of_utc(tmp_path, rule):
    """UNTIL in year 9999 means "no end" to some exporters: west of UTC its conversion to
    UTC overflowed and the series was refused."""
    page, settings = read(tmp_path, vevent("weekly", ":20260622T090000", ":20260622T100000", f"RRULE:FREQ=WEEKLY;{rule}"),
                             timezone_name="America/New_York")
    assert not [event for event in page.events if "_error" in event]
    assert len([event for event in page.events if event["id"].startswith("weekly_")]) == 4  # Mondays 13:00Z to 20 July noon
    assert page.full


def state(ledger) -> dict[str, tuple]:
    """Each tracked appointment's status, cancellation and outcome."""
    return {tracked.appointment.event_id: (tracked.appointment.status, tracked.cancellation, tracked.outcome) for tracked in ledger.all_tracked()}


def test_through_the_engine_a_poisoned_series_is_reported_kept_and_cleared_once_fixed(tmp_path):
    """A known weekly client whose series turns bad (a moved instance with a year-1
    RECURRENCE-ID) is reported under its UID, and so is a new booking with a year-1
    DTSTART; the series' appointments are kept as they were (not taken as cancelled); the
    other appointments go on; once both read again, their problems are gone."""
    weekly = vevent("weekly-client", ":20260622T070000Z", ":20260622T080000Z", "RRULE:FREQ=WEEKLY;COUNT=3", summary="Ana weekly")
    moved = vevent("weekly-client", ":20260630T070000Z", ":20260630T080000Z", "RECURRENCE-ID;TZID=Europe/Oslo:00010101T000000", summary="Ana weekly")
    ledger = Ledger(":memory:")
    path = write_feed(tmp_path, weekly, GOOD[0])
    settings = practice(path)
    first = engine_over(settings, ledger).tick(NOW)
    assert not first.problems, first.problems
    assert len(starts(ledger, "weekly-client")) == 3
    before = state(ledger)

    write_feed(tmp_path, weekly, moved, GOOD[0], vevent("new-booking", ":20260625T080000Z", ":20260625T090000Z"),
               vevent("bo", ":00010101T000000Z", ":20260626T090000Z", summary="Bo"))
    second = engine_over(settings, ledger).tick(NOW + timedelta(minutes=5))
    series, single = sorted(second.problems, key=lambda problem: "weekly-client" not in problem)
    assert "recurring event 'weekly-client' ('Ana weekly') is not read" in series, second.problems
    assert "event 'bo' ('Bo') is not read: a date in it is out of range" in single, second.problems
    assert {row["item"] for row in ledger.problems()} == {"weekly-client", "bo"}
    assert starts(ledger, "new-booking"), "the rest of the feed is read"
    assert second.happenings[HappeningKind.CANCELLED_BY_PRACTITIONER.value] == 0
    assert {event_id: kept for event_id, kept in state(ledger).items() if event_id in before} == before

    write_feed(tmp_path, weekly, GOOD[0], vevent("new-booking", ":20260625T080000Z", ":20260625T090000Z"),
               vevent("bo", ":20260626T080000Z", ":20260626T090000Z", summary="Bo"))
    third = engine_over(settings, ledger).tick(NOW + timedelta(minutes=10))
    assert not third.problems, third.problems
    assert ledger.problems() == [], "the series and the event read again: their problems are cleared"
    assert starts(ledger, "bo")


def test_a_fault_of_the_whole_feed_is_still_reported_once(tmp_path):
    """An X-WR-TIMEZONE that is no time zone concerns every event: the feed is reported
    unreadable (and nothing changes), not every event one by one."""
    with pytest.raises(AdapterError, match="not valid iCalendar .*Mars/Olympus"):
        read(tmp_path, *GOOD, header=("X-WR-TIMEZONE:Mars/Olympus",))
