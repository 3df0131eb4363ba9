"""Stripe customers, saved cards and Checkout links.

A client is a Stripe Customer found by email (lower-cased) and tagged
metadata.slotguard_client, so a customer the practitioner made in the dashboard is adopted
rather than duplicated. Cards are saved through a Checkout Session in setup mode (no
booking UI of our own); fees the client has to pay themselves go through a Checkout
Session in payment mode, whose PaymentIntent carries the action's tags so that the
provider and the webhooks recognise the payment.

Checkout Sessions expire after 24 hours: ask for a fresh link whenever one is emailed.
An open session for the same purpose is reused, so asking twice gives the same link.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import UTC, datetime
from typing import Any, Literal, overload

import stripe

from integration.stripe_calls import ACTION_TAG, CLIENT_TAG, PURPOSE_TAG, StripeCalls, log_event, plain
from slotguard.domain.interfaces import AdapterError, CardPage
from slotguard.domain.money import Money


def email_key(email: str) -> str:
    """How an email is compared and stored at Stripe: stripped, lower case."""
    return email.strip().lower()


# Stripe shows at most this many characters of a Checkout Session's custom text.
CUSTOM_TEXT_LIMIT = 1200


def shown_terms(session: dict[str, Any]) -> str:
    """The text a Checkout Session shows beside its button (`custom_text.submit.message`), or ""."""
    submit = (session.get("custom_text") or {}).get("submit") or {}
    return str(submit.get("message") or "")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class StripeCustomers:
    """Customers, cards and Checkout for one Stripe account. Thread-safe."""

    def __init__(self, client: stripe.StripeClient, calls: StripeCalls, *, currency: str, return_url: str = ""):
        self.client = client
        self.calls = calls
        self.currency = currency.upper()
        self.return_url = return_url
        self._ids: dict[str, str] = {}

    @overload
    def customer_id(self, email: str, name: str = "", *, create: Literal[True] = True) -> str: ...
    @overload
    def customer_id(self, email: str, name: str = "", *, create: bool) -> str | None: ...

    def customer_id(self, email: str, name: str = "", *, create: bool = True) -> str | None:
        """The Stripe customer id for `email`: ours first, else an existing one (tagged now),
        else a new one (None instead when `create` is false). Raises AdapterError."""
        key = email_key(email)
        if not key:
            raise AdapterError("the action has no client email, so no Stripe customer can be found", retryable=False)
        if key in self._ids:
            return self._ids[key]
        found = self.calls.list_all("customer lookup", self.client.v1.customers.list, {"email": key, "limit": 100})
        found.sort(key=lambda customer: ((customer.get("metadata") or {}).get(CLIENT_TAG) != key, customer.get("created", 0)))
        if found:
            customer = found[0]
            if (customer.get("metadata") or {}).get(CLIENT_TAG) != key:
                self.calls.call("customer tag", self.client.v1.customers.update, customer["id"], {"metadata": {CLIENT_TAG: key}})
        elif not create:
            return None
        else:
            params: dict[str, Any] = {"email": key, "metadata": {CLIENT_TAG: key}}
            if name:
                params["name"] = name
            options = {"idempotency_key": f"slotguard-customer-{_digest(key)}"}
            customer = plain(self.calls.call("customer", self.client.v1.customers.create, params, options))
            log_event(logging.INFO, "stripe.customer_created", customer=customer["id"])
        self._ids[key] = customer["id"]
        return customer["id"]

    def forget_customer(self, email: str) -> tuple[list[str], list[str]]:
        """Delete the Stripe customers of `email` that Slotguard made or adopted (tagged
        metadata.slotguard_client): the customer, its name, address and saved cards go; the
        payments and refunds made stay at Stripe, which keeps them under its own obligations.
        A customer already deleted (Stripe answers 404 resource_missing) counts as deleted.
        Returns (ids deleted, ids of customers with that email left alone: not tagged, so
        not ours). Raises AdapterError."""
        key = email_key(email)
        found = self.calls.list_all("customer lookup", self.client.v1.customers.list, {"email": key, "limit": 100})
        deleted, untouched = [], []
        for customer in found:
            if (customer.get("metadata") or {}).get(CLIENT_TAG) != key:
                untouched.append(customer["id"])
                continue
            self.calls.call("customer deletion", self._delete_customer, customer["id"])
            log_event(logging.INFO, "stripe.customer_deleted", customer=customer["id"])
            deleted.append(customer["id"])
        self._ids.pop(key, None)
        return deleted, untouched

    def retag_payments(self, references: list[str], pseudonym: str) -> tuple[int, list[str]]:
        """Put `pseudonym` in place of the client's address in the `slotguard_client` tag of
        the PaymentIntents (pi_) and Refunds (re_) named in `references` (other ids are
        skipped). Returns (how many were changed, the ids Stripe refused to change: an object
        in a state that takes no update). Raises AdapterError when Stripe cannot be reached."""
        changed, refused = 0, []
        for reference in dict.fromkeys(references):
            method: Any
            if reference.startswith("pi_"):
                method, what = self.client.v1.payment_intents.update, "payment tag"
            elif reference.startswith("re_"):
                method, what = self.client.v1.refunds.update, "refund tag"
            else:
                continue
            try:
                self.calls.call(what, method, reference, {"metadata": {CLIENT_TAG: pseudonym}})
            except AdapterError as error:
                if error.retryable:
                    raise
                refused.append(reference)
                continue
            changed += 1
        return changed, refused

    def retag_customer_intents(self, email: str, pseudonym: str) -> tuple[int, list[str]]:
        """Before the customers of `email` are deleted: every PaymentIntent (a fee, a payment
        made through a link) and SetupIntent (a card saved on a setup page) of the customers
        Slotguard made or adopted whose `slotguard_client` tag is the address gets `pseudonym`
        there instead. (Checkout Sessions carry the tag too, but Stripe takes no update of a
        session's metadata: they keep it.) Returns (how many were changed, the ids Stripe
        refused to change). Raises AdapterError when Stripe cannot be reached."""
        key = email_key(email)
        found = self.calls.list_all("customer lookup", self.client.v1.customers.list, {"email": key, "limit": 100})
        changed, refused = 0, []
        for customer in found:
            if (customer.get("metadata") or {}).get(CLIENT_TAG) != key:
                continue  # not ours (forget_customer leaves it alone too)
            params = {"customer": customer["id"], "limit": 100}
            listed: list[tuple[str, Any, dict]] = [
                *(("payment tag", self.client.v1.payment_intents.update, intent)
                  for intent in self.calls.list_all("payments", self.client.v1.payment_intents.list, params)),
                *(("card setup tag", self.client.v1.setup_intents.update, intent)
                  for intent in self.calls.list_all("card setups", self.client.v1.setup_intents.list, params)),
            ]
            for what, method, intent in listed:
                if email_key(str((intent.get("metadata") or {}).get(CLIENT_TAG) or "")) != key:
                    continue
                try:
                    self.calls.call(what, method, intent["id"], {"metadata": {CLIENT_TAG: pseudonym}})
                except AdapterError as error:
                    if error.retryable:
                        raise
                    refused.append(intent["id"])
                    continue
                changed += 1
        return changed, refused

    def _delete_customer(self, customer: str) -> dict[str, Any]:
        try:
            return plain(self.client.v1.customers.delete(customer))
        except stripe.InvalidRequestError as error:
            if error.code == "resource_missing":  # deleted already (an earlier run, the dashboard)
                return {"id": customer, "deleted": True}
            raise

    def card_on_file(self, customer: str) -> str | None:
        """The customer's default payment method, else their most recently saved card, else None.

        (Checkout in setup mode saves a card without making it the default.)
        """
        record = plain(self.calls.call("customer", self.client.v1.customers.retrieve, customer))
        default = (record.get("invoice_settings") or {}).get("default_payment_method")
        if isinstance(default, dict):
            default = default.get("id")
        if default:
            return default
        params = {"customer": customer, "type": "card", "limit": 100}
        cards = self.calls.list_all("cards", self.client.v1.payment_methods.list, params)
        return max(cards, key=lambda card: card.get("created", 0))["id"] if cards else None

    def setup_link(self, email: str, name: str = "", card_terms: str = "") -> str:
        """URL of a Checkout Session (mode=setup) where the client saves a card, with
        `card_terms` shown beside the button (`custom_text.submit`; Stripe gives it back in the
        completed session, which is how the webhook records what the client saw). An open
        session is reused only when it shows the same terms. Raises AdapterError."""
        customer = self.customer_id(email, name)
        assert customer is not None
        card_terms = card_terms[:CUSTOM_TEXT_LIMIT]
        for session in self.open_sessions(customer):
            if (session.get("mode") == "setup" and (session.get("metadata") or {}).get(PURPOSE_TAG) == "card_setup"
                    and shown_terms(session) == card_terms):
                return session["url"]
        tags = {CLIENT_TAG: email_key(email), PURPOSE_TAG: "card_setup"}
        params: dict[str, Any] = {
            "mode": "setup",
            "customer": customer,
            "currency": self.currency.lower(),
            "payment_method_types": ["card"],
            "setup_intent_data": {"metadata": tags},
            "metadata": tags,
        }
        if card_terms:
            params["custom_text"] = {"submit": {"message": card_terms}}
        self._add_return_urls(params)
        terms_key = f"-{_digest(card_terms)}" if card_terms else ""
        options = {"idempotency_key": f"slotguard-setup-{_digest(email_key(email))}{terms_key}-{int(time.time() // 3600)}"}
        session = plain(self.calls.call("checkout session", self.client.v1.checkout.sessions.create, params, options))
        log_event(logging.INFO, "stripe.setup_link", customer=customer, session=session["id"])
        return session["url"]

    def payment_link(
        self,
        customer: str,
        amount: Money,
        *,
        tags: dict[str, str],
        name: str,
        description: str,
        manual_capture: bool,
        idempotency_key: str,
    ) -> str:
        """URL of a Checkout Session (mode=payment) for `amount`, tagged with `tags` (which
        must hold the action id). The card is saved for later fees. Raises AdapterError."""
        for session in self.open_sessions(customer):
            if (
                session.get("mode") == "payment"
                and (session.get("metadata") or {}).get(ACTION_TAG) == tags[ACTION_TAG]
                and session.get("amount_total") == amount.minor
                and str(session.get("currency", "")).upper() == amount.currency
            ):
                return session["url"]
        intent_data: dict[str, Any] = {"metadata": tags, "description": description, "setup_future_usage": "off_session"}
        if manual_capture:
            intent_data["capture_method"] = "manual"
        params: dict[str, Any] = {
            "mode": "payment",
            "customer": customer,
            "payment_method_types": ["card"],
            "line_items": [{
                "quantity": 1,
                "price_data": {"currency": amount.currency.lower(), "unit_amount": amount.minor, "product_data": {"name": name}},
            }],
            "payment_intent_data": intent_data,
            "metadata": tags,
        }
        self._add_return_urls(params)
        # A session is not money; the hour bucket only collapses retries of this one request.
        options = {"idempotency_key": f"{idempotency_key}-checkout-{int(time.time() // 3600)}"}
        session = plain(self.calls.call("checkout session", self.client.v1.checkout.sessions.create, params, options))
        log_event(logging.INFO, "stripe.payment_link", action_id=tags[ACTION_TAG], session=session["id"])
        return session["url"]

    def completed_setup_pages(self, customer: str) -> list[CardPage]:
        """Each card-setup page of `customer` that was completed (what it showed, when the
        card was saved), oldest first. The Session has no completion
        time: the saved card's (PaymentMethod's) creation is when the client submitted it, else
        the SetupIntent's. Raises AdapterError."""
        params = {"customer": customer, "status": "complete", "limit": 100}
        sessions = self.calls.list_all("checkout sessions", self.client.v1.checkout.sessions.list, params)
        found = []
        for session in sessions:
            if session.get("mode") != "setup" or (session.get("metadata") or {}).get(PURPOSE_TAG) != "card_setup":
                continue
            when = int(session.get("created") or 0)
            intent_id = session.get("setup_intent")
            if isinstance(intent_id, dict):
                intent_id = intent_id.get("id")
            if intent_id:
                intent = plain(self.calls.call("setup intent", self.client.v1.setup_intents.retrieve, intent_id))
                when = int(intent.get("created") or when)
                method = intent.get("payment_method")
                if isinstance(method, str) and method:
                    method = plain(self.calls.call("payment method", self.client.v1.payment_methods.retrieve, method))
                if isinstance(method, dict) and method.get("created"):
                    when = int(method["created"])
            found.append(CardPage(str(session["id"]), datetime.fromtimestamp(when, UTC), shown_terms(session)))
        return sorted(found, key=lambda page: page.completed_at)

    def open_sessions(self, customer: str) -> list[dict]:
        params = {"customer": customer, "status": "open", "limit": 100}
        return self.calls.list_all("checkout sessions", self.client.v1.checkout.sessions.list, params)

    def sessions_for(self, customer: str, action_id: str) -> list[dict]:
        """Every Checkout Session of `customer` tagged with `action_id`, whatever its status
        (a list, not a search: it sees a session completed a second ago)."""
        params = {"customer": customer, "limit": 100}
        sessions = self.calls.list_all("checkout sessions", self.client.v1.checkout.sessions.list, params)
        return [session for session in sessions if (session.get("metadata") or {}).get(ACTION_TAG) == action_id]

    def expire_session(self, session_id: str) -> None:
        """Close an open Checkout Session: its link no longer takes payment. Raises AdapterError
        (also when the session was completed or expired meanwhile: look again)."""
        self.calls.call("expire checkout session", self.client.v1.checkout.sessions.expire, session_id)
        log_event(logging.INFO, "stripe.link_withdrawn", session=session_id)

    def _add_return_urls(self, params: dict[str, Any]) -> None:
        if self.return_url:
            params["success_url"] = self.return_url
            params["cancel_url"] = self.return_url
