"""Extra `main.py` commands (see slotguard/cli/main.py, EXTRA_COMMANDS).

`register(add, commands)`: `add(name, handler, help, now=False)` adds a subcommand that takes
--config (and --now when asked) and returns its parser; `commands` is argparse's subparsers
object for commands that take no config.

Payments commands (docs/payments.md):
- `reconcile [--from DATE] [--to DATE] [--json] [--repair]`: ledger against Stripe; exit 1 on
  any mismatch; with --repair, money kept for a waived fee is planned to be given back
  (--repair takes the data folder's lock, like `run`: refused while a daemon runs).
- `webhook-server --port N`: receive Stripe webhooks (off unless started).
- `webhook-server --deployment FILE --port N`: receive Google push notifications on
  /google/push for every practice of a deployment (docs/deploy.md#8-google-push-notifications).
And `check_payments(settings)`, which `check-config` calls to try the Stripe key.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from typing import Any

from slotguard.cli.common import load_settings
from slotguard.config.deployment import load_deployment
from slotguard.config.schema import ConfigError, Settings
from slotguard.domain.durations import parse_timestamp
from slotguard.domain.interfaces import AdapterError
from slotguard.payments.recovery import repair_kept_money
from slotguard.payments.webhook_updates import applier
from slotguard.store.daemon_lock import exclusive
from slotguard.store.ledger import Ledger

DEFAULT_PERIOD = timedelta(days=30)


def register(add, commands) -> None:
    reconcile = add("reconcile", cmd_reconcile, "compare the ledger with Stripe for a period; exit 1 on any mismatch", now=True)
    reconcile.add_argument("--from", dest="start", metavar="DATE",
                           help="first day (YYYY-MM-DD, practice time zone) or ISO 8601 time; default: 30 days before --to")
    reconcile.add_argument("--to", dest="end", metavar="DATE", help="last day, included (YYYY-MM-DD) or ISO 8601 time; default: now")
    reconcile.add_argument("--json", action="store_true")
    reconcile.add_argument("--repair", action="store_true",
                           help="plan a refund (or release) for money Stripe kept for a fee the ledger waived; the next run carries it out "
                                "(takes the data folder's lock: stop the daemon first)")
    webhooks = add("webhook-server", cmd_webhook_server,
                   "receive Stripe webhooks, or with --deployment Google push notifications (optional; polling works without them)")
    webhooks.add_argument("--port", type=int, required=True, help="TCP port (0 picks a free one and prints it)")
    webhooks.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; put a TLS proxy in front)")
    webhooks.add_argument("--path", default="/stripe/webhook", help="URL path Stripe posts to (default /stripe/webhook)")
    webhooks.add_argument("--deployment", metavar="FILE",
                          help="a deployment file: receive Google push notifications on /google/push for all its practices "
                               "([push] section; --config is then not read)")
    webhooks.set_defaults(whole_deployment=True)  # --deployment alone: every practice (cli/common.py select_config)


# -- check-config ---------------------------------------------------------------------------


def check_payments(settings: Settings) -> str:
    """Try the payment settings for real: for Stripe, the key against its mode and one
    authenticated call. Returns a phrase for check-config's output ("" for record-only).
    Raises ConfigError with every problem (never quoting a secret)."""
    if settings.payments.provider != "stripe":
        return ""
    from integration.stripe_provider import open_provider  # lazy: the Stripe library loads only when Stripe is used

    problems = []
    provider = open_provider(settings, timeout_seconds=15.0, max_network_retries=1)  # ConfigError: key missing, mode mismatch
    try:
        provider.verify_connection()
    except AdapterError as error:
        problems.append(f"payments.secret_key: {error}")
    if settings.payments.webhook_secret is not None:
        try:
            settings.payments.webhook_secret.resolve()
        except ConfigError as error:
            problems += [f"payments.webhook_secret: {problem}" for problem in error.problems]
    if problems:
        raise ConfigError(problems)
    dry = " (dry run: no money moves)" if settings.payments.dry_run else ""
    return f"; Stripe accepted the {settings.payments.mode}-mode key{dry}"


# -- reconcile ----------------------------------------------------------------------------


def _bound(text: str, settings: Settings, end_of_day: bool) -> datetime:
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        try:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=settings.zone)
        except ValueError:
            raise ConfigError([f"{text!r} is not a date (YYYY-MM-DD)"]) from None
        return day + timedelta(days=1) if end_of_day else day
    return parse_timestamp(text)


def period(args: argparse.Namespace, settings: Settings) -> tuple[datetime, datetime]:
    """[start, end) from --from / --to / --now. A bare --to date includes that whole day."""
    now = parse_timestamp(args.now) if args.now else datetime.now(UTC)
    end = _bound(args.end, settings, end_of_day=True) if args.end else now
    start = _bound(args.start, settings, end_of_day=False) if args.start else end - DEFAULT_PERIOD
    if end <= start:
        raise ConfigError([f"--from ({start.isoformat()}) must be before --to ({end.isoformat()})"])
    return start, end


def cmd_reconcile(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if settings.payments.provider != "stripe":
        raise ConfigError(['payments.provider: reconcile compares the ledger with Stripe; it needs provider = "stripe"'], args.config)
    # Lazy: the Stripe library loads only for the commands that talk to Stripe.
    from integration.stripe_provider import open_provider
    from integration.stripe_reconcile import reconcile

    start, end = period(args, settings)
    # --repair resolves money and plans give-backs, as the daemon does: only the holder of the
    # data folder's lock may (slotguard/store/daemon_lock.py); refused at once, before Stripe is
    # read, while another Slotguard holds it. Comparing alone only reads: no lock.
    with exclusive(settings.storage.data_dir, settings.storage.location, settings.storage.schema_name) if args.repair else nullcontext():
        ledger = Ledger(settings.storage.location, settings.storage.schema_name)
        repairs: list[dict[str, Any]] = []
        try:
            provider = open_provider(settings)
            result = reconcile(ledger, provider, start, end)
            if args.repair:
                repairs = _repair(ledger, provider, result, parse_timestamp(args.now) if args.now else datetime.now(UTC))
        except AdapterError as error:
            print(f"could not read Stripe, nothing was compared: {error}", file=sys.stderr)
            return 2
        finally:
            ledger.close()
    if args.json:
        print(json.dumps({**result.as_json(), **({"repairs": repairs} if args.repair else {})}, indent=2))
        return 0 if result.clean else 1
    local = lambda value: value.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M")  # noqa: E731
    print(f"Ledger and Stripe ({settings.payments.mode} mode) from {local(start)} to {local(end)} ({settings.practice.timezone})")
    print(f"checked: {result.ledger_actions} ledger money action(s), {result.payment_intents} PaymentIntent(s) "
          f"and {result.refunds} refund(s) created in Stripe in the period")
    if result.clean:
        print("no mismatches: every Slotguard payment and refund is in both, with the same amount and state")
    else:
        print(f"{len(result.mismatches)} mismatch(es):")
        for m in result.mismatches:
            print(f"  {m.kind:<17} {m.action_id or '-':<24} {m.stripe_id or '-':<28} {m.client or '-'}")
            print(f"      {m.detail}")
    if result.not_from_slotguard:
        listed = ", ".join(f"{item['id']} {item['amount']}" for item in result.not_from_slotguard)
        print(f"not made by Slotguard (not compared): {listed}")
    if args.repair:
        for repair in repairs:
            print(f"repair: {repair['action_id']}: {repair['done']}")
        if repairs:
            print("The next tick of `main.py run` carries out what was planned; the client gets a refund notice.")
        elif any(m.repairable for m in result.mismatches):
            print("repair: nothing planned (the money was given back already, or the fee changed meanwhile)")
        else:
            print("repair: nothing to repair (only money kept for a waived or cancelled fee is repaired)")
    return 0 if result.clean else 1


def _repair(ledger: Any, provider: Any, result: Any, now: datetime) -> list[dict[str, Any]]:
    """`reconcile --repair`: for each repairable mismatch, what repair_kept_money planned."""
    done = []
    for mismatch in result.mismatches:
        if not mismatch.repairable:
            continue
        words, planned = repair_kept_money(ledger, provider, mismatch.action_id, now)
        if words:
            done.append({"action_id": mismatch.action_id, "done": words, "planned": [action.id for action in planned]})
    return done


# -- webhook-server ---------------------------------------------------------------------------


def cmd_webhook_server(args: argparse.Namespace) -> int:
    if args.deployment and not args.practice:  # with --practice: Stripe's webhooks for that practice
        return _serve_push(args)
    settings = load_settings(args.config)
    problems = []
    if settings.payments.provider != "stripe":
        problems.append('payments.provider: webhook-server is for Stripe; set provider = "stripe"')
    if settings.payments.webhook_secret is None:
        problems.append('payments.webhook_secret: webhook-server needs the endpoint\'s signing secret, e.g. webhook_secret = { env = "STRIPE_WEBHOOK_SECRET" }')
    if problems:
        raise ConfigError(problems, args.config)
    assert settings.payments.webhook_secret is not None  # a missing one raised ConfigError above
    secret = settings.payments.webhook_secret.resolve()
    from integration.stripe_webhooks import serve  # lazy: only this command serves HTTP

    ledger = Ledger(settings.storage.location, settings.storage.schema_name)
    try:
        server = serve(applier(ledger), secret, args.port, host=args.host, path=args.path)
    except OSError as error:
        ledger.close()
        print(f"cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
        return 1

    try:
        _serve_until_stopped(server, args.path, f"ledger {ledger.shown}")
    finally:
        ledger.close()
    return 0


def _serve_until_stopped(server: Any, path: str, serving: str) -> None:
    """Serve until SIGTERM or SIGINT, saying where."""

    def stop(signum, frame):  # shutdown() waits for serve_forever, so not from this thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.server_address[:2]
    assert isinstance(host, str)  # an AF_INET(6) socket names its host as text
    print(f"Slotguard webhook server listening on http://{host}:{port}{path} ({serving})", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    print("Slotguard webhook server stopped.")


# -- webhook-server --deployment: Google push ----------------------------------------------------


def _serve_push(args: argparse.Namespace) -> int:
    """`webhook-server --deployment FILE`: Google push notifications for every practice."""
    deployment = load_deployment(args.deployment)
    problems = []
    if not deployment.storage.url:
        problems.append("storage.url: push channels are kept in PostgreSQL; give the server's postgresql:// URL")
    if not deployment.push.enabled:
        problems.append("push.enabled: push notifications are off in this deployment; set enabled = true (with address and token_secret)")
    if problems:
        raise ConfigError(problems, args.deployment)
    assert deployment.push.token_secret is not None  # an enabled [push] without one fails validation
    try:
        secret = deployment.push.token_secret.resolve()
    except ConfigError as error:
        raise ConfigError([f"push.token_secret: {problem}" for problem in error.problems], args.deployment) from None
    # Lazy: only this command serves HTTP, and only a deployment needs PostgreSQL (psycopg).
    from integration.stripe_webhooks import PUSH_PATH, serve
    from slotguard.run.push import make_push_handler
    from slotguard.store import work_queue
    from slotguard.store.pg import connect, shown_url
    from slotguard.store.push_channels import ensure_tables

    queue_schema = deployment.workers.queue_schema

    def wake(conn: Any, practice: str, reason: str) -> None:  # the workers' queue, in the deployment's [workers] queue_schema
        work_queue.wake(conn, practice, reason, schema=queue_schema)

    url = deployment.storage.url
    with connect(url) as conn:  # LedgerError (exit 1) when the server cannot be reached
        ensure_tables(conn, queue_schema)  # beside the work queue, where the workers keep the channels

    @contextmanager
    def open_connection() -> Iterator[Any]:
        conn = connect(url)
        try:
            yield conn
        finally:
            conn.close()

    try:
        server = serve(None, "", args.port, host=args.host, push=make_push_handler(open_connection, secret, wake, queue_schema))
    except OSError as error:
        print(f"cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
        return 1
    _serve_until_stopped(server, PUSH_PATH, f"Google push for the practices of {args.deployment}, channels on {shown_url(url)}")
    return 0
