"""The change tracker: successive snapshots of one appointment become happenings.

Pure: given what we knew (`Tracked`), what the calendar says now (or that the event is gone)
and `now`, return what we know now and what happened. Happening keys are stable, so
observing the same history twice yields the same keys and the ledger stores each once.

Reading the practitioner's intent:
- a late-cancel mark or the client declining the invitation is a client cancellation, timed
  by an explicit `cancelled:` line, else by the event's `updated` stamp or when we first saw
  it, whichever is earlier;
- a cancelled or deleted event without such a signal is the practitioner's act (no fee);
- a moved start time is a reschedule, never a cancellation;
- after the start, a no-show, attended or waive mark is the outcome; an unmarked appointment
  counts as attended once `settle_after_end` has passed (if so configured);
- removing a no-show or late-cancel mark withdraws it: that is a waiver of its fee;
- a change of client (another guest, or an `email:` line naming someone else) is the
  practitioner ending the old booking and making a new one for the new client (`hand_over`):
  the old client is never charged for anything after it, and the new client never for what
  happened before it: the marks the event carries at that moment were about the old client.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from slotguard.domain.durations import to_utc_text
from slotguard.domain.model import Appointment, Happening, HappeningKind, Mark

NO_CANCELLATION = ""
BY_CLIENT = "client"
BY_PRACTITIONER = "practitioner"
MOVED_BEFORE_SEEN = "moved from the series' usual time before Slotguard first saw it"
# The detail of a `booked` happening read at the first sync of a calendar: the booking was
# made before Slotguard watched it, so its time is when Slotguard first saw it, not when it was
# booked, and the client gets an introduction of the policy rather than a booking confirmation.
FIRST_LOOK = "already in the calendar when Slotguard first read it"
# The outcome stored for an appointment whose event someone else now organises (see
# slotguard/intake/ownership.py): frozen, so time alone produces nothing for it; when the event is
# the practitioner's again, it is observed afresh from this state.
FOREIGN = "foreign"


@dataclass(frozen=True, slots=True)
class AttendanceRules:
    unmarked_after_end: str = "attended"
    settle_after_end: timedelta = timedelta(hours=2)


@dataclass(frozen=True, slots=True)
class Tracked:
    """What the ledger remembers about one appointment between ticks."""

    appointment: Appointment
    cancellation: str
    outcome: str
    first_seen: datetime

    @property
    def needs_time_check(self) -> bool:
        """True while the passing of time alone can still produce a happening."""
        return not self.cancellation and not self.outcome


def cancellation_of(appointment: Appointment) -> str:
    if Mark.LATE_CANCEL in appointment.marks or appointment.client_declined:
        return BY_CLIENT
    if appointment.is_cancelled:
        return BY_PRACTITIONER
    return NO_CANCELLATION


def outcome_of(appointment: Appointment, cancellation: str, now: datetime, rules: AttendanceRules) -> str:
    marks = appointment.marks
    if Mark.WAIVE in marks:  # a waiver wins over any other mark: when in doubt, no fee
        return HappeningKind.WAIVED.value
    if cancellation or now < appointment.start:
        return ""
    if Mark.NO_SHOW in marks:
        return HappeningKind.NO_SHOW.value
    if Mark.ATTENDED in marks:
        return HappeningKind.ATTENDED.value
    if rules.unmarked_after_end == "attended" and now >= appointment.end + rules.settle_after_end:
        return HappeningKind.ATTENDED.value
    return ""


def _key(appointment: Appointment, kind: str, *extra: str) -> str:
    # A booking after a change of client has keys of its own, so that its happenings are
    # never taken for the previous client's (already stored) ones.
    booking = [appointment.booking] if appointment.booking else []
    parts = [appointment.calendar_id, appointment.key_id, *booking, kind, *extra]
    return "/".join(parts)


def client_changed(previous: Tracked | None, current: Appointment | None) -> bool:
    """True when the calendar now names another client for an appointment we track."""
    return previous is not None and current is not None and previous.appointment.client.email != current.client.email


def hand_over(previous: Tracked, current: Appointment, now: datetime) -> tuple[Appointment, list[Happening], Appointment]:
    """A change of client, read as the practitioner ending the old booking and making a new one.

    Given what we knew (the old client's booking) and the event now naming another client.
    Returns (the old booking as it ends, its happenings, the new booking's appointment).
    An old booking still open ends as cancelled by the practitioner (no fee; money taken for
    it is given back by the policies); one that already has its outcome or cancellation
    keeps it, and any fee for it stays with the old client. Observe the new booking as a new
    appointment: `observe(None, new_booking, now, rules)`. It has keys of its own, and the
    marks the event carries now are not its marks until they are taken off and put on again.
    """
    old = previous.appointment
    seen_change_at = min(current.updated, now)
    happenings: list[Happening] = []
    ended = old
    if not previous.cancellation and not previous.outcome:
        ended = replace(old, status="cancelled", updated=seen_change_at)
        happenings.append(
            Happening(
                key=_key(old, "cancelled_by_practitioner", to_utc_text(old.start), "client-changed"),
                kind=HappeningKind.CANCELLED_BY_PRACTITIONER,
                calendar_id=old.calendar_id,
                event_id=old.event_id,
                client_email=old.client.email,
                start=old.start,
                at=seen_change_at,
                seen_at=now,
                detail=f"the event now names another client ({current.client.email})",
            )
        )
    booking = f"client={current.client.email},since={to_utc_text(now)}"
    new = replace(current, booking=booking, inherited_marks=current.marks, marks=frozenset())
    return ended, happenings, new


def follow(
    previous: Tracked | None,
    current: Appointment | None,
    now: datetime,
    rules: AttendanceRules,
    first_look: bool = False,
) -> tuple[Tracked | None, list[tuple[Appointment, list[Happening]]]]:
    """`observe`, handing the booking over first when the client changed (`first_look`: this
    is the first sync of the calendar, see `observe`). Returns the new
    Tracked and, per booking, the appointment to plan its happenings for and the happenings:
    the old client's booking as it ended first (after a change of client), then the current."""
    ended: list[tuple[Appointment, list[Happening]]] = []
    if client_changed(previous, current):
        assert previous is not None and current is not None  # client_changed: both are given
        old, happenings, current = hand_over(previous, current, now)
        ended, previous = [(old, happenings)], None
    tracked, happenings = observe(previous, current, now, rules, first_look=first_look)
    return tracked, ended + ([(tracked.appointment, happenings)] if tracked is not None else [])


def _carried(previous: Appointment, current: Appointment) -> Appointment:
    """`current` as read from the calendar, with the booking it belongs to and without the
    marks it inherited from the previous client's booking (those still on the event), and
    the id its keys are made from (`Appointment.key_id`)."""
    if previous.former_id and not current.former_id and previous.event_id == current.event_id:
        current = replace(current, former_id=previous.former_id)
    if not previous.booking or current.booking:
        return current  # the event's first booking, or a snapshot we stored ourselves
    inherited = previous.inherited_marks & current.marks
    return replace(current, booking=previous.booking, inherited_marks=inherited, marks=current.marks - inherited)


def observe(
    previous: Tracked | None,
    current: Appointment | None,
    now: datetime,
    rules: AttendanceRules,
    first_look: bool = False,
) -> tuple[Tracked | None, list[Happening]]:
    """Compare what we knew with what the calendar says now.

    `first_look` True: this is the first sync of the calendar, so a new appointment was booked
    before Slotguard watched it: its `booked` happening is at the time it is seen, with the
    detail FIRST_LOOK (its `updated` time may be a later change, a cancellation or a move).

    `current` None means the event was deleted (then `previous` must be given). Returns the
    new Tracked (None if there is nothing to track) and the happenings, oldest first.
    Raises ValueError when `current` names another client than `previous`: that is a
    `hand_over`, and the old booking's happenings are planned for the old client.
    """
    if client_changed(previous, current):
        assert current is not None  # client_changed: both are given
        raise ValueError(f"{current.ref}: the client changed; hand the booking over first")
    if previous is not None and current is not None:
        current = _carried(previous.appointment, current)
    if current is None:
        if previous is None:
            return None, []
        # A deletion carries no stamp of its own: it happened when we first saw it gone.
        current = replace(previous.appointment, status="cancelled", updated=now)
        if previous.outcome:
            # Deleting an appointment that already has its outcome (attended, no-show,
            # waived) is tidying up the calendar: the outcome and any fee stand.
            return Tracked(current, previous.cancellation, previous.outcome, previous.first_seen), []
    happenings: list[Happening] = []
    first_seen = previous.first_seen if previous else now
    seen_change_at = min(current.updated, now)

    def emit(kind: HappeningKind, key: str, at: datetime, **extra) -> None:
        happenings.append(
            Happening(
                key=key,
                kind=kind,
                calendar_id=current.calendar_id,
                event_id=current.event_id,
                client_email=current.client.email,
                start=current.start,
                at=at,
                seen_at=now,
                **extra,
            )
        )

    start_text = to_utc_text(current.start)
    if previous is None:
        if first_look:
            emit(HappeningKind.BOOKED, _key(current, "booked"), now, detail=FIRST_LOOK)
        else:
            emit(HappeningKind.BOOKED, _key(current, "booked"), seen_change_at)
        original = current.original_start
        if original is not None and original != current.start and not current.is_cancelled:
            # An instance of a recurring series moved from its usual time before we saw it.
            emit(
                HappeningKind.RESCHEDULED,
                _key(current, "rescheduled", to_utc_text(original), start_text),
                seen_change_at,
                previous_start=original,
                detail=MOVED_BEFORE_SEEN,
            )
        old_cancellation, old_outcome = NO_CANCELLATION, ""
    else:
        old_cancellation, old_outcome = previous.cancellation, previous.outcome
        old_start = previous.appointment.start
        if old_start != current.start and not current.is_cancelled:
            emit(
                HappeningKind.RESCHEDULED,
                _key(current, "rescheduled", to_utc_text(old_start), start_text),
                seen_change_at,
                previous_start=old_start,
            )
            # A new slot: the old slot's cancellation marks and outcome do not carry over.
            old_outcome = ""
            if old_cancellation == BY_PRACTITIONER:
                old_cancellation = NO_CANCELLATION

    cancellation = cancellation_of(current)
    if cancellation != old_cancellation:
        if old_cancellation == BY_CLIENT:
            emit(
                HappeningKind.WAIVED,
                _key(current, "waived", start_text, "cancellation-withdrawn"),
                seen_change_at,
                detail="the late-cancellation mark was removed",
            )
        if cancellation == BY_CLIENT:
            at = current.cancelled_at or seen_change_at
            emit(HappeningKind.CANCELLED_BY_CLIENT, _key(current, "cancelled_by_client", start_text), at)
        elif cancellation == BY_PRACTITIONER:
            emit(
                HappeningKind.CANCELLED_BY_PRACTITIONER,
                _key(current, "cancelled_by_practitioner", start_text),
                seen_change_at,
            )

    outcome = outcome_of(current, cancellation, now, rules)
    if outcome != old_outcome:
        if old_outcome == HappeningKind.NO_SHOW.value and outcome != HappeningKind.WAIVED.value:
            emit(
                HappeningKind.WAIVED,
                _key(current, "waived", start_text, "no-show-withdrawn"),
                seen_change_at,
                detail="the no-show mark was removed",
            )
        if outcome:
            kind = HappeningKind(outcome)
            at = current.start if kind is not HappeningKind.WAIVED else seen_change_at
            detail = ""
            if kind is HappeningKind.ATTENDED and Mark.ATTENDED not in current.marks:
                detail = "not marked after the appointment; taken as attended"
            emit(kind, _key(current, outcome, start_text), at, detail=detail)
    return Tracked(current, cancellation, outcome, first_seen), happenings
