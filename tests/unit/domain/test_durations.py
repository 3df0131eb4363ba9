from datetime import timedelta

import pytest

from slotguard.domain.durations import DurationError, format_duration, parse_duration, parse_timestamp


@pytest.mark.parametrize(
    "text, expected",
    [("2m", timedelta(minutes=2)), ("24h", timedelta(hours=24)), ("3d", timedelta(days=3)),
     ("1h30m", timedelta(minutes=90)), ("PT15M", timedelta(minutes=15)), ("P1DT2H", timedelta(hours=26)),
     ("90s", timedelta(seconds=90))],
)
def test_durations_as_people_write_them(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "24", "h24", "1x", "PT", "2 hours"])
def test_unreadable_durations_are_refused_with_the_text_named(text):
    with pytest.raises(DurationError) as error:
        parse_duration(text)
    assert repr(text) in str(error.value)


def test_format_reads_like_config():
    assert format_duration(timedelta(hours=48)) == "48h"
    assert format_duration(timedelta(days=3)) == "3d"
    assert format_duration(timedelta(minutes=210)) == "3h30m"


def test_timestamps_without_an_offset_are_ambiguous_and_refused():
    with pytest.raises(DurationError):
        parse_timestamp("2026-03-02T09:00:00")
    assert parse_timestamp("2026-03-02T08:00:00Z") == parse_timestamp("2026-03-02T09:00:00+01:00")
