"""One action whose carrying out raised something unexpected fails alone; the others go on.

Engine.execute handles what adapters are expected to raise (AdapterError, TemplateProblem,
ValueError). Anything else (a bug in Slotguard, in a policy plugin's hook while an email is
composed, in a mailer or in the payment provider) comes here, `unexpected_failure`, so that
the action does not stay `executing` and end the whole "carrying out due actions" step, and
is not first in line again at every tick while other clients' mail and money wait:

- It is reported (a problem in the tick's summary naming the action and the exception) and
  logged key=value with the exception's type and the place it was raised (as
  slotguard/store/containment.py does for events); the action's `last_error` names the exception.
- It counts as an attempt and waits: 2m, 4m, 8m ... at most 6h, like an email the server
  refused for now. After `mail.max_attempts` attempts (whatever its kind) it is `failed`,
  with a problem; `main.py retry ID` puts it back once the bug is fixed.
- A money action (charge, hold, capture, release, refund) that raised after it was
  committed `executing` may have reached the provider, so its outcome is unknown and it is
  never put back blind. The provider is asked first (`recovery.lookup`, lookup only):
  - found (money taken, held or refunded; a payment link out): it is `done`, recorded as
    the provider has it, exactly as if the call had returned (`recovery.record_found`), and
    never carried out again;
  - nothing there: nothing moved; it waits its back-off (or fails, as above) and is carried
    out again with the same idempotency key;
  - the provider cannot be asked: it is flagged `outcome_unknown` and waits its back-off; a
    waiver meanwhile waits for the outcome (planner.wait_for_outcome), and the next attempt
    is again looked up by the provider before it creates anything (same idempotency key),
    so nothing is taken twice.
  In every case a waiver that waited for the outcome applies once it is known
  (`recovery.settle_waiting_waiver`): nothing taken, waived; money taken, refunded.
  With `payments.dry_run` nothing left the machine: it only waits its back-off.
- If recording this raises too, the action is left as the ledger has it (a money action
  `executing`: every tick asks the provider about it before reading any calendar, and
  `status` lists it first), and that is reported; the tick still goes on.

A LedgerError (the ledger itself cannot be written) is no action's fault: it propagates.
Nothing here reads the clock; `now` is given.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from slotguard.config.schema import Settings
from slotguard.domain.durations import to_utc_text
from slotguard.domain.interfaces import AdapterError, provider_name
from slotguard.domain.model import MONEY_KINDS, ActionState
from slotguard.domain.tick_report import TickReport
from slotguard.payments.recovery import lookup, record_found, settle_waiting_waiver
from slotguard.planning.planner import OUTCOME_UNKNOWN
from slotguard.store.containment import describe, raised_at
from slotguard.store.ledger import Ledger, LedgerError

log = logging.getLogger("slotguard.engine")

RETRY_BASE = timedelta(minutes=2)
RETRY_MAX = timedelta(hours=6)
BUG = "a bug in Slotguard, a policy plugin or an adapter; the log says where"


def retry_delay(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt: 2m, 4m, 8m ... at most 6h."""
    return min(RETRY_BASE * 2 ** min(max(attempts, 1) - 1, 20), RETRY_MAX)


def unexpected_failure(ledger: Ledger, provider: Any, settings: Settings, action_id: str, error: Exception,
                       now: datetime, report: TickReport) -> None:
    """Record that carrying out the action `action_id` raised `error` (not one of the errors
    adapters are expected to raise), as the module docstring says. Never raises, except a
    LedgerError."""
    log.error("action failed action=%s error=%s at=%s", action_id, type(error).__name__, raised_at(error))
    try:
        _record(ledger, provider, settings, action_id, error, now, report)
    except LedgerError:
        raise
    except Exception as again:  # noqa: BLE001 - the tick goes on whatever happens here
        log.error("action failure not recorded action=%s error=%s at=%s", action_id, type(again).__name__, raised_at(again))
        report.problem(f"action {action_id} raised {describe(error)}, and recording that raised {describe(again)}; "
                       f"it is left as it was (money is asked about at every tick before anything else); {BUG}")


def _record(ledger: Ledger, provider: Any, settings: Settings, action_id: str, error: Exception,
            now: datetime, report: TickReport) -> None:
    what = describe(error)
    read = ledger.action(action_id)
    if read is None:
        report.problem(f"action {action_id} raised {what}; {BUG}")
        return
    may_have_moved_money = read.kind in MONEY_KINDS and read.state is ActionState.EXECUTING and not settings.payments.dry_run
    found, unknown = None, False
    if may_have_moved_money:
        try:
            found = lookup(provider, read)  # outside the transaction: the provider may be slow
        except AdapterError as failed:
            unknown = True
            log.warning("lookup failed action=%s error=%r", action_id, str(failed))
    name = "Stripe" if provider_name(provider, "") == "stripe" else f"the {provider_name(provider, 'payment')} provider"
    described = f"{read.kind.value}{f' of {read.amount}' if read.amount else ''} for {read.client_email}"
    with ledger.transaction():
        action = ledger.action(action_id)  # again: `main.py waive` may have stored a waiver meanwhile
        if action is None or action.state is not read.state:
            report.problem(f"action {action_id} ({described}) raised {what}; it was changed meanwhile, which stands; {BUG}")
            return
        if action.state is not ActionState.EXECUTING:
            action.attempts += 1  # it raised before the attempt was recorded
        attempt = action.attempts
        if found is not None:
            problem = record_found(ledger, action, found, now, f"attempt {attempt} raised {what}, but {name} has it")
            report.executed[f"{action.kind.value}:done"] += 1
            report.problem(f"action {action_id} ({described}) raised {what} after {name} was called; {name} has it, so it "
                           f"is recorded as done and not carried out again; {BUG}" + (f". {problem}" if problem else ""))
        else:
            if may_have_moved_money:
                if unknown:
                    action.context[OUTCOME_UNKNOWN] = True  # a waiver meanwhile waits for a lookup
                else:
                    action.context.pop(OUTCOME_UNKNOWN, None)
            action.last_error = what
            outcome = _back_off_or_fail(action, attempt, settings.mail.max_attempts, now)
            ledger.update_action(action, now, outcome)
            report.executed[f"{action.kind.value}:{'retry' if action.state is ActionState.PLANNED else 'failed'}"] += 1
            moved = (f"; whether {name} took the money is not known yet (it could not be asked), so it is asked again "
                     "before anything else is done with it") if unknown else (f"; {name} has nothing for it" if may_have_moved_money else "")
            report.problem(f"action {action_id} ({described}) raised {what}{moved}; {outcome}; the other actions went on; {BUG}"
                           + (f"; once it is fixed, `main.py retry {action_id}`" if action.state is ActionState.FAILED else ""))
        settle_waiting_waiver(ledger, action_id, now)


def _back_off_or_fail(action: Any, attempt: int, limit: int, now: datetime) -> str:
    """Put `action` back with its back-off, or fail it after `limit` attempts; the log note."""
    if attempt < limit:
        action.state = ActionState.PLANNED
        action.due_at = now + retry_delay(attempt)
        return f"attempt {attempt} raised {action.last_error}; tried again at {to_utc_text(action.due_at)}"
    action.state = ActionState.FAILED
    return f"failed: attempt {attempt} of {limit} raised {action.last_error}"
