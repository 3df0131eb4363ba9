"""Fixtures for the Google Calendar adapter tests (all prefixed google_)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.oauth2.credentials import Credentials

from integration.google_auth import SCOPE_OWNED
from slotguard.config.schema import Settings, parse_settings
from tests.support.fake_google_calendar import FakeGoogleCalendar


@pytest.fixture
def google_fake():
    """The fake Calendar API on a free loopback port, checking Bearer tokens and scopes."""
    fake = FakeGoogleCalendar(require_auth=True).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def google_settings(tmp_path, google_fake) -> Callable[..., Settings]:
    """Build Settings pointing at the fake; keyword arguments override [calendar] keys."""

    def make(**calendar: Any) -> Settings:
        section = {"source": "google", "calendar_ids": ["primary"], "window_past": "30d",
                   "window_future": "180d", "api_endpoint": google_fake.api_endpoint, **calendar}
        return parse_settings({
            "practice": {"name": "Lena Berg Massage", "email": "lena@example.com",
                         "timezone": "Europe/Oslo", "currency": "NOK"},
            "calendar": section,
            "services": {"default": {"price": "900 NOK"}},
            "storage": {"data_dir": str(tmp_path / "data")},
        })

    return make


@pytest.fixture
def google_credentials(google_fake) -> Callable[..., Credentials]:
    """Make real google-auth user credentials whose token endpoint is the fake's."""

    def make(scopes: list[str] | None = None, expired: bool = False) -> Credentials:
        scopes = scopes or [SCOPE_OWNED]
        expiry = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=-1 if expired else 1)
        return Credentials(
            token=google_fake.issue_access_token(scopes, lifetime=-1 if expired else 3600),
            refresh_token=google_fake.issue_refresh_token(scopes),
            token_uri=google_fake.token_uri,
            client_id=google_fake.client_id,
            client_secret=google_fake.client_secret,
            scopes=scopes,
            expiry=expiry,
        )

    return make


# Stripe fixtures (localstripe behind the gap-filling proxy), all prefixed stripe_.
from tests.support.stripe_fixtures import *  # noqa: E402,F401,F403
