"""Exactly once for the collections ladder's money: `main.py run --once` with the Stripe
provider (localstripe behind the proxy) is killed with SIGKILL before the call, after it
(Stripe has the PaymentIntent, the ledger does not) and after the commit, for the card retry
of a reminder step and for a payment plan's scheduled installment; the proxy forgets its
idempotency keys before every restart. Whatever the kill point, each retry and each
installment is one PaymentIntent in Stripe, and `reconcile` agrees with the ledger.

Three clients missed their appointments; their cards decline, so each fee is unpaid."""

from __future__ import annotations

import signal
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from slotguard.collections.debts import COLLECTIONS
from slotguard.domain.model import Action, ActionKind, ActionState, action_id_for
from slotguard.store.ledger import Ledger
from tests.support.stripe_fixtures import *  # noqa: F401,F403 - localstripe, proxy, admin client
from tests.support.stripe_fixtures import KEY_ENV, TEST_KEY, intents_for_action
from tests.support.stripe_practice import CLIENTS, NOW, command, main_process, write_practice

STAGES = ("before_call", "after_call", "after_commit")
DECLINES = "4000000000000341"
LADDER = """
[collections]
steps = [ { after = "1d", template = "payment_reminder_1", retry_charge = true },
          { after = "2d", template = "payment_final_notice", offer = "plan" },
          { after = "30d", action = "writeoff_or_refer" } ]
plan = { installments = 3, every = "1d", min_installment = "200 NOK" }
"""


def at(days: float) -> str:
    return (datetime.fromisoformat(NOW) + timedelta(days=days)).isoformat()


def run_once(config: Path, when: str, crash_at: str = "") -> subprocess.CompletedProcess:
    crash = {"SLOTGUARD_CRASH_AT": crash_at} if crash_at else {}
    return main_process(config, "run", "--once", "--now", when, **crash)


def ledger_of(config: Path) -> Ledger:
    return Ledger(config.parent / "var" / "ledger.sqlite3")


def stored(config: Path, action_id: str) -> Action:
    ledger = ledger_of(config)
    try:
        return ledger.action(action_id)
    finally:
        ledger.close()


def fees(config: Path) -> list[Action]:
    """The three fees, in the order the ladder takes them (and so carries out their actions)."""
    ledger = ledger_of(config)
    try:
        found = [a for a in ledger.actions(kinds=[ActionKind.CHARGE]) if a.policy != COLLECTIONS]
    finally:
        ledger.close()
    return sorted(found, key=lambda fee: (fee.executed_at, fee.id))


def collection_id(fee: Action, slot: str) -> str:
    return action_id_for(f"collections/{fee.id}", COLLECTIONS, "charge", slot)


def set_default_card(admin, email: str, card: str) -> None:
    [customer] = [c for c in admin.v1.customers.list({"email": email}).data if c.to_dict().get("metadata", {}).get("slotguard_client") == email]
    if not card.startswith("pm_"):
        card = admin.v1.payment_methods.create({"type": "card", "card": {"number": card, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}).id
    attached = admin.v1.payment_methods.attach(card, {"customer": customer.id})
    admin.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": attached.id}})


def crash_each_step(config: Path, when: str, targets: list[str], stripe_proxy, admin) -> None:
    """One run killed per step, each at the next target; then a clean run."""
    for stage, target in zip(STAGES, targets):
        crashed = run_once(config, when, f"{stage}:{target}")
        assert crashed.returncode == -signal.SIGKILL, f"{stage}: the run was not killed\n{crashed.stdout}\n{crashed.stderr}"
        left = stored(config, target)
        assert left.state is (ActionState.DONE if stage == "after_commit" else ActionState.EXECUTING), stage
        assert len(intents_for_action(admin, target)) == (0 if stage == "before_call" else 1), stage
        stripe_proxy.forget_idempotency()
    restarted = run_once(config, when)
    assert restarted.returncode == 0, restarted.stderr


def recovered(config: Path, action_id: str) -> bool:
    ledger = ledger_of(config)
    try:
        return any("interrupted while executing" in entry["note"] for entry in ledger.action_log(action_id))
    finally:
        ledger.close()


@pytest.fixture
def practice(tmp_path, stripe_proxy, stripe_client_with_card, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_KEY)
    for email, name in CLIENTS:
        stripe_client_with_card(email, card=DECLINES, name=name)
    config = write_practice(tmp_path, stripe_proxy.base_url, clients=CLIENTS)
    config.write_text(config.read_text() + LADDER)
    first = run_once(config, NOW)
    assert first.returncode == 0, first.stderr
    assert [fee.context["payment_status"] for fee in fees(config)] == ["unpaid"] * 3
    return config


def test_card_retries_are_made_exactly_once_when_killed_at_each_step(practice, stripe_proxy, stripe_admin, capsys):
    for email, _ in CLIENTS:
        set_default_card(stripe_admin, email, "pm_card_visa")  # the clients fixed their cards
    retries = [collection_id(fee, "step0-retry") for fee in fees(practice)]
    creates_before = len(stripe_proxy.requests("POST", r"/v1/payment_intents"))
    crash_each_step(practice, at(1), retries, stripe_proxy, stripe_admin)

    for retry_id, stage in zip(retries, STAGES):
        [intent] = intents_for_action(stripe_admin, retry_id)
        assert (intent["status"], intent["amount"]) == ("succeeded", 90000), stage
        retry = stored(practice, retry_id)
        assert (retry.state, retry.external_id, retry.context["payment_status"]) == (ActionState.DONE, intent["id"], "paid"), stage
        assert recovered(practice, retry_id) == (stage != "after_commit"), stage
    assert len(stripe_proxy.requests("POST", r"/v1/payment_intents")) - creates_before == 3, "one create request per retry in all"

    assert run_once(practice, at(1.1)).returncode == 0
    assert [fee.context["payment_status"] for fee in fees(practice)] == ["settled"] * 3
    outbox = sorted(path.name for path in (practice.parent / "outbox").glob("*.eml"))
    ledger = ledger_of(practice)
    try:
        emails = {a.template: a for a in ledger.actions(kinds=[ActionKind.EMAIL]) if a.policy == COLLECTIONS and a.state is ActionState.DONE}
        assert set(emails) == {"payment_receipt"}, "the retries took the money: no reminder went, a receipt did"
    finally:
        ledger.close()
    assert len([name for name in outbox if name.startswith("act_")]) >= 3
    assert command(practice, "reconcile", "--from", "2000-01-01", "--to", "2100-12-31") == 0, capsys.readouterr().out


def test_installments_are_charged_exactly_once_when_killed_at_each_step(practice, stripe_proxy, stripe_admin, capsys):
    assert run_once(practice, at(1)).returncode == 0  # reminder 1; the retry is declined too
    assert run_once(practice, at(2)).returncode == 0  # the final notice offers a plan
    ledger = ledger_of(practice)
    try:
        notices = [a for a in ledger.actions(kinds=[ActionKind.EMAIL]) if a.template == "payment_final_notice"]
    finally:
        ledger.close()
    assert len(notices) == 3 and all(n.state is ActionState.DONE for n in notices)
    for notice in notices:  # each client pays the first installment through the link, saving a working card
        link = notice.context["offer"]["payment_link"]
        session = stripe_proxy.complete_checkout(link.rstrip("/").rsplit("/", 1)[-1], "pm_card_visa")
        assert session.get("status") == "complete", session
    for email, _ in CLIENTS:
        set_default_card(stripe_admin, email, "pm_card_visa")
    assert run_once(practice, at(2.05)).returncode == 0  # polling: the first installments are paid
    assert run_once(practice, at(2.1)).returncode == 0  # the plans are accepted: installments 2 and 3 scheduled
    seconds = [collection_id(fee, "plan1-2") for fee in fees(practice)]
    assert [stored(practice, i).state for i in seconds] == [ActionState.PLANNED] * 3

    crash_each_step(practice, at(3), seconds, stripe_proxy, stripe_admin)
    for installment_id, stage in zip(seconds, STAGES):
        [intent] = intents_for_action(stripe_admin, installment_id)
        assert (intent["status"], intent["amount"]) == ("succeeded", 30000), stage
        assert stored(practice, installment_id).context["payment_status"] == "paid", stage

    assert run_once(practice, at(4)).returncode == 0  # the third installments
    assert run_once(practice, at(4.1)).returncode == 0  # settled: receipts
    for fee in fees(practice):
        assert fee.context["payment_status"] == "settled"
        [third] = intents_for_action(stripe_admin, collection_id(fee, "plan1-3"))
        assert (third["status"], third["amount"]) == ("succeeded", 30000)
    assert command(practice, "reconcile", "--from", "2000-01-01", "--to", "2100-12-31") == 0, capsys.readouterr().out
