"""A deposit hold outlives its appointment's move on localstripe (issue 11, item 24): the
hold is placed again before it lapses, the old one released only after the new one holds,
and the no-show fee captures the hold in place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from integration.memory import MemoryCalendar, MemoryMailer
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import ActionKind, ActionState, action_id_for
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import event
from tests.support.builders import settings as practice_settings
from tests.support.stripe_fixtures import KEY_ENV, TEST_KEY, intents_for_action

DAY = timedelta(days=1)


class HeldPractice:
    """The engine with the deposit held on the card (Stripe through the test proxy)."""

    def __init__(self, tmp_path, stripe_proxy, stripe_provider, t0):
        self.settings = practice_settings(
            payments={"provider": "stripe", "secret_key": {"env": KEY_ENV}, "api_base": stripe_proxy.base_url},
            policies={"enabled": ["no_show", "deposit"], "no_show": {"fee": "100%"},
                      "deposit": {"amount": "30%", "kind": "hold", "hold_before": "3d"}},
        )
        self.calendar, self.ledger = MemoryCalendar("primary"), Ledger(tmp_path / "ledger.sqlite3")
        self.ledger.record_sync("primary", None, t0 - timedelta(days=7))  # watched before: bookings are new ones
        self.engine = build_engine(self.settings, t0, ledger=self.ledger, calendars=[(self.calendar, NullWriteBack())],
                                   provider=stripe_provider, mailer=MemoryMailer())

    def holds(self):
        return self.ledger.actions(kinds=[ActionKind.HOLD])

    def tick(self, now):
        return self.engine.tick(now)


@pytest.fixture
def held(tmp_path, stripe_proxy, stripe_provider, stripe_client_with_card, monkeypatch):
    """Ana's deposit is held at booking, two days ahead; at t0 + 1h she moves the
    appointment six days ahead (the hold placed at t0 lapses at t0 + 4d18h)."""
    monkeypatch.setenv(KEY_ENV, TEST_KEY)
    stripe_client_with_card("ana@example.com", name="Ana Silva")
    t0 = datetime.now(UTC).replace(microsecond=0)
    practice = HeldPractice(tmp_path, stripe_proxy, stripe_provider, t0)
    practice.calendar.put(event("e1", t0 + 2 * DAY), t0)
    practice.tick(t0)
    [hold] = practice.holds()
    assert hold.state is ActionState.DONE and hold.context["payment_status"] == "paid", hold.last_error
    moved = t0 + 6 * DAY
    practice.calendar.put(event("e1", moved), t0 + timedelta(hours=1))
    practice.tick(t0 + timedelta(hours=1))
    assert practice.holds() == [hold], "a hold in place is not moved"
    return practice, hold, t0, moved


def test_a_hold_is_placed_again_before_it_lapses_and_the_old_one_released_after(held, stripe_admin):
    practice, hold, t0, moved = held
    practice.tick(moved - 3 * DAY - timedelta(minutes=5))  # hold_before the new start: not yet
    assert len(practice.holds()) == 1

    practice.tick(moved - 3 * DAY)
    renewal = next(a for a in practice.holds() if a.id != hold.id)
    assert renewal.id == action_id_for(hold.happening_key, "deposit", "hold", f"renews:{hold.id}"), "derived from the old hold"
    assert renewal.state is ActionState.DONE and renewal.amount == hold.amount and renewal.external_id != hold.external_id
    [fresh] = intents_for_action(stripe_admin, renewal.id)
    assert (fresh["status"], fresh["amount"], fresh["capture_method"]) == ("requires_capture", 27000, "manual")
    # Until the new hold held, the old one was not touched; it is released on the next tick.
    [old] = intents_for_action(stripe_admin, hold.id)
    assert old["status"] == "requires_capture"
    practice.tick(moved - 3 * DAY + timedelta(minutes=2))
    [release] = practice.ledger.actions(kinds=[ActionKind.RELEASE])
    assert release.state is ActionState.DONE and release.context["target_action_id"] == hold.id
    assert [i["status"] for i in intents_for_action(stripe_admin, hold.id)] == ["canceled"]
    practice.tick(moved - 2 * DAY)
    assert len(practice.holds()) == 2, "placed again once"

    # A no-show: the fee captures the hold in place, never the released one.
    practice.calendar.put(event("e1", moved, title="Massage #noshow"), moved + timedelta(minutes=30))
    practice.tick(moved + timedelta(minutes=30))
    [capture] = practice.ledger.actions(kinds=[ActionKind.CAPTURE])
    assert moved + timedelta(hours=12) <= capture.due_at <= moved + timedelta(hours=24), "the review window, then the client's night"
    practice.tick(capture.due_at)
    [capture] = practice.ledger.actions(kinds=[ActionKind.CAPTURE])
    assert capture.state is ActionState.DONE, capture.last_error
    assert capture.context["target_action_id"] == renewal.id
    assert [i["status"] for i in intents_for_action(stripe_admin, renewal.id)] == ["succeeded"]
    assert [i["status"] for i in intents_for_action(stripe_admin, hold.id)] == ["canceled"]


def test_a_card_refusing_the_new_hold_keeps_the_old_one_and_the_practitioner_is_told(held, stripe_admin):
    practice, hold, t0, moved = held
    customer = stripe_admin.v1.customers.list({"email": "ana@example.com"}).data[0]
    declining = stripe_admin.v1.payment_methods.create(
        {"type": "card", "card": {"number": "4000000000000341", "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
    stripe_admin.v1.payment_methods.attach(declining.id, {"customer": customer.id})
    stripe_admin.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": declining.id}})

    report = practice.tick(moved - 3 * DAY)
    renewal = next(a for a in practice.holds() if a.id != hold.id)
    assert renewal.context.get("payment_status") != "paid"
    assert any(hold.id in problem and "refused a fresh" in problem for problem in report.problems)
    practice.tick(moved - 3 * DAY + timedelta(minutes=2))
    assert practice.ledger.actions(kinds=[ActionKind.RELEASE]) == []
    assert [i["status"] for i in intents_for_action(stripe_admin, hold.id)] == ["requires_capture"]
