"""The receipt `mark-paid` plans for a fee paid directly: only for a fee paid in full that
the ladder never chased (the ladder thanks for the others), under the ladder's receipt id."""

from datetime import UTC, datetime, timedelta

from slotguard.collections.debts import COLLECTIONS, COLLECTS
from slotguard.collections.receipts import direct_payment_receipt
from slotguard.domain.model import Action, ActionKind, ActionState, action_id_for
from slotguard.domain.money import Money

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def charge(action_id="act_fee", policy="no_show", status="paid", **context):
    return Action(
        id=action_id, kind=ActionKind.CHARGE, state=ActionState.DONE, policy=policy, reason="no_show 900.00 NOK",
        calendar_id="primary", event_id="e1", client_email="ana@example.com", client_name="Ana",
        happening_key="primary/e1/no_show/x", due_at=NOW, created_at=NOW, updated_at=NOW, amount=Money(90000, "NOK"),
        appointment_start=NOW - timedelta(days=1), executed_at=NOW, context={"payment_status": status, **context},
    )


def test_a_fee_paid_directly_gets_a_receipt_with_the_ladders_id():
    receipt = direct_payment_receipt(charge(), [], NOW)
    assert receipt is not None and receipt.template == "payment_receipt" and receipt.reports_on == "act_fee"
    assert receipt.id == action_id_for("collections/act_fee", COLLECTIONS, "email", "receipt")
    assert receipt.client_email == "ana@example.com" and receipt.due_at == NOW
    assert receipt.context["paid_total"] == {"minor": 90000, "currency": "NOK"} and receipt.context["fee_policy"] == "no_show"


def test_no_receipt_for_a_deposit_an_unpaid_fee_or_a_fee_the_ladder_chased():
    assert direct_payment_receipt(charge(purpose="deposit"), [], NOW) is None
    assert direct_payment_receipt(charge(status="receivable"), [], NOW) is None
    reminder = charge("act_step", policy=COLLECTIONS, status="")
    reminder.context[COLLECTS] = "act_fee"
    assert direct_payment_receipt(charge(), [reminder], NOW) is None
