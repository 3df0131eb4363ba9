"""A real IMAP server for the tests: Dovecot (Debian's dovecot-imapd) on loopback ports.

Fixtures (registered in tests/conftest.py):

- `imap_server` (session): one Dovecot process for the whole run, started as a user process
  from a config written into a temporary folder: passwd-file logins, maildirs in that folder,
  127.0.0.1 on free ports, a certificate from a private authority made for the run
  (`ca_file`). Two listeners: `port` (plain IMAP offering STARTTLS; also usable with
  tls = "none" from loopback) and `imaps_port` (TLS from the first byte).
- `imap_mailbox` (per test): a fresh user with an empty mailbox on that server, an `ImapMailbox`:
    - `host`, `port` (STARTTLS), `imaps_port`, `username`, `password`, `ca_file`,
      `password_file` (the password in a 0600 file, for `password = { file = ... }`);
    - `imap_config(**overrides) -> dict`: an `[inbox.imap]` table for this mailbox
      (tls = "starttls" on `port` with `ca_file`; pass `tls="imaps", port=mailbox.imaps_port`
      etc. to change it); `Imap.model_validate(mailbox.imap_config())` makes the settings;
    - `deliver(raw, internaldate, folder="INBOX", flags=()) -> uid`: APPEND with an explicit
      INTERNALDATE, as a mail server delivers a message;
    - `messages(folder="INBOX") -> list[(flags, raw)]` in UID order (flags: a tuple of str such
      as "\\Seen"; read with BODY.PEEK, so reading changes nothing); `folders() -> list[str]`
      (names as the server spells them: Dovecot's separator here is ".", so
      "Done/Slotguard" is "Done.Slotguard");
    - `create(folder)`, `recreate(folder)` (delete and create again: a new UIDVALIDITY);
    - `drop_connections()`: the server closes every connection of this user (doveadm kick),
      as a restart or a network failure would.

Without Dovecot the tests that need it are skipped with a message saying how to install it
(`make test` installs it when it runs as root with apt-get), except under CI=true, where that
is a failure (as tests/support/pg.py).

When the tests run as root, Dovecot runs as its `dovecot` system user (so it never needs to
switch users: all its processes run as that one user); otherwise as the user running the tests.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient

from tests.support.smtp_server import PrivateAuthority

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"

CONFIG = """\
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = 1
mail_location = maildir:~/Maildir
mailbox_idle_check_interval = 1 secs
mail_max_userip_connections = 50
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder}/users/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {folder}/users/%u
}}
"""


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}. Under CI=true a missing service fails the test.")
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DovecotServer:
    """One Dovecot process; users are added while it runs (`add_user`)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="dovecot-"))
        self.folder.chmod(0o755)
        self.port = 0
        self.imaps_port = 0
        self.process: subprocess.Popen | None = None
        self.run_as = pwd.getpwnam("dovecot") if os.getuid() == 0 else pwd.getpwuid(os.getuid())
        authority = PrivateAuthority(self.folder, "imap")
        self.ca_file = str(authority.cert_file)
        self._certificate = authority.issue(("127.0.0.1", "localhost"))
        self._users: list[str] = []

    def start(self) -> DovecotServer:
        """Start and wait until both listeners answer (at most 20 s). Raises RuntimeError saying why not."""
        self.port, self.imaps_port = _free_port(), _free_port()
        (self.folder / "users").mkdir()  # a passwd-file per user: no reload of a shared file to wait for
        config = CONFIG.format(folder=self.folder, cert=self._certificate.cert_file, key=self._certificate.key_file,
                               user=self.run_as.pw_name, group=_group_name(self.run_as.pw_gid),
                               port=self.port, imaps_port=self.imaps_port)
        (self.folder / "dovecot.conf").write_text(config)
        for path in [self.folder, *self.folder.iterdir()]:
            os.chown(path, self.run_as.pw_uid, self.run_as.pw_gid)
        command = [DOVECOT, "-F", "-c", str(self.folder / "dovecot.conf")]
        output = open(self.folder / "dovecot.out", "wb")  # noqa: SIM115 - the child writes it until stop()
        kwargs: dict[str, Any] = {}
        if os.getuid() == 0:
            kwargs = {"user": self.run_as.pw_uid, "group": self.run_as.pw_gid, "extra_groups": []}
        self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=self.folder, **kwargs)
        deadline = time.monotonic() + 20
        waiting = [self.port, self.imaps_port]
        while waiting and time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Dovecot exited with status {self.process.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", waiting[0]), timeout=0.5):
                    waiting.pop(0)
            except OSError:
                time.sleep(0.1)
        if waiting:
            self.stop()
            raise RuntimeError("Dovecot did not listen within 20 s")
        return self

    def add_user(self) -> tuple[str, str]:
        """A new user with an empty mailbox: (username, password)."""
        username = f"user{len(self._users) + 1}-{secrets.token_hex(3)}"
        password = secrets.token_urlsafe(12)
        home = self.folder / "home" / username
        line = f"{username}:{{PLAIN}}{password}:{self.run_as.pw_uid}:{self.run_as.pw_gid}::{home}::\n"
        entry = self.folder / "users" / username
        entry.write_text(line)
        os.chown(entry, self.run_as.pw_uid, self.run_as.pw_gid)
        self._users.append(username)
        return username, password

    def kick(self, username: str) -> None:
        """Close every connection of `username` (the server says BYE and hangs up)."""
        subprocess.run([DOVEADM, "-c", str(self.folder / "dovecot.conf"), "kick", username],
                       check=False, capture_output=True, timeout=10)

    def log_tail(self) -> str:
        text = ""
        for name in ("dovecot.out", "dovecot.log"):
            try:
                text += (self.folder / name).read_text(errors="replace")[-600:]
            except OSError:
                pass
        return text

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self.folder, ignore_errors=True)


def _group_name(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name


@dataclass
class ImapMailbox:
    """One user's mailbox on the test server (see the module doc)."""

    server: DovecotServer
    username: str
    password: str
    password_file: str
    host: str = "127.0.0.1"

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def imaps_port(self) -> int:
        return self.server.imaps_port

    @property
    def ca_file(self) -> str:
        return self.server.ca_file

    def imap_config(self, **overrides: Any) -> dict[str, Any]:
        """An [inbox.imap] table for this mailbox (STARTTLS with the test CA unless overridden)."""
        return {"host": self.host, "port": self.port, "tls": "starttls", "ca_file": self.ca_file,
                "username": self.username, "password": {"file": self.password_file},
                "timeout": "10s", **overrides}

    def client(self) -> IMAPClient:
        """A new logged-in connection of this user (plain, from loopback); close it with logout()."""
        client = IMAPClient(self.host, self.port, ssl=False, timeout=10)
        client.normalise_times = False
        client.login(self.username, self.password)
        return client

    def deliver(self, raw: bytes, internaldate: datetime, folder: str = "INBOX", flags: tuple[str, ...] = ()) -> int:
        """APPEND `raw` to `folder` (created when missing) with INTERNALDATE `internaldate`
        (timezone-aware); returns its UID."""
        client = self.client()
        try:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            answer = client.append(folder, raw, flags=flags, msg_time=internaldate)
        finally:
            client.logout()
        text = answer.decode() if isinstance(answer, bytes) else str(answer)
        # "[APPENDUID <uidvalidity> <uid>] Append completed."
        return int(text.split("APPENDUID", 1)[1].split()[1].rstrip("]"))

    def messages(self, folder: str = "INBOX") -> list[tuple[tuple[str, ...], bytes]]:
        """Every message of `folder` in UID order: (flags, raw); nothing changes by reading."""
        client = self.client()
        try:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = sorted(client.search(["ALL"]))
            found = client.fetch(uids, ["FLAGS", "BODY.PEEK[]"]) if uids else {}
        finally:
            client.logout()
        return [(tuple(flag.decode() for flag in found[uid][b"FLAGS"]), found[uid][b"BODY[]"]) for uid in uids]

    def folders(self) -> list[str]:
        client = self.client()
        try:
            return [name for _flags, _delimiter, name in client.list_folders()]
        finally:
            client.logout()

    def create(self, folder: str) -> None:
        client = self.client()
        try:
            client.create_folder(folder)
        finally:
            client.logout()

    def recreate(self, folder: str) -> None:
        """Delete `folder` and create it again, empty: it gets a new UIDVALIDITY."""
        client = self.client()
        try:
            if client.folder_exists(folder):
                client.delete_folder(folder)
            client.create_folder(folder)
        finally:
            client.logout()

    def uidvalidity(self, folder: str = "INBOX") -> int:
        client = self.client()
        try:
            return int(client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])
        finally:
            client.logout()

    def drop_connections(self) -> None:
        """The server closes every connection of this user."""
        self.server.kick(self.username)


@pytest.fixture(scope="session")
def imap_server() -> Iterator[DovecotServer]:
    """The run's Dovecot server (skipped, or failed under CI=true, when there is none)."""
    if not (os.path.exists(DOVECOT) and os.path.exists(DOVEADM)):
        _unavailable(f"Dovecot is not installed ({DOVECOT}); install Debian's dovecot-imapd "
                     "(apt-get install dovecot-imapd; `make test` does it as root) to run the IMAP tests")
    try:
        server = DovecotServer().start()
    except (RuntimeError, OSError, KeyError) as error:
        _unavailable(f"Dovecot did not start: {error}")
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def imap_mailbox(imap_server: DovecotServer, tmp_path: Path) -> Iterator[ImapMailbox]:
    """A fresh user with an empty mailbox on the run's Dovecot (see the module doc)."""
    username, password = imap_server.add_user()
    secret = tmp_path / "imap-password"
    secret.write_text(password)
    secret.chmod(0o600)
    mailbox = ImapMailbox(imap_server, username, password, str(secret))
    yield mailbox
    mailbox.drop_connections()
