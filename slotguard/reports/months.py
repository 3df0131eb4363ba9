"""Calendar months in the practice's time zone, as the ledger's UTC text compares them.

A month is local: November in Oslo starts at 2026-10-31T23:00:00Z. The ledger stores UTC text
(slotguard/domain/durations.py `to_utc_text`), which sorts as time does, so a month is a
half-open range of text, and twelve of them are one SQL `CASE` that numbers a row's month
without any date function (the same text on SQLite and PostgreSQL).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from slotguard.domain.durations import to_utc_text


@dataclass(frozen=True, slots=True)
class Month:
    """One local calendar month: its first day, and its bounds as ledger text."""

    first: date
    start: str  # UTC text of local midnight on the first day
    end: str  # UTC text of local midnight on the first day of the next month

    @property
    def key(self) -> str:
        return self.first.strftime("%Y-%m")


def parse_month(text: str) -> date:
    """The first day of the month written "2026-11". Raises ValueError for anything else."""
    try:
        year, month = text.strip().split("-")
        return date(int(year), int(month), 1)
    except ValueError:
        raise ValueError(f"{text!r} is not a month; write it as YYYY-MM, e.g. 2026-11") from None


def next_first(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def previous_first(day: date) -> date:
    return date(day.year - (day.month == 1), (day.month - 2) % 12 + 1, 1)


def months_ending(last: date, zone: ZoneInfo, count: int = 12) -> list[Month]:
    """The `count` months ending with the month of `last`, oldest first."""
    firsts = [last.replace(day=1)]
    while len(firsts) < count:
        firsts.insert(0, previous_first(firsts[0]))

    def bound(day: date) -> str:
        return to_utc_text(datetime(day.year, day.month, 1, tzinfo=zone))

    return [Month(first, bound(first), bound(next_first(first))) for first in firsts]


def month_case(column: str, months: list[Month]) -> tuple[str, list[str]]:
    """An SQL expression giving the index of the month `column` falls in (NULL outside),
    and its parameters."""
    parts, params = [], []
    for index, month in enumerate(months):
        parts.append(f"WHEN {column} >= ? AND {column} < ? THEN {index}")
        params += [month.start, month.end]
    return f"(CASE {' '.join(parts)} END)", params
