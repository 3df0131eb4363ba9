"""payments.daily_cap: a charge past the cap waits for the next day, and there for the end
of quiet hours, so it still goes with the email that explains it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from slotguard.domain.model import ActionKind, ActionSubject, new_action
from slotguard.domain.money import Money
from slotguard.run.daily_cap import within_daily_cap
from tests.support.builders import settings

OSLO = ZoneInfo("Europe/Oslo")
EVENING = datetime(2026, 11, 26, 20, 0, tzinfo=OSLO)


class Spent:
    """The two things the cap asks of the ledger: what was charged today, and writing the action."""

    def __init__(self, minor: int):
        self.minor = minor
        self.notes: list[str] = []

    def charged_total_since(self, since, currency):
        return self.minor

    def update_action(self, action, at, note="", **_):
        self.notes.append(note)
        return True


def fee(amount: int):
    return new_action(ActionSubject("primary", "e1", "ana@example.com"), ActionKind.CHARGE, "no_show", "fee", key="k",
                      now=EVENING, amount=Money(amount, "NOK"))


def test_a_charge_past_the_cap_waits_for_the_next_morning_not_midnight():
    capped = settings(payments={"daily_cap": "1000 NOK"})
    ledger, action = Spent(80000), fee(45000)
    assert not within_daily_cap(ledger, capped, action, EVENING, failed=lambda why: None)
    assert action.due_at == datetime(2026, 11, 27, 8, 0, tzinfo=OSLO) and ledger.notes == ["daily cap 1000.00 NOK reached; waits until tomorrow"]
    no_night = settings(payments={"daily_cap": "1000 NOK"}, mail={"quiet_hours": ""})
    action = fee(45000)
    assert not within_daily_cap(Spent(80000), no_night, action, EVENING, failed=lambda why: None)
    assert action.due_at == datetime(2026, 11, 27, 0, 0, tzinfo=OSLO)
    assert within_daily_cap(Spent(50000), capped, fee(45000), EVENING, failed=lambda why: None)
