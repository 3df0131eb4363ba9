"""A practice on Microsoft 365 for tests and benches: settings pointing at the Graph wire fake
(tests/support/fake_graph.py) and a signed-in token cache, made through the real MSAL
device-code flow (integration/microsoft_auth.py run_auth)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from integration.microsoft_auth import run_auth
from slotguard.config.schema import Settings
from tests.support.builders import settings as build_settings
from tests.support.fake_graph import CLIENT_ID, USER, FakeGraph


def microsoft_settings(fake: FakeGraph, data_dir: Path, *, calendar_name: str = "", **sections: Any) -> Settings:
    """Settings of a practice whose calendar is the fake's (practice.email the fake's user)."""
    microsoft: dict[str, Any] = {"client_id": CLIENT_ID, "authority": fake.authority, "graph_endpoint": fake.graph_endpoint,
                                 "ca_file": fake.ca_file, "calendar": calendar_name}
    microsoft.update(sections.pop("microsoft", {}))
    calendar_section = {"source": "microsoft", "microsoft": microsoft, **sections.pop("calendar", {})}
    return build_settings(practice={"email": USER}, calendar=calendar_section, storage={"data_dir": str(data_dir)}, **sections)


def sign_in(settings: Settings) -> list[str]:
    """Run `auth microsoft`'s device-code sign-in against the fake; return what it printed.
    Raises AssertionError when it fails."""
    printed: list[str] = []
    status = run_auth(settings, out=printed.append)
    assert status == 0, printed
    return printed
