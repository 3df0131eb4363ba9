"""Microsoft sign-in for Slotguard: `python main.py auth microsoft` once (MSAL's device-code
flow, which works on a headless server: it prints a code to enter at a web page on any
device), then silent refreshes from a token cache kept 0600.

Scopes (delegated permissions of the app registration, see docs/microsoft.md):
- `Calendars.ReadWrite`: read the calendar and write Slotguard's private status onto events
  (with `calendar.write_back = false`, `Calendars.Read` instead);
- `offline_access`: a refresh token, so Slotguard keeps working without signing in again.
MSAL adds `offline_access`, `openid` and `profile` to every request by itself (it refuses
them as explicit scopes). For a sovereign cloud the scope is qualified with that cloud's
Graph ("https://graph.microsoft.us/Calendars.ReadWrite").

The cache lives in `<storage.data_dir>/microsoft-token-cache.json`, mode 0600, written
atomically (slotguard/store/private_files.py). It holds the refresh token: treat it like a
password. Nothing here logs or prints a token.

The authority is `calendar.microsoft.authority` (else login.microsoftonline.com/TENANT); with
one set, MSAL's instance discovery (a request to login.microsoftonline.com asking whether the
host is known) is turned off. `calendar.microsoft.ca_file` is the trust store of every request.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msal  # type: ignore[import-untyped]  # MSAL ships no type hints
import requests

from slotguard.domain.interfaces import AdapterError, ReauthorizationNeeded
from slotguard.domain.untrusted import one_line
from slotguard.store.private_files import OutputRefused, private_file, private_folder, write_out

CACHE_FILE_NAME = "microsoft-token-cache.json"
AUTH_COMMAND = "python main.py auth microsoft"
PUBLIC_GRAPH_HOST = "graph.microsoft.com"
SOVEREIGN_GRAPH_HOSTS = frozenset({"graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn"})
# What the token endpoint answers when only signing in again helps.
SIGN_IN_AGAIN = frozenset({"invalid_grant", "interaction_required", "invalid_client", "unauthorized_client", "consent_required", "no_account"})

log = logging.getLogger("slotguard.microsoft")


def scopes_for(settings: Any) -> list[str]:
    """`Calendars.ReadWrite` (or `Calendars.Read` without write-back), qualified with the
    Graph host for a sovereign cloud; offline_access is added by MSAL."""
    name = "Calendars.ReadWrite" if settings.calendar.write_back else "Calendars.Read"
    parts = urlsplit(settings.calendar.microsoft.graph_endpoint)
    if parts.hostname in SOVEREIGN_GRAPH_HOSTS:
        return [f"{parts.scheme}://{parts.hostname}/{name}"]
    return [name]


def cache_path(settings: Any) -> Path:
    return Path(settings.storage.data_dir) / CACHE_FILE_NAME


def reauthorize_message(what: str) -> str:
    return f"{what}. Run `{AUTH_COMMAND}` to connect Slotguard to Microsoft 365 again."


class TrustingSession(requests.Session):
    """A requests session that verifies against `ca_file` on every request. Setting
    `Session.verify` alone is not enough: requests lets REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE
    in the environment override it, so the file is passed with each request instead."""

    def __init__(self, ca_file: str = "", timeout: float = 20.0):
        super().__init__()
        self.ca_file, self.timeout = ca_file, timeout

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if self.ca_file and kwargs.get("verify") is None:
            kwargs["verify"] = self.ca_file
        if kwargs.get("timeout") is None:  # MSAL passes none when given a session: no request may hang a tick
            kwargs["timeout"] = self.timeout
        return super().request(method, url, *args, **kwargs)


def http_session(settings: Any, timeout: float = 20.0) -> requests.Session:
    """A requests session trusting `calendar.microsoft.ca_file` (else the system's
    authorities), with `timeout` seconds for every request, shared by MSAL and the Graph
    calls of one practice."""
    return TrustingSession(settings.calendar.microsoft.ca_file, timeout)


def load_cache(path: Path) -> msal.SerializableTokenCache:
    """The token cache from `path` (empty when there is none); tightens a file readable by
    others to 0600 first."""
    cache = msal.SerializableTokenCache()
    if path.is_file():
        private_file(path)
        try:
            cache.deserialize(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as error:
            raise ReauthorizationNeeded(reauthorize_message(f"The Microsoft token cache {path} is unreadable ({type(error).__name__})")) from None
    return cache


def save_cache(cache: msal.SerializableTokenCache, path: Path) -> None:
    """Write the cache to `path`, 0600, atomically (the old file or the new, never half)."""
    private_folder(path.parent)
    try:
        write_out(path, cache.serialize(), force=True)
    except OutputRefused as error:
        raise AdapterError(f"Microsoft 365: could not save the token cache: {error}") from None


def build_app(settings: Any, cache: msal.SerializableTokenCache, session: requests.Session, timeout: float = 20.0) -> msal.PublicClientApplication:
    """The MSAL public client for the app registration in the settings. Fetches the
    authority's OpenID configuration (one request). Raises ValueError or requests errors."""
    microsoft = settings.calendar.microsoft
    return msal.PublicClientApplication(
        microsoft.client_id,
        authority=microsoft.authority_url,
        token_cache=cache,
        http_client=session,
        instance_discovery=False if microsoft.custom_authority else None,
        timeout=timeout,
    )


class GraphToken:
    """Access tokens for Graph from the stored cache, refreshed silently by MSAL (a request
    to the token endpoint only when the access token is about to expire). Saves the cache
    after each refresh. After ReauthorizationNeeded it reads the file again on the next call,
    so running the auth command fixes a running daemon. Not thread-safe."""

    def __init__(self, settings: Any, session: requests.Session, timeout: float = 20.0):
        self.settings, self.session, self.timeout = settings, session, timeout
        self.path = cache_path(settings)
        self._app: msal.PublicClientApplication | None = None
        self._cache: msal.SerializableTokenCache | None = None

    def _application(self) -> msal.PublicClientApplication:
        if self._app is None:
            if not self.path.is_file():
                raise ReauthorizationNeeded(reauthorize_message(f"Microsoft 365 is not connected yet (no {self.path})"))
            self._cache = load_cache(self.path)
            try:
                self._app = build_app(self.settings, self._cache, self.session, self.timeout)
            except requests.RequestException as error:
                raise AdapterError(f"Microsoft 365: could not reach the sign-in service ({type(error).__name__}); will try again") from None
            except ValueError as error:
                raise AdapterError(f"Microsoft 365: the sign-in authority {self.settings.calendar.microsoft.authority_url} did not answer as expected ({one_line(str(error), 200)})") from None
        return self._app

    def forget(self) -> None:
        self._app, self._cache = None, None

    def access_token(self, force_refresh: bool = False) -> str:
        """A valid access token. Raises ReauthorizationNeeded (no cache, no account, a refusal
        only signing in again fixes) or AdapterError (the sign-in service unreachable)."""
        app = self._application()
        accounts = app.get_accounts()
        if not accounts:
            self.forget()
            raise ReauthorizationNeeded(reauthorize_message("The Microsoft token cache holds no signed-in account"))
        try:
            result = app.acquire_token_silent_with_error(scopes_for(self.settings), account=accounts[0], force_refresh=force_refresh)
        except requests.RequestException as error:
            raise AdapterError(f"Microsoft 365: could not reach the sign-in service ({type(error).__name__}); will try again") from None
        if not result or "access_token" not in result:
            code = str((result or {}).get("error") or "no_account")
            if code in SIGN_IN_AGAIN:
                self.forget()
                raise ReauthorizationNeeded(reauthorize_message(f"Microsoft no longer accepts Slotguard's sign-in ({code})"))
            raise AdapterError(f"Microsoft 365: refreshing the sign-in failed ({code}); will try again")
        if self._cache is not None and self._cache.has_state_changed:
            save_cache(self._cache, self.path)
            self._cache.has_state_changed = False
            log.info("microsoft_token_refreshed path=%s", self.path)
        return str(result["access_token"])


def run_auth(settings: Any, *, out: Callable[[str], None] = print, timeout: float = 20.0) -> int:
    """The device-code sign-in of `main.py auth microsoft`: prints where to go and the code
    to enter (on any device), waits until the practitioner has signed in (or the code
    expires), and stores the token cache 0600. Returns 0 when connected, 2 for a usage
    problem, 1 when sign-in failed. Prints no token."""
    microsoft = settings.calendar.microsoft
    if microsoft is None:
        print('No [calendar.microsoft] table in the config: add one with client_id (see docs/microsoft.md).', file=sys.stderr)
        return 2
    path = cache_path(settings)
    cache = msal.SerializableTokenCache()
    session = http_session(settings)
    try:
        app = build_app(settings, cache, session, timeout)
        flow = app.initiate_device_flow(scopes=scopes_for(settings))
    except (ValueError, requests.RequestException) as error:
        print(f"Could not start the Microsoft sign-in at {microsoft.authority_url}: {one_line(str(error), 300)}", file=sys.stderr)
        return 1
    if "user_code" not in flow:
        print(f"Microsoft refused to start a sign-in: {flow.get('error', 'unknown error')}: {one_line(str(flow.get('error_description', '')), 300)}", file=sys.stderr)
        return 1
    out(str(flow.get("message") or f"Open {flow.get('verification_uri')} in a browser on any device and enter the code {flow['user_code']}."))
    out("Waiting for you to sign in (the code expires in about 15 minutes)...")
    try:
        result = app.acquire_token_by_device_flow(flow)
    except requests.RequestException as error:
        print(f"Lost the connection to Microsoft while waiting ({type(error).__name__}); nothing was saved; run the command again.", file=sys.stderr)
        return 1
    if "access_token" not in result:
        code = result.get("error", "unknown error")
        hint = " An administrator of your organisation may need to grant consent first (docs/microsoft.md, admin consent)." if "consent" in json.dumps(result).lower() else ""
        print(f"Sign-in failed: {code}: {one_line(str(result.get('error_description', '')), 300)}.{hint} Nothing was saved.", file=sys.stderr)
        return 1
    save_cache(cache, path)
    who = (result.get("id_token_claims") or {}).get("preferred_username") or "your account"
    out(f"Connected as {who}. Slotguard may now {'read and write' if settings.calendar.write_back else 'read'} your calendar. Token cache saved to {path} (readable only by you).")
    return 0
