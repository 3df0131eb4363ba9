"""How fee policies, modifiers and settlement compose in the planner, and the safety rules
that hold whatever the policies say. `World` (used by the other test_policy_* modules too)
feeds happenings straight to a planner over an in-memory ledger."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from slotguard.domain.durations import to_utc_text
from slotguard.domain.model import OPEN_STATES, ActionKind, ActionState, Appointment, Happening, HappeningKind, Proposal
from slotguard.domain.money import Money
from slotguard.intake.normalize import normalize
from slotguard.intake.tracker import Tracked
from slotguard.planning.planner import Planner
from slotguard.policies.account import ClientAccount
from slotguard.policies.hookspecs import hookimpl
from slotguard.policies.info import Policy, PolicyInfo
from slotguard.policies.loading import load_enabled
from slotguard.store.ledger import Ledger
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=OSLO)
K = HappeningKind


def nok(major: int) -> Money:
    return Money(major * 100, "NOK")


class World:
    """A practice with the given config sections, a planner and an in-memory ledger."""

    def __init__(self, extra_policies: list[Policy] | None = None, **sections):
        self.settings = settings(**sections)
        self.policies = load_enabled(self.settings) + list(extra_policies or [])
        self.ledger = Ledger(":memory:")
        self.planner = Planner(self.settings, self.policies, self.ledger, datetime(2020, 1, 1, tzinfo=OSLO))

    def appointment(self, event_id: str, start: datetime, client: str = "ana@example.com", title: str = "Massage", seen: datetime | None = None) -> Appointment:
        resource = event(event_id, start, client=client, name=client.split("@")[0].capitalize(), title=title)
        return normalize(resource, "primary", self.settings, seen or start - timedelta(days=7)).appointment

    def happen(self, kind: HappeningKind, appointment: Appointment, at: datetime, now: datetime | None = None, first_seen: datetime | None = None):
        """Store the happening (and the appointment as tracked) and plan it; return the new actions."""
        now = now or at
        happening = Happening(
            key=f"{appointment.ref}/{kind.value}/{to_utc_text(appointment.start)}",
            kind=kind,
            calendar_id=appointment.calendar_id,
            event_id=appointment.event_id,
            client_email=appointment.client.email,
            start=appointment.start,
            at=at,
            seen_at=now,
        )
        cancellation = {K.CANCELLED_BY_CLIENT: "client", K.CANCELLED_BY_PRACTITIONER: "practitioner"}.get(kind, "")
        outcome = kind.value if kind in (K.ATTENDED, K.NO_SHOW, K.WAIVED) else ""
        if kind is K.CANCELLED_BY_PRACTITIONER:
            appointment = replace(appointment, status="cancelled")
        with self.ledger.transaction():
            self.ledger.save_tracked(Tracked(appointment, cancellation, outcome, first_seen or appointment.start - timedelta(days=7)))
            if not self.ledger.add_happening(happening):
                return []
            return self.planner.plan(happening, appointment, now)

    def book(self, event_id: str, start: datetime, client: str = "ana@example.com", at: datetime | None = None, title: str = "Massage"):
        appointment = self.appointment(event_id, start, client, title)
        return appointment, self.happen(K.BOOKED, appointment, at or start - timedelta(days=3))

    def carry_out(self, now: datetime) -> None:
        """Everything due is done (the payment provider and mailer always succeed)."""
        for action in self.ledger.actions(states=OPEN_STATES, due_before=now):
            action.state = ActionState.DONE
            action.executed_at = now
            self.ledger.update_action(action, now, "done")

    def actions(self, **filters):
        return self.ledger.actions(**filters)

    def one(self, kind: ActionKind, **filters):
        found = [action for action in self.ledger.actions(kinds=[kind]) if all(getattr(action, key) == value for key, value in filters.items())]
        assert len(found) == 1, found
        return found[0]


def fee_config(*enabled: str, **tables):
    policies = {
        "enabled": list(enabled),
        "late_cancel": {"tiers": [{"within": "24h", "fee": "50%"}, {"within": "2h", "fee": "100%"}]},
        "no_show": {"fee": "100%"},
    }
    policies.update(tables)
    return {"policies": policies}


def test_the_reason_chain_reads_like_the_story_and_a_fee_taken_to_zero_is_recorded_as_waived():
    world = World(**fee_config("no_show", "first_offense_grace"))
    appointment = world.appointment("e1", MONDAY)
    planned = world.happen(K.NO_SHOW, appointment, MONDAY, MONDAY + timedelta(hours=1))
    fee = next(a for a in planned if a.policy == "no_show" and a.kind is not ActionKind.EMAIL)
    assert fee.kind is ActionKind.WAIVE and fee.state is ActionState.DONE
    assert fee.amount == nok(900), "the waive records the amount that was let go"
    assert fee.reason == (
        "no_show proposed 900.00 NOK: marked as not attended (100% of 900.00 NOK); "
        "first_offense_grace waived it: first incident in 365 days"
    )
    emails = [a for a in planned if a.kind is ActionKind.EMAIL]
    assert [a.template for a in emails] == ["grace_warning"], "the grace warning replaces the usual follow-up"
    assert emails[0].context["policy"] == "no_show"
    assert emails[0].context["waived_amount"] == {"minor": 90000, "currency": "NOK"}
    assert emails[0].reports_on == fee.id and emails[0].due_at == fee.due_at


def test_modifiers_apply_in_the_configured_order_each_seeing_what_the_previous_left():
    sections = fee_config(
        "no_show", "friends_and_family", "loyal_client",
        friends_and_family={"clients": ["ana@example.com"], "share": "50%"},
        loyal_client={"min_sessions": 1, "discount": "50%"},
    )
    world = World(**sections)
    first = world.appointment("e0", MONDAY - timedelta(days=7))
    world.happen(K.ATTENDED, first, first.start + timedelta(hours=3))
    planned = world.happen(K.NO_SHOW, world.appointment("e1", MONDAY), MONDAY)
    fee = next(a for a in planned if a.kind is ActionKind.CHARGE)
    assert fee.amount == nok(225)
    assert fee.reason.index("friends_and_family reduced it to 50%: 450.00 NOK") < fee.reason.index("loyal_client reduced it by 50% to 225.00 NOK")


class _Doubler:
    """A misbehaving third-party modifier: doubles fees, and makes some negative."""

    def __init__(self, negative: bool = False):
        self.negative = negative

    @hookimpl
    def slotguard_modify(self, proposal):
        amount = -proposal.amount if self.negative else proposal.amount + proposal.amount
        return proposal.with_amount(amount, "doubler changed it")


def _policy(plugin, name="doubler") -> Policy:
    from slotguard.policies.loading import _hooks_of, plugin_manager

    manager = plugin_manager()
    manager.register(plugin, name=name)
    return Policy(info=PolicyInfo(name=name, role="modifier"), config=None, hooks=_hooks_of(manager, plugin))


def test_safety_caps_a_fee_at_the_price_and_max_single_charge_and_never_lets_it_go_negative():
    world = World(extra_policies=[_policy(_Doubler())], **fee_config("no_show"))
    planned = world.happen(K.NO_SHOW, world.appointment("e1", MONDAY), MONDAY)
    fee = next(a for a in planned if a.kind is ActionKind.CHARGE)
    assert fee.amount == nok(900) and fee.reason.endswith("doubler changed it; safety: capped at the price 900.00 NOK")
    capped = World(extra_policies=[_policy(_Doubler())], payments={"max_single_charge": "500 NOK"}, **fee_config("no_show"))
    fee = next(a for a in capped.happen(K.NO_SHOW, capped.appointment("e1", MONDAY), MONDAY) if a.kind is ActionKind.CHARGE)
    assert fee.amount == nok(500) and "safety: capped at max_single_charge 500.00 NOK" in fee.reason
    negative = World(extra_policies=[_policy(_Doubler(negative=True))], **fee_config("no_show"))
    fee = next(a for a in negative.happen(K.NO_SHOW, negative.appointment("e1", MONDAY), MONDAY) if a.kind is not ActionKind.EMAIL)
    assert fee.kind is ActionKind.WAIVE and "safety: a negative amount became zero" in fee.reason


def test_a_fee_waits_for_review_while_a_deposit_is_taken_at_once():
    world = World(**fee_config("no_show", "deposit", deposit={"amount": "30%"}))
    booked_at = MONDAY - timedelta(days=3)
    _, planned = world.book("e1", MONDAY, at=booked_at)
    deposit = next(a for a in planned if a.kind is ActionKind.CHARGE)
    assert deposit.state is ActionState.PLANNED and deposit.due_at == booked_at and deposit.amount == nok(270)
    request = next(a for a in planned if a.template == "deposit_request")
    assert request.reports_on == deposit.id
    world.carry_out(booked_at)
    fee = next(a for a in world.happen(K.NO_SHOW, world.appointment("e1", MONDAY), MONDAY) if a.kind is ActionKind.CREDIT)
    # The window ends at 22:00, in the client's quiet hours: kept at 08:00, with its notice.
    assert fee.state is ActionState.PENDING_REVIEW and fee.due_at == MONDAY.replace(hour=8) + timedelta(days=1)


def test_money_is_given_back_at_most_once_whoever_asks():
    world = World(**fee_config("no_show", "deposit", "practitioner_cancel_refund", deposit={"amount": "30%"}))
    appointment, _ = world.book("e1", MONDAY)
    world.carry_out(MONDAY - timedelta(days=3))
    planned = world.happen(K.CANCELLED_BY_PRACTITIONER, appointment, MONDAY - timedelta(days=1))
    refunds = [a for a in planned if a.kind is ActionKind.REFUND]
    assert len(refunds) == 1 and refunds[0].amount == nok(270)
    assert [a.template for a in planned if a.kind is ActionKind.EMAIL] == ["refund_notice"]
    # A waive mark afterwards finds nothing left to give back.
    assert [a for a in world.happen(K.WAIVED, appointment, MONDAY) if a.kind is ActionKind.REFUND] == []


def test_a_waiver_cancels_a_kept_deposit_under_review_and_returns_the_whole_deposit():
    world = World(**fee_config("no_show", "deposit", deposit={"amount": "30%"}))
    appointment, _ = world.book("e1", MONDAY)
    world.carry_out(MONDAY - timedelta(days=3))
    world.happen(K.NO_SHOW, appointment, MONDAY)
    kept = world.one(ActionKind.CREDIT)
    rest = world.one(ActionKind.CHARGE, policy="no_show")
    planned = world.happen(K.WAIVED, appointment, MONDAY + timedelta(hours=2))
    assert world.ledger.action(kept.id).state is ActionState.WAIVED
    assert world.ledger.action(rest.id).state is ActionState.WAIVED
    refund = next(a for a in planned if a.kind is ActionKind.REFUND)
    assert refund.amount == nok(270) and refund.context["target_action_id"] == world.one(ActionKind.CHARGE, policy="deposit").id


def test_a_proposal_can_supersede_an_open_action_and_its_report_is_cancelled():
    world = World(**fee_config("late_cancel", "deposit", "reschedule_credit", deposit={"amount": "30%"}))
    first, _ = world.book("e1", MONDAY, at=MONDAY - timedelta(days=6))
    world.carry_out(MONDAY - timedelta(days=6))
    world.happen(K.CANCELLED_BY_CLIENT, first, MONDAY - timedelta(days=4))
    world.carry_out(MONDAY - timedelta(days=4))
    expiry = world.one(ActionKind.REFUND)
    assert expiry.state is ActionState.PLANNED and expiry.due_at == MONDAY + timedelta(days=3)
    notice = next(a for a in world.actions(kinds=[ActionKind.EMAIL]) if a.reports_on == expiry.id)
    _, planned = world.book("e2", MONDAY + timedelta(days=1), at=MONDAY - timedelta(days=2))
    assert not [a for a in planned if a.kind is ActionKind.CHARGE], "the credit pays the new deposit"
    assert world.ledger.action(expiry.id).state is ActionState.CANCELLED
    assert world.ledger.action(notice.id).state is ActionState.CANCELLED


def test_history_and_account_are_read_only_for_policies_that_ask_for_them():
    world = World(**fee_config("no_show"))
    calls = []
    original = world.ledger.history

    def history(email):
        calls.append(email)
        return original(email)

    world.ledger.history = history
    world.happen(K.NO_SHOW, world.appointment("e1", MONDAY), MONDAY)
    assert calls == []


def test_the_account_sees_deposits_by_event_whatever_the_start():
    world = World(**fee_config("no_show", "deposit", deposit={"amount": "30%"}))
    appointment, _ = world.book("e1", MONDAY)
    account = ClientAccount.from_actions("ana@example.com", world.actions(client_email="ana@example.com"))
    assert [entry.amount for entry in account.open_deposits(appointment.ref)] == [nok(270)]
    assert all(entry.kind is not ActionKind.EMAIL for entry in account.entries)


@pytest.mark.parametrize("kind", [K.BOOKED, K.ATTENDED, K.RESCHEDULED])
def test_no_fee_without_an_incident(kind):
    world = World(**fee_config("late_cancel", "no_show", "first_offense_grace", "loyal_client"))
    planned = world.happen(kind, world.appointment("e1", MONDAY + timedelta(days=1)), MONDAY)
    assert [a for a in planned if a.kind is not ActionKind.EMAIL] == []


def test_a_proposal_list_from_a_modifier_adds_its_extras_after_the_fee():
    class Note:
        @hookimpl
        def slotguard_modify(self, proposal):
            extra = Proposal(kind=ActionKind.CREDIT, policy="note", reason="note: remembered", slot="note")
            return [proposal.with_amount(proposal.amount, "note looked at it"), extra]

    world = World(extra_policies=[_policy(Note(), "note")], **fee_config("no_show"))
    planned = world.happen(K.NO_SHOW, world.appointment("e1", MONDAY), MONDAY)
    kinds = [a.kind for a in planned]
    assert kinds.index(ActionKind.CHARGE) < kinds.index(ActionKind.CREDIT)
    assert next(a for a in planned if a.kind is ActionKind.CHARGE).reason.endswith("note looked at it")
