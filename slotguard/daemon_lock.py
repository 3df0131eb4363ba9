"""One Slotguard at a time on a data folder: the lock that `run` holds for its whole life.

Only the holder of this lock may carry out actions or put back actions left `executing`
(Engine.recover): two processes doing either on one ledger sent an in-flight email twice.
`run` (daemon or --once), `charge-now`, `retry` and `reconcile --repair` take it, or refuse at once with a message
naming the holder's pid. Commands that only read, and ledger edits guarded by the action's
expected state (`waive`, `mark-paid`), do not need it: see docs/commands.md.

The lock is an exclusive `fcntl.flock` on DATA_DIR/slotguard.lock (0600), which also holds
the holder's pid. The kernel releases it when the process ends, however it ends (a SIGKILL
included), so a stale lock file never blocks a restart.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from slotguard.private_files import private_folder

LOCK_FILE_NAME = "slotguard.lock"


class LockHeld(Exception):
    """Another Slotguard holds the data folder's lock; the message names its pid."""


class DataDirLock:
    """The exclusive lock on `data_dir`. `acquire()` raises LockHeld when another process
    holds it; `release()` (or the process ending) lets it go."""

    def __init__(self, data_dir: str | Path):
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / LOCK_FILE_NAME
        self._handle: int | None = None

    def holder(self) -> str:
        """The pid written by the current holder ("unknown" while it is being written)."""
        try:
            text = self.path.read_text(encoding="ascii", errors="replace").strip()
        except OSError:
            return "unknown"
        return text if text.isdigit() else "unknown"

    def acquire(self) -> None:
        if self._handle is not None:
            return
        try:
            private_folder(self.data_dir)
            handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise LockHeld(f"cannot use the data folder {self.data_dir} ({error.strerror}); check storage.data_dir and its permissions") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            raise LockHeld(f"another Slotguard is running on {self.data_dir} (pid {self.holder()}); stop it first") from None
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


@contextmanager
def exclusive(data_dir: str | Path) -> Iterator[DataDirLock]:
    """Hold the data folder's lock for the block; raises LockHeld at once if another
    Slotguard holds it."""
    lock = DataDirLock(data_dir)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()
