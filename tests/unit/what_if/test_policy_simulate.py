"""The what-if simulator: the ledger's real history replayed under another policy set,
reported per client and in total, without touching the ledger file."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from integration.memory import MemoryCalendar, MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.config.schema import ConfigError, parse_settings
from slotguard.domain.interfaces import NullWriteBack
from slotguard.mail.messages import Renderer
from slotguard.policies.loading import load_enabled
from slotguard.run.engine import Engine
from slotguard.store.ledger import Ledger
from slotguard.what_if.simulate import SimulationError, copy_of_ledger, format_text, simulate, with_policies
from tests.support.builders import config, event

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
RENDERER = Renderer("en", "Europe/Oslo")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return MONDAY.replace(hour=hour, minute=minute) + timedelta(days=day)


def week_in_a_ledger(path) -> None:
    """A week with late_cancel and no_show: Ana misses Monday and cancels Wednesday late, Bo
    comes on Tuesday and cancels Thursday in good time, Cy is marked no-show on Friday."""
    settings = parse_settings(config())
    ledger = Ledger(path)
    calendar = MemoryCalendar("primary")
    engine = Engine(
        settings=settings, ledger=ledger, calendars=[(calendar, NullWriteBack())], provider=RecordOnlyProvider(),
        mailer=MemoryMailer(), renderer=RENDERER, policies=load_enabled(settings), charge_from=MONDAY,
    )
    ana = dict(client="ana@example.com", name="Ana")
    bo = dict(client="bo@example.com", name="Bo")
    cy = dict(client="cy@example.com", name="Cy")
    steps = [
        (MONDAY, event("a1", at(0, 10), **ana)), (MONDAY, event("a2", at(2, 14), **ana)),
        (MONDAY, event("b1", at(1, 10), **bo)), (MONDAY, event("b2", at(3, 10), **bo)), (MONDAY, event("c1", at(4, 10), **cy)),
        (at(0, 10, 30), event("a1", at(0, 10), color="11", **ana)),
        (at(2, 9), event("a2", at(2, 14), title="Massage #latecancel", **ana)),
        (at(1, 8), event("b2", at(3, 10), title="Massage #latecancel", **bo)),
        (at(4, 11), event("c1", at(4, 10), color="11", **cy)),
    ]
    # Slotguard has watched the calendar before the week: every booking is a new one (at a
    # first look, none would be asked for a deposit, slotguard/planning/planner.py).
    ledger.record_sync("primary", None, MONDAY - timedelta(days=7))
    now = MONDAY
    while now <= at(6, 8):
        for when, resource in steps:
            if when == now:
                calendar.put(resource, when)
        engine.tick(now)
        now += timedelta(minutes=30)
    ledger.close()


@pytest.fixture()
def ledger_file(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    week_in_a_ledger(str(path))
    return path


def fingerprint(folder) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def run(ledger_file, policies, start=MONDAY.replace(hour=0), end=at(7, 0), **tables):
    raw = config(policies={**tables})
    settings = parse_settings(with_policies(raw, policies))
    return simulate(settings, copy_of_ledger(str(ledger_file)), start, end, renderer=RENDERER), settings


def test_grace_on_last_week_forgives_first_incidents_and_says_what_would_be_emailed(ledger_file):
    before = fingerprint(ledger_file.parent)
    result, settings = run(ledger_file, ["late_cancel", "no_show", "first_offense_grace"])
    assert fingerprint(ledger_file.parent) == before, "the ledger file is read, never written (no -wal or -shm left)"
    data = result.as_json()
    ana, cy = data["clients"]["ana@example.com"], data["clients"]["cy@example.com"]
    assert ana["waived"] == {"minor": 90000, "currency": "NOK"} and ana["fees"] == {"minor": 45000, "currency": "NOK"}
    # Ana's two bookings: a confirmation each (Slotguard watched the calendar before them).
    assert ana["emails"] == {"booking_confirmation": 2, "grace_warning": 1, "late_cancel_notice": 1}
    assert cy["waived"]["minor"] == 90000 and cy["fees"]["minor"] == 0
    assert "bo@example.com" in data["clients"] and data["clients"]["bo@example.com"]["fees"]["minor"] == 0
    assert data["total"]["fees"]["minor"] == 45000 and data["total"]["waived"]["minor"] == 180000
    assert data["actual"]["fees"]["minor"] == 90000 + 45000 + 90000, "what the ledger's own policies did"
    reasons = [a["reason"] for a in data["actions"] if a["kind"] == "waive"]
    assert all("first_offense_grace waived it: first incident in 365 days" in reason for reason in reasons)
    text = format_text(result, settings)
    assert "Nothing was charged, sent or written." in text and "ana@example.com" in text and "\ntotal " in text and "NOK\u00a0450.00" in text


def test_history_before_the_period_counts_but_is_not_reported(ledger_file):
    result, _ = run(ledger_file, ["late_cancel", "no_show", "first_offense_grace"], start=at(2, 0), end=at(3, 0))
    data = result.as_json()
    assert set(data["clients"]) == {"ana@example.com"}
    ana = data["clients"]["ana@example.com"]
    assert ana["fees"]["minor"] == 45000 and ana["waived"]["minor"] == 0, "Monday's no-show was her first incident"


def test_a_deposit_policy_tried_on_the_past_shows_deposits_and_returns(ledger_file):
    result, _ = run(ledger_file, ["late_cancel", "no_show", "deposit"], deposit={"amount": "30%"})
    bo = result.as_json()["clients"]["bo@example.com"]
    assert bo["deposits"]["minor"] == 2 * 27000 and bo["refunded"]["minor"] == 27000
    assert bo["emails"].get("refund_notice") == 1


def test_unknown_policies_and_an_empty_period_are_refused(ledger_file, tmp_path):
    with pytest.raises(ConfigError) as error:
        run(ledger_file, ["late_cancel", "grace"])
    assert "unknown policy 'grace'" in error.value.problems[0] and "first_offense_grace" in error.value.problems[0]
    with pytest.raises(SimulationError, match="--from must be before --to"):
        run(ledger_file, ["no_show"], start=at(3, 0), end=at(2, 0))
    with pytest.raises(SimulationError, match="no ledger at"):
        copy_of_ledger(str(tmp_path / "nothing.sqlite3"))
    assert not (tmp_path / "nothing.sqlite3").exists()
