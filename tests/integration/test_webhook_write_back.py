"""A payment Stripe reports through a webhook reaches the event's status note at the next
tick: localstripe delivers a signed event to the webhook server (its own ledger connection,
as `main.py webhook-server` is its own process), and the daemon's next tick writes the note
onto the fake Google calendar through the real google-api-python-client."""

from __future__ import annotations

import threading
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from integration.google_calendar import open_calendars
from integration.outbox_dir import OutboxDirMailer
from integration.stripe_provider import open_provider
from integration.stripe_webhooks import serve, update_for
from slotguard.domain.model import ActionKind, ActionState
from slotguard.payments.webhook_updates import applier, apply_update
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import settings as practice_settings
from tests.support.stripe_fixtures import KEY_ENV, TEST_KEY, make_action

SECRET = "whsec_test_slotguard"
EVENT_ID = "ana1"


def no_show(start: datetime) -> dict:
    """The practitioner's own event coloured tomato (a no-show); the client named by an
    `email:` line, not invited, so the status note is written into the description."""
    return {
        "id": EVENT_ID, "summary": "Massage", "colorId": "11",
        "description": "email: ana@example.com",
        "start": {"dateTime": start.isoformat(), "timeZone": "Europe/Oslo"},
        "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "Europe/Oslo"},
        "organizer": {"email": "lena@example.com", "self": True},
    }


@pytest.fixture
def webhooks(stripe_localstripe):
    """Point localstripe's webhook deliveries at `url` for `events`; pointed away afterwards."""
    register = f"{stripe_localstripe.base_url}/_config/webhooks/slotguard-write-back"

    def configure(url: str, events: list[str]) -> None:
        form = [("url", url), ("secret", SECRET)] + [(f"events[{i}]", e) for i, e in enumerate(events)]
        urllib.request.urlopen(register, data=urllib.parse.urlencode(form).encode(), timeout=5).close()

    yield configure
    configure("http://127.0.0.1:9/unused", ["slotguard.none"])


def test_a_fee_paid_through_its_link_shows_paid_on_the_event_after_the_webhook(
    tmp_path, monkeypatch, google_fake, google_credentials, stripe_proxy, webhooks
):
    monkeypatch.setenv(KEY_ENV, TEST_KEY)
    now = datetime.now(UTC).replace(microsecond=0)
    settings = practice_settings(
        calendar={"source": "google", "calendar_ids": ["primary"], "api_endpoint": google_fake.api_endpoint},
        payments={"provider": "stripe", "secret_key": {"env": KEY_ENV}, "api_base": stripe_proxy.base_url,
                  "review_window": "0m", "charge_from": now - timedelta(days=1)},
        policies={"enabled": ["no_show"]},
        storage={"data_dir": str(tmp_path / "data")},
        mail={"quiet_hours": ""},  # on the real clock, quiet hours would make when fees and emails go depend on the hour the tests run
    )
    ledger_path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(ledger_path)
    provider = open_provider(settings, timeout_seconds=2.0, backoff_seconds=0.01, rate_per_second=1000)
    calendars = open_calendars(settings, credentials=google_credentials(), retry_budget=0, sleep=lambda s: None)
    engine = build_engine(settings, now, ledger=ledger, calendars=calendars, provider=provider, mailer=OutboxDirMailer(tmp_path / "outbox"))
    google_fake.put_event("primary", no_show(now - timedelta(hours=3)))

    # No card on file: the fee is charged as a payment link, and the note says so.
    engine.tick(now)
    [fee] = ledger.actions(kinds=[ActionKind.CHARGE])
    assert (fee.state, fee.context["payment_status"]) == (ActionState.DONE, "unpaid")
    assert "not paid yet" in google_fake.get_event("primary", EVENT_ID)["description"]

    webhook_ledger = Ledger(ledger_path)
    server = serve(applier(webhook_ledger), SECRET, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        webhooks(f"http://127.0.0.1:{server.server_address[1]}/stripe/webhook", ["payment_intent.succeeded"])
        stripe_proxy.complete_checkout(fee.context["payment_link"].rsplit("/", 1)[-1], "pm_card_visa")
        deadline = time.monotonic() + 10
        while ledger.action(fee.id).context.get("payment_status") != "paid":
            assert time.monotonic() < deadline, "localstripe did not deliver payment_intent.succeeded"
            time.sleep(0.1)
    finally:
        server.shutdown()
        server.server_close()
        webhook_ledger.close()

    engine.tick(datetime.now(UTC) + timedelta(seconds=1))

    description = google_fake.get_event("primary", EVENT_ID)["description"]
    assert "Slotguard: no-show fee 900.00 NOK charged" in description and "not paid yet" not in description
    assert description.startswith("email: ana@example.com")
    assert ledger.pending_write_backs() == []
    ledger.close()


def test_only_a_change_of_payment_status_asks_for_the_note_to_be_rewritten(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    paid_at = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    fee = make_action("charge", "450 NOK")
    fee.state, fee.external_id = ActionState.DONE, "pi_1"
    fee.context["payment_status"] = "pending"
    ledger.add_action(fee)

    def deliver(event_id: str, kind: str, obj: dict) -> str:
        body = {"id": event_id, "type": kind, "data": {"object": {"metadata": {"slotguard_action_id": fee.id}, **obj}}}
        return apply_update(ledger, update_for(body), paid_at)

    # A dispute or a refund does not change what the note says: nothing to rewrite.
    deliver("evt_d", "charge.dispute.created", {"payment_intent": "pi_1", "amount": 45000, "currency": "nok"})
    assert ledger.pending_write_backs() == []
    # The charge failed after all: the note must now say "not paid yet".
    deliver("evt_f", "payment_intent.payment_failed", {"id": "pi_1", "last_payment_error": {"code": "card_declined"}})
    [pending] = ledger.pending_write_backs()
    assert (pending["calendar_id"], pending["event_id"], pending["attempts"]) == ("primary", "evt-1", 0)
    assert pending["due_at"] == "2026-03-02T12:00:00Z"
    ledger.write_back_done("primary", "evt-1")
    # Paid: rewritten again; the same event delivered twice asks nothing more.
    deliver("evt_p", "payment_intent.succeeded", {"id": "pi_2", "amount": 45000, "currency": "nok"})
    assert len(ledger.pending_write_backs()) == 1
    ledger.write_back_done("primary", "evt-1")
    assert deliver("evt_p", "payment_intent.succeeded", {"id": "pi_2"}) == "duplicate"
    assert ledger.pending_write_backs() == []
    ledger.close()
