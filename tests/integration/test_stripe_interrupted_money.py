"""Money whose outcome a crash hid from the ledger, then a waiver (issue 11, item 5).

The daemon is killed after Stripe took the money (or declined the card and handed out a
payment link) but before the ledger heard of it; the practitioner then adds #waive, and the
daemon starts again. What a practitioner relies on: the waiver never keeps money it does not
know about. The interrupted fee is looked up at Stripe before the calendar is read; money
found is refunded, a payment link found is closed, and while Stripe cannot be asked the
waiver waits rather than concluding "nothing was taken".
"""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import timedelta

import pytest

from slotguard.domain.model import ActionKind, ActionState
from slotguard.planning.planner import waive_by_hand
from tests.support.stripe_fixtures import intents_for_action, refunds_for
from tests.support.stripe_loop import StripeLoop

DECLINES = "4000000000000341"


def link_works(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except urllib.error.HTTPError:
        return False


def kept(stripe_admin, fee_id: str) -> int:
    """What Stripe holds for the fee now: taken, less refunded (minor units)."""
    total = 0
    for intent in intents_for_action(stripe_admin, fee_id):
        if intent["status"] == "succeeded":
            total += intent["amount"] - sum(r["amount"] for r in refunds_for(stripe_admin, intent["id"]) if r["status"] == "succeeded")
    return total


def interrupted_fee(loop):
    """A no-show fee reviewed for 30 minutes, then cut off mid-charge (see killed_after_the_call)."""
    loop.book("e1")
    loop.mark("e1", "#noshow", minutes=0)
    loop.tick(1)
    fee = loop.only(ActionKind.CHARGE)
    assert fee.state is ActionState.PENDING_REVIEW
    return fee, loop.killed_after_the_call(fee, minutes=31)


@pytest.fixture
def loop(tmp_path, stripe_proxy, monkeypatch):
    return StripeLoop(tmp_path, stripe_proxy, monkeypatch, network_retries=0, review_window="30m")


def test_money_taken_before_a_crash_is_refunded_when_the_fee_is_waived_after_it(loop, stripe_client_with_card, stripe_admin):
    stripe_client_with_card("ana@example.com", name="Ana Silva")
    fee, result = interrupted_fee(loop)
    assert result.status == "done" and kept(stripe_admin, fee.id) == 90000

    loop.mark("e1", "#noshow #waive", minutes=40)
    loop.restart()
    assert loop.engine.recover(loop.at(41)) == 1
    loop.tick(41)
    loop.tick(42)

    assert kept(stripe_admin, fee.id) == 0, "the waived fee's money was kept"
    fee = loop.ledger.action(fee.id)
    assert (fee.state, fee.external_id, fee.context["payment_status"]) == (ActionState.DONE, result.external_id, "paid")
    refund = loop.only(ActionKind.REFUND)
    assert (refund.state, refund.amount.minor) == (ActionState.DONE, 90000), refund.last_error
    assert any("refund" in subject.lower() for subject, _ in loop.mail_to("ana@example.com"))
    assert len(intents_for_action(stripe_admin, fee.id)) == 1, "charged once"


def test_a_payment_link_made_before_a_crash_is_closed_when_the_fee_is_waived_after_it(loop, stripe_client_with_card, stripe_admin):
    stripe_client_with_card("ana@example.com", card=DECLINES, name="Ana Silva")
    fee, result = interrupted_fee(loop)
    assert result.status == "needs_client_action" and link_works(result.payment_link)

    loop.mark("e1", "#noshow #waive", minutes=40)
    loop.restart()
    loop.engine.recover(loop.at(41))
    loop.tick(41)
    loop.tick(42)

    assert not link_works(result.payment_link), "the client can still pay a fee that was waived"
    assert kept(stripe_admin, fee.id) == 0
    fee = loop.ledger.action(fee.id)
    assert (fee.state, fee.context["payment_status"]) == (ActionState.DONE, "waived")
    refund = loop.only(ActionKind.REFUND)
    assert (refund.state, refund.context["payment_status"]) == (ActionState.DONE, "nothing_taken"), refund.last_error


def test_while_stripe_cannot_be_asked_the_waiver_waits_then_refunds(loop, stripe_client_with_card, stripe_admin, stripe_proxy):
    stripe_client_with_card("ana@example.com", name="Ana Silva")
    fee, result = interrupted_fee(loop)
    outage = stripe_proxy.inject("error", method="*", path=r"/v1/.*", status=503, times=-1)

    loop.mark("e1", "#noshow #waive", minutes=40)
    loop.restart()
    loop.engine.recover(loop.at(41))
    report = loop.tick(41)

    waiting = loop.ledger.action(fee.id)
    assert waiting.state is ActionState.EXECUTING, "nothing may be concluded while Stripe cannot be asked"
    assert "could not ask" in waiting.last_error and any(fee.id in problem for problem in report.problems)
    assert kept(stripe_admin, fee.id) == 90000 and not loop.actions(ActionKind.REFUND)

    stripe_proxy.faults.remove(outage)
    loop.tick(45)

    assert kept(stripe_admin, fee.id) == 0
    assert loop.ledger.action(fee.id).state is ActionState.DONE
    assert loop.only(ActionKind.REFUND).state is ActionState.DONE


def test_found_nothing_goes_back_to_the_queue_and_is_charged_once(loop, stripe_client_with_card, stripe_admin, stripe_proxy):
    stripe_client_with_card("ana@example.com", name="Ana Silva")
    loop.book("e1")
    loop.mark("e1", "#noshow", minutes=0)
    loop.tick(1)
    fee = loop.only(ActionKind.CHARGE)
    fee.state = ActionState.EXECUTING  # killed before the call: Stripe never heard of it
    loop.ledger.update_action(fee, loop.at(31), "attempt 1")

    loop.restart()
    loop.engine.recover(loop.at(32))
    assert loop.ledger.action(fee.id).state is ActionState.PLANNED
    loop.tick(32)

    assert kept(stripe_admin, fee.id) == 90000 and len(intents_for_action(stripe_admin, fee.id)) == 1
    assert loop.ledger.action(fee.id).state is ActionState.DONE


def test_waive_command_on_a_fee_whose_outcome_is_unknown_waits_for_it(loop, stripe_client_with_card, stripe_admin):
    stripe_client_with_card("ana@example.com", name="Ana Silva")
    fee, result = interrupted_fee(loop)

    with loop.ledger.transaction():
        done = waive_by_hand(loop.ledger, loop.ledger.action(fee.id), "waived by the practitioner: sick child", loop.at(35))

    assert done.waiting and not done.problem and not done.planned
    assert loop.ledger.action(fee.id).state is ActionState.EXECUTING
    loop.restart()
    loop.engine.recover(loop.at(41))
    loop.tick(41)
    assert kept(stripe_admin, fee.id) == 0
    assert loop.only(ActionKind.REFUND).state is ActionState.DONE


def test_no_fresh_payment_link_is_made_while_a_waived_fee_is_being_withdrawn(loop, stripe_client_with_card, stripe_proxy):
    """The withdrawal expired the link but its answer was lost, so it is tried again later;
    meanwhile the unpaid-fee polling must not hand the client a fresh link to pay with."""
    stripe_client_with_card("ana@example.com", card=DECLINES, name="Ana Silva")
    loop.book("e1")
    loop.mark("e1", "#noshow", minutes=0)
    loop.tick(1)
    loop.tick(32)  # the review window (30m) is over: declined, a payment link
    fee = loop.only(ActionKind.CHARGE)
    assert fee.context["payment_status"] == "unpaid" and link_works(fee.context["payment_link"])
    stripe_proxy.inject("lose_response", path=r"/v1/checkout/sessions/\w+/expire")

    loop.mark("e1", "#noshow #waive", minutes=40)
    loop.tick(41)
    refund = loop.only(ActionKind.REFUND)
    assert refund.state is ActionState.PLANNED and refund.due_at > loop.at(42), "the lost answer is retried later"
    stripe_proxy.forget_idempotency()  # a new hour: a link request is no longer answered with the old link
    loop.tick(42)

    sessions = [s.public for s in stripe_proxy.sessions.values() if s.public["mode"] == "payment"]
    assert [s["status"] for s in sessions] == ["expired"], "a fresh link was made for a fee being waived"
    loop.engine.tick(refund.due_at)
    assert loop.ledger.action(refund.id).state is ActionState.DONE
    assert loop.ledger.action(fee.id).context["payment_status"] == "waived"


def test_a_charge_whose_answer_was_lost_is_looked_up_before_a_waiver_can_keep_it(loop, stripe_client_with_card, stripe_admin, stripe_proxy):
    """No crash this time: Stripe took the fee, the answer never came back (the connection
    dropped), so the engine cannot tell from the error whether money moved."""
    stripe_client_with_card("ana@example.com", name="Ana Silva")
    loop.book("e1")
    loop.mark("e1", "#noshow", minutes=0)
    loop.tick(1)
    stripe_proxy.inject("lose_response", path=r"/v1/payment_intents", drop=True)
    loop.tick(32)

    fee = loop.only(ActionKind.CHARGE)
    assert (fee.state, fee.context.get("payment_status")) == (ActionState.DONE, "paid"), "the lookup found the money"
    loop.mark("e1", "#noshow #waive", minutes=40)
    loop.tick(41)
    assert kept(stripe_admin, fee.id) == 0
    assert len(intents_for_action(stripe_admin, fee.id)) == 1


def test_a_lost_answer_while_lookups_fail_too_makes_a_waiver_wait(loop, stripe_client_with_card, stripe_admin, stripe_proxy):
    stripe_client_with_card("ana@example.com", name="Ana Silva")
    loop.book("e1")
    loop.mark("e1", "#noshow", minutes=0)
    loop.tick(1)
    stripe_proxy.inject("lose_response", path=r"/v1/payment_intents", drop=True)
    # The lookup before the charge goes through; every one after it fails.
    lookups = stripe_proxy.inject("error", method="GET", path=r"/v1/payment_intents", status=503, times=-1, skip=1)
    loop.tick(32)
    fee = loop.only(ActionKind.CHARGE)
    assert fee.state is ActionState.PLANNED and fee.context.get("outcome_unknown"), "retried later, outcome unknown"

    loop.mark("e1", "#noshow #waive", minutes=40)
    loop.tick(41)
    loop.engine.tick(loop.ledger.action(fee.id).due_at + timedelta(minutes=1))  # its retry time: not charged again
    waiting = loop.ledger.action(fee.id)
    assert waiting.state is ActionState.PLANNED and "waiver_waits" in waiting.context
    assert len(intents_for_action(stripe_admin, fee.id)) == 1

    stripe_proxy.faults.remove(lookups)
    loop.tick(60)
    assert kept(stripe_admin, fee.id) == 0, "the waiver kept the money it did not know about"
    assert loop.ledger.action(fee.id).state is ActionState.DONE
    assert loop.only(ActionKind.REFUND).state is ActionState.DONE
