"""Failures the command line reports: a tick that raised, secrets kept out of what is
logged, and a standard output whose reader has gone (`main.py ledger | head -1`)."""

from __future__ import annotations

import re
import select
import sys

from slotguard.store.ledger_errors import LedgerError

_SECRET_RE = re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]+|\bwhsec_[A-Za-z0-9]+|\bBearer\s+\S+|\bya29\.[A-Za-z0-9._-]+|\b1//[A-Za-z0-9_-]{20,}", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` without anything that looks like a secret (API keys, bearer tokens), for logs."""
    return _SECRET_RE.sub("[redacted]", text)


def tick_failure(error: Exception) -> str:
    """What went wrong in a tick, in words for the practitioner."""
    if isinstance(error, LedgerError):
        return str(error)
    return f"{type(error).__name__}: {redact(str(error)) or 'no detail'}. The next run starts the tick over; if it keeps failing, run with -v and report the log"


def stdout_closed() -> bool:
    """True when standard output is a pipe whose reader has gone."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return True  # no descriptor to ask: the error came from writing it
