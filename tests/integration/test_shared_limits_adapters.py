"""The shared limits on the wire: Stripe through localstripe and its fault proxy, Google through
the Calendar wire fake, each adapter opened by slotguard/run/wiring.py with a practice's gates
from a deployment (SharedLimits.practice_gates), as a worker opens them.

What is counted is what the services count: requests as they arrive at the proxy or the fake.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from integration.google_auth import save_credentials, token_path
from slotguard.config.deployment import Limits
from slotguard.domain.interfaces import Gates, RateGate
from slotguard.run.wiring import open_calendars, open_provider
from slotguard.store.shared_limits import SharedLimits
from tests.support.stripe_fixtures import intents_for_action, make_action

OSLO = ZoneInfo("Europe/Oslo")
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=OSLO)


class CountingGate:
    """A gate that counts the starts it hands out (to compare with the requests that arrived)."""

    def __init__(self, gate: RateGate):
        self.gate, self.taken = gate, 0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        with self._lock:
            self.taken += 1
        return self.gate.acquire()


def counted(gates: Gates, counters: list[CountingGate]) -> Gates:
    """`gates` with every gate, the ones made for a Stripe account too, counting its starts."""
    def wrap(gate: RateGate) -> RateGate:
        counters.append(CountingGate(gate))
        return counters[-1]

    stripe = gates.stripe
    assert stripe is not None
    return Gates(google=tuple(wrap(gate) for gate in gates.google),
                 stripe=lambda secret, mode: wrap(stripe(secret, mode)))


@pytest.fixture
def shared(pg_url, pg_schema):
    # A margin far wider than the 50 ms default: on this test machine, shared by many processes,
    # a thread may wake from its sleep, or its request reach the wire, a few hundred ms late,
    # and a start used late can fall closer to the next one than the spacing (the margin is
    # what covers that; docs/deploy.md#7-limits-shared-by-all-workers).
    limits = SharedLimits(pg_url, schema=pg_schema, margin=0.4)
    yield limits
    limits.close()


def run_together(*jobs: Callable[[], Any]) -> list[Any]:
    """Run the jobs in threads at once (two practices on two workers); return their results,
    re-raising the first failure."""
    results: list[Any] = [None] * len(jobs)
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            results[index] = jobs[index]()
        except BaseException as error:  # noqa: BLE001 - handed to the test below
            failures.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if failures:
        raise failures[0]
    return results


def test_two_stripe_providers_sharing_an_account_stay_under_its_rate_and_all_succeed(
    shared, stripe_settings, stripe_client_with_card, stripe_proxy, stripe_admin
):
    rate = 8
    limits = Limits(stripe_test_per_second=rate)
    counters: list[CountingGate] = []
    providers = [open_provider(stripe_settings(), counted(shared.practice_gates(limits, practice), counters))
                 for practice in ("lena", "ola")]
    counters = [counter for counter in counters if counter.gate.keys[0].startswith("stripe:")]
    assert len(counters) == 2 and counters[0].gate.keys == counters[1].gate.keys, "one Stripe account, one key"
    emails = [f"client{n}@example.com" for n in range(6)]
    for email in emails:
        stripe_client_with_card(email)
    since = time.monotonic()

    def charge(provider: Any, mine: list[str]) -> list[tuple[str, str]]:
        done = []
        for email in mine:
            action = make_action("charge", "450 NOK", email=email)
            done.append((action.id, provider.execute(action).status))
        return done

    results = run_together(lambda: charge(providers[0], emails[:3]), lambda: charge(providers[1], emails[3:]))

    outcomes = [outcome for done in results for outcome in done]
    assert [status for _, status in outcomes] == ["done"] * 6
    assert all(len(intents_for_action(stripe_admin, action_id)) == 1 for action_id, _ in outcomes)
    arrived = [exchange for exchange in stripe_proxy.exchanges if exchange.at >= since]
    assert len(arrived) == sum(counter.taken for counter in counters), "every request on the wire took a start"
    assert len(arrived) > 2 * rate, "enough requests that an unshared limit would have let two accounts' worth through"
    times = sorted(exchange.at for exchange in arrived)
    assert stripe_proxy.busiest_second(since) <= rate, f"arrivals {[round(t - since, 3) for t in times]}"


def test_google_calls_of_two_practices_are_paced_by_the_shared_project_quota_and_none_is_lost(
    shared, google_fake, google_settings, google_credentials, tmp_path
):
    per_minute = 120  # one start every 0.5 s for the whole deployment
    limits = Limits(google_project_per_minute=per_minute, google_user_per_minute=600)
    arrivals: list[float] = []
    handle = google_fake.handle

    def timed(method: str, path: str, *rest: Any) -> Any:
        if path.startswith("/calendar/"):
            arrivals.append(time.monotonic())
        return handle(method, path, *rest)

    google_fake.handle = timed
    google_fake.page_size_cap = 2  # three pages for six events: several calls per sync
    counters: list[CountingGate] = []
    sources = {}
    for practice in ("lena", "ola"):
        calendar = f"{practice}@group.calendar.google.com"
        settings = google_settings(calendar_ids=[calendar])
        settings = settings.model_copy(update={"storage": settings.storage.model_copy(update={"data_dir": str(tmp_path / practice)})})
        save_credentials(google_credentials(), token_path(settings))
        for n in range(6):
            google_fake.put_event(calendar, {"summary": f"{practice} {n}",
                                             "start": {"dateTime": (NOW + timedelta(days=1, hours=n)).isoformat()},
                                             "end": {"dateTime": (NOW + timedelta(days=1, hours=n + 1)).isoformat()}})
        (sources[practice], _), = open_calendars(settings, counted(shared.practice_gates(limits, practice), counters))
    google_fake.fail_next(503, times=1)  # a retry is a request too, and takes its start

    def sync(practice: str) -> list[str]:
        pages = list(sources[practice].pages(None, NOW))
        return [event["summary"] for page in pages for event in page.events]

    lena, ola = run_together(lambda: sync("lena"), lambda: sync("ola"))

    assert sorted(lena) == [f"lena {n}" for n in range(6)] and sorted(ola) == [f"ola {n}" for n in range(6)]
    assert len(arrivals) == sum(counter.taken for counter in counters if counter.gate.keys[0] == "google:project") == 7, "3 pages each and one retried call"
    # Unshared, the two practices' calls would arrive milliseconds apart. The bounds leave a
    # quarter of a second for a request to reach the fake late on a busy machine.
    spacing = 60.0 / per_minute
    gaps = [later - earlier for earlier, later in zip(sorted(arrivals), sorted(arrivals)[1:], strict=False)]
    assert min(gaps) > spacing * 0.5, f"two Google calls {min(gaps):.3f}s apart; the shared quota spaces them {spacing}s"
    assert max(arrivals) - min(arrivals) >= 6 * spacing - 0.25, "seven calls take at least six spacings"
