"""The webhook server over real sockets: a silent or lying client cannot stop deliveries
(issue 11, item 15). One thread per connection, a capped number at once, a deadline for the
whole request, a body read only with a Content-Length of at most 1 MB (413 before reading,
411 without, 400 unreadable), and the handler threads using the one ledger connection one
at a time."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from integration.stripe_webhooks import MAX_BODY_BYTES, serve, sign
from slotguard.domain.model import ActionState
from slotguard.payments.webhook_updates import applier
from slotguard.store.ledger import Ledger
from tests.support.stripe_fixtures import make_action

SECRET = "whsec_test_slotguard"
PATH = "/stripe/webhook"


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    yield ledger
    ledger.close()


@pytest.fixture
def server(ledger):
    server = serve(applier(ledger), SECRET, port=0, timeout=2.0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def unpaid_fee(ledger: Ledger):
    action = make_action("charge", "450 NOK")
    action.state = ActionState.DONE
    action.external_id = f"pi_{action.id}"
    action.context.update({"payment_status": "unpaid"})
    ledger.add_action(action)
    return action


def paid_event(fee, number: int) -> bytes:
    return json.dumps({
        "id": f"evt_{number}", "object": "event", "type": "payment_intent.succeeded", "created": 1,
        "data": {"object": {"id": f"pi_paid_{number}", "amount": 45000, "currency": "nok", "metadata": {"slotguard_action_id": fee.id}}},
    }).encode()


def raw_request(server, head: str, body: bytes = b"", *, read: bool = True, timeout: float = 5.0) -> tuple[socket.socket, bytes]:
    """Send `head` (request line and headers, without the blank line) and `body` on a new
    connection; with `read`, return everything the server answers before it closes."""
    connection = socket.create_connection(server.server_address[:2], timeout=timeout)
    connection.sendall(head.encode() + b"\r\n\r\n" + body)
    answer = b""
    if read:
        while chunk := connection.recv(65536):
            answer += chunk
        connection.close()
    return connection, answer


def deliver(server, body: bytes) -> bytes:
    head = f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nStripe-Signature: {sign(body, SECRET)}"
    return raw_request(server, head, body)[1]


def test_a_client_that_sends_headers_and_no_body_blocks_no_delivery(server, ledger):
    fee = unpaid_fee(ledger)
    silent, _ = raw_request(server, f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 500", read=False)
    try:
        started = time.monotonic()
        answer = deliver(server, paid_event(fee, 1))
        assert answer.startswith(b"HTTP/1.0 200"), answer
        assert time.monotonic() - started < 1.5, "the silent client held up the delivery"
        assert ledger.action(fee.id).context["payment_status"] == "paid"
        # The silent client is dropped once its socket timeout (2 s here, 10 s by default) passes.
        silent.settimeout(6)
        assert silent.recv(1024) == b""
    finally:
        silent.close()


@pytest.mark.parametrize(
    "header, status",
    [
        (f"Content-Length: {10**11}", b"413"),
        (f"Content-Length: {MAX_BODY_BYTES + 1}", b"413"),
        ("Transfer-Encoding: chunked", b"411"),
        ("Content-Length: lots", b"400"),
        ("Content-Length: -5", b"400"),
    ],
)
def test_a_body_too_large_or_without_a_usable_length_is_refused_before_reading(server, header, status):
    started = time.monotonic()
    _, answer = raw_request(server, f"POST {PATH} HTTP/1.1\r\nHost: x\r\n{header}")
    assert answer.split(b" ")[1] == status, answer
    assert time.monotonic() - started < 1.5, "answered at once, without waiting for a body"


def test_a_body_shorter_than_announced_is_refused(server):
    client, _ = raw_request(server, f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 100", b"{}", read=False)
    client.shutdown(socket.SHUT_WR)  # two bytes, then nothing more can come
    answer = b""
    while chunk := client.recv(1024):
        answer += chunk
    client.close()
    assert answer.startswith(b"HTTP/1.0 400"), answer


def test_many_deliveries_at_once_are_each_applied_once(server, ledger):
    fees = [unpaid_fee(ledger) for _ in range(24)]
    bodies = [paid_event(fee, number) for number, fee in enumerate(fees)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda body: deliver(server, body), bodies + bodies))
    assert all(answer.startswith(b"HTTP/1.0 200") for answer in answers), [a[:40] for a in answers if not a.startswith(b"HTTP/1.0 200")]
    for fee in fees:
        stored = ledger.action(fee.id)
        assert stored.context["payment_status"] == "paid"
        assert [entry["note"] for entry in ledger.action_log(fee.id)].count("paid through Stripe (payment_intent.succeeded)") == 1


def test_a_request_trickled_a_byte_at_a_time_is_dropped_when_its_time_is_up(ledger):
    # A socket timeout alone applies to each read: a byte every 0.3 s would keep the thread
    # for as long as the client likes (about 100 days for a 1 MB body at 10 s per read).
    server = serve(applier(ledger), SECRET, port=0, timeout=0.5)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        connection = socket.create_connection(server.server_address[:2], timeout=5)
        connection.sendall(f"POST {PATH} HTTP/1.1\r\nHost: x\r\nStripe-Signature: t=1,v1=00\r\nContent-Length: 1000\r\n\r\n".encode())
        connection.settimeout(0.01)
        started, dropped_after = time.monotonic(), None
        while time.monotonic() - started < 4.0:
            try:
                connection.sendall(b"x")
                if connection.recv(1024) == b"":
                    dropped_after = time.monotonic() - started
                    break
            except TimeoutError:
                pass  # nothing from the server yet: it is still reading
            except OSError:
                dropped_after = time.monotonic() - started
                break
            time.sleep(0.3)
        connection.close()
        assert dropped_after is not None and dropped_after < 2.0, "the server kept reading a trickled request past its time"
    finally:
        server.shutdown()
        server.server_close()


def test_connections_beyond_the_limit_are_answered_503_and_the_next_delivery_still_lands(ledger):
    server = serve(applier(ledger), SECRET, port=0, timeout=3.0, max_connections=4)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    idle = []
    try:
        for _ in range(4):  # four clients that connect and say nothing hold every slot
            idle.append(socket.create_connection(server.server_address[:2], timeout=5))
        time.sleep(0.2)
        _, answer = raw_request(server, f"POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 0")
        assert answer.startswith(b"HTTP/1.1 503"), answer[:40]
        for connection in idle:
            connection.close()
        fee = unpaid_fee(ledger)
        deadline = time.monotonic() + 5
        while True:  # the slots come back as the idle connections end
            answer = deliver(server, paid_event(fee, 1))
            if not answer.startswith(b"HTTP/1.1 503") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert answer.startswith(b"HTTP/1.0 200"), answer[:40]
        assert ledger.action(fee.id).context["payment_status"] == "paid"
    finally:
        for connection in idle:
            connection.close()
        server.shutdown()
        server.server_close()
