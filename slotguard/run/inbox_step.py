"""The tick's inbox step: read the mailbox of commands by email (docs/inbox.md).

Placeholder until the inbox lands: with no inbox configured (engine.inbox None), nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slotguard.domain.tick_report import TickReport


def read_inbox(engine: Any, now: datetime, report: TickReport) -> None:
    """Read new mail from `engine.inbox` and act on what it asks (nothing when None)."""
    if engine.inbox is None:
        return
