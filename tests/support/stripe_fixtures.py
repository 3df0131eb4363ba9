"""pytest fixtures for the Stripe adapter: localstripe, the gap-filling proxy, settings,
a provider wired to them, and helpers to set up clients and build money actions.

Register with `from tests.support.stripe_fixtures import *  # noqa: F401,F403` in a
conftest.py (or `-p tests.support.stripe_fixtures`).

localstripe runs once per session as a subprocess (tests/support/localstripe_server.py:
loopback only, a free port, no /tmp/localstripe.pickle), and its data is flushed before
each test, so tests do not see each other's customers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import stripe

from slotguard.config.schema import Settings, parse_settings
from slotguard.domain.model import Action, ActionKind, ActionState
from slotguard.domain.money import Money
from tests.support.stripe_proxy import StripeProxy

LAUNCHER = Path(__file__).with_name("localstripe_server.py")
ROOT = LAUNCHER.parents[2]
TEST_KEY = "sk_test_slotguard_localstripe"
KEY_ENV = "SLOTGUARD_TEST_STRIPE_KEY"


@dataclass
class LocalStripe:
    """A running localstripe process and its base URL."""

    process: subprocess.Popen
    base_url: str
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_localstripe(log_path: Path, timeout: float = 20.0) -> LocalStripe:
    """Start localstripe on a free loopback port; return once it listens. Raises RuntimeError."""
    log_file = open(log_path, "wb")  # noqa: SIM115 - owned by the process for its lifetime
    process = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "--quiet"],
        stdout=subprocess.PIPE,
        stderr=log_file,
        cwd=str(ROOT),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    text = line[0].decode().strip() if line else ""
    if not text.startswith("LOCALSTRIPE_PORT="):
        process.kill()
        raise RuntimeError(f"localstripe did not start within {timeout}s; see {log_path}")
    return LocalStripe(process, f"http://127.0.0.1:{text.split('=', 1)[1]}", log_path)


@pytest.fixture(scope="session")
def stripe_localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    server = start_localstripe(tmp_path_factory.mktemp("localstripe") / "localstripe.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stripe_proxy_server(stripe_localstripe: LocalStripe) -> Iterator[StripeProxy]:
    proxy = StripeProxy(stripe_localstripe.base_url).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def stripe_proxy(stripe_proxy_server: StripeProxy, stripe_localstripe: LocalStripe) -> Iterator[StripeProxy]:
    """The proxy, with localstripe emptied and no faults, idempotency records or sessions."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{stripe_localstripe.base_url}/_config/data", method="DELETE"), timeout=10).close()
    stripe_proxy_server.reset()
    yield stripe_proxy_server
    stripe_proxy_server.reset()


@pytest.fixture
def stripe_admin(stripe_localstripe: LocalStripe) -> stripe.StripeClient:
    """A stripe client talking to localstripe directly (no proxy, no faults): for setting up
    clients' cards and for checking what really exists."""
    return stripe.StripeClient(TEST_KEY, base_addresses={"api": stripe_localstripe.base_url}, max_network_retries=0)


def settings_for(api_base: str, **payments: Any) -> Settings:
    """A minimal valid Settings using the stripe provider against `api_base`."""
    currency = payments.pop("currency", "NOK")
    payments.setdefault("max_single_charge", f"5000 {currency}")  # required with the stripe provider
    return parse_settings(
        {
            "practice": {
                "name": "Lena Berg Massage",
                "email": "lena@example.com",
                "timezone": "Europe/Oslo",
                "currency": currency,
                "booking_link": "https://example.com/book",
            },
            "calendar": {"source": "ics", "url": "config/sample-week.ics"},
            "services": {"default": {"price": f"900 {currency}"}},
            "payments": {"provider": "stripe", "secret_key": {"env": KEY_ENV}, "api_base": api_base, **payments},
            # On the real clock, quiet hours would make when fees go depend on the hour the tests run.
            "mail": {"quiet_hours": "", "monthly_report": False},  # nor the practitioner's monthly report
        }
    )


@pytest.fixture
def stripe_settings(stripe_proxy: StripeProxy, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    """Factory: stripe_settings(key=TEST_KEY, **payments) -> Settings pointing at the proxy."""

    def make(key: str = TEST_KEY, **payments: Any) -> Settings:
        monkeypatch.setenv(KEY_ENV, key)
        return settings_for(stripe_proxy.base_url, **payments)

    return make


@pytest.fixture
def stripe_provider(stripe_settings: Callable[..., Settings]) -> Any:
    """A StripeProvider through the proxy with test-friendly timings (2 s timeout, fast
    back-off, stripe-python's own retries on)."""
    from integration.stripe_provider import open_provider

    return open_provider(stripe_settings(), timeout_seconds=2.0, backoff_seconds=0.01, rate_per_second=1000)


@pytest.fixture
def stripe_client_with_card(stripe_admin: stripe.StripeClient) -> Callable[..., str]:
    """Factory: stripe_client_with_card(email, card="pm_card_visa" or a 16-digit test
    number) creates a customer the way Slotguard tags them, saves the card as its default,
    and returns the customer id."""

    def make(email: str, card: str = "pm_card_visa", name: str = "Test Client") -> str:
        customer = stripe_admin.v1.customers.create({"email": email, "name": name, "metadata": {"slotguard_client": email}})
        if not card.startswith("pm_"):
            card = stripe_admin.v1.payment_methods.create(
                {"type": "card", "card": {"number": card, "exp_month": 12, "exp_year": 2034, "cvc": "123"}}
            ).id
        attached = stripe_admin.v1.payment_methods.attach(card, {"customer": customer.id})
        stripe_admin.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": attached.id}})
        return customer.id

    return make


_counter = iter(range(1, 10**9))


def make_action(
    kind: str,
    amount: str | Money | None = "450 NOK",
    *,
    email: str = "ana@example.com",
    name: str = "Ana Client",
    action_id: str | None = None,
    context: dict[str, Any] | None = None,
    policy: str = "no_show",
) -> Action:
    """An executing money action as the engine would hand it to the provider."""
    now = datetime.now(UTC)
    money = Money.parse(amount) if isinstance(amount, str) else amount
    return Action(
        id=action_id or f"act_test{os.getpid()}x{next(_counter):08d}",
        kind=ActionKind(kind),
        state=ActionState.EXECUTING,
        policy=policy,
        reason=f"{policy} proposed {money}",
        calendar_id="primary",
        event_id="evt-1",
        client_email=email,
        client_name=name,
        happening_key="h-1",
        due_at=now,
        created_at=now,
        updated_at=now,
        amount=money,
        appointment_start=now,
        context=dict(context or {}),
    )


@pytest.fixture
def stripe_action() -> Callable[..., Action]:
    """Factory for money actions; see make_action."""
    return make_action


def intents_for_action(admin: stripe.StripeClient, action_id: str) -> list[dict]:
    """Every PaymentIntent in localstripe tagged with `action_id` (read directly, no proxy)."""
    found, params = [], {"limit": 100}
    while True:
        page = admin.v1.payment_intents.list(params)
        items = [i.to_dict() for i in page.data]
        found.extend(i for i in items if (i.get("metadata") or {}).get("slotguard_action_id") == action_id)
        if not page.has_more:
            return found
        params["starting_after"] = page.data[-1].id


def refunds_for(admin: stripe.StripeClient, payment_intent: str) -> list[dict]:
    """Every Refund in localstripe on `payment_intent`."""
    return [r.to_dict() for r in admin.v1.refunds.list({"payment_intent": payment_intent, "limit": 100}).data]
