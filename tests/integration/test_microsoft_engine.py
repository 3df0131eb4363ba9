"""The engine on Microsoft 365: a config file with `calendar.source = "microsoft"`, wired by
build_engine (slotguard/run/wiring.py) to the Graph wire fake; an Outlook category marks a
no-show and the no-show policy's fee follows, written back onto the event."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from integration.microsoft_graph import PROPERTY_ID, MicrosoftCalendarSource
from slotguard.cli.common import load_settings
from slotguard.domain.model import ActionKind, ActionState
from slotguard.domain.money import Money
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.fake_graph import USER, FakeGraph, booking
from tests.support.microsoft_practice import sign_in

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def practice(tmp_path):
    fake = FakeGraph(tmp_path, interval=0).start()
    path = tmp_path / "slotguard.toml"
    path.write_text(f"""
[practice]
name = "Lena Berg Massage"
email = "{USER}"
timezone = "Europe/Oslo"
currency = "NOK"
booking_link = "https://example.com/book"
payment_instructions = "Vipps 400 00 000"

[calendar]
source = "microsoft"

{fake.config()}
[services]
default = {{ price = "900 NOK", duration = "60m", label = "massage" }}

[payments]
review_window = "12h"
require_policy_notice = false
charge_from = "{(datetime.now(UTC) - timedelta(days=2)).isoformat()}"  # the appointment predates the first run

[mail]
outbox_dir = "{tmp_path / 'outbox'}"
digest_hour = -1
quiet_hours = ""

[storage]
data_dir = "{tmp_path / 'var'}"

[policies]
enabled = ["no_show"]
no_show = {{ fee = "100%" }}
""")
    settings = load_settings(str(path))
    sign_in(settings)
    yield fake, settings, tmp_path
    fake.stop()


def test_a_no_show_category_in_outlook_plans_the_policy_fee_and_writes_it_back(practice):
    fake, settings, folder = practice
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=2)
    fake.put_event(booking("ana-1", start, "ana@example.com", "Ana Silva"))
    ledger = Ledger(str(folder / "var" / "ledger.sqlite3"))
    engine = build_engine(settings, now, ledger=ledger)
    [(source, _)] = engine.calendars
    assert isinstance(source, MicrosoftCalendarSource)

    first = engine.tick(now)
    assert first.problems == [] and first.events_seen == 1
    assert ledger.actions(kinds=[ActionKind.CHARGE]) == []

    fake.update_event("ana-1", categories=["No-show"])
    later = now + timedelta(minutes=5)
    before = len(fake.requests)
    second = engine.tick(later)
    assert second.problems == []
    [fee] = ledger.actions(kinds=[ActionKind.CHARGE])
    assert fee.amount == Money(90000, "NOK") and fee.client_email == "ana@example.com" and fee.state is ActionState.PENDING_REVIEW
    stored = json.loads(fake.property_value("ana-1", PROPERTY_ID))
    assert stored["state"] and stored["note"] == ""  # a meeting: the body is left alone
    assert "body" not in fake.patches[-1]
    assert fake.count("GET", "/calendarView/delta") >= 2 and len(fake.requests) - before >= 3  # delta, read, PATCH

    idle_before = len(fake.requests)
    engine.tick(later + timedelta(minutes=2))
    idle = len(fake.requests) - idle_before
    # our own PATCH comes back once through delta; the tick after that is idle
    engine.tick(later + timedelta(minutes=4))
    assert len(fake.requests) - idle_before - idle == 1 and idle == 1

    fake.expire_delta_tokens()
    third = engine.tick(later + timedelta(minutes=6))
    assert third.problems == [] and third.events_seen == 1  # a full round, quietly
    assert len(ledger.actions(kinds=[ActionKind.CHARGE])) == 1
