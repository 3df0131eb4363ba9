"""Finding one client in the ledger, and their address and names in any text: what `client
export` reads and `client forget` erases.

A client is named by their email address, matched exactly but without regard to case or to
spaces around it: the ledger keeps an address as the calendar spelt it, so "Ana@Example.com"
and "ana@example.com" are one client. The match is done in Python on the distinct addresses
each table holds, never with SQL LIKE, whose `_` and `%` would match other clients.

The client's names are those the ledger has seen with that address (the action rows and the
appointment snapshots); `needles` are every spelling to look for in free text: the address,
each name, and their JSON- and HTML-escaped forms (a JSON column keeps "Bjørn" as
"Bj\\u00f8rn", an HTML page "O'Brien" as "O&#x27;Brien").
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from slotguard.config.schema import Settings
from slotguard.store.ledger import Ledger
from slotguard.store.rows import appointment_from_json

# The tables holding a `client_email` column: who a row is about.
CLIENT_TABLES = ("appointments", "happenings", "actions")
# A name shorter than this is not looked for in other rows' free text ("Al" is in "Alle").
MIN_NAME_LENGTH = 3


def address_key(address: str) -> str:
    """How two addresses are compared: without spaces around, in lower case."""
    return address.strip().lower()


@dataclass(frozen=True)
class ClientFound:
    """One client as the ledger knows them: the spellings of their address stored in it
    (empty when the ledger holds nothing about them), their names, and their locale."""

    address: str  # as asked, in lower case
    spellings: tuple[str, ...]
    names: tuple[str, ...]
    locale: str | None

    @property
    def known(self) -> bool:
        return bool(self.spellings)

    def needles(self) -> tuple[str, ...]:
        """Every text to look for: the address and the names, as written and JSON-escaped,
        longest first (a full name is replaced before a part of it)."""
        found = {self.address, *self.spellings}
        found |= {name for name in self.names if len(name) >= MIN_NAME_LENGTH}
        escaped = {json.dumps(text)[1:-1] for text in found} | {html.escape(text) for text in found}
        return tuple(sorted(found | escaped, key=lambda text: (-len(text), text)))


def placeholders(values: Iterable[Any]) -> str:
    return ",".join("?" for _ in values)


def find_client(ledger: Ledger, address: str, settings: Settings | None = None) -> ClientFound:
    """The client with `address` in `ledger` (see the module's docstring)."""
    wanted = address_key(address)
    spellings: set[str] = set()
    for table in CLIENT_TABLES:
        for row in ledger.db.execute(f"SELECT DISTINCT client_email FROM {table}"):
            if address_key(row[0]) == wanted:
                spellings.add(row[0])
    names: list[str] = []
    locale: str | None = None
    if spellings:
        chosen = sorted(spellings)
        marks = placeholders(chosen)
        for row in ledger.db.execute(f"SELECT DISTINCT client_name FROM actions WHERE client_email IN ({marks})", chosen):
            if row[0] and row[0] not in names:
                names.append(row[0])
        rows = ledger.db.execute(f"SELECT snapshot FROM appointments WHERE client_email IN ({marks}) ORDER BY start_utc", chosen)
        for row in rows:
            appointment = appointment_from_json(row["snapshot"])
            if appointment.client.name and appointment.client.name not in names:
                names.append(appointment.client.name)
            locale = appointment.locale or locale  # the latest booking's says what they read now
    if locale is None and settings is not None:
        given = {address_key(key): value for key, value in settings.mail.client_locales.items()}
        locale = given.get(wanted)
    return ClientFound(address=wanted, spellings=tuple(sorted(spellings)), names=tuple(names), locale=locale)


def summary_locale(client: ClientFound, settings: Settings) -> str:
    """The language the client's summary is written in: theirs as the ledger or the config
    knows it, else the practice's."""
    return client.locale or settings.practice.locale


def _pattern(needles: Iterable[str]) -> re.Pattern[str] | None:
    needles = [needle for needle in needles if needle]
    if not needles:
        return None
    return re.compile("|".join(re.escape(needle) for needle in needles), re.IGNORECASE)


def replacer(needles: Iterable[str], replacement: str) -> Callable[[str], str]:
    """A function giving a text with every needle (in any case) replaced by `replacement`."""
    pattern = _pattern(needles)
    if pattern is None:
        return lambda text: text
    return lambda text: pattern.sub(replacement, text)


def mentions(needles: Iterable[str]) -> Callable[[str], bool]:
    """A function telling whether a text holds any needle (in any case)."""
    pattern = _pattern(needles)
    if pattern is None:
        return lambda text: False
    return lambda text: bool(pattern.search(text))


def scrub_value(value: Any, replace: Callable[[str], str]) -> Any:
    """A JSON value with `replace` applied to every string in it, keys included."""
    if isinstance(value, str):
        return replace(value)
    if isinstance(value, list):
        return [scrub_value(item, replace) for item in value]
    if isinstance(value, dict):
        return {replace(key): scrub_value(item, replace) for key, item in value.items()}
    return value


def scrub_text(text: str, replace: Callable[[str], str]) -> str:
    """`text` with the needles replaced; a JSON object or list is read and written back (as
    the ledger writes it: compact, ASCII), so an escaped name is found too."""
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            data = json.loads(text)
        except ValueError:
            return replace(text)
        return json.dumps(scrub_value(data, replace), separators=(",", ":"))
    return replace(text)
