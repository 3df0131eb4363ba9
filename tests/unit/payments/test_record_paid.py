""""The client paid" is recorded by one function for polling, webhooks and `mark-paid`: the
fee reads paid, the provider's failure detail is gone, the payment that holds the money is
kept, and a copy read before another process changed the fee never undoes that change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slotguard.domain.model import Action, ActionKind, ActionState
from slotguard.domain.money import Money
from slotguard.payments.paid import is_owed, record_paid
from slotguard.store.ledger import Ledger

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _unpaid_fee(ledger: Ledger) -> Action:
    fee = Action(
        id="act_fee00000000000000001", kind=ActionKind.CHARGE, state=ActionState.DONE, policy="no_show", reason="no-show fee",
        amount=Money(45000, "NOK"), calendar_id="primary", event_id="e1", client_email="ana@example.com", client_name="Ana Silva",
        happening_key="k", due_at=NOW - timedelta(days=1), created_at=NOW - timedelta(days=2), updated_at=NOW - timedelta(days=1),
        executed_at=NOW - timedelta(days=1), external_id="pi_declined",
        context={"payment_status": "unpaid", "provider_detail": "card declined", "payment_link": "https://pay.example.com/p/1"},
    )
    ledger.add_action(fee)
    return ledger.action(fee.id)


def test_a_paid_fee_reads_paid_with_the_payment_that_holds_the_money():
    ledger = Ledger(":memory:")
    fee = _unpaid_fee(ledger)
    assert is_owed(fee)
    with ledger.transaction():
        assert record_paid(ledger, fee, NOW, "paid through Stripe (checkout.session.completed)", external_id="pi_paid")
    stored = ledger.action(fee.id)
    assert stored.context["payment_status"] == "paid" and "provider_detail" not in stored.context
    assert stored.external_id == "pi_paid" and not is_owed(stored)
    assert ledger.action_log(fee.id)[-1]["note"] == "paid through Stripe (checkout.session.completed)"


def test_without_a_payment_id_the_one_on_record_stays():
    ledger = Ledger(":memory:")
    fee = _unpaid_fee(ledger)
    with ledger.transaction():
        assert record_paid(ledger, fee, NOW, "paid to the practitioner directly (main.py mark-paid)")
    assert ledger.action(fee.id).external_id == "pi_declined"


def test_a_stale_copy_never_undoes_what_another_process_did_meanwhile():
    ledger = Ledger(":memory:")
    stale = _unpaid_fee(ledger)
    current = ledger.action(stale.id)
    current.state = ActionState.WAIVED
    assert ledger.update_action(current, NOW, "waived by the practitioner")
    with ledger.transaction():
        assert not record_paid(ledger, stale, NOW + timedelta(minutes=1), "paid (found by polling)")
    assert ledger.action(stale.id).state is ActionState.WAIVED
