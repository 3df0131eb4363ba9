"""The contract suite's fixtures: `harness`, one per source (every tests/contract/harness_*.py
module), and `practice`, the real engine over it (tests/contract/practice.py)."""

from __future__ import annotations

import os

import pytest

from tests.contract.harness import missing, open_harness, source_names
from tests.contract.practice import Practice


@pytest.fixture(params=source_names())
def harness(request, tmp_path):
    """The source's harness over its own local server or wire fake; a source whose server
    program is missing is skipped (failed under CI=true)."""
    why = missing(request.param)
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{request.param}: {why}. Under CI=true a missing service fails the test.")
        pytest.skip(f"{request.param}: {why}")
    opened = open_harness(request.param, tmp_path)
    gap = getattr(opened, "known_gaps", {}).get(request.node.originalname)
    if gap:
        request.node.add_marker(pytest.mark.xfail(strict=True, reason=f"{request.param}: {gap}"))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def practice(harness, tmp_path):
    """A practice reading `harness`'s source: settings, ledger, engine (not yet ticked)."""
    running = Practice(harness, tmp_path)
    try:
        yield running
    finally:
        running.ledger.close()
