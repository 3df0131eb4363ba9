"""The Stripe payment provider: fees, deposit holds, captures, releases and refunds.

Exactly once: the engine marks an action `executing` before calling `execute` and calls it
again after a crash. So every write carries `action.idempotency_key`, and before creating
anything `execute` looks for an object already tagged `metadata.slotguard_action_id` (Stripe
forgets idempotency keys after 24 hours; localstripe ignores them). Captures and releases
create nothing: they read the hold's state first, so running them twice is harmless.

Declines and authentication requests are answers, not errors: they come back as
PaymentResult(status="needs_client_action") with a Stripe Checkout link the client can pay.
Real Stripe raises CardError(code="authentication_required") where localstripe returns a
PaymentIntent in `requires_action`; both end up the same way.

Logs are key=value lines with the action id; the secret key and card data never appear.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import stripe

from integration.rate_limiter import RateLimiter
from integration.stripe_amounts import stripe_currency, why_not_chargeable
from integration.stripe_calls import ACTION_TAG, CLIENT_TAG, AmountRefused, StripeCalls, log_event, plain
from integration.stripe_customers import StripeCustomers, email_key
from integration.stripe_http import LimitedRequestsClient
from slotguard.config.schema import ConfigError, Settings
from slotguard.domain.interfaces import AdapterError, CardPage, PaymentResult, RateGate
from slotguard.domain.model import CLIENT_PAYS, Action, ActionKind
from slotguard.domain.money import Money

DRY_RUN = "dry_run"  # PaymentResult.status in dry-run mode: nothing was sent to Stripe
RATE_PER_SECOND = {"test": 25.0, "live": 100.0}

# Best first: when several PaymentIntents carry one action id, the one that holds money wins.
_STATUS_RANK = {
    "succeeded": 0,
    "requires_capture": 0,
    "processing": 1,
    "requires_action": 2,
    "requires_confirmation": 2,
    "requires_payment_method": 3,
    "canceled": 4,
}
_LINE_ITEM_NAMES = {
    "no_show": "Missed appointment fee",
    "late_cancel": "Late cancellation fee",
    "deposit": "Deposit",
}


def key_mode(secret: str) -> str:
    """Return "test" or "live" for a Stripe secret or restricted key.

    Raises ConfigError (never quoting the key) when it is not a secret key at all.
    """
    for prefix, mode in (("sk_test_", "test"), ("rk_test_", "test"), ("sk_live_", "live"), ("rk_live_", "live")):
        if secret.startswith(prefix):
            return mode
    if secret.startswith("pk_"):
        raise ConfigError(["payments.secret_key: this is a publishable key (pk_...); use the secret key (sk_...) or a restricted key (rk_...)"])
    raise ConfigError(["payments.secret_key: not a Stripe secret key (expected sk_test_, sk_live_, rk_test_ or rk_live_)"])


def check_key_matches_mode(secret: str, mode: str) -> None:
    """Raise ConfigError when payments.mode ("test" | "live") disagrees with the key's prefix."""
    actual = key_mode(secret)
    if actual != mode:
        raise ConfigError(
            [
                f'payments.mode: is "{mode}" but payments.secret_key is a {actual}-mode key; '
                f'set mode = "{actual}" or use a {mode}-mode key'
            ]
        )


def open_provider(
    settings: Settings,
    *,
    client: stripe.StripeClient | None = None,
    timeout_seconds: float = 30.0,
    max_network_retries: int = 2,
    rate_per_second: float | None = None,
    rate_limit_retries: int = 4,
    backoff_seconds: float = 0.5,
    lookup: str = "list",
    return_url: str | None = None,
    account_gate: Callable[[str, str], RateGate] | None = None,
) -> StripeProvider:
    """Build the provider from `settings.payments` after checking mode against the key.

    `lookup` is how crash recovery finds our objects: "list" (the customer's PaymentIntents,
    read-after-write consistent) or "search" (Stripe's Search API, which can lag by about a
    minute). `return_url` is where Checkout sends the client afterwards (default: the
    practice's booking link). Every HTTP request, stripe-python's network retries included,
    takes a token from a limiter of `rate_per_second` (default: Stripe's limit for the mode);
    a `client` passed in is used as it is, unlimited. `account_gate(secret, mode)`, when
    given (a deployment: Gates.stripe), is the gate shared by every worker using this Stripe
    account, taken instead of the in-process limiter. Raises ConfigError for a missing key or
    a mode mismatch.
    """
    payments = settings.payments
    if payments.secret_key is None:
        raise ConfigError(['payments.secret_key: the stripe provider needs secret_key = { env = "STRIPE_SECRET_KEY" }'])
    if lookup not in ("list", "search"):
        raise ValueError('lookup must be "list" or "search"')
    secret = payments.secret_key.resolve()
    check_key_matches_mode(secret, payments.mode)
    if client is None:
        gate = account_gate(secret, payments.mode) if account_gate else RateLimiter(rate_per_second or RATE_PER_SECOND[payments.mode])
        http_client = LimitedRequestsClient([gate], timeout=timeout_seconds)
        client = stripe.StripeClient(
            secret,
            base_addresses={"api": payments.api_base.rstrip("/")} if payments.api_base else None,
            max_network_retries=max_network_retries,
            http_client=http_client,
        )
    return StripeProvider(
        client,
        mode=payments.mode,
        dry_run=payments.dry_run,
        currency=settings.practice.currency,
        max_single_charge=payments.max_single_charge,
        rate_limit_retries=rate_limit_retries,
        backoff_seconds=backoff_seconds,
        lookup=lookup,
        return_url=settings.practice.booking_link if return_url is None else return_url,
    )


class StripeProvider:
    """PaymentProvider for Stripe. Thread-safe for concurrent `execute` calls."""

    name = "stripe"

    def __init__(
        self,
        client: stripe.StripeClient,
        *,
        mode: str,
        dry_run: bool,
        currency: str,
        max_single_charge: Money | None,
        rate_limit_retries: int = 4,
        backoff_seconds: float = 0.5,
        lookup: str = "list",
        return_url: str = "",
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.client = client
        self.mode = mode
        self.dry_run = dry_run
        self.currency = currency.upper()
        self.max_single_charge = max_single_charge
        self.lookup = lookup
        self.calls = StripeCalls(rate_limit_retries=rate_limit_retries, backoff_seconds=backoff_seconds, sleep=sleep)
        self.customers = StripeCustomers(client, self.calls, currency=currency, return_url=return_url)

    # -- the PaymentProvider contract ---------------------------------------------------

    def execute(self, action: Action) -> PaymentResult:
        """Carry out a charge, hold, capture, release or refund.

        Given an Action (capture/release/refund need context["target_external_id"], the
        PaymentIntent id of the hold or charge; refunds may add
        context["already_refunded_minor"]). Returns PaymentResult with status "done"
        (external_id: PaymentIntent id, or Refund id for refunds; a refund asking for more
        than is left refunds the rest, extra["refunded_minor"] saying how much, "0" with no
        Refund when nothing was left), "needs_client_action"
        (declined, authentication needed or no card: `payment_link` is a Checkout link),
        "not_attempted" (detail says why) or "dry_run". A charge with context
        `client_pays` (a prepayment) never uses the saved card: it is "needs_client_action"
        with a Checkout link (detail "payment_requested"). Raises AdapterError(retryable=...)
        on Stripe or network failure; calling again for the same action is always safe.
        """
        handlers = {
            ActionKind.CHARGE: self._charge_or_hold,
            ActionKind.HOLD: self._charge_or_hold,
            ActionKind.CAPTURE: self._capture,
            ActionKind.RELEASE: self._release,
            ActionKind.REFUND: self._refund,
        }
        handler = handlers.get(ActionKind(action.kind))
        if handler is None:
            raise AdapterError(f"the stripe provider cannot carry out {action.kind} actions", retryable=False)
        if self.dry_run:
            log_event(logging.INFO, "stripe.dry_run", action_id=action.id, kind=action.kind, amount=action.amount)
            what = f"{action.kind} {action.amount}" if action.amount else str(action.kind)
            return PaymentResult(status=DRY_RUN, detail=f"dry run: would {what} for {action.client_email}; nothing was sent to Stripe")
        try:
            return handler(action)
        except AmountRefused as refusal:
            log_event(logging.WARNING, "stripe.not_attempted", action_id=action.id, reason="amount_too_small")
            return PaymentResult(status="not_attempted", detail=str(refusal))

    def resolve(self, action: Action) -> PaymentResult | None:
        """What Stripe already did for `action`, by lookup only (crash recovery; creates and
        changes nothing, not even a payment link).

        A charge or hold: its PaymentIntent holding the money ("done"), or declined with an
        open Checkout link for the client ("needs_client_action" with that link; also a
        link made when no card was on file). A refund: our Refund on the payment ("done",
        with the amount refunded). A capture or release: the hold already captured or
        released ("done"). None when nothing was found, or nothing that cannot safely be
        carried out again (a declined attempt whose link was never made): carrying the action
        out again is then safe, as `execute` finds what exists first. Dry run: None.
        Raises AdapterError when Stripe cannot be asked.
        """
        if self.dry_run:
            return None
        kind = ActionKind(action.kind)
        if kind in (ActionKind.CHARGE, ActionKind.HOLD):
            return self._resolve_payment(action)
        if kind is ActionKind.REFUND:
            found = self._find_target_intent(action, expand=["latest_charge"])
            intent = self._paid_intent(found) if found is not None else None
            if intent is None:
                return None
            refunds = self.refunds_on(intent["id"])
            ours = [refund for refund in refunds if (refund.get("metadata") or {}).get(ACTION_TAG) == action.id]
            return self._found_refund(action, intent, ours[0], refunds) if ours else None
        intent = self._find_target_intent(action)
        if intent is None:
            return None
        if kind is ActionKind.CAPTURE and intent["status"] == "succeeded":
            return PaymentResult(status="done", external_id=intent["id"], detail="already captured")
        if kind is ActionKind.RELEASE and intent["status"] == "canceled":
            return PaymentResult(status="done", external_id=intent["id"], detail="already released")
        return None

    def _resolve_payment(self, action: Action) -> PaymentResult | None:
        customer = self.customers.customer_id(action.client_email, action.client_name, create=False)
        if customer is None:
            return None
        intents = self._intents_for(action, customer)
        if intents and (intents[0]["status"] == "succeeded" or (intents[0]["status"] == "requires_capture" and action.kind == ActionKind.HOLD)):
            return PaymentResult(status="done", external_id=intents[0]["id"], extra={"customer": customer, "stripe_status": intents[0]["status"]})
        if intents and intents[0]["status"] == "processing":
            raise AdapterError(f"Stripe is still processing payment {intents[0]['id']}; it will be checked again", retryable=True)
        open_links = [s for s in self.customers.sessions_for(customer, action.id) if s.get("status") == "open" and s.get("mode") == "payment"]
        if not open_links:
            return None
        intent_id = intents[0]["id"] if intents else ""
        error = (intents[0].get("last_payment_error") or {}) if intents else {}
        code = error.get("decline_code") or error.get("code") or ("card_declined" if intents else "no_card_on_file")
        log_event(logging.INFO, "stripe.resolved_link", action_id=action.id, payment_intent=intent_id, session=open_links[0]["id"])
        return PaymentResult(status="needs_client_action", external_id=intent_id, detail=code, payment_link=open_links[0]["url"],
                             extra={"customer": customer})

    def status_of(self, action: Action) -> PaymentResult | None:
        """Polling fallback for a charge or hold: what Stripe holds for `action` now.

        Returns None when no PaymentIntent carries the action id, else the same result
        `execute` would give (a client who paid through the link shows up as "done").
        Creates nothing, except a fresh Checkout link when one is still needed.
        """
        customer = self.customers.customer_id(action.client_email, action.client_name, create=False)
        if customer is None:
            return None
        intents = self._intents_for(action, customer)
        return self._result_for_intent(action, customer, intents[0]) if intents else None

    def card_setup_link(self, client_email: str, client_name: str = "", card_terms: str = "") -> str:
        """A Stripe Checkout link (mode=setup) where the client saves a card for later fees,
        showing `card_terms` beside the button (the session's custom text).

        Reuses an open session for the same client and terms. Returns its URL; raises AdapterError.
        """
        return self.customers.setup_link(client_email, client_name, card_terms)

    def payment_link(self, action: Action) -> str:
        """A Stripe Checkout link (mode=payment) for the client to pay `action.amount` now.

        Holds get a link that authorises only (capture_method=manual). The PaymentIntent the
        session creates carries the action id, so `execute`/`status_of` see the payment.
        Reuses an open session for the same action and amount. Raises AdapterError.
        """
        customer = self.customers.customer_id(action.client_email, action.client_name)
        return self._payment_link(action, customer)

    def has_card_on_file(self, client_email: str) -> bool:
        """Whether the client has a saved card we could charge off-session."""
        customer = self.customers.customer_id(client_email, "", create=False)
        return customer is not None and self.customers.card_on_file(customer) is not None

    def completed_card_pages(self, client_email: str) -> list[CardPage]:
        """The card-setup pages the client completed (what each showed, when the card was
        saved), for a record when no webhook told. Raises AdapterError."""
        customer = self.customers.customer_id(client_email, "", create=False)
        return self.customers.completed_setup_pages(customer) if customer else []

    def verify_connection(self) -> None:
        """One cheap authenticated call (balance), for start-up checks. Raises AdapterError."""
        self.calls.call("balance", self.client.v1.balance.retrieve)

    # -- reads for reconciliation (integration/stripe_reconcile.py) ----------------------

    def customer_payment_intents(self, client_email: str) -> list[dict]:
        """Every PaymentIntent of the client's Stripe customer (any age, any tag); [] when
        Stripe has no customer for the email. Raises AdapterError."""
        customer = self.customers.customer_id(client_email, "", create=False) if client_email.strip() else None
        if customer is None:
            return []
        return self.calls.list_all("payment intents", self.client.v1.payment_intents.list, {"customer": customer, "limit": 100})

    @staticmethod
    def best_first(intents: list[dict]) -> list[dict]:
        """PaymentIntents ordered as recovery prefers them: the one holding money first."""
        return sorted(intents, key=lambda intent: _STATUS_RANK.get(intent["status"], 9))

    def payment_intent(self, intent_id: str) -> dict | None:
        """The PaymentIntent with its latest charge expanded, or None when Stripe has no
        such object. Raises AdapterError for other failures."""
        if not intent_id.startswith("pi_"):
            return None
        try:
            return self._retrieve_intent(intent_id, expand=["latest_charge"])
        except AdapterError as error:
            if error.retryable:
                raise
            return None  # Stripe refused the id: no such PaymentIntent in this account

    def refunds_on(self, intent_id: str) -> list[dict]:
        """Every Refund on a PaymentIntent (ours and any made in the dashboard)."""
        return self.calls.list_all("refunds", self.client.v1.refunds.list, {"payment_intent": intent_id, "limit": 100})

    def refund(self, refund_id: str) -> dict | None:
        """The Refund with this id, or None when Stripe has no such object."""
        try:
            return plain(self.calls.call("refund", self.client.v1.refunds.retrieve, refund_id))
        except AdapterError as error:
            if error.retryable:
                raise
            return None

    def created_between(self, resource: str, start: int, end: int) -> list[dict]:
        """Every "payment_intents" or "refunds" object created in [start, end) (Unix times)."""
        method = {"payment_intents": self.client.v1.payment_intents.list, "refunds": self.client.v1.refunds.list}[resource]
        return self.calls.list_all(resource.replace("_", " "), method, {"created": {"gte": start, "lt": end}, "limit": 100})

    # -- charges and holds --------------------------------------------------------------

    def _charge_or_hold(self, action: Action) -> PaymentResult:
        amount = self._required_amount(action)
        refusal = self._refusal(amount)
        if refusal:
            log_event(logging.WARNING, "stripe.not_attempted", action_id=action.id, amount=amount, reason=refusal)
            return PaymentResult(status="not_attempted", detail=refusal)
        customer = self.customers.customer_id(action.client_email, action.client_name)
        existing = self._intents_for(action, customer)
        if existing:
            log_event(logging.INFO, "stripe.recovered", action_id=action.id, payment_intent=existing[0]["id"], status=existing[0]["status"])
            return self._result_for_intent(action, customer, existing[0])
        if action.kind == ActionKind.CHARGE and action.context.get(CLIENT_PAYS):
            # Asked of the client (a prepayment): a payment link only, never the saved card.
            log_event(logging.INFO, "stripe.link_only", action_id=action.id, customer=customer)
            return self._client_action(action, customer, "payment_requested", "")
        card = self.customers.card_on_file(customer)
        if card is None:
            log_event(logging.INFO, "stripe.no_card", action_id=action.id, customer=customer)
            return self._client_action(action, customer, "no_card_on_file", "")
        params: dict[str, Any] = {
            "amount": amount.minor,
            "currency": stripe_currency(amount),
            "customer": customer,
            "payment_method": card,
            "payment_method_types": ["card"],
            "off_session": True,
            "confirm": True,
            "metadata": self._tags(action),
            "description": self._description(action),
        }
        if action.kind == ActionKind.HOLD:
            params["capture_method"] = "manual"
        try:
            intent = plain(self.calls.call(
                f"{action.kind}", self.client.v1.payment_intents.create, params, {"idempotency_key": action.idempotency_key}
            ))
        except stripe.CardError as error:
            body = (error.json_body or {}).get("error", {}) if isinstance(error.json_body, dict) else {}
            code = body.get("decline_code") or body.get("code") or error.code or "card_declined"
            intent_id = (body.get("payment_intent") or {}).get("id", "")
            if not intent_id:
                # localstripe does not return the PaymentIntent with the error; find it.
                found = self._intents_for(action, customer)
                intent_id = found[0]["id"] if found else ""
            log_event(logging.INFO, "stripe.declined", action_id=action.id, payment_intent=intent_id, code=code)
            return self._client_action(action, customer, code, intent_id, message=body.get("message", ""))
        log_event(logging.INFO, f"stripe.{action.kind}", action_id=action.id, payment_intent=intent["id"], status=intent["status"], amount=amount)
        return self._result_for_intent(action, customer, intent)

    def _result_for_intent(self, action: Action, customer: str, intent: dict) -> PaymentResult:
        status = intent["status"]
        extra = {"customer": customer, "stripe_status": status}
        if status == "succeeded" or (status == "requires_capture" and action.kind == ActionKind.HOLD):
            return PaymentResult(status="done", external_id=intent["id"], extra=extra)
        if status == "processing":
            raise AdapterError(f"Stripe is still processing payment {intent['id']}; it will be checked again", retryable=True)
        if status in ("requires_action", "requires_confirmation"):
            return self._client_action(action, customer, "authentication_required", intent["id"])
        if status == "requires_payment_method":
            error = intent.get("last_payment_error") or {}
            code = error.get("decline_code") or error.get("code") or "card_declined"
            return self._client_action(action, customer, code, intent["id"], message=error.get("message", ""))
        raise AdapterError(
            f"payment {intent['id']} for this {action.kind} was cancelled in Stripe ({status}); plan a new one",
            retryable=False,
        )

    def _client_action(self, action: Action, customer: str, code: str, intent_id: str, message: str = "") -> PaymentResult:
        extra = {"customer": customer}
        if message:
            extra["message"] = message
        try:
            link = self._payment_link(action, customer)
        except AdapterError as error:
            # The decline is a fact to record now; a link can be made later with payment_link().
            link = ""
            extra["link_error"] = str(error)
        return PaymentResult(status="needs_client_action", external_id=intent_id, detail=code, payment_link=link, extra=extra)

    # -- captures, releases, refunds ----------------------------------------------------

    def _capture(self, action: Action) -> PaymentResult:
        amount = self._required_amount(action)
        intent = self._target_intent(action)
        status = intent["status"]
        if status == "succeeded":
            return PaymentResult(status="done", external_id=intent["id"], detail="already captured")
        if status == "canceled":
            return PaymentResult(
                status="not_attempted",
                external_id=intent["id"],
                detail="the hold was released or expired before capture (card holds last about 7 days, Visa 4 days 18 hours); charge the fee instead",
            )
        if status != "requires_capture":
            return PaymentResult(status="not_attempted", external_id=intent["id"], detail=f"the hold was never authorised (Stripe status {status})")
        self._same_currency(amount, intent)
        if amount.minor > intent["amount"]:
            held = Money(intent["amount"], amount.currency)
            return PaymentResult(status="not_attempted", external_id=intent["id"], detail=f"cannot capture {amount}: only {held} is held")
        refusal = why_not_chargeable(amount)
        if refusal:
            return PaymentResult(status="not_attempted", external_id=intent["id"], detail=refusal)
        params = {} if amount.minor == intent["amount"] else {"amount_to_capture": amount.minor}
        captured = plain(self.calls.call(
            "capture", self.client.v1.payment_intents.capture, intent["id"], params, {"idempotency_key": action.idempotency_key}
        ))
        log_event(logging.INFO, "stripe.capture", action_id=action.id, payment_intent=intent["id"], amount=amount, status=captured["status"])
        return PaymentResult(status="done", external_id=intent["id"], extra={"captured_minor": str(amount.minor)})

    def _release(self, action: Action) -> PaymentResult:
        intent = self._target_intent(action)
        status = intent["status"]
        if status == "canceled":
            return PaymentResult(status="done", external_id=intent["id"], detail="already released")
        if status == "succeeded":
            return PaymentResult(status="not_attempted", external_id=intent["id"], detail="the hold was already captured; refund it instead")
        if status == "processing":
            raise AdapterError(f"Stripe is still processing {intent['id']}; release will be retried", retryable=True)
        self.calls.call("release", self.client.v1.payment_intents.cancel, intent["id"], {}, {"idempotency_key": action.idempotency_key})
        log_event(logging.INFO, "stripe.release", action_id=action.id, payment_intent=intent["id"])
        return PaymentResult(status="done", external_id=intent["id"])

    def _refund(self, action: Action) -> PaymentResult:
        found = self._find_target_intent(action, expand=["latest_charge"])
        intent = self._paid_intent(found) if found is not None else None
        if intent is None or intent["status"] != "succeeded":
            if action.context.get("target_payment_status") == "unpaid" and (intent is None or intent["status"] != "requires_capture"):
                # The ledger says the client was asked to pay through a link and has not:
                # there is nothing to give back, but the link must stop taking money.
                withdrawn = self._withdraw_request(action, intent)
                if isinstance(withdrawn, PaymentResult):
                    return withdrawn
                intent = withdrawn  # paid a moment ago after all: refund that payment
            elif intent is None:
                raise self._no_target(action)
            else:
                hint = "; release the hold instead" if intent["status"] == "requires_capture" else ""
                return PaymentResult(status="not_attempted", detail=f"nothing was captured on {intent['id']} to refund{hint}")
        # Our own refund, made before a crash, must be found before the amount check below
        # (it already counts as refunded there).
        refunds = self.refunds_on(intent["id"])
        for refund in refunds:
            if (refund.get("metadata") or {}).get(ACTION_TAG) == action.id:
                log_event(logging.INFO, "stripe.recovered", action_id=action.id, refund=refund["id"])
                return self._found_refund(action, intent, refund, refunds)
        charge = intent.get("latest_charge") or {}
        if isinstance(charge, str):
            charge = plain(self.calls.call("charge", self.client.v1.charges.retrieve, charge))
        captured = charge.get("amount_captured", charge.get("amount", intent["amount"]))
        refundable = captured - charge.get("amount_refunded", 0)
        ledger_refunded = action.context.get("already_refunded_minor")
        if ledger_refunded is not None:
            refundable = min(refundable, captured - int(ledger_refunded))
        currency = intent["currency"].upper()
        amount = action.amount or Money(max(refundable, 0), currency)
        self._same_currency(amount, intent)
        if amount.minor <= 0:
            return PaymentResult(status="not_attempted", external_id="", detail=f"a refund of {amount} gives nothing back")
        if amount.minor > refundable:
            # Given back already, in part or whole: by a refund made in the dashboard (or a
            # ledger that knows of more refunds than Stripe shows yet). Give back what is left.
            return self._refund_rest(action, intent, amount, max(refundable, 0), Money(captured, currency), refunds)
        return self._create_refund(action, intent, amount)

    @staticmethod
    def _outside(refunds: list[dict]) -> list[dict]:
        """The live refunds Slotguard did not make (no action tag): made in the dashboard."""
        return [r for r in refunds if r.get("status") not in ("failed", "canceled") and not (r.get("metadata") or {}).get(ACTION_TAG)]

    def _found_refund(self, action: Action, intent: dict, refund: dict, refunds: list[dict]) -> PaymentResult:
        """Our refund for `action`, made before a crash: done, with what it gave back."""
        extra = {"payment_intent": intent["id"]}
        if action.amount is not None and refund.get("amount") != action.amount.minor:
            earlier = [r for r in refunds if r.get("created", 0) <= refund.get("created", 0) and r["id"] != refund["id"]]
            extra.update({"refunded_minor": str(refund["amount"]), "asked_minor": str(action.amount.minor),
                          "refunded_before_minor": str(sum(r["amount"] for r in self._outside(earlier))),
                          "refunded_outside": ",".join(r["id"] for r in self._outside(earlier))})
        return PaymentResult(status="done", external_id=refund["id"], extra=extra)

    def _refund_rest(self, action: Action, intent: dict, asked: Money, left_minor: int, captured: Money, refunds: list[dict]) -> PaymentResult:
        """A refund asked for more than is left on `intent`: refund what is left (nothing, when
        nothing is), saying how much was given back before and by which refunds."""
        outside = self._outside(refunds)
        before = Money(captured.minor - left_minor, captured.currency)
        where = "outside Slotguard (in the Stripe dashboard)" if outside else "already"
        extra = {"asked_minor": str(asked.minor), "refunded_before_minor": str(before.minor),
                 "refunded_outside": ",".join(r["id"] for r in outside)}
        log_event(logging.WARNING, "stripe.refund_rest", action_id=action.id, payment_intent=intent["id"], asked=asked,
                  left=Money(left_minor, captured.currency), refunded_before=before)
        if left_minor <= 0:
            return PaymentResult(
                status="done", external_id="",
                detail=f"nothing refunded: the whole {captured} had been refunded {where}",
                extra={**extra, "refunded_minor": "0", "payment_intent": intent["id"]},
            )
        rest = Money(left_minor, captured.currency)
        result = self._create_refund(action, intent, rest)
        result.detail = f"refunded the {rest} left of {asked}: {before} of the {captured} had been refunded {where}"
        result.extra.update({**extra, "refunded_minor": str(rest.minor)})
        return result

    def _create_refund(self, action: Action, intent: dict, amount: Money) -> PaymentResult:
        refund = plain(self.calls.call(
            "refund",
            self.client.v1.refunds.create,
            {"payment_intent": intent["id"], "amount": amount.minor, "metadata": self._tags(action)},
            {"idempotency_key": action.idempotency_key},
        ))
        if refund.get("status") in ("failed", "canceled"):
            raise AdapterError(f"Stripe could not refund {amount} ({refund.get('failure_reason') or refund['status']})", retryable=False)
        log_event(logging.INFO, "stripe.refund", action_id=action.id, refund=refund["id"], payment_intent=intent["id"], amount=amount)
        return PaymentResult(status="done", external_id=refund["id"], extra={"payment_intent": intent["id"], "stripe_status": str(refund.get("status"))})

    def _withdraw_request(self, action: Action, intent: dict | None) -> PaymentResult | dict:
        """A refund of a fee never paid (waived while its payment link was out): expire the
        open Checkout Sessions for the fee and cancel its declined PaymentIntent, so the
        client can no longer pay what is no longer owed. Returns the "done" result (nothing
        taken, nothing refunded), or the PaymentIntent when the client paid through the link
        before it closed (the caller refunds it). Raises AdapterError on Stripe trouble: the
        refund is tried again, and nothing is concluded until every session is closed."""
        target = str(action.context.get("target_action_id") or "")
        customer = self.customers.customer_id(action.client_email, action.client_name, create=False)
        if target and customer:
            for session in self.customers.sessions_for(customer, target):
                if session.get("status") == "open":
                    try:
                        self.customers.expire_session(session["id"])
                    except AdapterError as error:
                        if error.retryable:
                            raise
                        # Completed or expired just now: the second look below decides.
            for session in self.customers.sessions_for(customer, target):
                if session.get("status") == "open":
                    raise AdapterError(f"the payment link {session['id']} is still open; trying again", retryable=True)
                if session.get("status") == "complete" and session.get("payment_intent"):
                    paid = self._retrieve_intent(str(session["payment_intent"]), ["latest_charge"])
                    if paid["status"] == "succeeded":
                        log_event(logging.INFO, "stripe.paid_before_withdrawal", action_id=action.id, payment_intent=paid["id"])
                        return paid
        if intent is not None and intent["status"] in ("requires_payment_method", "requires_confirmation", "requires_action"):
            self.calls.call("cancel payment", self.client.v1.payment_intents.cancel, intent["id"], {},
                            {"idempotency_key": f"{action.idempotency_key}-withdraw"})
        log_event(logging.INFO, "stripe.request_withdrawn", action_id=action.id, target=target)
        return PaymentResult(
            status="done",
            external_id=intent["id"] if intent is not None else "",
            detail="nothing had been paid, so nothing was refunded; the payment link no longer works",
            extra={"nothing_taken": "yes"},
        )

    def _paid_intent(self, intent: dict) -> dict:
        """If `intent` failed but the client then paid the same action through Checkout, the
        money sits on that second PaymentIntent (same action tag): use it."""
        if intent["status"] == "succeeded":
            return intent
        tag = (intent.get("metadata") or {}).get(ACTION_TAG)
        if not tag or not intent.get("customer"):
            return intent
        for other in self._find_tagged(intent["customer"], tag, None):
            if other["status"] == "succeeded":
                return self._retrieve_intent(other["id"], expand=["latest_charge"])
        return intent

    def _payment_link(self, action: Action, customer: str) -> str:
        return self.customers.payment_link(
            customer,
            self._required_amount(action),
            tags=self._tags(action),
            name=self._line_item_name(action),
            description=self._description(action),
            manual_capture=action.kind == ActionKind.HOLD,
            idempotency_key=action.idempotency_key,
        )

    # -- lookups -----------------------------------------------------------------------

    def _intents_for(self, action: Action, customer: str) -> list[dict]:
        """PaymentIntents tagged with `action.id`, best status first."""
        # Our objects are made after the action was planned; a day's margin covers clock skew.
        # A ledger written with a simulated clock (`run --once --now` ahead of time) must not
        # push the window past objects Stripe stamped with the real time.
        since = int(min(action.created_at.timestamp(), time.time())) - 86400 if action.created_at else None
        found = self._find_tagged(customer, action.id, since)
        return sorted(found, key=lambda intent: _STATUS_RANK.get(intent["status"], 9))

    def _find_tagged(self, customer: str, action_id: str, since: int | None) -> list[dict]:
        if self.lookup == "search":
            query = f"metadata['{ACTION_TAG}']:'{action_id.replace(chr(39), '')}'"
            result = self.calls.call("search", self.client.v1.payment_intents.search, {"query": query, "limit": 100})
            return [plain(intent) for intent in result.data]
        params: dict[str, Any] = {"customer": customer, "limit": 100}
        if since:
            params["created"] = {"gte": since}
        intents = self.calls.list_all("payment intents", self.client.v1.payment_intents.list, params)
        return [intent for intent in intents if (intent.get("metadata") or {}).get(ACTION_TAG) == action_id]

    def _retrieve_intent(self, intent_id: str, expand: list[str] | None = None) -> dict:
        params = {"expand": expand} if expand else {}
        return plain(self.calls.call("payment intent", self.client.v1.payment_intents.retrieve, intent_id, params))

    # -- small helpers -----------------------------------------------------------------

    def _refusal(self, amount: Money) -> str:
        cap = self.max_single_charge
        if cap is not None and (cap.currency != amount.currency or amount > cap):
            return f"{amount} is above payments.max_single_charge ({cap}); nothing was charged"
        return why_not_chargeable(amount)

    @staticmethod
    def _required_amount(action: Action) -> Money:
        if action.amount is None:
            raise AdapterError(f"{action.kind} action {action.id} has no amount", retryable=False)
        return action.amount

    def _target_intent(self, action: Action, expand: list[str] | None = None) -> dict:
        """The PaymentIntent a capture, release or refund acts on: context["target_external_id"],
        or else the one tagged with context["target_action_id"] (a fee the client paid
        through a link after no card was on file has no id in the ledger)."""
        intent = self._find_target_intent(action, expand)
        if intent is None:
            raise self._no_target(action)
        return intent

    @staticmethod
    def _no_target(action: Action) -> AdapterError:
        return AdapterError(
            f"{action.kind} action {action.id}: no Stripe payment found to act on "
            "(context target_external_id / target_action_id)",
            retryable=False,
        )

    def _find_target_intent(self, action: Action, expand: list[str] | None = None) -> dict | None:
        """_target_intent, or None when Stripe holds no such payment."""
        target = str(action.context.get("target_external_id") or "")
        if target.startswith("pi_"):
            return self._retrieve_intent(target, expand)
        target_action = action.context.get("target_action_id") or action.reports_on
        if target_action:
            customer = self.customers.customer_id(action.client_email, action.client_name, create=False)
            tagged = self._find_tagged(customer, str(target_action), None) if customer else []
            tagged.sort(key=lambda intent: _STATUS_RANK.get(intent["status"], 9))
            if tagged:
                return self._retrieve_intent(tagged[0]["id"], expand)
        return None

    @staticmethod
    def _same_currency(amount: Money, intent: dict) -> None:
        if amount.currency != intent["currency"].upper():
            raise AdapterError(f"{amount} is not in the currency of payment {intent['id']} ({intent['currency'].upper()})", retryable=False)

    @staticmethod
    def _tags(action: Action) -> dict[str, str]:
        return {
            ACTION_TAG: action.id,
            CLIENT_TAG: email_key(action.client_email),
            "slotguard_kind": str(action.kind),
            "slotguard_policy": action.policy,
            "slotguard_event": action.event_ref,
        }

    @staticmethod
    def _line_item_name(action: Action) -> str:
        name = action.context.get("line_item_name") or _LINE_ITEM_NAMES.get(action.policy, "Appointment fee")
        if action.appointment_start and not action.context.get("line_item_name"):
            name = f"{name}, {action.appointment_start:%Y-%m-%d %H:%M}"
        return str(name)

    def _description(self, action: Action) -> str:
        return f"{self._line_item_name(action)} (Slotguard {action.kind}, {action.policy})"
