"""`next_allowed`: the first moment outside quiet hours on the client's wall clock, across
midnight, within one day, and across the changes of clocks."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slotguard.domain.quiet_hours import QuietHours, next_allowed

OSLO = ZoneInfo("Europe/Oslo")
NIGHT = QuietHours.parse("21:00-08:00")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(("moment", "allowed"), [
    ("2026-11-27T00:05:00+01:00", "2026-11-27T08:00:00+01:00"),  # a review window ending just after midnight
    ("2026-11-26T21:00:00+01:00", "2026-11-27T08:00:00+01:00"),  # the start is quiet
    ("2026-11-26T20:59:00+01:00", "2026-11-26T20:59:00+01:00"),  # the evening before is not
    ("2026-11-27T07:59:59+01:00", "2026-11-27T08:00:00+01:00"),
    ("2026-11-27T08:00:00+01:00", "2026-11-27T08:00:00+01:00"),  # the end is not quiet
    ("2026-11-26T23:30:00+00:00", "2026-11-27T08:00:00+01:00"),  # given in UTC, read in Oslo
])
def test_an_email_due_at_night_goes_at_the_end_of_the_quiet_hours(moment, allowed):
    assert next_allowed(at(moment), NIGHT, "Europe/Oslo") == at(allowed)


def test_the_wall_clock_is_the_clients():
    # 00:05 in Oslo is 18:05 in New York: no quiet hours there.
    assert next_allowed(at("2026-11-27T00:05:00+01:00"), NIGHT, "America/New_York") == at("2026-11-27T00:05:00+01:00")
    # 00:05 in New York waits for 08:00 there, 14:00 in Oslo.
    assert next_allowed(at("2026-11-27T06:05:00+01:00"), NIGHT, ZoneInfo("America/New_York")) == at("2026-11-27T14:00:00+01:00")


def test_quiet_hours_within_one_day():
    lunch = QuietHours.parse("12:00-13:30")
    assert next_allowed(at("2026-11-27T12:10:00+01:00"), lunch, OSLO) == at("2026-11-27T13:30:00+01:00")
    assert next_allowed(at("2026-11-27T11:59:00+01:00"), lunch, OSLO) == at("2026-11-27T11:59:00+01:00")
    assert next_allowed(at("2026-11-27T23:00:00+01:00"), lunch, OSLO) == at("2026-11-27T23:00:00+01:00")


def test_spring_forward_the_night_is_an_hour_shorter_and_ends_at_eight_summer_time():
    assert next_allowed(at("2026-03-28T23:00:00+01:00"), NIGHT, OSLO) == at("2026-03-29T08:00:00+02:00")


def test_an_end_that_does_not_exist_that_night_is_the_moment_the_clocks_jump():
    # 29 March 2026 in Oslo: 02:00 becomes 03:00, so 02:30 never shows on the clock.
    early = QuietHours.parse("00:00-02:30")
    assert next_allowed(at("2026-03-29T01:30:00+01:00"), early, OSLO) == at("2026-03-29T03:00:00+02:00")


def test_an_end_that_comes_twice_is_its_first_occurrence():
    # 25 October 2026 in Oslo: 03:00 becomes 02:00 again, so 02:30 comes twice.
    early = QuietHours.parse("00:00-02:30")
    assert next_allowed(at("2026-10-25T01:30:00+02:00"), early, OSLO) == at("2026-10-25T02:30:00+02:00")
    # During the second 02:00-02:30 the clock is in quiet hours again, until 02:30 the second time.
    assert next_allowed(at("2026-10-25T02:10:00+01:00"), early, OSLO) == at("2026-10-25T02:30:00+01:00")


def test_no_quiet_hours_moves_nothing_and_the_setting_is_checked():
    assert next_allowed(at("2026-11-27T00:05:00+01:00"), None, OSLO) == at("2026-11-27T00:05:00+01:00")
    assert QuietHours.parse("") is None and QuietHours.parse("off") is None
    assert str(QuietHours.parse(" 7:00 - 9:05 ")) == "07:00-09:05"
    for wrong in ("21-8", "25:00-08:00", "21:00-21:00", "21:00"):
        with pytest.raises(ValueError):
            QuietHours.parse(wrong)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
       st.sampled_from(["21:00-08:00", "22:30-07:00", "00:00-02:30", "12:00-13:00", "02:00-03:00"]),
       st.sampled_from(["Europe/Oslo", "America/New_York", "Asia/Jerusalem", "Australia/Lord_Howe", "UTC"]))
def test_the_answer_is_never_earlier_never_quiet_and_within_a_day(moment, text, zone):
    quiet = QuietHours.parse(text)
    allowed = next_allowed(moment, quiet, zone)
    assert moment <= allowed
    assert (allowed - moment).total_seconds() <= 24 * 3600
    assert not quiet.contains(allowed.astimezone(ZoneInfo(zone)).time())
