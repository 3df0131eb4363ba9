"""An .ics ledger kept by the older code, which named a single event UID_START, upgraded to
the code that names it by its UID (ledger migration 6, slotguard/store/ics_ids.py): the
first tick after the upgrade plans nothing, sends nothing and keeps every fee; a single
event moved afterwards is a reschedule. The feed is served over HTTP by the contract suite's
harness (tests/contract/harness_ics.py) to the real adapter and engine; both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import integration.ics_source as ics_source
from slotguard.store.ledger import SCHEMA_VERSION
from slotguard.store.schema import ICS_SINGLE_IDS
from tests.contract.harness import Booking
from tests.contract.harness_ics import open_harness
from tests.contract.practice import FEE, Practice

pytestmark = pytest.mark.timeout(120)


def _old_id(uid: str, start: datetime) -> str:
    return f"{uid}_{start.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"


def _state(practice: Practice) -> dict:
    return {
        "actions": {action.id: (action.kind.value, action.state.value, action.event_id) for action in practice.ledger.actions()},
        "fees": sorted((fee.id, fee.amount.minor if fee.amount else 0, fee.state.value) for fee in practice.fees()),
    }


@pytest.fixture
def harness(tmp_path):
    opened = open_harness(tmp_path)
    try:
        yield opened
    finally:
        opened.close()


def test_an_old_ledger_upgraded_reads_the_same_calendar_without_a_cancellation_an_email_or_a_lost_fee(harness, tmp_path, monkeypatch):
    with monkeypatch.context() as older_code:
        older_code.setattr(ics_source, "single_uids", lambda calendar: set())  # every event UID_START, as before
        practice = Practice(harness, tmp_path)
        now = practice.now
        ana_start, di_start, cy_start = now + timedelta(hours=30), now + timedelta(hours=1), now + timedelta(days=3)
        ana = practice.book("ana@example.com", ana_start)
        di = practice.book("di@example.com", di_start)
        cy = practice.book("cy@example.com", cy_start)
        series_start = now + timedelta(days=2)
        series = harness.create_series(Booking("Weekly coaching", "bo@example.com", "Bo", series_start, series_start + timedelta(minutes=60)),
                                       4, moved=(1, series_start + timedelta(weeks=1, hours=2)), cancelled=2)
        assert practice.tick().problems == []
        harness.mark(di, "no_show")
        cy_moved = cy_start + timedelta(hours=2)
        harness.move(cy, cy_moved, cy_moved + timedelta(minutes=60))
        assert practice.tick(now + timedelta(hours=3)).problems == []
        assert practice.tick(now + timedelta(hours=7)).problems == []  # ana's 24 h reminder falls due
        old = practice.appointments()
        # The older code's ledger: single events by UID_START, a moved one cancelled and booked again.
        assert {_old_id(ana, ana_start), _old_id(di, di_start), _old_id(cy, cy_start), _old_id(cy, cy_moved)} <= set(old)
        assert old[_old_id(cy, cy_start)].cancellation == "practitioner"
        assert [fee[1] for fee in _state(practice)["fees"]] == [FEE], "di's no-show fee"
        reminders = [action for action in practice.ledger.actions(event_id=_old_id(ana, ana_start)) if action.template == "reminder"]
        assert len(reminders) == 1, "ana's 24 h reminder was planned before the upgrade"
        before, sent = _state(practice), set(practice.mailer.sent)
        with practice.ledger.transaction():
            practice.ledger.set_meta("schema_version", str(ICS_SINGLE_IDS - 1))  # as the older code left it
        practice.ledger.close()

    upgraded = Practice(harness, tmp_path)  # the same ledger, read by today's code
    assert upgraded.ledger.meta("schema_version") == str(SCHEMA_VERSION), "an older Slotguard now refuses it"
    harness.events[di].modified += timedelta(minutes=1)  # the feed is exported again: a new LAST-MODIFIED, nothing else
    harness._write()
    report = upgraded.tick(now + timedelta(hours=7, minutes=5))

    assert report.problems == [] and report.events_seen > 0, "the feed is read whole"
    assert sum(report.happenings.values()) == 0 and sum(report.planned.values()) == 0, (report.happenings, report.planned)
    assert set(upgraded.mailer.sent) <= sent, "no email is sent"
    after = _state(upgraded)
    assert after["fees"] == before["fees"], "every fee is kept, with its id and state"
    assert set(after["actions"]) == set(before["actions"]), "no action id changed, none was added"
    seen = upgraded.appointments()
    assert {ana, di, cy} <= set(seen) and not seen[ana].cancellation and not seen[cy].cancellation
    assert seen[di].outcome == "no_show" and [fee.event_id for fee in upgraded.fees()] == [di]
    assert seen[_old_id(cy, cy_start)].cancellation == "practitioner", "the older code's ended booking stays as it was"
    assert set(series) - {series[2]} <= set(seen), "series instances keep their UID_RECURRENCE-ID ids"
    assert upgraded.happening_kinds(ana) == ["booked"], "ana's happenings follow her appointment"

    later = ana_start + timedelta(days=1)
    harness.move(ana, later, later + timedelta(minutes=60))
    report = upgraded.tick(now + timedelta(hours=8))
    assert report.problems == []
    assert upgraded.happening_kinds(ana) == ["booked", "rescheduled"], "a moved single event is a reschedule"
    moved = upgraded.appointments()[ana]
    assert moved.appointment.start == later and not moved.cancellation
    assert report.happenings.get("cancelled_by_practitioner", 0) == 0
    assert [fee[:2] for fee in _state(upgraded)["fees"]] == [fee[:2] for fee in before["fees"]]
    upgraded.ledger.close()
