"""Configuration for who can cause a fee (issue 11, items 1 and 2)."""

import pytest

from slotguard.config import ConfigError, parse_settings
from tests.support.builders import config, settings


def _problems(**sections) -> str:
    with pytest.raises(ConfigError) as error:
        parse_settings(config(**sections))
    return "\n".join(error.value.problems)


def test_practitioner_addresses_are_checked_and_kept_in_lower_case():
    loaded = settings(calendar={"practitioner_addresses": ["Lena.Berg@Gmail.com"]})
    assert loaded.calendar.practitioner_addresses == ["lena.berg@gmail.com"]
    assert "calendar.practitioner_addresses" in _problems(calendar={"practitioner_addresses": ["lena at gmail"]})
