"""Any file given as a config: `main.py check-config` answers 0 (valid) or 2 (every problem
listed), never a traceback (issue 11, the hostile-input suite for configs).

Three kinds of files: the example config with keys changed to anything (wrong types, huge
numbers, weird strings, nested tables) and unknown keys added, which reaches deep into the
schema and the policies' checks; any TOML document; and any bytes."""

from __future__ import annotations

import math
import tomllib
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slotguard.cli.main import main
from tests.support.cli import ROOT

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
BASE = tomllib.loads((ROOT / "config/example.toml").read_text())
BASE["calendar"]["url"] = str(ROOT / "config/sample-week.ics")

# -- TOML out ---------------------------------------------------------------------------


def _string(text: str) -> str:
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_string(key)} = {toml_value(item)}" for key, item in value.items()) + "}"
    raise TypeError(type(value))


def toml_document(data: dict[str, Any]) -> str:
    lines = []
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"[{_string(key)}]")
            lines += [f"{_string(inner)} = {toml_value(item)}" for inner, item in value.items()]
        else:
            lines.insert(0, f"{_string(key)} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


# -- values -------------------------------------------------------------------------------

KEYS = sorted({key for section in BASE.values() if isinstance(section, dict) for key in section} | set(BASE))
INTERESTING = st.sampled_from([
    "", " ", "0s", "-1h", "99999999999999d", "3000000d", "P99999999W", "PT0S", "1e999 NOK", "-5 NOK", "900 NOK",
    "100000000000000000000000 NOK", "900 EUR", "50%", "150%", "-1%", "nan%", "Europe/Oslo", "Mars/Olympus", "../../etc/passwd",
    "\x00", "record-only", "outbox-dir", "ics", "google", "memory", "smtp", "gmail", "late_cancel", "no_show", "deposit",
    "loyal_client", "/nonexistent/folder", str(ROOT), "https://example.com/cal.ics", "#noshow", "tomato", "\u202e", "x" * 5000,
])
SCALARS = st.one_of(
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1, 65535, 65536, 2**63, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
    INTERESTING,
    st.datetimes(timezones=st.none() | st.just(UTC) | st.builds(lambda h: timezone(timedelta(hours=h)), st.integers(-12, 12))),
    st.dates(),
    st.times(),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key and list item in the example, nested ones included."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


EXTRA_PATHS = [("mail", "smtp"), ("mail", "smtp", "port"), ("mail", "templates_dir"), ("payments", "daily_cap"),
               ("calendar", "window_future"), ("calendar", "max_events"), ("reminders", "offsets", 0), ("collections", "steps")]
PATHS = _paths(BASE) + EXTRA_PATHS


def _at(data: Any, path: tuple) -> Any:
    for step in path:
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return None
    return data


NUMBERS = st.integers(0, 10**20) | st.sampled_from([0, 1, 365, 1830, 3650, 3651, 36600, 999999999, 10**12, 10**13])


def like(original: Any) -> st.SearchStrategy:
    """Values of the same kind as the example's, from sane to absurd: a duration for a
    duration, an amount or a percent for an amount, a number for a number."""
    if isinstance(original, str) and original[:1].isdigit() and original[-1:] in "smhdw":
        return st.builds(lambda n, unit: f"{n}{unit}", NUMBERS, st.sampled_from("smhdw"))
    if isinstance(original, str) and (original.endswith("%") or original[-3:].isupper()):
        return st.builds(lambda n, unit: f"{n}{unit}", NUMBERS, st.sampled_from([" NOK", " EUR", "%", " JPY", ".5 NOK"]))
    if isinstance(original, int) and not isinstance(original, bool):
        return st.integers(-(2**64), 2**64)
    if isinstance(original, list) and original:
        return st.lists(like(original[0]), max_size=3)
    return VALUES


TYPED_PATHS = [path for path in PATHS if like(_at(BASE, path)) is not VALUES]


@st.composite
def mutated_example(draw, typed: bool = False) -> dict[str, Any]:
    """The example config with one to three keys (anywhere, nested ones too) set to anything,
    and sometimes an unknown key. `typed`: durations, amounts and numbers, set to values of
    their own kind (sane to absurd), which reach past the type checks."""
    data = tomllib.loads(toml_document(BASE))  # a deep copy
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(TYPED_PATHS if typed else PATHS))
        value = draw(like(_at(BASE, path)) if typed else st.one_of(INTERESTING, SCALARS, VALUES))
        target = data
        for step in path[:-1]:
            if isinstance(target, list):
                if not (isinstance(step, int) and step < len(target) and isinstance(target[step], (dict, list))):
                    break
                target = target[step]
                continue
            if not isinstance(target.get(str(step)), (dict, list)):
                target[str(step)] = {}
            target = target[str(step)]
        else:
            if isinstance(target, dict):
                target[str(path[-1])] = value
            elif isinstance(target, list) and isinstance(path[-1], int) and path[-1] < len(target):
                target[path[-1]] = value
    section = draw(st.sampled_from(sorted(data)))
    if draw(st.booleans()) and isinstance(data[section], dict):
        data[section][draw(st.text(max_size=6))] = draw(SCALARS)
    return data


DOCUMENTS = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), VALUES, max_size=6)


def check(tmp_path: Path, content: bytes, capsys) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_bytes(content)
    code = main(["check-config", "--config", str(path)])
    err = capsys.readouterr().err
    assert code in (0, 2), err
    if code == 2:
        assert "Configuration problem" in err and "Traceback" not in err


@FUZZ
@given(data=mutated_example())
def test_the_example_with_any_keys_changed_is_valid_or_a_listed_problem(tmp_path, capsys, data):
    check(tmp_path, toml_document(data).encode("utf-8"), capsys)


@settings(FUZZ, max_examples=50)
@given(data=mutated_example(typed=True))
def test_the_example_with_absurd_durations_amounts_and_numbers_is_valid_or_a_listed_problem(tmp_path, capsys, data):
    check(tmp_path, toml_document(data).encode("utf-8"), capsys)


@settings(FUZZ, max_examples=50)
@given(data=DOCUMENTS)
def test_any_toml_document_is_valid_or_a_listed_problem(tmp_path, capsys, data):
    check(tmp_path, toml_document(data).encode("utf-8"), capsys)


@settings(FUZZ, max_examples=50)
@given(content=st.binary(max_size=200) | st.sampled_from([b"\xff\xfe[practice]", b"[" * 100_000, b"a = " + b"[" * 50_000]))
def test_any_bytes_are_a_listed_problem(tmp_path, capsys, content):
    check(tmp_path, content, capsys)


def test_the_writer_round_trips_through_tomllib():
    data = {"a": {"b": [1, "x\n\"y", {"c": float("inf")}], "d": datetime(2026, 1, 1, tzinfo=UTC)}, "e": 2**70}
    assert tomllib.loads(toml_document(data))["a"]["b"][1] == "x\n\"y"
