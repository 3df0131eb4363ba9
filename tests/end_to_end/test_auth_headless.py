"""`main.py auth google` on a server with no browser (issue 14): it prints the consent address
and how to answer from a browser elsewhere, waits on the fixed --port, and takes Google's
answer from a real HTTP request to that port (what an SSH tunnel, or the curl it suggests,
delivers). Google is the wire fake's consent and token endpoints
(tests/support/fake_google_calendar.py): PKCE, the offline grant and the refresh token are
checked there."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from integration.google_auth import SCOPE_OWNED
from tests.support.fake_google_calendar import FakeGoogleCalendar

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(120)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def practice(tmp_path):
    fake = FakeGoogleCalendar(require_auth=True).start()
    (tmp_path / "client_secret.json").write_text(json.dumps({"installed": {
        "client_id": fake.client_id, "client_secret": fake.client_secret, "auth_uri": fake.auth_uri,
        "token_uri": fake.token_uri, "redirect_uris": ["http://localhost"]}}))
    (tmp_path / "slotguard.toml").write_text(f"""
[practice]
name = "Lena Berg Massage"
email = "lena@example.com"
timezone = "Europe/Oslo"
currency = "NOK"

[calendar]
source = "google"
calendar_ids = ["primary"]
api_endpoint = "{fake.api_endpoint}"
token_uri = "{fake.token_uri}"
client_secrets = "client_secret.json"

[services]
default = {{ price = "900 NOK" }}

[storage]
data_dir = "var"
""")
    yield fake, tmp_path
    fake.stop()


class Auth:
    """`main.py auth google` running in its own process; its output is gathered as it comes."""

    def __init__(self, folder: Path, *args: str, env: dict[str, str] | None = None):
        environment = {**os.environ, "PYTHONPATH": str(ROOT), "OAUTHLIB_INSECURE_TRANSPORT": "1", **(env or {})}
        environment.pop("DISPLAY", None)
        environment.pop("WAYLAND_DISPLAY", None)
        self.process = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "auth", "google", "--config", "slotguard.toml", *args],
                                        cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
        self.out: list[str] = []
        self.reader = threading.Thread(target=lambda: self.out.extend(self.process.stdout), daemon=True)  # type: ignore[arg-type]
        self.reader.start()

    def text(self) -> str:
        return "".join(self.out)

    def wait_for(self, words: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while words not in self.text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {words!r} in the output:\n{self.text()}\n{self.process.stderr.read() if self.process.stderr else ''}")
            time.sleep(0.05)
        return self.text()

    def finish(self) -> tuple[int, str, str]:
        code = self.process.wait(timeout=60)
        self.reader.join(timeout=5)
        return code, self.text(), self.process.stderr.read() if self.process.stderr else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def consent_address(output: str) -> str:
    return next(line.strip() for line in output.splitlines() if line.strip().startswith("http") and "/o/oauth2/auth" in line)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def allow_access(address: str) -> str:
    """The practitioner allows access on the consent page: the address Google sends their
    browser to (http://localhost:PORT/?state=...&code=...), not followed."""
    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as answer:
        opener.open(address, timeout=10)
    assert answer.value.code == 302
    return answer.value.headers["Location"]


def test_on_a_server_auth_prints_the_address_and_the_tunnel_and_takes_the_code_on_its_port(practice):
    fake, folder = practice
    port = free_port()
    auth = Auth(folder, "--port", str(port), env={"SSH_CONNECTION": "203.0.113.7 52000 198.51.100.2 22"})
    try:
        output = auth.wait_for("YOU@THIS-SERVER")
        assert f"ssh -L {port}:localhost:{port} YOU@THIS-SERVER" in output
        assert f"curl 'http://localhost:{port}/" in output and "A browser was opened" not in output
        redirect = allow_access(consent_address(output))
        assert redirect.startswith(f"http://localhost:{port}/?") and "code=" in redirect

        # What the tunnel (or curl on the server) delivers: a real request to the waiting port.
        with urllib.request.urlopen(redirect.replace("localhost", "127.0.0.1"), timeout=10) as page:
            assert "Slotguard is connected" in page.read().decode()
        code, output, errors = auth.finish()
    finally:
        auth.stop()
    assert code == 0, errors
    assert "Connected. Slotguard may now read and write your events" in output
    asked = fake.auth_requests[-1]
    assert asked["redirect_uri"] == f"http://localhost:{port}/" and asked["access_type"] == "offline"
    assert asked["scope"] == SCOPE_OWNED and asked["code_challenge_method"] == "S256"
    token = folder / "var" / "google-token.json"
    assert json.loads(token.read_text())["refresh_token"].startswith("1//fake-refresh")
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert "1//fake-refresh" not in output + errors, "no token is ever printed"


def test_a_busy_port_is_named_with_what_to_do(practice):
    _, folder = practice
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        auth = Auth(folder, "--port", str(port), "--no-browser")
        try:
            code, output, errors = auth.finish()
        finally:
            auth.stop()
    assert code == 2
    assert f"Port {port} on this machine is in use" in errors and "--port" in errors
    assert not (folder / "var" / "google-token.json").exists()


def test_access_not_allowed_saves_nothing_and_says_so(practice):
    _, folder = practice
    port = free_port()
    auth = Auth(folder, "--port", str(port), "--no-browser")
    try:
        state = parse_qs(urlsplit(consent_address(auth.wait_for("YOU@THIS-SERVER"))).query)["state"][0]
        # Google's answer when the practitioner chooses Cancel, as the browser brings it back.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/?error=access_denied&state={state}", timeout=10) as page:
            page.read()
        code, _, errors = auth.finish()
    finally:
        auth.stop()
    assert code == 1 and "access was not allowed" in errors and "Nothing was saved" in errors
    assert not (folder / "var" / "google-token.json").exists()


def test_with_the_gmail_inbox_auth_asks_for_gmail_modify_and_says_what_it_allows(practice):
    fake, folder = practice
    config = folder / "slotguard.toml"
    config.write_text(config.read_text() + '\n[inbox]\nsource = "gmail"\naddress = "lena+slotguard@example.com"\n')
    port = free_port()
    auth = Auth(folder, "--port", str(port), env={"SSH_CONNECTION": "203.0.113.7 52000 198.51.100.2 22"})
    try:
        redirect = allow_access(consent_address(auth.wait_for("YOU@THIS-SERVER")))
        with urllib.request.urlopen(redirect.replace("localhost", "127.0.0.1"), timeout=10):
            pass
        code, output, errors = auth.finish()
    finally:
        auth.stop()
    assert code == 0, errors
    assert fake.auth_requests[-1]["scope"].split() == [SCOPE_OWNED, "https://www.googleapis.com/auth/gmail.modify"]
    assert "Slotguard may now read and write your events and read and label your Gmail (it opens only the mail sent to inbox.address)" in output
