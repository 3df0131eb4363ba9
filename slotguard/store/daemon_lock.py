"""One Slotguard at a time on a data folder and on a ledger: the locks `run` holds for its whole life.

Only the holder of these locks may carry out actions or put back actions left `executing`
(Engine.recover): two processes doing either on one ledger sent an in-flight email twice.
`run` (daemon or --once), `charge-now`, `retry` and `reconcile --repair` take them, or refuse at once with a message
naming the holder's pid. Commands that only read, and ledger edits guarded by the action's
expected state (`waive`, `mark-paid`), do not need them: see docs/commands.md.

Two locks, taken in this order: an exclusive `fcntl.flock` on DATA_DIR/slotguard.lock, and
one on LEDGER.lock beside the ledger (both 0600, each holding the holder's pid). The second
one is what keeps two configs with different data folders but one `storage.ledger` from
running two daemons on one ledger; it is taken always, also when the ledger is inside the
data folder (a config whose data folder is elsewhere may name that same ledger). The kernel
releases a lock when the process ends, however it ends (a SIGKILL included), so a stale lock
file never blocks a restart.

A PostgreSQL ledger has no file beside it: its lock is the session advisory lock of its schema
(slotguard/store/pg_lock.py `SchemaLock`, the one workers take per practice), released by the
server when the holder's connection goes, however its process ends. The data folder's file
lock is taken first all the same. That lock can be lost under a live holder (its connection
cut): holders ask `fence_held()` before each action and stop once it is False.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from slotguard.store.backend import place
from slotguard.store.ledger_errors import LedgerError
from slotguard.store.pg_lock import SchemaLock
from slotguard.store.private_files import private_file, private_folder

LOCK_FILE_NAME = "slotguard.lock"


class LockHeld(Exception):
    """Another Slotguard holds the data folder's (or the ledger's) lock; the message names its pid."""


class FileLock:
    """An exclusive lock on the file `path`, for `what` (the folder or ledger a second
    Slotguard is told about). `acquire()` raises LockHeld when another process holds it, or
    with `unusable` when the file cannot be opened; `release()` (or the process ending)
    lets it go."""

    def __init__(self, path: str | Path, what: str, unusable: str):
        self.path = Path(path)
        self.what = what
        self.unusable = unusable  # what to say when the lock file cannot be made: "{strerror}" is filled in
        self._handle: int | None = None

    def held(self) -> bool:
        """A file lock stays held while the process holds its descriptor."""
        return self._handle is not None

    def holder(self) -> str:
        """The pid written by the current holder ("unknown" while it is being written)."""
        try:
            text = self.path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            return "unknown"
        return text if text.isdigit() else "unknown"

    def _open(self) -> int:
        return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def acquire(self) -> None:
        if self._handle is not None:
            return
        try:
            handle = self._open()
        except OSError as error:
            raise LockHeld(self.unusable.format(strerror=error.strerror)) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise LockHeld(f"another Slotguard is running on {self.what} (pid {self.holder()}); stop it first") from None
        os.ftruncate(handle, 0)
        os.write(handle, f"{os.getpid()}\n".encode("ascii"))
        self._handle = handle

    def release(self) -> None:
        if self._handle is None:
            return
        try:
            os.ftruncate(self._handle, 0)
        finally:
            os.close(self._handle)  # closing the descriptor releases the flock
            self._handle = None


class DataDirLock(FileLock):
    """The exclusive lock on `data_dir` (DATA_DIR/slotguard.lock; the folder is made 0700)."""

    def __init__(self, data_dir: str | Path):
        self.data_dir = Path(data_dir)
        super().__init__(self.data_dir / LOCK_FILE_NAME, str(self.data_dir),
                         f"cannot use the data folder {self.data_dir} ({{strerror}}); check storage.data_dir and its permissions")

    def _open(self) -> int:
        private_folder(self.data_dir)
        return super()._open()


class LedgerLock(FileLock):
    """The exclusive lock on the ledger: LEDGER.lock beside it, the same file whatever path
    leads to the ledger (relative, absolute, through a symbolic link)."""

    def __init__(self, ledger: str | Path):
        self.ledger = Path(ledger)
        resolved = self.ledger.resolve()
        path = resolved.with_name(resolved.name + ".lock")
        super().__init__(path, f"the ledger {self.ledger}",
                         f"cannot make the lock file {path} beside the ledger ({{strerror}}); check storage.ledger and its folder's permissions")

    def _open(self) -> int:
        if not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, mode=0o700)  # as the ledger itself would make it
        private_file(self.path)  # 0600, tightened if it exists looser
        return os.open(self.path, os.O_RDWR)


class LedgerSchemaLock:
    """The exclusive lock on a PostgreSQL ledger: `SchemaLock` on its schema, refusing with
    LockHeld (naming the holder's server process) as the file locks do."""

    def __init__(self, url: str, schema: str, shown: str):
        self.lock = SchemaLock(url, schema)
        self.shown = shown

    def acquire(self) -> None:
        try:
            got = self.lock.try_acquire()
        except LedgerError as error:
            raise LockHeld(f"cannot lock the ledger {self.shown}: {error}") from None
        if not got:
            raise LockHeld(f"another Slotguard is running on the ledger {self.shown} ({self.lock.holder()}); stop it first")

    def held(self) -> bool:
        """False once the lock's connection is gone (the server freed the lock)."""
        return self.lock.held()

    def release(self) -> None:
        self.lock.release()


def fence_held(locks: list[FileLock | LedgerSchemaLock]) -> bool:
    """Whether every lock `exclusive()` yielded is still held: a holder that finds it False
    stops before its next action (another Slotguard may have taken the ledger since)."""
    return all(lock.held() for lock in locks)


@contextmanager
def exclusive(data_dir: str | Path, ledger: str | Path | None = None, schema: str | None = None) -> Iterator[list[FileLock | LedgerSchemaLock]]:
    """Hold the data folder's lock, and the ledger's when `ledger` (its location: a path, or
    a postgresql:// URL with `schema`) is given, for the block; raises LockHeld at once if
    another Slotguard holds either (nothing is held then)."""
    locks: list[FileLock | LedgerSchemaLock] = [DataDirLock(data_dir)]
    if ledger is not None:
        where = place(str(ledger), schema)
        locks.append(LedgerSchemaLock(where.target, where.schema, where.shown) if where.postgres else LedgerLock(ledger))
    with ExitStack() as held:
        for lock in locks:
            lock.acquire()
            held.callback(lock.release)
        yield locks
