"""Modifiers one by one: when they adjust or waive a fee, what they say, and their config."""

from __future__ import annotations

from datetime import timedelta

import pytest

from slotguard.config.schema import ConfigError
from slotguard.domain.model import ActionKind
from slotguard.policies.loading import load_enabled
from tests.support.builders import settings
from tests.unit.planning.test_policy_planner import MONDAY, K, World, fee_config, nok


def fee_of(planned):
    return next(a for a in planned if a.kind is not ActionKind.EMAIL)


def test_grace_forgives_the_configured_number_of_incidents_within_the_period():
    world = World(**fee_config("no_show", "first_offense_grace", first_offense_grace={"forgive": 2, "period": "30d"}))
    kinds = []
    for number, day in enumerate((0, 1, 2, 40)):
        start = MONDAY + timedelta(days=day)
        kinds.append(fee_of(world.happen(K.NO_SHOW, world.appointment(f"e{number}", start), start)))
    assert [fee.kind for fee in kinds] == [ActionKind.WAIVE, ActionKind.WAIVE, ActionKind.CHARGE, ActionKind.WAIVE]
    assert kinds[1].reason.endswith("first_offense_grace waived it: second incident in 30 days")
    assert kinds[3].reason.endswith("first incident in 30 days"), "older incidents fall out of the period"


def test_an_incident_the_practitioner_waived_does_not_use_up_the_grace():
    world = World(**fee_config("no_show", "first_offense_grace"))
    first = world.appointment("e1", MONDAY)
    world.happen(K.WAIVED, first, MONDAY)  # marked #waive straight away: no fee, no incident
    assert fee_of(world.happen(K.NO_SHOW, world.appointment("e2", MONDAY + timedelta(days=1)), MONDAY + timedelta(days=1))).kind is ActionKind.WAIVE


def test_loyal_client_by_sessions_or_by_months_and_a_full_discount_waives():
    world = World(**fee_config("late_cancel", "loyal_client", loyal_client={"min_sessions": 3, "min_months": 6, "discount": "100%"}))
    start = MONDAY + timedelta(days=1)
    planned = world.happen(K.CANCELLED_BY_CLIENT, world.appointment("e1", start), start - timedelta(hours=5), first_seen=MONDAY - timedelta(days=200))
    fee = fee_of(planned)
    assert fee.kind is ActionKind.WAIVE and fee.reason.endswith("loyal_client waived it: a client for 6 months")
    fresh = World(**fee_config("late_cancel", "loyal_client", loyal_client={"min_sessions": 3}))
    assert fee_of(fresh.happen(K.CANCELLED_BY_CLIENT, fresh.appointment("e1", start), start - timedelta(hours=5))).amount == nok(450)


def test_loyal_client_needs_a_rule():
    with pytest.raises(ConfigError) as error:
        load_enabled(settings(policies={"enabled": ["loyal_client"], "loyal_client": {"min_sessions": None}}))
    assert error.value.problems == ["policies.loyal_client: give min_sessions, min_months or both"]
    with pytest.raises(ConfigError) as error:
        load_enabled(settings(policies={"enabled": ["loyal_client"], "loyal_client": {"discount": "0%"}}))
    assert error.value.problems == ["policies.loyal_client.discount: must be more than 0%"]


def test_prospect_second_chance_only_for_a_new_client_missing_a_first_meeting():
    world = World(**fee_config("no_show", "prospect_second_chance"))
    planned = world.happen(K.NO_SHOW, world.appointment("e1", MONDAY, client="pat@example.com", title="Discovery call"), MONDAY)
    assert fee_of(planned).kind is ActionKind.WAIVE
    followup = next(a for a in planned if a.template == "no_show_followup")
    assert followup.context["second_chance"] is True and followup.context["invite_rebooking"] is True
    again = world.happen(K.NO_SHOW, world.appointment("e2", MONDAY + timedelta(days=2), client="pat@example.com", title="Discovery call"), MONDAY + timedelta(days=2))
    assert fee_of(again).kind is ActionKind.CHARGE, "the second chance is given once"
    assert fee_of(world.happen(K.NO_SHOW, world.appointment("e3", MONDAY, client="bo@example.com", title="Discovery massage"), MONDAY)).kind is ActionKind.WAIVE
    assert fee_of(world.happen(K.NO_SHOW, world.appointment("e4", MONDAY, client="cy@example.com", title="Massage"), MONDAY)).kind is ActionKind.CHARGE


def test_emergency_claims_must_be_waive_marks_so_adding_one_later_works():
    with pytest.raises(ConfigError) as error:
        load_enabled(settings(calendar={"marks": {"waive": {"tags": ["#waive"]}}}, policies={"enabled": ["emergency_waiver"]}))
    assert any(
        problem.startswith("policies.emergency_waiver.claims.1.tag: '#mistake' is not a waive mark; add it to calendar.marks.waive.tags")
        for problem in error.value.problems
    )
    load_enabled(settings(policies={"enabled": ["emergency_waiver"]}))  # the default marks include #mistake


def test_emergency_waiver_names_the_claim_on_a_waiver_and_waives_at_once_when_already_tagged():
    world = World(**fee_config("no_show", "emergency_waiver"))
    appointment = world.appointment("e1", MONDAY)
    world.happen(K.NO_SHOW, appointment, MONDAY)
    world.carry_out(MONDAY + timedelta(days=1))
    tagged = world.appointment("e1", MONDAY, title="Massage #Mistake")
    refund = next(a for a in world.happen(K.WAIVED, tagged, MONDAY + timedelta(days=2)) if a.kind is ActionKind.REFUND)
    assert refund.reason.endswith("#mistake: the client booked by mistake or a technical error: credited")
    late = World(**fee_config("late_cancel", "emergency_waiver"))
    start = MONDAY + timedelta(days=1)
    fee = fee_of(late.happen(K.CANCELLED_BY_CLIENT, late.appointment("e2", start, title="Massage #latecancel #emergency"), start - timedelta(hours=3)))
    assert fee.kind is ActionKind.WAIVE and "emergency_waiver waived it: #emergency: a real emergency (illness, family crisis)" in fee.reason


def test_practitioner_cancel_waives_what_still_waits_and_records_goodwill():
    world = World(**fee_config("late_cancel", "repeat_offender_prepay", "practitioner_cancel_refund",
                               repeat_offender_prepay={"incidents": 1}, practitioner_cancel_refund={"goodwill": "15%", "goodwill_valid": "10d"}))
    start = MONDAY + timedelta(days=1)
    world.happen(K.CANCELLED_BY_CLIENT, world.appointment("e0", start), start - timedelta(hours=1))
    appointment, booked = world.book("e1", MONDAY + timedelta(days=8), at=MONDAY + timedelta(days=2))
    prepayment = next(a for a in booked if a.kind is ActionKind.CHARGE)
    planned = world.happen(K.CANCELLED_BY_PRACTITIONER, appointment, MONDAY + timedelta(days=3))
    assert world.ledger.action(prepayment.id).state.value == "waived"
    assert next(a for a in booked if a.template == "deposit_request").id in {
        a.id for a in world.actions(kinds=[ActionKind.EMAIL]) if a.state.value == "cancelled"
    }, "no request for money that is no longer asked"
    goodwill = next(a for a in planned if a.kind is ActionKind.CREDIT)
    assert goodwill.context["goodwill"] == "15" and "goodwill discount of 15% on the next booking" in goodwill.reason
    _, again = world.book("e2", MONDAY + timedelta(days=9), at=MONDAY + timedelta(days=5))
    assert next(a for a in again if a.template == "booking_confirmation").context["goodwill_discount"] == "15%"
    _, third = world.book("e3", MONDAY + timedelta(days=10), at=MONDAY + timedelta(days=6))
    assert "goodwill_discount" not in next(a for a in third if a.template == "booking_confirmation").context, "used once"


def test_small_amounts_are_written_off_with_the_amount_kept():
    world = World(**fee_config("no_show", "small_amount_writeoff", no_show={"fee": "80 NOK"}, small_amount_writeoff={"below": "100 NOK"}))
    planned = world.happen(K.NO_SHOW, world.appointment("e1", MONDAY), MONDAY)
    fee = fee_of(planned)
    assert fee.kind is ActionKind.WRITEOFF and fee.amount == nok(80) and fee.state.value == "done"
    assert next(a for a in planned if a.kind is ActionKind.EMAIL).context["written_off"] is True


def test_friends_and_family_pay_a_share_unless_explicitly_exempt():
    sections = fee_config("no_show", "friends_and_family", friends_and_family={"clients": ["Mum@Example.com"], "share": "25%"})
    world = World(**sections)
    assert fee_of(world.happen(K.NO_SHOW, world.appointment("e1", MONDAY, client="mum@example.com"), MONDAY)).amount == nok(225)
    exempt = World(**fee_config("no_show", "friends_and_family", friends_and_family={"clients": ["mum@example.com"], "exempt": True}))
    assert fee_of(exempt.happen(K.NO_SHOW, exempt.appointment("e1", MONDAY, client="mum@example.com"), MONDAY)).kind is ActionKind.WAIVE
    with pytest.raises(ConfigError) as error:
        load_enabled(settings(policies={"enabled": ["friends_and_family"], "friends_and_family": {"share": "0%"}}))
    assert error.value.problems == ["policies.friends_and_family.share: must be more than 0%; to exempt them, set exempt = true"]


def test_all_config_problems_are_reported_at_once_with_their_paths():
    with pytest.raises(ConfigError) as error:
        load_enabled(settings(policies={
            "enabled": ["no_show", "first_offense_grace", "loyal_client", "deposit"],
            "first_offense_grace": {"forgive": 0, "period": "forever"},
            "loyal_client": {"discount": 1.5},
            "deposit": {"kind": "card", "amount": "abc"},
        }))
    paths = sorted(problem.partition(":")[0] for problem in error.value.problems)
    assert paths == sorted([
        "policies.first_offense_grace.forgive", "policies.first_offense_grace.period", "policies.loyal_client.discount",
        "policies.deposit.amount", "policies.deposit.kind",
    ])
