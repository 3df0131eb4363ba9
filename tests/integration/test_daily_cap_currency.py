"""payments.daily_cap is an amount in the practice currency, and the engine never weighs a fee
in one currency against a cap in another (issue 11, item 7)."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from integration.memory import MemoryCalendar
from integration.outbox_dir import OutboxDirMailer
from integration.record_only import RecordOnlyProvider
from slotguard.config.schema import ConfigError, parse_settings
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import ActionKind, ActionState
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import config, event, settings

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)


def test_a_daily_cap_in_another_currency_is_a_config_error_naming_the_key():
    with pytest.raises(ConfigError) as error:
        parse_settings(config(payments={"daily_cap": "500 EUR"}))
    [problem] = [p for p in error.value.problems if "daily_cap" in p]
    assert problem.startswith("payments.daily_cap:") and "500.00 EUR" in problem and "NOK" in problem


def test_a_fee_in_another_currency_than_the_cap_is_never_weighed_against_it(tmp_path):
    """The practice moved from NOK to EUR while a NOK fee waited in review: 900 NOK is not
    "below 1000 EUR" (90000 < 100000 minor units) nor above it; it is not charged, and the
    practitioner is told why and what to do."""
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    calendar = MemoryCalendar("primary")
    parts = dict(ledger=ledger, calendars=[(calendar, NullWriteBack())], provider=RecordOnlyProvider(),
                 mailer=OutboxDirMailer(tmp_path / "outbox"))
    engine = build_engine(settings(), MONDAY, **parts)
    start = MONDAY + timedelta(hours=6)
    calendar.put(event("e1", start), MONDAY)
    engine.tick(MONDAY)
    calendar.put(event("e1", start, title="Massage #noshow"), start + timedelta(minutes=30))
    engine.tick(start + timedelta(minutes=30))
    [fee] = ledger.actions(kinds=[ActionKind.CHARGE])
    assert fee.state is ActionState.PENDING_REVIEW and str(fee.amount) == "900.00 NOK"

    in_euro = settings(practice={"currency": "EUR"}, services={"default": {"price": "90 EUR"}},
                       payments={"max_single_charge": "200 EUR", "daily_cap": "1000 EUR"})
    engine = build_engine(in_euro, MONDAY, **parts)
    report = engine.tick(fee.due_at + timedelta(minutes=1))

    fee = ledger.action(fee.id)
    assert fee.state is ActionState.FAILED and fee.executed_at is None
    assert "payments.daily_cap" in fee.last_error and "EUR" in fee.last_error and "NOK" in fee.last_error
    assert any(fee.id in problem and "daily_cap" in problem for problem in report.problems)
