"""The HTTP side of the CalDAV adapter: WebDAV requests with credentials from the first one.

Plain `http.client`, one kept-alive connection per server, because every request counts:
an idle tick must cost one request (integration/caldav_source.py), and a client that waits
for a 401 before it sends credentials doubles that (the `caldav` library's DAVClient does
unless `auth_type` is pinned, and builds its requests on niquests; its REPORT and PROPFIND
helpers add nothing the few fixed bodies here need). So Basic credentials go with the first
request, over https (or http to a loopback address: tests). `requests` and `bytes_sent` / `bytes_received`
count what went over the wire, for bench/ and the tests.

Faults: a 5xx, 429, a timeout or a refused or reset connection raise AdapterError
(retryable: the engine tries again next tick; a Retry-After is passed on); a 401 raises
ReauthorizationNeeded with what to do. Redirects (a /.well-known/caldav, a moved calendar)
are followed, keeping the credentials only on the same server or another https host under
its parent domain (iCloud answers from pNN-caldav.icloud.com; see `credential_scope`). Other statuses go back to the
caller, which knows what a 403, 404 or 412 means for its request.

Answers are untrusted text from a server: a multistatus is parsed with the standard
library's XML parser, refusing a document type declaration (so no entities are expanded) and capped at MAX_BODY bytes.
"""

from __future__ import annotations

import base64
import http.client
import logging
import ssl
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from slotguard.domain.interfaces import AdapterError, ReauthorizationNeeded
from slotguard.domain.untrusted import one_line

DAV, CALDAV = "DAV:", "urn:ietf:params:xml:ns:caldav"
MAX_BODY = 64 * 1024 * 1024
MAX_REDIRECTS = 5
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
USER_AGENT = "Slotguard-CalDAV/1"

log = logging.getLogger("slotguard.caldav")


def dav(name: str) -> str:
    return f"{{{DAV}}}{name}"


def cal(name: str) -> str:
    return f"{{{CALDAV}}}{name}"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass
class Item:
    """One <response> of a multistatus: its href (absolute URL), the HTTP status of its
    found properties (or of the response), and those properties by Clark name."""

    href: str
    status: int
    props: dict[str, ET.Element] = field(default_factory=dict)

    def text(self, name: str) -> str:
        element = self.props.get(name)
        return (element.text or "").strip() if element is not None else ""

    def hrefs(self, name: str, base: str) -> list[str]:
        element = self.props.get(name)
        return [urljoin(base, (href.text or "").strip()) for href in element.iter(dav("href"))] if element is not None else []


def _status_code(text: str | None) -> int:
    parts = (text or "").split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def parse_multistatus(body: bytes, base: str) -> tuple[list[Item], str]:
    """(responses, top-level DAV:sync-token or "") of a 207 body. Raises AdapterError for
    a body that is not a multistatus."""
    if b"<!DOCTYPE" in body[:4096].upper():  # a DTD comes before the root element; WebDAV never needs one
        raise AdapterError("the CalDAV server sent XML with a document type declaration, which Slotguard does not read; will try again")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as error:
        raise AdapterError(f"the CalDAV server sent an answer that is not WebDAV XML ({error}); will try again") from None
    if root.tag != dav("multistatus"):
        raise AdapterError(f"the CalDAV server sent {one_line(root.tag, 60)} instead of a multistatus; will try again")
    items = []
    for response in root.findall(dav("response")):
        href = urljoin(base, (response.findtext(dav("href")) or "").strip())
        item = Item(href, _status_code(response.findtext(dav("status"))))
        for propstat in response.findall(dav("propstat")):
            status = _status_code(propstat.findtext(dav("status")))
            if status == 200:
                item.status = 200
                for prop in propstat.findall(dav("prop")):
                    for element in prop:
                        item.props[element.tag] = element
            elif not item.status:
                item.status = status
        items.append(item)
    return items, (root.findtext(dav("sync-token")) or "").strip()


def credential_scope(host: str) -> str:
    """The domain under which other https hosts may get the credentials: the configured
    host's parent (caldav.icloud.com -> icloud.com, whose pNN-caldav.icloud.com serve the
    account), "" when that parent is too short to be one organisation's (example.com -> com;
    example.co.uk -> co.uk: a first label of 3 letters or fewer under a country code)."""
    labels = host.lower().split(".")
    parent = labels[1:]
    if len(parent) < 2 or (len(parent) == 2 and len(parent[0]) <= 3 and len(parent[1]) == 2):
        return ""
    return ".".join(parent)


class DavClient:
    """WebDAV requests to one CalDAV account. Not thread-safe (one calendar, one tick)."""

    def __init__(self, base_url: str, username: str, password: str | Callable[[], str], *, timeout: float = 30.0, ca_file: str = "",
                 where: str = ""):
        parts = urlsplit(base_url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise AdapterError(f"calendar.caldav.url {base_url!r} is not an https:// address of a CalDAV server", retryable=False)
        if parts.scheme == "http" and parts.hostname not in LOOPBACK:
            raise AdapterError(f"calendar.caldav.url {base_url!r}: the password would travel unencrypted; use https://", retryable=False)
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.host = parts.hostname
        self.timeout = timeout
        self.where = where or f"CalDAV server {parts.hostname}"
        self.username = username
        # The password, or how to read it: after a 401 it is read again before the next
        # request, so a new app password in the variable or file works without a restart.
        self._password = password
        self._auth = self._credentials(password() if callable(password) else password)
        self._tls = ssl.create_default_context(cafile=ca_file or None)
        self._connections: dict[tuple[str, str, int], http.client.HTTPConnection] = {}
        self.requests = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    def _credentials(self, password: str) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{password}".encode()).decode("ascii")

    def _current_auth(self) -> str:
        if not self._auth and callable(self._password):
            try:
                self._auth = self._credentials(self._password())
            except Exception as error:  # noqa: BLE001 - ConfigError naming the reference, never the value
                problems = getattr(error, "problems", None) or [str(error)]
                raise ReauthorizationNeeded(f"{self.where}: the password cannot be read ({'; '.join(problems)}); "
                                            "set calendar.caldav.password's variable or file") from None
        return self._auth

    def _credentials_for(self, url: str) -> bool:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if host == self.host.lower():
            return True
        scope = credential_scope(self.host)
        return parts.scheme == "https" and bool(scope) and host.endswith("." + scope)

    def _connection(self, scheme: str, host: str, port: int) -> tuple[http.client.HTTPConnection, bool]:
        key = (scheme, host, port)
        connection = self._connections.get(key)
        if connection is not None:
            return connection, True
        if scheme == "https":
            connection = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._tls)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
        self._connections[key] = connection
        return connection, False

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def request(self, method: str, url: str, body: bytes | str | None = None, headers: dict[str, str] | None = None,
                *, what: str = "") -> Answer:
        """Send one request (following redirects); return the answer for any status but
        401, 429 and 5xx. Raises ReauthorizationNeeded (401) or AdapterError (retryable:
        429, 5xx, timeouts, connection failures)."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        url = urljoin(self.base_url, url)
        what = what or f"{method} {urlsplit(url).path}"
        for _ in range(MAX_REDIRECTS + 1):
            answer = self._once(method, url, data, headers or {}, what)
            if answer.status in (301, 302, 303, 307, 308) and answer.header("location"):
                url = urljoin(url, answer.header("location"))
                if answer.status == 303:
                    method, data = "GET", None
                continue
            return self._checked(answer, what)
        raise AdapterError(f"{self.where}: {what}: too many redirects; check calendar.caldav.url", retryable=False)

    def _once(self, method: str, url: str, data: bytes | None, headers: dict[str, str], what: str) -> Answer:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        if scheme not in ("http", "https") or (scheme == "http" and host not in LOOPBACK):
            raise AdapterError(f"{self.where}: {what}: the server pointed to {one_line(url, 120)}, which is not https", retryable=False)
        port = parts.port or (443 if scheme == "https" else 80)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        sent = {"User-Agent": USER_AGENT, **headers}
        if self._credentials_for(url):
            sent["Authorization"] = self._current_auth()
        if data is not None:
            sent.setdefault("Content-Type", "application/xml; charset=utf-8")
        for attempt in (1, 2):
            connection, reused = self._connection(scheme, host, port)
            self.requests += 1
            self.bytes_sent += len(data or b"") + sum(len(k) + len(v) + 4 for k, v in sent.items()) + len(method) + len(path) + 12
            try:
                connection.request(method, path, body=data, headers=sent)
                response = connection.getresponse()
                content = response.read(MAX_BODY + 1)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                connection.close()
                self._connections.pop((scheme, host, port), None)
                if reused and attempt == 1:
                    continue  # a kept-alive connection the server had closed: once more on a new one
                raise AdapterError(f"{self.where}: {what}: the connection was dropped ({type(error).__name__}); will try again next tick") from None
            except TimeoutError:
                connection.close()
                self._connections.pop((scheme, host, port), None)
                raise AdapterError(f"{self.where}: {what}: no answer within {self.timeout:g} s; will try again next tick") from None
            except ssl.SSLCertVerificationError as error:
                connection.close()
                self._connections.pop((scheme, host, port), None)
                raise AdapterError(f"{self.where}: {what}: its certificate is not trusted ({error.verify_message}); "
                                   "if a private authority signed it, name its PEM file in calendar.caldav.ca_file", retryable=False) from None
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                self._connections.pop((scheme, host, port), None)
                raise AdapterError(f"{self.where}: {what}: cannot reach the server ({type(error).__name__}: "
                                   f"{one_line(str(error), 120)}); will try again next tick") from None
            self.bytes_received += len(content) + sum(len(k) + len(v) + 4 for k, v in response.getheaders()) + 17
            if len(content) > MAX_BODY:
                connection.close()
                self._connections.pop((scheme, host, port), None)
                raise AdapterError(f"{self.where}: {what}: the answer is larger than {MAX_BODY} bytes", retryable=False)
            if response.will_close:
                connection.close()
                self._connections.pop((scheme, host, port), None)
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, content, url)
        raise AssertionError("not reached")

    def _checked(self, answer: Answer, what: str) -> Answer:
        status = answer.status
        if status == 401:
            if callable(self._password):
                self._auth = ""  # read again before the next request
            raise ReauthorizationNeeded(
                f"{self.where} refused the user name and password ({what}: HTTP 401). Check calendar.caldav.username "
                "and the password it references; iCloud needs an app-specific password (appleid.apple.com > Sign-In "
                "and Security > App-Specific Passwords), Fastmail an app password with CalDAV access, Nextcloud an "
                "app password (Settings > Security). Slotguard reads the password again at the next tick"
            )
        if status == 429 or status >= 500:
            retry_after = None
            try:
                retry_after = float(answer.header("retry-after")) if answer.header("retry-after") else None
            except ValueError:
                retry_after = None
            raise AdapterError(f"{self.where}: {what}: the server answered HTTP {status}; will try again next tick", retry_after=retry_after)
        return answer

    def multistatus(self, method: str, url: str, body: str, depth: str, what: str) -> tuple[list[Item], str]:
        """A PROPFIND or REPORT answered by a 207; raises AdapterError for other statuses
        (the caller handles a 403 itself through `request` when it means something)."""
        answer = self.request(method, url, body, {"Depth": depth}, what=what)
        if answer.status != 207:
            raise AdapterError(f"{self.where}: {what}: the server answered HTTP {answer.status} "
                               f"({one_line(answer.body.decode('utf-8', 'replace'), 120)})")
        return parse_multistatus(answer.body, answer.url)
