"""Ids no VEVENT can take from another appointment, through the real .ics adapter and engine
(the feed served over HTTP by tests/contract/harness_ics.py; both engines):

- a single event whose UID is "<a series' UID>_<one of its instances>" (anyone invited to the
  series knows its UID, and a client's own invitation comes with the UID the client chose)
  is named UID_START, never by its UID alone, so it never becomes that instance;
- a second VEVENT carrying an appointment's UID (no series) is a problem, and the
  appointment stays as it was: not renamed, not cancelled, not confirmed again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.contract.harness import Booking
from tests.contract.harness_ics import _Event, open_harness
from tests.contract.practice import Practice

pytestmark = pytest.mark.timeout(120)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _recipients(practice: Practice, sent_before: set[str]) -> list[str]:
    return [str(message["To"]) for action_id, message in practice.mailer.sent.items() if action_id not in sent_before]


@pytest.fixture
def harness(tmp_path):
    opened = open_harness(tmp_path)
    try:
        yield opened
    finally:
        opened.close()


def _state(practice: Practice) -> dict:
    return {
        "appointments": {event_id: (tracked.appointment.client.email, tracked.appointment.start, tracked.cancellation)
                         for event_id, tracked in practice.appointments().items()},
        "actions": sorted((action.id, action.kind.value, action.state.value, action.event_id) for action in practice.ledger.actions()),
    }


@pytest.mark.parametrize("all_day", [False, True], ids=["timed", "all-day-shape"])
def test_a_uid_crafted_as_a_series_instance_id_never_takes_that_appointment(harness, tmp_path, all_day):
    practice = Practice(harness, tmp_path)
    now = practice.now
    series_start = (now + timedelta(days=2)).replace(minute=0)
    bo = harness.create_series(Booking("Weekly coaching", "bo@example.com", "Bo", series_start, series_start + timedelta(minutes=60)),
                               4, moved=(1, series_start + timedelta(weeks=1, hours=2)), cancelled=2)
    assert practice.tick().problems == []
    target = bo[3]
    assert target in practice.appointments()
    before, sent = _state(practice), set(practice.mailer.sent)

    series_uid, _, instance = target.partition("_")
    crafted = f"{series_uid}_{instance[:8]}" if all_day else target
    start = series_start + timedelta(weeks=3, hours=1) if all_day else series_start + timedelta(weeks=3)
    harness.events["mallory"] = _Event(crafted, Booking("Massage", "mallory@example.com", "Mallory", start, start + timedelta(minutes=60)),
                                       start, start + timedelta(minutes=60), "Massage")
    harness._write()
    report = practice.tick(now + timedelta(minutes=5))

    after = _state(practice)
    assert after["appointments"][target] == before["appointments"][target], "Bo's appointment is Bo's still"
    assert {key: value for key, value in after["appointments"].items() if key in before["appointments"]} == before["appointments"]
    assert [action for action in after["actions"] if action[3] == target] == [a for a in before["actions"] if a[3] == target]
    mallory = f"{crafted}_{_stamp(start)}"
    assert after["appointments"].get(mallory, ("",))[0] == "mallory@example.com", ("Mallory's own appointment, under its own id", after)
    assert "bo@example.com" not in _recipients(practice, sent), "Bo is told nothing"
    assert report.problems == []


def test_a_second_vevent_with_an_appointments_uid_leaves_the_appointment_as_it_was(harness, tmp_path):
    practice = Practice(harness, tmp_path)
    now = practice.now
    ana_start = (now + timedelta(days=3)).replace(minute=0)
    ana = practice.book("ana@example.com", ana_start)
    assert practice.tick().problems == []
    assert ana in practice.appointments()
    before, sent = _state(practice), set(practice.mailer.sent)

    other = ana_start + timedelta(days=1)
    harness.events["copy"] = _Event(ana, Booking("Massage", "mallory@example.com", "Mallory", other, other + timedelta(minutes=60)),
                                    other, other + timedelta(minutes=60), "Massage")
    harness._write()
    report = practice.tick(now + timedelta(minutes=5))

    assert _state(practice) == before, "nothing renamed, cancelled, booked or planned"
    assert _recipients(practice, sent) == [], "no email"
    assert any(ana in problem and "share this UID" in problem for problem in report.problems), report.problems

    del harness.events["copy"]  # the duplicate goes: the appointment reads again under its id
    harness._write()
    report = practice.tick(now + timedelta(minutes=10))
    assert report.problems == []
    assert _state(practice) == before
    assert _recipients(practice, sent) == []
