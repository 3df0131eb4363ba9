"""`main.py retry`: try again actions that failed for good (see slotguard/cli/main.py, EXTRA_COMMANDS).

`register(add, commands)`: `add(name, handler, help, now=False)` adds a subcommand that takes
--config (and --now when asked) and returns its parser.

- `retry ACTION_ID [ACTION_ID...]`: each failed action goes back to `planned`, due now, with
  its attempts reset and "retried by the practitioner" in its log; the next tick of `run`
  carries it out. An id that is unknown, not failed, or not safe to retry (below) is refused
  with the reason, and then nothing is retried (exit 1): fix the list and run it again.
- `retry --all-failed [--kind KIND ...] [--yes]`: every failed action (of those kinds). Those
  not safe to retry are listed and left alone. Without --kind, when money actions are among
  them, it only lists what it would do and asks for --yes (exit 1).

What the next tick will do is said for each action, from the same rules the engine applies
(engine.Engine.execute and _email_ready); the engine checks again when it runs, so a
prediction that went stale meanwhile never sends or charges anything the engine would not.

Not retried at all (it stays failed, with the reason printed):
- a charge, hold or capture whose appointment was waived on the calendar after the action
  was planned (a failed fee is neither open nor done, so the planner's waiver does not reach
  it; retrying it would charge a fee the practitioner let go), or whose amount is above
  payments.max_single_charge now;
- an email to a client that failed more than LATE_AFTER ago (a fee notice or a "we missed
  you today" weeks late surprises the client more than it informs; tell them yourself), and
  a daily digest of an earlier day (today's digest says what is current).
Retried, with a warning that the next tick drops it: booking confirmations and reminders for
an appointment that has started, moved or been cancelled, and slot offers for a slot that
has started. The engine cancels those instead of sending them, which also takes them off
the list of failed actions.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta

from slotguard.cli.common import load_settings, money_text, now_from
from slotguard.collections.debts import COLLECTIONS
from slotguard.config.schema import Settings
from slotguard.domain.durations import from_utc_text
from slotguard.domain.model import MONEY_KINDS, OPEN_STATES, Action, ActionKind, ActionState, HappeningKind
from slotguard.mail.stale import stale_email_reason
from slotguard.payments.results import FIRST_FAILED_AT, GAVE_UP_AFTER
from slotguard.planning.planner import LIFECYCLE  # booking confirmations and reminders
from slotguard.planning.waitlist import POLICY as WAITLIST  # a freed slot offered to clients who wanted an earlier time
from slotguard.store.daemon_lock import exclusive
from slotguard.store.ledger import Ledger

# An email to a client that failed longer ago than this is not sent late.
LATE_AFTER = timedelta(days=7)
RETRY_NOTE = "retried by the practitioner"
FEE_TAKING = (ActionKind.CHARGE, ActionKind.HOLD, ActionKind.CAPTURE)


def register(add, commands) -> None:
    retry = add("retry", cmd_retry, "put failed actions back in the queue after you fixed the cause (the next run carries them out)",
                now=True)
    retry.add_argument("action_ids", nargs="*", metavar="ACTION_ID", help="failed actions to try again (see `main.py status`)")
    retry.add_argument("--all-failed", action="store_true", help="every failed action (of --kind, if given) instead of ids")
    retry.add_argument("--kind", action="append", choices=[kind.value for kind in ActionKind if kind is ActionKind.EMAIL or kind in MONEY_KINDS],
                       help="with --all-failed: only actions of this kind (repeat for several)")
    retry.add_argument("--yes", action="store_true",
                       help="with --all-failed and no --kind: go ahead although money actions are among them")
    retry.set_defaults(retry_parser=retry)


@dataclass(frozen=True)
class Outlook:
    """What retrying one failed action leads to: `retry` False means it is left failed."""
    retry: bool
    text: str


# -- what the next tick will do ----------------------------------------------------------------


def outlook(ledger: Ledger, settings: Settings, action: Action, now: datetime) -> Outlook:
    """Whether to put a failed `action` back in the queue, and what the next tick does with it."""
    if action.kind is ActionKind.EMAIL:
        return _email_outlook(ledger, settings, action, now)
    if action.kind in MONEY_KINDS:
        return _money_outlook(ledger, settings, action, now)
    return Outlook(True, "recorded at the next tick")


def _email_outlook(ledger: Ledger, settings: Settings, action: Action, now: datetime) -> Outlook:
    local = now.astimezone(settings.zone)
    if not action.event_id:  # practice mail: the daily digest
        day = str(action.context.get("day", ""))
        if day and day != local.date().isoformat():
            return Outlook(False, f"the digest for {day} is out of date; today's digest says what is current")
        return Outlook(True, "sent at the next tick, with what the ledger holds then")

    tracked = ledger.tracked(action.calendar_id, action.event_id)
    why = stale_email_reason(action, tracked, now, show=lambda moment: _local(moment, settings))
    if why:  # the engine's own rule, read-only
        return Outlook(True, f"will NOT be sent: {why}; the next tick cancels it")
    if action.reports_on:
        fee = ledger.action(action.reports_on)
        if fee and fee.state in (*OPEN_STATES, ActionState.EXECUTING):
            return _late(action, settings, now) or Outlook(
                True, f"sent once the fee it reports on ({fee.id}, {fee.state.value}) is settled, due {_local(fee.due_at, settings)}")
        if fee and fee.state is ActionState.FAILED:
            return _late(action, settings, now) or Outlook(
                True, f"sent at the next tick, although the fee it reports on ({fee.id}) failed: the message tells the client "
                      "the fee applies and how to pay it; retry the fee first, or with it, to report how it was settled")
    return _late(action, settings, now) or Outlook(True, "sent at the next tick")


def _late(action: Action, settings: Settings, now: datetime) -> Outlook | None:
    """Refuse client mail that failed long ago. Reminders and booking confirmations are
    dropped by the engine once the appointment started; the collections ladder checks its
    own mail (engine: collection_ready) and is about old debts by design."""
    if action.policy in (LIFECYCLE, WAITLIST, COLLECTIONS):
        return None
    failed_at = action.updated_at
    if now - failed_at <= LATE_AFTER:
        return None
    about = f" about the appointment of {_local(action.appointment_start, settings)}" if action.appointment_start else ""
    return Outlook(False, f"it failed {_local(failed_at, settings)}, {(now - failed_at).days} days ago; sent now, "
                          f"the message{about} would reach the client weeks late. Contact them yourself if it still matters")


def _money_outlook(ledger: Ledger, settings: Settings, action: Action, now: datetime) -> Outlook:
    if action.kind in FEE_TAKING:
        waived = _waived_since(ledger, action)
        if waived:
            return Outlook(False, f"the appointment was waived on the calendar since ({waived}); no money is taken for it")
        cap = settings.payments.max_single_charge
        if cap is not None and action.amount is not None and action.amount.currency == cap.currency and action.amount > cap:
            return Outlook(False, f"{money_text(action, settings)} is above payments.max_single_charge ({money_text(cap, settings)}); "
                                  "raise it first if this is right")
    amount = f" of {money_text(action, settings)}" if action.amount else ""
    if settings.payments.dry_run:
        return Outlook(True, f"{action.kind.value}{amount} at the next tick in dry-run mode: no money moves")
    if settings.payments.provider != "stripe":
        return Outlook(True, f"{action.kind.value}{amount} recorded at the next tick ({settings.payments.provider}: no money moves)")
    checks = [f"same idempotency key {action.idempotency_key}: a payment Stripe already made for it is found, not made again"]
    if action.kind is ActionKind.CHARGE and settings.payments.daily_cap is not None:
        checks.append(f"the daily cap ({money_text(settings.payments.daily_cap, settings)}) may move it to tomorrow")
    if action.policy == COLLECTIONS:
        checks.append("first checked to be still owed")
    return Outlook(True, f"{action.kind.value}{amount} at the next tick; " + "; ".join(checks))


def _waived_since(ledger: Ledger, action: Action) -> str:
    """How the action's slot was waived after the action was planned ("" if it was not): a
    waive mark, or the no-show or late-cancellation mark taken off the event."""
    for happening in reversed(ledger.happenings_for(action.calendar_id, action.event_id)):
        if happening["kind"] != HappeningKind.WAIVED.value:
            continue
        same_slot = action.appointment_start is None or from_utc_text(happening["start_utc"]) == action.appointment_start
        if same_slot and from_utc_text(happening["seen_at"]) >= action.created_at:
            return f"seen {happening['seen_at']}" + (f": {happening['detail']}" if happening["detail"] else "")
    return ""


# -- the command ---------------------------------------------------------------------------------


def cmd_retry(args: argparse.Namespace) -> int:
    parser = args.retry_parser
    if args.all_failed and args.action_ids:
        parser.error("give action ids or --all-failed, not both")
    if not args.all_failed and not args.action_ids:
        parser.error("give the ids of failed actions (see `main.py status`), or --all-failed")
    if args.kind and not args.all_failed:
        parser.error("--kind goes with --all-failed")
    settings = load_settings(args.config)
    now = now_from(args.now)
    # Like `run`, it changes what is queued: one Slotguard at a time (slotguard/store/daemon_lock.py).
    with exclusive(settings.storage.data_dir, settings.storage.location, settings.storage.schema_name):
        ledger = Ledger(settings.storage.location, settings.storage.schema_name)
        try:
            if args.all_failed:
                return _retry_all(ledger, settings, now, args)
            return _retry_ids(ledger, settings, now, list(dict.fromkeys(args.action_ids)))
        finally:
            ledger.close()


def _retry_ids(ledger: Ledger, settings: Settings, now: datetime, ids: list[str]) -> int:
    chosen: list[tuple[Action, Outlook]] = []
    refused: list[str] = []
    for action_id in ids:
        action = ledger.action(action_id)
        if action is None:
            refused.append(f"{action_id}: no such action; see `main.py ledger`")
        elif action.state is not ActionState.FAILED:
            refused.append(f"{action_id}: is {action.state.value}, not failed; only failed actions are retried")
        else:
            seen = outlook(ledger, settings, action, now)
            if seen.retry:
                chosen.append((action, seen))
            else:
                refused.append(f"{action_id}: {_what(action, settings)}: not retried: {seen.text}")
    if refused:
        for line in refused:
            print(line, file=sys.stderr)
        print("nothing was retried; leave out the ids above and run the command again", file=sys.stderr)
        return 1
    return _put_back(ledger, settings, now, chosen)


def _retry_all(ledger: Ledger, settings: Settings, now: datetime, args: argparse.Namespace) -> int:
    kinds = [ActionKind(kind) for kind in args.kind] if args.kind else None
    failed = ledger.actions(states=[ActionState.FAILED], kinds=kinds)
    which = f" ({', '.join(args.kind)})" if args.kind else ""
    if not failed:
        print(f"no failed actions{which}; nothing to retry")
        return 0
    chosen: list[tuple[Action, Outlook]] = []
    left: list[tuple[Action, Outlook]] = []
    for action in failed:
        seen = outlook(ledger, settings, action, now)
        (chosen if seen.retry else left).append((action, seen))
    for action, seen in left:
        print(f"{action.id}  {_what(action, settings)}: left failed: {seen.text}")
    money = [action for action, _ in chosen if action.kind in MONEY_KINDS]
    if money and not args.kind and not args.yes:
        print(f"would retry {len(chosen)} failed action(s){which}:")
        for action, seen in chosen:
            print(f"  {action.id}  {_what(action, settings)}: {seen.text}")
            print(f"      failed: {action.last_error}")
        print(f"{len(money)} money action(s) among them ({', '.join(sorted({a.kind.value for a in money}))}): nothing was retried. "
              "Add --yes to retry them all, or choose with --kind (e.g. --kind email).", file=sys.stderr)
        return 1
    if not chosen:
        print(f"none of the {len(failed)} failed action(s){which} can be retried")
        return 0
    return _put_back(ledger, settings, now, chosen)


def _put_back(ledger: Ledger, settings: Settings, now: datetime, chosen: list[tuple[Action, Outlook]]) -> int:
    """Failed -> planned, due now, attempts reset, in one transaction; each with its log line."""
    done: list[tuple[Action, Outlook]] = []
    with ledger.transaction():
        for action, seen in chosen:
            tried, error = action.attempts, action.last_error
            action.state = ActionState.PLANNED
            action.due_at = now
            action.attempts = 0
            # A money action's retry budget (payments.retry_for) starts again too.
            action.context.pop(FIRST_FAILED_AT, None)
            action.context.pop(GAVE_UP_AFTER, None)
            note = f"{RETRY_NOTE}: due now, attempts reset (failed after {tried} attempt(s): {error})"
            if ledger.update_action(action, now, note, expect=[ActionState.FAILED]):
                done.append((action, seen))
            else:
                print(f"{action.id}: changed meanwhile; not retried", file=sys.stderr)
    for action, seen in done:
        print(f"{action.id}  {_what(action, settings)}: back in the queue; {seen.text}")
    interval = settings.calendar.poll_interval
    print(f"{len(done)} action(s) retried; the next tick of `main.py run` carries them out "
          f"(the daemon ticks every {_duration(interval)}; or `main.py run --once`).")
    return 0 if len(done) == len(chosen) else 1


# -- words -----------------------------------------------------------------------------------------


def _what(action: Action, settings: Settings) -> str:
    detail = action.template if action.kind is ActionKind.EMAIL else (money_text(action, settings) if action.amount else action.policy)
    return f"{action.kind.value} {detail} for {action.client_email}"


def _local(value: datetime | None, settings: Settings) -> str:
    return value.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M") if value else "?"


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"
