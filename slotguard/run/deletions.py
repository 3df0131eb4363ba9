"""Known appointments missing from a full listing of their calendar: deleted, unless so many
are missing at once that the feed looks broken (then nothing is concluded)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slotguard.domain.tick_report import TickReport
from slotguard.store.containment import contain_each

# A full listing that loses more than this share of the known appointments (and more than
# MASS_DELETION_MIN of them) is more likely a broken feed than a wave of cancellations.
MASS_DELETION_SHARE = 0.5
MASS_DELETION_MIN = 10


def observe_deletions(engine: Any, calendar_id: str, seen_ids: set[str], window: tuple, now: datetime, report: TickReport) -> None:
    """Observe each known appointment of `calendar_id` in `window` that the full listing
    (`seen_ids`) no longer has as deleted (the engine's `_observe` with no event), each on
    its own (contain_each); or report a mass deletion and conclude nothing."""
    start, end = window
    start = start or datetime.min.replace(tzinfo=now.tzinfo)
    end = end or datetime.max.replace(tzinfo=now.tzinfo)
    ledger = engine.ledger
    known = ledger.event_ids(calendar_id, start, end)
    missing = known - seen_ids
    if not missing:
        return
    if not seen_ids or (len(missing) > MASS_DELETION_MIN and len(missing) > MASS_DELETION_SHARE * len(known)):
        report.problem(
            f"calendar {calendar_id}: {len(missing)} of {len(known)} known appointments are missing from the "
            "calendar at once; this looks like a broken feed, so they are not treated as cancelled. "
            "Check the calendar; if they really were deleted, they will be handled once the feed looks whole."
        )
        return
    contain_each(
        ledger, report, sorted(missing),
        lambda event_id: engine._observe(ledger.tracked(calendar_id, event_id), None, now, report),
        lambda event_id: (calendar_id, event_id, f"appointment {event_id}"),
        now,
    )
