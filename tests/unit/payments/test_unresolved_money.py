"""Which money actions `status` lists as "outcome not known yet", and what it says will
happen to each (the end-to-end test covers the crash and the outage; these cover the rest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from slotguard.domain.model import ActionState
from slotguard.payments.unresolved import section, unresolved_money
from slotguard.planning.planner import OUTCOME_UNKNOWN
from slotguard.store.ledger import Ledger
from tests.support.stripe_fixtures import make_action

OSLO = ZoneInfo("Europe/Oslo")
T0 = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)


def test_a_failed_charge_whose_outcome_is_unknown_says_to_retry_it_and_known_outcomes_are_left_out(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    gave_up = make_action("charge", "900 NOK", email="ana@example.com")
    gave_up.state = ActionState.PLANNED
    ledger.add_action(gave_up)
    gave_up.state = ActionState.EXECUTING
    ledger.update_action(gave_up, T0, "attempt 7")
    gave_up.state, gave_up.last_error = ActionState.FAILED, "Stripe failed (HTTP 503)"
    gave_up.context[OUTCOME_UNKNOWN] = True
    ledger.update_action(gave_up, T0 + timedelta(minutes=1), "failed: could not reach Stripe")
    # Known outcomes: a charge done, an email being sent, a refund that failed plainly.
    done = make_action("charge", "450 NOK", email="bo@example.com")
    done.state = ActionState.DONE
    email = make_action("email", None, email="cy@example.com")  # executing, as make_action builds it
    refused = make_action("refund", "450 NOK", email="bo@example.com")
    refused.state = ActionState.FAILED
    for action in (done, email, refused):
        ledger.add_action(action)

    [item] = unresolved_money(ledger, "stripe", OSLO)

    assert item.action.id == gave_up.id and item.since == T0, "since the attempt whose answer was lost started"
    assert item.why == "Stripe failed (HTTP 503)"
    assert f"`main.py retry {gave_up.id}`" in item.next and "not tried again by itself" in item.next
    text = section([item], OSLO)
    assert text.startswith("\nMoney whose outcome is not known yet (1)")
    assert "since 2026-11-26 12:00" in text and "(failed)" in text
    assert section([], OSLO) == ""
    ledger.close()
