"""Exactly once under crashes: `main.py run --once` on a real config with the Stripe
provider (localstripe behind the gap-filling proxy) is killed with SIGKILL at each step of a
charge and of a refund, then started again.

The steps (SLOTGUARD_CRASH_AT=STAGE:ACTION_ID, see slotguard/run/engine.py _crash_point):
  before_call   the action is committed as `executing`, nothing was sent to Stripe
  after_call    Stripe made the PaymentIntent / Refund, the ledger never heard of it
  after_commit  the ledger says done, the process dies before finishing the tick

Three clients missed their appointments; the fee of the first is interrupted before the
call, the second after it, the third after the commit, each run recovering what the
previous one left (and the refunds the same way once the fees are waived). Before every
restart the proxy forgets idempotency keys (Stripe forgets them after 24 hours, localstripe
ignores them), so only the metadata lookup stands between a restart and a second charge.
What the practitioner relies on: one PaymentIntent per fee, one Refund per refund, and a
ledger that `main.py reconcile` finds in agreement with Stripe.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from slotguard.domain.model import Action, ActionKind, ActionState
from slotguard.store.ledger import Ledger
from tests.support.stripe_fixtures import *  # noqa: F401,F403 - localstripe, proxy, admin client
from tests.support.stripe_fixtures import KEY_ENV, TEST_KEY, intents_for_action, refunds_for
from tests.support.stripe_practice import CLIENTS, NOW, command, main_process, write_practice

STAGES = ("before_call", "after_call", "after_commit")
EVERYTHING = ("--from", "2000-01-01", "--to", "2100-12-31")


def run_once(config: Path, crash_at: str = "") -> subprocess.CompletedProcess:
    crash = {"SLOTGUARD_CRASH_AT": crash_at} if crash_at else {}
    return main_process(config, "run", "--once", "--now", NOW, **crash)


def actions(config: Path, kind: ActionKind) -> list[Action]:
    ledger = Ledger(config.parent / "var" / "ledger.sqlite3")
    try:
        return ledger.actions(kinds=[kind])
    finally:
        ledger.close()


def recovered(config: Path, action: Action) -> bool:
    ledger = Ledger(config.parent / "var" / "ledger.sqlite3")
    try:
        return any("interrupted while executing" in entry["note"] for entry in ledger.action_log(action.id))
    finally:
        ledger.close()


def crash_each_step(config: Path, targets: list[Action], stripe_proxy, objects_for) -> None:
    """Kill one run per step, each at the next target; check what the kill left behind."""
    for stage, target in zip(STAGES, targets):
        crashed = run_once(config, f"{stage}:{target.id}")
        assert crashed.returncode == -signal.SIGKILL, f"{stage}: the run was not killed\n{crashed.stdout}\n{crashed.stderr}"
        [left] = [a for a in actions(config, target.kind) if a.id == target.id]
        assert left.state is (ActionState.DONE if stage == "after_commit" else ActionState.EXECUTING), stage
        assert len(objects_for(left)) == (0 if stage == "before_call" else 1), stage
        stripe_proxy.forget_idempotency()
    restarted = run_once(config)
    assert restarted.returncode == 0, restarted.stderr


@pytest.fixture
def practice(tmp_path, stripe_proxy, stripe_client_with_card, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_KEY)
    for email, name in CLIENTS:
        stripe_client_with_card(email, name=name)
    return write_practice(tmp_path, stripe_proxy.base_url, clients=CLIENTS)


def test_fees_are_charged_exactly_once_when_killed_at_each_step(practice, stripe_proxy, stripe_admin, capsys):
    # The first run plans the three fees and dies before charging the first.
    first = run_once(practice, "before_call:charge")
    assert first.returncode == -signal.SIGKILL, first.stderr
    fees = actions(practice, ActionKind.CHARGE)
    assert len(fees) == 3 and sum(fee.state is ActionState.EXECUTING for fee in fees) == 1
    fees.sort(key=lambda fee: fee.state is not ActionState.EXECUTING)  # the interrupted one first
    assert intents_for_action(stripe_admin, fees[0].id) == []
    stripe_proxy.forget_idempotency()

    def intents(fee):
        return intents_for_action(stripe_admin, fee.id)

    # The second fee: Stripe took the money, the ledger does not know yet; reconcile says so.
    crashed = run_once(practice, f"after_call:{fees[1].id}")
    assert crashed.returncode == -signal.SIGKILL
    assert len(intents(fees[1])) == 1 and [a.state for a in actions(practice, ActionKind.CHARGE) if a.id == fees[1].id] == [ActionState.EXECUTING]
    assert command(practice, "reconcile", *EVERYTHING) == 1
    assert fees[1].id in capsys.readouterr().out
    stripe_proxy.forget_idempotency()
    # The third: done in the ledger, killed before the tick ends.
    crashed = run_once(practice, f"after_commit:{fees[2].id}")
    assert crashed.returncode == -signal.SIGKILL
    assert [a.state for a in actions(practice, ActionKind.CHARGE) if a.id == fees[2].id] == [ActionState.DONE]
    stripe_proxy.forget_idempotency()
    assert run_once(practice).returncode == 0

    for fee, stage in zip(fees, STAGES):
        [intent] = intents(fee)
        assert (intent["status"], intent["amount"], intent["currency"]) == ("succeeded", 90000, "nok"), stage
        [stored] = [a for a in actions(practice, ActionKind.CHARGE) if a.id == fee.id]
        assert (stored.state, stored.external_id, stored.context["payment_status"]) == (ActionState.DONE, intent["id"], "paid"), stage
        assert recovered(practice, fee) == (stage != "after_commit"), stage
    assert len(stripe_proxy.requests("POST", r"/v1/payment_intents")) == 3, "one create request per fee in all"
    assert command(practice, "reconcile", *EVERYTHING) == 0, capsys.readouterr().out


def test_refunds_are_made_exactly_once_when_killed_at_each_step(practice, stripe_proxy, stripe_admin, capsys):
    assert run_once(practice).returncode == 0
    fees = actions(practice, ActionKind.CHARGE)
    assert [fee.context["payment_status"] for fee in fees] == ["paid"] * 3
    for fee in fees:
        assert command(practice, "waive", fee.id, "--reason", "family emergency", "--now", NOW) == 0
    refunds = actions(practice, ActionKind.REFUND)
    charged = {fee.id: fee.external_id for fee in fees}

    def stripe_refunds(refund):
        return [r for r in refunds_for(stripe_admin, charged[refund.context["target_action_id"]])
                if r["metadata"].get("slotguard_action_id") == refund.id]

    crash_each_step(practice, refunds, stripe_proxy, stripe_refunds)

    for refund, stage in zip(refunds, STAGES):
        [made] = refunds_for(stripe_admin, charged[refund.context["target_action_id"]])
        assert made["metadata"]["slotguard_action_id"] == refund.id, stage
        assert (made["amount"], made["status"]) == (90000, "succeeded"), stage
        [stored] = [a for a in actions(practice, ActionKind.REFUND) if a.id == refund.id]
        assert (stored.state, stored.external_id) == (ActionState.DONE, made["id"]), stage
        assert recovered(practice, refund) == (stage != "after_commit"), stage
    assert len(stripe_proxy.requests("POST", r"/v1/refunds")) == 3, "one refund request per refund in all"
    assert all(len(intents_for_action(stripe_admin, fee.id)) == 1 for fee in fees), "no fee was charged again"
    assert command(practice, "reconcile", *EVERYTHING) == 0, capsys.readouterr().out
