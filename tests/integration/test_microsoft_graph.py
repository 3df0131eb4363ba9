"""The Microsoft 365 adapter against the Graph wire fake (tests/support/fake_graph.py), through
the real MSAL library and the real requests session the adapter uses in production."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta

import pytest

from integration.microsoft_auth import CACHE_FILE_NAME, GraphToken, http_session, run_auth
from integration.microsoft_graph import PROPERTY_ID, open_calendars
from slotguard.domain.interfaces import AdapterError, ReauthorizationNeeded, SyncTokenExpired
from slotguard.domain.model import Mark
from slotguard.intake.normalize import ForeignEvent, normalize
from tests.support.fake_graph import FakeGraph, booking, graph_time
from tests.support.microsoft_practice import microsoft_settings, sign_in

pytestmark = pytest.mark.timeout(120)

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def fake(tmp_path):
    server = FakeGraph(tmp_path, interval=0).start()
    yield server
    server.stop()


@pytest.fixture
def practice(fake, tmp_path):
    def make(**sections):
        settings = microsoft_settings(fake, tmp_path / "var", **sections)
        return settings
    settings = make()
    sign_in(settings)
    return make


def pair(settings, **options):
    waits: list[float] = []
    [(source, writer)] = open_calendars(settings, sleep=waits.append, page_size=options.pop("page_size", 200), **options)
    return source, writer, waits


def read_all(source, token=None):
    pages = list(source.pages(token, NOW))
    return [event for page in pages for event in page.events], pages


# --- sign-in ---------------------------------------------------------------------------------


def test_device_code_sign_in_keeps_a_0600_cache_and_asks_for_the_documented_scopes(fake, tmp_path):
    settings = microsoft_settings(fake, tmp_path / "var")
    fake.pending_polls = 2  # the practitioner takes two polls to enter the code
    printed: list[str] = []
    assert run_auth(settings, out=printed.append) == 0
    assert "enter the code" in printed[0] and fake.base + "/devicelogin" in printed[0]
    assert {"Calendars.ReadWrite", "offline_access"} <= set(fake.device_scopes)
    cache = tmp_path / "var" / CACHE_FILE_NAME
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cache.parent).st_mode) == 0o700
    assert "refresh_token" not in " ".join(printed).lower() and "RefreshToken" in cache.read_text()
    assert fake.count("POST", "/token") == 3  # two pending polls, then the tokens


def test_a_declined_sign_in_saves_nothing(fake, tmp_path):
    settings = microsoft_settings(fake, tmp_path / "var")
    fake.denied = True
    assert run_auth(settings, out=lambda line: None) == 1
    assert not (tmp_path / "var" / CACHE_FILE_NAME).exists()


def test_a_later_run_refreshes_silently_and_saves_the_new_tokens_0600(fake, tmp_path):
    fake.token_lifetime = 60  # inside MSAL's five-minute margin: every new run refreshes
    settings = microsoft_settings(fake, tmp_path / "var")
    sign_in(settings)
    cache = tmp_path / "var" / CACHE_FILE_NAME
    before = cache.read_text()
    os.chmod(cache, 0o644)  # loosened by hand: tightened again on load
    signed_in = fake.count("POST", "/token")
    token = GraphToken(settings, http_session(settings))
    assert token.access_token()
    assert fake.count("POST", "/token") == signed_in + 1  # one refresh_token grant
    assert cache.read_text() != before and stat.S_IMODE(os.stat(cache).st_mode) == 0o600
    source, _, _ = pair(settings)
    read_all(source)  # the refreshed token is accepted by Graph


def test_a_revoked_sign_in_asks_for_the_auth_command(fake, practice):
    settings = practice()
    fake.revoke_refresh_tokens()
    fake.expire_access_tokens()
    source, _, _ = pair(settings)
    with pytest.raises(ReauthorizationNeeded, match="auth microsoft"):
        read_all(source)


def test_without_a_cache_the_source_says_to_connect(fake, tmp_path):
    settings = microsoft_settings(fake, tmp_path / "elsewhere")
    source, _, _ = pair(settings)
    with pytest.raises(ReauthorizationNeeded, match="not connected yet"):
        read_all(source)


def test_a_401_refreshes_the_token_once_and_goes_on(fake, practice):
    settings = practice()
    fake.put_event(booking("a", NOW + timedelta(hours=2), "ana@example.com", "Ana"))
    source, _, _ = pair(settings)
    fake.expire_access_tokens()  # Graph stops accepting the cached access token
    events, _ = read_all(source)
    assert [event["id"] for event in events] == ["a"]
    assert fake.count("GET", "/calendarView/delta") == 2 and fake.count("POST", "/token") == 3  # poll, grant, refresh


# --- reading ---------------------------------------------------------------------------------


def test_events_arrive_in_the_shape_normalize_reads_with_marks_by_category_tag_and_decline(fake, practice):
    settings = practice()
    past = NOW - timedelta(hours=3)
    fake.put_event(booking("cat", past, "ana@example.com", "Ana", categories=["no-show", "Blue category"]))
    fake.put_event(booking("tag", past, "bo@example.com", "Bo", body="came late #waive"))
    fake.put_event(booking("declined", NOW + timedelta(days=1), "cy@example.com", "Cy", response="declined"))
    fake.put_event(booking("plain", NOW + timedelta(days=2), "di@example.com", "Di"))
    source, _, _ = pair(settings)
    events, _ = read_all(source)
    appointments = {event["id"]: normalize(event, source.calendar_id, settings, NOW).appointment for event in events}
    assert appointments["cat"].marks == {Mark.NO_SHOW.value}
    assert appointments["tag"].marks == {Mark.WAIVE.value}
    assert appointments["declined"].client_declined and not appointments["plain"].client_declined
    assert appointments["plain"].marks == frozenset()
    assert appointments["cat"].client.email == "ana@example.com" and appointments["cat"].timezone == "Europe/Berlin"
    assert appointments["plain"].start == (NOW + timedelta(days=2)).replace(microsecond=0)
    assert all('outlook.timezone="UTC"' in request.headers.get("Prefer", "") for request in fake.requests if "delta" in request.path)


def test_an_event_someone_else_organised_is_never_an_appointment(fake, practice):
    settings = practice()
    fake.put_event(booking("theirs", NOW + timedelta(days=1), "bo@example.com", "Bo", organizer="ana@example.com", categories=["No-show"]))
    source, _, _ = pair(settings)
    [event], _ = read_all(source)
    with pytest.raises(ForeignEvent, match="ana@example.com"):
        normalize(event, source.calendar_id, settings, NOW)


def test_delta_pages_follow_next_links_and_only_the_last_carries_the_delta_link(fake, practice):
    settings = practice()
    for number in range(25):
        fake.put_event(booking(f"e{number:02}", NOW + timedelta(hours=number), f"c{number}@example.com", f"C{number}"))
    source, _, _ = pair(settings, page_size=10)
    events, pages = read_all(source)
    assert [len(page.events) for page in pages] == [10, 10, 5]
    assert [page.last for page in pages] == [False, False, True] and all(page.full for page in pages)
    assert [page.next_sync_token is not None for page in pages] == [False, False, True]
    assert len({event["id"] for event in events}) == 25
    assert all("maxpagesize=10" in request.headers["Prefer"] for request in fake.requests if "delta" in request.path)


def test_an_idle_calendar_costs_one_request_and_changes_come_incrementally(fake, practice):
    settings = practice()
    fake.put_event(booking("moved", NOW + timedelta(days=1), "ana@example.com", "Ana"))
    fake.put_event(booking("gone", NOW + timedelta(days=2), "bo@example.com", "Bo"))
    fake.put_event(booking("still", NOW + timedelta(days=3), "cy@example.com", "Cy"))
    source, _, _ = pair(settings)
    _, pages = read_all(source)
    before = len(fake.requests)
    events, idle = read_all(source, pages[-1].next_sync_token)
    assert events == [] and len(fake.requests) - before == 1 and not idle[-1].full
    fake.update_event("moved", start=graph_time(NOW + timedelta(days=1, hours=2)), end=graph_time(NOW + timedelta(days=1, hours=3)))
    fake.delete_event("gone")
    changes, _ = read_all(source, idle[-1].next_sync_token)
    by_id = {event["id"]: event for event in changes}
    assert set(by_id) == {"moved", "gone"}
    assert by_id["gone"] == {"id": "gone", "status": "cancelled"}
    assert by_id["moved"]["start"]["dateTime"].startswith((NOW + timedelta(days=1, hours=2)).strftime("%Y-%m-%dT%H:%M:%S"))


def test_an_expired_delta_link_raises_sync_token_expired_and_a_full_round_recovers(fake, practice):
    settings = practice()
    fake.put_event(booking("a", NOW + timedelta(days=1), "ana@example.com", "Ana"))
    source, _, _ = pair(settings)
    _, pages = read_all(source)
    fake.expire_delta_tokens()
    with pytest.raises(SyncTokenExpired):
        read_all(source, pages[-1].next_sync_token)
    events, again = read_all(source)
    assert [event["id"] for event in events] == ["a"] and again[-1].full


def test_a_delta_link_outside_the_configured_endpoint_is_never_followed(fake, practice):
    settings = practice()
    source, _, _ = pair(settings)
    with pytest.raises(SyncTokenExpired):
        read_all(source, "https://attacker.example/v1.0/me/calendarView/delta?$deltatoken=x")
    assert fake.count("GET", "delta") == 0


def test_throttling_waits_as_long_as_retry_after_says(fake, practice):
    settings = practice()
    fake.put_event(booking("a", NOW + timedelta(days=1), "ana@example.com", "Ana"))
    fake.fail("GET", "/calendarView/delta", 429, retry_after=3)
    fake.fail("GET", "/calendarView/delta", 503, retry_after=1)
    source, _, waits = pair(settings)
    events, _ = read_all(source)
    assert [event["id"] for event in events] == ["a"]
    assert len(waits) == 2 and waits[0] >= 3 and waits[1] >= 1


def test_throttling_past_the_budget_is_a_retryable_error_carrying_retry_after(fake, practice):
    settings = practice()
    fake.fail("GET", "/calendarView/delta", 429, retry_after=120, times=5)
    source, _, _ = pair(settings, retry_budget=10)
    with pytest.raises(AdapterError) as raised:
        read_all(source)
    assert raised.value.retryable and raised.value.retry_after == 120 and "429" in str(raised.value)


def test_recurring_occurrences_and_exceptions_arrive_as_instances_and_the_master_does_not(fake, practice):
    settings = practice()
    first = NOW + timedelta(days=1)
    fake.put_event(booking("series", first, "ana@example.com", "Ana", type="seriesMaster"))
    fake.put_event(booking("occ1", first, "ana@example.com", "Ana", type="occurrence", seriesMasterId="series",
                           originalStart=first.strftime("%Y-%m-%dT%H:%M:%SZ")))
    moved = first + timedelta(days=7, hours=1)
    fake.put_event(booking("exc2", moved, "ana@example.com", "Ana", type="exception", seriesMasterId="series",
                           originalStart=(first + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")))
    fake.put_event(booking("occ3", first + timedelta(days=14), "ana@example.com", "Ana", type="occurrence", seriesMasterId="series",
                           isCancelled=True))
    source, _, _ = pair(settings)
    events, _ = read_all(source)
    by_id = {event["id"]: normalize(event, source.calendar_id, settings, NOW).appointment for event in events}
    assert set(by_id) == {"occ1", "exc2", "occ3"}
    assert by_id["exc2"].series_id == "series" and by_id["exc2"].original_start == first + timedelta(days=7)
    assert by_id["occ3"].status == "cancelled" and by_id["occ1"].status == "confirmed"


def test_a_calendar_named_in_the_config_is_found_by_name(fake, tmp_path):
    fake.calendars["AAMkClinic"] = "Clinic"
    settings = microsoft_settings(fake, tmp_path / "var", calendar_name="clinic")
    sign_in(settings)
    fake.put_event(booking("home", NOW + timedelta(days=1), "ana@example.com", "Ana"))
    fake.put_event(booking("work", NOW + timedelta(days=1), "bo@example.com", "Bo"), calendar="AAMkClinic")
    source, _, _ = pair(settings)
    events, pages = read_all(source)
    assert [event["id"] for event in events] == ["work"] and source.calendar_id == "clinic"
    assert "/me/calendars/AAMkClinic/calendarView/delta" in pages[-1].next_sync_token
    missing = microsoft_settings(fake, tmp_path / "var", calendar_name="Nope")
    with pytest.raises(AdapterError, match="no calendar named 'Nope'.*Clinic"):
        read_all(pair(missing)[0])


# --- writing ---------------------------------------------------------------------------------


def appointment(source, settings, event_id):
    events, _ = read_all(source)
    [event] = [event for event in events if event["id"] == event_id]
    return normalize(event, source.calendar_id, settings, NOW).appointment


@pytest.mark.parametrize("write_note", ["no_attendees", "always"])
def test_write_back_on_a_meeting_changes_only_the_extended_property(fake, practice, write_note):
    settings = practice(calendar={"write_note": write_note})  # "always" too: Outlook would mail every attendee
    fake.put_event(booking("a", NOW - timedelta(hours=3), "ana@example.com", "Ana", body="Notes"))
    source, writer, _ = pair(settings)
    before = fake.event("a")
    writer.write_status(appointment(source, settings, "a"), {"state": "pending", "fee": "90000 NOK"}, "no-show fee pending")
    assert fake.patches == [{"singleValueExtendedProperties": [{"id": PROPERTY_ID, "value": fake.property_value("a", PROPERTY_ID)}]}]
    assert json.loads(fake.property_value("a", PROPERTY_ID)) == {"state": {"fee": "90000 NOK", "state": "pending"}, "note": ""}
    after = fake.event("a")
    assert {key: value for key, value in after.items() if key not in ("singleValueExtendedProperties", "changeKey", "lastModifiedDateTime", "_seq")} == \
        {key: value for key, value in before.items() if key not in ("singleValueExtendedProperties", "changeKey", "lastModifiedDateTime", "_seq")}
    writer.write_status(appointment(source, settings, "a"), {"state": "pending", "fee": "90000 NOK"}, "no-show fee pending")
    assert len(fake.patches) == 1  # the same status again: no PATCH


def test_write_back_puts_one_line_in_the_body_of_an_event_no_one_is_invited_to(fake, practice):
    settings = practice()
    fake.put_event(booking("solo", NOW - timedelta(hours=3), "", "", subject="Ana Silva #noshow", body="Notes",
                           **{"attendees": []}))
    fake.update_event("solo", body={"contentType": "html", "content": "<html><body><p>Notes</p><p>email: ana@example.com</p></body></html>"})
    source, writer, _ = pair(settings)
    target = appointment(source, settings, "solo")
    writer.write_status(target, {"state": "pending"}, "no-show fee pending")
    writer.write_status(target, {"state": "charged"}, "no-show fee charged")
    content = fake.event("solo")["body"]["content"]
    assert content == "<html><body><p>Notes</p><p>email: ana@example.com</p><div>Slotguard: no-show fee charged</div></body></html>"
    assert json.loads(fake.property_value("solo", PROPERTY_ID))["note"] == "Slotguard: no-show fee charged"
    assert all(set(patch) <= {"body", "singleValueExtendedProperties"} for patch in fake.patches)
    events, _ = read_all(source)
    again = normalize(events[0], source.calendar_id, settings, NOW).appointment
    assert again.marks == {Mark.NO_SHOW.value}  # our own line is not read as the practitioner's


def test_an_edit_landing_between_read_and_write_is_kept(fake, practice):
    settings = practice()
    fake.put_event(booking("a", NOW - timedelta(hours=3), "ana@example.com", "Ana"))
    source, writer, _ = pair(settings)
    target = appointment(source, settings, "a")
    fake.before_next_patch("a", lambda graph: graph.update_event("a", subject="Massage - Ana #waive"))
    writer.write_status(target, {"state": "pending"}, "fee pending")
    assert fake.event("a")["subject"] == "Massage - Ana #waive"
    assert json.loads(fake.property_value("a", PROPERTY_ID))["state"] == {"state": "pending"}
    assert [request.status for request in fake.requests if request.method == "PATCH"] == [412, 200]


def test_a_deleted_event_is_not_written_to(fake, practice):
    settings = practice()
    fake.put_event(booking("a", NOW - timedelta(hours=3), "ana@example.com", "Ana"))
    source, writer, _ = pair(settings)
    target = appointment(source, settings, "a")
    fake.delete_event("a")
    writer.write_status(target, {"state": "pending"}, "fee pending")
    assert fake.count("PATCH") == 0


def test_write_note_never_keeps_the_body(fake, practice):
    settings = practice(calendar={"write_note": "never"})
    fake.put_event(booking("solo", NOW - timedelta(hours=3), "", "", subject="Ana #noshow", body="Notes", attendees=[]))
    fake.update_event("solo", body={"contentType": "text", "content": "email: ana@example.com"})
    source, writer, _ = pair(settings)
    writer.write_status(appointment(source, settings, "solo"), {"state": "pending"}, "fee pending")
    assert fake.event("solo")["body"]["content"] == "email: ana@example.com"
    assert [set(patch) for patch in fake.patches] == [{"singleValueExtendedProperties"}]


def test_an_event_moved_out_of_the_window_is_seen_moved_not_cancelled(fake, practice):
    settings = practice()
    fake.put_event(booking("far", NOW + timedelta(days=1), "ana@example.com", "Ana"))
    source, _, _ = pair(settings)
    _, pages = read_all(source)
    later = NOW + timedelta(days=400)  # beyond calendar.window_future
    fake.update_event("far", start=graph_time(later), end=graph_time(later + timedelta(hours=1)))
    fake.removed_from_window("far")  # Graph's delta row for it: @removed, as for a deletion
    [event], _ = read_all(source, pages[-1].next_sync_token)
    assert event["status"] == "confirmed" and event["start"]["dateTime"].startswith(later.strftime("%Y-%m-%d"))


def test_no_token_reaches_the_logs(fake, practice, caplog):
    settings = practice()
    fake.put_event(booking("a", NOW - timedelta(hours=3), "ana@example.com", "Ana"))
    fake.fail("GET", "/calendarView/delta", 429, retry_after=0)
    caplog.set_level("DEBUG")
    source, writer, _ = pair(settings)
    fake.expire_access_tokens()  # a 401, then a refresh
    writer.write_status(appointment(source, settings, "a"), {"state": "pending"}, "fee pending")
    secrets_issued = [token for token in fake.state.access] + list(fake.state.refresh)
    assert secrets_issued and caplog.text
    assert not any(token in caplog.text for token in secrets_issued)
