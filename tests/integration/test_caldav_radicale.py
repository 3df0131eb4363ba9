"""The CalDAV adapter against a real Radicale on a loopback port (tests/support/radicale_server.py),
with a fault proxy in front where a test needs to see or break the traffic."""

from __future__ import annotations

import os

import pytest

from integration.caldav_http import DavClient
from slotguard.domain.interfaces import AdapterError, ReauthorizationNeeded, SyncTokenExpired
from slotguard.intake.normalize import normalize
from tests.integration.caldav_helpers import (
    NOW,
    PASSWORD_ENV,
    at,
    caldav_settings,
    new_calendar,
    opened,
    parsed_without_ours,
    stamp,
    sync,
)
from tests.support.dav_proxy import DavProxy, Fault
from tests.support.radicale_server import event, radicale  # noqa: F401 - the module-scoped fixture

pytestmark = pytest.mark.timeout(120)
STATE = {"slotguard_fee": "act_fee1", "slotguard_state": "pending_review", "slotguard_amount": "90000", "slotguard_currency": "NOK"}
NOTE = "Slotguard: no-show fee 900.00 NOK pending review, charged Tue 08 Dec 10:00 unless you add #waive"


@pytest.fixture(autouse=True)
def password(radicale, monkeypatch):  # noqa: F811
    monkeypatch.setenv(PASSWORD_ENV, radicale.password)


@pytest.fixture
def proxy(radicale):  # noqa: F811
    running = DavProxy(radicale.url).start()
    try:
        yield running
    finally:
        running.stop()


def by_id(events: list[dict]) -> dict[str, dict]:
    return {event["id"]: event for event in events}


def test_discovery_by_display_name_sends_credentials_first_and_an_idle_tick_costs_one_request(radicale, proxy, tmp_path):  # noqa: F811
    path, name = new_calendar(radicale)
    radicale.put(path, "a1", event("a1", stamp(at(1)), stamp(at(1, 1)), "Massage", description="email: ana@example.com"))
    settings = caldav_settings(tmp_path, proxy.url, name)
    source, _, client = opened(settings)
    events, token, full = sync(source, None)
    assert full and [e["id"] for e in events] == ["a1"]
    assert all(seen.authorized for seen in proxy.seen), "every request, the first included, carries the credentials"
    assert [seen.status for seen in proxy.seen].count(401) == 0
    assert client.requests == len(proxy.seen) == 5  # principal, home, calendars, sync token, listing
    before = len(proxy.seen)
    events, again, full = sync(source, token)
    assert (events, again, full) == ([], token, False)
    assert len(proxy.seen) - before == 1
    # a restart (a new adapter on the same data folder) discovers nothing again
    source, _, _ = opened(settings)
    before = len(proxy.seen)
    assert sync(source, token)[0] == []
    assert len(proxy.seen) - before == 1


def test_changes_and_deletions_arrive_incrementally(radicale, tmp_path):  # noqa: F811
    path, name = new_calendar(radicale)
    radicale.put(path, "a1", event("a1", stamp(at(1)), stamp(at(1, 1)), description="email: ana@example.com"))
    radicale.put(path, "a2", event("a2", stamp(at(2)), stamp(at(2, 1)), description="email: bo@example.com"))
    source, _, client = opened(caldav_settings(tmp_path, radicale.url, name))
    _, token, _ = sync(source, None)
    radicale.put(path, "a1", event("a1", stamp(at(1, 3)), stamp(at(1, 4)), description="email: ana@example.com"))
    radicale.delete(path, "a2")
    before = client.requests
    events, token2, full = sync(source, token)
    assert client.requests - before == 1, "the changed object's data comes in the sync-collection answer"
    found = by_id(events)
    assert not full and token2 != token
    assert found["a1"]["start"]["dateTime"].startswith("2026-12-08T11:00")  # moved, same id
    assert found["a2"] == {"id": "a2", "status": "cancelled"}


def test_marks_by_tag_category_colour_and_declined_attendee(radicale, tmp_path):  # noqa: F811
    path, name = new_calendar(radicale)
    radicale.put(path, "tag", event("tag", stamp(at(1)), stamp(at(1, 1)), "Massage #noshow", description="email: ana@example.com"))
    radicale.put(path, "cat", event("cat", stamp(at(2)), stamp(at(2, 1)), categories="Work,no-show", description="email: bo@example.com"))
    radicale.put(path, "late", event("late", stamp(at(3)), stamp(at(3, 1)), categories="Late cancellation", description="email: cy@example.com"))
    radicale.put(path, "waive", event("waive", stamp(at(3, 2)), stamp(at(3, 3)), categories="Waive fee", description="email: cy@example.com"))
    radicale.put(path, "col", event("col", stamp(at(4)), stamp(at(4, 1)), extra="COLOR:tomato", description="email: di@example.com"))
    radicale.put(path, "dec", event("dec", stamp(at(5)), stamp(at(5, 1)), attendees=("PARTSTAT=DECLINED;CN=Ed:mailto:ed@example.com",)))
    radicale.put(path, "none", event("none", stamp(at(6)), stamp(at(6, 1)), categories="Work", description="email: fi@example.com"))
    settings = caldav_settings(tmp_path, radicale.url, name)
    source, _, _ = opened(settings)
    events, _, _ = sync(source, None)
    read = {}
    for found in events:
        appointment = normalize(found, source.calendar_id, settings, NOW).appointment
        assert appointment is not None, found
        read[found["id"].partition("_")[0]] = appointment
    assert read["tag"].marks == {"no_show"}
    assert read["cat"].marks == {"no_show"}, "CATEGORIES are compared without regard to case"
    assert read["late"].marks == {"late_cancel"}
    assert read["waive"].marks == {"waive"}
    assert read["col"].marks == {"no_show"}  # RFC 7986 COLOR tomato is the no-show colour
    assert read["dec"].client_declined and read["dec"].client.email == "ed@example.com"
    assert read["none"].marks == frozenset()


def test_a_category_configured_for_a_mark_is_read(radicale, tmp_path):  # noqa: F811
    path, name = new_calendar(radicale)
    radicale.put(path, "x", event("x", stamp(at(1)), stamp(at(1, 1)), categories="Udeblevet", description="email: ana@example.com"))
    settings = caldav_settings(tmp_path, radicale.url, name, caldav={"categories": {"no_show": ["Udeblevet"]}})
    source, _, _ = opened(settings)
    (found,), _, _ = sync(source, None)
    assert normalize(found, source.calendar_id, settings, NOW).appointment.marks == {"no_show"}


def test_an_expired_sync_token_means_a_full_sync(radicale, tmp_path):  # noqa: F811
    path, name = new_calendar(radicale)
    radicale.put(path, "a1", event("a1", stamp(at(1)), stamp(at(1, 1)), description="email: ana@example.com"))
    source, _, _ = opened(caldav_settings(tmp_path, radicale.url, name))
    _, token, _ = sync(source, None)
    radicale.put(path, "a2", event("a2", stamp(at(2)), stamp(at(2, 1)), description="email: bo@example.com"))
    sync(source, token)  # a new token; the old one stays known until expired
    assert radicale.expire_sync_tokens() >= 1
    radicale.put(path, "a3", event("a3", stamp(at(3)), stamp(at(3, 1)), description="email: cy@example.com"))
    with pytest.raises(SyncTokenExpired):
        sync(source, source.account.state.token)
    events, token3, full = sync(source, None)
    assert full and {e["id"] for e in events} == {"a1", "a2", "a3"}
    assert sync(source, token3)[0] == []


def test_a_state_file_behind_its_token_asks_for_a_full_sync(radicale, tmp_path):  # noqa: F811
    path, name = new_calendar(radicale)
    radicale.put(path, "a1", event("a1", stamp(at(1)), stamp(at(1, 1)), description="email: ana@example.com"))
    settings = caldav_settings(tmp_path, radicale.url, name)
    source, _, _ = opened(settings)
    _, token, _ = sync(source, None)
    source.account.path.unlink()  # the data folder lost the file (a restore from an old backup)
    source, _, _ = opened(settings)
    with pytest.raises(SyncTokenExpired):
        sync(source, token)


def test_recurring_series_with_an_exception_and_cancelled_instances(radicale, tmp_path):  # noqa: F811
    path, name = new_calendar(radicale)
    first = at(1)
    series = event("wk", stamp(first), stamp(at(1, 1)), "Weekly", description="email: ana@example.com",
                   extra=f"RRULE:FREQ=WEEKLY;COUNT=5\r\nEXDATE:{stamp(at(8))}")
    moved = (f"BEGIN:VEVENT\r\nUID:wk\r\nDTSTAMP:20261201T000000Z\r\nRECURRENCE-ID:{stamp(at(15))}\r\nDTSTART:{stamp(at(15, 3))}\r\n"
             f"DTEND:{stamp(at(15, 4))}\r\nSUMMARY:Weekly (moved)\r\nDESCRIPTION:email: ana@example.com\r\nEND:VEVENT\r\n")
    cancelled = (f"BEGIN:VEVENT\r\nUID:wk\r\nDTSTAMP:20261201T000000Z\r\nRECURRENCE-ID:{stamp(at(22))}\r\nDTSTART:{stamp(at(22))}\r\n"
                 f"DTEND:{stamp(at(22, 1))}\r\nSTATUS:CANCELLED\r\nSUMMARY:Weekly\r\nEND:VEVENT\r\n")
    radicale.put(path, "wk", series.replace("END:VCALENDAR", moved + cancelled + "END:VCALENDAR"))
    source, _, _ = opened(caldav_settings(tmp_path, radicale.url, name))
    events, token, _ = sync(source, None)
    found = by_id(events)
    ids = [f"wk_{stamp(at(days))}" for days in (1, 8, 15, 22, 29)]
    assert ids[1] not in found, "the EXDATE instance is not there"
    assert found[ids[0]]["status"] == "confirmed" and found[ids[0]]["recurringEventId"] == "wk"
    assert found[ids[2]]["start"]["dateTime"].startswith("2026-12-22T11:00") and found[ids[2]]["summary"] == "Weekly (moved)"
    assert found[ids[3]]["status"] == "cancelled"
    # The practitioner cancels one more instance (an EXDATE added): it arrives cancelled.
    text, etag = radicale.get(path, "wk")
    radicale.put(path, "wk", text.replace(f"EXDATE:{stamp(at(8))}", f"EXDATE:{stamp(at(8))},{stamp(at(29))}"), etag)
    events, _, _ = sync(source, token)
    assert by_id(events)[ids[4]] == {"id": ids[4], "status": "cancelled"}
    assert by_id(events)[ids[0]]["status"] == "confirmed"


def test_write_back_changes_nothing_but_slotguards_own_properties(radicale, tmp_path):  # noqa: F811
    path, name = new_calendar(radicale)
    radicale.put(path, "solo", event("solo", stamp(at(1)), stamp(at(1, 1)), "Massage", description="email: ana@example.com",
                                     extra="LOCATION:Storgata 1\r\nX-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nDESCRIPTION:Soon\r\nEND:VALARM"))
    radicale.put(path, "inv", event("inv", stamp(at(2)), stamp(at(2, 1)), "Massage", attendees=("PARTSTAT=ACCEPTED;CN=Bo:mailto:bo@example.com",),
                                    description="Bring shorts"))
    settings = caldav_settings(tmp_path, radicale.url, name)
    source, writer, _ = opened(settings)
    events, token, _ = sync(source, None)
    appointments = {e["id"].partition("_")[0]: normalize(e, source.calendar_id, settings, NOW).appointment for e in events}
    solo_before, _ = radicale.get(path, "solo")
    inv_before, _ = radicale.get(path, "inv")
    writer.write_status(appointments["solo"], STATE, NOTE)
    writer.write_status(appointments["inv"], STATE, NOTE)
    solo_after, _ = radicale.get(path, "solo")
    inv_after, _ = radicale.get(path, "inv")
    # The event with an attendee: only our properties changed, and only the fee and its state.
    assert parsed_without_ours(inv_after) == parsed_without_ours(inv_before)
    assert "X-SLOTGUARD-FEE:act_fee1" in inv_after and "X-SLOTGUARD-STATE:pending_review" in inv_after
    assert "X-SLOTGUARD-AMOUNT" not in inv_after and "X-SLOTGUARD-NOTE" not in inv_after
    assert "SCHEDULE-AGENT" not in inv_after.upper()
    # The event without one: our properties, and the status line added to its description.
    before, after = parsed_without_ours(solo_before)[0], parsed_without_ours(solo_after)[0]
    assert [p for p in after if p[0] != "DESCRIPTION"] == [p for p in before if p[0] != "DESCRIPTION"]
    assert dict(after)["DESCRIPTION"] == "email: ana@example.com\\nSlotguard: no-show fee 900.00 NOK pending review\\, charged Tue 08 Dec 10:00 unless you add #waive"
    assert "BEGIN:VALARM" in solo_after and "X-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC" in solo_after
    # Read back: the state is the event's private properties, and our line is not read as the practitioner's.
    events, token, _ = sync(source, token)
    found = {e["id"].partition("_")[0]: e for e in events}
    assert found["solo"]["extendedProperties"]["private"]["slotguard_note"] == NOTE
    assert found["inv"]["extendedProperties"]["private"] == {"slotguard_fee": "act_fee1", "slotguard_state": "pending_review"}
    again = normalize(found["solo"], source.calendar_id, settings, NOW).appointment
    assert again.marks == frozenset() and again.fingerprint() == appointments["solo"].fingerprint()
    # Writing the same again sends no PUT; a new state replaces the old line, not adds one.
    client = source.client
    before_count = client.requests
    writer.write_status(appointments["solo"], STATE, NOTE)
    assert client.requests - before_count == 1  # the GET alone
    writer.write_status(appointments["solo"], {**STATE, "slotguard_state": "done"}, "Slotguard: no-show fee 900.00 NOK charged")
    text, _ = radicale.get(path, "solo")
    assert text.count("Slotguard:") == 2  # the line in DESCRIPTION and X-SLOTGUARD-NOTE
    assert "charged Tue" not in text and "X-SLOTGUARD-STATE:done" in text


def test_once_the_client_is_invited_the_next_write_back_takes_out_the_line_and_all_but_fee_and_state(radicale, tmp_path):  # noqa: F811
    path, name = new_calendar(radicale)
    own_text = "Room 2\\, bring shorts\\; gate code 1234\\nemail: ana@example.com"
    radicale.put(path, "late", event("late", stamp(at(1)), stamp(at(1, 1)), "Massage", description=own_text, extra="LOCATION:Storgata 1"))
    original, _ = radicale.get(path, "late")
    settings = caldav_settings(tmp_path, radicale.url, name)
    source, writer, _ = opened(settings)
    (found,), token, _ = sync(source, None)
    appointment = normalize(found, source.calendar_id, settings, NOW).appointment
    writer.write_status(appointment, STATE, NOTE)
    written, etag = radicale.get(path, "late")
    assert "Slotguard:" in written and "X-SLOTGUARD-AMOUNT:90000" in written
    # The practitioner invites the client (their app adds ORGANIZER and ATTENDEE, bumps SEQUENCE).
    invited = written.replace("LOCATION:Storgata 1\r\n", "LOCATION:Storgata 1\r\nSEQUENCE:1\r\nORGANIZER:mailto:lena@example.com\r\n"
                              "ATTENDEE;PARTSTAT=NEEDS-ACTION;CN=Ana:mailto:ana@example.com\r\n", 1)
    assert invited != written
    radicale.put(path, "late", invited, etag)
    before, _ = radicale.get(path, "late")
    sync(source, token)
    writer.write_status(appointment, {**STATE, "slotguard_state": "charged"}, "Slotguard: no-show fee 900.00 NOK charged")
    after, _ = radicale.get(path, "late")
    assert "Slotguard:" not in after, "no status line, no note property"
    assert "X-SLOTGUARD-NOTE" not in after and "X-SLOTGUARD-AMOUNT" not in after and "X-SLOTGUARD-CURRENCY" not in after
    assert "X-SLOTGUARD-FEE:act_fee1\r\n" in after and "X-SLOTGUARD-STATE:charged\r\n" in after
    description_line = next(line for line in after.replace("\r\n ", "").split("\r\n") if line.startswith("DESCRIPTION"))
    assert description_line == f"DESCRIPTION:{own_text}", "the practitioner's text, byte for byte"
    assert description_line in original
    # The PUT changed nothing else: the event as invited, with the description it had before Slotguard wrote.
    expected = [[(key, value) for key, value in properties if key != "DESCRIPTION"] for properties in parsed_without_ours(before)]
    assert [[(key, value) for key, value in properties if key != "DESCRIPTION"] for properties in parsed_without_ours(after)] == expected
    assert dict(parsed_without_ours(after)[0])["DESCRIPTION"] == dict(parsed_without_ours(original)[0])["DESCRIPTION"]
    assert "SCHEDULE-AGENT" not in after.upper()


def test_write_back_on_an_instance_of_a_series_touches_the_master_for_it_alone(radicale, tmp_path):  # noqa: F811
    path, name = new_calendar(radicale)
    radicale.put(path, "wk", event("wk", stamp(at(1)), stamp(at(1, 1)), "Weekly", description="email: ana@example.com", extra="RRULE:FREQ=WEEKLY;COUNT=3"))
    settings = caldav_settings(tmp_path, radicale.url, name)
    source, writer, _ = opened(settings)
    events, token, _ = sync(source, None)
    second = next(e for e in events if e["id"] == f"wk_{stamp(at(8))}")
    before, _ = radicale.get(path, "wk")
    writer.write_status(normalize(second, source.calendar_id, settings, NOW).appointment, STATE, NOTE)
    after, _ = radicale.get(path, "wk")
    assert parsed_without_ours(after) == parsed_without_ours(before), "no exception made, no shared description changed"
    events, _, _ = sync(source, token)
    found = by_id(events)
    assert found[second["id"]]["extendedProperties"]["private"]["slotguard_fee"] == "act_fee1"
    assert "extendedProperties" not in found[f"wk_{stamp(at(1))}"]


def test_a_concurrent_edit_during_write_back_is_read_again_not_overwritten(radicale, proxy, tmp_path):  # noqa: F811
    path, name = new_calendar(radicale)
    radicale.put(path, "a1", event("a1", stamp(at(1)), stamp(at(1, 1)), "Massage", description="email: ana@example.com"))
    settings = caldav_settings(tmp_path, proxy.url, name)
    source, writer, _ = opened(settings)
    (found,), _, _ = sync(source, None)
    appointment = normalize(found, source.calendar_id, settings, NOW).appointment

    def practitioner_edits() -> None:
        text, etag = radicale.get(path, "a1")
        radicale.put(path, "a1", text.replace("SUMMARY:Massage", "SUMMARY:Massage (long)"), etag)

    proxy.faults.append(Fault("before", method="PUT", action=practitioner_edits))
    writer.write_status(appointment, STATE, NOTE)
    text, _ = radicale.get(path, "a1")
    assert "SUMMARY:Massage (long)" in text, "the practitioner's edit is kept"
    assert "X-SLOTGUARD-FEE:act_fee1" in text
    statuses = [(seen.method, seen.status) for seen in proxy.seen if seen.method in ("GET", "PUT")]
    assert statuses == [("GET", 200), ("PUT", 412), ("GET", 200), ("PUT", 204)] or statuses == [("GET", 200), ("PUT", 412), ("GET", 200), ("PUT", 201)]


@pytest.mark.parametrize("fault", [Fault("error", method="REPORT", status=503), Fault("error", method="REPORT", status=500),
                                   Fault("timeout", method="REPORT", delay=4.0)])
def test_server_errors_and_timeouts_are_retryable_faults(radicale, proxy, tmp_path, fault):  # noqa: F811
    path, name = new_calendar(radicale)
    radicale.put(path, "a1", event("a1", stamp(at(1)), stamp(at(1, 1)), description="email: ana@example.com"))
    source, writer, _ = opened(caldav_settings(tmp_path, proxy.url, name))
    _, token, _ = sync(source, None)
    proxy.faults.append(fault)
    with pytest.raises(AdapterError) as raised:
        sync(source, token)
    assert raised.value.retryable and not isinstance(raised.value, SyncTokenExpired)
    assert "will try again" in str(raised.value) and radicale.password not in str(raised.value)
    events, token2, _ = sync(source, token)  # the fault is gone: the same token still works
    assert events == [] and token2 == token


def test_a_server_error_on_the_write_is_retryable(radicale, proxy, tmp_path):  # noqa: F811
    path, name = new_calendar(radicale)
    radicale.put(path, "a1", event("a1", stamp(at(1)), stamp(at(1, 1)), description="email: ana@example.com"))
    settings = caldav_settings(tmp_path, proxy.url, name)
    source, writer, _ = opened(settings)
    (found,), _, _ = sync(source, None)
    proxy.faults.append(Fault("error", method="PUT", status=502))
    with pytest.raises(AdapterError) as raised:
        writer.write_status(normalize(found, source.calendar_id, settings, NOW).appointment, STATE, NOTE)
    assert raised.value.retryable
    assert "X-SLOTGUARD" not in radicale.get(path, "a1")[0]


def test_a_wrong_password_asks_for_new_credentials(radicale, tmp_path, monkeypatch):  # noqa: F811
    _, name = new_calendar(radicale)
    monkeypatch.setenv(PASSWORD_ENV, "not-" + radicale.password)
    source, _, _ = opened(caldav_settings(tmp_path, radicale.url, name))
    with pytest.raises(ReauthorizationNeeded) as raised:
        sync(source, None)
    message = str(raised.value)
    assert "app-specific password" in message and "calendar.caldav.username" in message
    assert os.environ[PASSWORD_ENV] not in message
    # The practitioner puts the right (new) password in the variable: the next tick reads it, no restart.
    monkeypatch.setenv(PASSWORD_ENV, radicale.password)
    events, _, full = sync(source, None)
    assert full and events == []


def test_discovery_falls_back_to_the_servers_well_known_address(radicale, tmp_path):  # noqa: F811
    path, name = new_calendar(radicale)
    radicale.put(path, "a1", event("a1", stamp(at(1)), stamp(at(1, 1)), description="email: ana@example.com"))
    source, _, _ = opened(caldav_settings(tmp_path, radicale.url + "no/such/place/", name))
    events, _, full = sync(source, None)
    assert full and [e["id"] for e in events] == ["a1"]
    assert source.account.state.calendar_url.endswith(path)


def test_a_calendar_given_by_its_address_is_read(radicale, tmp_path):  # noqa: F811
    path, _ = new_calendar(radicale)
    radicale.put(path, "a1", event("a1", stamp(at(1)), stamp(at(1, 1)), description="email: ana@example.com"))
    source, _, client = opened(caldav_settings(tmp_path, radicale.url, path))
    assert [e["id"] for e in sync(source, None)[0]] == ["a1"] and source.calendar_id == radicale.url.rstrip("/") + path


def test_a_calendar_name_that_is_not_there_lists_the_ones_that_are(radicale, tmp_path):  # noqa: F811
    _, name = new_calendar(radicale)
    source, _, _ = opened(caldav_settings(tmp_path, radicale.url, "Holidays"))
    with pytest.raises(AdapterError) as raised:
        sync(source, None)
    assert "no calendar named 'Holidays'" in str(raised.value) and name in str(raised.value)


def test_a_server_without_sync_collection_is_compared_by_etag(radicale, proxy, tmp_path):  # noqa: F811
    path, name = new_calendar(radicale)
    radicale.put(path, "a1", event("a1", stamp(at(1)), stamp(at(1, 1)), description="email: ana@example.com"))
    radicale.put(path, "a2", event("a2", stamp(at(2)), stamp(at(2, 1)), description="email: bo@example.com"))
    proxy.faults.append(Fault("rewrite", method="PROPFIND", times=-1,
                              rewrite=lambda body: body.replace(b"<supported-report><report><sync-collection /></report></supported-report>", b"")))
    source, _, client = opened(caldav_settings(tmp_path, proxy.url, name))
    _, token, full = sync(source, None)
    assert full and token.startswith("etags:") and not source.account.state.sync
    before = client.requests
    assert sync(source, token)[0] == []
    assert client.requests - before == 1
    radicale.put(path, "a1", event("a1", stamp(at(1, 2)), stamp(at(1, 3)), description="email: ana@example.com"))
    radicale.delete(path, "a2")
    events, token2, _ = sync(source, token)
    found = by_id(events)
    assert found["a1"]["start"]["dateTime"].startswith("2026-12-08T10:00")
    assert found["a2"] == {"id": "a2", "status": "cancelled"}
    assert token2 != token and sync(source, token2)[0] == []


def test_the_client_refuses_plain_http_to_another_host():
    with pytest.raises(AdapterError):
        DavClient("http://caldav.example.com/", "lena", "x")


def test_a_restart_remembers_what_each_object_held_so_a_deletion_is_still_seen(radicale, tmp_path):  # noqa: F811
    path, name = new_calendar(radicale)
    radicale.put(path, "a1", event("a1", stamp(at(1)), stamp(at(1, 1)), description="email: ana@example.com"))
    radicale.put(path, "wk", event("wk", stamp(at(2)), stamp(at(2, 1)), description="email: bo@example.com", extra="RRULE:FREQ=WEEKLY;COUNT=2"))
    settings = caldav_settings(tmp_path, radicale.url, name)
    source, _, _ = opened(settings)
    _, token, _ = sync(source, None)
    assert oct(source.account.path.stat().st_mode & 0o777) == "0o600", "the state file is the practitioner's alone"
    radicale.delete(path, "a1")
    radicale.delete(path, "wk")
    source, _, _ = opened(settings)  # a restart, or a deployment's worker building the engine again
    events, _, _ = sync(source, token)
    assert sorted(e["id"] for e in events if e.get("status") == "cancelled") == sorted(["a1", f"wk_{stamp(at(2))}", f"wk_{stamp(at(9))}"])


def test_a_series_past_the_caps_is_reported_and_the_others_are_read(radicale, tmp_path):  # noqa: F811
    path, name = new_calendar(radicale)
    radicale.put(path, "ok", event("ok", stamp(at(1)), stamp(at(1, 1)), description="email: ana@example.com"))
    radicale.put(path, "bomb", event("bomb", stamp(at(1)), stamp(at(1, 1)), "Flood", extra="RRULE:FREQ=MINUTELY"))
    source, _, _ = opened(caldav_settings(tmp_path, radicale.url, name, max_instances_per_series=50))
    events, _, full = sync(source, None)
    found = by_id(events)
    assert "ok" in found and not full, "nothing is taken as deleted while a series is not read"
    assert "calendar.max_instances_per_series" in found["bomb"]["_error"]


def test_an_idle_tick_writes_no_state_file(radicale, tmp_path):  # noqa: F811
    path, name = new_calendar(radicale)
    radicale.put(path, "a1", event("a1", stamp(at(1)), stamp(at(1, 1)), description="email: ana@example.com"))
    source, _, _ = opened(caldav_settings(tmp_path, radicale.url, name))
    _, token, _ = sync(source, None)
    written = source.account.path.stat().st_mtime_ns
    source.account.path.chmod(0o400)  # a write would replace the file (and its mode)
    assert sync(source, token)[0] == []
    assert source.account.path.stat().st_mtime_ns == written and source.account.path.stat().st_mode & 0o777 == 0o400
