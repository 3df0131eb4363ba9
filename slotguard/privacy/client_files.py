"""The files Slotguard wrote that may name a client: read for `client export`, cleaned by
`client forget`.

Slotguard writes under `storage.data_dir` (the SQLite ledger and its -wal/-shm files, the
lock files, the Google token, and whatever the practitioner saved there with `--out`:
evidence packs, previews, exports) and into the outbox folder of the `outbox-dir` transport
(`mail.outbox_dir`: one ACTION_ID.eml per message sent). Both are searched, every file in
every subfolder; the ledger itself is left to slotguard/privacy/client_forget.py.

- A message to or from the client (their address in From, To, Cc, Bcc or Reply-To) is
  deleted: it is theirs alone.
- A message to someone else that names them (the practitioner's daily digest lists several
  clients) is rewritten with their address and names replaced by the pseudonym in every
  header and every text part (plain, HTML, calendar), the rest of it unchanged.
- Any other text file naming them is rewritten the same way; a file that is not text (not
  UTF-8) is not read and is reported, so the practitioner can look at it.
Rewritten files keep mode 0600 and are replaced atomically (a temporary file renamed).
"""

from __future__ import annotations

import email
import email.policy
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import getaddresses
from pathlib import Path

from slotguard.config.schema import Settings
from slotguard.privacy.client_records import ClientFound, address_key, mentions, replacer

ADDRESS_HEADERS = ("From", "To", "Cc", "Bcc", "Reply-To", "Sender")
LEDGER_SUFFIXES = ("", "-wal", "-shm", "-journal")


@dataclass
class FilesDone:
    """What cleaning the files did (or, with `dry_run`, would do)."""

    deleted: list[Path] = field(default_factory=list)
    rewritten: list[Path] = field(default_factory=list)
    not_read: list[Path] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"files_deleted": len(self.deleted), "files_rewritten": len(self.rewritten)}


def folders(settings: Settings) -> list[Path]:
    """The data folder, and the outbox folder when it is elsewhere."""
    found = [Path(settings.storage.data_dir)]
    outbox = Path(settings.mail.outbox_dir)
    if outbox.exists() and not any(_inside(outbox, folder) for folder in found):
        found.append(outbox)
    return [folder for folder in found if folder.is_dir()]


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def files(settings: Settings) -> Iterator[Path]:
    """Every regular file under the folders, but the SQLite ledger and its companions."""
    ledger = Path(settings.storage.location).resolve() if not settings.storage.location.startswith("postgres") else None
    skipped = {Path(f"{ledger}{suffix}") for suffix in LEDGER_SUFFIXES} if ledger else set()
    for folder in folders(settings):
        for root, _dirs, names in os.walk(folder):
            for name in sorted(names):
                path = Path(root) / name
                if path.is_file() and not path.is_symlink() and path.resolve() not in skipped:
                    yield path


def read_message(path: Path) -> EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def is_theirs(message: EmailMessage, client: ClientFound) -> bool:
    """True for a message to or from the client."""
    wanted = {client.address, *(address_key(spelling) for spelling in client.spellings)}
    values = [str(value) for header in ADDRESS_HEADERS for value in message.get_all(header, [])]
    return any(address_key(address) in wanted for _name, address in getaddresses(values))


def _text_parts(message: EmailMessage) -> Iterator[EmailMessage]:
    for part in message.walk():
        if not part.is_multipart() and part.get_content_maintype() == "text":
            yield part


def message_mentions(message: EmailMessage, named: Callable[[str], bool]) -> bool:
    if any(named(str(value)) for _header, value in message.items()):
        return True
    return any(named(part.get_content()) for part in _text_parts(message))


def rewrite_message(message: EmailMessage, replace: Callable[[str], str]) -> bytes:
    """The message with every header and text part passed through `replace`."""
    for header, value in list(message.items()):
        text = str(value)
        if replace(text) != text and header not in ADDRESS_HEADERS:
            message.replace_header(header, replace(text))
    for part in _text_parts(message):
        text = part.get_content()
        cleaned = replace(text)
        if cleaned != text:
            disposition = part.get_content_disposition()
            filename = part.get_filename()
            params = {key: value for key, value in part.get_params() or [] if key not in ("charset",) and key != part.get_content_type()}
            part.set_content(cleaned, subtype=part.get_content_subtype(), disposition=disposition, filename=filename, params=params)
    return message.as_bytes(policy=SMTP)


def _write_private(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)  # 0600
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def clean_files(settings: Settings, client: ClientFound, pseudonym: str, *, dry_run: bool = False) -> FilesDone:
    """Delete the client's messages and take their address and names out of every other
    file (see the module's docstring). With `dry_run`, only say what would be done."""
    done = FilesDone()
    named = mentions(client.needles())
    replace = replacer(client.needles(), pseudonym)
    for path in files(settings):
        if path.suffix == ".eml":
            message = read_message(path)
            if is_theirs(message, client):
                done.deleted.append(path)
                if not dry_run:
                    path.unlink()
            elif message_mentions(message, named):
                done.rewritten.append(path)
                if not dry_run:
                    _write_private(path, rewrite_message(message, replace))
            continue
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            done.not_read.append(path)
            continue
        if named(text):
            done.rewritten.append(path)
            if not dry_run:
                _write_private(path, replace(text).encode("utf-8"))
    return done


def sent_messages(settings: Settings, client: ClientFound) -> dict[str, EmailMessage]:
    """The outbox's messages to the client, by action id (the file's name)."""
    outbox = Path(settings.mail.outbox_dir)
    if not outbox.is_dir():
        return {}
    found = {}
    for path in sorted(outbox.glob("*.eml")):
        message = read_message(path)
        if is_theirs(message, client):
            found[path.stem] = message
    return found
