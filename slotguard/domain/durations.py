"""Durations as people write them in config ("90s", "2m", "24h", "3d", "1h30m") or ISO 8601
("PT15M", "P3D"), and timestamps in ISO 8601 with an offset."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SHORT_RE = re.compile(r"(\d+)\s*([smhdw])")
_ISO_RE = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$"
)


class DurationError(ValueError):
    """A duration or timestamp that cannot be read, with a message meant for the user."""


def parse_duration(text: str) -> timedelta:
    """Return the timedelta for "24h", "1h30m", "PT15M" and the like.

    Raises DurationError naming the text when it is not a duration.
    """
    if not isinstance(text, str) or not text.strip():
        raise DurationError(f"{text!r} is not a duration; write it like \"24h\" or \"30m\"")
    stripped = text.strip()
    iso = _ISO_RE.match(stripped.upper())
    if iso and stripped.upper() not in ("P", "PT"):
        parts = {key: value for key, value in iso.groupdict().items() if value}
        seconds = sum(_count(parts[key], text) * _UNITS[key] for key in parts)
        return _delta(seconds, text)
    compact = stripped.replace(" ", "").lower()
    pieces = _SHORT_RE.findall(compact)
    if not pieces or "".join(f"{n}{u}" for n, u in pieces) != compact:
        raise DurationError(
            f"{text!r} is not a duration; write it like \"24h\", \"30m\", \"3d\" or \"1h30m\""
        )
    return _delta(sum(_count(n, text) * _UNITS[u] for n, u in pieces), text)


# Far past anything a schedule needs (a century), and still far inside what datetime can add.
_MAX_SECONDS = 100 * 366 * 86400


def _count(digits: str, text: str) -> int:
    if len(digits) > 12:  # int() of thousands of digits is slow, and no duration needs them
        raise DurationError(f"{text!r} is far too long to be a duration")
    return int(digits)


def _delta(seconds: int, text: str) -> timedelta:
    """The timedelta of `seconds`; DurationError when it is longer than a century, since
    such a value is a typo that would overflow the dates it is added to."""
    if seconds > _MAX_SECONDS:
        raise DurationError(f"{text!r} is longer than a hundred years; check the number and the unit")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """Render a timedelta the way config writes it ("1d2h", "45m")."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    out = []
    # Up to three days reads better in hours ("48h"), as people write notice periods.
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)) if seconds >= 3 * 86400 else (("h", 3600), ("m", 60), ("s", 1))
    for unit, size in units:
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return sign + "".join(out)


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 timestamp that carries an offset ("Z" accepted).

    Raises DurationError when it is malformed or has no offset: a time without a zone is
    ambiguous, and a fee must never rest on an ambiguous time.
    """
    if not isinstance(text, str):
        raise DurationError(f"{text!r} is not a timestamp")
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as error:
        raise DurationError(
            f"{text!r} is not an ISO 8601 timestamp like 2026-03-02T09:00:00+01:00"
        ) from error
    if value.tzinfo is None:
        raise DurationError(f"{text!r} has no UTC offset; add one, e.g. +01:00 or Z")
    return value


@lru_cache(maxsize=4096)
def to_utc_text(value: datetime) -> str:
    """The canonical text form stored in the ledger: UTC, seconds precision, 'Z'.

    Cached: a tick formats the same few instants (its `now`, each appointment's start)
    many times over; equal instants give equal text whatever their zone.
    """
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_utc_text(text: str) -> datetime:
    """Inverse of to_utc_text.

    fromisoformat (which reads the "Z" since Python 3.11) is about 60 times faster than
    strptime, and the ledger decodes several of these per row it reads.
    """
    value = datetime.fromisoformat(text)
    if value.tzinfo is not UTC or len(text) != 20:
        raise ValueError(f"{text!r} is not a ledger timestamp like 2026-11-26T11:00:00Z")
    return value
