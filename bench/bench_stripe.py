#!/usr/bin/env python3
"""Charges per second through the Stripe provider against localstripe.

Starts localstripe (tests/support/localstripe_server.py) and the test proxy in front of it
(it fills localstripe's gaps the provider relies on: PaymentIntent listing by customer),
creates --clients customers with a saved card, then times --charges off-session fees:

  1. sequential, and --threads threads, with no client-side limit (the stack's own speed:
     localstripe is one asyncio process, so threads help little on 2 cores);
  2. sequential under the test-mode limiter (25 requests/s);
  3. --threads threads under the test-mode limiter;
  4. --threads threads under the live-mode limiter (100 requests/s).

A fee costs three requests once the customer is known (lookup of earlier attempts, the
card on file, the create),
so the limiter caps fees per second well below requests per second; rows 2-4 show that
the limiter, not localstripe, sets the pace and that Stripe's limits would be respected.
Next to the average requests per second, "worst 1s" is the most requests that reached the
proxy in any one-second window (what Stripe's own limiter counts): under a limiter it must
never be above the limit. Numbers only; nothing is asserted.
Run: .venv/bin/python bench/bench_stripe.py
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import stripe  # noqa: E402

from integration.stripe_provider import open_provider  # noqa: E402
from tests.support.stripe_fixtures import KEY_ENV, TEST_KEY, make_action, settings_for, start_localstripe  # noqa: E402
from tests.support.stripe_proxy import StripeProxy  # noqa: E402


def run(provider, actions, threads: int, proxy: StripeProxy) -> tuple[float, float, int, int]:
    """Execute `actions`; return (fees per second, requests per second, the most requests
    in any one-second window at the proxy, fees not done)."""
    before = len(proxy.exchanges)
    since = time.monotonic()
    start = time.perf_counter()
    if threads == 1:
        results = [provider.execute(action) for action in actions]
    else:
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(provider.execute, actions))
    elapsed = time.perf_counter() - start
    requests = len(proxy.exchanges) - before
    return len(actions) / elapsed, requests / elapsed, proxy.busiest_second(since), sum(r.status != "done" for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--charges", type=int, default=100)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    server = start_localstripe(Path(tempfile.mkdtemp()) / "localstripe.log")
    proxy = StripeProxy(server.base_url).start()
    try:
        os.environ[KEY_ENV] = TEST_KEY
        admin = stripe.StripeClient(TEST_KEY, base_addresses={"api": server.base_url})
        emails = [f"client{i}@example.com" for i in range(args.clients)]

        def fresh_clients() -> None:
            # localstripe slows down as its store grows, so every run starts from empty.
            request = urllib.request.Request(f"{server.base_url}/_config/data", method="DELETE")
            urllib.request.urlopen(request, timeout=10).close()
            proxy.reset()
            for email in emails:
                customer = admin.v1.customers.create({"email": email, "metadata": {"slotguard_client": email}})
                card = admin.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
                admin.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": card.id}})

        settings = settings_for(proxy.base_url)

        def fees():
            return [make_action("charge", "450 NOK", email=emails[i % len(emails)]) for i in range(args.charges)]

        rows = [
            ("sequential, no limiter", 1, 10_000.0),
            (f"{args.threads} threads, no limiter", args.threads, 10_000.0),
            ("sequential, test limiter 25 req/s", 1, None),
            (f"{args.threads} threads, test limiter 25 req/s", args.threads, None),
            (f"{args.threads} threads, live limiter 100 req/s", args.threads, 100.0),
        ]
        print(f"{args.charges} off-session fees over {args.clients} clients (localstripe behind the test proxy)")
        print(f"{'run':<40} {'fees/s':>8} {'requests/s':>11} {'worst 1s':>9} {'not done':>9}")
        for label, threads, rate in rows:
            fresh_clients()
            provider = open_provider(settings, rate_per_second=rate)
            for email in emails:  # warm the customer cache, as a long-running daemon has it
                provider.customers.customer_id(email)
            per_second, requests, worst, failed = run(provider, fees(), threads, proxy)
            print(f"{label:<40} {per_second:>8.1f} {requests:>11.1f} {worst:>9} {failed:>9}")
    finally:
        proxy.stop()
        server.stop()


if __name__ == "__main__":
    main()
