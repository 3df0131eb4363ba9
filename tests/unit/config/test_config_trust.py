"""Configuration for who can cause a fee and how large (issue 11, items 1 and 3)."""

import logging
from pathlib import Path

import pytest

from slotguard.config.schema import ConfigError, parse_settings
from slotguard.domain.money import Money
from tests.support.builders import config, settings

ROOT = Path(__file__).resolve().parents[3]
STRIPE = {"provider": "stripe", "secret_key": {"env": "STRIPE_SECRET_KEY"}, "max_single_charge": None}


def _problems(**sections) -> str:
    with pytest.raises(ConfigError) as error:
        parse_settings(config(**sections))
    return "\n".join(error.value.problems)


def test_stripe_without_max_single_charge_is_a_config_error_naming_the_key():
    text = _problems(payments=STRIPE)
    assert "payments.max_single_charge: required with provider = \"stripe\"" in text
    assert parse_settings(config(payments={**STRIPE, "max_single_charge": "2000 NOK"})).payments.max_single_charge == Money(200000, "NOK")
    assert parse_settings(config(payments={"max_single_charge": None})).payments.max_single_charge is None, "record-only may do without"


def test_check_config_exits_2_when_stripe_has_no_max_single_charge(tmp_path, capsys):
    from slotguard.cli.main import main

    path = tmp_path / "slotguard.toml"
    example = (ROOT / "config/example.toml").read_text()
    assert 'provider = "record-only"' in example and 'max_single_charge = "2000 NOK"' in example
    path.write_text(
        example.replace('provider = "record-only"', 'provider = "stripe"\nsecret_key = { env = "STRIPE_SECRET_KEY" }')
        .replace('max_single_charge = "2000 NOK"', "")
    )
    root, ours = logging.getLogger(), logging.getLogger("slotguard")
    handlers, root_level, our_level = root.handlers[:], root.level, ours.level
    try:
        status = main(["check-config", "--config", str(path)])
    finally:  # main() sets up logging for a whole process; give pytest its handlers back
        root.handlers[:] = handlers
        root.setLevel(root_level)
        ours.setLevel(our_level)
    assert status == 2
    assert "  - payments.max_single_charge: required with provider = \"stripe\"" in capsys.readouterr().err


def test_the_price_ceiling_defaults_to_three_times_the_highest_service_price():
    assert settings().services.price_ceiling == Money(270000, "NOK")
    two = settings(services={"long": {"price": "1500 NOK", "duration": "90m"}})
    assert two.services.price_ceiling == Money(450000, "NOK")
    assert sorted(two.services) == ["default", "long"], "max_price is not a service"
    assert settings(services={"max_price": "1000 NOK"}).services.price_ceiling == Money(100000, "NOK")


def test_a_bad_max_price_is_reported_with_its_path():
    assert "services.max_price: 500.00 NOK is below the price of service default (900.00 NOK)" in _problems(services={"max_price": "500 NOK"})
    assert "services.max_price: 5000.00 EUR is not in the practice currency NOK" in _problems(services={"max_price": "5000 EUR"})
    assert "services.max_price" in _problems(services={"max_price": {"price": "900 NOK"}}), "max_price cannot name a service"


def test_practitioner_addresses_are_checked_and_kept_in_lower_case():
    loaded = settings(calendar={"practitioner_addresses": ["Lena.Berg@Gmail.com"]})
    assert loaded.calendar.practitioner_addresses == ["lena.berg@gmail.com"]
    assert "calendar.practitioner_addresses" in _problems(calendar={"practitioner_addresses": ["lena at gmail"]})
