"""Pseudonyms that stand for a client in the records the law makes a practice keep.

A pseudonym is random, never derived from the client's address or name: whoever reads the
ledger cannot get from an address to its pseudonym by hashing it, and a forgotten client who
books again is a new client. Both retention (money records kept past the retention period)
and `client forget` write these.
"""

from __future__ import annotations

import re
import secrets

PREFIX = "client-"
_SHAPE = re.compile(rf"^{PREFIX}[0-9a-f]{{12}}$")


def new_pseudonym() -> str:
    """A fresh pseudonym, e.g. "client-3f9a0c41d2e7" (48 random bits)."""
    return f"{PREFIX}{secrets.token_hex(6)}"


def is_pseudonym(value: str) -> bool:
    """Whether `value` is a pseudonym this module made (not a client's address or name)."""
    return bool(_SHAPE.match(value))
