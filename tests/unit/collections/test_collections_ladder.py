"""The collections ladder's pure decisions (slotguard/collections/ladder.py `evaluate`):
given a fee, the actions about it and `now`, what is planned, cancelled and superseded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from slotguard.collections.debts import COLLECTIONS, Capabilities, Decision, split, status
from slotguard.collections.decide import evaluate
from slotguard.collections.views import payable
from slotguard.config.schema import Collections
from slotguard.domain.model import Action, ActionKind, ActionState
from slotguard.domain.money import Money
from tests.support.builders import settings as make_settings

T0 = datetime(2026, 3, 5, 1, 0, tzinfo=UTC)  # when the fee became unpaid
NOK = "NOK"
STRIPE = Capabilities(links=True)
LENA = ("lena@example.com", "Lena Berg Massage")
LADDER = {
    "steps": [
        {"after": "3d", "template": "payment_reminder_1"},
        {"after": "14d", "template": "payment_reminder_2", "retry_charge": True},
        {"after": "30d", "template": "payment_final_notice", "offer": "plan"},
        {"after": "45d", "action": "writeoff_or_refer"},
    ],
    "plan": {"installments": 3, "every": "30d", "min_installment": "200 NOK"},
    "settlement": {"discount": "20%", "valid_for": "14d"},
    "writeoff_below": "150 NOK",
    "collection_cost": "30%",
}


def config(**changes) -> Collections:
    return make_settings(collections={**LADDER, **changes}).collections


def fee(amount: int = 90000, payment_status: str = "receivable") -> Action:
    return Action(
        id="act_fee", kind=ActionKind.CHARGE, state=ActionState.DONE, policy="no_show", reason="no_show proposed",
        calendar_id="primary", event_id="a1", client_email="ana@example.com", client_name="Ana", happening_key="h",
        due_at=T0, created_at=T0 - timedelta(hours=12), updated_at=T0, amount=Money(amount, NOK), executed_at=T0,
        appointment_start=T0 - timedelta(hours=16), context={"payment_status": payment_status},
    )


class Ledger:
    """The actions about one fee, with `evaluate`'s decisions applied as the engine would
    (new actions stored; emails and charges due carried out by a provider that records)."""

    def __init__(self, the_fee: Action, cfg: Collections | None = None, caps: Capabilities = Capabilities()):
        self.fee, self.cfg, self.caps = the_fee, cfg or config(), caps
        self.actions: list[Action] = []

    def evaluate(self, now: datetime) -> Decision:
        return evaluate(self.fee, self.actions, self.cfg, now, self.caps, LENA)

    def tick(self, now: datetime, card_works: bool = False) -> Decision:
        decision = self.evaluate(now)
        self.actions += decision.new
        by_id = {a.id: a for a in self.actions}
        for action_id in decision.cancel:
            by_id[action_id].state = ActionState.CANCELLED
        for action_id in decision.supersede:
            by_id[action_id].state = ActionState.CANCELLED
            by_id[action_id].context["payment_status"] = "superseded"
        if decision.close_fee:
            self.fee.context["payment_status"] = decision.close_fee
        for action in self.actions:  # the executor
            if action.state is ActionState.PLANNED and action.due_at <= now:
                action.state, action.executed_at = ActionState.DONE, now
                if action.kind is ActionKind.CHARGE:
                    action.context["payment_status"] = "paid" if card_works else ("unpaid" if self.caps.links else "receivable")
        return decision

    def of(self, **match) -> list[Action]:
        return [a for a in self.actions if all((a.template if k == "template" else a.context.get(k)) == v for k, v in match.items())]

    def pay(self, action: Action) -> None:
        action.context["payment_status"] = "paid"


def test_nothing_before_the_first_step_then_one_email_with_a_stable_id():
    ledger = Ledger(fee())
    early = ledger.tick(T0 + timedelta(days=2))
    assert early.new == [] and early.next_at == T0 + timedelta(days=3)
    first = ledger.tick(T0 + timedelta(days=3))
    [email] = first.new
    assert (email.kind, email.template, email.reports_on, email.policy) == (ActionKind.EMAIL, "payment_reminder_1", "act_fee", COLLECTIONS)
    assert email.context["balance"] == {"minor": 90000, "currency": NOK} and email.context["days_overdue"] == 3
    assert "900.00 NOK unpaid for 3 days" in email.reason
    again = Ledger(fee()).evaluate(T0 + timedelta(days=3))
    assert [a.id for a in again.new] == [email.id], "the same debt and step give the same id: planned once, ever"
    assert ledger.tick(T0 + timedelta(days=3, hours=1)).new == []


def test_a_ladder_started_late_sends_one_step_at_a_time_and_keeps_the_gaps():
    ledger = Ledger(fee())
    late = T0 + timedelta(days=20)  # Slotguard was off: steps 1 and 2 are both overdue
    assert [a.template for a in ledger.tick(late).new] == ["payment_reminder_1"]
    assert ledger.tick(late + timedelta(days=10)).new == [], "step 2 comes 11 days after step 1 was sent, not at once"
    assert [a.template for a in ledger.tick(late + timedelta(days=11)).new if a.kind is ActionKind.EMAIL] == ["payment_reminder_2"]


def test_a_retry_of_the_card_only_where_the_provider_charges_cards_and_the_email_waits_for_it():
    stripe = Ledger(fee(payment_status="unpaid"), caps=STRIPE)
    stripe.tick(T0 + timedelta(days=3))
    decision = stripe.tick(T0 + timedelta(days=14))
    [retry] = [a for a in decision.new if a.kind is ActionKind.CHARGE]
    [email] = [a for a in decision.new if a.kind is ActionKind.EMAIL]
    assert retry.amount == Money(90000, NOK) and retry.context["role"] == "retry" and email.reports_on == retry.id
    assert email.context["retried"] is True
    record_only = Ledger(fee())
    record_only.tick(T0 + timedelta(days=3))
    assert [a.kind for a in record_only.tick(T0 + timedelta(days=14)).new] == [ActionKind.EMAIL]


def test_the_ladder_stops_at_once_when_the_client_pays_and_a_receipt_goes_once():
    ledger = Ledger(fee(payment_status="unpaid"), caps=STRIPE)
    ledger.tick(T0 + timedelta(days=3))
    decision = ledger.evaluate(T0 + timedelta(days=14))
    ledger.actions += decision.new  # step 2 planned: a retry and an email, not carried out yet
    ledger.fee.context["payment_status"] = "paid"  # a webhook: the client paid through the link
    closed = ledger.tick(T0 + timedelta(days=14, minutes=1))
    assert closed.state == "settled" and closed.balance.is_zero
    assert set(closed.cancel) == {a.id for a in decision.new}, "the planned retry and reminder are cancelled"
    [receipt] = closed.new
    assert receipt.template == "payment_receipt" and receipt.context["paid_total"] == {"minor": 90000, "currency": NOK}
    assert ledger.tick(T0 + timedelta(days=60)).new == [], "one receipt; nothing else ever"


def test_a_payment_before_any_reminder_needs_no_receipt_from_the_ladder():
    ledger = Ledger(fee())
    ledger.fee.context["payment_status"] = "paid"
    assert ledger.tick(T0 + timedelta(days=5)).new == []


def test_a_refund_or_credit_covering_the_fee_stops_the_ladder_without_a_receipt():
    ledger = Ledger(fee())
    ledger.tick(T0 + timedelta(days=3))
    refund = fee()
    refund.id, refund.kind, refund.state, refund.context = "act_refund", ActionKind.REFUND, ActionState.FAILED, {"target_action_id": "act_fee"}
    ledger.actions.append(refund)  # failed (nothing was captured): the practitioner's wish still counts
    decision = ledger.tick(T0 + timedelta(days=14))
    assert decision.state == "waived" and decision.new == [] and not decision.close_fee


@pytest.mark.parametrize(("balance", "parts", "minimum", "expected"), [
    (90000, 3, None, [30000, 30000, 30000]),
    (100000, 3, None, [33334, 33333, 33333]),
    (90000, 3, 40000, [45000, 45000]),
    (15000, 3, 10000, []),
    (900, 3, None, [300, 300, 300]),
])
def test_a_balance_is_split_into_installments_that_add_up(balance, parts, minimum, expected):
    result = split(Money(balance, NOK), parts, Money(minimum, NOK) if minimum else None)
    assert [m.minor for m in result] == expected
    assert sum(m.minor for m in result) in (0, balance)


def _ladder_until_the_end(the_fee: Action, cfg: Collections | None = None) -> Ledger:
    ledger = Ledger(the_fee, cfg)
    for day in range(0, 80):
        ledger.tick(T0 + timedelta(days=day))
    return ledger


def test_the_last_step_writes_off_a_small_balance_and_says_why():
    ledger = _ladder_until_the_end(fee(12000))
    [writeoff] = [a for a in ledger.actions if a.kind is ActionKind.WRITEOFF]
    assert writeoff.amount == Money(12000, NOK) and "below writeoff_below 150.00 NOK" in writeoff.reason
    assert ledger.fee.context["payment_status"] == "written_off"
    assert not ledger.of(template="payment_referral")


def test_the_last_step_writes_off_when_an_agency_would_leave_too_little_and_shows_the_computation():
    ledger = _ladder_until_the_end(fee(20000), config(collection_cost="150 NOK"))
    [writeoff] = [a for a in ledger.actions if a.kind is ActionKind.WRITEOFF]
    assert "referring it would cost about 150.00 NOK (150.00 NOK collection cost) and recover about 50.00 NOK, below writeoff_below" in writeoff.reason


def test_the_last_step_refers_a_balance_worth_collecting_to_the_practitioner():
    ledger = _ladder_until_the_end(fee(90000))
    [referral] = ledger.of(template="payment_referral")
    assert referral.client_email == "lena@example.com" and referral.reports_on == "act_fee"
    assert "recover about 630.00 NOK, at least writeoff_below 150.00 NOK: refer it" in referral.reason
    assert referral.context["recovery"] == {"minor": 63000, "currency": NOK}
    assert not [a for a in ledger.actions if a.kind is ActionKind.WRITEOFF]
    assert ledger.evaluate(T0 + timedelta(days=200)).state == "referred"


def test_a_settlement_paid_in_time_writes_off_the_rest_as_offered():
    steps = [{"after": "3d", "template": "payment_reminder_1", "offer": "settlement"}]
    ledger = Ledger(fee(90000), config(steps=steps))
    ledger.tick(T0 + timedelta(days=3))
    [offer] = ledger.of(role="settlement")
    assert offer.amount == Money(72000, NOK) and status(offer) == "receivable"
    ledger.pay(offer)
    decision = ledger.tick(T0 + timedelta(days=10))
    [writeoff, receipt] = decision.new
    assert writeoff.amount == Money(18000, NOK) and "settlement accepted" in writeoff.reason
    assert receipt.context["written_off"] == {"minor": 18000, "currency": NOK}
    assert ledger.fee.context["payment_status"] == "settled"


def test_a_settlement_offer_ends_at_its_deadline():
    steps = [{"after": "3d", "template": "payment_reminder_1", "offer": "settlement"}]
    ledger = Ledger(fee(90000), config(steps=steps))
    ledger.tick(T0 + timedelta(days=3))
    ledger.tick(T0 + timedelta(days=16, hours=23))
    [offer] = ledger.of(role="settlement")
    assert status(offer) == "receivable"
    ledger.tick(T0 + timedelta(days=17))
    assert (offer.state, status(offer)) == (ActionState.CANCELLED, "superseded")


def test_a_plan_accepted_is_charged_on_schedule_and_pauses_the_ladder():
    ledger = Ledger(fee(90000, "unpaid"), caps=STRIPE)
    for day in (3, 14, 30):
        ledger.tick(T0 + timedelta(days=day))
    [first] = ledger.of(role="installment")
    ledger.pay(first)
    decision = ledger.tick(T0 + timedelta(days=31))
    charges = [a for a in decision.new if a.kind is ActionKind.CHARGE]
    assert [(c.context["installment"], c.due_at - T0) for c in charges] == [(2, timedelta(days=60)), (3, timedelta(days=90))]
    assert decision.state == "plan" and decision.plan == {"paid": 1, "of": 3}
    ledger.tick(T0 + timedelta(days=60), card_works=True)
    assert not ledger.of(template="payment_referral") and not [a for a in ledger.actions if a.kind is ActionKind.WRITEOFF], "paused"
    ledger.tick(T0 + timedelta(days=90), card_works=True)
    final = ledger.tick(T0 + timedelta(days=90, hours=1))
    assert final.state == "settled" and [a.template for a in final.new] == ["payment_receipt"]


def test_a_missed_installment_ends_the_plan_and_the_ladder_resumes_for_the_rest():
    ledger = Ledger(fee(90000))
    for day in (3, 14, 30):
        ledger.tick(T0 + timedelta(days=day))
    ledger.pay(ledger.of(role="installment")[0])
    ledger.tick(T0 + timedelta(days=31))
    ledger.tick(T0 + timedelta(days=60))  # installment 2 becomes a receivable, never paid
    assert ledger.tick(T0 + timedelta(days=89)).new == []
    broken = ledger.tick(T0 + timedelta(days=90))  # 30 days after it was due
    [third] = [a for a in ledger.of(role="installment") if a.context["installment"] == 3]
    [second] = [a for a in ledger.of(role="installment") if a.context["installment"] == 2]
    assert third.state is ActionState.CANCELLED and (second.state, status(second)) == (ActionState.CANCELLED, "superseded")
    assert broken.next_at == T0 + timedelta(days=90 + 15), "the gap from the plan's step to the next is kept"
    resumed = ledger.tick(T0 + timedelta(days=105))
    [rest] = [a for a in resumed.new if a.context.get("role") == "rest"]
    assert rest.amount == Money(60000, NOK)
    assert [a.template for a in resumed.new if a.kind is ActionKind.EMAIL] == ["payment_referral"]


def test_the_payment_a_client_makes_settles_the_offer_first_then_the_next_installment_then_the_fee():
    ledger = Ledger(fee(90000))
    assert payable([ledger.fee]) is ledger.fee
    for day in (3, 14, 30):
        ledger.tick(T0 + timedelta(days=day))
    [first] = ledger.of(role="installment")
    assert payable([ledger.fee, *ledger.actions]) is first
    assert payable([ledger.fee, *ledger.actions], "fee") is ledger.fee
    assert payable([ledger.fee, *ledger.actions], "settlement") is None


@hypothesis_settings(max_examples=60, deadline=None)
@given(
    amount=st.integers(min_value=1000, max_value=500000),
    days=st.lists(st.integers(min_value=0, max_value=200), min_size=1, max_size=12),
    paid_on=st.one_of(st.none(), st.integers(min_value=0, max_value=200)),
    stripe=st.booleans(),
)
def test_evaluating_twice_changes_nothing_and_a_paid_debt_is_never_chased(amount, days, paid_on, stripe):
    ledger = Ledger(fee(amount, "unpaid" if stripe else "receivable"), caps=STRIPE if stripe else Capabilities())
    paid_at = None
    for day in sorted(set(days)):
        now = T0 + timedelta(days=day)
        if paid_on is not None and paid_at is None and day >= paid_on:
            ledger.fee.context["payment_status"] = "paid"
            paid_at = now
        ledger.tick(now)
        again = ledger.evaluate(now)
        assert again.new == [] and again.cancel == {}, "the same ledger and time plan nothing twice"
        steps = [a for a in ledger.actions if a.context.get("role") == "step"]
        assert len({a.context["step"] for a in steps}) == len(steps), "each step at most once"
    if paid_at is not None:
        chased = [a for a in ledger.actions if a.created_at >= paid_at and a.context.get("role") != "receipt"]
        assert chased == []
        assert all(a.state is not ActionState.PLANNED for a in ledger.actions if a.context.get("chases"))


def test_a_fee_waived_after_a_part_was_paid_gets_no_receipt():
    ledger = Ledger(fee(90000))
    for day in (3, 14, 30):
        ledger.tick(T0 + timedelta(days=day))
    ledger.pay(ledger.of(role="installment")[0])
    ledger.tick(T0 + timedelta(days=31))
    refund = fee()
    refund.id, refund.kind, refund.context = "act_refund", ActionKind.REFUND, {"target_action_id": "act_fee"}
    ledger.actions.append(refund)  # the practitioner waived it (#waive): the receivable is cancelled
    decision = ledger.tick(T0 + timedelta(days=32))
    assert decision.state == "waived" and decision.new == [] and not decision.close_fee
    assert all(a.state is ActionState.CANCELLED for a in ledger.of(role="installment") if a.context["installment"] > 1)
