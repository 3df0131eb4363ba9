"""build_engine hands a deployment's gates to the adapters it opens, and without them keeps
the single-practice defaults (slotguard/run/wiring.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from integration.rate_limiter import RateLimiter
from slotguard.domain.interfaces import Gates, RateGate
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.stripe_fixtures import KEY_ENV, TEST_KEY, settings_for


@pytest.fixture
def stripe_practice(monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENV, TEST_KEY)
    monkeypatch.chdir(tmp_path)  # the default outbox folder is made here, not in the checkout
    return settings_for("http://127.0.0.1:9")


def http_gates(engine) -> tuple[RateGate, ...]:
    """The gates the Stripe HTTP client takes before each request."""
    return engine.provider.client._requestor._client.gates


def test_a_deployments_stripe_gate_is_asked_for_the_practices_account_and_used(stripe_practice):
    asked: list[tuple[bool, str]] = []
    shared = RateLimiter(3)

    def stripe(secret: str, mode: str) -> RateGate:
        asked.append((secret == TEST_KEY, mode))
        return shared

    engine = build_engine(stripe_practice, datetime.now(UTC), ledger=Ledger(":memory:"), gates=Gates(stripe=stripe))

    assert asked == [(True, "test")]
    assert http_gates(engine) == (shared,)


def test_without_gates_one_practice_keeps_its_in_process_limiter_at_stripes_rate(stripe_practice):
    engine = build_engine(stripe_practice, datetime.now(UTC), ledger=Ledger(":memory:"))

    (gate,) = http_gates(engine)
    assert isinstance(gate, RateLimiter) and gate.per_window == 25
