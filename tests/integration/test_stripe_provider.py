"""The Stripe provider against localstripe, through the real stripe-python client and the
gap-filling proxy (tests/support/stripe_proxy.py).

What a practitioner relies on: fees land once and only once, even when the network or the
process fails mid-call; a declined or unauthenticated card becomes a payment link for the
client, not a crash; refunds never exceed what was taken; amounts are right in every
currency; a test key can never be used as live (and the reverse).
"""

from __future__ import annotations

import urllib.request

import pytest

from integration.stripe_provider import DRY_RUN, open_provider
from slotguard.config.schema import ConfigError
from slotguard.domain.interfaces import AdapterError
from tests.support.stripe_fixtures import TEST_KEY, intents_for_action, make_action, refunds_for

INTENTS = r"/v1/payment_intents"


def page_is_live(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


# -- customers and cards ---------------------------------------------------------------


def test_customer_is_found_by_email_or_created_once_and_tagged(stripe_settings, stripe_admin):
    stripe_admin.v1.customers.create({"email": "old@example.com", "name": "Made in the dashboard"})
    first = open_provider(stripe_settings())
    link_new = first.card_setup_link("New.Client@Example.com ", "New Client")
    link_old = first.card_setup_link("old@example.com")

    # A fresh provider (no cache, as after a restart) finds the same customers and links.
    second = open_provider(stripe_settings())
    assert second.card_setup_link("new.client@example.com", "New Client") == link_new
    assert second.card_setup_link("old@example.com") == link_old

    customers = [c.to_dict() for c in stripe_admin.v1.customers.list({"limit": 100}).data]
    by_email = {}
    for customer in customers:
        by_email.setdefault(customer["email"], []).append(customer)
    assert sorted(by_email) == ["new.client@example.com", "old@example.com"]
    assert len(by_email["new.client@example.com"]) == 1
    assert len(by_email["old@example.com"]) == 1, "an existing customer is adopted, not duplicated"
    assert by_email["old@example.com"][0]["metadata"]["slotguard_client"] == "old@example.com"
    assert by_email["new.client@example.com"][0]["name"] == "New Client"


def test_card_saved_through_setup_link_is_charged_off_session(stripe_provider, stripe_proxy, stripe_admin):
    link = stripe_provider.card_setup_link("ana@example.com", "Ana Client")
    assert page_is_live(link)
    assert not stripe_provider.has_card_on_file("ana@example.com")

    session = stripe_proxy.complete_checkout(link.rsplit("/", 1)[-1], "pm_card_visa")
    assert session["status"] == "complete"
    assert stripe_provider.has_card_on_file("ana@example.com")

    action = make_action("charge", "450 NOK")
    result = stripe_provider.execute(action)

    assert result.status == "done"
    [intent] = intents_for_action(stripe_admin, action.id)
    assert intent["id"] == result.external_id
    assert (intent["status"], intent["amount"], intent["currency"]) == ("succeeded", 45000, "nok")


def test_fee_is_charged_once_even_when_executed_twice(stripe_provider, stripe_client_with_card, stripe_admin, stripe_proxy):
    customer = stripe_client_with_card("ana@example.com")
    action = make_action("charge", "450 NOK")

    first = stripe_provider.execute(action)
    stripe_proxy.forget_idempotency()  # as if more than 24 hours passed before the restart
    again = stripe_provider.execute(action)  # the engine found the action still "executing"

    assert first.status == again.status == "done"
    assert again.external_id == first.external_id
    [intent] = intents_for_action(stripe_admin, action.id)
    assert intent["customer"] == customer
    assert intent["metadata"]["slotguard_client"] == "ana@example.com"
    assert len(stripe_proxy.requests("POST", INTENTS)) == 1


# -- holds, captures, releases, refunds -------------------------------------------------


def test_hold_then_partial_capture_then_refunds_never_exceed_captured(stripe_provider, stripe_client_with_card, stripe_admin):
    stripe_client_with_card("ana@example.com")
    hold = make_action("hold", "900 NOK", policy="deposit")
    held = stripe_provider.execute(hold)
    assert held.status == "done"
    assert stripe_admin.v1.payment_intents.retrieve(held.external_id).status == "requires_capture"

    target = {"target_external_id": held.external_id}
    assert stripe_provider.execute(make_action("capture", "1000 NOK", context=target)).status == "not_attempted"
    captured = stripe_provider.execute(make_action("capture", "450 NOK", context=target))
    assert captured.status == "done"
    assert stripe_admin.v1.payment_intents.retrieve(held.external_id).status == "succeeded"

    assert refunds_for(stripe_admin, held.external_id)[0]["amount"] == 45000  # only the uncaptured part
    too_much = stripe_provider.execute(make_action("refund", "451 NOK", context=target))
    assert too_much.status == "done" and too_much.extra["refunded_minor"] == "45000"  # what was captured, no more
    assert "450.00 NOK" in too_much.detail
    assert too_much.external_id.startswith("re_")
    assert sum(r["amount"] for r in refunds_for(stripe_admin, held.external_id)) == 90000

    again = stripe_provider.execute(make_action("refund", "450 NOK", context=target))
    assert again.status == "done" and again.extra["refunded_minor"] == "0" and again.external_id == ""
    assert sum(r["amount"] for r in refunds_for(stripe_admin, held.external_id)) == 90000


def test_release_cancels_the_hold_and_a_later_capture_is_not_attempted(stripe_provider, stripe_client_with_card, stripe_admin):
    stripe_client_with_card("ana@example.com")
    held = stripe_provider.execute(make_action("hold", "900 NOK", policy="deposit"))
    target = {"target_external_id": held.external_id}

    release = make_action("release", None, context=target)
    assert stripe_provider.execute(release).status == "done"
    assert stripe_provider.execute(release).status == "done"  # after a crash: still fine
    assert stripe_admin.v1.payment_intents.retrieve(held.external_id).status == "canceled"

    capture = stripe_provider.execute(make_action("capture", "450 NOK", context=target))
    assert capture.status == "not_attempted"
    assert "released or expired" in capture.detail


def test_partial_and_full_refunds_never_give_back_more_than_is_left(stripe_provider, stripe_client_with_card, stripe_admin):
    stripe_client_with_card("ana@example.com")
    charge = stripe_provider.execute(make_action("charge", "450 NOK"))
    target = {"target_external_id": charge.external_id}

    assert stripe_provider.execute(make_action("refund", "200 NOK", context=target)).status == "done"
    # The ledger knows of more refunds than Stripe shows yet: the stricter figure wins.
    cautious = stripe_provider.execute(make_action("refund", "250 NOK", context={**target, "already_refunded_minor": 45000}))
    assert (cautious.status, cautious.extra["refunded_minor"], cautious.external_id) == ("done", "0", "")
    # Asked for more than is left: the rest is refunded, and the result says so.
    rest = make_action("refund", "300 NOK", context=target)
    first = stripe_provider.execute(rest)
    assert (first.status, first.extra["refunded_minor"]) == ("done", "25000")
    assert "250.00 NOK" in first.detail and "200.00 NOK" in first.detail
    again = stripe_provider.execute(rest)  # re-run after a crash: no second refund
    assert (again.status, again.external_id, again.extra["refunded_minor"]) == ("done", first.external_id, "25000")
    assert sorted(r["amount"] for r in refunds_for(stripe_admin, charge.external_id)) == [20000, 25000]
    nothing = stripe_provider.execute(make_action("refund", "1 NOK", context=target))
    assert (nothing.status, nothing.extra["refunded_minor"]) == ("done", "0")
    assert len(refunds_for(stripe_admin, charge.external_id)) == 2


# -- declines and authentication --------------------------------------------------------


def test_declined_card_gives_a_payment_link_and_paying_it_settles_the_fee(stripe_provider, stripe_client_with_card, stripe_proxy, stripe_admin):
    stripe_client_with_card("ana@example.com", card="4000000000000341")  # attaches, then declines
    action = make_action("charge", "450 NOK")

    result = stripe_provider.execute(action)

    assert result.status == "needs_client_action"
    assert result.detail == "card_declined"
    assert page_is_live(result.payment_link)
    [failed] = intents_for_action(stripe_admin, action.id)
    assert failed["id"] == result.external_id and failed["status"] == "requires_payment_method"
    assert stripe_provider.execute(action).payment_link == result.payment_link  # no second attempt, same link

    stripe_proxy.complete_checkout(result.payment_link.rsplit("/", 1)[-1], "pm_card_visa")
    paid = stripe_provider.status_of(action)
    assert paid.status == "done" and paid.external_id != failed["id"]
    assert stripe_provider.execute(action).external_id == paid.external_id
    assert sorted(i["status"] for i in intents_for_action(stripe_admin, action.id)) == ["requires_payment_method", "succeeded"]

    # The ledger still names the failed PaymentIntent: a refund finds the money anyway.
    refund = stripe_provider.execute(make_action("refund", "450 NOK", context={"target_external_id": result.external_id}))
    assert refund.status == "done"
    assert refunds_for(stripe_admin, paid.external_id)[0]["amount"] == 45000


def test_fee_paid_through_the_link_when_no_card_was_on_file_can_be_refunded(stripe_provider, stripe_proxy, stripe_admin):
    charge = make_action("charge", "450 NOK")
    result = stripe_provider.execute(charge)
    assert (result.status, result.detail, result.external_id) == ("needs_client_action", "no_card_on_file", "")

    stripe_proxy.complete_checkout(result.payment_link.rsplit("/", 1)[-1], "pm_card_visa")
    assert stripe_provider.has_card_on_file("ana@example.com"), "paying the fee saves the card for next time"

    # The ledger has no PaymentIntent id for this fee; the action id is enough.
    refund = stripe_provider.execute(make_action("refund", "450 NOK", context={"target_external_id": "", "target_action_id": charge.id}))
    assert refund.status == "done"
    [paid] = intents_for_action(stripe_admin, charge.id)
    assert refunds_for(stripe_admin, paid["id"])[0]["amount"] == 45000


def test_a_prepayment_is_asked_through_a_link_and_never_taken_from_the_saved_card(stripe_provider, stripe_client_with_card, stripe_proxy, stripe_admin):
    """Issue 13, item 4: a charge the client pays themselves (`client_pays`, a prepayment) goes
    out at once, without a review window, so it must never move money by itself: even with a
    card on file the client gets a Checkout link, and only their paying it takes the money."""
    stripe_client_with_card("ana@example.com")
    prepayment = make_action("charge", "900 NOK", policy="repeat_offender_prepay", context={"purpose": "prepayment", "client_pays": True})

    result = stripe_provider.execute(prepayment)

    assert (result.status, result.detail, result.external_id) == ("needs_client_action", "payment_requested", "")
    assert page_is_live(result.payment_link)
    assert intents_for_action(stripe_admin, prepayment.id) == [], "the saved card was not charged"
    assert stripe_provider.execute(prepayment).payment_link == result.payment_link  # carried out again: the same link
    assert stripe_provider.resolve(prepayment).payment_link == result.payment_link  # crash recovery finds the link

    stripe_proxy.complete_checkout(result.payment_link.rsplit("/", 1)[-1], "pm_card_visa")
    assert stripe_provider.status_of(prepayment).status == "done"
    # The same client's fee (no `client_pays`) is still charged to the card, as before.
    assert stripe_provider.execute(make_action("charge", "450 NOK")).status == "done"


def test_card_needing_authentication_gives_a_link_localstripe_style(stripe_provider, stripe_client_with_card, stripe_admin):
    stripe_client_with_card("ana@example.com", card="4000002760003184")
    action = make_action("charge", "450 NOK")

    result = stripe_provider.execute(action)

    assert (result.status, result.detail) == ("needs_client_action", "authentication_required")
    assert page_is_live(result.payment_link)
    [intent] = intents_for_action(stripe_admin, action.id)
    assert intent["status"] == "requires_action"


def test_card_needing_authentication_gives_a_link_real_stripe_style(stripe_provider, stripe_client_with_card, stripe_proxy):
    stripe_client_with_card("ana@example.com")
    # Real Stripe answers an off-session payment that needs 3-D Secure with a 402 card_error.
    stripe_proxy.inject("error", path=INTENTS, status=402, body={"error": {
        "type": "card_error", "code": "authentication_required", "decline_code": "authentication_required",
        "message": "Your card was declined. This transaction requires authentication.",
        "payment_intent": {"id": "pi_real_style", "object": "payment_intent", "status": "requires_payment_method"},
    }})

    result = stripe_provider.execute(make_action("charge", "450 NOK"))

    assert (result.status, result.detail, result.external_id) == ("needs_client_action", "authentication_required", "pi_real_style")
    assert page_is_live(result.payment_link)


# -- amounts and currencies --------------------------------------------------------------


def test_zero_decimal_currency_is_sent_in_whole_yen(stripe_settings, stripe_client_with_card, stripe_admin):
    provider = open_provider(stripe_settings(currency="JPY"))
    stripe_client_with_card("ana@example.com")
    action = make_action("charge", "5000 JPY")

    assert provider.execute(action).status == "done"
    [intent] = intents_for_action(stripe_admin, action.id)
    assert (intent["amount"], intent["currency"]) == (5000, "jpy")
    below = provider.execute(make_action("charge", "49 JPY"))
    assert below.status == "not_attempted" and "50 JPY" in below.detail


def test_fee_below_stripe_minimum_is_not_attempted_and_nothing_is_sent(stripe_provider, stripe_proxy):
    result = stripe_provider.execute(make_action("charge", "2.50 NOK"))

    assert result.status == "not_attempted"
    assert "minimum" in result.detail and "3.00 NOK" in result.detail
    assert stripe_proxy.exchanges == []


def test_three_decimal_currency_must_end_in_zero(stripe_settings, stripe_client_with_card, stripe_admin):
    provider = open_provider(stripe_settings(currency="KWD"))
    stripe_client_with_card("ana@example.com")

    assert provider.execute(make_action("charge", "5.125 KWD")).status == "not_attempted"
    action = make_action("charge", "5.120 KWD")
    assert provider.execute(action).status == "done"
    assert intents_for_action(stripe_admin, action.id)[0]["amount"] == 5120


def test_fee_above_max_single_charge_is_not_attempted(stripe_settings, stripe_client_with_card, stripe_admin):
    provider = open_provider(stripe_settings(max_single_charge="500 NOK"))
    stripe_client_with_card("ana@example.com")
    action = make_action("charge", "600 NOK")

    result = provider.execute(action)

    assert result.status == "not_attempted" and "max_single_charge" in result.detail
    assert intents_for_action(stripe_admin, action.id) == []


# -- safety switches ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "key", "complaint"),
    [
        ("live", "sk_test_abc123", 'payments.mode: is "live"'),
        ("test", "sk_" + "live_abc123", 'payments.mode: is "test"'),
        ("live", "rk_test_abc123", 'payments.mode: is "live"'),
        ("test", "pk_test_abc123", "publishable key"),
        ("test", "whsec_abc123", "not a Stripe secret key"),
    ],
)
def test_start_up_fails_when_mode_and_key_disagree(stripe_settings, mode, key, complaint):
    with pytest.raises(ConfigError) as raised:
        open_provider(stripe_settings(key=key, mode=mode))
    assert complaint in str(raised.value)
    assert "abc123" not in str(raised.value), "the key must never be echoed"


def test_matching_restricted_key_starts(stripe_settings):
    assert open_provider(stripe_settings(key="rk_test_abc123", mode="test")).mode == "test"


def test_dry_run_moves_no_money_and_sends_nothing(stripe_settings, stripe_proxy):
    provider = open_provider(stripe_settings(dry_run=True))

    result = provider.execute(make_action("charge", "450 NOK"))

    assert result.status == DRY_RUN
    assert "450.00 NOK" in result.detail
    assert stripe_proxy.exchanges == []


def test_rejected_key_is_a_permanent_error_without_the_key(stripe_provider, stripe_proxy):
    stripe_proxy.inject("error", method="GET", path=r"/v1/customers", status=401,
                        body={"error": {"type": "invalid_request_error", "message": f"Invalid API Key provided: {TEST_KEY}"}})
    with pytest.raises(AdapterError) as raised:
        stripe_provider.execute(make_action("charge", "450 NOK"))
    assert raised.value.retryable is False
    assert TEST_KEY not in str(raised.value)


# -- exactly once under network failures ------------------------------------------------


@pytest.mark.parametrize("drop", [False, True], ids=["500-after-applying", "connection-dropped-after-applying"])
def test_lost_response_is_retried_with_the_same_key_and_charges_once(stripe_provider, stripe_client_with_card, stripe_proxy, stripe_admin, drop):
    stripe_client_with_card("ana@example.com")
    fault = stripe_proxy.inject("lose_response", path=INTENTS, drop=drop)
    action = make_action("charge", "450 NOK")

    result = stripe_provider.execute(action)

    assert fault.hits == 1
    assert result.status == "done"
    assert [i["id"] for i in intents_for_action(stripe_admin, action.id)] == [result.external_id]
    posts = stripe_proxy.requests("POST", INTENTS)
    assert [p.idempotency_key for p in posts] == [action.idempotency_key] * 2
    assert [p.replayed for p in posts] == [False, True]


def test_lost_response_then_restart_after_keys_expired_finds_the_charge(stripe_settings, stripe_client_with_card, stripe_proxy, stripe_admin):
    provider = open_provider(stripe_settings(), max_network_retries=0, timeout_seconds=2.0)
    stripe_client_with_card("ana@example.com")
    stripe_proxy.inject("lose_response", path=INTENTS)
    action = make_action("charge", "450 NOK")

    with pytest.raises(AdapterError) as raised:
        provider.execute(action)
    assert raised.value.retryable is True

    stripe_proxy.forget_idempotency()
    restarted = open_provider(stripe_settings(), max_network_retries=0)
    result = restarted.execute(action)

    assert result.status == "done"
    assert [i["id"] for i in intents_for_action(stripe_admin, action.id)] == [result.external_id]
    assert len(stripe_proxy.requests("POST", INTENTS)) == 1


def test_request_that_timed_out_before_arriving_is_retried(stripe_settings, stripe_client_with_card, stripe_proxy, stripe_admin):
    provider = open_provider(stripe_settings(), timeout_seconds=0.5, max_network_retries=2)
    stripe_client_with_card("ana@example.com")
    stripe_proxy.inject("timeout", path=INTENTS, delay=1.5)
    action = make_action("charge", "450 NOK")

    result = provider.execute(action)

    assert result.status == "done"
    assert len(intents_for_action(stripe_admin, action.id)) == 1


def test_server_error_is_retried_and_charges_once(stripe_provider, stripe_client_with_card, stripe_proxy, stripe_admin):
    stripe_client_with_card("ana@example.com")
    stripe_proxy.inject("error", path=INTENTS, status=500)
    action = make_action("charge", "450 NOK")

    assert stripe_provider.execute(action).status == "done"
    assert len(intents_for_action(stripe_admin, action.id)) == 1


def test_rate_limit_backs_off_then_succeeds_or_gives_up_retryably(stripe_provider, stripe_client_with_card, stripe_proxy, stripe_admin):
    stripe_client_with_card("ana@example.com")
    stripe_proxy.inject("rate_limit", path=INTENTS, times=2)
    action = make_action("charge", "450 NOK")

    assert stripe_provider.execute(action).status == "done"
    assert len(stripe_proxy.requests("POST", INTENTS)) == 3

    stripe_proxy.inject("rate_limit", path=INTENTS, times=-1)
    other = make_action("charge", "300 NOK")
    with pytest.raises(AdapterError) as raised:
        stripe_provider.execute(other)
    assert raised.value.retryable is True
    assert intents_for_action(stripe_admin, other.id) == []


def test_search_lookup_mode_also_recovers(stripe_settings, stripe_client_with_card, stripe_proxy, stripe_admin):
    provider = open_provider(stripe_settings(), lookup="search")
    stripe_client_with_card("ana@example.com")
    action = make_action("charge", "450 NOK")

    first = provider.execute(action)
    stripe_proxy.forget_idempotency()
    again = provider.execute(action)

    assert again.external_id == first.external_id
    assert len(intents_for_action(stripe_admin, action.id)) == 1
    assert stripe_proxy.requests("GET", r"/v1/payment_intents/search")
