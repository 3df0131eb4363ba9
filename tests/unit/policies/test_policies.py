from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from plugins import late_cancel, no_show
from slotguard.domain.model import ActionKind, Happening, HappeningKind
from slotguard.domain.money import Money
from slotguard.intake.normalize import normalize
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
START = datetime(2026, 3, 4, 10, 0, tzinfo=OSLO)
APPOINTMENT = normalize(event("e1", START), "primary", settings(), START - timedelta(days=5)).appointment
LATE = late_cancel.LateCancelConfig.model_validate({"tiers": [{"within": "24h", "fee": "50%"}, {"within": "2h", "fee": "100%"}]})


def happening(kind, at):
    return Happening("k", kind, "primary", "e1", "ana@example.com", START, at, at)


@pytest.mark.parametrize(
    "notice, expected",
    [(timedelta(hours=30), None), (timedelta(hours=24), None), (timedelta(hours=23, minutes=59), 45000),
     (timedelta(hours=2), 45000), (timedelta(minutes=119), 90000), (timedelta(minutes=-30), 90000)],
)
def test_late_cancel_uses_the_tightest_tier_containing_the_notice(notice, expected):
    at = START - notice
    proposals = late_cancel.slotguard_propose(happening(HappeningKind.CANCELLED_BY_CLIENT, at), APPOINTMENT, LATE, at)
    fees = [p for p in proposals if p.kind is ActionKind.CHARGE]
    if expected is None:
        assert proposals == []
    else:
        assert fees[0].amount == Money(expected, "NOK")
        assert any(p.template == "late_cancel_notice" and p.reports_on == "fee" for p in proposals)


def test_late_cancel_ignores_other_happenings():
    assert late_cancel.slotguard_propose(happening(HappeningKind.CANCELLED_BY_PRACTITIONER, START), APPOINTMENT, LATE, START) == []


def test_no_show_charges_the_configured_share_and_follows_up_with_a_new_time():
    config = no_show.NoShowConfig.model_validate({"fee": "600 NOK", "wait": "15m"})
    now = START + timedelta(minutes=5)
    proposals = no_show.slotguard_propose(happening(HappeningKind.NO_SHOW, START), APPOINTMENT, config, now)
    fee = next(p for p in proposals if p.kind is ActionKind.CHARGE)
    assert fee.amount == Money(60000, "NOK")
    assert fee.due == START + timedelta(minutes=15)  # not before the wait is over
    assert any(p.template == "no_show_followup" for p in proposals)
