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
from slotguard.domain.model import ActionState
from slotguard.domain.tick_report import TickReport
from slotguard.run.charge_now import charge_now
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


def _charge_now(args: argparse.Namespace, engine: Any, now: datetime) -> int:
    report = TickReport()
    done = charge_now(engine, args.action_id, now, report)
    if done.refused:
        state = done.action.state.value if done.action else "unknown"
        print(f"{args.action_id}: {done.refused} ({state}); see `main.py ledger`", file=sys.stderr)
        return 1
    final = done.action
    assert final is not None
    engine.write_back(report, now)
    for problem in report.problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"{final.id}: {final.state.value} {money_text(final, engine.settings)} {final.context.get('payment_status', '')} {final.last_error}".rstrip())
    return 0 if final.state is ActionState.DONE else 1
