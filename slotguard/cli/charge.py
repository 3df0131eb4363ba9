"""`main.py charge-now ACTION_ID`: carry out one fee now instead of after its review window.

A fee kept uncharged because its mark came too late (`calendar.marks.honour_for`; the digest
gives its id) is charged the same way, with the notices kept with it: the practitioner means it.

Only that fee, and the email that reports on it once the fee is done (its notice, which
would otherwise wait for the end of the window), in the same moment: the client reads why
with the charge. Both go even in quiet hours (`mail.quiet_hours`): the practitioner asked
for now, and a charge never goes without its explanation. Nothing else. Every other due action is
left to `run`, which reads the calendar first: a fee waived on its event while the daemon
was stopped is never charged here. The command carries an action out, so it holds the data
folder's lock like `run` (slotguard/store/daemon_lock.py).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from slotguard.cli.common import load_settings, money_text, now_from, refuse_pretend_clock
from slotguard.domain.model import OPEN_STATES, ActionKind, ActionState
from slotguard.domain.plan import LATE_MARK
from slotguard.domain.tick_report import TickReport
from slotguard.planning.quiet import AT_ONCE
from slotguard.policies.account import INCIDENT
from slotguard.run.wiring import build_engine
from slotguard.store.daemon_lock import exclusive


def register(add: Any, commands: Any) -> None:
    charge = add("charge-now", cmd_charge_now, "charge one fee now instead of after its review window (nothing else)", now=True)
    charge.add_argument("action_id")


def cmd_charge_now(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if args.now:
        refuse_pretend_clock(settings, "charge-now")
    now = now_from(args.now)
    with exclusive(settings.storage.data_dir, settings.storage.location, settings.storage.schema_name):  # it carries actions out: only the lock holder may
        return _charge_now(args, build_engine(settings, now), now)


def _reopen_late_mark(ledger: Any, fee: Any, now: datetime) -> None:
    """A fee kept uncharged because its mark came after `calendar.marks.honour_for`: the
    practitioner means it. The fee (now an incident) and the notices kept with it are open
    again, to be carried out at once below."""
    fee.state = ActionState.PENDING_REVIEW
    fee.context[INCIDENT] = True
    fee.reason += "; charged by hand with charge-now (the mark came late)"
    ledger.update_action(fee, now, "charge-now: the practitioner means the late mark")
    for email in ledger.actions(states=[ActionState.CANCELLED], kinds=[ActionKind.EMAIL], calendar_id=fee.calendar_id, event_id=fee.event_id):
        if email.reports_on == fee.id and email.context.get(LATE_MARK):
            email.state = ActionState.PLANNED
            ledger.update_action(email, now, "charge-now: sent with the fee it reports on")


def _charge_now(args: argparse.Namespace, engine: Any, now: datetime) -> int:
    ledger = engine.ledger
    action = ledger.action(args.action_id)
    if action is not None and action.kind is ActionKind.CHARGE and action.state is ActionState.CANCELLED and action.context.get(LATE_MARK):
        _reopen_late_mark(ledger, action, now)
    if action is None or action.kind is not ActionKind.CHARGE or action.state not in OPEN_STATES:
        state = action.state.value if action else "unknown"
        print(f"{args.action_id}: not a fee waiting to be charged ({state}); see `main.py ledger`", file=sys.stderr)
        return 1
    action.due_at = now
    action.context[AT_ONCE] = True  # asked for now: not held by quiet hours (slotguard/planning/quiet.py)
    if not ledger.update_action(action, now, "charge-now requested by the practitioner"):
        print(f"{args.action_id}: changed meanwhile (waived?); see `main.py ledger`", file=sys.stderr)
        return 1
    report = TickReport()
    engine.execute(action, now, report)
    final = ledger.action(action.id)
    if final.state is ActionState.DONE:
        # Its notice, which waits for the fee: the client hears now, not at the window's end.
        for email in ledger.actions(states=OPEN_STATES, kinds=[ActionKind.EMAIL], calendar_id=action.calendar_id, event_id=action.event_id):
            if email.reports_on == action.id:
                email.due_at = now
                email.context[AT_ONCE] = True
                if ledger.update_action(email, now, "sent with its fee, charged now by the practitioner", expect=OPEN_STATES):
                    engine.execute(email, now, report)
    engine.write_back(report, now)
    for problem in report.problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"{action.id}: {final.state.value} {money_text(final, engine.settings)} {final.context.get('payment_status', '')} {final.last_error}".rstrip())
    return 0 if final.state is ActionState.DONE else 1
