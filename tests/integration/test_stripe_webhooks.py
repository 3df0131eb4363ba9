"""Stripe webhooks: only genuine, fresh events change the ledger, each exactly once, and a
payment the client makes through a link shows up as paid (delivered by localstripe)."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
import stripe

from integration.stripe_webhooks import WebhookRejected, serve, sign, update_for, verify
from slotguard.domain.model import ActionState
from slotguard.payments.card_terms import seen_by
from slotguard.payments.webhook_updates import applier, apply_update
from slotguard.store.ledger import Ledger
from tests.support.stripe_fixtures import TEST_KEY, make_action

SECRET = "whsec_test_slotguard"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    yield ledger
    ledger.close()


def unpaid_fee(ledger: Ledger, external_id: str = "pi_failed"):
    action = make_action("charge", "450 NOK")
    action.state = ActionState.DONE
    action.external_id = external_id
    action.context.update({"payment_status": "unpaid", "provider_detail": "card_declined"})
    ledger.add_action(action)
    return action


def event(event_id: str, kind: str, obj: dict) -> dict:
    return {"id": event_id, "object": "event", "type": kind, "created": 1, "data": {"object": obj}}


# -- signature ---------------------------------------------------------------------------


def test_genuine_event_is_accepted_and_anything_else_is_rejected():
    body = json.dumps(event("evt_1", "payment_intent.succeeded", {"id": "pi_1"})).encode()
    header = sign(body, SECRET, timestamp=1_000_000)

    assert verify(body, header, SECRET, now=1_000_000 + 299)["id"] == "evt_1"
    with pytest.raises(WebhookRejected, match="does not match"):
        verify(body.replace(b"pi_1", b"pi_2"), header, SECRET, now=1_000_000)
    with pytest.raises(WebhookRejected, match="does not match"):
        verify(body, header, "whsec_other", now=1_000_000)
    with pytest.raises(WebhookRejected, match="300 s"):
        verify(body, header, SECRET, now=1_000_000 + 301)
    with pytest.raises(WebhookRejected, match="malformed"):
        verify(body, "", SECRET)
    # During secret rotation Stripe sends several v1 signatures; one good one is enough.
    rotated = header.replace("v1=", "v1=" + "0" * 64 + ",v1=")
    assert verify(body, rotated, SECRET, now=1_000_000)["type"] == "payment_intent.succeeded"


# -- ledger updates ---------------------------------------------------------------------


def test_payment_through_a_link_marks_the_fee_paid_exactly_once(ledger):
    fee = unpaid_fee(ledger)
    completed = event("evt_cs", "checkout.session.completed", {
        "object": "checkout.session", "mode": "payment", "status": "complete", "payment_status": "paid",
        "payment_intent": "pi_paid", "amount_total": 45000, "currency": "nok",
        "metadata": {"slotguard_action_id": fee.id, "slotguard_client": "ana@example.com"},
    })

    assert apply_update(ledger, update_for(completed), NOW) == "paid through Stripe (checkout.session.completed)"
    assert apply_update(ledger, update_for(completed), NOW) == "duplicate"

    stored = ledger.action(fee.id)
    assert stored.context["payment_status"] == "paid"
    assert stored.external_id == "pi_paid", "later refunds must go to the PaymentIntent holding the money"
    assert [entry["note"] for entry in ledger.action_log(fee.id)].count("paid through Stripe (checkout.session.completed)") == 1


def test_a_late_failure_of_an_earlier_attempt_never_undoes_a_payment(ledger):
    fee = unpaid_fee(ledger)
    tags = {"slotguard_action_id": fee.id}
    apply_update(ledger, update_for(event("evt_ok", "payment_intent.succeeded", {"id": "pi_paid", "amount": 45000, "currency": "nok", "metadata": tags})), NOW)
    apply_update(ledger, update_for(event("evt_late", "payment_intent.payment_failed", {
        "id": "pi_failed", "metadata": tags, "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"}})), NOW)

    assert ledger.action(fee.id).context["payment_status"] == "paid"


def test_failed_payment_records_the_decline_code(ledger):
    fee = unpaid_fee(ledger)
    fee.context["payment_status"] = "pending"
    ledger.update_action(fee, NOW)
    apply_update(ledger, update_for(event("evt_f", "payment_intent.payment_failed", {
        "id": "pi_failed", "metadata": {"slotguard_action_id": fee.id},
        "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"}})), NOW)

    assert ledger.action(fee.id).context["provider_detail"] == "insufficient_funds"


def test_refund_and_dispute_are_matched_by_payment_intent(ledger):
    fee = unpaid_fee(ledger, external_id="pi_paid")
    refunded = apply_update(ledger, update_for(event("evt_r", "charge.refunded", {
        "object": "charge", "payment_intent": "pi_paid", "amount_refunded": 20000, "currency": "nok", "metadata": {}})), NOW)
    disputed = apply_update(ledger, update_for(event("evt_d", "charge.dispute.created", {
        "object": "dispute", "payment_intent": "pi_paid", "amount": 45000, "currency": "nok", "reason": "fraudulent"})), NOW)
    unknown = apply_update(ledger, update_for(event("evt_u", "charge.refunded", {
        "object": "charge", "payment_intent": "pi_elsewhere", "amount_refunded": 100, "currency": "nok"})), NOW)

    stored = ledger.action(fee.id)
    assert stored.context["stripe_refunded_minor"] == 20000 and "200.00 NOK" in refunded
    assert stored.context["disputed"] == "fraudulent" and "Stripe dashboard" in disputed
    assert "does not know" in unknown


# -- delivered by localstripe -----------------------------------------------------------


def test_localstripe_delivers_a_signed_event_that_marks_a_link_payment_paid(
    ledger, stripe_provider, stripe_proxy, stripe_localstripe
):
    server = serve(applier(ledger), SECRET, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    register = f"{stripe_localstripe.base_url}/_config/webhooks/slotguard-test"

    def configure(url: str, events: list[str]) -> None:
        form = [("url", url), ("secret", SECRET)] + [(f"events[{i}]", e) for i, e in enumerate(events)]
        urllib.request.urlopen(register, data=urllib.parse.urlencode(form).encode(), timeout=5).close()

    try:
        configure(f"http://127.0.0.1:{server.server_address[1]}/stripe/webhook", ["payment_intent.succeeded"])
        fee = make_action("charge", "450 NOK")
        result = stripe_provider.execute(fee)  # no card on file: a link
        fee.state, fee.external_id = ActionState.DONE, result.external_id
        fee.context.update({"payment_status": "unpaid", "payment_link": result.payment_link})
        ledger.add_action(fee)

        stripe_proxy.complete_checkout(result.payment_link.rsplit("/", 1)[-1], "pm_card_visa")

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and ledger.action(fee.id).context.get("payment_status") != "paid":
            time.sleep(0.1)
        stored = ledger.action(fee.id)
        assert stored.context["payment_status"] == "paid"
        assert stored.external_id.startswith("pi_")
    finally:
        configure("http://127.0.0.1:9/unused", ["slotguard.none"])
        server.shutdown()
        server.server_close()


# -- a card saved through the card-setup page --------------------------------------------

CARD_TERMS = ("A saved card is only charged for a fee under our cancellation policy, if you cancel late or do not come. "
              "Before any fee is charged, we look at what happened for 12 hours, and you always get an email from us about it.\n"
              "- Not coming without letting us know: 100% of the price (NOK 900.00).")


def test_the_card_page_shows_the_terms_and_the_completed_session_records_them_with_the_time(ledger, stripe_provider, stripe_proxy):
    """localstripe has no Checkout and sends no checkout.session.completed: the proxy plays the
    page, and the event is the one Stripe sends, built from the completed session as Stripe
    gives it back (with its custom_text)."""
    link = stripe_provider.card_setup_link("ana@example.com", "Ana Client", CARD_TERMS)
    assert stripe_provider.card_setup_link("ana@example.com", "Ana Client", CARD_TERMS) == link, "the open page is reused"
    other = stripe_provider.card_setup_link("ana@example.com", "Ana Client", CARD_TERMS + "\n- another line")
    assert other != link, "a page that shows other terms is not reused"

    session_id = link.rsplit("/", 1)[-1]
    session = stripe_proxy.complete_checkout(session_id, "pm_card_visa")
    assert session["custom_text"]["submit"]["message"] == CARD_TERMS

    completed = {**event("evt_setup", "checkout.session.completed", session), "created": 1_772_400_600}
    update = update_for(completed)
    assert (update.change, update.client_email, update.reference) == ("card_saved", "ana@example.com", session_id)
    assert update.at == datetime(2026, 3, 1, 21, 30, tzinfo=UTC)

    assert "recorded" in apply_update(ledger, update, NOW)
    [record] = seen_by(ledger, "ana@example.com")
    assert (record.card_terms, record.saved_at, record.reference) == (CARD_TERMS, "2026-03-01T21:30:00Z", session_id)
    assert stripe_provider.has_card_on_file("ana@example.com")


def test_the_provider_never_sends_more_custom_text_than_stripe_accepts(stripe_provider, stripe_proxy):
    """Stripe (and the proxy, like it) refuses custom text over 1200 characters with a 400;
    the provider cuts at the limit (card_setup.py already cuts at whole lines before)."""
    direct = stripe.StripeClient(TEST_KEY, base_addresses={"api": stripe_proxy.base_url}, max_network_retries=0)
    with pytest.raises(stripe.InvalidRequestError, match="1200"):
        direct.v1.checkout.sessions.create({"mode": "setup", "currency": "nok", "success_url": "https://example.com/ok",
                                            "custom_text": {"submit": {"message": "x" * 1201}}})
    link = stripe_provider.card_setup_link("bo@example.com", "", "x" * 5000)
    session = stripe_proxy.complete_checkout(link.rsplit("/", 1)[-1], "pm_card_visa")
    assert len(session["custom_text"]["submit"]["message"]) == 1200


def test_without_webhooks_the_completed_card_page_is_found_by_asking_stripe(stripe_provider, stripe_proxy):
    """The lookup the card_pages tick step makes (slotguard/features/card_pages.py): the
    completed setup page with what it showed, and when the card was saved."""
    assert stripe_provider.completed_card_pages("ana@example.com") == [], "no customer yet"
    before = datetime.now(UTC).replace(microsecond=0)
    open_link = stripe_provider.card_setup_link("ana@example.com", "Ana Client", CARD_TERMS + "\n- other")
    link = stripe_provider.card_setup_link("ana@example.com", "Ana Client", CARD_TERMS)
    stripe_proxy.complete_checkout(link.rsplit("/", 1)[-1], "pm_card_visa")
    [page] = stripe_provider.completed_card_pages("ana@example.com")
    assert page.reference == link.rsplit("/", 1)[-1] != open_link.rsplit("/", 1)[-1], "only the completed page"
    assert page.card_terms == CARD_TERMS
    assert before - timedelta(seconds=5) <= page.completed_at <= datetime.now(UTC) + timedelta(seconds=5)
