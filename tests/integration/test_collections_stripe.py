"""The collections ladder with the Stripe provider against localstripe (behind the
gap-filling proxy): reminders carry a working payment link, the card retry at step 2 takes
the money exactly once and stops the ladder, a plan's installments are charged on schedule
from the card the client saved when paying the first one."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from integration.memory import MemoryCalendar, MemoryMailer
from integration.stripe_reconcile import reconcile
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import ActionKind, ActionState
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import event
from tests.support.builders import settings as practice_settings
from tests.support.stripe_fixtures import KEY_ENV, intents_for_action

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
WEDNESDAY_10 = datetime(2026, 3, 4, 10, 0, tzinfo=OSLO)
DECLINES = "4000000000000341"  # attaches, then every charge is declined


class StripePractice:
    def __init__(self, tmp_path, proxy, provider, steps):
        self.settings = practice_settings(
            payments={"provider": "stripe", "secret_key": {"env": KEY_ENV}, "api_base": proxy.base_url, "review_window": "0m"},
            collections={"steps": steps, "plan": {"installments": 3, "every": "30d", "min_installment": "200 NOK"}, "writeoff_below": "150 NOK"},
        )
        self.proxy, self.provider = proxy, provider
        self.calendar = MemoryCalendar("primary")
        self.mailer = MemoryMailer()
        self.ledger = Ledger(tmp_path / "ledger.sqlite3")
        self.engine = build_engine(self.settings, MONDAY, ledger=self.ledger, calendars=[(self.calendar, NullWriteBack())],
                                   provider=provider, mailer=self.mailer)
        self.calendar.put(event("e1", WEDNESDAY_10), MONDAY)
        self.engine.tick(MONDAY)
        self.calendar.put(event("e1", WEDNESDAY_10, color="11"), WEDNESDAY_10 + timedelta(hours=1))
        self.engine.tick(WEDNESDAY_10 + timedelta(hours=1))
        [self.fee] = self.ledger.actions(kinds=[ActionKind.CHARGE])
        assert self.fee.context["payment_status"] == "unpaid", self.fee.context
        self.since = self.fee.executed_at

    def tick(self, days: float):
        return self.engine.tick(self.since + timedelta(days=days))

    def emails(self, template: str):
        return [a for a in self.ledger.actions(kinds=[ActionKind.EMAIL]) if a.template == template]

    def text(self, action) -> str:
        return self.mailer.sent[action.id].get_body(("plain",)).get_content()

    def collection_charges(self, role: str):
        return [a for a in self.ledger.actions(kinds=[ActionKind.CHARGE]) if a.context.get("role") == role]


def give_card(admin, email: str, card: str = "pm_card_visa") -> None:
    """The client saves a working card (as the default) on the customer Slotguard made."""
    [customer] = admin.v1.customers.list({"email": email}).data
    if not card.startswith("pm_"):
        card = admin.v1.payment_methods.create({"type": "card", "card": {"number": card, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}).id
    attached = admin.v1.payment_methods.attach(card, {"customer": customer.id})
    admin.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": attached.id}})


def session_of(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[-1]


@pytest.fixture
def ladder_practice(tmp_path, stripe_settings, stripe_proxy, stripe_provider):
    stripe_settings()  # the key in the environment

    def make(steps):
        return StripePractice(tmp_path, stripe_proxy, stripe_provider, steps)

    return make


def test_the_card_retry_at_step_2_takes_the_money_once_and_the_ladder_stops(ladder_practice, stripe_admin, stripe_proxy):
    practice = ladder_practice([
        {"after": "3d", "template": "payment_reminder_1"},
        {"after": "14d", "template": "payment_reminder_2", "retry_charge": True},
        {"after": "30d", "template": "payment_final_notice"},
    ])
    practice.tick(3)
    [first] = practice.emails("payment_reminder_1")
    link = first.context["payment_link"]
    assert link and link in practice.text(first), "the reminder carries a fresh link for the fee"
    [session] = [s for s in stripe_admin_sessions(stripe_proxy) if s["id"] == session_of(link)]
    assert session["metadata"]["slotguard_action_id"] == practice.fee.id and session["amount_total"] == 90000

    give_card(stripe_admin, "ana@example.com")  # the client saved a card meanwhile
    practice.tick(14)
    [retry] = practice.collection_charges("retry")
    assert (retry.state, retry.context["payment_status"]) == (ActionState.DONE, "paid")
    [intent] = intents_for_action(stripe_admin, retry.id)
    assert (intent["status"], intent["amount"]) == ("succeeded", 90000)
    [second] = practice.emails("payment_reminder_2")
    assert second.state is ActionState.CANCELLED and second.id not in practice.mailer.sent, "no reminder once the retry took the money"

    practice.tick(14.25)
    assert practice.ledger.action(practice.fee.id).context["payment_status"] == "settled"
    [receipt] = practice.emails("payment_receipt")
    assert receipt.state is ActionState.DONE and "900.00" in practice.text(receipt)
    creates = len(stripe_proxy.requests("POST", r"/v1/payment_intents"))
    for day in (15, 30, 31):
        practice.tick(day)
    assert not practice.emails("payment_final_notice"), "the ladder stopped"
    assert len(stripe_proxy.requests("POST", r"/v1/payment_intents")) == creates, "nothing charged again"
    result = reconcile(practice.ledger, practice.provider, practice.since - timedelta(days=400), practice.since + timedelta(days=400))
    assert result.mismatches == [], result.mismatches


def test_a_declined_retry_leaves_the_reminder_with_a_link_for_the_balance(ladder_practice, stripe_admin):
    practice = ladder_practice([{"after": "14d", "template": "payment_reminder_2", "retry_charge": True}])
    give_card(stripe_admin, "ana@example.com", DECLINES)
    practice.tick(14)
    [retry] = practice.collection_charges("retry")
    assert retry.context["payment_status"] == "unpaid"
    [reminder] = practice.emails("payment_reminder_2")
    assert reminder.state is ActionState.DONE
    text = practice.text(reminder)
    assert "We tried the card you have on file once more" in text and reminder.context["payment_link"] in text
    practice.tick(14.5)
    assert len(intents_for_action(stripe_admin, retry.id)) == 1, "one attempt for the step, never again"


def test_a_plan_accepted_through_the_link_is_charged_on_schedule(ladder_practice, stripe_admin, stripe_proxy):
    practice = ladder_practice([
        {"after": "30d", "template": "payment_final_notice", "offer": "plan"},
        {"after": "45d", "action": "writeoff_or_refer"},
    ])
    practice.tick(30)
    [notice] = practice.emails("payment_final_notice")
    offer_link = notice.context["offer"]["payment_link"]
    assert offer_link in practice.text(notice) and notice.context["payment_link"] != offer_link
    stripe_proxy.complete_checkout(session_of(offer_link), "pm_card_visa")  # pays the first 300 NOK; the card is saved
    give_card(stripe_admin, "ana@example.com")
    practice.tick(30.25)  # polling finds the first installment paid
    [first] = [a for a in practice.collection_charges("installment") if a.context["installment"] == 1]
    assert first.context["payment_status"] == "paid"
    practice.tick(30.5)  # the plan is accepted: installments 2 and 3 scheduled
    later = {a.context["installment"]: a for a in practice.collection_charges("installment") if a.context["installment"] > 1}
    assert [(n, a.state, a.amount.minor) for n, a in sorted(later.items())] == [(2, ActionState.PLANNED, 30000), (3, ActionState.PLANNED, 30000)]
    for day in (45, 60, 61, 90, 90.25):
        practice.tick(day)
    for number in (2, 3):
        [intent] = intents_for_action(stripe_admin, later[number].id)
        assert (intent["status"], intent["amount"]) == ("succeeded", 30000)
    assert [a.state for a in practice.emails("payment_plan_installment")] == [ActionState.DONE, ActionState.CANCELLED]
    assert not practice.emails("payment_referral"), "the ladder waited while the plan ran"
    assert practice.ledger.action(practice.fee.id).context["payment_status"] == "settled"
    assert [a.state for a in practice.emails("payment_receipt")] == [ActionState.DONE]


def stripe_admin_sessions(proxy) -> list[dict]:
    with proxy._lock:
        return [session.public for session in proxy.sessions.values()]
