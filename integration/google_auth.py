"""Google OAuth for Slotguard: connect once with `python main.py auth google`, then refresh
silently.

Which scope each feature needs (least privilege):

| feature                                        | scope                                   |
| ---------------------------------------------- | --------------------------------------- |
| reading events (full and incremental sync)     | calendar.events.readonly or .owned      |
| write-back: status keys in extendedProperties  | calendar.events.owned                   |
| write-back: the "Slotguard:" description line  | calendar.events.owned                   |
| event colour palette (colors.get, optional)    | calendar.events.owned (not .readonly)   |
| sending mail (`mail.transport = "gmail"`)      | gmail.send                              |
| reading the inbox (`inbox.source = "gmail"`)   | gmail.modify                            |

With `calendar.write_back = true` (the default) Slotguard asks for
`https://www.googleapis.com/auth/calendar.events.owned`: see, change and create events on
calendars the practitioner owns, and nothing on calendars merely shared with them. With
`write_back = false` it asks for `https://www.googleapis.com/auth/calendar.events.readonly`
and never writes. Neither grants access to settings, sharing (ACLs) or other Google data.
Switching write-back on later needs the auth command again (Slotguard says so).
With `mail.transport = "gmail"` it also asks for `https://www.googleapis.com/auth/gmail.send`
(send only: no reading, no drafts, no settings); the calendar scope is then asked for only
when `calendar.source = "google"`.
With `inbox.source = "gmail"` it also asks for `https://www.googleapis.com/auth/gmail.modify`:
read the messages sent to the inbox address, label them, mark them read and take them out of
the inbox (integration/gmail_inbox.py); no deleting, no settings.

On a server without a browser, `auth google --port N` prints the consent address and how to
answer it from a browser elsewhere: an SSH tunnel to port N (`ssh -L N:localhost:N server`),
or the address Google redirects to handed over with curl (`waiting_message`).

The token lives in `<storage.data_dir>/google-token.json`, mode 0600, replaced atomically.
It holds the refresh token and the OAuth client secret: treat it like a password. Nothing
in this module logs a token or a secret.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import sys
import tempfile
import webbrowser
from pathlib import Path
from typing import Any

from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials

from slotguard.domain.interfaces import AdapterError, ReauthorizationNeeded

SCOPE_OWNED = "https://www.googleapis.com/auth/calendar.events.owned"
SCOPE_READONLY = "https://www.googleapis.com/auth/calendar.events.readonly"
SCOPE_GMAIL_SEND = "https://www.googleapis.com/auth/gmail.send"
SCOPE_GMAIL_MODIFY = "https://www.googleapis.com/auth/gmail.modify"
TOKEN_FILE_NAME = "google-token.json"
AUTH_COMMAND = "python main.py auth google"

log = logging.getLogger("slotguard.google")


def scopes_for(settings: Any) -> list[str]:
    """The scopes Slotguard asks for: events.owned with write-back, events.readonly without,
    gmail.send with `mail.transport = "gmail"` and gmail.modify with `inbox.source = "gmail"`
    (with either, no calendar scope unless the calendar source is Google)."""
    calendar = [SCOPE_OWNED] if settings.calendar.write_back else [SCOPE_READONLY]
    gmail = [SCOPE_GMAIL_SEND] if settings.mail.transport == "gmail" else []
    if getattr(getattr(settings, "inbox", None), "source", "none") == "gmail":
        gmail.append(SCOPE_GMAIL_MODIFY)
    if not gmail:
        return calendar
    return (calendar if settings.calendar.source == "google" else []) + gmail


def token_path(settings: Any) -> Path:
    """Where the OAuth token is kept: `<storage.data_dir>/google-token.json`."""
    return Path(settings.storage.data_dir) / TOKEN_FILE_NAME


def reauthorize_message(what: str, service: str = "Google Calendar") -> str:
    """A user-facing sentence: what happened, then the command that fixes it."""
    return f"{what}. Run `{AUTH_COMMAND}` to connect Slotguard to {service} again."


def save_credentials(credentials: Credentials, path: Path) -> None:
    """Write `credentials` to `path` atomically with mode 0600 (directory 0700 if created).

    A crash leaves either the old file or the new one, never half of one, and the token is
    never readable by others, not even for a moment. Raises OSError when the disk refuses.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle, temporary = tempfile.mkstemp(prefix=".google-token-", dir=path.parent)  # mkstemp creates 0600
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(credentials.to_json())
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_credentials(settings: Any, path: Path | None = None, token_uri: str | None = None) -> Credentials:
    """Read the stored token for `settings` (or from `path`).

    Returns Credentials that google-auth refreshes on its own when the access token expires.
    google-auth always refreshes at Google's token endpoint, whatever the file says, so a
    tampered file cannot send the refresh token elsewhere; `token_uri` overrides that
    explicitly (tests). Raises ReauthorizationNeeded when there is no usable token, or when
    it was granted read-only and write-back is on. Tightens a file readable by others to 0600.
    """
    path = Path(path or token_path(settings))
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ReauthorizationNeeded(reauthorize_message(f"Google Calendar is not connected yet (no {path})")) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        os.chmod(path, 0o600)
        log.warning("google_token_permissions_tightened path=%s mode=0600", path)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        credentials = Credentials.from_authorized_user_info(info)
        if token_uri:
            expiry = credentials.expiry
            credentials = credentials.with_token_uri(token_uri)
            credentials.expiry = expiry  # the copy forgets it, and would then never refresh ahead of time
    except (ValueError, KeyError) as error:
        raise ReauthorizationNeeded(reauthorize_message(f"The Google token file {path} is unreadable ({type(error).__name__})")) from None
    granted = set(credentials.granted_scopes or credentials.scopes or [])
    if SCOPE_OWNED in scopes_for(settings) and SCOPE_OWNED not in granted:
        raise ReauthorizationNeeded(reauthorize_message(
            "Slotguard was connected read-only, but calendar.write_back is on and needs permission to edit your events"
        ))
    return credentials


def translate_auth_error(error: Exception, calendar_id: str) -> AdapterError:
    """Map a google-auth refresh failure to the engine's errors, naming the calendar.

    invalid_grant (refresh token revoked, expired, or the password changed) and
    invalid_client (the OAuth client was deleted) become ReauthorizationNeeded; network
    trouble reaching the token endpoint becomes a retryable AdapterError.
    """
    if isinstance(error, TransportError):
        return AdapterError(f"Google Calendar {calendar_id}: could not reach Google's sign-in service; will try again")
    code = _refresh_error_code(error)
    if isinstance(error, RefreshError) and (code in ("invalid_grant", "invalid_client", "unauthorized_client") or not getattr(error, "retryable", False)):
        return ReauthorizationNeeded(reauthorize_message(
            f"Google Calendar {calendar_id}: Google no longer accepts Slotguard's authorization ({code or 'refresh refused'})"
        ))
    return AdapterError(f"Google Calendar {calendar_id}: refreshing the Google token failed ({code or 'temporary error'}); will try again")


def _refresh_error_code(error: Exception) -> str:
    """The OAuth error code ("invalid_grant") from a RefreshError, never its raw text."""
    for arg in getattr(error, "args", ())[1:]:
        if isinstance(arg, dict) and isinstance(arg.get("error"), str):
            return arg["error"]
    text = str(error.args[0]) if getattr(error, "args", None) else ""
    for code in ("invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope"):
        if code in text:
            return code
    return ""


class StoredCredentials:
    """Credentials plus the file they came from; saves them again after a refresh so a
    restart does not need one. Not thread-safe (the engine polls calendars in turn)."""

    def __init__(self, credentials: Credentials, path: Path | None):
        self.credentials = credentials
        self.path = path
        self._saved_token = credentials.token

    @classmethod
    def load(cls, settings: Any, token_uri: str | None = None) -> StoredCredentials:
        """Load from the data dir; raises ReauthorizationNeeded like load_credentials."""
        return cls(load_credentials(settings, token_uri=token_uri), token_path(settings))

    def save_if_refreshed(self) -> None:
        """Persist the credentials when google-auth has refreshed the access token."""
        if self.path is not None and self.credentials.token != self._saved_token:
            save_credentials(self.credentials, self.path)
            self._saved_token = self.credentials.token
            log.info("google_token_refreshed path=%s", self.path)


def browser_available() -> bool:
    """Whether `auth google` can open a browser here: not on a Linux or BSD server without a
    display (no DISPLAY or WAYLAND_DISPLAY), nor in an SSH session, nor where Python knows
    no browser at all."""
    if os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_TTY"):
        return False
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")) and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


def waiting_message(port: int, open_browser: bool, timeout_seconds: int | None) -> str:
    """What `auth google` prints while it waits for Google's answer: the consent address
    (`{url}`, filled in by the flow) and, where no browser was opened here, how to reach the
    waiting port from the browser's computer. Google sends the browser, once access is
    allowed, to http://localhost:PORT/?code=...: it must reach this machine's PORT."""
    minutes = f" for {max(1, timeout_seconds // 60)} minutes" if timeout_seconds else ""
    lines = [
        "Open this address in a browser to let Slotguard use your calendar:",
        "{url}",
        "",
        f"Slotguard is waiting{minutes} for Google's answer at " + (f"http://localhost:{port}/ on this machine." if port else "a free port of this machine."),
    ]
    if open_browser:
        lines.append("A browser was opened; if none appeared, copy the address above into one.")
        return "\n".join(lines)
    return "\n".join([
        *lines,
        "If your browser is on another computer (this is a server):",
        "  1. On that computer, open an SSH tunnel to this machine and keep it open until Slotguard says \"Connected\":",
        f"       ssh -L {port}:localhost:{port} YOU@THIS-SERVER",
        "  2. Open the address above in that computer's browser, sign in and allow access.",
        "     Google then sends the browser to http://localhost:" + str(port) + "/..., which the tunnel brings here.",
        "Without a tunnel: allow access anyway. The browser then fails to load a page whose address starts with",
        f"http://localhost:{port}/ . Copy that whole address from its address bar, and on this machine, in a",
        "second terminal, run:",
        f"       curl 'http://localhost:{port}/?state=...&code=...'   (the address you copied, in single quotes)",
    ])


def run_auth(settings: Any, client_secrets: str | None, *, open_browser: bool = True, port: int = 0, timeout_seconds: int | None = 600) -> int:
    """Run the installed-app OAuth flow and store the token; for `main.py auth google`.

    Given the settings and an optional client secrets path (else calendar.client_secrets),
    prints the consent address (and opens it in a browser when `open_browser`; else says how
    to answer from a browser on another computer: an SSH tunnel to `port`, or the redirect
    address handed over with curl), asks for PKCE, offline access and the consent prompt (so
    Google always returns a refresh token), waits on the loopback `port` (0: any free one)
    for the answer, and writes the token 0600. Returns 0 on success, 2 for a usage problem
    (no secrets file, the port in use), 1 when the flow failed. Never prints tokens.
    """
    from google_auth_oauthlib.flow import InstalledAppFlow  # imported here: only this command needs it

    secrets_path = client_secrets or settings.calendar.client_secrets
    if not secrets_path:
        print("No OAuth client secrets given: pass --client-secrets PATH or set calendar.client_secrets "
              "(download the JSON of a Desktop OAuth client from the Google Cloud console; docs/google-calendar.md).", file=sys.stderr)
        return 2
    if not Path(secrets_path).is_file():
        print(f"The client secrets file {secrets_path} does not exist.", file=sys.stderr)
        return 2
    scopes = scopes_for(settings)
    try:
        flow = InstalledAppFlow.from_client_secrets_file(secrets_path, scopes=scopes, autogenerate_code_verifier=True)
        credentials = flow.run_local_server(
            host="localhost", port=port, open_browser=open_browser, timeout_seconds=timeout_seconds,
            access_type="offline", prompt="consent",
            authorization_prompt_message=waiting_message(port, open_browser, timeout_seconds),
            success_message="Slotguard is connected to Google Calendar. You can close this window.",
        )
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            print(f"Port {port} on this machine is in use (another program, or an earlier `auth` still waiting). "
                  "Choose another with --port N, and use that number in the ssh -L command too.", file=sys.stderr)
            return 2
        print(f"Connecting to Google failed: {type(error).__name__}. Nothing was saved; try again.", file=sys.stderr)
        return 1
    except Exception as error:  # the flow raises oauthlib, requests and WSGI errors alike
        if getattr(error, "error", "") == "access_denied":
            print("Google says access was not allowed (Cancel was chosen on its page). Nothing was saved; run the command "
                  "again and choose Continue, with every box ticked (docs/google-calendar.md).", file=sys.stderr)
            return 1
        if type(error).__name__ == "WSGITimeoutError":
            print(f"No answer from Google reached port {port} in time. Nothing was saved; run the command again "
                  "(with a browser elsewhere: keep the SSH tunnel open, or hand the address over with curl).", file=sys.stderr)
            return 1
        print(f"Connecting to Google failed: {type(error).__name__}. Nothing was saved; try again.", file=sys.stderr)
        return 1
    if not credentials.refresh_token:
        print("Google returned no refresh token; remove Slotguard's access at "
              "https://myaccount.google.com/permissions and run the command again.", file=sys.stderr)
        return 1
    path = token_path(settings)
    save_credentials(credentials, path)
    allowed = {SCOPE_OWNED: "read and write your events", SCOPE_READONLY: "read your events (write-back off)",
               SCOPE_GMAIL_SEND: "send email through Gmail",
               SCOPE_GMAIL_MODIFY: "read and label your Gmail (it opens only the mail sent to inbox.address)"}
    mode = " and ".join(allowed[scope] for scope in scopes)
    print(f"Connected. Slotguard may now {mode}. Token saved to {path} (readable only by you).")
    return 0
