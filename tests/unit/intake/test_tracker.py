from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from slotguard.domain.model import HappeningKind as K
from slotguard.intake.normalize import normalize
from slotguard.intake.tracker import AttendanceRules, follow, observe
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
START = datetime(2026, 3, 4, 10, 0, tzinfo=OSLO)
RULES = AttendanceRules("attended", timedelta(hours=2))
SETTINGS = settings()


def appt(resource, seen):
    return normalize(resource, "primary", SETTINGS, seen).appointment


def run(snapshots):
    """Feed (time, resource or None) pairs through the tracker; return happening kinds."""
    tracked, kinds = None, []
    for now, resource in snapshots:
        current = appt(resource, now) if resource is not None else None
        tracked, happenings = observe(tracked, current, now, RULES)
        kinds += [h.kind for h in happenings]
    return tracked, kinds


def test_a_new_future_event_is_booked_and_settles_as_attended_after_the_end():
    day_before = START - timedelta(days=1)
    tracked, kinds = run([(day_before, event("e1", START)), (START + timedelta(hours=3, minutes=1), event("e1", START))])
    assert kinds == [K.BOOKED, K.ATTENDED]


def test_no_attendance_is_assumed_before_the_settle_time():
    _, kinds = run([(START - timedelta(days=1), event("e1", START)), (START + timedelta(hours=2), event("e1", START))])
    assert kinds == [K.BOOKED]


def test_a_moved_start_is_a_reschedule_not_a_cancellation():
    later = START + timedelta(days=1)
    _, kinds = run([(START - timedelta(days=3), event("e1", START)), (START - timedelta(days=2), event("e1", later))])
    assert kinds == [K.BOOKED, K.RESCHEDULED]


def test_a_deleted_event_is_the_practitioners_cancellation():
    _, kinds = run([(START - timedelta(days=3), event("e1", START)), (START - timedelta(hours=1), None)])
    assert kinds == [K.BOOKED, K.CANCELLED_BY_PRACTITIONER]


def test_a_late_cancel_tag_is_a_client_cancellation_timed_by_the_updated_stamp():
    changed = START - timedelta(hours=5)
    seen = START - timedelta(hours=1)
    tracked, happenings = observe(None, appt(event("e1", START), START - timedelta(days=2)), START - timedelta(days=2), RULES)
    tracked, happenings = observe(tracked, appt(event("e1", START, title="Massage #latecancel", updated=changed), seen), seen, RULES)
    assert [h.kind for h in happenings] == [K.CANCELLED_BY_CLIENT]
    assert happenings[0].at == changed


def test_a_cancellation_is_never_timed_later_than_when_we_first_saw_it():
    seen = START - timedelta(hours=30)
    stamp = START - timedelta(hours=1)  # a stamp in the future of our observation cannot be right
    tracked, _ = observe(None, appt(event("e1", START), START - timedelta(days=3)), START - timedelta(days=3), RULES)
    _, happenings = observe(tracked, appt(event("e1", START, response="declined", updated=stamp), seen), seen, RULES)
    assert happenings[0].kind is K.CANCELLED_BY_CLIENT and happenings[0].at == seen


def test_a_no_show_mark_after_inferred_attendance_still_counts_and_removing_it_waives():
    after = START + timedelta(hours=4)
    _, kinds = run([
        (START - timedelta(days=1), event("e1", START)),
        (after, event("e1", START)),
        (after + timedelta(hours=1), event("e1", START, color="11")),
        (after + timedelta(hours=2), event("e1", START)),
    ])
    # Without the mark the appointment is attended again (a key the ledger already holds).
    assert kinds == [K.BOOKED, K.ATTENDED, K.NO_SHOW, K.WAIVED, K.ATTENDED]


def test_a_no_show_mark_before_the_start_means_nothing_yet():
    _, kinds = run([(START - timedelta(hours=1), event("e1", START, color="11"))])
    assert kinds == [K.BOOKED]


def test_keys_are_stable_so_the_same_history_is_stored_once():
    snaps = [(START - timedelta(days=1), event("e1", START)), (START + timedelta(hours=1), event("e1", START, title="x #noshow"))]
    first, second = [], []
    for store in (first, second):
        tracked = None
        for now, resource in snaps:
            tracked, happenings = observe(tracked, appt(resource, now), now, RULES)
            store += [h.key for h in happenings]
    assert first == second and len(set(first)) == len(first)


marks = st.sampled_from(["", " #noshow", " #latecancel", " #waive", " #attended"])
offsets = st.integers(min_value=-72, max_value=72)


@hsettings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(offsets, marks, st.integers(min_value=-2, max_value=2)), min_size=1, max_size=8))
def test_replaying_any_history_gives_the_same_keys_and_a_repeated_look_adds_none(steps):
    """Determinism and idempotence: the same timeline from scratch yields the same happening
    keys, and looking again at the last snapshot at the same time yields nothing new."""
    timeline = sorted(
        ((START + timedelta(hours=hours), event("e1", START + timedelta(days=moved), title="Massage" + mark))
         for hours, mark, moved in steps),
        key=lambda item: item[0],
    )
    runs = []
    for _ in range(2):
        tracked, keys = None, []
        for now, resource in timeline:
            tracked, happenings = observe(tracked, appt(resource, now), now, RULES)
            keys += [h.key for h in happenings]
        runs.append(keys)
        now, resource = timeline[-1]
        _, again = observe(tracked, appt(resource, now), now, RULES)
        assert again == []
    assert runs[0] == runs[1]


def test_deleting_an_appointment_after_its_outcome_is_tidying_not_a_waiver():
    after = START + timedelta(hours=1)
    _, kinds = run([
        (START - timedelta(days=1), event("e1", START)),
        (after, event("e1", START, color="11")),
        (after + timedelta(days=2), None),
    ])
    assert kinds == [K.BOOKED, K.NO_SHOW]


def test_deleting_an_appointment_that_started_without_an_outcome_is_the_practitioners_cancellation():
    _, kinds = run([(START - timedelta(days=1), event("e1", START)), (START + timedelta(minutes=30), None)])
    assert kinds == [K.BOOKED, K.CANCELLED_BY_PRACTITIONER]


# -- a change of client (review finding 1) ------------------------------------------------------

MONDAY = START - timedelta(days=2)


def follow_all(snapshots):
    """Like run(), through the engine's path (`follow`): each happening as (kind, its client,
    the client of the booking it is planned for, key)."""
    tracked, seen = None, []
    for now, resource in snapshots:
        current = appt(resource, now) if resource is not None else None
        tracked, bookings = follow(tracked, current, now, RULES)
        seen += [(h.kind, h.client_email, booking.client.email, h.key) for booking, happenings in bookings for h in happenings]
    return tracked, seen


def test_a_new_client_ends_the_old_booking_as_the_practitioners_cancellation_and_is_a_new_booking():
    tracked, seen = follow_all([
        (MONDAY, event("e1", START)),
        (MONDAY + timedelta(hours=2), event("e1", START, client="bo@example.com")),
    ])
    assert [(kind, who, planned_for) for kind, who, planned_for, _ in seen] == [
        (K.BOOKED, "ana@example.com", "ana@example.com"),
        (K.CANCELLED_BY_PRACTITIONER, "ana@example.com", "ana@example.com"),
        (K.BOOKED, "bo@example.com", "bo@example.com"),
    ]
    keys = [key for *_, key in seen]
    assert len(set(keys)) == 3, "Bo's booking has keys of its own"
    assert tracked.first_seen == MONDAY + timedelta(hours=2), "reminders count from when Bo's booking was seen"


def test_marks_on_the_event_when_the_client_changes_never_count_for_the_new_client():
    tracked, seen = follow_all([
        (MONDAY, event("e1", START)),
        (START + timedelta(minutes=10), event("e1", START, title="Massage #latecancel", color="11")),
        (START + timedelta(minutes=20), event("e1", START, title="Massage #latecancel", client="bo@example.com", color="11")),
        (START + timedelta(minutes=30), event("e1", START, client="bo@example.com", color="11")),
    ])
    # Ana's late cancellation stands; nothing is Bo's until a mark is put on for him.
    assert [(kind, who) for kind, who, *_ in seen] == [
        (K.BOOKED, "ana@example.com"), (K.CANCELLED_BY_CLIENT, "ana@example.com"), (K.BOOKED, "bo@example.com")]
    assert tracked.needs_time_check, "Bo's appointment settles with time like any other"
    later = START + timedelta(hours=4)
    _, happenings = observe(tracked, appt(event("e1", START, client="bo@example.com"), later), later, RULES)
    assert [(h.kind, h.client_email) for h in happenings] == [(K.ATTENDED, "bo@example.com")]


def test_a_mark_taken_off_and_put_on_again_after_the_change_is_the_new_clients():
    after = START + timedelta(hours=1)
    _, seen = follow_all([
        (MONDAY, event("e1", START)),
        (after, event("e1", START, color="11")),
        (after + timedelta(minutes=10), event("e1", START, client="bo@example.com", color="11")),
        (after + timedelta(minutes=20), event("e1", START, client="bo@example.com")),
        (after + timedelta(minutes=30), event("e1", START, client="bo@example.com", color="11")),
    ])
    kinds = [(kind, who) for kind, who, *_ in seen]
    assert kinds == [(K.BOOKED, "ana@example.com"), (K.NO_SHOW, "ana@example.com"), (K.BOOKED, "bo@example.com"),
                     (K.NO_SHOW, "bo@example.com")]
    assert len({key for *_, key in seen}) == 4, "Bo's no-show is not taken for Ana's, already stored"


def test_at_the_first_look_a_booking_is_timed_when_first_seen_not_by_its_last_change():
    """Issue 13, item 9: an event read at the first sync of a calendar was booked before
    Slotguard watched; its `updated` stamp (here a move at 05:30) is not when it was booked."""
    moved_at = START.replace(hour=5, minute=30) - timedelta(days=1)
    seen = START - timedelta(hours=20)
    moved = event("e1", START, updated=moved_at)
    _, [booked] = observe(None, appt(moved, seen), seen, RULES, first_look=True)
    assert (booked.kind, booked.at, booked.detail) == (K.BOOKED, seen, "already in the calendar when Slotguard first read it")
    _, [watched] = observe(None, appt(moved, seen), seen, RULES)
    assert (watched.at, watched.detail) == (moved_at, ""), "a calendar already watched: a new event was just booked"
    assert watched.key == booked.key, "the same happening either way: stored once"
