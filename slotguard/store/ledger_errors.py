"""What the practitioner reads when SQLite fails under the ledger.

A full disk, a ledger the user may not write, a damaged file: each becomes one LedgerError
whose message says what happened to which file and what to do, instead of a traceback from
deep inside a tick. The ledger's connection is a `GuardedConnection`, so every statement it
runs fails this way. A failing statement inside `Ledger.transaction()` rolls the whole
transaction back, so nothing is left half-done.
"""

from __future__ import annotations

import sqlite3


class LedgerError(Exception):
    """The ledger cannot be used: cannot be opened, is from a newer Slotguard, or SQLite
    failed under it (disk full, read-only, damaged). The message is for the practitioner."""


def explain(error: sqlite3.Error, path: str) -> str:
    """A message for `error` raised by SQLite on the ledger at `path`."""
    name = getattr(error, "sqlite_errorname", "") or ""
    detail = str(error)
    where = f"the ledger {path}" if path and path != ":memory:" else "the ledger"
    if name == "SQLITE_FULL" or "disk is full" in detail:
        return (f"the disk holding {where} is full ({detail}); free some space, then run Slotguard again. "
                "Nothing of the interrupted step was stored: it is done again on the next run")
    if name.startswith("SQLITE_READONLY"):
        return (f"{where} cannot be written ({detail}): the user Slotguard runs as must own and be allowed to write "
                "the file and its folder (check with ls -l; chmod 600 the file and 700 its folder); nothing was changed")
    if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or name.startswith("SQLITE_CORRUPT"):
        return (f"{where} is damaged ({detail}); Slotguard changed nothing. Keep the file, and restore the ledger "
                "from a backup; do not start a new one in its place without reading docs/architecture.md#exactly-once")
    if name.startswith("SQLITE_CANTOPEN"):
        return f"{where} cannot be opened ({detail}); check storage.ledger and that its folder exists and may be written"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return f"{where} is locked by another program for longer than 5 seconds ({detail}); try again"
    if name.startswith("SQLITE_IOERR"):
        return f"reading or writing {where} failed ({detail}): check the disk; nothing of the interrupted step was stored"
    return f"{where} failed ({detail})"


class GuardedConnection(sqlite3.Connection):
    """An sqlite3 connection whose failing statements raise LedgerError (see `explain`).

    Still a real Connection (backups, pragmas), so code that needs one can take it."""

    ledger_path = ""

    def execute(self, *args, **kwargs):
        try:
            return super().execute(*args, **kwargs)
        except sqlite3.Error as error:
            raise LedgerError(explain(error, self.ledger_path)) from error
