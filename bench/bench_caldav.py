"""How much CalDAV traffic Slotguard's sync costs, measured against a real Radicale.

Prints requests and bytes (sent, received: bodies and headers, as integration/caldav_http.py
counts them) for:
  - the first sync of a calendar of --events events (discovery included, and without it);
  - an idle tick (target: 1 request);
  - a tick after one event changed;
  - an idle tick against a server without sync-collection (ETag comparison).
`measure()` returns the same numbers for bench/bench_sources.py's side-by-side table.

Numbers only; nothing is asserted. Run: .venv/bin/python bench/bench_caldav.py [--events 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from integration.caldav_source import open_calendar  # noqa: E402
from tests.integration.caldav_helpers import NOW, PASSWORD_ENV, at, caldav_settings, new_calendar, stamp  # noqa: E402
from tests.support.dav_proxy import DavProxy, Fault  # noqa: E402
from tests.support.radicale_server import RadicaleServer, event  # noqa: E402


def _counted(client, run) -> dict:
    before = (client.requests, client.bytes_sent, client.bytes_received)
    started = time.perf_counter()
    result = run()
    return {"requests": client.requests - before[0], "sent": client.bytes_sent - before[1],
            "received": client.bytes_received - before[2], "seconds": round(time.perf_counter() - started, 3), "result": result}


def _drain(source, token):
    events, out = [], token
    for page in source.pages(token, NOW):
        events += page.events
        out = page.next_sync_token or out
    return len(events), out


def measure(events: int = 2000) -> dict[str, dict]:
    """{"first sync": {...}, "idle tick": {...}, ...} with requests, sent, received, seconds."""
    server = RadicaleServer().start()
    proxy = None
    try:
        os.environ[PASSWORD_ENV] = server.password
        path, name = new_calendar(server)
        for n in range(events):
            start = at(days=-20 + (n * 190 / events), hours=0)
            uid = f"ev{n}"
            server.store_directly(path, uid, event(uid, stamp(start), stamp(start + timedelta(hours=1)), f"Session {n}",
                                                   attendees=(f"PARTSTAT=ACCEPTED;CN=Client {n % 97}:mailto:client{n % 97}@example.com",)))
        folder = Path(tempfile.mkdtemp(prefix="bench-caldav-"))
        settings = caldav_settings(folder, server.url, name, caldav={"timeout": "60s"})
        source, _ = open_calendar(settings)
        client = source.client
        found: dict[str, dict] = {}
        first = _counted(client, lambda: _drain(source, None))
        found[f"first sync, {events} events (with discovery)"] = first
        count, token = first["result"]
        again = _counted(client, lambda: _drain(source, None))
        found[f"first sync, {events} events (discovery remembered)"] = again
        token = again["result"][1]
        idle = _counted(client, lambda: _drain(source, token))
        found["idle tick"] = idle
        text, etag = server.get(path, "ev5")
        server.put(path, "ev5", text.replace("SUMMARY:Session 5", "SUMMARY:Session 5 #noshow"), etag)
        changed = _counted(client, lambda: _drain(source, token))
        found["tick after one change"] = changed
        # A server without sync-collection: the proxy takes it out of supported-report-set.
        proxy = DavProxy(server.url).start()
        proxy.faults.append(Fault("rewrite", method="PROPFIND", times=-1,
                                  rewrite=lambda body: body.replace(b"<supported-report><report><sync-collection /></report></supported-report>", b"")))
        etags_settings = caldav_settings(Path(tempfile.mkdtemp(prefix="bench-caldav-")), proxy.url, name, caldav={"timeout": "60s"})
        etag_source, _ = open_calendar(etags_settings)
        token = _drain(etag_source, None)[1]
        found["idle tick, no sync-collection (ETags)"] = _counted(etag_source.client, lambda: _drain(etag_source, token))
        return found
    finally:
        if proxy is not None:
            proxy.stop()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()
    print(f"CalDAV (Radicale 3.9 on loopback), {args.events} events in the window")
    print(f"{'what':52} {'requests':>8} {'sent B':>9} {'received B':>11} {'seconds':>8}")
    for what, numbers in measure(args.events).items():
        print(f"{what:52} {numbers['requests']:>8} {numbers['sent']:>9} {numbers['received']:>11} {numbers['seconds']:>8}")


if __name__ == "__main__":
    main()
