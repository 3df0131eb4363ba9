"""Small builders for tests: a practice config and Google Calendar v3 events."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

from slotguard.config.schema import Settings, parse_settings

BASE_CONFIG: dict[str, Any] = {
    "practice": {
        "name": "Lena Berg Massage",
        "email": "lena@example.com",
        "timezone": "Europe/Oslo",
        "locale": "en",
        "currency": "NOK",
        "booking_link": "https://example.com/book",
        "payment_instructions": "Vipps 400 00 000",
    },
    "calendar": {"source": "memory", "marks": {"no_show": {"color": "tomato", "tags": ["#noshow"]}}},
    "services": {"default": {"price": "900 NOK", "duration": "60m", "label": "massage"}},
    # require_policy_notice is false here, explicitly (the product default is true): most tests
    # plan a fee without a booking confirmation sent first and are about something else. Tests
    # of "told before charged" say `payments={"require_policy_notice": True}`
    # (tests/unit/planning/test_fee_stands.py).
    "payments": {"provider": "record-only", "review_window": "12h", "max_single_charge": "2000 NOK", "require_policy_notice": False},
    # monthly_report is false here, explicitly (the product default is true): a tick on or after a
    # month's first working morning would add the practitioner's monthly report to the mail
    # the tests count. Its own tests (tests/unit/reports) say `mail={"monthly_report": True}`.
    "mail": {"transport": "outbox-dir", "monthly_report": False},
    "reminders": {"offsets": ["48h", "24h"]},
    "policies": {
        "enabled": ["late_cancel", "no_show"],
        "late_cancel": {"tiers": [{"within": "24h", "fee": "50%"}, {"within": "2h", "fee": "100%"}]},
        "no_show": {"fee": "100%"},
    },
}


def merge(base: dict, extra: dict) -> dict:
    result = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def config(**sections: Any) -> dict:
    return merge(BASE_CONFIG, sections)


def settings(**sections: Any) -> Settings:
    return parse_settings(config(**sections))


def event(
    event_id: str,
    start: datetime,
    *,
    minutes: int = 60,
    client: str | None = "ana@example.com",
    name: str = "Ana Silva",
    title: str = "Massage",
    description: str = "",
    color: str | None = None,
    status: str = "confirmed",
    response: str = "accepted",
    updated: datetime | None = None,
) -> dict:
    """A v3 Event resource as Google returns it (organizer = the practitioner)."""
    resource: dict[str, Any] = {
        "id": event_id,
        "status": status,
        "summary": title,
        "description": description,
        "start": {"dateTime": start.isoformat(), "timeZone": "Europe/Oslo"},
        "end": {"dateTime": (start + timedelta(minutes=minutes)).isoformat(), "timeZone": "Europe/Oslo"},
        "organizer": {"email": "lena@example.com", "self": True},
        "attendees": [{"email": "lena@example.com", "organizer": True, "self": True, "responseStatus": "accepted"}],
    }
    if client:
        resource["attendees"].append({"email": client, "displayName": name, "responseStatus": response})
    if color:
        resource["colorId"] = color
    if updated:
        resource["updated"] = updated.isoformat()
    return resource
