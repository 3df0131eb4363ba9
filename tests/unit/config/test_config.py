import os
from pathlib import Path

import pytest

from slotguard.cli.main import load_settings
from slotguard.config.schema import ConfigError, parse_settings
from slotguard.config.types import SecretRef
from slotguard.policies.loading import load_enabled
from tests.support.builders import config, settings

ROOT = Path(__file__).resolve().parents[3]


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
        parse_settings(config(payments={"provider": "stripe", "secret_key": "sk_" + "live_123"}))
    assert "payments.secret_key" in "\n".join(error.value.problems)


# -- mail.smtp.ca_file: a private certificate authority for an office relay ----------------------


def smtp_config(**smtp):
    return config(mail={"transport": "smtp", "smtp": {"host": "relay.office.example", **smtp}})


def ca_file_problem(**smtp) -> str:
    with pytest.raises(ConfigError) as error:
        parse_settings(smtp_config(**smtp))
    [problem] = [p for p in error.value.problems if p.startswith("mail.smtp.ca_file: ")]
    return problem


def test_a_ca_file_that_is_missing_a_folder_or_unreadable_is_a_config_error_saying_what_to_do(tmp_path):
    missing = ca_file_problem(ca_file=str(tmp_path / "office-ca.pem"))
    assert f"no file {tmp_path / 'office-ca.pem'};" in missing
    assert "leave ca_file out to trust the system's certificate authorities" in missing
    folder = ca_file_problem(ca_file=str(tmp_path))
    assert f"{tmp_path} is a folder; give the PEM file in it" in folder
    (tmp_path / "notes.txt").write_text("not a folder")
    unreadable = ca_file_problem(ca_file=str(tmp_path / "notes.txt" / "ca.pem"))
    assert "cannot be read (Not a directory)" in unreadable and "check the path" in unreadable


def test_a_ca_file_that_is_not_pem_is_a_config_error_with_how_to_convert_it(tmp_path):
    for name, content in [("empty.pem", b""), ("office-ca.der", bytes(range(256))), ("notes.pem", b"ask Per for the CA\n"),
                          ("damaged.pem", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")]:
        (tmp_path / name).write_bytes(content)
        problem = ca_file_problem(ca_file=str(tmp_path / name))
        assert f"{tmp_path / name} is not a PEM file of certificates (OpenSSL: " in problem, name
        assert "openssl x509 -inform der -in FILE -out FILE.pem" in problem and "_ssl.c" not in problem


def test_ca_file_with_security_none_is_a_config_error(tmp_path):
    problem = ca_file_problem(security="none", ca_file="/etc/slotguard/office-ca.pem")
    assert 'security = "none" sends without TLS' in problem
    assert 'set mail.smtp.security to "starttls" or "tls", or remove ca_file' in problem


def test_a_relative_ca_file_is_taken_from_the_folder_slotguard_is_started_in(tmp_path, monkeypatch):
    from tests.support.smtp_server import PrivateAuthority

    PrivateAuthority(tmp_path, "office")
    monkeypatch.chdir(tmp_path)
    assert parse_settings(smtp_config(ca_file="office-ca.pem")).mail.smtp.ca_file == "office-ca.pem"
    assert parse_settings(smtp_config()).mail.smtp.ca_file == "", "default: the system's trust store"
    problem = ca_file_problem(ca_file="config/office-ca.pem")
    assert f"no file {tmp_path / 'config/office-ca.pem'} (a relative path starts from the folder Slotguard is started in)" in problem


def test_check_config_reports_a_ca_file_problem_with_the_others_and_exits_2(tmp_path, capsys):
    import logging

    from slotguard.cli.main import main

    path = tmp_path / "slotguard.toml"
    example = (ROOT / "config/example.toml").read_text()
    path.write_text(example + f'\n[mail.smtp]\nhost = "relay.office.example"\ntimeout = "soon"\nca_file = "{tmp_path}/office-ca.pem"\n')
    root, ours = logging.getLogger(), logging.getLogger("slotguard")
    handlers, root_level, our_level = root.handlers[:], root.level, ours.level
    try:
        status = main(["check-config", "--config", str(path)])
    finally:  # main() sets up logging for a whole process; give pytest its handlers back
        root.handlers[:] = handlers
        root.setLevel(root_level)
        ours.setLevel(our_level)
    err = capsys.readouterr().err
    assert status == 2
    assert f"Configuration problem in {path}:" in err
    assert f"  - mail.smtp.ca_file: no file {tmp_path}/office-ca.pem;" in err
    assert "  - mail.smtp.timeout: " in err, "every problem is reported at once"
