"""Microsoft 365 in the contract suite: the Graph wire fake (tests/support/fake_graph.py)
behind the wire tap (tests/contract/wire.py), spoken to by the real adapter
(integration/microsoft_graph.py) through requests, and signed in through the real MSAL library
(device-code flow, `auth microsoft`'s own run_auth). Graph is https only, so the tap here
serves TLS with a certificate from the fake's private authority (the one `ca_file` names) and
passes requests on to the fake over TLS. Sign-in requests go to the fake directly (they are
not calendar requests).

Marks: Outlook categories ("No-show", "Late cancellation", "Waive": the defaults of
calendar.microsoft.categories), private to the mailbox. The practitioner cancelling a meeting
removes it from their calendar in Outlook (the attendees get the cancellation), so `cancel`
deletes, as `delete` does; a cancelled occurrence of a series is likewise gone from the
organizer's calendar view.
"""

from __future__ import annotations

import http.client
import json
import secrets
import ssl
import threading
import time
from datetime import datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from integration.microsoft_auth import run_auth
from integration.microsoft_events import without_note_line
from integration.microsoft_graph import PROPERTY_ID, open_calendars
from slotguard.config.schema import Settings
from slotguard.config.sections import Storage
from slotguard.domain.interfaces import CalendarSource, CalendarWriteBack
from tests.contract.harness import Booking, StoredEvent
from tests.contract.wire import HOP_BY_HOP, Answer, WireTap, _handler
from tests.support.fake_graph import CLIENT_ID, FakeGraph, booking, graph_time
from tests.support.smtp_server import Certificate

PRACTITIONER = "lena@example.com"
CATEGORIES = {"no_show": "No-show", "late_cancel": "Late cancellation", "waive": "Waive"}
BUMPED = ("changeKey", "lastModifiedDateTime", "@odata.etag")
GRAPH_ERROR = json.dumps({"error": {"code": "ServiceUnavailable", "message": "injected fault"}}).encode()


def forward_over_tls(base_url: str, ca_file: str, timeout: float = 30.0) -> Answer:
    """An `answer` passing each request on to the https server at `base_url`, trusting `ca_file`."""
    parts = urlsplit(base_url)
    context = ssl.create_default_context(cafile=ca_file)

    def answer(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPSConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout, context=context)
        try:
            connection.request(method, path, body=body or None, headers={k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP})
            response = connection.getresponse()
            payload = response.read()
            kept = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP | {"date", "server"}}
            return response.status, kept, payload
        finally:
            connection.close()

    return answer


class TlsWireTap(WireTap):
    """The wire tap serving https with `certificate`."""

    def __init__(self, answer: Answer, certificate: Certificate, **options: Any):
        super().__init__(answer, **options)
        self.certificate = certificate

    def start(self) -> TlsWireTap:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificate.cert_file, self.certificate.key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="wire-tap-tls", daemon=True)
        self._thread.start()
        return self

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the tap first"
        return f"https://127.0.0.1:{self._server.server_address[1]}"


class MicrosoftHarness:
    name = "microsoft"
    writes_back = True
    known_gaps: dict[str, str] = {}

    def __init__(self, fake: FakeGraph, tap: TlsWireTap, folder: Path):
        self.fake, self.tap, self.folder = fake, tap, folder
        self.last_edit: StoredEvent | None = None

    # --- config and the adapter --------------------------------------------------------

    def calendar_table(self) -> dict[str, Any]:
        return {"source": "microsoft", "microsoft": {"client_id": CLIENT_ID, "authority": self.fake.authority,
                                                     "graph_endpoint": f"{self.tap.base_url}/v1.0", "ca_file": self.fake.ca_file}}

    def open_calendars(self, settings: Settings) -> list[tuple[CalendarSource, CalendarWriteBack]]:
        """Signs in through MSAL's device-code flow into a token cache under the test's
        folder, then opens the adapter as the daemon does (short retries and timeouts)."""
        settings = settings.model_copy(update={"storage": Storage(data_dir=str(self.folder / "microsoft-var"))})
        assert run_auth(settings, out=lambda line: None) == 0, "the device-code sign-in against the fake failed"
        return list(open_calendars(settings, retry_budget=1.0, timeout=0.5, sleep=time.sleep))

    # --- the practitioner and the client ------------------------------------------------

    def _resource(self, item: Booking, event_id: str) -> dict[str, Any]:
        minutes = int((item.end - item.start).total_seconds() // 60)
        event = booking(event_id, item.start, item.client_email, item.client_name, minutes=minutes, subject=item.title,
                        organizer=PRACTITIONER, zone="W. Europe Standard Time")
        event.update(isOrganizer=True, body={"contentType": "text", "content": item.description})
        return event

    def create(self, item: Booking) -> str:
        event_id = "AAMk" + secrets.token_hex(10)
        self.fake.put_event(self._resource(item, event_id))
        return event_id

    def create_many(self, items: list[Booking]) -> list[str]:
        return [self.create(item) for item in items]

    def mark(self, event_id: str, mark: str) -> None:
        categories = list(self.fake.event(event_id).get("categories") or [])
        self.fake.update_event(event_id, categories=[*categories, CATEGORIES[mark]])

    def move(self, event_id: str, start: datetime, end: datetime) -> None:
        self.fake.update_event(event_id, start=graph_time(start), end=graph_time(end))

    def cancel(self, event_id: str) -> None:
        self.fake.delete_event(event_id)  # Outlook: the organizer's cancelled meeting leaves their calendar

    def delete(self, event_id: str) -> None:
        self.fake.delete_event(event_id)

    def decline(self, event_id: str) -> None:
        attendees = json.loads(json.dumps(self.fake.event(event_id)["attendees"]))
        for attendee in attendees:
            attendee["status"] = {"response": "declined", "time": graph_time(datetime.now().astimezone())["dateTime"] + "Z"}
        self.fake.update_event(event_id, attendees=attendees)

    def create_series(self, item: Booking, count: int, *, moved: tuple[int, datetime], cancelled: int) -> list[str]:
        master = "AAMk" + secrets.token_hex(10)
        self.fake.put_event({**self._resource(item, master), "type": "seriesMaster"})
        length = item.end - item.start
        ids = []
        for number in range(count):
            start = item.start + timedelta(weeks=number)
            event_id = f"{master}-{number}"
            occurrence = {**self._resource(Booking(item.title, item.client_email, item.client_name, start, start + length, item.description), event_id),
                          "type": "occurrence", "seriesMasterId": master, "originalStart": start.strftime("%Y-%m-%dT%H:%M:%SZ")}
            if number == moved[0]:
                occurrence.update(type="exception", start=graph_time(moved[1]), end=graph_time(moved[1] + length))
            self.fake.put_event(occurrence)
            ids.append(event_id)
        self.fake.delete_event(ids[cancelled])
        return ids

    def expire_sync_token(self) -> None:
        self.fake.expire_delta_tokens()

    # --- faults and the stored event -----------------------------------------------------

    def fail(self, kind: str, *, after: int = 0) -> None:
        self.tap.fail(kind, after=after)

    def heal(self) -> None:
        self.tap.heal()

    def small_pages(self) -> None:
        self.fake.page_size_cap = 2

    def edit_before_next_write(self, event_id: str) -> None:
        def edit() -> None:
            self.fake.update_event(event_id, location={"displayName": "Room 2, upstairs"})
            self.last_edit = self.stored(event_id)

        self.tap.before_next("PATCH", event_id, edit)

    def stored(self, event_id: str) -> StoredEvent:
        event = {key: value for key, value in self.fake.event(event_id).items() if not key.startswith("_") and key not in BUMPED}
        own = {entry["id"]: entry["value"] for entry in event.pop("singleValueExtendedProperties", None) or [] if entry["id"].lower() == PROPERTY_ID.lower()}
        body = dict(event.get("body") or {})
        content = str(body.get("content") or "")
        stripped = without_note_line(content)
        if stripped != content:
            own["body line"] = content
            event["body"] = {**body, "content": stripped}
        return StoredEvent(own, event)

    def request_count(self) -> int:
        return self.tap.count()

    def bytes_moved(self) -> int:
        return self.tap.bytes_moved()

    def reset_requests(self) -> None:
        self.tap.reset()

    def close(self) -> None:
        self.tap.stop()
        self.fake.stop()


def open_harness(tmp_path: Path) -> MicrosoftHarness:
    fake = FakeGraph(tmp_path, interval=0).start()
    tap = TlsWireTap(forward_over_tls(fake.base, fake.ca_file), fake.ca.issue(), error_body=GRAPH_ERROR).start()
    fake.link_base = f"{tap.base_url}/v1.0"  # Graph's links point where the adapter reached it
    return MicrosoftHarness(fake, tap, tmp_path)
