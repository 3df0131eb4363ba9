"""The command line: `python main.py COMMAND ...`.

Exit status: 0 success, 1 a command that found a problem (e.g. an unknown action id),
2 a configuration error (all problems are listed, each with its path).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from slotguard.cli.calendar_check import check_calendar
from slotguard.cli.common import load_settings, refuse_pretend_clock, select_config
from slotguard.cli.common import local_time as _local
from slotguard.cli.common import money_text as _money
from slotguard.cli.common import now_from as _now
from slotguard.cli.payments import check_payments
from slotguard.config.limits import file_problems, warnings
from slotguard.config.schema import ConfigError, Settings
from slotguard.domain.durations import DurationError, to_utc_text
from slotguard.domain.model import OPEN_STATES, OWED, Action, ActionKind, ActionState
from slotguard.domain.money import Money, format_money
from slotguard.inbox.summary import inbox_summary
from slotguard.payments.unresolved import section
from slotguard.planning.waivers import waive_by_hand
from slotguard.policies.account import FEE, TARGET, purpose_of
from slotguard.policies.loading import load_enabled
from slotguard.practitioner.mark_privacy import check_config_warnings
from slotguard.run import metrics
from slotguard.run.failures import redact, stdout_closed, tick_failure
from slotguard.run.inbox_wait import IDLE_STEP, InboxPacer
from slotguard.run.logs import FORMATS, current_practice, practice_context, setup_logging
from slotguard.run.ops_server import Health, database_check, serve
from slotguard.run.status_view import gather_status
from slotguard.run.wiring import build_engine, make_renderer
from slotguard.store.backend import ENGINE_ERRORS, explain_engine_error, shown_location
from slotguard.store.daemon_lock import LockHeld, exclusive, fence_held
from slotguard.store.ledger import Ledger, LedgerError
from slotguard.store.private_files import OutputRefused
from slotguard.what_if.replay import ScenarioError, load_scenario, run_scenario

DEFAULT_CONFIG = "config/example.toml"
# Modules adding commands of their own: each has register(add, commands).
EXTRA_COMMANDS = ("slotguard.cli.charge", "slotguard.cli.mail", "slotguard.cli.policies", "slotguard.cli.payments", "slotguard.cli.collections", "slotguard.cli.retry", "slotguard.cli.report",
                  "slotguard.cli.worker", "slotguard.cli.clients", "slotguard.cli.export")
log = logging.getLogger("slotguard")


def action_json(action: Action) -> dict[str, Any]:
    return {
        "id": action.id,
        "kind": action.kind.value,
        "state": action.state.value,
        "client": action.client_email,
        "event_id": action.event_id,
        "calendar_id": action.calendar_id,
        "amount": action.amount.as_json() if action.amount else None,
        "policy": action.policy,
        "reason": action.reason,
        "template": action.template,
        "due_at": to_utc_text(action.due_at),
        "created_at": to_utc_text(action.created_at),
        "executed_at": to_utc_text(action.executed_at) if action.executed_at else None,
        "attempts": action.attempts,
        "last_error": action.last_error,
        "payment_status": action.context.get("payment_status", ""),
    }


# -- commands ----------------------------------------------------------------------------


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    problems = file_problems(settings)
    try:
        make_renderer(settings, load_enabled(settings))
    except ConfigError as error:
        problems += error.problems
    if problems:
        raise ConfigError(problems, args.config)
    payments = check_payments(settings)  # tries the Stripe key for real; "" for record-only
    payments += check_calendar(settings)  # finds the CalDAV calendar for real; "" for other sources
    for warning in warnings(settings):
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{args.config}: configuration is valid; templates render{payments}.")
    if inbox_summary(settings):
        print(inbox_summary(settings))
    for warning in config_warnings(settings):
        print(f"warning: {warning}")
    return 0


def config_warnings(settings: Settings) -> list[str]:
    """What `check-config` points out without refusing the config (exit status stays 0)."""
    return check_config_warnings(settings)


def cmd_run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if args.now and not args.once:
        raise ConfigError(["--now can only be used with --once"])
    if args.now:
        refuse_pretend_clock(settings, "run --once")
    # One Slotguard per data folder, for the whole run: only the lock holder recovers
    # interrupted actions and carries actions out (slotguard/store/daemon_lock.py).
    with exclusive(settings.storage.data_dir, settings.storage.location, settings.storage.schema_name) as locks, \
            practice_context(Path(args.config).stem):
        return _run(args, settings, lambda: fence_held(locks))  # every line logged names the practice, as a deployment's file names it


FENCE_LOST_EXIT = 75  # EX_TEMPFAIL: the service manager restarts the daemon (Restart=on-failure)
FENCE_CHECK_SECONDS = 5  # how often an idle daemon makes sure it still holds the ledger's lock (one SELECT 1)


def fence_lost(settings: Settings) -> int:
    """The ledger's lock went while `run` held it (its connection to PostgreSQL was cut, and
    the server freed it): another Slotguard may hold it now, so nothing more is done."""
    message = (f"Slotguard: the lock on the ledger {shown_location(settings.storage.location, settings.storage.schema_name)} was lost "
               "(its connection to the server was cut); stopped after the current action. The service manager restarts it: "
               "it takes the lock again, or is refused while another Slotguard holds it.")
    log.error("ledger_lock_lost stopping exit=%d", FENCE_LOST_EXIT)
    print(message, file=sys.stderr)
    return FENCE_LOST_EXIT


def _run(args: argparse.Namespace, settings: Settings, held: Callable[[], bool] = lambda: True) -> int:
    stopping = {"flag": False}

    def request_stop(signum, frame):  # finish the current action, then exit
        stopping["flag"] = True
        log.warning("signal=%s stopping after the current action", signum)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    now = _now(args.now)
    # Before each action: a signal, or the ledger's lock lost (slotguard/store/daemon_lock.py fence_held).
    engine = build_engine(settings, now, stop_requested=lambda: stopping["flag"] or not held())
    for warning in warnings(settings):
        log.warning("config_warning %s", warning)
    recovered = engine.recover(now)
    if recovered:
        log.warning("recovered=%d actions interrupted by a previous stop; retrying them", recovered)
    if args.once:
        try:
            report = engine.tick(now)
        except Exception as error:  # noqa: BLE001 - reported once, in plain words; exit 1
            print(f"Slotguard: the tick failed, nothing more was done: {tick_failure(error)}", file=sys.stderr)
            return 1
        if not held():
            return fence_lost(settings)
        print(f"Slotguard: one tick for {settings.practice.name} at {now.astimezone(settings.zone).isoformat()}")
        print(report.summary())
        _print_outlook(engine.ledger, settings, now)
        return 0
    import schedule

    state = {"failed": 0, "recover": False, "lost": False}
    practice = current_practice()
    health = Health(timedelta(minutes=10), database_check(settings.storage.location))  # [metrics] stuck_after's default
    server = serve(args.metrics_listen, health, "--metrics-listen") if args.metrics_listen else None
    health.loaded()

    def job() -> None:
        # The daemon survives anything a tick raises: it is logged and counted, and the next
        # tick starts over (putting back an action the failed tick left executing: this
        # process holds the lock, so nothing else is carrying it out).
        tick_now = datetime.now(UTC)
        if not held():  # never recover or act without the lock: stop, and exit non-zero
            state["lost"] = stopping["flag"] = True
            return
        try:
            if state["recover"]:
                engine.recover(tick_now)
                state["recover"] = False
            started = time.monotonic()
            pacer.ticked()
            report = engine.tick(tick_now)
            if not held():  # the tick stopped before its next action: nothing more
                state["lost"] = stopping["flag"] = True
                return
            metrics.observe_tick(practice, report, time.monotonic() - started)
            if server is not None:
                metrics.observe_ledger(practice, engine.ledger, tick_now)
        except Exception as error:  # noqa: BLE001
            metrics.count_failure(practice, "tick")
            state["failed"] += 1
            state["recover"] = True
            log.error("tick_failed error_type=%s error=%s failed_ticks=%d next_tick_in=%ds", type(error).__name__,
                      json.dumps(redact(str(error))), state["failed"], interval)
            return
        log.info("tick events=%d planned=%d executed=%d problems=%d", report.events_seen,
                 sum(report.planned.values()), sum(report.executed.values()), len(report.problems))

    interval = int(settings.calendar.poll_interval.total_seconds())
    pacer = InboxPacer(engine.inbox)  # with an inbox, mail arriving ticks at once (at most every 10 s)
    schedule.every(interval).seconds.do(job)
    job()
    checked = time.monotonic()
    while not stopping["flag"]:
        schedule.run_pending()
        health.turn()
        if time.monotonic() - checked >= FENCE_CHECK_SECONDS:  # between ticks too: a lost lock ends the daemon at once
            checked = time.monotonic()
            if not held():
                state["lost"] = stopping["flag"] = True
                break
        if pacer.pause(min(schedule.idle_seconds() or IDLE_STEP, FENCE_CHECK_SECONDS)) and not stopping["flag"]:
            job()
    if server is not None:
        server.stop()
    if state["lost"]:
        return fence_lost(settings)
    failed = f" ({state['failed']} tick(s) failed; see the log)" if state["failed"] else ""
    print(f"Slotguard stopped cleanly{failed}.")
    return 0


def _print_outlook(ledger: Ledger, settings: Settings, now: datetime) -> None:
    pending = ledger.actions(states=[ActionState.PENDING_REVIEW])
    emails = ledger.actions(states=[ActionState.PLANNED], kinds=[ActionKind.EMAIL])
    if pending:
        print("fees pending review (add a waive tag to the event, or `main.py waive ID`):")
        for action in pending:
            print(f"  {action.id}  {_money(action, settings):>12}  {action.client_email}  charged {_local(action.due_at, settings)}  {action.reason}")
    if emails:
        print(f"emails scheduled: {len(emails)} (next: {_local(min(a.due_at for a in emails), settings)})")
    outbox = settings.mail.outbox_dir if settings.mail.transport == "outbox-dir" else ""
    print(f"ledger: {shown_location(settings.storage.location, settings.storage.schema_name)}" + (f"; outbox: {outbox}" if outbox else ""))


def cmd_status(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    ledger = Ledger(settings.storage.location, settings.storage.schema_name)
    now = _now(args.now)
    view = gather_status(ledger, settings, now)
    unresolved, upcoming, pending, receivables, balances, balance_lines, failed = (
        view.unresolved, view.upcoming, view.pending, view.receivables, view.balances, view.balance_lines, view.failed)
    data = {
        "unresolved_money": [item.as_json(action_json) for item in unresolved],
        "upcoming": [
            {"event_id": t.appointment.event_id, "client": t.appointment.client.email, "start": t.appointment.start.isoformat(), "price": t.appointment.price.as_json()}
            for t in upcoming
        ],
        "pending_review": [action_json(a) for a in pending],
        "receivables": [action_json(a) for a in receivables],
        "balances": balances,
        "failed": [action_json(a) for a in failed],
        "problems": view.problems,
        "calendars": view.calendars,
        "notes_to_write": view.notes_to_write,
    }
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return 0
    print(f"Slotguard status for {settings.practice.name} at {_local(now, settings)} ({settings.practice.timezone})")
    print(section(unresolved, settings.zone, settings.practice.locale), end="")  # nothing when every outcome is known
    print(f"\nUpcoming appointments ({len(upcoming)}):")
    for t in upcoming:
        print(f"  {_local(t.appointment.start, settings)}  {t.appointment.client.email}  {_money(t.appointment.price, settings)}")
    print(f"\nFees pending review ({len(pending)}):")
    for a in pending:
        print(f"  {a.id}  {_money(a, settings):>12}  {a.client_email}  charged {_local(a.due_at, settings)} unless waived  ({a.reason})")
    print(f"\nReceivables, not yet paid ({len(receivables)}):")
    for a in receivables:
        print(f"  {a.id}  {_money(a, settings):>12}  {a.client_email}  since {_local(a.executed_at, settings)}")
    if balance_lines:
        print(f"\nBalances by client ({len(balance_lines)}; `main.py balance` for the details):", *balance_lines, sep="\n")
    if failed:
        print(f"\nFailed actions ({len(failed)}), need your attention:")
        for a in failed:
            print(f"  {a.id}  {a.kind.value}  {a.client_email}  {a.last_error}")
    problems = view.problems
    if problems:
        print(f"\nProblems with calendar events ({len(problems)}):")
        for p in problems:
            print(f"  {p['calendar_id']} {p['item']}: {p['message']}")
    if data["notes_to_write"]:
        print(f"\nStatus notes not written onto the calendar yet ({len(data['notes_to_write'])}; tried again each tick):")
        for row in data["notes_to_write"]:
            tried = f"{row['attempts']} attempt(s), last: {row['last_error']}" if row["attempts"] else "requested by a command"
            print(f"  {row['calendar_id']} {row['event_id']}: {tried}")
    print("\nCalendars:")
    for state in view.calendars:
        error = f"  last error: {state['last_error']}" if state["last_error"] else ""
        print(f"  {state['calendar_id']}  last sync {state['last_sync_at'] or 'never'}{error}")
    return 0


def cmd_ledger(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    ledger = Ledger(settings.storage.location, settings.storage.schema_name)
    actions = ledger.actions()
    if args.json:
        print(json.dumps({"actions": [action_json(a) for a in actions]}, indent=2))
        return 0
    for a in actions:
        print(f"{a.id}  {a.kind.value:<7} {a.state.value:<14} {_money(a, settings):>12}  {a.client_email:<24} "
              f"{a.policy:<12} due {_local(a.due_at, settings)}  {a.template or ''}  {a.reason}")
    print(f"{len(actions)} action(s)")
    return 0


def cmd_waive(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    ledger = Ledger(settings.storage.location, settings.storage.schema_name)
    now = _now(args.now)
    reason = f"waived by the practitioner: {args.reason}"
    with ledger.transaction():  # read under the write lock: the daemon may be changing it
        action = ledger.action(args.action_id)
        # A fee can be a charge, a hold, a hold captured for a fee, or a kept deposit (credit);
        # a deposit or prepayment (charge, hold), a rescheduling credit and its end can be waived too.
        if action is None or action.kind not in (ActionKind.CHARGE, ActionKind.HOLD, ActionKind.CAPTURE, ActionKind.CREDIT):
            print(f"no fee with id {args.action_id}; see `main.py ledger`", file=sys.stderr)
            return 1
        # The same rules as the waive mark on the event (slotguard/planning/waivers.py).
        done = waive_by_hand(ledger, action, reason, now, note=settings.mail.waiver_note)
        if not done.problem:  # the next tick rewrites the event's status note
            ledger.queue_write_back(action.calendar_id, action.event_id, now)
    if done.problem:
        print(done.problem, file=sys.stderr)
        return 1
    purpose = purpose_of(action.kind, action.context)
    if done.waiting:
        print(f"{action.id}: whether the {_money(action, settings)} was taken is not known yet (the {action.kind.value} was interrupted, "
              "or Stripe could not be asked); the waiver waits for the answer: if nothing was taken the fee is waived, "
              "money taken is refunded, a payment link is withdrawn. `main.py run` asks again every tick.")
    if done.waived and purpose in ("deposit", "prepayment"):
        print(f"{action.id}: the {purpose} of {_money(action, settings)} is not taken; the request for it is not sent.")
    elif done.waived:
        print(f"{action.id}: fee of {_money(action, settings)} waived; the client's email will not mention a fee.")
    for money in [*done.planned, *done.before]:
        if money.kind not in (ActionKind.REFUND, ActionKind.RELEASE):
            continue
        when = "planned for the next tick." if money in done.planned else "was planned before."
        target = ledger.action(str(money.context.get(TARGET) or ""))
        if money.kind is ActionKind.RELEASE:
            print(f"{action.id}: the {_money(money, settings)} hold {target.id if target else ''} is released by {money.id}, {when}")
        elif target is not None and target.context.get("payment_status") in OWED:
            print(f"{action.id}: asked for but not paid yet ({target.id}); {money.id} withdraws the request "
                  f"(nothing is refunded, the client is told there is nothing to pay), {when}")
        else:
            print(f"{action.id}: already taken; refund {money.id} of {_money(money, settings)} from {target.id if target else '?'} {when}")
    if any(a.template == "refund_notice" for a in done.planned):
        print("The client gets a refund_notice email once that is carried out.")
    if purpose == FEE:
        others = [
            other for other in ledger.actions(calendar_id=action.calendar_id, event_id=action.event_id)
            if other.id != action.id and other.amount and other.appointment_start == action.appointment_start
            and purpose_of(other.kind, other.context) == FEE and other.state in (*OPEN_STATES, ActionState.DONE)
        ]
        for other in others:
            print(f"note: {other.id} ({other.kind.value} of {_money(other, settings)}, {other.state.value}) is also a fee for this "
                  "appointment; waive it too, or add the waive mark to the event to waive them all.")
    return 0


def cmd_auth(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if args.service == "microsoft":
        from integration.microsoft_auth import run_auth as run_microsoft  # lazy: MSAL loads only for this command

        return run_microsoft(settings)
    from integration.google_auth import browser_available, run_auth  # lazy: Google's client libraries load only for this command

    return run_auth(settings, args.client_secrets or settings.calendar.client_secrets or None, port=args.port,
                    open_browser=not args.no_browser and browser_available())


def cmd_replay(args: argparse.Namespace) -> int:
    try:
        result = run_scenario(load_scenario(args.scenario))
    except ScenarioError as error:
        print(f"{args.scenario}: {error}", file=sys.stderr)
        return 2
    if args.json:
        shown = {"actions": result["actions"], "problems": result["problems"]}
        print(json.dumps(shown | ({"inbox": result["inbox"]} if result["inbox"] else {}), indent=2))
        return 0
    for record in result["actions"]:
        amount = format_money(Money(**record["amount"]), result["locale"]) if record["amount"] else ""
        print(f"{record['at']}  {record['kind']:<7} {record['state']:<14} {amount:>12}  {record['client']:<22} "
              f"{record['policy']:<11} {record['template'] or ''}  {record['reason']}")
    for row in result["inbox"]:  # what the inbox did with each message of a mail step
        print(f"{row['received_at']}  mail    {row['kind']:<14} {row['sender']:<22} {row['command']} {row['event_id'] or row['action_id']}: {row['outcome']}")
    for problem in result["problems"]:
        print(f"problem: {problem}")
    print(f"{len(result['actions'])} action(s)")
    return 0


# -- parser -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="main.py",
        description="Slotguard: fair no-show and late-cancellation fees on top of your calendar.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step (key=value lines on stderr)")
    log_format_help = "log lines as key=value text (default) or one JSON object per line"
    parser.add_argument("--log-format", choices=FORMATS, default=None, help=log_format_help)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler, help_text: str, *, now: bool = False) -> argparse.ArgumentParser:
        # "resolve": a command may give --deployment a meaning of its own (webhook-server: the whole deployment)
        sub = commands.add_parser(name, help=help_text, description=help_text, conflict_handler="resolve")
        sub.add_argument("--config", help=f"config file (default {DEFAULT_CONFIG})")
        sub.add_argument("--deployment", help="a deployment file (with --practice: one of its practices instead of --config)")
        sub.add_argument("--practice", help="the id of a practice of --deployment (its practices/ID.toml)")
        sub.add_argument("--log-format", choices=FORMATS, default=argparse.SUPPRESS, help=log_format_help)
        if now:
            sub.add_argument("--now", help="pretend the clock reads this ISO 8601 time (demos, tests)")
        sub.set_defaults(handler=handler)
        return sub

    run = add("run", cmd_run, "run the daemon (or one tick with --once)", now=True)
    run.add_argument("--once", action="store_true", help="run one tick and exit")
    run.add_argument("--metrics-listen", metavar="HOST:PORT", help="serve /metrics, /healthz and /readyz there (the daemon only)")
    add("check-config", cmd_check_config, "validate the config and render every template")
    status = add("status", cmd_status, "unknown money outcomes first, upcoming appointments, fees pending review, receivables, last sync", now=True)
    status.add_argument("--json", action="store_true")
    ledger = add("ledger", cmd_ledger, "every action with id, kind, state, client, amount, policy, reason, times")
    ledger.add_argument("--json", action="store_true")
    waive = add("waive", cmd_waive, "waive a pending fee (or refund one already charged)", now=True)
    waive.add_argument("action_id")
    waive.add_argument("--reason", required=True, help="why (kept in the ledger)")
    auth = add("auth", cmd_auth, "connect a Google account (opens a browser) or Microsoft 365 (device code); stores a 0600 token under storage.data_dir")
    auth.add_argument("service", choices=["google", "microsoft"])
    auth.add_argument("--client-secrets", help="OAuth client secrets JSON (default: calendar.client_secrets)")
    auth.add_argument("--port", type=int, default=8765, help="google: the loopback port that waits for Google's answer, fixed so an SSH tunnel can reach it (default 8765; 0: any free port)")
    auth.add_argument("--no-browser", action="store_true", help="google: print the address instead of opening a browser (the default on a server without a display or over SSH)")
    replay = commands.add_parser("replay", help="replay a scenario on a simulated clock; moves no money, sends no mail")
    replay.add_argument("scenario", help="scenario JSON file")
    replay.add_argument("--json", action="store_true")
    replay.add_argument("--log-format", choices=FORMATS, default=argparse.SUPPRESS, help=log_format_help)
    replay.set_defaults(handler=cmd_replay)
    for module_name in EXTRA_COMMANDS:
        importlib.import_module(module_name).register(add, commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.log_format or "text")
    try:
        if hasattr(args, "practice"):  # a command taking --config also takes --deployment FILE --practice ID
            args.config = select_config(args.config, args.deployment, args.practice, DEFAULT_CONFIG,
                                        whole_deployment=getattr(args, "whole_deployment", False))
        code = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handling below
        return code
    except ConfigError as error:
        where = f" in {error.source}" if error.source else ""
        print(f"Configuration problem{where}:", file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    except DurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (LedgerError, LockHeld, OutputRefused) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ENGINE_ERRORS as error:  # one the ledger's guard did not see (e.g. reading a row)
        print(f"error: {explain_engine_error(error)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        if not stdout_closed():
            raise
        # `main.py ledger | head -1`: the reader has gone; stop quietly, as a tool killed by
        # SIGPIPE would (the shell shows 141), without a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE
