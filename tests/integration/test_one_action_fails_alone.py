"""One action whose carrying out raises something unexpected (a bug in a policy plugin's
hook, in a mailer or in the payment provider) never holds up the others: it is reported,
counts as an attempt and waits its back-off, and fails with a problem after
`mail.max_attempts`. For money, the call may have reached Stripe before the exception, so
Stripe is asked before anything is concluded: nothing is charged twice, and a fee taken is
recorded as taken."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from slotguard.domain.model import ActionKind, ActionState
from slotguard.domain.tick_report import TickReport
from slotguard.policies.hookspecs import hookimpl
from slotguard.policies.info import Policy, PolicyInfo
from slotguard.policies.loading import _hooks_of, plugin_manager
from tests.integration.test_engine_trust import MONDAY, WEDNESDAY_10, Loop
from tests.support.builders import event
from tests.support.stripe_fixtures import intents_for_action
from tests.support.stripe_loop import StripeLoop


class _TermsBug:
    """A third-party policy whose terms hook has a bug for one client."""

    @hookimpl
    def slotguard_terms(self, appointment):
        if appointment.client.email == "ana@example.com":
            raise KeyError("tier")
        return None


def _policy() -> Policy:
    manager = plugin_manager()
    plugin = _TermsBug()
    manager.register(plugin, name="terms_bug")
    return Policy(info=PolicyInfo(name="terms_bug", role="modifier"), config=None, hooks=_hooks_of(manager, plugin))


def test_an_email_whose_composing_raises_does_not_hold_up_other_clients_mail_and_fees_and_fails_after_max_attempts(tmp_path, caplog):
    loop = Loop(tmp_path, extra_policies=[_policy()], mail={"digest_hour": -1, "max_attempts": 3}, reminders={"offsets": []})
    loop.put(event("ana", WEDNESDAY_10 + timedelta(days=2)))  # Friday
    loop.put(event("bo", WEDNESDAY_10, client="bo@example.com", name="Bo Berg"))
    first = loop.tick(MONDAY)
    [ana_confirmation] = [a for a in loop.ledger.actions(event_id="ana") if a.template == "booking_confirmation"]
    stored = loop.ledger.action(ana_confirmation.id)
    assert stored.state is ActionState.PLANNED and stored.attempts == 1 and stored.due_at > MONDAY, "it waits its back-off"
    assert "KeyError" in stored.last_error
    assert any(ana_confirmation.id in p and "KeyError" in p for p in first.problems), first.problems
    assert any("error=KeyError" in r.getMessage() and f"action={ana_confirmation.id}" in r.getMessage() and "at=" in r.getMessage()
               for r in caplog.records), "logged key=value with the exception's type and place"

    loop.put(event("bo", WEDNESDAY_10, client="bo@example.com", name="Bo Berg", color="11"), WEDNESDAY_10 + timedelta(hours=2))
    reports = [loop.tick(WEDNESDAY_10 + timedelta(hours=hours)) for hours in range(0, 30, 3)]  # Wednesday 10:00 to Thursday 13:00

    confirmation = [a for a in loop.ledger.actions(event_id="bo") if a.template == "booking_confirmation"]
    assert [a.state for a in confirmation] == [ActionState.DONE], "Bo's booking confirmation was never sent"
    [fee] = [a for a in loop.ledger.actions(event_id="bo") if a.kind is ActionKind.CHARGE]
    assert fee.state is ActionState.DONE, f"Bo's fee, due Wednesday 23:00, is still {fee.state.value} on Thursday"
    stored = loop.ledger.action(ana_confirmation.id)
    assert stored.state is ActionState.FAILED and stored.attempts == 3
    assert sum(1 for report in reports for p in report.problems if ana_confirmation.id in p and "failed" in p) == 1


class RaisesAround:
    """The real Stripe provider with a bug in `execute` for one action: `after` True raises
    `error` once Stripe has answered (the money moved), False before Stripe is called."""

    def __init__(self, provider: Any, action_id: str, after: bool, error: type[Exception] = KeyError, then=None, times: int = -1):
        self._provider, self._action_id, self._after, self._error = provider, action_id, after, error
        self._then, self._times = then, times  # `then()` runs after Stripe answered, before the raise
        self.raised = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)

    def execute(self, action):
        if action.id != self._action_id or self.raised == self._times:
            return self._provider.execute(action)
        self.raised += 1
        if self._after:
            self._provider.execute(action)
            if self._then:
                self._then()
        raise self._error("payment_method_details")


def two_fees(tmp_path, stripe_proxy, monkeypatch, stripe_client_with_card) -> StripeLoop:
    loop = StripeLoop(tmp_path, stripe_proxy, monkeypatch)
    stripe_client_with_card("ana@example.com")
    stripe_client_with_card("bo@example.com")
    loop.book("ana")
    loop.book("bo", client="bo@example.com", name="Bo Berg")
    loop.mark("ana", "#noshow", 1)
    loop.mark("bo", "#noshow", 1, client="bo@example.com", name="Bo Berg")
    loop.engine.sync_calendar(loop.calendar, loop.at(1), TickReport())  # two fees, due at once (review 0m)
    return loop


@pytest.mark.parametrize("error", [KeyError, ValueError])
def test_a_fee_taken_before_the_provider_raised_is_recorded_as_taken_and_never_charged_again(
        error, tmp_path, stripe_proxy, stripe_admin, stripe_client_with_card, monkeypatch):
    loop = two_fees(tmp_path, stripe_proxy, monkeypatch, stripe_client_with_card)
    ana_fee, bo_fee = loop.only(ActionKind.CHARGE, "ana"), loop.only(ActionKind.CHARGE, "bo")
    buggy = RaisesAround(loop.engine.provider, ana_fee.id, after=True, error=error)
    loop.engine = dataclasses.replace(loop.engine, provider=buggy)

    report = loop.tick(2)

    assert buggy.raised == 1
    assert loop.ledger.action(bo_fee.id).state is ActionState.DONE, "Bo's fee went on"
    ana = loop.ledger.action(ana_fee.id)
    assert ana.state is ActionState.DONE and ana.context["payment_status"] == "paid" and ana.external_id.startswith("pi_")
    assert any(ana_fee.id in p and error.__name__ in p for p in report.problems), report.problems
    for minutes in (10, 60, 240):
        loop.tick(minutes)
    assert buggy.raised == 1, "a fee recorded as taken is not carried out again"
    assert [i["status"] for i in intents_for_action(stripe_admin, ana_fee.id)] == ["succeeded"]


def test_a_fee_whose_provider_raised_before_calling_stripe_backs_off_and_a_waiver_meanwhile_stands(
        tmp_path, stripe_proxy, stripe_admin, stripe_client_with_card, monkeypatch):
    loop = two_fees(tmp_path, stripe_proxy, monkeypatch, stripe_client_with_card)
    ana_fee, bo_fee = loop.only(ActionKind.CHARGE, "ana"), loop.only(ActionKind.CHARGE, "bo")
    buggy = RaisesAround(loop.engine.provider, ana_fee.id, after=False)
    loop.engine = dataclasses.replace(loop.engine, provider=buggy)

    loop.tick(2)
    assert loop.ledger.action(bo_fee.id).state is ActionState.DONE, "Bo's fee went on"
    ana = loop.ledger.action(ana_fee.id)
    assert ana.state is ActionState.PLANNED and ana.attempts == 1 and ana.due_at > loop.at(2), "nothing was taken: it waits its back-off"
    loop.tick(3)
    assert buggy.raised == 1, "not tried again before its back-off"

    loop.mark("ana", "#noshow #waive", 4)  # the practitioner waives it meanwhile
    loop.tick(5)
    assert loop.ledger.action(ana_fee.id).state is ActionState.WAIVED
    for minutes in (30, 120):
        loop.tick(minutes)
    assert buggy.raised == 1
    assert intents_for_action(stripe_admin, ana_fee.id) == []


def test_a_fee_whose_provider_raised_while_stripe_could_not_be_asked_waits_flagged_and_is_never_charged_twice(
        tmp_path, stripe_proxy, stripe_admin, stripe_client_with_card, monkeypatch):
    loop = two_fees(tmp_path, stripe_proxy, monkeypatch, stripe_client_with_card)
    ana_fee = loop.only(ActionKind.CHARGE, "ana")
    outage = lambda: stripe_proxy.inject("error", method="GET", path=r"/v1/.*", status=503, times=-1)  # noqa: E731
    buggy = RaisesAround(loop.engine.provider, ana_fee.id, after=True, then=outage, times=1)
    loop.engine = dataclasses.replace(loop.engine, provider=buggy)

    report = loop.tick(2)

    ana = loop.ledger.action(ana_fee.id)
    assert ana.state is ActionState.PLANNED and ana.context.get("outcome_unknown") is True and ana.due_at > loop.at(2)
    assert any(ana_fee.id in p and "not known yet" in p for p in report.problems), report.problems
    stripe_proxy.faults.clear()  # Stripe answers again
    loop.tick(10)
    ana = loop.ledger.action(ana_fee.id)
    assert ana.state is ActionState.DONE and ana.context["payment_status"] == "paid" and "outcome_unknown" not in ana.context
    assert [i["status"] for i in intents_for_action(stripe_admin, ana_fee.id)] == ["succeeded"], "charged once"


class ResolveBug:
    """The real Stripe provider whose lookup has a bug for one action."""

    def __init__(self, provider: Any, action_id: str):
        self._provider, self._action_id = provider, action_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)

    def resolve(self, action):
        if action.id == self._action_id:
            raise KeyError("latest_charge")
        return self._provider.resolve(action)


def test_an_interrupted_fee_whose_lookup_raises_is_left_unresolved_and_the_others_are_resolved_at_start_up(
        tmp_path, stripe_proxy, stripe_admin, stripe_client_with_card, monkeypatch):
    loop = two_fees(tmp_path, stripe_proxy, monkeypatch, stripe_client_with_card)
    ana_fee, bo_fee = loop.only(ActionKind.CHARGE, "ana"), loop.only(ActionKind.CHARGE, "bo")
    loop.killed_after_the_call(ana_fee, 2)  # the daemon was killed while charging both
    loop.killed_after_the_call(bo_fee, 2)

    engine = loop.restart()
    loop.engine = dataclasses.replace(engine, provider=ResolveBug(engine.provider, ana_fee.id))
    assert loop.engine.recover(loop.at(3)) == 2  # `main.py run` at start-up: it must not crash

    assert loop.ledger.action(bo_fee.id).state is ActionState.DONE, "Bo's interrupted fee was resolved"
    assert loop.ledger.action(ana_fee.id).state is ActionState.EXECUTING, "nothing is concluded about Ana's"
    report = loop.tick(4)
    assert any(ana_fee.id in p and "KeyError" in p for p in report.problems), report.problems
    assert loop.ledger.action(ana_fee.id).state is ActionState.EXECUTING

    loop.restart()  # the bug fixed
    loop.tick(5)
    assert loop.ledger.action(ana_fee.id).state is ActionState.DONE
    for fee in (ana_fee, bo_fee):
        assert [i["status"] for i in intents_for_action(stripe_admin, fee.id)] == ["succeeded"]
