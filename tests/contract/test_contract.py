"""The contract every calendar source keeps, one suite for all of them (issue 14): the real
engine over each source's own adapter and local server or wire fake (tests/contract/harness_*.py),
asserting what the practitioner sees: the appointments, the fees proposed, what is written back
onto their events. A new source passes by adding its harness module; nothing here names one.

The practice (tests/support/builders.py): 900 NOK a session, a late cancellation within 24 h
costs 50 %, a no-show 100 %, a waiver mark drops the fee."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.contract.harness import Booking, SourceHarness
from tests.contract.practice import FEE, HALF, Practice

pytestmark = pytest.mark.timeout(120)


def problems_about_the_calendar(report) -> list[str]:
    """The tick's problems about the calendar, each one a fault the source knows (a network
    error, a server error, an answer cut off), not the engine's catch-all for an unexpected
    exception ("could not be read (...)", slotguard/store/containment.py)."""
    found = [problem for problem in report.problems if problem.startswith("calendar ")]
    assert not [problem for problem in found if "could not be read (" in problem], found
    return found


# --- the harness and the idle tick ------------------------------------------------------------


def test_the_harness_gives_the_whole_protocol(harness):
    wanted = {name for name in vars(SourceHarness) if not name.startswith("_")} | set(SourceHarness.__annotations__)
    assert sorted(name for name in wanted if not hasattr(harness, name)) == []
    assert harness.calendar_table()["source"] == harness.name


def test_an_idle_tick_costs_one_small_request(practice: Practice):
    harness, now = practice.harness, practice.now
    for n in range(20):
        practice.book(f"client{n}@example.com", now + timedelta(days=1, hours=n))
    harness.reset_requests()
    practice.tick()
    first_sync = harness.bytes_moved()
    harness.reset_requests()
    for minutes in (2, 4, 6):
        assert practice.tick(now + timedelta(minutes=minutes)).problems == []
    assert harness.request_count() == 3, "one request per idle tick"
    assert harness.bytes_moved() / 3 < first_sync / 5, "an idle tick does not fetch the calendar again"


# --- marks ------------------------------------------------------------------------------------


def test_native_marks_propose_the_fees_they_mean_and_nothing_else(practice: Practice):
    harness, now = practice.harness, practice.now
    missed = practice.book("ana@example.com", now + timedelta(hours=1))
    forgiven = practice.book("bo@example.com", now + timedelta(hours=1), title="Massage, room 2")
    came = practice.book("cy@example.com", now + timedelta(hours=1))
    late = practice.book("di@example.com", now + timedelta(hours=12))
    assert practice.tick().problems == []
    assert set(practice.appointments()) == {missed, forgiven, came, late} and practice.fees() == []

    harness.mark(late, "late_cancel")
    harness.mark(missed, "no_show")
    harness.mark(forgiven, "no_show")
    harness.mark(forgiven, "waive")
    report = practice.tick(now + timedelta(hours=3))

    assert report.problems == []
    assert practice.fee_amounts() == {late: [HALF], missed: [FEE]}
    assert practice.happening_kinds(late)[-1] == "cancelled_by_client"
    assert practice.happening_kinds(missed)[-1] == "no_show"
    assert practice.happening_kinds(forgiven)[-1] == "waived"


# --- reschedule, cancel, delete, decline -----------------------------------------------------


def test_a_moved_appointment_is_rescheduled_never_cancelled(practice: Practice):
    harness, now = practice.harness, practice.now
    event_id = practice.book("ana@example.com", now + timedelta(days=3))
    practice.tick()
    later = now + timedelta(days=4, hours=2)
    harness.move(event_id, later, later + timedelta(minutes=60))
    assert practice.tick(now + timedelta(minutes=5)).problems == []

    [tracked] = practice.appointments().values()
    assert tracked.appointment.start == later and not tracked.cancellation
    assert practice.happening_kinds(event_id) == ["booked", "rescheduled"] and practice.fees() == []


def test_the_practitioner_cancelling_or_deleting_costs_nothing_and_a_client_declining_late_does(practice: Practice):
    harness, now = practice.harness, practice.now
    cancelled = practice.book("ana@example.com", now + timedelta(hours=12))
    deleted = practice.book("bo@example.com", now + timedelta(hours=13))
    declined = practice.book("cy@example.com", now + timedelta(hours=14))
    kept = practice.book("di@example.com", now + timedelta(hours=15))
    practice.tick()

    harness.cancel(cancelled)
    harness.delete(deleted)
    harness.decline(declined)
    assert practice.tick(now + timedelta(minutes=5)).problems == []

    assert practice.cancelled() == {cancelled, deleted, declined}
    assert practice.happening_kinds(cancelled)[-1] == practice.happening_kinds(deleted)[-1] == "cancelled_by_practitioner"
    assert practice.happening_kinds(declined)[-1] == "cancelled_by_client"
    assert practice.fee_amounts() == {declined: [HALF]}
    assert kept in practice.appointments() and practice.happening_kinds(kept) == ["booked"]


# --- recurring series ---------------------------------------------------------------------------


def test_a_series_arrives_as_instances_with_its_moved_and_cancelled_ones(practice: Practice):
    harness, now = practice.harness, practice.now
    first = now + timedelta(hours=1)
    moved_to = first + timedelta(weeks=1, hours=2)
    ids = harness.create_series(Booking("Weekly coaching", "ana@example.com", "Ana", first, first + timedelta(minutes=60)),
                                4, moved=(1, moved_to), cancelled=2)
    assert practice.tick().problems == []

    seen = practice.appointments()
    live = {event_id for event_id, tracked in seen.items() if not tracked.cancellation}
    assert live == {ids[0], ids[1], ids[3]}
    assert seen[ids[1]].appointment.start == moved_to
    assert seen[ids[3]].appointment.start == first + timedelta(weeks=3)

    harness.mark(ids[0], "no_show")
    harness.delete(ids[3])
    assert practice.tick(now + timedelta(hours=3)).problems == []
    assert practice.fee_amounts() == {ids[0]: [FEE]}, "the mark on one instance is about that instance only"
    assert practice.happening_kinds(ids[3])[-1] == "cancelled_by_practitioner"
    assert not practice.appointments()[ids[1]].cancellation


# --- write-back -----------------------------------------------------------------------------------


def test_write_back_changes_only_slotguards_own_fields(practice: Practice):
    harness, now = practice.harness, practice.now
    if not harness.writes_back:
        pytest.skip(f"{harness.name} is read-only: nothing is written back")
    event_id = practice.book("ana@example.com", now + timedelta(hours=1))
    practice.tick()
    harness.mark(event_id, "no_show")
    before = harness.stored(event_id)
    assert before.own == {}

    practice.tick(now + timedelta(hours=3))
    after = harness.stored(event_id)
    assert practice.fee_amounts() == {event_id: [FEE]}
    assert after.own, "the fee's state is written onto the event"
    assert after.rest == before.rest, "nothing but Slotguard's own fields changed"

    harness.reset_requests()
    report = practice.tick(now + timedelta(hours=3, minutes=2))
    assert report.problems == [] and practice.fee_amounts() == {event_id: [FEE]}
    assert harness.request_count() == 1, "our own write is not read back as a change, and is not written again"


def test_write_back_never_clobbers_an_edit_made_while_it_writes(practice: Practice):
    harness, now = practice.harness, practice.now
    if not harness.writes_back:
        pytest.skip(f"{harness.name} is read-only: nothing is written back")
    event_id = practice.book("ana@example.com", now + timedelta(hours=1))
    practice.tick()
    harness.mark(event_id, "no_show")
    marked = harness.stored(event_id)

    harness.edit_before_next_write(event_id)
    report = practice.tick(now + timedelta(hours=3))

    after = harness.stored(event_id)
    assert report.problems == [] and after.own
    assert after.rest != marked.rest, "the practitioner's edit made during the write is kept"
    assert after.rest == harness.last_edit.rest, "and nothing else changed but Slotguard's own fields"
    assert practice.fee_amounts() == {event_id: [FEE]}


# --- sync token expiry ----------------------------------------------------------------------------


def test_an_expired_sync_token_means_a_full_sync_with_nothing_lost_or_doubled(practice: Practice):
    harness, now = practice.harness, practice.now
    stays = practice.book("ana@example.com", now + timedelta(days=2))
    goes = practice.book("bo@example.com", now + timedelta(days=3))
    declines = practice.book("cy@example.com", now + timedelta(hours=12))
    practice.tick()
    actions_before = len(practice.ledger.actions())

    harness.delete(goes)
    harness.decline(declines)
    added = practice.book("di@example.com", now + timedelta(days=6))
    harness.expire_sync_token()
    assert practice.tick(now + timedelta(minutes=5)).problems == []

    seen = practice.appointments()
    assert set(seen) == {stays, goes, declines, added}
    assert practice.cancelled() == {goes, declines}
    assert practice.fee_amounts() == {declines: [HALF]}
    assert practice.happening_kinds(stays) == ["booked"] and practice.happening_kinds(added) == ["booked"]

    harness.expire_sync_token()
    actions = len(practice.ledger.actions())
    assert actions > actions_before
    assert practice.tick(now + timedelta(minutes=10)).problems == []
    assert len(practice.ledger.actions()) == actions, "reading everything again plans nothing again"
    assert practice.fee_amounts() == {declines: [HALF]} and set(practice.appointments()) == set(seen)
    assert practice.cancelled() == {goes, declines}


# --- faults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["server_error", "timeout"])
def test_a_failing_source_is_reported_and_the_next_tick_recovers(practice: Practice, kind):
    harness, now = practice.harness, practice.now
    declines = practice.book("ana@example.com", now + timedelta(hours=12))
    other = practice.book("bo@example.com", now + timedelta(days=1))
    practice.tick()

    harness.decline(declines)
    harness.fail(kind)
    report = practice.tick(now + timedelta(minutes=2))
    assert problems_about_the_calendar(report), report.problems
    assert practice.fees() == [] and practice.cancelled() == set()

    harness.heal()
    assert practice.tick(now + timedelta(minutes=4)).problems == []
    assert practice.fee_amounts() == {declines: [HALF]}
    assert set(practice.appointments()) == {declines, other} and practice.cancelled() == {declines}


def test_a_read_cut_off_halfway_cancels_nothing_and_bills_nothing_twice(practice: Practice):
    harness, now = practice.harness, practice.now
    harness.small_pages()
    booked = [practice.book(f"client{n}@example.com", now + timedelta(days=1, hours=n)) for n in range(5)]
    declines = practice.book("ana@example.com", now + timedelta(hours=12))
    practice.tick()

    harness.decline(declines)
    harness.expire_sync_token()  # the next read is a full listing, in pages
    harness.fail("half_read", after=1)
    report = practice.tick(now + timedelta(minutes=2))
    assert problems_about_the_calendar(report), report.problems
    assert practice.cancelled() <= {declines}, "nothing missing from a half read counts as deleted"
    assert set(practice.fee_amounts()) <= {declines}

    harness.heal()
    assert practice.tick(now + timedelta(minutes=4)).problems == []
    assert practice.cancelled() == {declines}
    assert practice.fee_amounts() == {declines: [HALF]}
    assert set(practice.appointments()) == {*booked, declines}
