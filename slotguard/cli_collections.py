"""Commands for unpaid fees (see slotguard/cli.py, EXTRA_COMMANDS).

`register(add, commands)`: `add(name, handler, help, now=False)` adds a subcommand that takes
--config (and --now when asked) and returns its parser; `commands` is argparse's subparsers
object for commands that take no config.
"""

from __future__ import annotations


def register(add, commands) -> None:
    return None
