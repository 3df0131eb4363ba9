"""Files only the practitioner's own user may read, and `--out` files written safely.

The data folder is 0700; the ledger (and SQLite's -wal and -shm files beside it), evidence
pages, previews, digests and tokens are 0600, like the outbox's .eml files. A file or folder
that already exists with a looser mode is tightened when Slotguard opens it (group and
others lose every permission; the change is logged), so an old 0644 ledger in a 0755 var/
does not stay readable by other users.

`write_out` is how every `--out FILE` is written: it refuses an existing file unless asked to
replace it, writes a temporary file in the same folder and renames it into place, so a
crash leaves the old file or the new one, never half of one, and it never writes over the
ledger itself.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("slotguard.files")

PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600


class OutputRefused(Exception):
    """An `--out` file that is not written; the message says why and what to do."""


def _tighten(path: Path) -> None:
    """Take away every permission of group and others on `path` (0644 -> 0600, 0755 -> 0700,
    a read-only 0444 -> 0400: the owner's own bits are left as they are). A file owned by
    someone else is left as it is (chmod would fail), with a warning."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not current & 0o077:
        return
    try:
        os.chmod(path, current & ~0o077)
    except OSError as error:
        log.warning("permissions_not_tightened path=%s mode=%o error=%r", path, current, error.strerror)
        return
    log.warning("permissions_tightened path=%s from=%o to=%o", path, current, current & ~0o077)


def private_folder(path: str | Path) -> Path:
    """Create the folder `path` (and its parents) if missing; the folder itself is 0700,
    tightened if it exists with a looser mode. Returns it. Raises OSError when it cannot be
    created."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True, mode=PRIVATE_FOLDER)
    _tighten(folder)
    return folder


def private_file(path: str | Path, *companions: str) -> None:
    """Make sure the file `path` is 0600: created empty with that mode when missing, tightened
    when looser; each existing `path + suffix` in `companions` (e.g. "-wal") is tightened too."""
    file = Path(path)
    try:
        handle = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        if not file.is_file():
            return  # a folder or device by mistake: left alone (opening it fails next, with a message)
        _tighten(file)
    else:
        os.close(handle)
    for suffix in companions:
        if Path(f"{file}{suffix}").is_file():
            _tighten(Path(f"{file}{suffix}"))


def write_out(path: str | Path, data: str | bytes, *, force: bool = False, protected: Iterable[str | Path] = ()) -> Path:
    """Write `data` (text as UTF-8) to `path`, mode 0600, atomically: a temporary file in the
    same folder renamed into place. An existing `path` is refused unless `force`; `protected`
    files (the ledger and its companions) are refused even then.

    Raises OutputRefused naming the file and what to do."""
    target = Path(path)
    resolved = target.resolve()
    for guarded in protected:
        for suffix in ("", "-wal", "-shm", "-journal"):
            if resolved == Path(f"{guarded}{suffix}").resolve():
                raise OutputRefused(f"{target} is Slotguard's ledger; give --out another file name")
    if target.is_dir():
        raise OutputRefused(f"{target} is a folder; give a file name, e.g. {target / 'evidence.html'}")
    if (target.exists() or target.is_symlink()) and not force:
        raise OutputRefused(f"{target} exists; add --force to replace it, or give another file name")
    folder = target.parent
    if not folder.is_dir():
        raise OutputRefused(f"no folder {folder} to write {target.name} into; create it first")
    content = data.encode("utf-8") if isinstance(data, str) else data
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")  # 0600
    except OSError as error:
        raise OutputRefused(f"cannot write into {folder}: {error.strerror}") from None
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        if force:
            os.replace(temporary, target)
        else:
            try:
                os.link(temporary, target)  # fails if the file appeared meanwhile: never overwrites
            except FileExistsError:
                raise OutputRefused(f"{target} exists; add --force to replace it, or give another file name") from None
            except OSError:
                if target.exists():
                    raise OutputRefused(f"{target} exists; add --force to replace it, or give another file name") from None
                os.replace(temporary, target)  # a file system without hard links
    except OSError as error:
        raise OutputRefused(f"cannot write {target}: {error.strerror}") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target
