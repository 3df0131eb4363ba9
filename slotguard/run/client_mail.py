"""A client's command by email (cancel, confirm): the clients helper's module; a stub until it lands."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slotguard.domain.tick_report import TickReport
from slotguard.inbox.incoming import Incoming
from slotguard.mail.links import Token


def client_command(engine: Any, incoming: Incoming, token: Token, now: datetime, report: TickReport) -> str:
    """Carry out a client's verified cancel/confirm token; returns the outcome word for the log and the row."""
    return "not built"
