"""Asking a Slotguard process's operations endpoints (slotguard/run/ops_server.py) over HTTP."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request


def get(url: str) -> tuple[int, str]:
    """(status, body) of a GET, 4xx and 5xx included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def closed_port() -> int:
    """A loopback port nothing listens on (free for a server to take, or to fail to reach)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
