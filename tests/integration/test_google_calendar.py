"""The Google Calendar adapter against a local server speaking the Calendar v3 wire format,
driven through the real google-api-python-client and google-auth."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
import urllib.request
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from integration import google_auth
from integration.google_auth import SCOPE_OWNED, SCOPE_READONLY, StoredCredentials, run_auth, save_credentials, token_path
from integration.google_calendar import is_own_write, open_calendars, strip_status_line
from slotguard.domain.interfaces import AdapterError, NullWriteBack, ReauthorizationNeeded, SyncTokenExpired
from slotguard.domain.model import Appointment, Client
from slotguard.domain.money import Money

OSLO = ZoneInfo("Europe/Oslo")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=OSLO)
CLINIC = "clinic@group.calendar.google.com"


def booking(summary: str, start: datetime, minutes: int = 60, **extra) -> dict:
    return {"summary": summary, "start": {"dateTime": start.isoformat(), "timeZone": "Europe/Oslo"},
            "end": {"dateTime": (start + timedelta(minutes=minutes)).isoformat(), "timeZone": "Europe/Oslo"},
            "attendees": [{"email": "kari@example.com", "displayName": "Kari", "responseStatus": "accepted"}], **extra}


def sync(source, token=None, now=NOW):
    """Run one fetch; return (events, pages)."""
    pages = list(source.pages(token, now))
    return [event for page in pages for event in page.events], pages


def appointment_for(event: dict, calendar_id: str = "primary") -> Appointment:
    start = datetime.fromisoformat(event["start"]["dateTime"])
    return Appointment(calendar_id=calendar_id, event_id=event["id"], client=Client("kari@example.com", "Kari"),
                       start=start, end=start + timedelta(hours=1), timezone="Europe/Oslo", status="confirmed",
                       price=Money(90000, "NOK"), service="default", title=event["summary"], updated=NOW)


@pytest.fixture
def google_pair(google_fake, google_settings, google_credentials):
    """The (source, write-back) for "primary", retries fast. The status line is written even
    on events a client is invited to (write_note = "always"): these tests are about how it
    is written; tests/integration/test_mark_privacy.py is about where."""
    settings = google_settings(write_note="always")
    return open_calendars(settings, credentials=google_credentials(), retry_budget=5, sleep=lambda s: None)[0]


# --- sync ------------------------------------------------------------------------------


def test_full_sync_then_incremental_returns_only_changes(google_fake, google_pair):
    source, _ = google_pair
    kept = google_fake.put_event("primary", booking("Massage Kari", NOW + timedelta(days=1)))
    moved = google_fake.put_event("primary", booking("Massage Ola", NOW + timedelta(days=2)))
    gone = google_fake.put_event("primary", booking("Massage Per", NOW + timedelta(days=3)))
    google_fake.put_event("primary", booking("Too far ahead", NOW + timedelta(days=400)))
    google_fake.put_event("primary", booking("Long ago", NOW - timedelta(days=90)))

    events, pages = sync(source)
    assert {e["summary"] for e in events} == {"Massage Kari", "Massage Ola", "Massage Per"}
    assert [(p.full, p.last) for p in pages] == [(True, True)] and pages[0].next_sync_token
    assert pages[0].window_start == NOW - timedelta(days=30) and pages[0].window_end == NOW + timedelta(days=180)
    query = google_fake.api_requests()[-1].query
    assert query["singleEvents"] == ["true"] and query["showDeleted"] == ["false"] and query["maxResults"] == ["2500"]
    assert query["timeMin"] == ["2026-10-24T10:00:00Z"] and query["timeMax"] == ["2027-05-22T10:00:00Z"]  # CEST both ends

    google_fake.modify_event("primary", moved["id"], start={"dateTime": (NOW + timedelta(days=5)).isoformat()},
                             end={"dateTime": (NOW + timedelta(days=5, hours=1)).isoformat()})
    google_fake.delete_event("primary", gone["id"])
    added = google_fake.put_event("primary", booking("Massage Liv", NOW + timedelta(days=4)))
    changes, pages = sync(source, pages[0].next_sync_token)

    assert {e["id"] for e in changes} == {moved["id"], gone["id"], added["id"]}
    assert kept["id"] not in {e["id"] for e in changes}
    assert [(p.full, p.last) for p in pages] == [(False, True)]
    assert not {"timeMin", "timeMax", "orderBy", "showDeleted"} & set(google_fake.api_requests()[-1].query)


def test_many_events_arrive_over_several_pages_and_only_the_last_carries_the_token(google_fake, google_pair):
    source, _ = google_pair
    for n in range(5000):
        google_fake.put_event("primary", booking(f"Session {n}", NOW + timedelta(minutes=30 * n)))
    events, pages = sync(source)
    assert len(pages) == 2 and len(events) == 5000 == len({e["id"] for e in events})
    assert [p.last for p in pages] == [False, True]
    assert pages[0].next_sync_token is None and pages[1].next_sync_token

    google_fake.page_size_cap = 700  # Google may return fewer than maxResults per page
    events, pages = sync(source)
    assert len(pages) == 8 and len({e["id"] for e in events}) == 5000
    assert all(p.full for p in pages) and [p.last for p in pages].count(True) == 1


def test_idle_calendar_costs_exactly_one_request_per_tick(google_fake, google_pair):
    source, _ = google_pair
    for n in range(300):
        google_fake.put_event("primary", booking(f"Session {n}", NOW + timedelta(hours=n)))
    _, pages = sync(source)
    token = pages[-1].next_sync_token
    for _ in range(3):
        google_fake.reset_requests()
        events, pages = sync(source, token)
        token = pages[-1].next_sync_token
        assert events == [] and len(google_fake.api_requests()) == 1


def test_expired_sync_token_raises_sync_token_expired_and_a_full_sync_recovers(google_fake, google_pair):
    source, _ = google_pair
    google_fake.put_event("primary", booking("Massage Kari", NOW + timedelta(days=1)))
    _, pages = sync(source)
    google_fake.expire_sync_tokens("primary")
    with pytest.raises(SyncTokenExpired, match="primary"):
        sync(source, pages[-1].next_sync_token)
    events, pages = sync(source, None)
    assert [e["summary"] for e in events] == ["Massage Kari"] and pages[-1].full


def test_deleted_events_pass_through_as_bare_cancelled_resources(google_fake, google_pair):
    source, _ = google_pair
    event = google_fake.put_event("primary", booking("Massage Kari", NOW + timedelta(days=1)))
    _, pages = sync(source)
    google_fake.delete_event("primary", event["id"])
    changes, _ = sync(source, pages[-1].next_sync_token)
    assert changes == [{"kind": "calendar#event", "etag": changes[0]["etag"], "id": event["id"], "status": "cancelled"}]


def test_recurring_series_arrive_as_instances_and_a_cancelled_instance_is_reported(google_fake, google_pair):
    source, _ = google_pair
    instances = google_fake.put_recurring("primary", booking("Weekly coaching", NOW + timedelta(days=1)), count=4)
    events, pages = sync(source)
    assert sorted(e["id"] for e in events) == sorted(i["id"] for i in instances)
    assert all(e["recurringEventId"] == instances[0]["recurringEventId"] and "recurrence" not in e for e in events)

    google_fake.delete_event("primary", instances[2]["id"])
    changes, _ = sync(source, pages[-1].next_sync_token)
    assert [(c["id"], c["status"], c["recurringEventId"]) for c in changes] == [
        (instances[2]["id"], "cancelled", instances[2]["recurringEventId"])]


def test_several_calendars_each_sync_on_their_own(google_fake, google_settings, google_credentials):
    google_fake.put_event("primary", booking("Home visit", NOW + timedelta(days=1)))
    google_fake.put_event(CLINIC, booking("Clinic session", NOW + timedelta(days=1)))
    pairs = open_calendars(google_settings(calendar_ids=["primary", CLINIC]), credentials=google_credentials())
    assert [(source.calendar_id, [e["summary"] for e in sync(source)[0]]) for source, _ in pairs] == [
        ("primary", ["Home visit"]), (CLINIC, ["Clinic session"])]


def test_unknown_calendar_is_a_final_error_naming_it(google_fake, google_settings, google_credentials):
    (source, _), = open_calendars(google_settings(calendar_ids=["nobody@group.calendar.google.com"]), credentials=google_credentials())
    with pytest.raises(AdapterError, match="nobody@group.calendar.google.com.*not shared") as raised:
        sync(source)
    assert raised.value.retryable is False


# --- rate limits and errors -----------------------------------------------------------


@pytest.mark.parametrize("status, reason", [(403, "rateLimitExceeded"), (403, "userRateLimitExceeded"), (429, ""), (500, ""), (503, "")])
def test_rate_limits_and_server_errors_are_retried_with_growing_delays(google_fake, google_settings, google_credentials, status, reason):
    google_fake.put_event("primary", booking("Massage Kari", NOW + timedelta(days=1)))
    delays: list[float] = []
    (source, _), = open_calendars(google_settings(), credentials=google_credentials(), sleep=delays.append)
    google_fake.fail_next(status, reason=reason, times=3, path_contains="/events")
    events, _ = sync(source)
    assert [e["summary"] for e in events] == ["Massage Kari"]
    assert [r.status for r in google_fake.api_requests()] == [status] * 3 + [200]
    assert len(delays) == 3 and delays[0] < delays[2] and all(d > 0 for d in delays)


def test_retry_after_from_google_is_respected(google_fake, google_settings, google_credentials):
    delays: list[float] = []
    google_fake.put_event("primary", booking("Massage Kari", NOW + timedelta(days=1)))
    (source, _), = open_calendars(google_settings(), credentials=google_credentials(), sleep=delays.append)
    google_fake.fail_next(429, retry_after="3", path_contains="/events")
    sync(source)
    assert delays == [3.0]


def test_persistent_server_errors_give_up_within_the_time_budget(google_fake, google_settings, google_credentials):
    google_fake.put_event("primary", booking("Massage Kari", NOW + timedelta(days=1)))
    (source, _), = open_calendars(google_settings(), credentials=google_credentials(), retry_budget=1.5)
    google_fake.fail_next(500, times=10_000, path_contains="/events")
    started = time.monotonic()
    with pytest.raises(AdapterError, match="primary.*HTTP 500") as raised:
        sync(source)
    assert raised.value.retryable is True and not isinstance(raised.value, SyncTokenExpired)
    assert time.monotonic() - started < 3


def test_a_bad_request_is_not_retried(google_fake, google_pair):
    source, _ = google_pair
    google_fake.fail_next(400, reason="invalid", path_contains="/events")
    with pytest.raises(AdapterError, match="primary") as raised:
        sync(source)
    assert raised.value.retryable is False and len(google_fake.api_requests()) == 1


# --- write-back --------------------------------------------------------------------------


def test_write_back_changes_only_our_keys_and_line_without_notifying_anyone(google_fake, google_pair):
    source, writer = google_pair
    original = google_fake.put_event("primary", booking(
        "Massage Kari", NOW - timedelta(days=1), description="Prefers the quiet room\nprice: 900 NOK",
        colorId="11", extendedProperties={"private": {"otherApp": "keep"}, "shared": {"booked_via": "web"}}))
    sync(source)
    writer.write_status(appointment_for(original), {"fee": "late_cancel", "state": "pending"}, "late-cancel fee 450 NOK pending, charged 23 Nov 14:00 unless you add #waive")

    after = google_fake.get_event("primary", original["id"])
    assert after["description"] == ("Prefers the quiet room\nprice: 900 NOK\n"
                                    "Slotguard: late-cancel fee 450 NOK pending, charged 23 Nov 14:00 unless you add #waive")
    private = after["extendedProperties"]["private"]
    assert private["otherApp"] == "keep" and private["slotguard_fee"] == "late_cancel" and private["slotguard_state"] == "pending"
    assert after["extendedProperties"]["shared"] == {"booked_via": "web"}
    untouched = {k: v for k, v in original.items() if k not in ("description", "extendedProperties", "updated", "etag")}
    assert {k: after[k] for k in untouched} == untouched
    patch = [r for r in google_fake.api_requests() if r.method == "PATCH"]
    assert len(patch) == 1 and patch[0].query["sendUpdates"] == ["none"]
    assert set(json.loads(patch[0].body)) == {"description", "extendedProperties"}
    assert strip_status_line(after["description"]) == "Prefers the quiet room\nprice: 900 NOK"

    writer.write_status(appointment_for(original), {"state": "charged"}, "late-cancel fee 450 NOK charged 23 Nov 14:00")
    after = google_fake.get_event("primary", original["id"])
    assert after["description"].count("Slotguard:") == 1 and after["description"].endswith("charged 23 Nov 14:00")
    assert after["extendedProperties"]["private"]["slotguard_state"] == "charged"


def test_write_back_keeps_html_descriptions_html(google_fake, google_pair):
    _, writer = google_pair
    event = google_fake.put_event("primary", booking("Massage", NOW, description="<b>Room 2</b><br>Slotguard: old<br>bring towel"))
    writer.write_status(appointment_for(event), {"state": "waived"}, "fee waived <emergency>")
    assert google_fake.get_event("primary", event["id"])["description"] == "<b>Room 2</b><br>Slotguard: fee waived &lt;emergency&gt;<br>bring towel"


def test_repeating_the_same_write_sends_no_patch(google_fake, google_pair):
    source, writer = google_pair
    event = google_fake.put_event("primary", booking("Massage", NOW))
    sync(source)
    writer.write_status(appointment_for(event), {"state": "pending"}, "fee pending")
    google_fake.reset_requests()
    writer.write_status(appointment_for(event), {"state": "pending"}, "fee pending")
    assert [r.method for r in google_fake.api_requests()] == ["GET"]


def test_write_note_off_leaves_the_description_alone(google_fake, google_settings, google_credentials):
    (_, writer), = open_calendars(google_settings(write_note=False), credentials=google_credentials())
    event = google_fake.put_event("primary", booking("Massage", NOW, description="Notes"))
    writer.write_status(appointment_for(event), {"state": "pending"}, "fee pending")
    after = google_fake.get_event("primary", event["id"])
    assert after["description"] == "Notes" and after["extendedProperties"]["private"]["slotguard_state"] == "pending"


def test_an_edit_made_while_we_write_is_not_lost(google_fake, google_pair):
    _, writer = google_pair
    event = google_fake.put_event("primary", booking("Massage", NOW, description="Notes"))
    google_fake.before_next("PATCH", event["id"], lambda fake: fake.modify_event("primary", event["id"], description="Notes\n#waive"))
    writer.write_status(appointment_for(event), {"state": "pending"}, "fee pending")
    assert google_fake.get_event("primary", event["id"])["description"] == "Notes\n#waive\nSlotguard: fee pending"
    assert [r.status for r in google_fake.api_requests() if r.method == "PATCH"] == [412, 200]


def test_our_own_write_is_recognised_and_a_later_practitioner_edit_is_not(google_fake, google_pair):
    source, writer = google_pair
    event = google_fake.put_event("primary", booking("Massage", NOW - timedelta(hours=3), description="Notes"))
    _, pages = sync(source)
    writer.write_status(appointment_for(event), {"state": "pending"}, "no-show fee pending")
    writer.write_status(appointment_for(event), {"state": "charged"}, "no-show fee charged")  # same tick
    changes, pages = sync(source, pages[-1].next_sync_token)
    assert [e["id"] for e in changes] == [event["id"]] and is_own_write(changes[0])

    google_fake.modify_event("primary", event["id"], colorId="11")
    changes, _ = sync(source, pages[-1].next_sync_token)
    assert not is_own_write(changes[0])


def test_an_edit_the_engine_has_not_seen_is_never_signed_as_ours(google_fake, google_pair):
    source, writer = google_pair
    event = google_fake.put_event("primary", booking("Massage", NOW - timedelta(hours=3)))
    _, pages = sync(source)
    google_fake.modify_event("primary", event["id"], summary="Massage #waive")  # after the engine's last look
    writer.write_status(appointment_for(event), {"state": "pending"}, "fee pending")
    changes, _ = sync(source, pages[-1].next_sync_token)
    assert changes[0]["summary"] == "Massage #waive" and not is_own_write(changes[0])


def test_deleted_events_are_not_written_to(google_fake, google_pair):
    _, writer = google_pair
    event = google_fake.put_event("primary", booking("Massage", NOW))
    google_fake.delete_event("primary", event["id"])
    writer.write_status(appointment_for(event), {"state": "pending"}, "fee pending")
    assert not [r for r in google_fake.api_requests() if r.method == "PATCH"]


def test_status_keys_beyond_googles_limits_are_refused_before_any_request(google_fake, google_pair):
    _, writer = google_pair
    event = google_fake.put_event("primary", booking("Massage", NOW))
    with pytest.raises(AdapterError, match="44"):
        writer.write_status(appointment_for(event), {"k" * 35: "x"}, "")
    with pytest.raises(AdapterError, match="1024"):
        writer.write_status(appointment_for(event), {"state": "x" * 1025}, "")
    assert google_fake.api_requests() == []


def test_read_only_mode_uses_the_read_only_scope_and_never_writes(google_fake, google_settings, google_credentials):
    settings = google_settings(write_back=False)
    assert google_auth.scopes_for(settings) == [SCOPE_READONLY]
    (source, writer), = open_calendars(settings, credentials=google_credentials([SCOPE_READONLY]))
    google_fake.put_event("primary", booking("Massage", NOW))
    assert len(sync(source)[0]) == 1 and isinstance(writer, NullWriteBack)
    with pytest.raises(ReauthorizationNeeded):  # colors.get is not covered by events.readonly
        source.event_colors()


def test_event_colour_palette(google_pair):
    source, _ = google_pair
    colours = source.event_colors()
    assert len(colours) == 11 and colours["11"] == "#dc2127"


# --- OAuth ----------------------------------------------------------------------------------


def test_expired_access_token_is_refreshed_at_the_token_endpoint_and_saved_0600(google_fake, google_settings, google_credentials):
    settings = google_settings()
    old = google_credentials(expired=True)
    save_credentials(old, token_path(settings))
    (source, _), = open_calendars(settings, token_uri=google_fake.token_uri)
    google_fake.put_event("primary", booking("Massage", NOW))
    assert len(sync(source)[0]) == 1
    assert [r.path for r in google_fake.requests][:1] == ["/token"]
    saved = json.loads(token_path(settings).read_text())
    assert saved["token"] != old.token and saved["refresh_token"] == old.refresh_token
    assert stat.S_IMODE(os.stat(token_path(settings)).st_mode) == 0o600


def test_a_401_refreshes_once_and_carries_on(google_fake, google_pair):
    source, _ = google_pair
    google_fake.expire_access_tokens()  # Google revoked the access token early
    assert sync(source)[1][-1].last
    assert [r.path.rsplit("/", 1)[-1] for r in google_fake.requests] == ["events", "token", "events"]


def test_a_401_that_survives_one_refresh_asks_for_the_auth_command(google_fake, google_pair):
    source, _ = google_pair
    google_fake.fail_next(401, times=2, path_contains="/events")
    with pytest.raises(ReauthorizationNeeded, match=r"primary.*python main\.py auth google"):
        sync(source)
    assert [r.path.rsplit("/", 1)[-1] for r in google_fake.requests] == ["events", "token", "events"]


def test_revoked_refresh_token_asks_for_the_auth_command_and_recovers_after_it(google_fake, google_settings, google_credentials):
    settings = google_settings()
    credentials = google_credentials(expired=True)
    save_credentials(credentials, token_path(settings))
    (source, _), = open_calendars(settings, token_uri=google_fake.token_uri)
    google_fake.revoke_refresh_token(credentials.refresh_token)
    with pytest.raises(ReauthorizationNeeded, match=r"primary.*python main\.py auth google"):
        sync(source)
    save_credentials(google_credentials(), token_path(settings))  # the user ran the auth command
    assert sync(source)[1][-1].last


def test_missing_token_file_asks_for_the_auth_command(google_settings):
    (source, _), = open_calendars(google_settings())
    with pytest.raises(ReauthorizationNeeded, match="python main.py auth google"):
        sync(source)


def test_a_read_only_token_with_write_back_on_asks_to_connect_again(google_settings, google_credentials):
    settings = google_settings()
    save_credentials(google_credentials([SCOPE_READONLY]), token_path(settings))
    with pytest.raises(ReauthorizationNeeded, match="read-only"):
        StoredCredentials.load(settings)


def test_token_file_is_private_even_when_replaced(google_settings, google_credentials):
    settings = google_settings()
    path = token_path(settings)
    save_credentials(google_credentials(), path)
    os.chmod(path, 0o644)
    save_credentials(google_credentials(), path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["google-token.json"]  # no temporary left over


def test_run_auth_does_pkce_offline_consent_and_saves_a_private_token(google_fake, google_settings, tmp_path, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the fake token endpoint is plain http
    secrets_file = tmp_path / "client_secret.json"
    secrets_file.write_text(json.dumps({"installed": {
        "client_id": google_fake.client_id, "client_secret": google_fake.client_secret,
        "auth_uri": google_fake.auth_uri, "token_uri": google_fake.token_uri, "redirect_uris": ["http://localhost"]}}))

    class Browser:  # follows the consent page's redirect back to the local server, like a user clicking "Allow"
        def open(self, url, new=0, autoraise=True):
            threading.Thread(target=lambda: urllib.request.urlopen(url, timeout=10).read(), daemon=True).start()
            return True

    monkeypatch.setattr("webbrowser.get", lambda using=None: Browser())
    settings = google_settings()
    assert run_auth(settings, str(secrets_file), timeout_seconds=20) == 0

    asked = google_fake.auth_requests[-1]
    assert asked["access_type"] == "offline" and asked["prompt"] == "consent"
    assert asked["scope"] == SCOPE_OWNED and asked["code_challenge_method"] == "S256"
    saved = json.loads(token_path(settings).read_text())
    assert saved["refresh_token"].startswith("1//fake-refresh") and saved["scopes"] == [SCOPE_OWNED]
    assert stat.S_IMODE(os.stat(token_path(settings)).st_mode) == 0o600
    (source, _), = open_calendars(settings, token_uri=google_fake.token_uri)
    google_fake.put_event("primary", booking("Massage", NOW))
    assert len(sync(source)[0]) == 1


def test_run_auth_without_client_secrets_explains_and_fails(google_settings, capsys):
    assert run_auth(google_settings(), None) == 2
    assert "--client-secrets" in capsys.readouterr().err


def test_tokens_and_secrets_never_reach_the_logs(google_fake, google_settings, google_credentials, caplog):
    settings = google_settings()
    credentials = google_credentials(expired=True)
    save_credentials(credentials, token_path(settings))
    caplog.set_level(logging.DEBUG)
    (source, _), = open_calendars(settings, sleep=lambda s: None, token_uri=google_fake.token_uri)
    google_fake.fail_next(503, path_contains="/events")
    sync(source)
    google_fake.revoke_refresh_token(credentials.refresh_token)
    google_fake.expire_access_tokens()
    with pytest.raises(ReauthorizationNeeded) as raised:
        sync(source)
    new_token = json.loads(token_path(settings).read_text())["token"]
    text = caplog.text + str(raised.value)
    assert "google_retry" in caplog.text  # the log did record the retry
    for secret in (credentials.token, new_token, credentials.refresh_token, google_fake.client_secret):
        assert secret not in text
