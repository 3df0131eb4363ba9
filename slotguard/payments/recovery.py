"""Money whose outcome the ledger does not know, resolved against the provider first.

The engine commits a money action as `executing` before calling the provider and `done`
after. A crash in between (SIGKILL, power loss) leaves it `executing`: the money may have
moved or not. Putting it back in the queue blind is not enough: the next tick reads the
calendar before carrying it out again, and a waiver seen there would conclude "nothing was
taken" and keep money that was (issue 11, item 5). So, at start-up (Engine.recover) and at
the start of every tick, before any calendar is read, each such action is looked up at the
provider (`PaymentProvider.resolve`, lookup only):

- found (money taken, held or refunded; a declined payment with its payment link): the
  action is `done`, recorded exactly as if the call had returned (payment_results.py);
- found nothing: back to `planned`, carried out again with the same idempotency key;
- the provider cannot be asked: it stays `executing`, with the error as `last_error` and
  the tick's report saying so, and is asked again next tick.

The same holds in a running daemon when an attempt fails in a way that may have moved money
(the answer to an applied request was lost): the engine looks the action up at once
(`lookup`); found, it is done (`record_found`); not found, it is retried after its back-off;
the provider unreachable, it is retried too but flagged `OUTCOME_UNKNOWN`.

A waiver that arrives while the outcome is unknown (`executing`, or flagged) waits on the
action (planner `WAITING_WAIVER`; the engine no longer carries it out); once the outcome is
known it is applied (`settle_waiting_waiver`): a fee found untaken is waived, money found
taken is refunded (a hold released), a payment link found out is withdrawn. Every tick
starts by asking about flagged actions with a waiting waiver, as about `executing` ones. `repair_kept_money` does the same for a fee the ledger calls waived
while Stripe holds its money (`main.py reconcile --repair`). Other actions left `executing`
(emails, records) simply go back to `planned`, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slotguard.domain.interfaces import AdapterError, PaymentResult, ResolvesInterrupted, provider_name
from slotguard.domain.model import MONEY_KINDS, OPEN_STATES, Action, ActionKind, ActionState
from slotguard.payments.results import after_money, record_payment_result
from slotguard.planning.planner import OUTCOME_UNKNOWN, WAITING_WAIVER
from slotguard.planning.view import AccountView
from slotguard.planning.waivers import plan_let_go
from slotguard.store.apply import Store
from slotguard.store.containment import describe, raised_at
from slotguard.store.ledger import Ledger, LedgerError

log = logging.getLogger("slotguard.recovery")

INTERRUPTED = "interrupted while executing"
WAITED = "waited-waiver"  # key prefix of the give-backs a waiting waiver plans (stable ids)
REPAIR = "reconcile-repair"  # key prefix of the give-backs `reconcile --repair` plans


@dataclass
class Recovered:
    """What one pass over the interrupted actions did."""

    found: int = 0  # actions that were left executing
    unresolved: list[Action] = field(default_factory=list)  # money actions the provider could not be asked about
    touched: set[tuple[str, str]] = field(default_factory=set)  # (calendar, event) whose money changed


def _describe(action: Action) -> str:
    amount = f" of {action.amount}" if action.amount else ""
    return f"{action.kind.value}{amount} for {action.client_email}"


def resolve_interrupted(
    ledger: Ledger, provider: Any, dry_run: bool, now: datetime, problem: Callable[[str], None] | None = None
) -> Recovered:
    """Resolve every action left `executing` (see the module docstring). `problem` is told,
    in the practitioner's words, about each one the provider could not be asked about, and
    about each whose resolving raised (a bug: it is left as it is and asked about again next
    tick, and the others go on). Never raises, except a LedgerError."""
    recovered = Recovered()
    name = provider_name(provider)
    uncertain = [
        action for action in ledger.actions(states=[*OPEN_STATES, ActionState.FAILED], kinds=MONEY_KINDS)
        if action.context.get(OUTCOME_UNKNOWN) and WAITING_WAIVER in action.context
    ]
    for action in ledger.actions(states=[ActionState.EXECUTING]) + uncertain:
        recovered.found += action.state is ActionState.EXECUTING
        try:
            _resolve_one(ledger, provider, dry_run, action, now, problem, recovered, name)
        except LedgerError:
            raise
        except Exception as error:  # noqa: BLE001 - one action never stops the others being resolved
            log.error("resolve failed action=%s kind=%s error=%s at=%s", action.id, action.kind.value, type(error).__name__, raised_at(error))
            if problem is not None:
                problem(f"action {action.id} ({_describe(action)}): looking up what became of it raised {describe(error)}; it is "
                        "left as it is (nothing concluded, no new attempt) and asked about again next tick; this is a bug "
                        "in Slotguard or the payment provider's adapter: report it with the log")
    return recovered


def _resolve_one(ledger: Ledger, provider: Any, dry_run: bool, action: Action, now: datetime,
                 problem: Callable[[str], None] | None, recovered: Recovered, name: str) -> None:
    """Resolve one action of `resolve_interrupted`, adding to `recovered`."""
    interrupted = action.state is ActionState.EXECUTING
    if action.kind not in MONEY_KINDS or dry_run:
        # Nothing left the machine (an email is looked up by its Message-ID by the
        # mailer; dry-run money never went out): carry it out again.
        _back_to_queue(ledger, action, now, "will be retried with the same idempotency key")
        return
    what_happened = INTERRUPTED if interrupted else "its last answer was lost and a waiver waits"
    try:
        result = lookup(provider, action)
    except AdapterError as error:
        message = f"could not ask {name} what became of it: {error}"
        with ledger.transaction():
            again = _again(ledger, action)
            if again is not None and again.last_error != message:
                again.last_error = message
                ledger.update_action(again, now, f"{what_happened}; {message}; asked again next tick")
        if again is None:
            return
        action = again
        log.warning("unresolved action=%s kind=%s error=%r", action.id, action.kind.value, str(error))
        recovered.unresolved.append(action)
        if problem is not None:
            problem(f"action {action.id} ({_describe(action)}): {what_happened}, and {message}; "
                    "nothing is concluded (no waiver, no new attempt) until it answers")
        return
    with ledger.transaction():
        again = _again(ledger, action)
        if again is None:
            return
        action = again
        if result is not None:
            found_problem = record_found(ledger, action, result, now, f"{what_happened}; found at {name}")
            if found_problem and problem is not None:
                problem(found_problem)
        elif interrupted:
            _back_to_queue(ledger, action, now, f"{name} has nothing for it, so it is carried out again with the same idempotency key")
        else:
            action.context.pop(OUTCOME_UNKNOWN, None)
            ledger.update_action(action, now, f"{what_happened}; {name} has nothing for it: nothing was taken")
        settle_waiting_waiver(ledger, action.id, now)
    recovered.touched.add((action.calendar_id, action.event_id))


def _again(ledger: Ledger, action: Action) -> Action | None:
    """`action` as the ledger has it now (call inside the transaction that writes it): while
    the provider was asked, `main.py waive` in another process may have stored a waiver on
    it, which the write must keep. None when its state changed meanwhile."""
    current = ledger.action(action.id)
    return current if current is not None and current.state is action.state else None


def lookup(provider: Any, action: Action) -> PaymentResult | None:
    """What the provider already did for `action` (`PaymentProvider.resolve`), or None.
    Raises AdapterError when it cannot be asked."""
    # A provider without `resolve` promises, like every provider, that `execute` looks up
    # what it did for the action before doing anything: carrying it out again is safe.
    return provider.resolve(action) if isinstance(provider, ResolvesInterrupted) else None


def _back_to_queue(ledger: Ledger, action: Action, now: datetime, why: str) -> None:
    action.state = ActionState.PLANNED
    action.last_error = ""
    ledger.update_action(action, now, f"{INTERRUPTED}; {why}", expect=[ActionState.EXECUTING])


def record_found(ledger: Ledger, action: Action, result: PaymentResult, now: datetime, how: str) -> str:
    """Record what a lookup found (`result`) as the action's outcome, `done`, as if the call
    had returned; `how` starts the log note. Call inside a ledger transaction. Returns a
    problem for the practitioner ("" when there is none; see payment_results.after_money)."""
    was = action.state
    note = record_payment_result(action, result)
    action.state = ActionState.DONE
    action.executed_at = now
    action.last_error = ""
    what = action.context.get("payment_status", "")
    ledger.update_action(action, now, f"{how}: {action.external_id or 'a payment link'} ({what}); recorded as {note}", expect=[was])
    problem = after_money(ledger, action, now)
    log.info("resolved action=%s kind=%s external_id=%s payment_status=%s", action.id, action.kind.value, action.external_id, what)
    return problem


def settle_waiting_waiver(ledger: Ledger, action_id: str, now: datetime) -> list[Action]:
    """Apply the waiver that waited for `action_id`'s outcome, now that it is known (the
    action is no longer `executing`): waived if nothing was taken, else the refund or
    release (and its notice) planned, due now, with ids stable for the action. Returns the
    actions planned. Call inside a ledger transaction."""
    action = ledger.action(action_id)
    if action is None or action.state is ActionState.EXECUTING or WAITING_WAIVER not in action.context:
        return []
    why = str(action.context.pop(WAITING_WAIVER))
    ledger.update_action(action, now, f"the waiver that waited for this outcome applies now: {why}", expect=[action.state])
    planned = _give_back(ledger, action, why, f"{WAITED}/{action.id}", now)[0]
    log.info("waiting waiver applied action=%s state=%s planned=%s", action.id, action.state.value, ",".join(a.id for a in planned))
    return planned


def repair_kept_money(ledger: Ledger, provider: Any, action_id: str, now: datetime) -> tuple[str, list[Action]]:
    """`reconcile --repair` for a fee (charge, capture, hold) the ledger calls waived or
    cancelled while the provider holds money for it: the fee is recorded as the provider
    has it (`done`, with its payment) and then let go as the waiver meant: a refund (a
    release of a hold) and its notice are planned, due now, with ids stable for the fee, so
    repairing twice plans nothing new. Returns (what was done, in words; the actions
    planned); ("", []) when there is nothing to repair. Raises AdapterError when the
    provider cannot be asked."""
    action = ledger.action(action_id)
    if action is None or action.kind not in (ActionKind.CHARGE, ActionKind.CAPTURE, ActionKind.HOLD):
        return "", []
    if action.state not in (ActionState.WAIVED, ActionState.CANCELLED):
        return "", []
    result = lookup(provider, action)
    if result is None or result.status != "done":
        return "", []
    was = action.state
    with ledger.transaction():
        note = record_payment_result(action, result)
        action.state = ActionState.DONE
        action.executed_at = action.executed_at or now
        if not ledger.update_action(action, now, f"reconcile --repair: {provider_name(provider)} holds "
                                                 f"its money ({action.external_id}) although it was {was.value}; recorded as {note}",
                                    expect=[was]):
            return "", []
        why = f"it was {was.value} ({action.reason.rpartition('; ')[2]}), but the money had been taken; given back by reconcile --repair"
        planned, before = _give_back(ledger, action, why, f"{REPAIR}/{action.id}", now)
    money = [a for a in planned + before if a.kind in MONEY_KINDS]
    words = ", ".join(f"{a.kind.value} {a.id} of {a.amount}" for a in money) or "nothing (nothing left to give back)"
    return f"{_describe(action)} was {was.value} but {action.external_id} took the money: planned {words}", planned


def _give_back(ledger: Ledger, action: Action, why: str, key: str, now: datetime) -> tuple[list[Action], list[Action]]:
    """Let `action` go and give back what it took (with notices, ids stable for `key`):
    decided from the ledger as it is now, written in one transaction. Returns the actions
    newly planned and the give-backs planned under `key` before."""
    decided = plan_let_go(AccountView.read(ledger, action.client_email, action.calendar_id, action.event_id), action, why, key)
    return Store(ledger).apply(decided.plan, key=key, now=now), list(decided.before)
