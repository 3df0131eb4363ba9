"""Planning one happening is a pure step: from the happening, the appointment, an account
view built here by hand (no ledger, no SQLite) and `now`, `plan_happening` returns a Plan;
nothing is written. These tests read the plan the way the store will write it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from slotguard.domain.durations import to_utc_text
from slotguard.domain.model import (
    ActionKind,
    ActionState,
    ActionSubject,
    Appointment,
    ClientHistory,
    Happening,
    HappeningKind,
    Incident,
    new_action,
)
from slotguard.domain.money import Money
from slotguard.intake.normalize import normalize
from slotguard.intake.tracker import FIRST_LOOK
from slotguard.planning.planner import LIFECYCLE, plan_happening
from slotguard.planning.view import AccountView
from slotguard.policies.account import SETTLES, TARGET
from slotguard.policies.loading import load_enabled
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=OSLO)
K = HappeningKind
CLIENT = "ana@example.com"


def nok(major: int) -> Money:
    return Money(major * 100, "NOK")


def practice(*enabled: str, **tables):
    policies = {"enabled": list(enabled), "no_show": {"fee": "100%"},
                "late_cancel": {"tiers": [{"within": "24h", "fee": "50%"}, {"within": "2h", "fee": "100%"}]}}
    policies.update(tables)
    configured = settings(policies=policies)
    return configured, load_enabled(configured)


def appointment(event_id: str = "e1", start: datetime = MONDAY) -> Appointment:
    return normalize(event(event_id, start, client=CLIENT), "primary", settings(), start - timedelta(days=7)).appointment


def happening(kind: HappeningKind, booked: Appointment, at: datetime, suffix: str = "") -> Happening:
    return Happening(
        key=f"{booked.ref}/{kind.value}/{to_utc_text(booked.start)}{suffix}", kind=kind, calendar_id=booked.calendar_id,
        event_id=booked.event_id, client_email=CLIENT, start=booked.start, at=at, seen_at=at,
    )


def earlier(booked: Appointment, kind: ActionKind, policy: str, slot: str, state: ActionState, **fields):
    """An action an earlier happening of `booked` planned, as the ledger would hold it."""
    return new_action(ActionSubject.of_appointment(booked), kind, policy, f"{policy} {kind.value}", key=f"{booked.ref}/booked",
                      slot=slot, now=booked.start - timedelta(days=3), state=state, **fields)


def test_a_no_show_plans_its_fee_and_notice_and_writes_nothing():
    configured, policies = practice("no_show")
    booked = appointment()
    view = AccountView(CLIENT, booked.ref)
    plan = plan_happening(happening(K.NO_SHOW, booked, MONDAY), booked, view, MONDAY, settings=configured, policies=policies)
    fee = next(p for p in plan.new if p.kind is ActionKind.CHARGE)
    assert fee.amount == nok(900) and fee.policy == "no_show"
    notices = [p for p in plan.new if p.kind is ActionKind.EMAIL]
    assert notices and all(p.reports_on == fee.slot for p in notices), "the client is told about the fee"
    assert not plan.waive and not plan.cancel and not plan.wait
    assert plan.subject == ActionSubject.of_appointment(booked)


def test_a_cancellation_cancels_only_the_open_lifecycle_mail_of_its_slot():
    configured, policies = practice("no_show")
    booked = appointment()
    open_here = earlier(booked, ActionKind.EMAIL, LIFECYCLE, "confirmation", ActionState.PLANNED, template="booking_confirmation")
    sent_here = earlier(booked, ActionKind.EMAIL, LIFECYCLE, "reminder", ActionState.DONE, template="reminder")
    moved = earlier(appointment(start=MONDAY + timedelta(days=7)), ActionKind.EMAIL, LIFECYCLE, "old", ActionState.PLANNED)
    view = AccountView(CLIENT, booked.ref, client_actions=[open_here, sent_here, moved])
    at = MONDAY - timedelta(days=2)
    plan = plan_happening(happening(K.CANCELLED_BY_PRACTITIONER, booked, at), booked, view, at, settings=configured, policies=policies)
    assert dict(plan.cancel) == {open_here.id: "the appointment was cancelled"}


def test_a_waiver_sees_its_own_waivers_and_gives_back_the_deposit_the_fee_kept():
    configured, policies = practice("no_show", "deposit", deposit={"amount": "30%"})
    booked = appointment()
    deposit = earlier(booked, ActionKind.CHARGE, "deposit", "deposit", ActionState.DONE, amount=nok(270),
                      context={"purpose": "deposit", "deposit_kind": "charge"}, executed_at=MONDAY - timedelta(days=3))
    kept = earlier(booked, ActionKind.CREDIT, "no_show", "kept", ActionState.PENDING_REVIEW, amount=nok(270),
                   context={"purpose": "fee", SETTLES: deposit.id, TARGET: deposit.id})
    rest = earlier(booked, ActionKind.CHARGE, "no_show", "rest", ActionState.PENDING_REVIEW, amount=nok(630))
    view = AccountView(CLIENT, booked.ref, client_actions=[deposit, kept, rest])
    at = MONDAY + timedelta(hours=2)
    plan = plan_happening(happening(K.WAIVED, booked, at), booked, view, at, settings=configured, policies=policies)
    assert set(plan.waive) == {kept.id, rest.id}
    # The kept credit waived above no longer keeps the deposit: the whole of it comes back,
    # which planning can only know by seeing its own waiver, not by reading the ledger.
    refunds = [p for p in plan.new if p.kind is ActionKind.REFUND]
    assert [(r.amount, r.context[TARGET]) for r in refunds] == [(nok(270), deposit.id)]
    assert any(p.template == "refund_notice" and p.reports_on == refunds[0].slot for p in plan.new)


def test_money_is_not_given_back_twice_when_the_account_shows_a_refund_already_planned():
    configured, policies = practice("no_show", "deposit", "practitioner_cancel_refund", deposit={"amount": "30%"})
    booked = appointment()
    deposit = earlier(booked, ActionKind.CHARGE, "deposit", "deposit", ActionState.DONE, amount=nok(270),
                      context={"purpose": "deposit", "deposit_kind": "charge"})
    refunded = earlier(booked, ActionKind.REFUND, "deposit", "refund", ActionState.PLANNED, amount=nok(270),
                       context={"purpose": "deposit_return", TARGET: deposit.id, SETTLES: deposit.id})
    view = AccountView(CLIENT, booked.ref, client_actions=[deposit, refunded])
    at = MONDAY + timedelta(hours=2)
    plan = plan_happening(happening(K.WAIVED, booked, at), booked, view, at, settings=configured, policies=policies)
    assert [p for p in plan.new if p.kind is ActionKind.REFUND] == []


def test_one_confirmation_per_recurring_series_read_from_the_view():
    configured, policies = practice("no_show")
    weekly = normalize(event("e2_20260309", MONDAY + timedelta(days=7), client=CLIENT), "primary", settings(), MONDAY).appointment
    from dataclasses import replace

    weekly = replace(weekly, series_id="e2")
    asked = []
    confirmed = AccountView(CLIENT, weekly.ref, series_confirmed=lambda series: asked.append(series) or True)
    plan = plan_happening(happening(K.BOOKED, weekly, MONDAY), weekly, confirmed, MONDAY, settings=configured, policies=policies)
    assert asked == ["e2"] and not [p for p in plan.new if p.template == "booking_confirmation"]
    first = plan_happening(happening(K.BOOKED, weekly, MONDAY), weekly, AccountView(CLIENT, weekly.ref), MONDAY,
                           settings=configured, policies=policies)
    assert [p.template for p in first.new] == ["booking_confirmation"]


def test_policies_count_incidents_from_the_account_and_history_handed_in():
    configured, policies = practice("no_show", "first_offense_grace")
    booked = appointment()
    before = appointment("e0", MONDAY - timedelta(days=30))
    old_fee = earlier(before, ActionKind.CHARGE, "no_show", "", ActionState.DONE, amount=nok(900), context={"incident": True})
    at = MONDAY

    def fee(view: AccountView) -> Money:
        plan = plan_happening(happening(K.NO_SHOW, booked, at), booked, view, at, settings=configured, policies=policies)
        return next(p for p in plan.new if p.kind is ActionKind.CHARGE and p.policy == "no_show").amount

    assert fee(AccountView(CLIENT, booked.ref)).is_zero, "a first no-show is let go"
    assert fee(AccountView(CLIENT, booked.ref, client_actions=[old_fee])) == nok(900), "a second one within the year is charged"
    waived_then = ClientHistory(CLIENT, outcomes=(Incident(K.WAIVED, before.start, before.start, before.ref),))
    assert fee(AccountView(CLIENT, booked.ref, client_actions=[old_fee], history=waived_then)).is_zero, (
        "an incident the practitioner waived does not count"
    )


def test_a_booking_found_on_the_first_look_is_introduced_and_asked_for_no_deposit():
    """A booking made before Slotguard watched the calendar was made without a deposit: the
    client gets the introduction of the policy, not a request for money they never agreed
    to. A booking made after it is asked for its deposit as usual."""
    configured, policies = practice("deposit", "no_show", deposit={"amount": "50%"})
    booked = appointment(start=MONDAY + timedelta(days=7))
    first_look = replace(happening(K.BOOKED, booked, MONDAY), detail=FIRST_LOOK)
    plan = plan_happening(first_look, booked, AccountView(CLIENT, booked.ref), MONDAY, settings=configured, policies=policies)
    assert [(p.kind, p.template) for p in plan.new] == [(ActionKind.EMAIL, "booking_confirmation")]
    assert plan.new[0].context.get("existing_booking") is True

    new = plan_happening(happening(K.BOOKED, booked, MONDAY), booked, AccountView(CLIENT, booked.ref), MONDAY,
                         settings=configured, policies=policies)
    assert any(p.context.get("purpose") == "deposit" and p.amount == nok(450) for p in new.new), "a new booking is asked as before"
