"""`main.py waive` and `mark-paid` run beside the daemon (they need no lock): what they write
stands, even when the daemon read the same fee a moment before and writes it after a slow
step (a Stripe call, another client's charge). The ledger, Stripe (localstripe) and the
engine are real; the command runs on a second ledger connection, as another process would,
at the moment the daemon is waiting for Stripe."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from integration.memory import MemoryCalendar
from integration.outbox_dir import OutboxDirMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import ActionKind, ActionState
from slotguard.domain.tick_report import TickReport
from slotguard.payments.poll import poll_unpaid
from slotguard.planning.planner import waive_by_hand
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.integration.test_daily_cap_currency import MONDAY
from tests.integration.test_stripe_polling_and_links import unpaid_fee
from tests.support.builders import event, settings
from tests.support.stripe_fixtures import intents_for_action
from tests.support.stripe_loop import StripeLoop


class CommandDuring:
    """The real payment provider; while its `method` is under way for the action `during`
    names (any action when None), `command` runs once: another process's command landing
    while the daemon waits for Stripe."""

    def __init__(self, provider: Any, method: str, command: Callable[[], None], during: str | None = None):
        self._provider, self._method, self._command, self._during = provider, method, command, during
        self.ran = False

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._provider, name)
        if name != self._method:
            return real

        def call(action, *args, **kwargs):
            result = real(action, *args, **kwargs)
            if not self.ran and self._during in (None, action.id):
                self.ran = True
                self._command()
            return result

        return call


def waive_in_another_process(path, action_id: str, why: str, now: datetime) -> Callable[[], None]:
    """`main.py waive ACTION_ID --reason WHY`, on its own connection to the ledger."""

    def run() -> None:
        other = Ledger(path)
        with other.transaction():
            assert waive_by_hand(other, other.action(action_id), f"waived by the practitioner: {why}", now).problem == ""
        other.close()

    return run


def test_a_fee_waived_by_hand_while_the_daemon_charges_another_is_never_charged_when_the_daily_cap_is_reached(
        tmp_path, stripe_proxy, stripe_admin, stripe_client_with_card, monkeypatch):
    loop = StripeLoop(tmp_path, stripe_proxy, monkeypatch, daily_cap="1000 NOK")
    stripe_client_with_card("ana@example.com")
    stripe_client_with_card("bo@example.com")
    loop.book("ana")
    loop.book("bo", client="bo@example.com", name="Bo Berg")
    loop.mark("ana", "#noshow", 1)
    loop.mark("bo", "#noshow", 1, client="bo@example.com", name="Bo Berg")
    loop.engine.sync_calendar(loop.calendar, loop.at(1), TickReport())  # both fees planned, due at once (review 0m)
    ana_fee, bo_fee = loop.only(ActionKind.CHARGE, "ana"), loop.only(ActionKind.CHARGE, "bo")
    # While the daemon charges Ana's 900 NOK, the practitioner waives Bo's fee; the daemon
    # then meets Bo's fee, as it read it before, with the 1000 NOK cap used up.
    loop.engine = dataclasses.replace(loop.engine, provider=CommandDuring(
        loop.engine.provider, "execute", waive_in_another_process(loop.path, bo_fee.id, "family emergency", loop.at(2)), during=ana_fee.id))
    loop.engine.execute_due(loop.at(2), TickReport())
    assert loop.engine.provider.ran and loop.ledger.action(ana_fee.id).state is ActionState.DONE

    loop.tick(60 * 25)  # the next day: the cap is free again
    assert loop.ledger.action(bo_fee.id).state is ActionState.WAIVED, "the practitioner's waiver stands"
    taken = [i for i in intents_for_action(stripe_admin, bo_fee.id) if i["status"] == "succeeded"]
    assert taken == [], f"Bo was charged for a waived fee: {[(i['id'], i['amount']) for i in taken]}"


def test_a_fee_waived_by_hand_while_the_daemon_works_stays_waived_when_the_daily_cap_is_in_another_currency(tmp_path):
    """The practice moved from NOK to EUR while a NOK fee waited in review; the practitioner
    waived it while the daemon was busy: it is not turned into a failed fee to retry."""
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    calendar = MemoryCalendar("primary")
    parts = dict(ledger=ledger, calendars=[(calendar, NullWriteBack())], provider=RecordOnlyProvider(),
                 mailer=OutboxDirMailer(tmp_path / "outbox"))
    engine = build_engine(settings(), MONDAY, **parts)
    start = MONDAY + timedelta(hours=6)
    calendar.put(event("e1", start), MONDAY)
    engine.tick(MONDAY)
    calendar.put(event("e1", start, title="Massage #noshow"), start + timedelta(minutes=30))
    engine.tick(start + timedelta(minutes=30))
    [fee] = ledger.actions(kinds=[ActionKind.CHARGE])
    in_euro = settings(practice={"currency": "EUR"}, services={"default": {"price": "90 EUR"}},
                       payments={"max_single_charge": "200 EUR", "daily_cap": "1000 EUR"})
    engine = build_engine(in_euro, MONDAY, **parts)
    now = fee.due_at + timedelta(minutes=1)
    [read_by_the_daemon] = [a for a in ledger.due_actions([ActionState.PENDING_REVIEW], now) if a.id == fee.id]
    waive_in_another_process(tmp_path / "ledger.sqlite3", fee.id, "she was ill", now)()

    report = TickReport()
    engine.execute(read_by_the_daemon, now, report)

    stored = ledger.action(fee.id)
    assert stored.state is ActionState.WAIVED, f"the waiver was undone: the fee is {stored.state.value}"
    assert not any(fee.id in problem for problem in report.problems), report.problems


def test_mark_paid_while_the_daemon_renews_the_payment_link_stands(tmp_path, stripe_provider, stripe_client_with_card):
    """Ana's card declined the fee, so she was sent a payment link; she paid the
    practitioner directly instead. `mark-paid` lands while the daemon asks Stripe about the
    fee and gets a fresh link (the first expired): the fee stays paid, owed by no one."""
    stripe_client_with_card("ana@example.com", card="4000000000000341")  # attaches, then declines
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(path)
    fee = unpaid_fee(stripe_provider, ledger)
    stored = ledger.action(fee.id)
    stored.context["payment_link"] = "https://checkout.stripe.com/c/pay/cs_expired"  # the link sent first has expired
    assert ledger.update_action(stored, datetime.now(UTC), "test: the first link expired")

    def mark_paid() -> None:
        other = Ledger(path)
        with other.transaction():
            assert other.mark_paid(fee.id, datetime.now(UTC), "paid to the practitioner directly (main.py mark-paid)")
        other.close()

    provider = CommandDuring(stripe_provider, "status_of", mark_paid)
    poll_unpaid(ledger, provider, datetime.now(UTC), TickReport())
    assert provider.ran
    after = ledger.action(fee.id)
    assert after.context["payment_status"] == "paid", "mark-paid was undone: the fee is owed again"
    assert [o for o in ledger.owed_charges() if o.id == fee.id] == []
    ledger.close()


def test_a_waiver_given_while_start_up_asks_stripe_about_an_interrupted_charge_refunds_it(
        tmp_path, stripe_proxy, stripe_admin, stripe_client_with_card, monkeypatch):
    """The daemon was killed after Stripe took the fee. At the next start it asks Stripe what
    became of the charge; the practitioner waives the fee meanwhile (`waive` says the waiver
    waits for the answer). Once Stripe answers "taken", the money goes back."""
    loop = StripeLoop(tmp_path, stripe_proxy, monkeypatch)
    stripe_client_with_card("ana@example.com")
    loop.book("ana")
    loop.mark("ana", "#noshow", 1)
    loop.engine.sync_calendar(loop.calendar, loop.at(1), TickReport())
    fee = loop.only(ActionKind.CHARGE, "ana")
    assert loop.killed_after_the_call(fee, 2).status == "done"

    engine = loop.restart()
    engine = dataclasses.replace(engine, provider=CommandDuring(
        engine.provider, "resolve", waive_in_another_process(loop.path, fee.id, "booked by mistake", loop.at(3))))
    loop.engine = engine
    assert engine.recover(loop.at(3)) == 1
    assert engine.provider.ran
    loop.tick(5)

    [refund] = loop.actions(ActionKind.REFUND, "ana")
    assert refund.state is ActionState.DONE, f"the waived fee's money was kept: refund {refund.state.value}"
    [intent] = [i for i in intents_for_action(stripe_admin, fee.id) if i["status"] == "succeeded"]
    assert sum(r["amount"] for r in stripe_admin.v1.refunds.list({"payment_intent": intent["id"]}).to_dict()["data"]) == intent["amount"]
