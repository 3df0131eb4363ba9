"""Log lines (slotguard/run/logs.py): the ids they carry, the secrets they never carry, and
--log-format wherever it is given on the command line."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from slotguard.cli.main import build_parser
from slotguard.run.logs import JsonFormatter, KeyValueFormatter, action_context, environment_secrets, practice_context


def record(message: str, *args: object, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("slotguard.engine", logging.WARNING, __file__, 1, message, args, exc_info)


def test_ids_come_from_the_context_they_were_set_in_and_go_with_it(monkeypatch):
    formatter = JsonFormatter()
    with practice_context("north"), action_context("act_1"):
        inside = json.loads(formatter.format(record("done action=%s", "act_1")))
    outside = json.loads(formatter.format(record("idle")))
    assert inside["practice"] == "north" and inside["action"] == "act_1" and inside["level"] == "warning"
    assert "practice" not in outside and "action" not in outside
    with practice_context("south"):
        assert KeyValueFormatter().format(record("tick events=1")).endswith(" tick events=1 practice=south")
        assert KeyValueFormatter().format(record("claimed practice=south")).count("practice=") == 1


def test_secrets_from_the_environment_and_known_key_shapes_are_redacted(monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", "correct-horse-battery")
    monkeypatch.setenv("SLOTGUARD_PUSH_SECRET", "pushpushpush42")
    monkeypatch.setenv("HOME_PORT", "correct")  # not a secret's name: an ordinary word stays
    for formatter in (JsonFormatter(), KeyValueFormatter()):
        line = formatter.format(record("login failed password=%s token=%s key=%s correct",
                                       "correct-horse-battery", "pushpushpush42", "sk_test_abc123XYZ"))
        assert "correct-horse-battery" not in line and "pushpushpush42" not in line and "sk_test_abc123XYZ" not in line
        message = json.loads(line)["message"] if isinstance(formatter, JsonFormatter) else line
        assert message.count("[redacted]") == 3 and message.endswith("[redacted] correct")
    try:
        raise RuntimeError("smtp said no to correct-horse-battery")
    except RuntimeError:
        entry = json.loads(JsonFormatter().format(record("mail_failed", exc_info=sys.exc_info())))
    assert "RuntimeError" in entry["error"] and "correct-horse-battery" not in entry["error"]


def test_short_values_are_not_taken_for_secrets():
    assert environment_secrets({"API_KEY": "abc", "DB_PASSWORD": " longenough ", "PATH": "/usr/bin:/bin"}) == ["longenough"]


@pytest.mark.parametrize("argv, expected", [
    (["status"], None),
    (["--log-format", "json", "status"], "json"),
    (["status", "--log-format", "json"], "json"),
    (["--log-format", "text", "replay", "x.json", "--log-format", "json"], "json"),
])
def test_log_format_is_taken_before_or_after_the_command(argv, expected):
    assert build_parser().parse_args(argv).log_format == expected
