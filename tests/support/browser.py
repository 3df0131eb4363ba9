"""A real headless Chromium for the tests that must see a page as a person would.

Debian's chromium (/usr/bin/chromium, installed by `make test` through the Makefile's
`chromium` step when missing and possible), driven over the Chrome DevTools Protocol on a
pipe (`--remote-debugging-pipe`: JSON messages ending in a NUL byte on file descriptors 3 and
4), so no driver, no Python package and no browser download are needed: the browser's version
is the Debian package's. Without Chromium the tests that need it skip saying so, except under
CI=true, where they fail (the pattern of tests/support/pg.py).

    def test_report_on_a_phone(browser):
        with browser.open(path, width=PHONE) as page:
            assert page.broken_images() == []
            assert not page.overflows(), page.overflowing_elements()
            page.screenshot(tmp_path / "phone.png")

The page is laid out as on a phone at PHONE width (mobile emulation: a page without
`<meta name="viewport" content="width=device-width">` is laid out 980 px wide, as phones do,
and so overflows) and as on a desktop at DESKTOP width. The network is closed: every name
resolves to nothing, so a page only shows what it carries (files, data: URIs, inline SVG).
"""

from __future__ import annotations

import base64
import email
import email.policy
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

CHROMIUM = os.environ.get("SLOTGUARD_TEST_CHROMIUM", "/usr/bin/chromium")
PHONE = 390  # CSS pixels: a common phone's width
DESKTOP = 1200
PHONE_HEIGHT = 844
DESKTOP_HEIGHT = 900
MAX_SCREENSHOT_HEIGHT = 16_000
TIMEOUT = 30.0  # seconds for one browser command, against hangs


class BrowserError(RuntimeError):
    """Chromium did not start, stopped, or answered a command with an error."""


def require_chromium() -> str:
    """The Chromium executable, or a skip (a failure under CI=true) saying why it is missing."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    message = (
        f"Chromium is not installed at {CHROMIUM}: `make test` installs Debian's chromium when run as root "
        "with apt-get (the Makefile's `chromium` step); or set SLOTGUARD_TEST_CHROMIUM to a Chromium"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}. Under CI=true a missing program fails the test.")
    pytest.skip(message)


@dataclass(frozen=True)
class ImageState:
    """One <img> of a page after it loaded: `natural_width` 0 means it did not load."""

    src: str
    natural_width: int
    natural_height: int
    alt: str | None


class Browser:
    """One headless Chromium process; `open` gives a new tab per page. Close it with `close()`."""

    def __init__(self, executable: str = CHROMIUM) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="sg-chromium-"))
        self._log = (self.folder / "chromium.log").open("wb")
        to_browser_read, to_browser_write = os.pipe()
        from_browser_read, from_browser_write = os.pipe()
        # Chromium reads commands on fd 3 and writes answers on fd 4. Copies above 10 (closed
        # on exec) so that moving them to 3 and 4 in the child never overwrites one with the other.
        child_in = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD_CLOEXEC, 10)
        child_out = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_browser_read)
        os.close(from_browser_write)

        def descriptors() -> None:  # runs in the child, before exec
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        arguments = [
            executable,
            "--headless",
            "--remote-debugging-pipe",
            "--no-sandbox",  # tests run as root in containers, where the sandbox cannot start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--mute-audio",
            "--force-color-profile=srgb",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # no network: a page shows only what it carries
            f"--user-data-dir={self.folder / 'profile'}",
            "about:blank",
        ]
        try:
            self.process = subprocess.Popen(
                arguments,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=self._log,
                close_fds=False,  # the two moved to 3 and 4 are the only ones inherited (PEP 446)
                preexec_fn=descriptors,  # noqa: PLW1509 - only dup2 in the child, no locks taken
            )
        except OSError as error:
            self._close_descriptors(child_in, child_out, to_browser_write, from_browser_read)
            raise BrowserError(f"cannot start {executable}: {error}") from None
        os.close(child_in)
        os.close(child_out)
        self._write = to_browser_write
        self._read = from_browser_read
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        self._pages = 0
        self.version = self.command("Browser.getVersion")["product"]

    @staticmethod
    def _close_descriptors(*descriptors: int) -> None:
        for descriptor in descriptors:
            try:
                os.close(descriptor)
            except OSError:
                pass

    # The protocol: a command is answered by a message with its id; events come between.

    def command(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        """Send one DevTools command and return its result. Raises BrowserError."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode("utf-8") + b"\0"
        try:
            while data:
                data = data[os.write(self._write, data):]
        except OSError as error:
            raise BrowserError(f"Chromium stopped ({error}); its log: {self.log_tail()}") from None
        deadline = time.monotonic() + TIMEOUT
        while True:
            answer = self._receive(deadline, f"{method}")
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error'].get('message')} {answer['error'].get('data', '')}".strip())
                return answer.get("result", {})
            if "method" in answer:
                self._events.append(answer)

    def wait_for_event(self, method: str, session: str | None, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next event `method` of `session` (earlier ones kept are used first)."""
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self._events):
                if event.get("method") == method and event.get("sessionId") == session:
                    return self._events.pop(index)
            event = self._receive(deadline, f"the event {method}")
            if "method" in event:
                self._events.append(event)

    def _receive(self, deadline: float, waiting_for: str) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"Chromium did not answer {waiting_for} within {TIMEOUT:.0f} s")
            ready, _, _ = select.select([self._read], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium stopped while waiting for {waiting_for}; its log: {self.log_tail()}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def log_tail(self) -> str:
        self._log.flush()
        text = (self.folder / "chromium.log").read_text("utf-8", "replace")
        return " | ".join(text.strip().splitlines()[-5:]) or "(empty)"

    # Pages.

    def open(self, source: str | Path, *, width: int = PHONE, height: int | None = None) -> Page:
        """Open a file (a path) or a URL (file:, data:) in a new tab `width` CSS pixels wide,
        as on a phone below 600 px. Returns when the page, its images and its fonts have loaded."""
        url = Path(source).resolve().as_uri() if not re.match(r"^[a-z]+:", str(source)) else str(source)
        height = height or (PHONE_HEIGHT if width < 600 else DESKTOP_HEIGHT)
        target = self.command("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.command("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, target, session, width, height)
        try:
            self.command("Page.enable", session=session)
            self.command("Runtime.enable", session=session)
            self.command(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
                session=session,
            )
            navigation = self.command("Page.navigate", {"url": url}, session=session)
            if navigation.get("errorText"):
                raise BrowserError(f"cannot open {url}: {navigation['errorText']}")
            self.wait_for_event("Page.loadEventFired", session)
            page.evaluate("document.fonts.ready.then(() => true)")
        except BaseException:
            page.close()
            raise
        return page

    def open_html(self, html: str, *, width: int = PHONE, height: int | None = None) -> Page:
        """Open an HTML document given as text (written to a file of this browser's folder)."""
        self._pages += 1
        path = self.folder / f"page-{self._pages}.html"
        path.write_text(html, "utf-8")
        return self.open(path, width=width, height=height)

    def open_email(self, message: bytes | Message, *, width: int = PHONE, height: int | None = None) -> Page:
        """Open an email's HTML as a mail app shows it: `cid:` images resolved from the parts of
        the multipart/related that holds the HTML (a cid: with no such part stays broken).
        `page.unresolved_cids` lists those. Raises BrowserError when there is no HTML part."""
        html, unresolved = email_html(message)
        page = self.open_html(html, width=width, height=height)
        page.unresolved_cids = unresolved
        return page

    def close(self) -> None:
        """Stop Chromium and remove its folder."""
        try:
            if self.process.poll() is None:
                try:
                    self.command("Browser.close")
                except BrowserError:
                    pass
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
        finally:
            self._close_descriptors(self._write, self._read)
            self._log.close()
            shutil.rmtree(self.folder, ignore_errors=True)


class Page:
    """One open tab. Use it in a `with` block, or call `close()`."""

    def __init__(self, browser: Browser, target: str, session: str, width: int, height: int) -> None:
        self.browser = browser
        self.target = target
        self.session = session
        self.width = width
        self.height = height
        self.unresolved_cids: list[str] = []

    def __enter__(self) -> Page:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.browser.command(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=self.session,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"script failed: {details.get('exception', {}).get('description') or details.get('text')}")
        return result["result"].get("value")

    def text(self) -> str:
        """The page's text as shown (innerText of the body)."""
        return self.evaluate("document.body ? document.body.innerText : ''")

    def images(self) -> list[ImageState]:
        """Every <img> of the page with its natural size (0 wide: it did not load)."""
        found = self.evaluate(
            "Array.from(document.images).map(i => ({src: i.currentSrc || i.getAttribute('src') || '',"
            " w: i.naturalWidth, h: i.naturalHeight, alt: i.getAttribute('alt')}))"
        )
        return [ImageState(item["src"][:200], item["w"], item["h"], item["alt"]) for item in found]

    def broken_images(self) -> list[str]:
        """The sources (cut to 200 characters) of the <img> that did not load."""
        return [image.src for image in self.images() if image.natural_width <= 0]

    def all_images_loaded(self) -> bool:
        return not self.broken_images()

    def svg_sizes(self) -> list[tuple[float, float]]:
        """(width, height) in CSS pixels of each outermost inline <svg> as laid out."""
        found = self.evaluate(
            "Array.from(document.querySelectorAll('svg')).filter(s => !s.parentElement.closest('svg'))"
            ".map(s => { const r = s.getBoundingClientRect(); return [r.width, r.height]; })"
        )
        return [(float(width), float(height)) for width, height in found]

    def overflows(self) -> bool:
        """Whether the page is wider than the window it was opened in (it scrolls sideways)."""
        width = self.evaluate("Math.max(document.documentElement.scrollWidth, document.body ? document.body.scrollWidth : 0)")
        return width > self.width or self.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")

    def overflowing_elements(self, limit: int = 10) -> list[str]:
        """Up to `limit` elements reaching past the window's right edge, as "tag#id.class (right edge)"."""
        return self.evaluate(
            "Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > "
            f"{self.width} + 0.5).slice(0, {limit}).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + "
            "(typeof e.className === 'string' && e.className ? '.' + e.className.split(' ').join('.') : '') + "
            "' (' + Math.round(e.getBoundingClientRect().right) + ' px)')"
        )

    def screenshot(self, path: str | Path | None = None, *, full_page: bool = True) -> bytes:
        """A PNG of the page (all of it when `full_page`, at least the window's width); also
        written to `path` when given."""
        clip = None
        if full_page:
            metrics = self.browser.command("Page.getLayoutMetrics", session=self.session)
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            clip = {
                "x": 0,
                "y": 0,
                "width": max(self.width, int(size["width"])),
                "height": min(MAX_SCREENSHOT_HEIGHT, max(self.height, int(size["height"]))),
                "scale": 1,
            }
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        if clip:
            params["clip"] = clip
        data = base64.b64decode(self.browser.command("Page.captureScreenshot", params, session=self.session)["data"])
        if path is not None:
            Path(path).write_bytes(data)
        return data

    def close(self) -> None:
        if self.browser.process.poll() is None:
            try:
                self.browser.command("Target.closeTarget", {"targetId": self.target})
            except BrowserError:
                pass


def email_html(message: bytes | Message) -> tuple[str, list[str]]:
    """The first text/html part of `message` with its `cid:` references replaced by data: URIs
    of the image parts with those Content-IDs in the same multipart/related, and the cids left
    unresolved. Raises BrowserError when there is no HTML part."""
    if isinstance(message, bytes):
        message = email.message_from_bytes(message, policy=email.policy.default)
    found = _html_part(message, None)
    if found is None:
        raise BrowserError("the message has no text/html part")
    part, parent = found
    html = part.get_content() if isinstance(part, EmailMessage) else part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    images: dict[str, str] = {}
    if parent is not None and parent.get_content_type() == "multipart/related":
        for sibling in parent.iter_parts() if isinstance(parent, EmailMessage) else parent.get_payload():
            content_id = (sibling.get("Content-ID") or "").strip().strip("<>")
            if content_id and sibling.get_content_maintype() == "image":
                data = base64.b64encode(sibling.get_payload(decode=True)).decode("ascii")
                images[content_id] = f"data:{sibling.get_content_type()};base64,{data}"
    unresolved: list[str] = []

    def resolve(match: re.Match[str]) -> str:
        content_id = match.group(2)
        for candidate in (content_id, unquote(content_id)):  # a cid: URL may be %-encoded (RFC 2392)
            if candidate in images:
                return f"{match.group(1)}{images[candidate]}"
        unresolved.append(content_id)
        return match.group(0)

    html = re.sub(r"""((?:src|href)\s*=\s*["']?)cid:([^"'\s>]+)""", resolve, html, flags=re.I)
    return html, unresolved


def _html_part(message: Message, parent: Message | None) -> tuple[Message, Message | None] | None:
    if message.is_multipart():
        for part in message.get_payload():
            found = _html_part(part, message)
            if found:
                return found
        return None
    if message.get_content_type() == "text/html" and message.get_content_disposition() != "attachment":
        return message, parent
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the session (skipped, or failed under CI=true, without one)."""
    executable = require_chromium()
    running = Browser(executable)
    try:
        yield running
    finally:
        running.close()
