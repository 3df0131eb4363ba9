"""A worker keeps a Google practice's push channels with [push] on (slotguard/run/worker.py
before_tick -> slotguard/run/push.py maintain_channels): its tick opens a channel on the
Google wire fake and records it beside the work queue, a second tick opens none, and the
practice is due again at push.poll_fallback instead of calendar.poll_interval. Real parts:
the worker in this process, the fake over HTTP through Google's client, real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from slotguard.config.deployment import load_deployment
from slotguard.run.worker import Worker
from slotguard.store import work_queue
from slotguard.store.push_channels import channels_of
from tests.support.fake_google_calendar import FakeGoogleCalendar
from tests.support.practices import save_token

SECRET_VARIABLE = "SLOTGUARD_TEST_WORKER_PUSH_SECRET"


@pytest.fixture
def google_deployment(tmp_path, monkeypatch, pg_url, pg_schema):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(SECRET_VARIABLE, "a-secret-for-the-worker-push-test")
    fake = FakeGoogleCalendar(require_auth=True).start()
    practice = f"push_{uuid.uuid4().hex[:8]}"
    save_token(fake, Path("var/deployment") / practice)
    Path("practices").mkdir()
    Path(f"practices/{practice}.toml").write_text(f"""
[practice]
name = "Lena Berg Massage"
email = "lena@example.com"
timezone = "Europe/Oslo"
currency = "NOK"
booking_link = "https://example.com/book"
payment_instructions = "Vipps 400 00 000"

[calendar]
source = "google"
calendar_ids = ["primary"]
api_endpoint = "{fake.api_endpoint}"
token_uri = "{fake.token_uri}"
poll_interval = "2m"

[services]
default = {{ price = "900 NOK", duration = "60m", label = "massage" }}

[mail]
digest_hour = -1
monthly_report = false

[policies]
enabled = ["no_show"]
""")
    Path("deployment.toml").write_text(f"""
[deployment]
ledgers = "sqlite"
[storage]
url = "{pg_url}"
[workers]
queue_schema = "{pg_schema}"
[push]
enabled = true
address = "https://127.0.0.1:9/google/push"
token_secret = {{ env = "{SECRET_VARIABLE}" }}
poll_fallback = "30m"
[metrics]
listen = ""
""")
    yield load_deployment("deployment.toml"), practice, fake
    fake.stop()


def test_a_tick_opens_the_practices_channel_once_and_polls_at_the_fallback(google_deployment, pg_url, pg_schema):
    deployment, practice, fake = google_deployment
    now = datetime.now(UTC)
    worker = Worker(deployment, "w1", until_idle=True, clock=lambda: now)
    worker.run()
    assert worker.ticks == 1 and worker.failures == 0
    [channel] = fake.push.live("primary")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        [stored] = channels_of(conn, practice, pg_schema)
        row = {r["practice"]: r for r in work_queue.rows(conn, pg_schema)}[practice]
    assert stored.channel_id == channel.id and stored.calendar_id == "primary" and stored.resource_id == channel.resource_id
    assert row["due_at"] == now + timedelta(minutes=30), "push on, a Google calendar: read again at poll_fallback, not every 2m"

    later = now + timedelta(minutes=31)
    again = Worker(deployment, "w2", until_idle=True, clock=lambda: later)
    again.run()
    assert again.ticks == 1
    assert [c.id for c in fake.push.live("primary")] == [channel.id], "nothing due: no second channel"


def test_push_off_keeps_the_poll_and_opens_nothing(google_deployment, pg_url, pg_schema):
    deployment, practice, fake = google_deployment
    off = deployment.model_copy(update={"push": deployment.push.model_copy(update={"enabled": False})})
    now = datetime.now(UTC)
    worker = Worker(off, "w1", until_idle=True, clock=lambda: now)
    worker.run()
    assert worker.ticks == 1 and fake.push.live() == []
    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = {r["practice"]: r for r in work_queue.rows(conn, pg_schema)}[practice]
    assert row["due_at"] == now + timedelta(minutes=2)
