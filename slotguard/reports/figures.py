"""The monthly report's figures, counted from the ledger: one `MonthFigures` per month of the
twelve ending with the reported one, in the practice's time zone.

Each figure's meaning (the report says it in one line under each; docs/commands.md `report`):

- `booked`: appointments starting in the month, not cancelled by the practitioner (nor frozen
  as someone else's event); the base of the two rates.
- `no_shows`, `late_cancels`: of those, ended as a no-show, or cancelled by the client
  (the late-cancel mark or a declined invitation) with less notice than the late window: the
  widest tier of the late_cancel policy, or 24 hours (its default) when it is not enabled
  (`late_window`, slotguard/reports/monthly.py); the rates are these over `booked`.
  `cancelled_in_time`: the client's cancellations with more notice, which are no incident.
- fees (integer minor units of practice.currency; a fee counts in the month of its
  appointment): `proposed` what the fee policies asked for the month's incidents;
  `waived` what was let go of it (by a policy or by the practitioner, see
  slotguard/reports/people.py); `charged` what was asked of clients (charged to a card, a
  payment link or a receivable); `collected` what of it (and of collections' installments
  and settlements) is paid; `written_off`; `open` what is still waiting: in review, or
  asked and not paid.
- what came back: `kept` deposits, holds and prepayments kept as a fee; `rebooked` freed slots
  a client offered them through the waitlist booked (an appointment of that client at the
  freed slot's start); `protected_minutes` the time of sessions whose fee was collected or kept
  plus that of re-booked slots.
- `reminders` reminder emails sent in the month; `cancellations` appointments of the month
  cancelled (by client or practitioner), `cancelled_early` of those, cancelled at least
  `mail.slot_freed_within` before the start: early enough to be booked again.

The counting is done by the database (one grouped query per table), so a practice with
100,000 appointments is counted in well under two seconds (bench/bench_report.py).
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from slotguard.domain.durations import from_utc_text
from slotguard.reports.months import Month, month_case
from slotguard.store.ledger import Ledger

# The policy name of the collections ladder's actions (slotguard/collections/debts.py): its
# installments and settlements paid are fees collected.
COLLECTIONS = "collections"
FEE_KINDS = ("charge", "capture", "credit", "waive", "writeoff")
WAITING = ("planned", "pending_review", "executing")
# A fee waived because another action replaced it (slotguard/store/apply.py `supersede`): the
# replacement counts, not it.
REPLACED = "%; waived: replaced by %"


@dataclass
class MonthFigures:
    """What happened in one month; amounts in minor units of the practice's currency."""

    month: Month
    booked: int = 0
    no_shows: int = 0
    late_cancels: int = 0
    proposed: int = 0
    waived: int = 0
    charged: int = 0
    collected: int = 0
    written_off: int = 0
    open: int = 0
    kept: int = 0
    rebooked: int = 0
    protected_minutes: int = 0
    reminders: int = 0
    cancellations: int = 0
    cancelled_early: int = 0
    cancelled_in_time: int = 0
    paid_slots: set[tuple[str, str]] = field(default_factory=set, repr=False)

    @property
    def no_show_rate(self) -> float | None:
        return self.no_shows / self.booked if self.booked else None

    @property
    def late_cancel_rate(self) -> float | None:
        return self.late_cancels / self.booked if self.booked else None

    @property
    def early_share(self) -> float | None:
        return self.cancelled_early / self.cancellations if self.cancellations else None

    @property
    def came_back(self) -> int:
        """Money that came back: fees collected and money kept from deposits or prepayments."""
        return self.collected + self.kept


def _windowed(ledger: Ledger, months: list[Month], column: str, select: str, table: str, where: str, params: list) -> list:
    case, case_params = month_case(column, months)
    sql = (f"SELECT {case} AS m, {select} FROM {table} WHERE {column} >= ? AND {column} < ?"
           f"{' AND ' + where if where else ''}")
    return ledger.db.execute(sql, [*case_params, months[0].start, months[-1].end, *params]).fetchall()


def is_late(start_utc: str, cancelled_at: str | None, late_window: timedelta) -> bool:
    """A client's cancellation (its `cancelled_by_client` happening's time) with less notice
    than `late_window`; one of unknown time counts as late (it carried the late mark)."""
    return not cancelled_at or from_utc_text(start_utc) - from_utc_text(cancelled_at) < late_window


def count_months(ledger: Ledger, months: list[Month], currency: str, freed_within: timedelta,
                 late_window: timedelta = timedelta(hours=24)) -> list[MonthFigures]:
    """The figures of each of `months` (consecutive, oldest first)."""
    figures = [MonthFigures(month) for month in months]
    _appointments(ledger, months, figures)
    _fees(ledger, months, figures, currency)
    _rebooked(ledger, months, figures)
    _reminders(ledger, months, figures)
    _cancellations(ledger, months, figures, freed_within, late_window)
    _protected(ledger, figures)
    return figures


def _appointments(ledger: Ledger, months: list[Month], figures: list[MonthFigures]) -> None:
    case, params = month_case("start_utc", months)
    rows = ledger.db.execute(
        f"SELECT m, COUNT(*) AS booked, SUM(CASE WHEN outcome = 'no_show' THEN 1 ELSE 0 END) AS no_shows "
        f"FROM (SELECT {case} AS m, outcome "
        "FROM appointments WHERE start_utc >= ? AND start_utc < ? AND cancellation != 'practitioner' AND outcome != 'foreign') t "
        "GROUP BY m",
        [*params, months[0].start, months[-1].end],
    ).fetchall()
    for row in rows:
        if row["m"] is not None:
            month = figures[row["m"]]
            month.booked, month.no_shows = int(row["booked"]), int(row["no_shows"])


def _fees(ledger: Ledger, months: list[Month], figures: list[MonthFigures], currency: str) -> None:
    case, params = month_case("slot", months)
    rows = ledger.db.execute(
        "SELECT m, kind, state, policy, pay, incident, settles, other, COUNT(*) AS n, SUM(amount_minor) AS total FROM ("
        f"SELECT {case} AS m, kind, state, policy, amount_minor, "
        "CASE WHEN context LIKE '%\"payment_status\":\"paid\"%' THEN 'paid' "
        "WHEN context LIKE '%\"payment_status\":\"unpaid\"%' OR context LIKE '%\"payment_status\":\"receivable\"%' THEN 'owed' "
        "ELSE '' END AS pay, "
        "CASE WHEN context LIKE '%\"incident\":true%' THEN 1 ELSE 0 END AS incident, "
        "CASE WHEN context LIKE '%\"settles\":%' THEN 1 ELSE 0 END AS settles, "
        "CASE WHEN context LIKE '%\"purpose\":%' AND context NOT LIKE '%\"purpose\":\"fee\"%' THEN 1 "
        f"WHEN reason LIKE '{REPLACED}' THEN 1 ELSE 0 END AS other "
        "FROM (SELECT COALESCE(appointment_start, created_at) AS slot, kind, state, policy, amount_minor, context, reason FROM actions "
        f"WHERE kind IN ({','.join('?' * len(FEE_KINDS))}) AND currency = ?) a "
        "WHERE slot >= ? AND slot < ?) t GROUP BY m, kind, state, policy, pay, incident, settles, other",
        [*params, *FEE_KINDS, currency, months[0].start, months[-1].end],
    ).fetchall()
    for row in rows:
        if row["m"] is None or row["other"]:
            continue
        month, kind, state, total = figures[row["m"]], row["kind"], row["state"], int(row["total"] or 0)
        fee = bool(row["incident"]) and row["policy"] != COLLECTIONS
        money = kind in ("charge", "capture")
        if fee and kind != "writeoff" and state != "cancelled":
            month.proposed += total
        if fee and (kind == "waive" and state == "done" or state == "waived"):
            month.waived += total
        if kind == "writeoff" and state == "done":
            month.written_off += total
        if row["settles"]:
            if fee and kind in ("credit", "capture") and state == "done":
                month.kept += total
            continue
        if fee and money and state == "done":
            month.charged += total
        if money and state == "done" and row["pay"] == "paid" and (fee or row["policy"] == COLLECTIONS):
            month.collected += total
        if fee and money and (state in WAITING or state == "done" and row["pay"] == "owed"):
            month.open += total


def _rebooked(ledger: Ledger, months: list[Month], figures: list[MonthFigures]) -> None:
    # A waitlist offer (a slot_freed email sent) followed by an appointment of that client
    # starting at the freed slot's start: the slot was booked again through the waitlist.
    # Matched here, from one read of the offers and one of the window's appointments (only
    # the columns needed): a join looked each offer up through the client's index on SQLite,
    # reading every appointment of that client, and PostgreSQL, without statistics yet (a
    # ledger just filled by a first sync), nested the two scans.
    window = [months[0].start, months[-1].end]
    offered = ("SELECT client_email, appointment_start FROM actions WHERE state = 'done' AND template = 'slot_freed' "
               "AND appointment_start >= ? AND appointment_start < ?")
    offers = {(row["client_email"], row["appointment_start"]) for row in ledger.db.execute(offered, window)}
    if not offers:
        return
    starts = {start for _, start in offers}
    rows = ledger.db.execute(
        "SELECT calendar_id, event_id, client_email, start_utc FROM appointments WHERE start_utc >= ? AND start_utc < ? "
        "AND cancellation = '' AND status != 'cancelled'", window,
    )
    index = {month.end: number for number, month in enumerate(months)}
    ends = sorted(index)
    for row in rows:
        if row["start_utc"] in starts and (row["client_email"], row["start_utc"]) in offers:
            month = figures[index[ends[bisect_right(ends, row["start_utc"])]]]
            month.rebooked += 1
            month.paid_slots.add((row["calendar_id"], row["event_id"]))


def _reminders(ledger: Ledger, months: list[Month], figures: list[MonthFigures]) -> None:
    case, params = month_case("executed_at", months)
    rows = ledger.db.execute(
        f"SELECT m, COUNT(*) AS n FROM (SELECT {case} AS m FROM actions WHERE kind = 'email' AND template = 'reminder' "
        "AND state = 'done' AND executed_at >= ? AND executed_at < ?) t GROUP BY m",
        [*params, months[0].start, months[-1].end],
    ).fetchall()
    for row in rows:
        if row["m"] is not None:
            figures[row["m"]].reminders = int(row["n"])


def _cancellations(ledger: Ledger, months: list[Month], figures: list[MonthFigures], freed_within: timedelta,
                   late_window: timedelta) -> None:
    # When each cancelled appointment of the window was cancelled: its cancellation happening
    # (the last one, if it was cancelled, restored and cancelled again); a client's
    # cancellation is late with less notice than `late_window`.
    case, params = month_case("a.start_utc", months)
    rows = ledger.db.execute(
        f"SELECT {case} AS m, a.start_utc AS start_utc, MAX(h.at) AS at, MAX(a.cancellation) AS cancellation, "
        "MAX(CASE WHEN h.kind = 'cancelled_by_client' THEN h.at END) AS client_at FROM appointments a LEFT JOIN happenings h "
        "ON h.calendar_id = a.calendar_id AND h.event_id = a.event_id AND h.start_utc = a.start_utc "
        "AND h.kind IN ('cancelled_by_client', 'cancelled_by_practitioner') "
        "WHERE a.cancellation != '' AND a.outcome != 'foreign' AND a.start_utc >= ? AND a.start_utc < ? "
        "GROUP BY a.calendar_id, a.event_id, a.start_utc",
        [*params, months[0].start, months[-1].end],
    ).fetchall()
    for row in rows:
        if row["m"] is None:
            continue
        month = figures[row["m"]]
        month.cancellations += 1
        if row["cancellation"] == "client":
            if is_late(row["start_utc"], row["client_at"], late_window):
                month.late_cancels += 1
            else:
                month.cancelled_in_time += 1
        if row["at"] and from_utc_text(row["start_utc"]) - from_utc_text(row["at"]) >= freed_within:
            month.cancelled_early += 1


def _protected(ledger: Ledger, figures: list[MonthFigures]) -> None:
    """Minutes of sessions whose fee was collected or kept, and of re-booked slots."""
    if not figures:
        return
    months = [month.month for month in figures]
    rows = _windowed(
        ledger, months, "appointment_start", "calendar_id, event_id", "actions",
        "kind IN ('charge', 'capture', 'credit') AND state = 'done' AND context LIKE '%\"incident\":true%' "
        "AND (context LIKE '%\"payment_status\":\"paid\"%' OR context LIKE '%\"settles\":%')", [],
    )
    for row in rows:
        if row["m"] is not None:
            figures[row["m"]].paid_slots.add((row["calendar_id"], row["event_id"]))
    slots_by_month = {index: month.paid_slots for index, month in enumerate(figures) if month.paid_slots}
    wanted = sorted({slot for slots in slots_by_month.values() for slot in slots})
    minutes = _durations(ledger, wanted)
    for index, slots in slots_by_month.items():
        figures[index].protected_minutes = sum(minutes.get(slot, 0) for slot in slots)


def _durations(ledger: Ledger, slots: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Minutes of each (calendar, event), from its stored snapshot's start and end."""
    found: dict[tuple[str, str], int] = {}
    by_calendar: dict[str, list[str]] = defaultdict(list)
    for calendar_id, event_id in slots:
        by_calendar[calendar_id].append(event_id)
    for calendar_id, event_ids in by_calendar.items():
        for index in range(0, len(event_ids), 500):
            chunk = event_ids[index:index + 500]
            rows = ledger.db.execute(
                f"SELECT event_id, snapshot FROM appointments WHERE calendar_id = ? AND event_id IN ({','.join('?' * len(chunk))})",
                [calendar_id, *chunk],
            )
            for row in rows:
                snapshot = json.loads(row["snapshot"])
                length = datetime.fromisoformat(snapshot["end"]) - datetime.fromisoformat(snapshot["start"])
                found[(calendar_id, row["event_id"])] = max(0, int(length.total_seconds() // 60))
    return found
