"""`client forget` with Stripe (localstripe behind the test proxy).

What a practitioner relies on: a fee the practitioner waived after it was charged is
refunded exactly once, by forget if the refund was still to be made, and never again when
forget runs a second time; a fee the client rightly paid is not refunded; the Stripe
customer (name, address, saved card) is deleted, while Stripe keeps the payments; and the
ledger keeps the amounts under a pseudonym.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import stripe

from slotguard.cli.clients import forget_now
from slotguard.domain.model import ActionKind, ActionState
from slotguard.planning.waivers import waive_by_hand
from slotguard.privacy.client_records import find_client
from slotguard.privacy.pseudonyms import is_pseudonym
from tests.support.builders import config, event
from tests.support.stripe_fixtures import refunds_for
from tests.support.stripe_loop import StripeLoop


def practice_policies():
    """The builders' policies with a 30 % deposit charged at booking."""
    from slotguard.config.schema import parse_settings

    data = config(policies={"enabled": ["late_cancel", "no_show", "deposit"], "deposit": {"amount": "30%", "kind": "charge"}})
    return parse_settings(data).policies


@pytest.fixture
def loop(tmp_path, stripe_proxy, stripe_client_with_card, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the settings' data folder is "var", relative
    stripe_client_with_card("ana@example.com", name="Ana Silva")
    loop = StripeLoop(tmp_path, stripe_proxy, monkeypatch)
    for event_id in ("e1", "e2"):
        loop.book(event_id)
        loop.mark(event_id, "#noshow", minutes=0)
    loop.tick(1)
    for fee in loop.actions(ActionKind.CHARGE):
        assert (fee.state, fee.context["payment_status"]) == (ActionState.DONE, "paid"), fee.last_error
    return loop


@pytest.mark.timeout(300)
def test_forget_refunds_a_waived_charge_once_deletes_the_customer_and_keeps_the_paid_fee(loop, stripe_admin):
    waived = loop.only(ActionKind.CHARGE, "e1")
    paid = loop.only(ActionKind.CHARGE, "e2")
    done = waive_by_hand(loop.ledger, waived, "waived by the practitioner: goodwill", loop.at(2), note=True)
    assert done.waived or done.planned
    [refund] = loop.actions(ActionKind.REFUND)
    assert refund.state is ActionState.PLANNED  # the daemon would make it at its next tick
    [customer] = stripe_admin.v1.customers.list({"email": "ana@example.com"}).data
    assert customer.metadata["slotguard_client"] == "ana@example.com"

    assert forget_now(loop.settings, loop.engine, "ANA@example.com", loop.at(3), "lena") == 0

    assert [r["amount"] for r in refunds_for(stripe_admin, waived.external_id)] == [90000]
    assert refunds_for(stripe_admin, paid.external_id) == [], "a fee rightly paid is not refunded"
    assert stripe_admin.v1.customers.list({"email": "ana@example.com"}).data == []
    with pytest.raises(stripe.InvalidRequestError):
        stripe_admin.v1.customers.retrieve(customer.id)
    refund = loop.ledger.action(refund.id)
    assert refund.state is ActionState.DONE and is_pseudonym(refund.client_email) and refund.amount.minor == 90000
    for intent in (waived.external_id, paid.external_id):  # Stripe keeps the payments, tagged with the pseudonym now
        assert stripe_admin.v1.payment_intents.retrieve(intent).metadata["slotguard_client"] == refund.client_email
    assert stripe_admin.v1.refunds.retrieve(refund.external_id).metadata["slotguard_client"] == refund.client_email
    kept = loop.ledger.action(paid.id)
    assert kept.state is ActionState.DONE and kept.external_id == paid.external_id and kept.client_email == refund.client_email
    [notice] = [a for a in loop.ledger.actions(kinds=[ActionKind.EMAIL]) if a.template == "refund_notice"]
    assert notice.state is ActionState.DONE, "the client is told of the refund before being forgotten"
    assert not find_client(loop.ledger, "ana@example.com").known

    # Again: nothing of hers is left to settle, no second refund, Stripe has nothing to delete.
    assert forget_now(loop.settings, loop.engine, "ana@example.com", loop.at(4), "lena") == 0
    assert [r["amount"] for r in refunds_for(stripe_admin, waived.external_id)] == [90000]
    loop.tick(5)
    assert [r["amount"] for r in refunds_for(stripe_admin, waived.external_id)] == [90000]


@pytest.mark.timeout(300)
def test_a_customer_someone_else_made_is_left_alone(loop, stripe_admin):
    other = stripe_admin.v1.customers.create({"email": "ana@example.com", "name": "Ana (the shop)"})
    assert forget_now(loop.settings, loop.engine, "ana@example.com", loop.at(3), "lena") == 0
    assert [c.id for c in stripe_admin.v1.customers.list({"email": "ana@example.com"}).data] == [other.id]


@pytest.mark.timeout(300)
def test_a_deposit_paid_for_a_session_still_ahead_is_given_back_once(tmp_path, stripe_proxy, stripe_client_with_card, stripe_admin, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stripe_client_with_card("ana@example.com", name="Ana Silva")
    loop = StripeLoop(tmp_path, stripe_proxy, monkeypatch)
    loop.settings = loop.settings.model_copy(update={"policies": practice_policies()})
    loop.restart()
    ahead = loop.start + timedelta(days=3)
    loop.tick(0)  # Slotguard's first look at the calendar: from now on, a booking is a new one
    loop.calendar.put(event("later", ahead, client="ana@example.com", name="Ana Silva"), loop.at(1))
    loop.tick(1)
    loop.tick(2)
    [deposit] = loop.actions(ActionKind.CHARGE, "later")
    assert (deposit.state, deposit.context.get("payment_status"), deposit.amount.minor) == (ActionState.DONE, "paid", 27000), deposit.last_error

    assert forget_now(loop.settings, loop.engine, "ana@example.com", loop.at(3), "lena") == 0

    assert [r["amount"] for r in refunds_for(stripe_admin, deposit.external_id)] == [27000]
    loop.tick(4)
    loop.tick(60 * 24 * 4)  # the session's time passes: nothing is charged or given back again
    assert [r["amount"] for r in refunds_for(stripe_admin, deposit.external_id)] == [27000]
    assert [a.id for a in loop.actions(ActionKind.CHARGE)] == [deposit.id]


@pytest.mark.timeout(300)
def test_card_setups_and_link_payments_the_ledger_does_not_name_are_retagged_before_the_customer_goes(loop, stripe_proxy, stripe_admin):
    from integration.stripe_calls import ACTION_TAG, CLIENT_TAG
    from slotguard.domain.money import Money

    customers = loop.engine.provider.customers
    customer = customers.customer_id("ana@example.com")
    customers.setup_link("ana@example.com", "Ana Silva", "Fees per the policy")
    customers.payment_link(customer, Money(50000, "NOK"), tags={ACTION_TAG: "act_elsewhere", CLIENT_TAG: "ana@example.com"},
                           name="Massage", description="a fee paid through a link", manual_capture=False,
                           idempotency_key="slotguard-test-link")
    for session in customers.open_sessions(customer):
        assert "error" not in stripe_proxy.complete_checkout(session["id"])
    setups = stripe_admin.v1.setup_intents.list().data
    linked = [i for i in stripe_admin.v1.payment_intents.list({"limit": 100}).data if i.metadata.to_dict().get(ACTION_TAG) == "act_elsewhere"]
    assert [s.metadata[CLIENT_TAG] for s in setups] == ["ana@example.com"] and [i.metadata[CLIENT_TAG] for i in linked] == ["ana@example.com"]

    assert forget_now(loop.settings, loop.engine, "ana@example.com", loop.at(3), "lena") == 0

    [pseudonym] = {a.client_email for a in loop.ledger.actions(kinds=[ActionKind.CHARGE])}
    assert is_pseudonym(pseudonym)
    assert stripe_admin.v1.setup_intents.retrieve(setups[0].id).metadata[CLIENT_TAG] == pseudonym
    assert stripe_admin.v1.payment_intents.retrieve(linked[0].id).metadata[CLIENT_TAG] == pseudonym
    tagged = [i.id for i in stripe_admin.v1.payment_intents.list({"limit": 100}).data if i.metadata.to_dict().get(CLIENT_TAG) == "ana@example.com"]
    assert tagged == [], "no payment at Stripe names her any more"
