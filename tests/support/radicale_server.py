"""A real CalDAV server for the tests: Radicale (pinned in requirements.txt) on a loopback port.

`RadicaleServer` writes a config, a htpasswd file with one user (plain text: a test
password built at run time) and a storage folder in a temporary directory, starts
`python -m radicale` on a free 127.0.0.1 port as a child process, waits until it answers,
and stops it by its own handle. `make_calendar` creates a calendar collection (MKCALENDAR)
with a display name; `put`, `get`, `delete` change its events natively, as a practitioner's
calendar app would; `expire_sync_tokens` deletes Radicale's stored sync-token states, so a
token given out before is refused (403 DAV:valid-sync-token), as an old token is on any server.

Without Radicale (not installed, or it does not start) the tests that need it are skipped
with a message saying why, except under CI=true, where that is a failure (as tests/support/pg.py).
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

USER = "lena"
CONFIG = """\
[server]
hosts = 127.0.0.1:{port}
[auth]
type = htpasswd
htpasswd_filename = {htpasswd}
htpasswd_encryption = plain
delay = 0
[rights]
type = owner_only
[storage]
filesystem_folder = {storage}
[web]
type = none
[logging]
level = warning
mask_passwords = True
"""


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}. Under CI=true a missing service fails the test.")
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RadicaleServer:
    """One Radicale process with one user; `url` is its root (http://127.0.0.1:PORT/)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="radicale-"))
        self.password = secrets.token_urlsafe(12)
        self.user = USER
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> RadicaleServer:
        """Start and wait until Radicale answers (at most 20 s). Raises RuntimeError saying why not."""
        storage = self.folder / "collections"
        htpasswd = self.folder / "users"
        htpasswd.write_text(f"{self.user}:{self.password}\n", encoding="utf-8")
        self.port = _free_port()
        config = self.folder / "config"
        config.write_text(CONFIG.format(port=self.port, htpasswd=htpasswd, storage=storage), encoding="utf-8")
        log = open(self.folder / "radicale.log", "wb")  # noqa: SIM115 - the child writes it until stop()
        self.process = subprocess.Popen([sys.executable, "-m", "radicale", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Radicale exited with status {self.process.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("Radicale did not listen within 20 s")

    def log_tail(self) -> str:
        try:
            return (self.folder / "radicale.log").read_text(errors="replace")[-600:]
        except OSError:
            return ""

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

    # -- native changes, as a calendar app makes them ----------------------------------

    def _auth(self) -> str:
        return "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()

    def request(self, method: str, path: str, body: bytes | str | None = None, headers: dict[str, str] | None = None,
                timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
        """One request to Radicale as the user: (status, headers, body); never raises for a status."""
        data = body.encode() if isinstance(body, str) else body
        request = urllib.request.Request(self.url.rstrip("/") + path, data=data, method=method,
                                         headers={"Authorization": self._auth(), **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def make_calendar(self, name: str = "appointments", display_name: str = "Appointments") -> str:
        """Create a calendar collection of the user; returns its path (/lena/NAME/)."""
        self.request("PROPFIND", f"/{self.user}/", headers={"Depth": "0"})  # Radicale makes the principal on first use
        path = f"/{self.user}/{name}/"
        body = (
            '<?xml version="1.0" encoding="utf-8"?><C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            f"<D:set><D:prop><D:displayname>{display_name}</D:displayname></D:prop></D:set></C:mkcalendar>"
        )
        status, _, answer = self.request("MKCALENDAR", path, body, {"Content-Type": "application/xml"})
        if status != 201:
            raise RuntimeError(f"MKCALENDAR {path}: {status} {answer[:200]!r}")
        return path

    def put(self, calendar: str, uid: str, ics: str, etag: str | None = None) -> str:
        """Store `ics` as calendar object UID.ics; returns the new ETag."""
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        if etag:
            headers["If-Match"] = etag
        status, answer_headers, answer = self.request("PUT", f"{calendar}{uid}.ics", ics, headers)
        if status not in (201, 204):
            raise RuntimeError(f"PUT {uid}: {status} {answer[:300]!r}")
        return answer_headers.get("ETag", "")

    def store_directly(self, calendar: str, uid: str, ics: str) -> None:
        """Write UID.ics straight into Radicale's storage folder (for bench/: thousands of
        events without thousands of PUTs); Radicale reads it like any stored event."""
        folder = self.folder / "collections" / "collection-root" / calendar.strip("/")
        (folder / f"{uid}.ics").write_text(ics, encoding="utf-8")

    def get(self, calendar: str, uid: str) -> tuple[str, str]:
        """(iCalendar text, ETag) of calendar object UID.ics."""
        status, headers, answer = self.request("GET", f"{calendar}{uid}.ics")
        if status != 200:
            raise RuntimeError(f"GET {uid}: {status}")
        return answer.decode("utf-8"), headers.get("ETag", "")

    def delete(self, calendar: str, uid: str) -> None:
        status, _, answer = self.request("DELETE", f"{calendar}{uid}.ics")
        if status not in (200, 204):
            raise RuntimeError(f"DELETE {uid}: {status} {answer[:200]!r}")

    def expire_sync_tokens(self) -> int:
        """Delete every stored sync-token state: tokens given out before are then refused.
        Returns how many were deleted."""
        deleted = 0
        for folder in self.folder.rglob("sync-token"):
            if folder.is_dir():
                for token in folder.iterdir():
                    token.unlink()
                    deleted += 1
        return deleted


def start_radicale() -> RadicaleServer:
    """A started Radicale, or a skip (a failure under CI=true) saying why there is none."""
    try:
        import radicale  # noqa: F401
    except ImportError:
        _unavailable("Radicale is not installed (pip install radicale==3.9.0, as in requirements.txt)")
    server = RadicaleServer()
    try:
        return server.start()
    except (RuntimeError, OSError) as error:
        server.stop()
        _unavailable(f"Radicale could not start: {error}")
        raise  # not reached


@pytest.fixture(scope="module")
def radicale() -> Iterator[RadicaleServer]:
    """One Radicale for a test module, stopped after it."""
    server = start_radicale()
    try:
        yield server
    finally:
        server.stop()


def event(uid: str, start: str, end: str, summary: str = "Massage", *, extra: str = "", attendees: tuple[str, ...] = (),
          organizer: str = "lena@example.com", description: str = "", categories: str = "") -> str:
    """A VCALENDAR with one VEVENT (times like 20261207T100000Z), CRLF line ends.
    `attendees`: lines' values like "mailto:ana@example.com" or with parameters
    ("PARTSTAT=DECLINED;CN=Ana:mailto:ana@example.com")."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Slotguard tests//EN", "BEGIN:VEVENT", f"UID:{uid}",
             "DTSTAMP:20261201T000000Z", f"DTSTART:{start}", f"DTEND:{end}", f"SUMMARY:{summary}"]
    if description:
        lines.append(f"DESCRIPTION:{description}")
    if categories:
        lines.append(f"CATEGORIES:{categories}")
    if attendees:
        lines.append(f"ORGANIZER:mailto:{organizer}")
        for attendee in attendees:
            lines.append(f"ATTENDEE;{attendee}" if ":mailto:" in attendee and not attendee.startswith("mailto:") else f"ATTENDEE:{attendee}")
    if extra:
        lines += extra.strip().splitlines()
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"
