import os
from pathlib import Path

import pytest

from slotguard.cli import load_settings
from slotguard.config import ConfigError, SecretRef, parse_settings
from slotguard.plugins import load_enabled
from tests.support.builders import config, settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_config_is_valid_and_enables_both_policies():
    loaded = load_settings(str(ROOT / "config/example.toml"))
    names = [policy.name for policy in load_enabled(loaded)]
    assert names == ["late_cancel", "no_show"]
    assert loaded.payments.max_single_charge.minor == 200000


def test_every_problem_is_reported_at_once_with_its_path():
    broken = config(
        practice={"timezone": "Mars/Olympus", "currency": "NOK"},
        payments={"review_window": "soon", "max_single_charge": "-5 NOK"},
        mail={"transport": "pigeon"},
    )
    broken["calendar"]["colour"] = "red"
    with pytest.raises(ConfigError) as error:
        parse_settings(broken)
    text = "\n".join(error.value.problems)
    assert "practice.timezone" in text and "Mars/Olympus" in text
    assert "payments.review_window" in text and "'soon'" in text
    assert "payments.max_single_charge" in text
    assert "mail.transport" in text
    assert "calendar.colour: unknown key" in text
    assert len(error.value.problems) >= 5


def test_an_unknown_policy_name_lists_the_known_ones():
    with pytest.raises(ConfigError) as error:
        load_enabled(settings(policies={"enabled": ["late_cancel", "noshow"]}))
    assert "unknown policy 'noshow'" in error.value.problems[0]
    assert "known policies: " in error.value.problems[0]
    assert "late_cancel," in error.value.problems[0] and "no_show," in error.value.problems[0]


def test_policy_settings_are_validated_with_their_path():
    with pytest.raises(ConfigError) as error:
        load_enabled(settings(policies={"no_show": {"fee": "lots", "grace": 1}}))
    text = "\n".join(error.value.problems)
    assert "policies.no_show.fee" in text
    assert "policies.no_show.grace: unknown key" in text


def test_fixed_policy_amounts_must_be_in_the_practice_currency():
    with pytest.raises(ConfigError) as error:
        load_enabled(settings(policies={"no_show": {"fee": "50 EUR"}}))
    assert "policies.no_show.fee" in error.value.problems[0] and "NOK" in error.value.problems[0]


def test_secrets_come_from_the_environment_or_a_private_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SLOTGUARD_TEST_SECRET", "sk_test_abc")
    assert SecretRef(env="SLOTGUARD_TEST_SECRET").resolve() == "sk_test_abc"
    secret = tmp_path / "key"
    secret.write_text("sk_test_file\n")
    os.chmod(secret, 0o644)
    with pytest.raises(ConfigError) as error:
        SecretRef(file=str(secret)).resolve()
    assert "chmod 600" in error.value.problems[0] and "sk_test_file" not in str(error.value)
    os.chmod(secret, 0o600)
    assert SecretRef(file=str(secret)).resolve() == "sk_test_file"


def test_a_secret_written_into_the_config_is_refused():
    with pytest.raises(ConfigError) as error:
        parse_settings(config(payments={"provider": "stripe", "secret_key": "sk_live_123"}))
    assert "payments.secret_key" in "\n".join(error.value.problems)
