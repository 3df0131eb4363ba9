"""End to end on a CalDAV calendar: the engine built from config/example.toml with
calendar.source = "caldav" (build_engine opens the adapter itself) reads a Radicale
calendar; a no-show marked by the "No-show" category plans the fee the example's no_show
policy says, and the fee's status is written back onto the event."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path

import pytest

from slotguard.config.schema import parse_settings
from slotguard.domain.model import ActionKind, ActionState
from slotguard.domain.money import Money
from slotguard.run.wiring import build_engine
from tests.integration.caldav_helpers import NOW, PASSWORD_ENV, at, new_calendar, stamp
from tests.support.radicale_server import event, radicale  # noqa: F401 - the module-scoped fixture

pytestmark = pytest.mark.timeout(120)
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.toml"


def test_a_no_show_marked_by_category_plans_the_example_policys_fee(radicale, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv(PASSWORD_ENV, radicale.password)
    path, name = new_calendar(radicale)
    config = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    config["calendar"] = {"source": "caldav", "marks": config["calendar"]["marks"],
                          "caldav": {"url": radicale.url, "username": radicale.user, "password": {"env": PASSWORD_ENV}, "calendar": name}}
    config["storage"] = {"data_dir": str(tmp_path / "var")}
    config["mail"]["outbox_dir"] = str(tmp_path / "outbox")
    settings = parse_settings(config)
    # Bjørn knows the policy (payments.policy_known_by in the example), so his fee stands.
    start = at(1, 2)
    session = event("bjorn-1", stamp(start), stamp(start + timedelta(hours=1)), "Massage", description="email: bjorn@example.com")
    radicale.put(path, "bjorn-1", session)
    engine = build_engine(settings, NOW)
    engine.tick(NOW)
    assert [tracked.appointment.client.email for tracked in engine.ledger.all_tracked()] == ["bjorn@example.com"]
    text, etag = radicale.get(path, "bjorn-1")
    radicale.put(path, "bjorn-1", text.replace("SUMMARY:Massage", "SUMMARY:Massage\r\nCATEGORIES:No-show"), etag)
    after = start + timedelta(hours=1, minutes=30)
    engine.tick(after)
    [fee] = engine.ledger.actions(kinds=[ActionKind.CHARGE])
    assert fee.policy == "no_show" and fee.amount == Money(90000, "NOK")  # fee = "100%" of the 900 NOK session
    assert fee.state is ActionState.PENDING_REVIEW and fee.event_id == "bjorn-1"
    written, _ = radicale.get(path, "bjorn-1")
    assert f"X-SLOTGUARD-FEE:{fee.id}" in written and "X-SLOTGUARD-STATE:pending_review" in written
    assert "Slotguard: no-show fee 900.00 NOK pending review" in written.replace("\n ", "").replace("\r", "")
    engine.tick(after + timedelta(minutes=2))  # our own write comes back: nothing new is planned
    assert len(engine.ledger.actions(kinds=[ActionKind.CHARGE])) == 1
