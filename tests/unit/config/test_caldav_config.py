"""[calendar.caldav]: what the schema accepts and refuses, and what check-config says."""

from __future__ import annotations

import pytest

from slotguard.config.limits import file_problems
from slotguard.config.schema import ConfigError, parse_settings
from tests.support import builders

CALDAV = {"url": "https://caldav.fastmail.com/", "username": "lena@fastmail.com", "password": {"env": "SG_UNIT_CALDAV_PASSWORD"}}


def problems(**calendar) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        try:
            parse_settings(builders.config(calendar=calendar))
        except ValueError as error:  # pydantic's, as load_settings reports it
            raise ConfigError([str(error)]) from None
    return raised.value.problems


def test_a_caldav_calendar_needs_its_table():
    assert any('needs a [calendar.caldav] table' in problem for problem in problems(source="caldav"))


def test_the_password_travels_only_encrypted_and_by_reference():
    assert any("not an https:// address" in p for p in problems(source="caldav", caldav={**CALDAV, "url": "http://caldav.example.com/"}))
    assert any("password" in p for p in problems(source="caldav", caldav={**CALDAV, "password": "hunter2"}))
    loopback = parse_settings(builders.config(calendar={"source": "caldav", "caldav": {**CALDAV, "url": "http://127.0.0.1:5232/"}}))
    assert loopback.calendar.caldav.url == "http://127.0.0.1:5232/"


def test_defaults_and_categories():
    settings = parse_settings(builders.config(calendar={"source": "caldav", "caldav": {**CALDAV, "categories": {"no_show": ["Udeblevet"]}}}))
    caldav = settings.calendar.caldav
    assert caldav.categories.no_show == ["Udeblevet"] and caldav.categories.waive == ["Waive fee"]
    assert caldav.timeout.total_seconds() == 30 and caldav.calendar == ""
    assert any("unknown key" in p or "Extra" in p for p in problems(source="caldav", caldav={**CALDAV, "categorys": {}}))


def test_check_config_names_a_password_reference_that_cannot_be_read(monkeypatch):
    monkeypatch.delenv("SG_UNIT_CALDAV_PASSWORD", raising=False)
    settings = parse_settings(builders.config(calendar={"source": "caldav", "caldav": CALDAV}))
    assert file_problems(settings) == ["calendar.caldav.password: the environment variable SG_UNIT_CALDAV_PASSWORD is not set or empty"]
    monkeypatch.setenv("SG_UNIT_CALDAV_PASSWORD", "app-password-here")
    assert file_problems(settings) == []
