"""Card holds last until they can be captured (issue 11, item 24): the default window is
valid for every card network, a configured one that is not is refused, and a hold that
would lapse before its appointment is settled is placed again in time. Pure planning with
`now` passed in; tests/integration/test_hold_renewal_stripe.py carries it out on localstripe."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from plugins.deposit import DepositConfig
from slotguard.config.schema import ConfigError
from slotguard.domain.model import Action, ActionKind, ActionState
from slotguard.domain.money import Money
from slotguard.intake.normalize import normalize
from slotguard.planning.holds import HOLD_VALIDITY, RENEW_MARGIN, needed_until, renewal_due
from slotguard.policies.loading import load_enabled
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
FRIDAY_10 = datetime(2026, 3, 6, 10, 0, tzinfo=OSLO)
DAY = timedelta(days=1)


def appointment(start: datetime, minutes: int = 60):
    return normalize(event("e1", start, minutes=minutes), "primary", settings(), start - 10 * DAY).appointment


def hold(placed: datetime) -> Action:
    return Action(id="act_hold", kind=ActionKind.HOLD, state=ActionState.DONE, policy="deposit", reason="deposit held",
                  calendar_id="primary", event_id="e1", client_email="ana@example.com", client_name="Ana",
                  happening_key="primary/e1/booked", due_at=placed, created_at=placed, updated_at=placed,
                  amount=Money(27000, "NOK"), executed_at=placed, context={"purpose": "deposit", "payment_status": "paid"})


def test_the_shortest_network_window_is_visas_for_holds_the_merchant_places():
    # Stripe, "Place a hold on a payment method": card-not-present, merchant-initiated: Visa
    # 5 days, exactly 4 days 18 hours; Mastercard, American Express, Discover 7 days.
    assert HOLD_VALIDITY == timedelta(days=4, hours=18)


def test_the_default_hold_window_lasts_until_the_capture_with_the_default_settings():
    practice = settings()
    default = DepositConfig().hold_before
    start = FRIDAY_10
    placed = start - default
    needed = needed_until(appointment(start), practice)
    # Captured at the latest when the outcome (settle_after_end after the end) has waited
    # the review window and, if that ends at night, the quiet hours (11h, and 1h for a night
    # when the clocks go back): 1h + 2h + 12h + 12h after the start.
    assert needed == start + timedelta(hours=27)
    assert placed + HOLD_VALIDITY - RENEW_MARGIN >= needed
    for now in (placed, start - DAY, start - timedelta(minutes=1)):
        assert renewal_due(hold(placed), appointment(start), practice) is None, now


def test_a_hold_for_an_appointment_moved_a_day_later_is_placed_again_once_before_it_lapses():
    practice = settings()
    placed = FRIDAY_10 - 3 * DAY
    moved = appointment(FRIDAY_10 + DAY)
    due = renewal_due(hold(placed), moved, practice)
    # Placed as late as it can while the old hold holds, and early enough to cover the capture.
    lapses = placed + HOLD_VALIDITY
    assert due is not None and due < lapses - RENEW_MARGIN + timedelta(seconds=1)
    assert due + HOLD_VALIDITY - RENEW_MARGIN >= needed_until(moved, practice)
    assert due < moved.start, "renewed while the appointment is still ahead"


def test_a_hold_for_an_appointment_moved_weeks_later_is_renewed_before_each_lapse():
    practice = settings()
    placed = FRIDAY_10 - 3 * DAY
    far = appointment(FRIDAY_10 + 21 * DAY)
    due = renewal_due(hold(placed), far, practice)
    assert due == placed + HOLD_VALIDITY - RENEW_MARGIN, "never a day without a hold on the card"
    again = renewal_due(hold(due), far, practice)
    assert again == due + HOLD_VALIDITY - RENEW_MARGIN


def test_a_hold_placed_too_early_for_a_long_session_is_renewed():
    practice = settings()
    start = FRIDAY_10
    long_session = appointment(start, minutes=24 * 60)  # a retreat day: captured 1d 14h after the start
    placed = start - 3 * DAY
    due = renewal_due(hold(placed), long_session, practice)
    assert due is not None and due + HOLD_VALIDITY - RENEW_MARGIN >= needed_until(long_session, practice)


def test_hold_before_longer_than_the_networks_allow_is_a_config_error_naming_the_sum():
    with pytest.raises(ConfigError) as error:
        load_enabled(settings(policies={"enabled": ["deposit"], "deposit": {"kind": "hold", "hold_before": "5d"}}))
    [problem] = error.value.problems
    assert problem.startswith("policies.deposit.hold_before: 5d")
    assert "4d18h" in problem and "review_window" in problem and "settle_after_end" in problem
    # The same days are fine for a charged deposit, and 3 days for a hold.
    load_enabled(settings(policies={"enabled": ["deposit"], "deposit": {"kind": "charge", "hold_before": "5d"}}))
    load_enabled(settings(policies={"enabled": ["deposit"], "deposit": {"kind": "hold", "hold_before": "3d"}}))
    with pytest.raises(ConfigError) as error:  # a long review window leaves less room
        load_enabled(settings(payments={"review_window": "2d"}, policies={"enabled": ["deposit"], "deposit": {"kind": "hold"}}))
    assert error.value.problems[0].startswith("policies.deposit.hold_before: 3d")
