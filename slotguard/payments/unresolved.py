"""Money whose outcome is not known yet, for `main.py status` (text and `unresolved_money`).

A money action (charge, hold, capture, release, refund) whose outcome the ledger does not
know (slotguard/payments/recovery.py) is the one thing an engineer paged at night must see first:

- left `executing`: the call was started and no answer was stored. Either the daemon is
  carrying it out right now, or it was cut off (a crash) and Stripe could not be asked
  since (`last_error` says why). Every tick asks again before reading any calendar.
- flagged `OUTCOME_UNKNOWN` (planner.py): an attempt failed in a way that may have moved
  money (a lost answer) and Stripe could not be asked afterwards either. It is tried again
  after its back-off with the same idempotency key, Stripe asked first.
- holding a waiver that waits for the outcome (`WAITING_WAIVER`): it is no longer carried
  out; every tick asks about it, and once the outcome is known the waiver applies (nothing
  taken: waived; money taken: refunded, a hold released; a payment link: withdrawn).

`unresolved_money(ledger, provider, zone)` reads only; `section(items, zone)` words it for the
terminal, times in the practice's time zone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from slotguard.domain.durations import from_utc_text, to_utc_text
from slotguard.domain.model import MONEY_KINDS, OPEN_STATES, Action, ActionState
from slotguard.domain.money import format_money
from slotguard.planning.planner import OUTCOME_UNKNOWN, WAITING_WAIVER
from slotguard.store.ledger import Ledger

HEADING = "Money whose outcome is not known yet"


@dataclass(frozen=True)
class Unresolved:
    """One money action whose outcome is not known: since when (its last attempt started),
    why (in words), and what Slotguard will do about it."""

    action: Action
    since: datetime
    why: str
    next: str

    def as_json(self, action_json: Callable[[Action], dict[str, Any]]) -> dict[str, Any]:
        """`action_json(action)` (the ledger's JSON form) with since, why, next and the flags."""
        return {
            **action_json(self.action),
            "since": to_utc_text(self.since),
            "why": self.why,
            "next": self.next,
            "outcome_unknown": bool(self.action.context.get(OUTCOME_UNKNOWN)),
            "waiver_waits": self.action.context.get(WAITING_WAIVER),
        }


def _is_unresolved(action: Action) -> bool:
    if action.kind not in MONEY_KINDS:
        return False
    if action.state is ActionState.EXECUTING:
        return True
    flagged = action.context.get(OUTCOME_UNKNOWN) or WAITING_WAIVER in action.context
    return bool(flagged) and action.state in (*OPEN_STATES, ActionState.FAILED)


def _local(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _since(ledger: Ledger, action: Action) -> datetime:
    """When the attempt whose outcome is unknown started: the first entry of the last run of
    `executing` entries in the action's log (its updated_at if the log has none)."""
    since = None
    for entry in reversed(ledger.action_log(action.id)):
        if entry["state"] == ActionState.EXECUTING.value:
            since = entry["at"]
        elif since is not None:
            break
    return from_utc_text(since) if since else action.updated_at


def _why(action: Action, provider: str) -> str:
    if action.last_error:
        return action.last_error
    if action.state is ActionState.EXECUTING:
        return (f"the {action.kind.value} was started and no answer was stored: it is being carried out right now, "
                f"or Slotguard stopped in the middle of the call")
    return f"the answer to its last attempt was lost and {provider} could not be asked afterwards"


def _next(action: Action, provider: str, zone: tzinfo) -> str:
    waiting = action.context.get(WAITING_WAIVER)
    if waiting is not None:
        return (f"asked again each tick; then the waiver that waits for it applies ({waiting}): nothing taken, "
                "the fee is waived; money taken, it is refunded (a hold released); a payment link, it is withdrawn")
    waiver = "a waiver waits for the answer (it never concludes that nothing was taken)"
    if action.state is ActionState.EXECUTING:
        return f"{provider} is asked again each tick, before any calendar is read; {waiver}"
    if action.state is ActionState.FAILED:
        return (f"not tried again by itself (its retry time ran out): `main.py retry {action.id}` once {provider} answers "
                f"(it asks {provider} first, so nothing is taken twice); {waiver}")
    return (f"tried again from {_local(action.due_at, zone)} with the same idempotency key, {provider} asked first "
            f"(nothing is taken twice); {waiver}")


def unresolved_money(ledger: Ledger, provider: str, zone: tzinfo) -> list[Unresolved]:
    """Every money action whose outcome is not known, oldest attempt first. `provider` is
    payments.provider ("stripe"); `zone` the practice's time zone, for times in the words."""
    name = "Stripe" if provider == "stripe" else f"the {provider} provider"
    found = [
        Unresolved(action, _since(ledger, action), _why(action, name), _next(action, name, zone))
        for action in ledger.actions(kinds=list(MONEY_KINDS))
        if _is_unresolved(action)
    ]
    return sorted(found, key=lambda item: (item.since, item.action.id))


def section(items: list[Unresolved], zone: tzinfo, locale: str = "en") -> str:
    """The status section, after a blank line: a heading, then per action its id, kind,
    amount, client and since when (in `zone`), why, and what happens next. "" when `items`
    is empty."""
    if not items:
        return ""
    out = ["", f"{HEADING} ({len(items)}); look at these first:"]
    for item in items:
        action = item.action
        amount = format_money(action.amount, locale) if action.amount else ""
        out.append(f"  {action.id}  {action.kind.value}  {amount:>12}  {action.client_email}  "
                   f"since {_local(item.since, zone)}  ({action.state.value})")
        out.append(f"      why: {item.why}")
        out.append(f"      next: {item.next}")
    return "\n".join(out) + "\n"
