"""Extra `main.py` commands for policies (see slotguard/cli/main.py, EXTRA_COMMANDS).

`register(add, commands)`: `add(name, handler, help, now=False)` adds a subcommand that takes
--config (and --now when asked) and returns its parser; `commands` is argparse's subparsers
object for commands that take no config.

- `policies [--json]`: every policy Slotguard knows (built in, and installed through the
  `slotguard.policies` entry point), its role, what it does, the emails it causes, whether
  the config enables it.
- `simulate --from DATE --to DATE [--policies a,b,c] [--json]`: replays the ledger's history
  under a policy set (default: the config's) and prints what would have been charged, waived
  and emailed, per client and in total. Moves no money, sends no mail, writes nothing; the
  ledger file is opened read-only. Exit 2 for a config problem (an unknown policy in
  --policies lists the known ones) or no ledger to read.
  `--out FILE [--force]` also writes the what-if page (slotguard/what_if/page.py): the
  config's policies simulated beside --policies over the same weeks, with charts; the file
  is 0600 (it names clients) and an existing one is replaced only with --force.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from slotguard.cli.common import config_data, day_or_time, load_settings
from slotguard.config.schema import ConfigError, parse_settings
from slotguard.mail.render import Renderer, TemplateProblem
from slotguard.policies.loading import DEFAULT_PLUGINS, available, load_enabled, plugin_manager
from slotguard.store.private_files import OutputRefused, write_out
from slotguard.what_if.page import what_if_page
from slotguard.what_if.simulate import SimulationError, copy_of_ledger, format_text, simulate, with_policies


def register(add, commands) -> None:
    policies = add("policies", cmd_policies, "list the known policies (built in and installed), their role and emails, and which are enabled")
    policies.add_argument("--json", action="store_true")
    simulate = add(
        "simulate",
        cmd_simulate,
        "what-if: replay the ledger's history under a policy set and show what would have been charged, waived and emailed (moves no money, sends nothing)",
    )
    simulate.add_argument("--from", dest="start", required=True, metavar="DATE", help="first day (YYYY-MM-DD, practice time) or an ISO 8601 time with offset")
    simulate.add_argument("--to", dest="end", required=True, metavar="DATE", help="last day, included (YYYY-MM-DD), or an ISO 8601 time with offset (excluded)")
    simulate.add_argument("--policies", help="comma-separated policies to try, in order (default: policies.enabled); their settings come from the config")
    simulate.add_argument("--json", action="store_true")
    simulate.add_argument("--out", metavar="FILE", help="also write the what-if page: the policies in use now beside --policies, with charts (HTML, readable only by you)")
    simulate.add_argument("--force", action="store_true", help="with --out: replace the file if it exists")


def cmd_policies(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    enabled = settings.policies.enabled
    found: list[dict[str, Any]] = []
    for name, (plugin, info) in sorted(available(plugin_manager()).items()):
        module = getattr(plugin, "__name__", type(plugin).__name__)
        found.append(
            {
                "name": name,
                "role": info.role,
                "summary": info.summary,
                "emails": list(info.emails),
                "source": "built in" if module in DEFAULT_PLUGINS else f"installed ({module})",
                "enabled": name in enabled,
                "position": enabled.index(name) + 1 if name in enabled else None,
            }
        )
    if args.json:
        print(json.dumps({"policies": found}, indent=2))
        return 0
    for item in found:
        mark = f"[{item['position']}]" if item["enabled"] else "[ ]"
        emails = f" Emails: {', '.join(item['emails'])}." if item["emails"] else ""
        print(f"{mark:<5}{item['name']:<28} {item['role']:<9} {item['summary']}{emails} ({item['source']})")
    print("\nEnable a policy by adding its name to policies.enabled (fee policies first, then modifiers in the order they apply);")
    print("its settings go in [policies.NAME]: see docs/policies.md.")
    return 0



def _write_page(args: argparse.Namespace, source, proposed, start: datetime, end: datetime) -> None:
    """The what-if page to `args.out`: the config's own policies simulated beside `proposed`
    (the same result when --policies is not given). Raises OutputRefused, SimulationError."""
    settings = load_settings(args.config)
    now = proposed if args.policies is None else simulate(settings, source, start, end)
    renderer = Renderer(settings.practice.locale, settings.practice.timezone, settings.mail.templates_dir or None)
    try:
        html = what_if_page(settings, renderer, now, proposed)
    except TemplateProblem as error:
        raise SimulationError(f"cannot write the what-if page: {error}") from None
    write_out(args.out, html, force=args.force, protected=[settings.storage.ledger_path])
    print(f"wrote {args.out} (readable only by you): the policies in use now beside the proposed ones; open it in a browser",
          file=sys.stderr if args.json else sys.stdout)


def cmd_simulate(args: argparse.Namespace) -> int:
    names = [name.strip() for name in args.policies.split(",") if name.strip()] if args.policies is not None else None
    raw = with_policies(config_data(args.config), names)  # a practice of a deployment: with its part
    settings = parse_settings(raw, args.config)
    try:
        policies = load_enabled(settings)
    except ConfigError as error:
        raise ConfigError(error.problems, args.config) from None
    try:
        start = day_or_time(args.start, settings.zone)
        end = day_or_time(args.end, settings.zone, end=True)
        source = copy_of_ledger(settings.storage.location, settings.storage.schema_name)
        result = simulate(settings, source, start, end, policies=policies)
        if args.out:
            _write_page(args, source, result, start, end)
    except SimulationError as error:
        print(f"simulate: {error}", file=sys.stderr)
        return 2
    except OutputRefused as error:
        print(f"simulate: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.as_json(), indent=2))
    else:
        print(format_text(result, settings))
    return 0
