"""Bad configuration files are check-config errors naming the key (exit 2) or documented
warnings (exit 0), never a traceback, and one pass reports every problem in the file
(issue 11, item 21)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from slotguard.cli.main import main
from tests.support.cli import ROOT

EXAMPLE = (ROOT / "config/example.toml").read_text()


def write_config(folder: Path, *replacements: tuple[str, str], extra: str = "") -> Path:
    """The example config with each (old, new) replaced once and `extra` appended; the .ics
    feed by its absolute path, so the file is valid from any folder."""
    text = EXAMPLE.replace('url = "config/sample-week.ics"', f'url = "{ROOT / "config/sample-week.ics"}"')
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = folder / "practice.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def check_config(path: Path, capsys) -> tuple[int, str, str]:
    code = main(["check-config", "--config", str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_example_config_passes_without_warnings(tmp_path, capsys):
    code, out, err = check_config(write_config(tmp_path), capsys)
    assert code == 0, err
    assert "configuration is valid" in out and "warning" not in err


def test_a_config_that_is_not_utf8_or_a_folder_or_unreadable_is_named_and_exit_2(tmp_path, capsys):
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(EXAMPLE.replace("Lena Berg Massage", "Lena Bj\u00f8rg Massage").encode("latin-1"))
    code, _, err = check_config(latin1, capsys)
    assert code == 2 and f"{latin1}: is not UTF-8 text" in err and "save it as UTF-8" in err
    folder = tmp_path / "config.toml"
    folder.mkdir()
    code, _, err = check_config(folder, capsys)
    assert code == 2 and f"{folder}: is a folder" in err
    # Unreadable: a socket cannot be opened as a file by anyone (root included, unlike chmod 000).
    unreadable = tmp_path / "practice.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(unreadable))
        code, _, err = check_config(unreadable, capsys)
    assert code == 2 and f"{unreadable}: cannot be read" in err
    if os.geteuid() != 0:
        private = write_config(tmp_path)
        private.chmod(0)
        code, _, err = check_config(private, capsys)
        assert code == 2 and "cannot be read (Permission denied)" in err


@pytest.mark.parametrize(
    "old, new, path, words",
    [
        ('poll_interval = "2m"', 'poll_interval = "99999999999999d"', "calendar.poll_interval", "far too long"),
        ('poll_interval = "2m"', 'poll_interval = "3d"', "calendar.poll_interval", "longer than 24h"),
        ('poll_interval = "2m"', 'poll_interval = "2m"\nwindow_future = "3000000d"', "calendar.window_future", "longer than a hundred years"),
        ('poll_interval = "2m"', 'poll_interval = "2m"\nwindow_future = "3000d"', "calendar.window_future", "longer than 1830d"),
        ('offsets = ["48h", "24h"]', 'offsets = ["48h", "3000000d"]', "reminders.offsets.1", "longer than a hundred years"),
        ('offsets = ["48h", "24h"]', 'offsets = ["48h", "400d"]', "reminders.offsets.1", "longer than 365d"),
        ('review_window = "12h"', 'review_window = "3000000d"', "payments.review_window", "longer than a hundred years"),
        ('review_window = "12h"', 'review_window = "90d"', "payments.review_window", "longer than 30d"),
        ('max_single_charge = "2000 NOK"', 'max_single_charge = "100000000000000000000000 NOK"', "payments.max_single_charge", "larger than any amount"),
    ],
)
def test_absurd_durations_and_amounts_are_errors_naming_the_key(tmp_path, capsys, old, new, path, words):
    code, _, err = check_config(write_config(tmp_path, (old, new)), capsys)
    assert code == 2, err
    [line] = [line for line in err.splitlines() if path in line]
    assert words in line
    assert "Traceback" not in err


def test_an_smtp_port_out_of_range_is_an_error(tmp_path, capsys):
    smtp = '\n[mail.smtp]\nhost = "smtp.example.com"\nport = 99999999\n'
    code, _, err = check_config(write_config(tmp_path, ('transport = "outbox-dir"', 'transport = "smtp"'), extra=smtp), capsys)
    assert code == 2 and "mail.smtp.port: Input should be less than or equal to 65535" in err


def test_a_templates_dir_or_calendar_file_that_does_not_exist_is_named(tmp_path, capsys):
    feed = (f'url = "{ROOT / "config/sample-week.ics"}"', f'url = "{tmp_path / "gone.ics"}"')
    templates = ('outbox_dir = "var/outbox"', f'outbox_dir = "var/outbox"\ntemplates_dir = "{tmp_path / "my-templates"}"')
    code, _, err = check_config(write_config(tmp_path, templates), capsys)
    assert code == 2 and f"mail.templates_dir: no folder {tmp_path / 'my-templates'}" in err
    code, _, err = check_config(write_config(tmp_path, feed), capsys)
    assert code == 2 and f"calendar.url: no file {tmp_path / 'gone.ics'}" in err


def test_inverted_late_cancel_tiers_are_refused(tmp_path, capsys):
    inverted = 'tiers = [ { within = "24h", fee = "100%" }, { within = "2h", fee = "50%" } ]'
    code, _, err = check_config(write_config(tmp_path, ('tiers = [ { within = "24h", fee = "50%" }, { within = "2h", fee = "100%" } ]', inverted)), capsys)
    assert code == 2
    assert "policies.late_cancel.tiers: the 2h tier (50%) costs less than the 24h tier (100%)" in err
    # A fixed amount compares at the services' prices: 500 NOK within 2h is less than 50% of 1200 NOK.
    mixed = 'tiers = [ { within = "24h", fee = "50%" }, { within = "2h", fee = "500 NOK" } ]'
    expensive = ('default = { price = "900 NOK"', 'default = { price = "1200 NOK"')
    code, _, err = check_config(write_config(tmp_path, expensive, ('tiers = [ { within = "24h", fee = "50%" }, { within = "2h", fee = "100%" } ]', mixed)), capsys)
    assert code == 2 and "for a 1200.00 NOK session" in err
    code, _, err = check_config(write_config(tmp_path, ('tiers = [ { within = "24h", fee = "50%" }, { within = "2h", fee = "100%" } ]', mixed)), capsys)
    assert code == 0, err  # at 900 NOK (and the 500 NOK intro), 500 NOK is not less than half


def test_a_zero_review_window_is_a_warning_not_an_error(tmp_path, capsys):
    code, out, err = check_config(write_config(tmp_path, ('review_window = "12h"', 'review_window = "0s"')), capsys)
    assert code == 0 and "configuration is valid" in out
    assert "warning: payments.review_window:" in err and "no time to waive" in err


def test_one_pass_reports_the_policies_problems_beside_the_core_ones(tmp_path, capsys):
    path = write_config(
        tmp_path,
        ('timezone = "Europe/Oslo"', 'timezone = "Europe/Osl"'),
        ('[policies.no_show]\nfee = "100%"', '[policies.no_show]\nfee = "lots"'),
        ('enabled = ["late_cancel", "no_show"]', 'enabled = ["late_cancel", "no_show", "no_shows"]'),
    )
    code, _, err = check_config(path, capsys)
    assert code == 2
    assert "practice.timezone" in err
    assert "policies.no_show.fee" in err and "'lots'" in err
    assert "unknown policy 'no_shows'" in err


def test_a_policy_table_that_is_not_a_table_is_an_error(tmp_path, capsys):
    path = write_config(tmp_path, ('[policies.no_show]\nfee = "100%"', ""),
                        ('enabled = ["late_cancel", "no_show"]', 'enabled = ["late_cancel", "no_show"]\nno_show = "100%"'))
    code, _, err = check_config(path, capsys)
    assert code == 2 and "policies.no_show: must be a table of settings" in err
