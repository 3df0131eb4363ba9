"""An appointment an older .ics source stored as UID_START is renamed to the UID when the
event, now a single event marked with its former prefix, is read (slotguard/store/former_ids.py):
in every table, with its keys kept; nothing else is touched. Both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slotguard.domain.interfaces import FORMER_ID_PREFIX
from slotguard.domain.model import ActionKind, ActionSubject, new_action
from slotguard.domain.money import Money
from slotguard.intake.normalize import normalize
from slotguard.intake.tracker import AttendanceRules, Tracked, observe
from slotguard.planning.reminders import reminder_key
from slotguard.store.former_ids import adopt_former_ids
from slotguard.store.ledger import Ledger
from tests.support.builders import event, settings

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
ICS = "https://calendar.example.com/private/basic.ics"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _store(ledger: Ledger, calendar_id: str, event_id: str, start: datetime, series: str | None, first_seen: datetime,
           cancelled: bool = False) -> Tracked:
    """An appointment as the older .ics code stored it: a single event carried its UID as series id."""
    resource = event(event_id, start, status="cancelled" if cancelled else "confirmed")
    if series:
        resource["recurringEventId"] = series
        resource["originalStartTime"] = resource["start"]
    appointment = normalize(resource, calendar_id, settings(), first_seen).appointment
    tracked, happenings = observe(None, appointment, first_seen, AttendanceRules())
    assert tracked is not None
    tracked = Tracked(tracked.appointment, tracked.cancellation, tracked.outcome, first_seen)
    ledger.save_tracked(tracked)
    for happening in happenings:
        ledger.add_happening(happening)
    return tracked


def _single(uid: str) -> dict:
    return {"id": uid, FORMER_ID_PREFIX: f"{uid}_"}


def test_the_newest_appointment_of_an_old_single_event_is_renamed_everywhere_and_keeps_its_keys(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    start, moved = NOW + timedelta(days=2), NOW + timedelta(days=3)
    with ledger.transaction():
        ended = _store(ledger, ICS, f"ana_{_stamp(start)}", start, "ana", NOW, cancelled=True)  # the older code's "move"
        kept = _store(ledger, ICS, f"ana_{_stamp(moved)}", moved, "ana", NOW + timedelta(hours=1))
        old = kept.appointment.event_id
        fee = new_action(ActionSubject.of_appointment(kept.appointment), ActionKind.CHARGE, "deposit", "deposit",
                         key=f"{ICS}/{old}/booked", now=NOW, amount=Money(20000, "NOK"))
        alert = new_action(ActionSubject("practice", "", "lena@example.com", "Lena", moved), ActionKind.EMAIL, "money_ahead", "alert",
                           key="x", now=NOW, template="money_ahead", context={"about": fee.id, "calendar": ICS, "event": old})
        ledger.add_action(fee)
        ledger.add_action(alert)
        ledger.queue_write_back(ICS, old, NOW)
        ledger.record_problem(ICS, old, "2 possible clients", NOW)
        ledger.record_problem(ICS, f"bo_{_stamp(start)}", "no client", NOW)  # an event never stored: read again, stored again
        keys_before = {row["key"] for row in ledger.happenings_for(ICS, old)}
        reminder_before = reminder_key(kept)

        renamed = adopt_former_ids(ledger.db, ICS, [_single("ana"), _single("bo"), {"id": "cy_20260605T090000Z"}])

    assert renamed == [(old, "ana")]
    tracked = ledger.tracked(ICS, "ana")
    assert tracked is not None and tracked.appointment.start == moved and tracked.appointment.former_id == old
    assert ledger.tracked(ICS, old) is None
    assert ledger.tracked(ICS, ended.appointment.event_id) is not None, "the ended booking keeps its id"
    assert {row["key"] for row in ledger.happenings_for(ICS, "ana")} == keys_before, "happenings follow, their keys unchanged"
    assert reminder_key(tracked) == reminder_before, "no reminder is planned again"
    assert [action.id for action in ledger.actions(calendar_id=ICS, event_id="ana")] == [fee.id], "the action id is kept"
    stored_alert = ledger.action(alert.id)
    assert stored_alert is not None and stored_alert.context["event"] == "ana"
    assert [row["event_id"] for row in ledger.db.execute("SELECT event_id FROM pending_writes")] == ["ana"]
    assert {problem["item"] for problem in ledger.problems()} == {"ana"}
    ledger.close()


def test_nothing_is_renamed_for_an_event_known_by_its_id_unmarked_or_of_another_series(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    start = NOW + timedelta(days=2)
    with ledger.transaction():
        _store(ledger, ICS, "ana", start, None, NOW)
        _store(ledger, ICS, f"ana_{_stamp(start)}", start, "ana", NOW)  # an older copy beside the event known by its UID
        _store(ledger, "primary", f"weekly_{_stamp(start)}", start, "weekly", NOW)  # a Google instance: no mark
        _store(ledger, ICS, f"bo_{_stamp(start)}", start, "other", NOW)  # another series' id
        _store(ledger, ICS, f"cy_x{_stamp(start)}", start, "cy", NOW)  # not a stamp after the prefix
        renamed = adopt_former_ids(ledger.db, ICS, [_single("ana"), {"id": "weekly"}, _single("bo"), _single("cy")])
        renamed += adopt_former_ids(ledger.db, "primary", [{"id": "weekly"}])
    assert renamed == []
    ids = {row["event_id"] for row in ledger.db.execute("SELECT event_id FROM appointments")}
    assert ids == {"ana", f"ana_{_stamp(start)}", f"weekly_{_stamp(start)}", f"bo_{_stamp(start)}", f"cy_x{_stamp(start)}"}
    ledger.close()


def test_a_renamed_appointment_keeps_its_old_id_for_its_keys_as_the_calendar_changes_it(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    start = NOW + timedelta(days=2)
    old = f"ana_{_stamp(start)}"
    with ledger.transaction():
        _store(ledger, ICS, old, start, "ana", NOW)
        adopt_former_ids(ledger.db, ICS, [_single("ana")])
    previous = ledger.tracked(ICS, "ana")
    assert previous is not None
    later = start + timedelta(days=1)
    read = normalize(event("ana", later), ICS, settings(), NOW + timedelta(hours=1)).appointment
    assert read is not None and read.former_id == ""  # the calendar knows nothing of it
    tracked, happenings = observe(previous, read, NOW + timedelta(hours=1), AttendanceRules())
    assert tracked is not None and tracked.appointment.former_id == old and tracked.appointment.event_id == "ana"
    assert [(happening.kind.value, happening.event_id) for happening in happenings] == [("rescheduled", "ana")]
    assert happenings[0].key.startswith(f"{ICS}/{old}/rescheduled/"), "keys are still made from the id it was first stored under"
    ledger.close()


def test_a_uid_with_spaces_is_found_by_the_series_id_normalize_kept(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    start = NOW + timedelta(days=2)
    uid = "ana  booked in the app"  # printable (an id must be), with a run of spaces normalize folds in the series id
    with ledger.transaction():
        _store(ledger, ICS, f"{uid}_{_stamp(start)}", start, uid, NOW)
        assert adopt_former_ids(ledger.db, ICS, [_single(uid)]) == [(f"{uid}_{_stamp(start)}", uid)]
    ledger.close()
