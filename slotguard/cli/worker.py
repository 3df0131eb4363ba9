"""`main.py worker --deployment FILE`: one of a deployment's workers (slotguard/run/worker.py;
see slotguard/cli/main.py, EXTRA_COMMANDS, and
docs/deploy.md#6-workers-and-the-work-queue).

- `--name NAME`: how this worker is named on the queue and in the log (default HOST-PID);
  two running workers must not share one.
- `--until-idle`: exit once no practice is due (tests, benches, a cron job).
- `--now TIME`: run on a pretend clock (with --until-idle only; refused for a practice with
  live Stripe money, as `run --now` is).
- `--queue`: print each practice's row of the work queue (when due, who holds it, failures
  in a row and the last error) and exit.
- `--check`: read every practice's file as a worker would (with the deployment's part),
  render its templates and look for its calendar file; print each practice's problems with
  its id and path, and exit 2 when any practice is broken (the others are fine to run).
SIGTERM or SIGINT: the practice being ticked is finished after its current action and
released; exit 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from datetime import datetime

from slotguard.cli.common import now_from, refuse_pretend_clock
from slotguard.config.deployment import Deployment, load_deployment
from slotguard.config.limits import file_problems
from slotguard.config.schema import ConfigError, Settings
from slotguard.domain.durations import to_utc_text
from slotguard.policies.loading import load_enabled
from slotguard.run.logs import FORMATS, use_format
from slotguard.run.ops_server import deployment_health, start_ops_server
from slotguard.run.practices import list_practices, practice_settings
from slotguard.run.wiring import make_renderer
from slotguard.run.worker import Worker, default_name
from slotguard.store import work_queue
from slotguard.store.pg import connect, is_postgres


def register(add, commands) -> None:
    text = "work on a deployment's practices beside other workers (PostgreSQL work queue); see docs/deploy.md#6-workers-and-the-work-queue"
    worker = commands.add_parser("worker", help=text, description=text)
    worker.add_argument("--deployment", required=True, help="the deployment file (config/deployment.example.toml)")
    worker.add_argument("--name", default="", help="this worker's name on the queue and in the log (default HOST-PID)")
    worker.add_argument("--until-idle", action="store_true", help="exit once no practice is due")
    worker.add_argument("--now", help="with --until-idle: pretend the clock reads this ISO 8601 time (tests, benches)")
    worker.add_argument("--queue", action="store_true", help="print the work queue (each practice's next tick, holder, failures) and exit")
    worker.add_argument("--check", action="store_true", help="check every practice's config (as check-config does, without calling Stripe) and exit")
    worker.add_argument("--log-format", choices=FORMATS, default=argparse.SUPPRESS,
                        help="log lines as key=value text or one JSON object per line (default: the deployment's [logging] format)")
    worker.set_defaults(handler=cmd_worker)


def cmd_worker(args: argparse.Namespace) -> int:
    deployment = load_deployment(args.deployment)
    if args.queue:
        return _print_queue(deployment.storage.url, deployment.workers.queue_schema)
    if args.check:
        return _check_practices(deployment)
    if args.now and not args.until_idle:
        raise ConfigError(["--now can only be used with --until-idle"])
    pretend = now_from(args.now) if args.now else None
    if args.log_format is None:  # --log-format, before or after `worker`, wins over the file
        use_format(deployment.logging.format)
    worker = Worker(deployment, args.name or default_name(), until_idle=args.until_idle)
    if pretend is not None:
        worker.clock = lambda: pretend
        worker.vet = _refuse_pretend_clock  # that practice fails (recorded, backed off); the others go on
    # /metrics, /healthz, /readyz ([metrics] listen, or $SLOTGUARD_METRICS_LISTEN; "" for none).
    health = deployment_health(deployment)
    health.on_scrape.append(worker.queue_metrics)
    worker.on_turn, worker.on_loaded = health.turn, health.loaded
    server = start_ops_server(deployment, health)

    def request_stop(signum, frame):  # finish the current practice, release it, exit 0
        logging.getLogger("slotguard.worker").warning("signal=%s worker=%s stopping after the current practice", signum, worker.name)
        worker.stop()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        code = worker.run()
    finally:
        if server is not None:
            server.stop()
    failed = f", {worker.failures} failed (see the log)" if worker.failures else ""
    print(f"Slotguard worker {worker.name} stopped cleanly: {worker.ticks} practice tick(s){failed}.")
    return code


def _check_practices(deployment: Deployment) -> int:
    """Every practice's problems, by id (what `check-config` finds, without Stripe's key
    check); 0 when none, else 2."""
    practices, problems = list_practices(deployment)
    for problem in problems:
        print(f"not a practice: {problem}")
    broken = 0
    for practice in practices:
        try:
            settings = practice_settings(deployment, practice.id)
            found = file_problems(settings)
            make_renderer(settings, load_enabled(settings))
        except ConfigError as error:
            found = error.problems
        if found:
            broken += 1
            print(f"{practice.id} ({practice.path}): {len(found)} problem(s)", *(f"  - {problem}" for problem in found), sep="\n")
        else:
            print(f"{practice.id} ({practice.path}): valid")
    print(f"{len(practices)} practice(s), {broken} with problems" + (f", {len(problems)} file(s) not a practice" if problems else ""))
    return 2 if broken or problems else 0


def _refuse_pretend_clock(settings: Settings) -> None:
    refuse_pretend_clock(settings, "worker --now")


def _print_queue(url: str, schema: str) -> int:
    if not is_postgres(url):
        raise ConfigError(['storage.url: the work queue is on a PostgreSQL server ("postgresql://user@host/db"); the deployment names none'])
    with connect(url) as conn:
        work_queue.ensure_tables(conn, schema)
        rows = work_queue.rows(conn, schema)
    for row in rows:
        held = f"held by {row['lease_owner']} until {_text(row['lease_until'])}" if row["lease_owner"] else "free"
        failing = f"  {row['consecutive_failures']} failure(s) in a row: {row['last_error']}" if row["consecutive_failures"] else ""
        woken = f"  woken: {row['wake_reason']}" if row["wake_reason"] else ""
        print(f"{row['practice']:<40} due {_text(row['due_at'])}  {held}{woken}{failing}")
    print(f"{len(rows)} practice(s)")
    sys.stdout.flush()
    return 0


def _text(moment: datetime | None) -> str:
    return to_utc_text(moment) if moment else "-"
