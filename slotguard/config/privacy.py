"""The `[privacy]` section: how long the ledger keeps what it knows about clients (docs/privacy.md).

`retention`: appointments (their snapshots), happenings and emails whose last activity is
older than this, and that have no open money, are deleted by the daemon's daily pruning
(slotguard/privacy/retention.py); the money records of those appointments are kept, with the
client's address and name replaced by a pseudonym. `bookkeeping_years`: how long those money
records are kept, counted from the end of the calendar year of their last activity, as the
bookkeeping laws count (Norway and Denmark 5 years, Germany 10).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, Field

from slotguard.config.limits import at_most
from slotguard.config.types import DAY, PositiveDuration, Strict
from slotguard.domain.durations import format_duration

DEFAULT_RETENTION = timedelta(days=548)  # 18 months
DEFAULT_BOOKKEEPING_YEARS = 10  # the longest of the users' countries (Germany); Norway and Denmark keep 5


class Privacy(Strict):
    retention: Annotated[PositiveDuration, AfterValidator(at_most(3650 * DAY, "past the longest bookkeeping period"))] = Field(
        DEFAULT_RETENTION,
        description=(
            "How long the ledger keeps an appointment, its happenings and its emails after their last activity (548d is "
            "18 months); then they are deleted, unless money is still open on it (a fee to be charged or unpaid, a hold, "
            "a deposit or credit not used, an outcome not known), and the client's address and name in the money records "
            "kept for bookkeeping are replaced by a pseudonym. Must be longer than calendar.window_past."
        ),
        examples=["548d", "365d"],
    )
    bookkeeping_years: int = Field(
        DEFAULT_BOOKKEEPING_YEARS,
        ge=1,
        le=15,
        description=(
            "How many years money records (charges, refunds, holds, credits, waivers, write-offs) are kept, counted from "
            "the end of the calendar year of their last activity, as bookkeeping law counts; then they are deleted. "
            "Norway and Denmark: 5; Germany: 10. Set your country's."
        ),
        examples=[5, 10],
    )

    @property
    def bookkeeping(self) -> timedelta:
        """The bookkeeping period as a duration, for comparing with `retention` (365 days a year)."""
        return timedelta(days=365 * self.bookkeeping_years)

    def problems(self, window_past: timedelta) -> list[str]:
        """What is inconsistent with the rest of the settings: `window_past` is
        calendar.window_past (an appointment pruned within it would be read again by the next
        full sync as a booking never seen)."""
        found = []
        if self.retention <= window_past:
            found.append(
                f"privacy.retention: {format_duration(self.retention)} is not longer than calendar.window_past "
                f"({format_duration(window_past)}); a pruned appointment would be read again as a new booking: "
                "make retention longer or window_past shorter"
            )
        if self.retention > self.bookkeeping:
            found.append(
                f"privacy.retention: {format_duration(self.retention)} is longer than privacy.bookkeeping_years "
                f"({self.bookkeeping_years}); money records would be deleted before the appointments they are about"
            )
        return found
