"""A Stripe outage longer than an email would be retried for (issue 11, item 8).

What a practitioner relies on: a fee does not fail for good because Stripe was down for half
an hour. Money actions keep trying for `payments.retry_for` (default a day), waiting longer
each time up to `payments.retry_max_wait`, and never sooner than Stripe's Retry-After; once
the budget is used up the fee fails, and the morning digest says, in every language it is
written in, that Stripe could not be reached and how to try again.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from slotguard.cli.retry import _put_back, outlook
from slotguard.domain.model import ActionKind, ActionState
from slotguard.practitioner.digest import digest_context
from tests.support.stripe_fixtures import intents_for_action
from tests.support.stripe_loop import StripeLoop

LOCALES = ("en", "nb", "da", "de", "pl", "he")


@pytest.fixture
def loop(tmp_path, stripe_proxy, stripe_client_with_card, monkeypatch):
    stripe_client_with_card("ana@example.com", name="Ana Silva")
    loop = StripeLoop(tmp_path, stripe_proxy, monkeypatch, network_retries=0)
    loop.book("e1")
    return loop


def test_a_fee_keeps_trying_through_a_long_outage_then_fails_into_the_digest(loop, stripe_proxy, stripe_admin):
    outage = stripe_proxy.inject("error", method="*", path=r"/v1/.*", status=503, times=-1)
    loop.mark("e1", "#noshow", minutes=0)
    loop.tick(1)
    fee = loop.only(ActionKind.CHARGE)
    tries = []
    now = loop.at(1)
    while fee.state is ActionState.PLANNED and now < loop.at(26 * 60):
        tries.append(fee.due_at)
        now = max(fee.due_at, now + timedelta(minutes=1))
        report = loop.engine.tick(now)
        fee = loop.ledger.action(fee.id)
        if now < loop.at(6 * 60):
            assert fee.state is ActionState.PLANNED, f"failed for good after {now - loop.at(1)}: {fee.last_error}"

    assert fee.state is ActionState.FAILED
    assert loop.at(24 * 60) <= now <= loop.at(25 * 60 + 5), "tried for the configured day, and not much longer"
    gaps = [later - earlier for earlier, later in zip(tries, tries[1:])]
    assert gaps[0] < gaps[1] < gaps[2], "backing off"
    assert max(gaps) <= timedelta(hours=1, minutes=1), "never more than retry_max_wait between tries"
    assert any(fee.id in problem and "could not reach Stripe" in problem for problem in report.problems)

    context = digest_context(loop.settings, loop.ledger, now)
    [row] = [row for row in context["details"]["failed"] if row["id"] == fee.id]
    assert row["unreachable"] and row["provider"] == "Stripe"
    for locale in LOCALES:
        rendered = loop.engine.renderer.render("practitioner_digest", context, locale)
        for part in (rendered.text, rendered.html):
            assert f"main.py retry {fee.id}" in part and "Stripe" in part and "900" in part, (locale, part)
    english = loop.engine.renderer.render("practitioner_digest", context, "en").text
    assert "Could not reach Stripe" in english and "ana@example.com" in english

    # Stripe is back: the practitioner retries it, and it is charged once.
    stripe_proxy.faults.remove(outage)
    _put_back(loop.ledger, loop.settings, now, [(fee, outlook(loop.ledger, loop.settings, fee, now))])  # `main.py retry ID`
    loop.engine.tick(now + timedelta(minutes=1))
    assert loop.ledger.action(fee.id).state is ActionState.DONE
    assert len(intents_for_action(stripe_admin, fee.id)) == 1


def test_a_long_retry_after_is_waited_out_by_the_engine(loop, stripe_proxy, stripe_admin):
    stripe_proxy.inject("rate_limit", path=r"/v1/payment_intents", retry_after="600")
    loop.mark("e1", "#noshow", minutes=0)
    loop.tick(1)

    fee = loop.only(ActionKind.CHARGE)
    assert fee.state is ActionState.PLANNED and fee.due_at >= loop.at(11), f"retried at {fee.due_at}, before Retry-After"
    loop.tick(5)
    assert loop.ledger.action(fee.id).state is ActionState.PLANNED
    loop.engine.tick(fee.due_at)
    assert loop.ledger.action(fee.id).state is ActionState.DONE
    assert len(intents_for_action(stripe_admin, fee.id)) == 1
