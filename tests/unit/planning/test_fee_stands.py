"""When a fee may stand (slotguard/planning/fee_stands.py), decided in planning for every fee
policy: told before charged (`payments.require_policy_notice`, default true) and marks with a
shelf life (`calendar.marks.honour_for`, default 3 days). Plans are built from an account view
made by hand; nothing is written."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from slotguard.config.schema import parse_settings
from slotguard.domain.durations import to_utc_text
from slotguard.domain.model import (
    ActionKind,
    ActionState,
    ActionSubject,
    Appointment,
    Happening,
    HappeningKind,
    Mark,
    new_action,
)
from slotguard.domain.money import Money
from slotguard.domain.plan import LATE_MARK, POLICY_TOLD, POLICY_UNTOLD, WAIVED_AMOUNT
from slotguard.intake.normalize import normalize
from slotguard.planning.fee_stands import POLICY_NOTICE
from slotguard.planning.planner import LIFECYCLE, plan_happening
from slotguard.planning.view import AccountView
from slotguard.policies.account import INCIDENT, REPLACES_NOTICES, ClientAccount, fee_incidents
from slotguard.policies.loading import load_enabled
from tests.support.builders import BASE_CONFIG, config, event, merge

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=OSLO)
K = HappeningKind
CLIENT = "ana@example.com"


def nok(major: int) -> Money:
    return Money(major * 100, "NOK")


def practice(*enabled: str, payments: dict | None = None, **tables):
    """The product's defaults for the two rules (the test builders turn the notice rule off)."""
    raw = config(policies={"enabled": list(enabled or ("late_cancel", "no_show")), **tables})
    del raw["payments"]["require_policy_notice"]
    raw = merge(raw, {"payments": payments or {}})
    configured = parse_settings(raw)
    return configured, load_enabled(configured)


def appointment(start: datetime = MONDAY, marks: frozenset[str] = frozenset(), client: str = CLIENT) -> Appointment:
    booked = normalize(event("e1", start, client=client), "primary", parse_settings(BASE_CONFIG), start - timedelta(days=7)).appointment
    return replace(booked, marks=marks)


def happening(kind: HappeningKind, booked: Appointment, at: datetime, seen_at: datetime | None = None) -> Happening:
    return Happening(
        key=f"{booked.ref}/{kind.value}/{to_utc_text(booked.start)}", kind=kind, calendar_id=booked.calendar_id,
        event_id=booked.event_id, client_email=booked.client.email, start=booked.start, at=at, seen_at=seen_at or at,
    )


def sent(template: str, at: datetime, state: ActionState = ActionState.DONE, booked: Appointment | None = None):
    """An email of `template` to the client, carried out at `at` (when `state` is done)."""
    subject = ActionSubject.of_appointment(booked or appointment())
    return new_action(subject, ActionKind.EMAIL, LIFECYCLE, template, key=f"mail/{template}/{at}", now=at - timedelta(minutes=5),
                      state=state, template=template, executed_at=at if state is ActionState.DONE else None)


def plan_for(kind: HappeningKind, booked: Appointment, at: datetime, emails=(), seen_at: datetime | None = None, **practice_args):
    configured, policies = practice(**practice_args) if practice_args else practice()
    view = AccountView(booked.client.email, booked.ref, client_actions=list(emails))
    return plan_happening(happening(kind, booked, at, seen_at), booked, view, seen_at or at, settings=configured, policies=policies)


def fees(plan) -> list:
    return [p for p in plan.new if p.kind is ActionKind.CHARGE]


def emails(plan) -> list:
    return [p for p in plan.new if p.kind is ActionKind.EMAIL]


# -- told before charged ------------------------------------------------------------------


def test_by_default_a_client_never_sent_the_policy_gets_a_kind_warning_quoting_it_and_no_fee():
    booked = appointment()
    plan = plan_for(K.NO_SHOW, booked, MONDAY + timedelta(hours=1))
    [fee] = fees(plan)
    assert fee.amount == nok(0), "no fee without the policy told first"
    assert fee.context[POLICY_UNTOLD] is True and fee.context[WAIVED_AMOUNT] == nok(900).as_json()
    assert "no fee: the client had not been told the policy; a warning quoting it was sent" in fee.reason
    [warning] = emails(plan)
    assert warning.template == "grace_warning" and warning.policy == POLICY_NOTICE
    assert warning.reports_on == fee.slot and warning.context[REPLACES_NOTICES]
    assert warning.context["policy"] == "no_show" and warning.context["whole_policy"] is True
    assert warning.context["waived_amount"] == nok(900).as_json()


@pytest.mark.parametrize("template", ["booking_confirmation", "reminder", "deposit_request", "grace_warning"])
def test_an_email_carrying_the_policy_sent_before_the_incident_lets_the_fee_stand(template):
    booked = appointment()
    told = sent(template, MONDAY - timedelta(days=1))
    plan = plan_for(K.NO_SHOW, booked, MONDAY + timedelta(hours=1), [told])
    [fee] = fees(plan)
    assert fee.amount == nok(900)
    assert fee.context[POLICY_TOLD] == {"how": "email", "template": template, "action": told.id, "sent": to_utc_text(told.executed_at)}
    assert [e.template for e in emails(plan)] == ["no_show_followup"], "the usual notice, no warning"


def test_a_confirmation_planned_or_failed_or_sent_after_the_cancellation_told_nothing():
    booked = appointment()
    cancelled_at = MONDAY - timedelta(hours=3)
    unsent = [
        sent("booking_confirmation", MONDAY - timedelta(days=2), ActionState.PLANNED),
        sent("booking_confirmation", MONDAY - timedelta(days=2), ActionState.FAILED),
        sent("reminder", cancelled_at + timedelta(minutes=1)),  # after the incident
        sent("slot_freed", MONDAY - timedelta(days=3)),  # sent, but it does not state the policy
    ]
    plan = plan_for(K.CANCELLED_BY_CLIENT, booked, cancelled_at, unsent)
    [fee] = fees(plan)
    assert fee.amount == nok(0) and fee.context[POLICY_UNTOLD]
    [warning] = emails(plan)
    assert warning.template == "grace_warning" and warning.context["policy"] == "late_cancel"


def test_a_reminder_sent_before_the_start_counts_for_a_no_show():
    booked = appointment()
    plan = plan_for(K.NO_SHOW, booked, MONDAY + timedelta(hours=2), [sent("reminder", MONDAY - timedelta(hours=24))])
    assert [fee.amount for fee in fees(plan)] == [nok(900)]


def test_the_practitioners_word_lets_the_fee_stand_a_mark_on_the_event_or_the_config():
    marked = appointment(marks=frozenset({Mark.KNOWS_POLICY.value}))
    plan = plan_for(K.NO_SHOW, marked, MONDAY + timedelta(hours=1))
    assert [(f.amount, f.context[POLICY_TOLD]) for f in fees(plan)] == [(nok(900), {"how": "mark"})]
    listed = appointment()
    plan = plan_for(K.NO_SHOW, listed, MONDAY + timedelta(hours=1), payments={"policy_known_by": ["ANA@example.com"]})
    assert [(f.amount, f.context[POLICY_TOLD]) for f in fees(plan)] == [(nok(900), {"how": "config"})]


def test_require_policy_notice_false_charges_as_before_and_still_records_how_the_client_was_told():
    booked = appointment()
    plan = plan_for(K.NO_SHOW, booked, MONDAY + timedelta(hours=1), payments={"require_policy_notice": False})
    [fee] = fees(plan)
    assert fee.amount == nok(900) and POLICY_UNTOLD not in fee.context
    assert [e.template for e in emails(plan)] == ["no_show_followup"]


def test_the_warning_carries_the_policy_so_the_next_incident_is_charged():
    first = appointment()
    configured, policies = practice()
    plan = plan_happening(happening(K.NO_SHOW, first, MONDAY + timedelta(hours=1)), first, AccountView(CLIENT, first.ref),
                          MONDAY + timedelta(hours=1), settings=configured, policies=policies)
    [warning] = emails(plan)
    warned = sent(warning.template, MONDAY + timedelta(hours=1, minutes=2), booked=first)
    second = replace(appointment(MONDAY + timedelta(days=7)), event_id="e2")
    plan = plan_for(K.NO_SHOW, second, second.start + timedelta(hours=1), [warned])
    assert [fee.amount for fee in fees(plan)] == [nok(900)]


def test_a_fee_a_modifier_already_let_go_gets_no_second_warning():
    # first_offense_grace forgives the first incident with its own warning (which quotes the policy).
    booked = appointment()
    configured, policies = practice("no_show", "first_offense_grace")
    plan = plan_happening(happening(K.NO_SHOW, booked, MONDAY + timedelta(hours=1)), booked, AccountView(CLIENT, booked.ref),
                          MONDAY + timedelta(hours=1), settings=configured, policies=policies)
    assert [e.policy for e in emails(plan)] == ["first_offense_grace"]
    assert POLICY_UNTOLD not in fees(plan)[0].context


def test_a_fee_a_modifier_reduced_is_let_go_whole_when_the_client_was_not_told():
    booked = appointment()
    configured, policies = practice("no_show", "friends_and_family", friends_and_family={"clients": [CLIENT], "share": "50%"})
    plan = plan_happening(happening(K.NO_SHOW, booked, MONDAY + timedelta(hours=1)), booked, AccountView(CLIENT, booked.ref),
                          MONDAY + timedelta(hours=1), settings=configured, policies=policies)
    [fee] = fees(plan)
    assert fee.amount == nok(0) and fee.context[WAIVED_AMOUNT] == nok(450).as_json()


# -- marks have a shelf life ----------------------------------------------------------------


def test_a_mark_seen_ten_days_after_the_session_plans_no_fee_and_no_client_email():
    booked = appointment()
    told = sent("booking_confirmation", MONDAY - timedelta(days=5))
    seen = booked.end + timedelta(days=10)
    plan = plan_for(K.NO_SHOW, booked, booked.start, [told], seen_at=seen)
    [fee] = fees(plan)
    assert fee.amount == nok(900), "kept with its amount, for charge-now if the practitioner means it"
    assert fee.context[LATE_MARK] == {"seen": to_utc_text(seen), "hours_after_end": 240, "honour_for": "3d"}
    assert fee.context[INCIDENT] is False, "a mark too late is not an incident unless charged"
    assert "not charged: marked 10 days after the session" in fee.reason and "charge-now" in fee.reason
    assert all(e.context.get(LATE_MARK) for e in emails(plan)), "its notices are kept unsent too"


def test_a_mark_seen_twenty_hours_late_still_counts():
    booked = appointment()
    told = sent("booking_confirmation", MONDAY - timedelta(days=5))
    plan = plan_for(K.NO_SHOW, booked, booked.start, [told], seen_at=booked.end + timedelta(hours=20))
    [fee] = fees(plan)
    assert fee.amount == nok(900) and LATE_MARK not in fee.context and fee.context[INCIDENT] is True


def test_the_mark_time_is_when_slotguard_saw_it_not_what_the_calendar_says():
    # A `cancelled:` line can say anything; the late-cancel mark was first seen 5 days after the end.
    booked = appointment()
    told = sent("booking_confirmation", MONDAY - timedelta(days=5))
    plan = plan_for(K.CANCELLED_BY_CLIENT, booked, MONDAY - timedelta(hours=1), [told], seen_at=booked.end + timedelta(days=5))
    assert [bool(f.context.get(LATE_MARK)) for f in fees(plan)] == [True]


def test_honour_for_is_configurable():
    booked = appointment()
    told = sent("booking_confirmation", MONDAY - timedelta(days=5))
    configured = parse_settings(config(calendar={"marks": {"honour_for": "7d"}}))
    view = AccountView(CLIENT, booked.ref, client_actions=[told])
    seen = booked.end + timedelta(days=5)
    plan = plan_happening(happening(K.NO_SHOW, booked, booked.start, seen), booked, view, seen,
                          settings=configured, policies=load_enabled(configured))
    assert [LATE_MARK in f.context for f in fees(plan)] == [False]


def test_a_late_mark_is_not_counted_as_an_incident_by_the_policies():
    booked = appointment()
    late = new_action(ActionSubject.of_appointment(booked), ActionKind.CHARGE, "no_show", "late", key="k", now=MONDAY + timedelta(days=10),
                      state=ActionState.CANCELLED, amount=nok(900), context={INCIDENT: False, LATE_MARK: {"hours_after_end": 240}})
    assert fee_incidents(None, ClientAccount.from_actions(CLIENT, [late])) == []
