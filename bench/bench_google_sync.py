"""How much Google Calendar traffic Slotguard's sync costs, measured against the local fake.

Prints:
  (a) API requests per idle tick per calendar (target: exactly 1);
  (b) for one calendar of --big-calendar events over --ticks ticks with --changes changes
      each: requests and bytes of our incremental sync versus a naive poller that lists
      the whole window every tick (with Google's default page size, and with 2500);
  (c) wall time and peak RSS (resource.getrusage) of the first full sync of --calendars
      calendars x --events events. The fake runs in a child process here, so the RSS is
      Slotguard's side alone.

Numbers only; nothing is asserted. Run: .venv/bin/python bench/bench_google_sync.py
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httplib2  # noqa: E402
from google.oauth2.credentials import Credentials  # noqa: E402
from google_auth_httplib2 import AuthorizedHttp  # noqa: E402
from googleapiclient.discovery import build  # noqa: E402

from integration.google_auth import SCOPE_OWNED  # noqa: E402
from integration.google_calendar import open_calendars  # noqa: E402
from slotguard.config.schema import parse_settings  # noqa: E402
from tests.support.fake_google_calendar import FakeGoogleCalendar  # noqa: E402

NOW = datetime(2026, 11, 23, 11, 0, tzinfo=timezone.utc)


def booking(n: int, start: datetime) -> dict:
    return {"summary": f"Session {n} with client {n % 97}", "description": f"email: client{n % 97}@example.com",
            "start": {"dateTime": start.isoformat(), "timeZone": "Europe/Oslo"},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "Europe/Oslo"},
            "attendees": [{"email": f"client{n % 97}@example.com", "responseStatus": "accepted"}]}


def settings_for(calendar_ids: list[str], endpoint: str):
    return parse_settings({
        "practice": {"name": "Bench", "email": "bench@example.com", "timezone": "Europe/Oslo", "currency": "NOK"},
        "calendar": {"source": "google", "calendar_ids": calendar_ids, "api_endpoint": endpoint},
        "services": {"default": {"price": "900 NOK"}},
    })


def credentials_for(fake: FakeGoogleCalendar) -> Credentials:
    return Credentials(token=fake.issue_access_token([SCOPE_OWNED]), refresh_token="unused", token_uri=fake.token_uri,
                       client_id=fake.client_id, client_secret=fake.client_secret, scopes=[SCOPE_OWNED],
                       expiry=datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(hours=2))


def traffic(fake: FakeGoogleCalendar) -> tuple[int, int]:
    calls = fake.api_requests()
    return len(calls), sum(r.bytes_in + r.bytes_out for r in calls)


def idle_ticks(fake: FakeGoogleCalendar, calendars: int = 3, ticks: int = 5) -> float:
    ids = [f"idle{n}@group.calendar.google.com" for n in range(calendars)]
    for cid in ids:
        for n in range(50):
            fake.put_event(cid, booking(n, NOW + timedelta(hours=n)))
    pairs = open_calendars(settings_for(ids, fake.api_endpoint), credentials=credentials_for(fake))
    tokens = {source.calendar_id: list(source.pages(None, NOW))[-1].next_sync_token for source, _ in pairs}
    fake.reset_requests()
    for _ in range(ticks):
        for source, _ in pairs:
            tokens[source.calendar_id] = list(source.pages(tokens[source.calendar_id], NOW))[-1].next_sync_token
    return len(fake.api_requests()) / (calendars * ticks)


def busy_calendar(fake: FakeGoogleCalendar, size: int, ticks: int, changes: int) -> None:
    cid = "busy@group.calendar.google.com"
    ids = [fake.put_event(cid, booking(n, NOW + timedelta(hours=2 * n - 300)))["id"] for n in range(size)]
    (source, _), = open_calendars(settings_for([cid], fake.api_endpoint), credentials=credentials_for(fake))
    naive_http = AuthorizedHttp(credentials_for(fake), http=httplib2.Http())
    naive_service = build("calendar", "v3", http=naive_http, static_discovery=True, cache_discovery=False,
                          client_options={"api_endpoint": fake.api_endpoint})
    window = {"timeMin": (NOW - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "timeMax": (NOW + timedelta(days=180)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    fake.reset_requests()
    token = list(source.pages(None, NOW))[-1].next_sync_token
    first_requests, first_bytes = traffic(fake)
    rng = random.Random(7)
    totals = {"ours": [0, 0, 0], "naive, default page size (250)": [0, 0, 0], "naive, maxResults=2500": [0, 0, 0]}
    for tick in range(ticks):
        for _ in range(changes):
            fake.modify_event(cid, rng.choice(ids), colorId=str(rng.randint(1, 11)))
        fake.reset_requests()
        pages = list(source.pages(token, NOW))
        seen, token = sum(len(page.events) for page in pages), pages[-1].next_sync_token
        requests, sent = traffic(fake)
        totals["ours"] = [totals["ours"][0] + requests, totals["ours"][1] + sent, totals["ours"][2] + seen]
        for label, page_size in (("naive, default page size (250)", None), ("naive, maxResults=2500", 2500)):
            fake.reset_requests()
            seen = naive_list(naive_service, cid, window, page_size)
            requests, sent = traffic(fake)
            row = totals[label]
            totals[label] = [row[0] + requests, row[1] + sent, row[2] + seen]
    print(f"(b) one calendar of {size} events, {ticks} ticks, {changes} changes per tick")
    print(f"    first full sync (once): {first_requests} request(s), {first_bytes / 1e6:.2f} MB")
    ours_requests, ours_bytes = totals["ours"][0], totals["ours"][1]
    for label, (requests, size_bytes, events) in totals.items():
        ratio = "" if label == "ours" else f"   -> ours uses {requests / ours_requests:.1f}x fewer requests, {size_bytes / ours_bytes:.0f}x fewer bytes"
        print(f"    {label:32s} {requests:6d} requests {size_bytes / 1e6:9.2f} MB {events:8d} events{ratio}")


def naive_list(service, calendar_id: str, window: dict, page_size: int | None) -> int:
    """List the whole window, every page, as a poller without sync tokens would."""
    seen, page_token = 0, None
    while True:
        params = dict(calendarId=calendar_id, singleEvents=True, **window)
        if page_size:
            params["maxResults"] = page_size
        if page_token:
            params["pageToken"] = page_token
        response = service.events().list(**params).execute()
        seen += len(response.get("items", []))
        page_token = response.get("nextPageToken")
        if not page_token:
            return seen


def _serve_population(calendars: int, events: int, pipe) -> None:
    """Child process: fill a fake with calendars x events and serve it until told to stop."""
    fake = FakeGoogleCalendar(require_auth=True)
    for c in range(calendars):
        cid = f"practice{c}@group.calendar.google.com"
        for n in range(events):
            fake.put_event(cid, booking(n, NOW + timedelta(hours=3 * n - 400)))
    fake.start()
    token = fake.issue_access_token([SCOPE_OWNED], lifetime=86400)
    pipe.send((fake.api_endpoint, fake.token_uri, token, fake.client_id, fake.client_secret))
    pipe.recv()
    pipe.send(traffic(fake))
    fake.stop()


def first_full_sync(calendars: int, events: int) -> None:
    context = multiprocessing.get_context("fork")
    here, there = context.Pipe()
    child = context.Process(target=_serve_population, args=(calendars, events, there), daemon=True)
    started = time.monotonic()
    child.start()
    endpoint, token_uri, token, client_id, client_secret = here.recv()
    print(f"(c) fake filled with {calendars} calendars x {events} events in {time.monotonic() - started:.1f} s (child process)")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    credentials = Credentials(token=token, refresh_token="unused", token_uri=token_uri, client_id=client_id,
                              client_secret=client_secret, scopes=[SCOPE_OWNED],
                              expiry=datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(hours=2))
    ids = [f"practice{c}@group.calendar.google.com" for c in range(calendars)]
    started = time.monotonic()
    pairs = open_calendars(settings_for(ids, endpoint), credentials=credentials)
    total = 0
    for source, _ in pairs:
        for page in source.pages(None, NOW):
            total += len(page.events)  # the engine would commit the page here and drop it
    elapsed = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    here.send("stop")
    requests, size = here.recv()
    child.join(timeout=30)
    print(f"    first full sync: {total} events from {calendars} calendars in {elapsed:.1f} s "
          f"({total / elapsed:,.0f} events/s), {requests} requests, {size / 1e6:.0f} MB")
    print(f"    peak RSS of Slotguard's process: {peak:.0f} MB (before the sync: {before:.0f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calendars", type=int, default=1000)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--big-calendar", type=int, default=2000)
    parser.add_argument("--ticks", type=int, default=100)
    parser.add_argument("--changes", type=int, default=3)
    args = parser.parse_args()
    first_full_sync(args.calendars, args.events)  # first, so the peak RSS is this part's
    with FakeGoogleCalendar(require_auth=True) as fake:
        print(f"(a) API requests per idle tick per calendar: {idle_ticks(fake):g}")
    with FakeGoogleCalendar(require_auth=True) as fake:
        busy_calendar(fake, args.big_calendar, args.ticks, args.changes)


if __name__ == "__main__":
    main()
