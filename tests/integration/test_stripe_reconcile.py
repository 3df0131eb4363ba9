"""Reconciliation and the polling fallback against localstripe (through the proxy).

What a practitioner relies on: when the ledger and Stripe agree, reconcile says so and
nothing else; every kind of disagreement (money in Stripe the ledger does not know, a done
action with nothing in Stripe, a different amount, a different state, a double charge, a
refund made in the dashboard) is listed with the action and the Stripe object. A fee a
client pays through the link shows up as paid without webhooks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from integration.stripe_reconcile import reconcile
from slotguard.domain.model import ActionState
from slotguard.payments.poll import poll_unpaid
from slotguard.store.ledger import Ledger
from tests.support.stripe_fixtures import intents_for_action, make_action


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    yield ledger
    ledger.close()


def carry_out(provider, ledger, action):
    """Execute `action` and store the outcome the way the engine does."""
    result = provider.execute(action)
    assert result.status in ("done", "needs_client_action"), result
    action.state = ActionState.DONE
    action.executed_at = datetime.now(UTC)
    action.external_id = result.external_id
    action.context["payment_status"] = "paid" if result.status == "done" else "unpaid"
    if result.payment_link:
        action.context["payment_link"] = result.payment_link
    ledger.add_action(action)
    return result


def recorded(ledger, action, external_id="", payment_status="paid"):
    """Store an action as done without going through Stripe (a ledger-only record)."""
    action.state, action.executed_at, action.external_id = ActionState.DONE, datetime.now(UTC), external_id
    action.context["payment_status"] = payment_status
    ledger.add_action(action)
    return action


def dashboard_payment(admin, customer, minor, metadata=None):
    """A payment made in the Stripe dashboard (or by someone else), optionally tagged."""
    card = admin.v1.payment_methods.list({"customer": customer, "type": "card"}).data[0].id
    return admin.v1.payment_intents.create({"amount": minor, "currency": "nok", "customer": customer, "payment_method": card,
                                            "confirm": True, "metadata": metadata or {}})


def now_window():
    now = datetime.now(UTC)
    return now - timedelta(hours=1), now + timedelta(hours=1)


def found(result):
    return sorted((m.kind, m.action_id) for m in result.mismatches)


def test_ledger_and_stripe_in_agreement_reconcile_clean(stripe_provider, stripe_client_with_card, stripe_proxy, stripe_admin, ledger):
    ana = stripe_client_with_card("ana@example.com")
    stripe_client_with_card("cy@example.com", card="4000000000000341")  # declines
    charge = make_action("charge", "450 NOK")
    carry_out(stripe_provider, ledger, charge)
    carry_out(stripe_provider, ledger, make_action("refund", "200 NOK", context={"target_action_id": charge.id, "target_external_id": charge.external_id}))
    hold = make_action("hold", "900 NOK", policy="deposit")
    carry_out(stripe_provider, ledger, hold)
    target = {"target_action_id": hold.id, "target_external_id": hold.external_id}
    carry_out(stripe_provider, ledger, make_action("capture", "450 NOK", context=target))
    carry_out(stripe_provider, ledger, make_action("refund", "100 NOK", context=target))
    released = make_action("hold", "300 NOK", policy="deposit")
    carry_out(stripe_provider, ledger, released)
    carry_out(stripe_provider, ledger, make_action("release", None, context={"target_action_id": released.id, "target_external_id": released.external_id}))
    carry_out(stripe_provider, ledger, make_action("charge", "450 NOK", email="cy@example.com"))  # declined: unpaid
    carry_out(stripe_provider, ledger, make_action("charge", "450 NOK", email="bo@example.com"))  # no card: unpaid
    dashboard_payment(stripe_admin, ana, 12300)  # not Slotguard's: listed apart
    writes_before = len([e for e in stripe_proxy.exchanges if e.method != "GET"])

    result = reconcile(ledger, stripe_provider, *now_window())

    assert result.clean, [m.detail for m in result.mismatches]
    assert result.ledger_actions == 9
    assert result.payment_intents == 5
    assert [item["amount"] for item in result.not_from_slotguard] == ["123.00 NOK"]
    assert len([e for e in stripe_proxy.exchanges if e.method != "GET"]) == writes_before, "reconcile only reads"


def test_every_kind_of_difference_is_listed_with_its_action(stripe_provider, stripe_client_with_card, stripe_proxy, stripe_admin, ledger):
    ana = stripe_client_with_card("ana@example.com")
    # Money in Stripe for an action this ledger never had.
    stray = dashboard_payment(stripe_admin, ana, 30000, {"slotguard_action_id": "act_not_in_this_ledger"})
    # The ledger says charged; Stripe has nothing.
    missing = recorded(ledger, make_action("charge", "450 NOK"), external_id="pi_never_made")
    # Both exist, with different amounts.
    short = recorded(ledger, make_action("charge", "450 NOK"))
    short_intent = dashboard_payment(stripe_admin, ana, 40000, {"slotguard_action_id": short.id})
    short.external_id = short_intent.id
    ledger.update_action(short, short.updated_at)
    # Charged twice for one action.
    twice = make_action("charge", "450 NOK")
    carry_out(stripe_provider, ledger, twice)
    dashboard_payment(stripe_admin, ana, 45000, {"slotguard_action_id": twice.id})
    # A refund made in the dashboard on one of our payments.
    refunded_outside = make_action("charge", "450 NOK")
    carry_out(stripe_provider, ledger, refunded_outside)
    outside = stripe_admin.v1.refunds.create({"payment_intent": refunded_outside.external_id, "amount": 10000})
    # The ledger says refunded; Stripe has no refund.
    lost_refund = recorded(ledger, make_action("refund", "100 NOK", context={"target_action_id": twice.id}), external_id="re_never_made")
    # The client paid through the link; the ledger still says unpaid.
    paid_by_link = make_action("charge", "450 NOK", email="bo@example.com")
    link = carry_out(stripe_provider, ledger, paid_by_link).payment_link
    stripe_proxy.complete_checkout(link.rsplit("/", 1)[-1], "pm_card_visa")

    result = reconcile(ledger, stripe_provider, *now_window())

    assert found(result) == sorted([
        ("unknown_in_stripe", ""),
        ("missing_in_stripe", missing.id),
        ("amount", short.id),
        ("amount", twice.id),
        ("unknown_in_stripe", refunded_outside.id),
        ("missing_in_stripe", lost_refund.id),
        ("status", paid_by_link.id),
    ])
    by_action = {m.action_id: m for m in result.mismatches}
    assert by_action[""].stripe_id == stray.id and "act_not_in_this_ledger" in by_action[""].detail
    assert "400.00 NOK" in by_action[short.id].detail
    assert "2 times" in by_action[twice.id].detail
    assert by_action[refunded_outside.id].stripe_id == outside.id and "100.00 NOK" in by_action[refunded_outside.id].detail
    assert by_action[paid_by_link.id].client == "bo@example.com"
    assert result.as_json()["clean"] is False

    # The polling fallback records the link payment; that mismatch goes away, nothing else changes.
    assert poll_unpaid(ledger, stripe_provider, datetime.now(UTC)) == {("primary", "evt-1")}
    stored = ledger.action(paid_by_link.id)
    [paid] = [i for i in intents_for_action(stripe_admin, paid_by_link.id) if i["status"] == "succeeded"]
    assert (stored.context["payment_status"], stored.external_id) == ("paid", paid["id"])
    again = reconcile(ledger, stripe_provider, *now_window())
    assert ("status", paid_by_link.id) not in found(again) and len(again.mismatches) == len(result.mismatches) - 1


def test_period_limits_what_is_compared(stripe_provider, stripe_client_with_card, ledger):
    stripe_client_with_card("ana@example.com")
    carry_out(stripe_provider, ledger, make_action("charge", "450 NOK"))
    recorded(ledger, make_action("charge", "450 NOK"), external_id="pi_never_made")

    last_week = datetime.now(UTC) - timedelta(days=7)
    result = reconcile(ledger, stripe_provider, last_week - timedelta(days=1), last_week)

    assert result.clean and (result.ledger_actions, result.payment_intents) == (0, 0)
