"""Recurring events of an .ics feed expanded into instances, within limits.

One VEVENT with `RRULE:FREQ=MINUTELY` took 97 s and 1.8 GB for one tick, and
`FREQ=SECONDLY` never finished, because every instance in the sync window was built at once.
Before anything is expanded, each series (the VEVENTs of one UID) is counted lazily, one
instance at a time, and stops counting as soon as it is over a limit:

- a series with more than `calendar.max_instances_per_series` instances in the window, or
  that needs more than PRE_WINDOW_STEPS instances to reach the window, or whose rule can
  never occur (a 30 February, day 366 of January, a BYSETPOS past what one period holds:
  dateutil would look for it a day at a time until the year 9999; an INTERVAL of 0:
  forever), or that repeats more often than daily on chosen days or times (dateutil steps
  through it a second at a time), is not read: it is reported as a problem naming its UID and
  summary and the limit;
- the series are then admitted smallest first until `calendar.max_events` instances; the
  largest ones past it are left out and reported the same way (so a flood of big series
  crowds out none of the practitioner's single appointments);
- the whole feed's counting stops after FEED_STEPS_PER_EVENT x `max_events` steps.

Only the admitted series are expanded (by recurring_ical_events, with their exceptions,
moved instances and time zones), so time and memory are bounded by the limits, whatever
the feed says. The count may be a little high (EXDATE is not subtracted): a limit is never
passed, only approached a little early.

One bad VEVENT never stops the others: each series (or single event) is counted, expanded
and converted on its own, and one whose dates the libraries cannot handle (a year 1 or 9999
that overflows on the way to UTC or to the end of a DURATION, a DTSTART or RDATE that is
not a date, no DTSTART) is reported the same way and left out whole, its good instances
too, so a series is read all or not at all.

Floating times (no TZID, no Z) are local times in the practice's time zone (RFC 5545 3.3.5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
from dateutil.rrule import rrulestr

from integration.ics_parse import describe
from slotguard.domain.untrusted import one_line

# How many instances of one series may be walked through before the sync window starts
# (a weekly series begun 380 years ago); and, per event the feed may hold, how many
# instances the whole feed's counting may walk (one million steps, about 4 s, by default).
PRE_WINDOW_STEPS = 20_000
FEED_STEPS_PER_EVENT = 50


@dataclass
class Expansion:
    """The instances read from a feed, and what was left out.

    `components`: the instances in the window (expanded VEVENTs, or what `expand`'s
    `convert` made of them), series by series in the feed's order. `skipped`: (UID,
    problem) for each series not read. `complete`: False when anything was left out, so a
    known appointment missing from the feed may be one of those, not a deletion."""

    components: list = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.skipped


class _Over(Exception):
    """Counting stopped: the series is past a limit (the message says which)."""


def _aware(value, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    return datetime.combine(value, time(0), zone)


def _until_in_utc(rule: str, zone: ZoneInfo) -> str:
    """The RRULE text with UNTIL written in UTC, as dateutil needs beside an aware start: a
    date is the end of that day, a floating time is local time in `zone`."""
    parts = []
    for part in rule.split(";"):
        name, _, value = part.partition("=")
        if name.upper() == "UNTIL" and not value.upper().endswith("Z"):
            moment = datetime.strptime(value[:8], "%Y%m%d") + timedelta(days=1, seconds=-1) if len(value) == 8 else datetime.strptime(value[:15], "%Y%m%dT%H%M%S")
            try:
                value = moment.replace(tzinfo=zone).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
            except OverflowError:  # the last days of year 9999 west of UTC: "no end"
                value = "99991231T235959Z"
        parts.append(f"{name}={value}")
    return ";".join(parts)


# The Gregorian calendar (weekdays included) repeats every 400 years: a day no year of the
# last 400 dateutil knows has, no year has.
_DAY_FILTERS = ("BYMONTH", "BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY", "BYEASTER", "WKST")
_LAST_CYCLE = datetime(9999 - 400, 1, 1)


def _sparse_sub_daily(rule: str) -> bool:
    """True for a rule more frequent than daily limited to some days or times (FREQ=SECONDLY;
    BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;BYHOUR=3): dateutil steps to its next instance an hour,
    a minute or a second at a time, for years (17 s for that one, hours for others). No
    appointment series needs one: a daily or weekly rule with BYHOUR says the same."""
    parts = dict(part.partition("=")[::2] for part in rule.upper().split(";"))
    return parts.get("FREQ") in ("HOURLY", "MINUTELY", "SECONDLY") and any(name.startswith("BY") for name in parts)


def _interval_positive(rule: str) -> bool:
    """False for an INTERVAL of 0 or less (RFC 5545 wants a positive integer): with 0,
    dateutil never moves on from the first period, and with a filter that period does not
    pass, never stops (the daemon hung on FREQ=DAILY;INTERVAL=0;BYMONTH=1)."""
    parts = dict(part.partition("=")[::2] for part in rule.upper().split(";"))
    try:
        return int(parts.get("INTERVAL") or 1) >= 1
    except ValueError:
        return True  # not a number: dateutil refuses it, and the counting reports that


def _beyond_every_period(parts: dict[str, str]) -> bool:
    """True when every BYSETPOS asks for a position past the most instances one period of
    the rule can hold (FREQ=DAILY;BYSETPOS=6: a day holds one; so does a week of a weekly
    rule without day filters, which dateutil gives DTSTART's weekday alone)."""
    days = {"DAILY": 1, "WEEKLY": 7, "MONTHLY": 31, "YEARLY": 366}.get(parts.get("FREQ", ""))
    if days is None or not parts.get("BYSETPOS"):
        return False
    if not any(parts.get(name) for name in ("BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY", "BYEASTER")):
        # dateutil's defaults: DTSTART's weekday, day of the month, or day of each BYMONTH
        days = len(parts["BYMONTH"].split(",")) if parts.get("BYMONTH") and parts["FREQ"] == "YEARLY" else 1
    most = days
    for name in ("BYHOUR", "BYMINUTE", "BYSECOND"):
        most *= len(parts[name].split(",")) if parts.get(name) else 1
    try:
        return all(abs(int(position)) > most for position in parts["BYSETPOS"].split(","))
    except ValueError:
        return False  # not a rule dateutil reads: the counting reports it


def _never_occurs(rule: str) -> bool:
    """True for a rule whose day filters no day of the calendar passes (BYMONTH=2;
    BYMONTHDAY=30, or BYYEARDAY=366;BYMONTH=1): dateutil would look for one a day at a time
    until the year 9999 (seconds for a daily or hourly rule), each time the feed is read.

    Checked as a yearly rule with the same day filters, without ordinals (1MO is any Monday)
    or BYSETPOS, so it allows every day the rule could: none in 400 years means never. Also
    true when BYSETPOS asks for more instances than one period of the rule holds."""
    parts = dict(part.partition("=")[::2] for part in rule.upper().split(";"))
    if _beyond_every_period(parts):
        return True
    filters = {name: value for name, value in parts.items() if name in _DAY_FILTERS and value}
    if not set(filters) - {"WKST"}:
        return False
    if "BYDAY" in filters:
        filters["BYDAY"] = ",".join(day.strip()[-2:] for day in filters["BYDAY"].split(","))
    try:
        days = rrulestr(";".join(["FREQ=YEARLY", *(f"{name}={value}" for name, value in filters.items())]), dtstart=_LAST_CYCLE, cache=False)
        return next(iter(days), None) is None
    except (ValueError, TypeError, OverflowError):
        return False  # not a rule dateutil reads: the counting reports it


class _Counter:
    """Counts instances of series in [start, end], lazily, within the limits."""

    def __init__(self, start: datetime, end: datetime, zone: ZoneInfo, per_series: int, feed_steps: int):
        self.start, self.end, self.zone = start, end, zone
        self.per_series = per_series
        self.feed_steps = feed_steps

    def rule_instances(self, master, rule: str, span: timedelta) -> int:
        if not _interval_positive(rule):
            raise _Over("its RRULE cannot be read (its INTERVAL is not a positive number)")
        if _never_occurs(rule):
            raise _Over("its RRULE never occurs (no day has the months, weeks and days it asks for)")
        if _sparse_sub_daily(rule):
            raise _Over("its RRULE repeats more often than daily on chosen days or times; use a daily or weekly rule with BYHOUR")
        begin = _aware(master.get("DTSTART").dt, self.zone)
        try:
            instances = rrulestr(_until_in_utc(rule, self.zone), dtstart=begin, cache=False)
        except (ValueError, TypeError, OverflowError) as error:
            raise _Over(f"its RRULE cannot be read ({one_line(str(error), 80)})") from None
        found = walked = 0
        for moment in instances:
            if moment > self.end:
                break
            walked += 1
            self.feed_steps -= 1
            if moment + span >= self.start:
                found += 1
                if found > self.per_series:
                    raise _Over(f"it has more than {self.per_series} instances in the sync window (calendar.max_instances_per_series)")
            elif walked > PRE_WINDOW_STEPS:
                raise _Over(f"it has more than {PRE_WINDOW_STEPS} instances before the sync window; give it an end (UNTIL) or a later start")
            if self.feed_steps < 0:
                raise _Over("the feed's series together have too many instances to count (calendar.max_events)")
        return found

    def series(self, components: list) -> int:
        """Instances of one UID's VEVENTs in the window (an estimate from above)."""
        total = 0
        for component in components:
            if component.get("RECURRENCE-ID") is not None or component.get("DTSTART") is None:
                total += 1  # a moved or changed instance: one
                continue
            rules = component.get("RRULE")
            rdates = component.get("RDATE")
            if rules is None and rdates is None:
                total += 1
                continue
            span = _span(component, self.zone)
            for rule in rules if isinstance(rules, list) else ([rules] if rules is not None else []):
                total += self.rule_instances(component, rule.to_ical().decode(), max(span, timedelta(0)))
            for listing in rdates if isinstance(rdates, list) else ([rdates] if rdates is not None else []):
                for value in getattr(listing, "dts", []):
                    moment = value.dt[0] if isinstance(value.dt, tuple) else value.dt
                    if isinstance(moment, (date, datetime)) and self.start - span <= _aware(moment, self.zone) <= self.end:
                        total += 1
            if total > self.per_series:
                raise _Over(f"it has more than {self.per_series} instances in the sync window (calendar.max_instances_per_series)")
        return total


def _span(component, zone: ZoneInfo) -> timedelta:
    """How long each instance lasts: DTEND - DTSTART, else the DURATION, else a day (so an
    instance that started before the window but lasts into it is counted)."""
    if component.get("DTEND") is not None:
        return _aware(component.get("DTEND").dt, zone) - _aware(component.get("DTSTART").dt, zone)
    if component.get("DURATION") is not None:
        return component.get("DURATION").dt
    return timedelta(days=1)


def _describe(uid: str, components: list) -> str:
    """The series for a message: its UID and summary, each quoted on one line and short."""
    summary = next((str(component.get("SUMMARY")) for component in components if component.get("SUMMARY")), "")
    recurring = any(component.get(name) is not None for component in components for name in ("RRULE", "RDATE", "RECURRENCE-ID"))
    return describe(uid, summary, recurring)


def _unreadable(uid: str, components: list, error: Exception) -> str:
    """The problem for a series the libraries could not count, expand or convert."""
    if isinstance(error, OverflowError):
        why = "a date in it is out of range (a year such as 1 or 9999, or a huge DURATION); correct it"
    else:
        why = f"it cannot be read ({type(error).__name__}: {one_line(str(error), 80)})"
    return f"{_describe(uid, components)} is not read: {why}"


def _instances(calendar, zones: list, components: list, start: datetime, end: datetime) -> list:
    """The instances of one series between `start` and `end`, expanded in a calendar of its
    own (the feed's properties, such as X-WR-TIMEZONE, and its time zones) so that whatever
    it raises concerns it alone."""
    single = icalendar.Calendar(calendar)
    single.subcomponents = [*zones, *components]
    return recurring_ical_events.of(single).between(start, end)


def expand(
    calendar, start: datetime, end: datetime, practice_zone: str, per_series: int, per_feed: int,
    convert: Callable[[Any], Any] = lambda component: component,
) -> Expansion:
    """The instances of `calendar`'s VEVENTs between `start` and `end`, within the limits,
    each passed through `convert` (ics_source: to a v3 Event resource).

    A series (the VEVENTs of one UID) past a limit, or that raises anything while it is
    counted, expanded or converted, is left out whole and listed in `skipped`; the others
    are read. Raises for what concerns the whole feed (an X-WR-TIMEZONE that is no time
    zone, a CALSCALE other than Gregorian): no series is to blame for it."""
    zone = ZoneInfo(practice_zone)
    start, end = start.astimezone(zone), end.astimezone(zone)
    zones = [component for component in calendar.subcomponents if component.name == "VTIMEZONE"]
    _instances(calendar, zones, [], start, end)
    groups: dict[str, list] = {}
    for component in calendar.walk("VEVENT"):
        uid = str(component.get("UID") or "")
        groups.setdefault(uid or f"(no UID #{len(groups)})", []).append(component)
    counter = _Counter(start, end, zone, per_series, per_feed * FEED_STEPS_PER_EVENT)
    expansion = Expansion()
    sizes = []
    for order, (uid, components) in enumerate(groups.items()):
        try:
            sizes.append((counter.series(components), order, uid))
        except _Over as over:
            expansion.skipped.append((uid, f"{_describe(uid, components)} is not read: {over}"))
        except Exception as error:  # noqa: BLE001 - dates the libraries cannot handle: this series only
            expansion.skipped.append((uid, _unreadable(uid, components, error)))
    kept, total = set(), 0
    for size, _, uid in sorted(sizes):
        if total + size > per_feed:
            expansion.skipped.append((uid, f"{_describe(uid, groups[uid])} is not read: the feed has more than {per_feed} "
                                           "events in the sync window; the largest series are left out (calendar.max_events)"))
            continue
        kept.add(uid)
        total += size
    for uid, components in groups.items():
        if uid not in kept:
            continue
        try:
            read = [convert(instance) for instance in _instances(calendar, zones, components, start, end)]
        except Exception as error:  # noqa: BLE001 - as above: one series never stops the others
            expansion.skipped.append((uid, _unreadable(uid, components, error)))
            continue
        expansion.components += read
    return expansion
