"""A waiver after the practitioner refunded part of a fee in the Stripe dashboard.

What a practitioner relies on: the waiver gives back what is left, no more and no less; the
ledger, the calendar note and the client's refund notice say how much was refunded now and
that the rest had been refunded already; `reconcile` agrees with Stripe afterwards.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from integration.stripe_reconcile import reconcile
from slotguard.domain.model import ActionKind, ActionState
from slotguard.practitioner.notes import status_note
from tests.support.stripe_fixtures import refunds_for
from tests.support.stripe_loop import StripeLoop


@pytest.fixture
def loop(tmp_path, stripe_proxy, stripe_client_with_card, monkeypatch):
    stripe_client_with_card("ana@example.com", name="Ana Silva")
    loop = StripeLoop(tmp_path, stripe_proxy, monkeypatch)
    loop.book("e1")
    loop.mark("e1", "#noshow", minutes=0)
    loop.tick(1)
    fee = loop.only(ActionKind.CHARGE)
    assert (fee.state, fee.context["payment_status"], fee.amount.minor) == (ActionState.DONE, "paid", 90000), fee.last_error
    return loop


def waive(loop, stripe_admin, dashboard_minor):
    fee = loop.only(ActionKind.CHARGE)
    stripe_admin.v1.refunds.create({"payment_intent": fee.external_id, "amount": dashboard_minor})
    before = len(loop.mail_to("ana@example.com"))
    loop.mark("e1", "#noshow #waive", minutes=10)
    loop.tick(11)
    loop.tick(12)  # the refund notice goes out once the refund is done
    return fee, loop.only(ActionKind.REFUND), loop.mail_to("ana@example.com")[before:]


def test_a_waiver_refunds_what_the_dashboard_left_and_says_so(loop, stripe_admin):
    fee, refund, mail = waive(loop, stripe_admin, 30000)

    assert refund.state is ActionState.DONE, refund.last_error
    assert sorted(r["amount"] for r in refunds_for(stripe_admin, fee.external_id)) == [30000, 60000]
    assert refund.amount.minor == 60000, "the ledger records what was refunded, not what was asked"
    assert "300.00 NOK" in refund.context["provider_detail"]
    _, note = status_note(loop.ledger.actions(event_id="e1"), loop.settings)
    assert "refunded 600.00 NOK" in note and "300.00 NOK" in note, note
    [(subject, text)] = [m for m in mail if "refund" in m[0].lower()]
    assert "600.00" in subject and "600.00" in text  # emails write money the locale's way: "NOK 600.00"
    assert "300.00" in text and "900.00" in text, text
    clean = reconcile(loop.ledger, loop.engine.provider, loop.start - timedelta(hours=1), loop.start + timedelta(hours=1))
    assert clean.clean, [m.detail for m in clean.mismatches]


def test_a_waiver_after_a_full_dashboard_refund_is_done_with_nothing_refunded(loop, stripe_admin):
    fee, refund, mail = waive(loop, stripe_admin, 90000)

    assert refund.state is ActionState.DONE, refund.last_error
    assert [r["amount"] for r in refunds_for(stripe_admin, fee.external_id)] == [90000]
    assert refund.amount.minor == 0
    _, note = status_note(loop.ledger.actions(event_id="e1"), loop.settings)
    assert "refunded outside Slotguard" in note and "refunded 0" not in note, note
    assert not [m for m in mail if "refund" in m[0].lower()], "no 'we refunded 0.00 NOK' email"
    clean = reconcile(loop.ledger, loop.engine.provider, loop.start - timedelta(hours=1), loop.start + timedelta(hours=1))
    assert clean.clean, [m.detail for m in clean.mismatches]
