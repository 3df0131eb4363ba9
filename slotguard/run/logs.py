"""Log lines: key=value text (the default) or one JSON object per line, never a secret.

Text: `2026-11-26T12:00:00Z level=info logger=slotguard.engine done action=a1 kind=email ...`.
JSON (`--log-format json`, or `[logging] format = "json"` in a deployment file): one object
per line with time, level, logger, message, and `practice` and `action` when known.

The ids come from context variables: a worker sets the practice around each practice's
tick (`with practice_context(id):`), the engine sets the action around carrying one out
(`with action_context(id):`); every line logged inside, by any module, carries them. A text
line gets ` practice=ID` at its end when a practice is set and the message does not name
one already; `main.py run` sets its config file's stem (`example` for config/example.toml),
as a deployment names a practice by its file.

Secrets: every line, in both formats, goes through slotguard/run/failures.py `redact` (API
keys, bearer and Google tokens), and the values of environment variables whose names say
they hold a secret (…KEY, …SECRET, …TOKEN, …PASSWORD) are replaced by [redacted] wherever
they appear, so a secret given in the environment cannot reach a log through an error text.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime

from slotguard.run.failures import redact

FORMATS = ("text", "json")
_practice: contextvars.ContextVar[str] = contextvars.ContextVar("slotguard_practice", default="")
_action: contextvars.ContextVar[str] = contextvars.ContextVar("slotguard_action", default="")
_SECRET_NAME = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD|PASS|CREDENTIALS?)$|(KEY|SECRET|TOKEN|PASSWORD)_", re.IGNORECASE)
_MIN_SECRET_LENGTH = 6  # shorter values (a port, "true") would redact ordinary words


@contextmanager
def practice_context(practice_id: str) -> Iterator[None]:
    """Lines logged inside carry `practice_id`."""
    token = _practice.set(practice_id)
    try:
        yield
    finally:
        _practice.reset(token)


@contextmanager
def action_context(action_id: str) -> Iterator[None]:
    """Lines logged inside carry `action_id`."""
    token = _action.set(action_id)
    try:
        yield
    finally:
        _action.reset(token)


def current_practice() -> str:
    """The practice being worked on in this context, "" when none was set."""
    return _practice.get()


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of the environment variables whose names say they hold a secret, longest
    first (so a secret containing another is replaced whole)."""
    values = {value.strip() for name, value in (os.environ if environ is None else environ).items() if _SECRET_NAME.search(name) and len(value.strip()) >= _MIN_SECRET_LENGTH}
    return sorted(values, key=len, reverse=True)


class _Redacting(logging.Formatter):
    """A formatter whose output has no secret in it."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets = environment_secrets()

    def clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return redact(text)


def _stamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class KeyValueFormatter(_Redacting):
    """Structured log lines: time level logger message (message itself is key=value)."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_stamp(record)} level={record.levelname.lower()} logger={record.name} {record.getMessage()}"
        practice = _practice.get()
        if practice and "practice=" not in line:
            line += f" practice={practice}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return self.clean(line)


class JsonFormatter(_Redacting):
    """One JSON object per line: time, level, logger, message, practice and action when
    known, error (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": self.clean(record.getMessage()),
        }
        if _practice.get():
            entry["practice"] = _practice.get()
        if _action.get():
            entry["action"] = _action.get()
        if record.exc_info:
            entry["error"] = self.clean(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(verbose: bool, log_format: str = "text") -> None:
    """Log to standard error in `log_format` ("text" or "json"): warnings and errors, and
    with `verbose` every step."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("slotguard").setLevel(logging.INFO if verbose else logging.WARNING)


def use_format(log_format: str) -> None:
    """Switch the handlers set up by `setup_logging` to `log_format` (a worker, after
    reading `[logging] format` from its deployment file, when --log-format was not given)."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(JsonFormatter() if log_format == "json" else KeyValueFormatter())
