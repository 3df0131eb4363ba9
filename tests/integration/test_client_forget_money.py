"""`client forget` and the money a practice holds for a client, on a real ledger (SQLite, or
PostgreSQL under SLOTGUARD_TEST_BACKEND=postgresql), with the engine itself making the
history from an in-memory calendar.

What a practitioner relies on: money held for the client (a rolling deposit paid at the
session attended for the next one) is given back before the client is forgotten, exactly
once; a refund that failed during forget stops every later run too, and is listed in the
preview, until it is retried and done.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from integration.memory import MemoryCalendar, MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.cli.clients import _preview, forget_now
from slotguard.domain.interfaces import AdapterError, NullWriteBack
from slotguard.domain.model import ActionKind, ActionState
from slotguard.privacy.client_forget import outstanding
from slotguard.privacy.client_records import find_client
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import event, settings

OSLO = ZoneInfo("Europe/Oslo")
FIRST = datetime(2026, 3, 2, 10, 0, tzinfo=OSLO)
ANA = "ana@example.com"


class RefundsFail(RecordOnlyProvider):
    """The record-only provider, but a refund is refused for good (as a card processor
    refuses one on a closed account): not retried by the daemon."""

    def __init__(self):
        self.refusing = True

    def execute(self, action):
        if action.kind is ActionKind.REFUND and self.refusing:
            raise AdapterError("the refund was refused: the card's account is closed", retryable=False)
        return super().execute(action)


class Practice:
    """Ana's attended session on Monday (rolling_half_deposit: half of the next one paid
    ahead, recorded on Monday's event), the next one on Friday."""

    def __init__(self, tmp_path, provider):
        self.data = tmp_path / "var"
        self.settings = settings(
            storage={"data_dir": str(self.data)},
            payments={"review_window": "0m"},
            mail={"digest_hour": -1, "quiet_hours": ""},
            policies={"enabled": ["no_show", "rolling_half_deposit"]},
        )
        self.calendar = MemoryCalendar("primary")
        self.ledger = Ledger(self.settings.storage.location)
        self.ledger.record_sync("primary", None, FIRST - timedelta(days=30))
        self.engine = build_engine(self.settings, FIRST - timedelta(days=7), ledger=self.ledger,
                                   calendars=[(self.calendar, NullWriteBack())], provider=provider, mailer=MemoryMailer())

    def attended_then_paid_ahead(self):
        """Returns the paid-ahead charge (paid) and the moment after it."""
        self.calendar.put(event("monday", FIRST, title="Massage #attended"), FIRST - timedelta(days=3))
        self.calendar.put(event("friday", FIRST + timedelta(days=4)), FIRST - timedelta(days=3))
        self.engine.tick(FIRST - timedelta(days=3))
        self.engine.tick(FIRST + timedelta(hours=2))
        self.engine.tick(FIRST + timedelta(hours=3))
        [ahead] = [a for a in self.ledger.actions(kinds=[ActionKind.CHARGE]) if a.policy == "rolling_half_deposit"]
        assert ahead.event_id == "monday" and ahead.state is ActionState.DONE, ahead.last_error
        paid = self.ledger.mark_paid(ahead.id, FIRST + timedelta(hours=4), "paid at the desk")
        assert paid is not None and paid.context["payment_status"] == "paid"
        return paid, FIRST + timedelta(hours=5)

    def refunds_of(self, target_id):
        return [a for a in self.ledger.actions(kinds=[ActionKind.REFUND]) if a.context.get("target_action_id") == target_id]


@pytest.fixture
def chdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.mark.timeout(300)
def test_a_rolling_deposit_paid_ahead_on_the_session_attended_is_given_back_once(tmp_path, chdir, capsys):
    practice = Practice(tmp_path, RecordOnlyProvider())
    ahead, now = practice.attended_then_paid_ahead()
    money = outstanding(practice.ledger, find_client(practice.ledger, ANA), now)
    assert [a.id for a in money.to_waive] == [ahead.id], "the money paid ahead is held for her"

    assert _preview(practice.settings, practice.ledger, find_client(practice.ledger, ANA), now) == 1
    assert f"fee waived first: {ahead.id}" in capsys.readouterr().out

    assert forget_now(practice.settings, practice.engine, ANA, now, "lena") == 0
    [refund] = practice.refunds_of(ahead.id)
    assert refund.state is ActionState.DONE and refund.amount == ahead.amount
    practice.engine.tick(now + timedelta(days=6))  # Friday passes: nothing is charged or given back again
    assert [r.id for r in practice.refunds_of(ahead.id)] == [refund.id]
    assert forget_now(practice.settings, practice.engine, ANA, now + timedelta(days=7), "lena") == 0
    assert [r.id for r in practice.refunds_of(ahead.id)] == [refund.id]


@pytest.mark.timeout(300)
def test_a_refund_that_failed_during_forget_stops_the_next_run_too(tmp_path, chdir, capsys):
    provider = RefundsFail()
    practice = Practice(tmp_path, provider)
    ahead, now = practice.attended_then_paid_ahead()

    assert forget_now(practice.settings, practice.engine, ANA, now, "lena") == 1
    [refund] = practice.refunds_of(ahead.id)
    assert refund.state is ActionState.FAILED
    assert "Nothing was erased" in capsys.readouterr().err

    # Again: the refund is still not made, so she is not forgotten, and the preview says why.
    assert forget_now(practice.settings, practice.engine, ANA, now + timedelta(minutes=5), "lena") == 1
    assert refund.id in capsys.readouterr().err
    assert find_client(practice.ledger, ANA).known
    assert _preview(practice.settings, practice.ledger, find_client(practice.ledger, ANA), now) == 1
    assert f"cannot yet: {refund.id}" in capsys.readouterr().out

    # Retried once the cause is fixed: forget carries it out, and then forgets her.
    provider.refusing = False
    retried = practice.ledger.action(refund.id)
    retried.state, retried.attempts = ActionState.PLANNED, 0  # what `main.py retry` does (slotguard/cli/retry.py)
    assert practice.ledger.update_action(retried, now + timedelta(minutes=10), "retried", expect=[ActionState.FAILED])
    assert forget_now(practice.settings, practice.engine, ANA, now + timedelta(minutes=10), "lena") == 0
    assert [(r.id, r.state) for r in practice.refunds_of(ahead.id)] == [(refund.id, ActionState.DONE)]
    assert not find_client(practice.ledger, ANA).known


@pytest.mark.timeout(300)
def test_a_deposit_kept_as_a_credit_for_a_new_booking_is_given_back_once(tmp_path, chdir):
    practice = Practice(tmp_path, RecordOnlyProvider())
    practice.settings = practice.settings.model_copy(update={"policies": settings(
        policies={"enabled": ["deposit", "reschedule_credit"], "deposit": {"amount": "30%", "kind": "charge"}}).policies})
    practice.engine = build_engine(practice.settings, FIRST - timedelta(days=7), ledger=practice.ledger,
                                   calendars=[(practice.calendar, NullWriteBack())], provider=RecordOnlyProvider(), mailer=MemoryMailer())
    later = FIRST + timedelta(days=5)
    practice.calendar.put(event("later", later), FIRST - timedelta(days=3))
    practice.engine.tick(FIRST - timedelta(days=3))
    practice.engine.tick(FIRST - timedelta(days=3, minutes=-5))
    [deposit] = practice.ledger.actions(kinds=[ActionKind.CHARGE])
    assert practice.ledger.mark_paid(deposit.id, FIRST - timedelta(days=2), "paid at the desk") is not None
    practice.calendar.put(event("later", later, response="declined"), FIRST)  # she cancels in good time
    practice.engine.tick(FIRST)
    [credit] = practice.ledger.actions(kinds=[ActionKind.CREDIT])
    now = FIRST + timedelta(hours=1)
    money = outstanding(practice.ledger, find_client(practice.ledger, ANA), now)
    assert [a.id for a in money.to_waive] == [credit.id], "the deposit is held for her as a credit"

    assert forget_now(practice.settings, practice.engine, ANA, now, "lena") == 0
    refunds = [a for a in practice.ledger.actions(kinds=[ActionKind.REFUND]) if a.state is ActionState.DONE]
    assert [r.amount for r in refunds] == [deposit.amount]
    practice.engine.tick(later + timedelta(days=10))  # the credit's deadline passes: nothing is given back again
    assert [r.id for r in practice.ledger.actions(kinds=[ActionKind.REFUND]) if r.state is ActionState.DONE] == [r.id for r in refunds]
