"""Google push notifications end to end, over real parts: the real google-api-python-client
opens and stops channels on the Google wire fake, the fake POSTs its notifications from its
own thread to a real webhook server on a loopback port, whose /google/push handler checks
them against channels stored in a real PostgreSQL schema and wakes the practice.

The wake function is the work queue's (slotguard.store.work_queue.wake, written beside this);
here a recorder with the same signature stands in for it and notes each wake and when."""

from __future__ import annotations

import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from integration.google_calendar import open_push_channels
from integration.stripe_webhooks import serve
from slotguard.config.deployment import Push
from slotguard.domain.interfaces import AdapterError
from slotguard.run.push import channel_token, maintain_channels, make_push_handler
from slotguard.store.push_channels import PushChannel, add_channel, channels_of, ensure_tables, find_channel

SECRET = "push-secret-for-tests"
PRACTICE = "lena"


def booking(summary: str, hour: int = 10) -> dict:
    return {"summary": summary, "start": {"dateTime": f"2026-12-10T{hour:02d}:00:00+01:00"},
            "end": {"dateTime": f"2026-12-10T{hour + 1:02d}:00:00+01:00"}}


class Recorder:
    """Stands in for work_queue.wake(conn, practice, reason): notes (practice, reason, when)."""

    def __init__(self) -> None:
        self.wakes: list[tuple[str, str, float]] = []
        self._changed = threading.Condition()

    def __call__(self, conn, practice: str, reason: str) -> None:
        conn.execute("SELECT 1")  # it is handed a live connection
        with self._changed:
            self.wakes.append((practice, reason, time.monotonic()))
            self._changed.notify_all()

    def wait(self, count: int, timeout: float = 30.0) -> list[tuple[str, str, float]]:
        """The wakes once at least `count` were made (generous: returns as soon as they are)."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.wakes) >= count, timeout)
            return list(self.wakes)


@pytest.fixture
def push_db(pg_url, pg_schema):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        ensure_tables(conn, pg_schema)
        yield conn


@pytest.fixture
def receiver(pg_url, pg_schema, push_db):
    """The webhook server serving only /google/push, on a free loopback port."""
    recorder = Recorder()

    @contextmanager
    def open_connection():
        with psycopg.connect(pg_url, autocommit=True) as conn:
            yield conn

    server = serve(None, "", 0, push=make_push_handler(open_connection, SECRET, recorder, pg_schema), timeout=2.0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.recorder = recorder
    server.address = f"http://127.0.0.1:{server.server_address[1]}/google/push"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def api(google_settings, google_credentials):
    return open_push_channels(google_settings(), credentials=google_credentials(), allow_loopback_http=True, retry_budget=2.0)


def settings_for(receiver, **changes) -> Push:
    """[push] settings delivering to the test receiver. `enabled` stays off: the deployment
    file refuses a plain http address, and maintain_channels is called here directly."""
    return Push(address=receiver.address, **changes)


def maintain(push_db, pg_schema, api, push, calendars=("primary",), now=None):
    return maintain_channels(push_db, PRACTICE, list(calendars), api, push, SECRET, now or datetime.now(UTC), schema=pg_schema)


def post(address: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(address, data=b"", method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_a_change_on_a_watched_calendar_wakes_the_practice_within_seconds(google_fake, receiver, push_db, pg_schema, api):
    report = maintain(push_db, pg_schema, api, settings_for(receiver))
    assert report.opened == ["primary"] and not report.failed
    sync = google_fake.push.wait_delivered(1)
    assert [(d.state, d.status) for d in sync] == [("sync", 200)]
    assert receiver.recorder.wakes == []  # the channel's sync message wakes nothing

    changed_at = time.monotonic()
    google_fake.put_event("primary", booking("Anna Olsen"))
    wakes = receiver.recorder.wait(1)
    assert [(practice, reason) for practice, reason, _ in wakes] == [(PRACTICE, "google_push")]
    # Milliseconds when the machine is idle (docs/deploy.md, section 8); the bound is generous for a
    # busy one, and still far from the next poll (poll_fallback, 30 minutes) a lost push waits for.
    assert wakes[0][2] - changed_at < 5.0

    event = google_fake.put_event("primary", booking("Bjørn Dahl", 12))
    google_fake.delete_event("primary", event["id"])  # a deletion is a change to the watched collection
    assert len(receiver.recorder.wait(3)) == 3
    assert [d.state for d in google_fake.push.wait_delivered(4)] == ["sync", "exists", "exists", "exists"]


def test_a_bad_token_an_unknown_channel_and_sync_wake_nothing(google_fake, receiver, push_db, pg_schema, api, caplog):
    maintain(push_db, pg_schema, api, settings_for(receiver))
    channel = channels_of(push_db, PRACTICE, pg_schema)[0]
    genuine = {"X-Goog-Channel-ID": channel.channel_id, "X-Goog-Channel-Token": channel_token(SECRET, channel.channel_id),
               "X-Goog-Resource-ID": channel.resource_id, "X-Goog-Resource-State": "exists", "X-Goog-Message-Number": "7"}
    forged = "f" * 64
    caplog.set_level(logging.INFO, logger="slotguard.push")

    assert post(receiver.address, {**genuine, "X-Goog-Channel-Token": forged}) == 403
    assert post(receiver.address, {**genuine, "X-Goog-Channel-Token": ""}) == 403
    assert post(receiver.address, {**genuine, "X-Goog-Channel-ID": "not-ours"}) == 403  # the token is for another channel
    stopped = {**genuine, "X-Goog-Channel-ID": "not-ours", "X-Goog-Channel-Token": channel_token(SECRET, "not-ours")}
    assert post(receiver.address, stopped) == 404  # as from a channel stopped meanwhile
    assert post(receiver.address, {**genuine, "X-Goog-Resource-ID": "another-calendar"}) == 403
    assert post(receiver.address, {**genuine, "X-Goog-Resource-State": "sync"}) == 200
    assert post(receiver.address, {**genuine, "X-Goog-Resource-State": "changed"}) == 400
    assert post(receiver.address, {"X-Goog-Resource-State": "exists"}) == 400
    time.sleep(0.2)
    assert receiver.recorder.wakes == []
    assert forged not in caplog.text and channel_token(SECRET, channel.channel_id) not in caplog.text
    assert "bad token" in caplog.text and "unknown channel" in caplog.text

    assert post(receiver.address, genuine) == 200  # the genuine one, by contrast, wakes
    assert post(receiver.address, {**genuine, "X-Goog-Resource-State": "not_exists"}) == 200  # so does not_exists
    assert [practice for practice, _, _ in receiver.recorder.wait(2)] == [PRACTICE, PRACTICE]


def test_a_new_secret_renews_the_channels_made_with_the_old_one(google_fake, receiver, push_db, pg_schema, api):
    push = settings_for(receiver)
    maintain(push_db, pg_schema, api, push)
    old = channels_of(push_db, PRACTICE, pg_schema)[0]
    report = maintain_channels(push_db, PRACTICE, ["primary"], api, push, "a-new-secret", datetime.now(UTC), schema=pg_schema)
    assert report.renewed == ["primary"]
    assert [c.channel_id for c in channels_of(push_db, PRACTICE, pg_schema)] != [old.channel_id]


def test_a_channel_left_pending_by_a_crash_is_replaced(google_fake, receiver, push_db, pg_schema, api):
    now = datetime.now(UTC)
    add_channel(push_db, PushChannel("crashed", PRACTICE, "primary", "", "d" * 64, now + timedelta(days=7), now), pg_schema)
    report = maintain(push_db, pg_schema, api, settings_for(receiver))
    assert report.opened == ["primary"]
    assert [c.channel_id != "crashed" and not c.pending for c in channels_of(push_db, PRACTICE, pg_schema)] == [True]


def test_renewal_opens_the_new_channel_before_stopping_the_old_and_loses_no_change(google_fake, receiver, push_db, pg_schema, api):
    google_fake.push.channel_ttl_cap = 60.0  # Google gives the channel a minute, whatever was asked
    push = settings_for(receiver, channel_ttl=timedelta(days=7), renew_before=timedelta(seconds=3), poll_fallback=timedelta(seconds=1))
    assert maintain(push_db, pg_schema, api, push).opened == ["primary"]
    old = channels_of(push_db, PRACTICE, pg_schema)[0]
    assert push.renew_before < old.expires_at - datetime.now(UTC) <= timedelta(seconds=60), "Google's expiry is kept"
    assert maintain(push_db, pg_schema, api, push).requests == 0  # not yet due: no request
    # The tick's clock moves to 2 s before the old channel expires (within renew_before); at
    # Google it is still live for most of a minute, however slow the machine.
    due = old.expires_at - timedelta(seconds=2)

    # A change arriving while the renewal is under way (just before the old channel is stopped).
    google_fake.before_next("POST", "/channels/stop", lambda fake: fake.put_event("primary", booking("During renewal")))
    google_fake.reset_requests()
    report = maintain(push_db, pg_schema, api, push, now=due)
    assert report.renewed == ["primary"] and not report.failed
    assert [r.path.rsplit("/", 1)[-1] for r in google_fake.api_requests()] == ["watch", "stop"]  # new first, then old

    new = channels_of(push_db, PRACTICE, pg_schema)
    assert [c.channel_id for c in new] != [old.channel_id] and len(new) == 1
    assert find_channel(push_db, old.channel_id, pg_schema) is None
    assert [c.id for c in google_fake.push.live("primary")] == [new[0].channel_id]
    assert len(receiver.recorder.wait(1)) >= 1  # the change during the renewal woke the practice

    # Every notification of the renewal delivered (both channels' sync, the change on both
    # channels, live at once) before counting, however slow the sender thread is.
    settled = google_fake.push.wait_delivered(4)
    assert sorted((d.channel_id == old.channel_id, d.state) for d in settled) == [
        (False, "exists"), (False, "sync"), (True, "exists"), (True, "sync")]
    before, from_old = len(receiver.recorder.wakes), sum(d.channel_id == old.channel_id for d in google_fake.push.deliveries)
    google_fake.put_event("primary", booking("After renewal", 14))
    assert len(receiver.recorder.wait(before + 1)) == before + 1  # through the new channel
    assert sum(d.channel_id == old.channel_id for d in google_fake.push.deliveries) == from_old  # the stopped one is silent


def test_a_calendar_removed_from_the_config_has_its_channel_stopped(google_fake, receiver, push_db, pg_schema, api):
    google_fake.put_event("clinic@group.calendar.google.com", booking("Clinic"))
    push = settings_for(receiver)
    assert sorted(maintain(push_db, pg_schema, api, push, ("primary", "clinic@group.calendar.google.com")).opened) == [
        "clinic@group.calendar.google.com", "primary"]
    google_fake.push.wait_delivered(2)

    report = maintain(push_db, pg_schema, api, push, ("primary",))
    assert report.stopped == ["clinic@group.calendar.google.com"] and report.requests == 1
    assert [c.calendar_id for c in channels_of(push_db, PRACTICE, pg_schema)] == ["primary"]
    assert google_fake.push.live("clinic@group.calendar.google.com") == []

    google_fake.put_event("clinic@group.calendar.google.com", booking("Clinic again", 15))
    time.sleep(0.5)
    assert receiver.recorder.wakes == []  # a stopped channel sends nothing


def test_an_idle_hour_of_ticks_costs_no_request_to_google(google_fake, receiver, push_db, pg_schema, api):
    push = settings_for(receiver)
    start = datetime.now(UTC)
    maintain(push_db, pg_schema, api, push, now=start)
    google_fake.reset_requests()
    for tick in range(720):  # a tick every 5 s for an hour
        assert maintain(push_db, pg_schema, api, push, now=start + timedelta(seconds=5 * tick)).requests == 0
    assert google_fake.api_requests() == []


def test_renewal_is_due_only_within_renew_before_and_costs_two_requests(google_fake, receiver, push_db, pg_schema, api):
    push = settings_for(receiver)  # 7-day channels, renewed a day before they expire
    start = datetime.now(UTC)
    maintain(push_db, pg_schema, api, push, now=start)
    google_fake.reset_requests()
    assert maintain(push_db, pg_schema, api, push, now=start + timedelta(days=5, hours=23)).requests == 0
    assert maintain(push_db, pg_schema, api, push, now=start + timedelta(days=6, minutes=1)).renewed == ["primary"]
    assert len(google_fake.api_requests()) == 2  # per channel per week: one watch and one stop


def test_google_errors_on_one_calendar_leave_the_others_open(google_fake, receiver, push_db, pg_schema, api):
    google_fake.put_event("clinic@group.calendar.google.com", booking("Clinic"))
    google_fake.fail_next(400, reason="invalid", method="POST", path_contains="clinic")
    report = maintain(push_db, pg_schema, api, settings_for(receiver), ("clinic@group.calendar.google.com", "primary"))
    assert report.opened == ["primary"] and list(report.failed) == ["clinic@group.calendar.google.com"]
    assert maintain(push_db, pg_schema, api, settings_for(receiver), ("clinic@group.calendar.google.com", "primary")).opened == [
        "clinic@group.calendar.google.com"]  # the next tick tries again


def test_google_refuses_a_plain_http_address_and_so_does_the_adapter(google_fake, google_settings, google_credentials):
    strict = open_push_channels(google_settings(), credentials=google_credentials())
    with pytest.raises(AdapterError, match="https"):
        strict.watch("primary", "c1", "http://127.0.0.1:9/google/push", "t", timedelta(days=1))
    assert google_fake.api_requests() == []  # refused before asking Google

    google_fake.push.allow_loopback_http = False  # as the real Google: https only
    lenient = open_push_channels(google_settings(), credentials=google_credentials(), allow_loopback_http=True, retry_budget=1.0)
    with pytest.raises(AdapterError, match="webhookUrlNotHttps"):
        lenient.watch("primary", "c1", "http://127.0.0.1:9/google/push", "t", timedelta(days=1))


def test_the_push_route_has_the_stripe_routes_limits():
    seen: list[dict] = []
    server = serve(None, "", 0, push=lambda headers: (seen.append(dict(headers)) or (200, "ok")), timeout=1.0, max_body=64)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        def raw(request: bytes) -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(request)
                return sock.recv(4096)

        assert raw(b"POST /google/push HTTP/1.1\r\nHost: x\r\nX-Goog-Resource-State: sync\r\n\r\n").startswith(b"HTTP/1.0 200")
        assert seen[-1]["x-goog-resource-state"] == "sync"  # names lower-case, no Content-Length needed: no body
        assert raw(b"POST /google/push HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n").startswith(b"HTTP/1.0 413")
        assert raw(b"POST /stripe/webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").startswith(b"HTTP/1.0 404")  # push only
        started = time.monotonic()
        assert raw(b"POST /google/push HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc") == b""  # trickled: dropped
        assert time.monotonic() - started < 3
        assert len(seen) == 1
    finally:
        server.shutdown()
        server.server_close()
