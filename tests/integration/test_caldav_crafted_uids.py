"""On a CalDAV calendar (a real Radicale, the engine built from config/example.toml), no
object takes another appointment's id: a single event whose UID is "<a series' UID>_<one of
its instances>" is named UID_START, never that instance. Two events of one UID the server
refuses; an object holding them anyway is a problem and is not read (integration/caldav_events.py)."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

from integration.caldav_events import Converter
from slotguard.config.schema import parse_settings
from slotguard.run.wiring import build_engine
from tests.integration.caldav_helpers import NOW, PASSWORD_ENV, at, caldav_settings, new_calendar, stamp
from tests.support.radicale_server import event, radicale  # noqa: F401 - the module-scoped fixture

pytestmark = pytest.mark.timeout(120)
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.toml"


def _engine(radicale, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv(PASSWORD_ENV, radicale.password)
    path, name = new_calendar(radicale)
    config = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    config["calendar"] = {"source": "caldav", "marks": config["calendar"]["marks"],
                          "caldav": {"url": radicale.url, "username": radicale.user, "password": {"env": PASSWORD_ENV}, "calendar": name}}
    config["storage"] = {"data_dir": str(tmp_path / "var")}
    config["mail"]["outbox_dir"] = str(tmp_path / "outbox")
    return path, build_engine(parse_settings(config), NOW)


def _state(engine) -> dict:
    return {
        "appointments": {tracked.appointment.event_id: (tracked.appointment.client.email, tracked.appointment.start, tracked.cancellation)
                         for tracked in engine.ledger.all_tracked()},
        "actions": sorted((action.id, action.kind.value, action.state.value, action.event_id) for action in engine.ledger.actions()),
    }


def test_a_uid_crafted_as_a_series_instance_id_never_takes_that_appointment(radicale, tmp_path, monkeypatch):  # noqa: F811
    path, engine = _engine(radicale, tmp_path, monkeypatch)
    start = at(1, 2)
    radicale.put(path, "bo-series", event("bo-series", stamp(start), stamp(start + timedelta(hours=1)), "Coaching",
                                          description="email: bo@example.com", extra="RRULE:FREQ=WEEKLY;COUNT=4"))
    assert engine.tick(NOW).problems == []
    target = f"bo-series_{stamp(start + timedelta(weeks=2))}"
    before = _state(engine)
    assert before["appointments"][target][0] == "bo@example.com"

    crafted_start = start + timedelta(weeks=2, hours=3)
    radicale.put(path, "mallory", event(target, stamp(crafted_start), stamp(crafted_start + timedelta(hours=1)), "Massage",
                                        description="email: mallory@example.com"))
    report = engine.tick(NOW + timedelta(minutes=5))

    after = _state(engine)
    assert {key: value for key, value in after["appointments"].items() if key in before["appointments"]} == before["appointments"]
    assert [action for action in after["actions"] if action[3] == target] == [a for a in before["actions"] if a[3] == target]
    assert after["appointments"].get(f"{target}_{stamp(crafted_start)}", ("",))[0] == "mallory@example.com", after
    assert report.problems == []


def test_two_vevents_with_one_uid_are_refused_by_the_server_and_not_read_by_slotguard(radicale, tmp_path, monkeypatch):  # noqa: F811
    path, engine = _engine(radicale, tmp_path, monkeypatch)
    start = at(3, 2)
    single = event("ana-1", stamp(start), stamp(start + timedelta(hours=1)), "Massage", description="email: ana@example.com")
    etag = radicale.put(path, "ana-1", single)
    assert engine.tick(NOW).problems == []
    before = _state(engine)
    other = start + timedelta(days=1)
    copy = event("ana-1", stamp(other), stamp(other + timedelta(hours=1)), "Massage", description="email: mallory@example.com")
    doubled = single.replace("END:VCALENDAR\r\n", copy[copy.index("BEGIN:VEVENT"):])
    # A CalDAV server forbids both (RFC 4791 no-uid-conflict; RFC 5545 one UID, one event).
    with pytest.raises(RuntimeError, match="409"):
        radicale.put(path, "copy", copy)
    with pytest.raises(RuntimeError, match="400"):
        radicale.put(path, "ana-1", doubled, etag)
    # A server that let them through: the object is reported and not read, as in an .ics feed.
    converter = Converter(caldav_settings(tmp_path, radicale.url, "x"), [])
    read, problems = converter.read([(f"{path}ana-1.ics", doubled.encode())], NOW - timedelta(days=30), NOW + timedelta(days=180))
    assert all(href != f"{path}ana-1.ics" or not events for href, events in read.items())
    assert [(uid, "share this UID" in problem) for _, uid, problem in problems] == [("ana-1", True)], problems
    engine.tick(NOW + timedelta(minutes=5))
    assert _state(engine) == before
