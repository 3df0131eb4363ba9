"""The status note written onto a calendar event: what the practitioner reads there."""

from __future__ import annotations

from dataclasses import replace

from slotguard.domain.model import ActionState
from slotguard.practitioner.notes import status_note
from tests.support.builders import settings
from tests.support.stripe_fixtures import make_action

SETTINGS = settings()


def fee(payment_status: str, amount: str = "900 NOK"):
    return replace(make_action("charge", amount, action_id="act_fee"), state=ActionState.DONE,
                   context={"payment_status": payment_status})


def collection(kind: str, amount: str, payment_status: str, **context):
    action = make_action(kind, amount, policy="collections")
    return replace(action, state=ActionState.DONE,
                   context={"collects": "act_fee", "payment_status": payment_status, **context})


def note(*actions) -> str:
    return status_note(list(actions), SETTINGS)[1]


def test_an_installment_never_replaces_the_fee_in_the_note():
    plan = [
        collection("charge", "300 NOK", "paid", role="installment", plan=1, installment=1, of=3),
        collection("charge", "300 NOK", "unpaid", role="installment", plan=1, installment=2, of=3),
    ]
    text = note(fee("unpaid"), *plan)
    assert text.startswith("Slotguard: no-show fee 900.00 NOK not paid yet"), text
    assert "300.00 NOK paid so far" in text and "payment plan 1 of 3 paid" in text
    state, _ = status_note([fee("unpaid"), *plan], SETTINGS)
    assert state["slotguard_fee"] == "act_fee" and state["slotguard_amount"] == "90000"


def test_settled_written_off_and_waived_before_payment_read_as_such():
    paid = collection("charge", "720 NOK", "paid", role="settlement")
    assert note(fee("settled"), paid) == "Slotguard: no-show fee 900.00 NOK settled (720.00 NOK paid)"
    assert note(fee("written_off")) == "Slotguard: no-show fee 900.00 NOK written off"
    withdrawn = replace(make_action("refund", "900 NOK"), state=ActionState.DONE, context={"payment_status": "nothing_taken"})
    text = note(fee("waived"), withdrawn)
    assert text == "Slotguard: no-show fee 900.00 NOK waived before the client paid it; nothing to collect", text


def test_a_real_refund_is_still_mentioned():
    refund = replace(make_action("refund", "900 NOK"), state=ActionState.DONE, context={"payment_status": "paid"})
    assert note(fee("paid"), refund) == "Slotguard: no-show fee 900.00 NOK charged; refunded 900.00 NOK"
