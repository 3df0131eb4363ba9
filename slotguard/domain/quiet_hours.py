"""Quiet hours: the hours of the night when no email reaches a client (`mail.quiet_hours`).

`QuietHours.parse("21:00-08:00")` reads the setting; `next_allowed(moment, quiet, zone)` is
the one rule every stage asks (fees and their notices when they are planned, slotguard/store/apply.py;
every client email and charge when it is carried out, slotguard/planning/quiet.py): the first
instant at or after `moment` that is outside quiet hours on the wall clock of `zone`. Pure:
no clock, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

_SHAPE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class QuietHours:
    """From `start` (included) to `end` (excluded), local wall-clock times. `start` later
    than `end` crosses midnight ("21:00-08:00"); earlier, it lies within one day
    ("12:00-13:00")."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours | None:
        """"HH:MM-HH:MM" as QuietHours; "" (or "off") for none. Raises ValueError, saying
        what is expected, for anything else (a start equal to its end included)."""
        if text.strip().lower() in ("", "off"):
            return None
        shape = _SHAPE.match(text)
        if shape is None:
            raise ValueError(f"{text!r} is not a time range like 21:00-08:00 (or \"\" for no quiet hours)")
        hour_from, minute_from, hour_to, minute_to = (int(part) for part in shape.groups())
        try:
            start, end = time(hour_from, minute_from), time(hour_to, minute_to)
        except ValueError:
            raise ValueError(f"{text!r}: hours are 00-23 and minutes 00-59") from None
        if start == end:
            raise ValueError(f"{text!r} starts and ends at the same time; use \"\" for no quiet hours")
        return cls(start, end)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    @property
    def longest(self) -> timedelta:
        """The most these quiet hours can put anything off: their length, and an hour more
        for a night when the clocks go back."""
        length = datetime.combine(datetime.min, self.end) - datetime.combine(datetime.min, self.start)
        return (length if length > timedelta(0) else length + timedelta(days=1)) + timedelta(hours=1)

    def contains(self, wall: time) -> bool:
        """Whether the local wall-clock time `wall` is in quiet hours."""
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end


def next_allowed(moment: datetime, quiet: QuietHours | None, zone: str | ZoneInfo) -> datetime:
    """The first instant at or after `moment` (aware) outside `quiet` on the wall clock of
    `zone` (an IANA name or a ZoneInfo): `moment` itself when it is outside (or `quiet` is
    None), else the end of these quiet hours. Across a change of clocks, the end is read on
    the wall clock: an end that does not exist that night (02:30 when clocks go from 02:00
    to 03:00) is the moment the clocks jump; an end that comes twice (clocks going back) is
    its first occurrence. Returned in UTC when moved, else `moment` unchanged."""
    if quiet is None:
        return moment
    tz = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
    local = moment.astimezone(tz)
    if not quiet.contains(local.time()):
        return moment
    day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        day += timedelta(days=1)  # quiet hours that began this evening end tomorrow morning
    return _first_instant_at(datetime.combine(day, quiet.end), tz, moment)


def _first_instant_at(wall: datetime, tz: ZoneInfo, after: datetime) -> datetime:
    """The earliest instant (UTC) later than `after` whose wall clock in `tz` reads `wall`
    (naive) or later."""
    first, second = sorted(wall.replace(tzinfo=tz, fold=fold).astimezone(UTC) for fold in (0, 1))
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        # An ordinary time, or one that comes twice: its first occurrence, unless `after`
        # lies in the repeated hour, past it.
        return first if first > after else second
    # `wall` falls in a gap (clocks jump forward over it): find the jump, between the two
    # readings of it, to the second. The wall clock only moves forward across a gap.
    low, high = int(first.timestamp()), int(second.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)
