"""Signed command links: `mailto:` the Slotguard inbox with a command in the subject (docs/inbox.md).

A link's token names one command, one target and an expiry, and carries an HMAC-SHA256 of
them under this installation's secret (`inbox.secret_file`), so no one without the secret
can make one, and a token changed in any part (another fee, a later expiry, another command)
does not verify. The token goes in the subject in square brackets, after words the reader
understands: "Waive the fee of Ana, Tue 9 Dec [sg1-waive-3f9c...-mx1b2c-k3j5...]". Mail apps
keep the subject of a `mailto:` link as it is, and a reply or forward keeps it too (with
"Re:"/"Fwd:" before it), which is why a token is only ever used once (the inbox remembers it).

Targets:
- a practitioner's command names an action: its id without "act_" (`action_target`);
- a client's command names one appointment of one client at one time (`appointment_target`):
  a digest of calendar, event, start and the client's address, so a link is worth nothing
  after the appointment moved or to another client, and the subject shows no internal id.

Pure but for the secret: `load_secret` reads (or creates, 0600) the secret file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from slotguard.domain.untrusted import one_line
from slotguard.store.private_files import private_file, private_folder

VERSION = "sg1"
# The practitioner's commands and the clients'; the names as they appear in a token.
PRACTITIONER_COMMANDS = ("waive", "charge_now", "mark_paid", "keep")
CLIENT_COMMANDS = ("cancel", "confirm")
COMMANDS = PRACTITIONER_COMMANDS + CLIENT_COMMANDS
_IN_TOKEN = {"charge_now": "charge", "mark_paid": "paid"}  # no "_" inside a token: "-" and "_" both end a word in some mail apps
_FROM_TOKEN = {value: key for key, value in _IN_TOKEN.items()}
SIGNATURE_CHARS = 26  # 130 bits of the HMAC, base32
TOKEN_PATTERN = re.compile(r"\[(sg1-[a-z]{3,10}-[0-9a-f]{16,40}-[0-9a-z]{1,10}-[a-z2-7]{26})\]", re.IGNORECASE)
SECRET_BYTES = 32


class BadToken(ValueError):
    """A token that is not ours, changed, or expired; the message says which (for the log,
    never for the sender: a forger learns nothing from the reply, since there is none)."""


@dataclass(frozen=True, slots=True)
class Token:
    command: str
    target: str
    expires: datetime

    @property
    def key(self) -> str:
        """What the inbox remembers to use a token only once."""
        return f"{self.command}:{self.target}:{int(self.expires.timestamp())}"


def action_target(action_id: str) -> str:
    return action_id.removeprefix("act_")


def appointment_target(calendar_id: str, event_id: str, start: datetime, client_email: str) -> str:
    text = f"{calendar_id}\n{event_id}\n{int(start.timestamp())}\n{client_email.strip().lower()}"
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _b36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def _signature(secret: bytes, command: str, target: str, expires: str) -> str:
    mac = hmac.new(secret, f"{VERSION}|{command}|{target}|{expires}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode().lower()[:SIGNATURE_CHARS]


def sign(secret: bytes, command: str, target: str, expires: datetime) -> str:
    """The token for `command` on `target`, good until `expires`."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}")
    word = _IN_TOKEN.get(command, command)
    stamp = _b36(int(expires.timestamp()))
    return f"{VERSION}-{word}-{target}-{stamp}-{_signature(secret, word, target, stamp)}"


def find_token(subject: str) -> str:
    """The token in a subject ("" when there is none)."""
    found = TOKEN_PATTERN.search(subject or "")
    return found.group(1) if found else ""


def verify(secret: bytes, token: str, now: datetime) -> Token:
    """The command a token carries. Raises BadToken when it is malformed, its signature does
    not match (compared in constant time), or it expired by `now`."""
    parts = token.strip().lower().split("-")
    if len(parts) != 5 or parts[0] != VERSION:
        raise BadToken("not a Slotguard token")
    _, word, target, stamp, signature = parts
    if not hmac.compare_digest(_signature(secret, word, target, stamp), signature):
        raise BadToken("the signature does not match (changed, or not made by this installation)")
    command = _FROM_TOKEN.get(word, word)
    if command not in COMMANDS:
        raise BadToken(f"unknown command {word!r}")
    try:
        expires = datetime.fromtimestamp(int(stamp, 36), tz=UTC)
    except (ValueError, OverflowError):
        raise BadToken("the expiry cannot be read") from None
    if now >= expires:
        raise BadToken(f"expired at {expires.isoformat()}")
    return Token(command, target, expires)


def mailto(address: str, subject: str, body: str = "") -> str:
    """A `mailto:` link (RFC 6068) to `address` with the subject (and body) prefilled."""
    link = f"mailto:{quote(address, safe='@+')}?subject={quote(subject, safe='')}"
    return link + (f"&body={quote(body, safe='')}" if body else "")


SUBJECT_WORDS_LIMIT = 90  # the readable part of a link's subject: a phone shows about this much


def command_mailto(address: str, words: str, token: str, body: str = "", body_encoded: int = 900) -> str:
    """The `mailto:` link of one command: `words` (folded onto one line and cut short, so a
    client's name from a calendar cannot add a line, a header or a parameter to the link:
    everything is percent-encoded) then the token in brackets; `body` prefilled (one line),
    cut so that it takes at most `body_encoded` characters percent-encoded (Hebrew or Polish
    text takes six to nine per letter: a cut by letters would leave too much or too little).
    The words put the date first, so a cut for a long name leaves the date."""
    subject = f"{one_line(words, SUBJECT_WORDS_LIMIT)} [{token}]".strip()
    text = one_line(body, body_encoded)
    if len(quote(text, safe="")) > body_encoded:
        kept, used = [], len(quote("…", safe=""))
        for letter in text:
            used += len(quote(letter, safe=""))
            if used > body_encoded:
                break
            kept.append(letter)
        text = "".join(kept).rstrip() + "…"
    return mailto(address, subject, text)


def secret_path(settings) -> Path:
    """Where this installation's link secret is kept: inbox.secret_file, else DATA_DIR/inbox-secret."""
    return Path(settings.inbox.secret_file or Path(settings.storage.data_dir) / "inbox-secret")


# `inbox.secret_file = "memory:NAME"` (only with inbox.source = "memory": replay): a secret
# kept in this process, never in a file; `memory_secret` sets it, else it is made on first use.
MEMORY_SECRET = "memory:"
_memory_secrets: dict[str, bytes] = {}


def memory_secret(name: str, secret: bytes) -> str:
    """Keep `secret` in memory under `name`; return the `inbox.secret_file` value naming it."""
    key = name if name.startswith(MEMORY_SECRET) else MEMORY_SECRET + name
    _memory_secrets[key] = secret
    return key


def load_secret(path: str | Path) -> bytes:
    """This installation's link secret, created (0600, in a 0700 folder) on first use; a
    "memory:NAME" path is a secret held in memory (`memory_secret`), no file."""
    if str(path).startswith(MEMORY_SECRET):
        return _memory_secrets.setdefault(str(path), secrets.token_hex(SECRET_BYTES).encode())
    path = Path(path)
    private_folder(path.parent)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(SECRET_BYTES) + "\n")
    private_file(path)
    text = path.read_text().strip()
    if len(text) < 32:
        raise ValueError(f"{path}: the inbox secret is too short; delete the file to make a new one (old links stop working)")
    return text.encode()
