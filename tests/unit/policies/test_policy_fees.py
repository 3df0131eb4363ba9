"""Fee policies one by one: what they propose, and the config mistakes they refuse."""

from __future__ import annotations

from datetime import timedelta

import pytest

from plugins import late_cancel
from slotguard.config.schema import ConfigError
from slotguard.domain.model import ActionKind, ActionState
from slotguard.policies.loading import load_enabled
from tests.support.builders import settings
from tests.unit.planning.test_policy_planner import MONDAY, K, World, fee_config, nok


def test_late_cancel_takes_any_number_of_tiers_and_fixed_amounts_capped_at_the_price():
    config = late_cancel.LateCancelConfig.model_validate(
        {"tiers": [{"within": "7d", "fee": "100 NOK"}, {"within": "72h", "fee": "20%"}, {"within": "48h", "fee": "400 NOK"},
                   {"within": "24h", "fee": "50%"}, {"within": "2h", "fee": "1200 NOK"}]}
    )
    world = World(**fee_config("late_cancel", late_cancel=config.model_dump(mode="json")))
    expected = {timedelta(days=5): nok(100), timedelta(hours=60): nok(180), timedelta(hours=30): nok(400),
                timedelta(hours=10): nok(450), timedelta(minutes=30): nok(900), timedelta(days=8): None}
    for number, (notice, fee) in enumerate(expected.items()):
        start = MONDAY + timedelta(days=number * 10)
        planned = world.happen(K.CANCELLED_BY_CLIENT, world.appointment(f"e{number}", start), start - notice)
        charges = [a.amount for a in planned if a.kind is ActionKind.CHARGE]
        assert charges == ([fee] if fee else []), notice


def test_without_a_late_cancel_table_the_default_tiers_apply_tightest_first():
    # No [policies.late_cancel] table: 24h -> 50% and 2h -> 100%; an hour's notice is the 2h tier.
    defaults = late_cancel.LateCancelConfig.model_validate({})
    assert late_cancel.tier_for(timedelta(hours=1), defaults).fee.percent == 100
    assert late_cancel.tier_for(timedelta(hours=5), defaults).fee.percent == 50
    assert late_cancel.tier_for(timedelta(hours=30), defaults) is None


@pytest.mark.parametrize(
    "tiers, message",
    [([], "give at least one tier"), ([{"within": "24h", "fee": "50%"}, {"within": "24h", "fee": "10%"}], "same `within`"),
     ([{"within": "24h", "fee": "150%"}], "between 0% and 100%"), ([{"within": "0h", "fee": "50%"}], "longer than zero")],
)
def test_late_cancel_refuses_tiers_that_cannot_work(tiers, message):
    with pytest.raises(ConfigError) as error:
        load_enabled(settings(policies={"enabled": ["late_cancel"], "late_cancel": {"tiers": tiers}}))
    assert any(message in problem and problem.startswith("policies.late_cancel.tiers") for problem in error.value.problems)


def test_a_fixed_amount_in_another_currency_is_refused_with_its_path():
    with pytest.raises(ConfigError) as error:
        load_enabled(settings(policies={"enabled": ["no_show", "small_amount_writeoff"], "no_show": {"fee": "60 EUR"}, "small_amount_writeoff": {"below": "10 EUR"}}))
    assert "policies.no_show.fee: 60.00 EUR is not in the practice currency NOK" in error.value.problems
    assert "policies.small_amount_writeoff.below: 10.00 EUR is not in the practice currency NOK" in error.value.problems


def test_deposit_hold_is_placed_no_earlier_than_hold_before_the_start():
    world = World(**fee_config("deposit", deposit={"amount": "300 NOK", "kind": "hold", "hold_before": "3d"}))
    booked = MONDAY - timedelta(days=20)
    _, planned = world.book("e1", MONDAY, at=booked)
    hold = next(a for a in planned if a.kind is ActionKind.HOLD)
    assert hold.amount == nok(300) and hold.due_at == MONDAY - timedelta(days=3) and hold.state is ActionState.PLANNED
    _, planned = world.book("e2", MONDAY + timedelta(days=1), at=MONDAY - timedelta(days=1))
    assert next(a for a in planned if a.kind is ActionKind.HOLD).due_at == MONDAY - timedelta(days=1)


def test_deposit_only_for_chosen_services_new_clients_and_appointments_ahead():
    world = World(**fee_config("deposit", deposit={"services": ["intro"], "new_clients_only": True}),
                  services={"intro": {"price": "500 NOK", "duration": "30m", "match": ["intro"]}})
    _, massage = world.book("e1", MONDAY)
    _, intro = world.book("e2", MONDAY + timedelta(days=1), title="Intro")
    assert [a for a in massage if a.kind is ActionKind.CHARGE] == []
    assert [a.amount for a in intro if a.kind is ActionKind.CHARGE] == [nok(250)]
    world.happen(K.ATTENDED, world.appointment("e0", MONDAY - timedelta(days=30)), MONDAY - timedelta(days=29))
    _, returning = world.book("e3", MONDAY + timedelta(days=2), title="Intro")
    assert [a for a in returning if a.kind is ActionKind.CHARGE] == []
    _, past = world.book("e4", MONDAY, at=MONDAY + timedelta(days=1), client="new@example.com", title="Intro")
    assert [a for a in past if a.kind is ActionKind.CHARGE] == [], "no deposit for an appointment already begun"


def test_deposit_services_must_exist_and_deposit_cannot_roll():
    with pytest.raises(ConfigError) as error:
        load_enabled(settings(policies={"enabled": ["deposit", "rolling_half_deposit"], "deposit": {"services": ["massage"]}}))
    assert "policies.deposit.services.0: no service named 'massage'; services: default" in error.value.problems
    assert "policies.enabled: deposit and rolling_half_deposit cannot be used together; enable one of them" in error.value.problems


def test_reschedule_credit_needs_deposit_listed_before_it():
    for enabled, expected in (
        (["late_cancel", "reschedule_credit"], "policies.enabled: reschedule_credit needs deposit; add 'deposit' before 'reschedule_credit'"),
        (["reschedule_credit", "deposit"], "policies.enabled: list 'deposit' before 'reschedule_credit' (it works on what deposit decided)"),
    ):
        with pytest.raises(ConfigError) as error:
            load_enabled(settings(policies={"enabled": enabled}))
        assert expected in error.value.problems


def test_reschedule_credit_can_keep_an_unused_credit():
    world = World(**fee_config("deposit", "reschedule_credit", deposit={"amount": "30%"}, reschedule_credit={"if_not_rebooked": "keep"}))
    appointment, _ = world.book("e1", MONDAY, at=MONDAY - timedelta(days=7))
    world.carry_out(MONDAY - timedelta(days=7))
    world.happen(K.CANCELLED_BY_CLIENT, appointment, MONDAY - timedelta(days=5))
    end = next(a for a in world.actions(kinds=[ActionKind.CREDIT]) if a.context.get("expires_credit"))
    assert end.due_at == MONDAY + timedelta(days=3) and end.state is ActionState.PLANNED
    assert "the deposit is kept" in end.reason
    assert world.actions(kinds=[ActionKind.REFUND]) == []


def test_a_late_change_follows_the_usual_rules_not_the_credit():
    world = World(**fee_config("late_cancel", "deposit", "reschedule_credit", deposit={"amount": "30%"}))
    appointment, _ = world.book("e1", MONDAY, at=MONDAY - timedelta(days=7))
    world.carry_out(MONDAY - timedelta(days=7))
    planned = world.happen(K.CANCELLED_BY_CLIENT, appointment, MONDAY - timedelta(hours=30))
    assert [a for a in planned if a.policy == "reschedule_credit"] == []
    assert [a.amount for a in planned if a.kind is ActionKind.REFUND] == [nok(270)]


def test_rolling_half_deposit_is_only_for_listed_clients_and_a_sane_share():
    world = World(**fee_config("rolling_half_deposit", rolling_half_deposit={"clients": ["Frank@Example.com"], "share": "40%"}))
    assert [a.amount for a in world.happen(K.ATTENDED, world.appointment("e1", MONDAY, client="frank@example.com"), MONDAY) if a.kind is ActionKind.CHARGE] == [nok(360)]
    assert world.happen(K.ATTENDED, world.appointment("e2", MONDAY, client="ana@example.com"), MONDAY) == []
    with pytest.raises(ConfigError) as error:
        load_enabled(settings(policies={"enabled": ["rolling_half_deposit"], "rolling_half_deposit": {"share": "0"}}))
    assert error.value.problems == ["policies.rolling_half_deposit.share: must be more than 0%"]


def test_package_credits_count_sessions_since_the_package_was_bought():
    package = {"email": "ana@example.com", "sessions": 2, "since": "2026-03-01T00:00:00+01:00"}
    world = World(**fee_config("no_show", "package_credits", package_credits={"packages": [package]}))
    world.happen(K.ATTENDED, world.appointment("old", MONDAY - timedelta(days=10)), MONDAY - timedelta(days=10))  # before the package
    world.happen(K.ATTENDED, world.appointment("e1", MONDAY), MONDAY + timedelta(hours=3))
    planned = world.happen(K.NO_SHOW, world.appointment("e2", MONDAY + timedelta(days=1)), MONDAY + timedelta(days=1))
    credit = next(a for a in planned if a.kind is ActionKind.CREDIT)
    assert credit.amount is None and credit.context["credits_left"] == 0 and credit.context["instead_of"] == {"minor": 90000, "currency": "NOK"}
    notice = next(a for a in planned if a.template == "no_show_followup")
    assert notice.context["package_credit"] is True and notice.reports_on == credit.id
    planned = world.happen(K.NO_SHOW, world.appointment("e3", MONDAY + timedelta(days=2)), MONDAY + timedelta(days=2))
    assert [a.amount for a in planned if a.kind is ActionKind.CHARGE] == [nok(900)]


def test_repeat_offender_asks_prepayment_and_suggests_ending_at_the_higher_count():
    world = World(**fee_config("no_show", "repeat_offender_prepay", repeat_offender_prepay={"incidents": 2, "period": "30d", "end_relationship_after": 3}))
    for day in range(3):
        start = MONDAY + timedelta(days=day)
        planned = world.happen(K.NO_SHOW, world.appointment(f"n{day}", start), start)
    third = next(a for a in planned if a.kind is ActionKind.CHARGE)
    assert "3rd incident in 30 days" in third.reason and "consider ending the relationship, kindly" in third.reason
    assert third.context["suggest_ending"] is True
    _, booked = world.book("b1", MONDAY + timedelta(days=10), at=MONDAY + timedelta(days=4))
    prepayment = next(a for a in booked if a.kind is ActionKind.CHARGE)
    # Asked at once (issue 13, item 4): the client pays it through a link, no card is charged,
    # so it needs no review window; its request goes out with it.
    booked_at = MONDAY + timedelta(days=4)
    assert prepayment.amount == nok(900) and prepayment.state is ActionState.PLANNED and prepayment.due_at == booked_at
    assert prepayment.context["client_pays"] is True
    [request] = [a for a in booked if a.template == "deposit_request"]
    assert request.due_at == booked_at and request.reports_on == prepayment.id
    assert request.context["starts_soon"] is False, "six days ahead there is time to pay before the session"
    assert prepayment.context["practitioner_note"].startswith("ana@example.com: 3 late cancellations or no-shows in 30 days")
    confirmation = next(a for a in booked if a.template == "booking_confirmation")
    assert confirmation.context["prepayment_required"] is True and confirmation.context["prepayment"] == {"minor": 90000, "currency": "NOK"}
    # Incidents older than the period no longer count.
    _, later = world.book("b2", MONDAY + timedelta(days=60), at=MONDAY + timedelta(days=45))
    assert [a for a in later if a.kind is ActionKind.CHARGE] == []


def test_repeat_offender_ending_count_must_be_above_the_threshold():
    with pytest.raises(ConfigError) as error:
        load_enabled(settings(policies={"enabled": ["repeat_offender_prepay"], "repeat_offender_prepay": {"incidents": 3, "end_relationship_after": 2}}))
    assert error.value.problems == ["policies.repeat_offender_prepay.end_relationship_after: must be more than incidents (3)"]


def test_a_prepayment_replaces_the_deposit_of_the_same_booking():
    world = World(**fee_config("no_show", "deposit", "repeat_offender_prepay", repeat_offender_prepay={"incidents": 1}))
    world.happen(K.NO_SHOW, world.appointment("n1", MONDAY), MONDAY)
    _, booked = world.book("b1", MONDAY + timedelta(days=5), at=MONDAY + timedelta(days=1))
    charges = [(a.policy, a.amount) for a in booked if a.kind is ActionKind.CHARGE]
    assert charges == [("repeat_offender_prepay", nok(900))]
    assert [a.template for a in booked if a.kind is ActionKind.EMAIL] == ["booking_confirmation", "deposit_request"]
