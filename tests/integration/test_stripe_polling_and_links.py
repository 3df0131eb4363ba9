"""The engine's optional payment features with the Stripe provider against localstripe:
polling fees clients pay through their link (no webhooks needed), and the card-setup link
a booking email carries."""

from __future__ import annotations

from datetime import UTC, datetime

from integration.memory import MemoryCalendar, MemoryMailer
from integration.record_only import RecordOnlyProvider
from integration.stripe_provider import open_provider
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import ActionState
from slotguard.payments.card_setup import card_setup_link_for
from slotguard.payments.poll import poll_unpaid
from slotguard.policies.loading import load_enabled
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.integration.test_stripe_provider import page_is_live
from tests.support.builders import settings as practice_with_fee_policies
from tests.support.stripe_fixtures import make_action


def unpaid_fee(provider, ledger, email="ana@example.com"):
    """A fee whose off-session charge could not be made (no card): done, unpaid, with a link."""
    fee = make_action("charge", "450 NOK", email=email)
    result = provider.execute(fee)
    assert result.status == "needs_client_action"
    fee.state, fee.external_id = ActionState.DONE, result.external_id
    fee.context.update({"payment_status": "unpaid", "payment_link": result.payment_link, "provider_detail": result.detail})
    ledger.add_action(fee)
    return fee


def test_each_tick_records_a_fee_the_client_paid_through_the_link(tmp_path, stripe_settings, stripe_provider, stripe_proxy):
    settings = stripe_settings(review_window="0m")
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    engine = build_engine(settings, datetime.now(UTC), ledger=ledger, calendars=[(MemoryCalendar("primary"), NullWriteBack())],
                          provider=stripe_provider, mailer=MemoryMailer())
    fee = unpaid_fee(stripe_provider, ledger)

    first = engine.tick(datetime.now(UTC))
    assert "charge:paid" not in first.executed
    assert ledger.action(fee.id).context["payment_status"] == "unpaid"

    stripe_proxy.complete_checkout(fee.context["payment_link"].rsplit("/", 1)[-1], "pm_card_visa")
    second = engine.tick(datetime.now(UTC))

    stored = ledger.action(fee.id)
    assert second.executed["charge:paid"] == 1
    assert stored.context["payment_status"] == "paid" and "provider_detail" not in stored.context
    assert stored.external_id.startswith("pi_"), "a later refund must find the PaymentIntent holding the money"
    lookups = len(stripe_proxy.requests("GET", r"/v1/payment_intents.*"))
    assert "charge:paid" not in engine.tick(datetime.now(UTC)).executed
    assert len(stripe_proxy.requests("GET", r"/v1/payment_intents.*")) == lookups, "a paid fee is not asked about again"
    ledger.close()


def test_polling_skips_record_only_and_survives_stripe_trouble(tmp_path, stripe_settings, stripe_provider, stripe_proxy):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    fee = unpaid_fee(stripe_provider, ledger)
    assert poll_unpaid(ledger, RecordOnlyProvider(), datetime.now(UTC)) == set()

    stripe_proxy.inject("error", method="GET", path=r"/v1/.*", status=500, times=-1)
    offline = open_provider(stripe_settings(), max_network_retries=0)
    assert poll_unpaid(ledger, offline, datetime.now(UTC)) == set()
    assert ledger.action(fee.id).context["payment_status"] == "unpaid"
    ledger.close()


def test_booking_email_link_only_when_a_card_is_needed(stripe_settings, stripe_provider, stripe_proxy, stripe_client_with_card):
    settings = stripe_settings()
    fee_policies = load_enabled(practice_with_fee_policies())  # late_cancel, no_show

    link = card_setup_link_for(stripe_provider, settings, fee_policies, "new@example.com", "New Client")
    assert page_is_live(link)
    assert card_setup_link_for(stripe_provider, settings, fee_policies, "new@example.com") == link, "the open session is reused"

    stripe_client_with_card("ana@example.com")
    assert card_setup_link_for(stripe_provider, settings, fee_policies, "ana@example.com") == "", "a card is on file already"
    assert card_setup_link_for(stripe_provider, settings, [], "bo@example.com") == "", "no policy can charge a fee"
    assert card_setup_link_for(RecordOnlyProvider(), settings, fee_policies, "bo@example.com") == ""
    dry = stripe_settings(dry_run=True)
    assert card_setup_link_for(open_provider(dry), dry, fee_policies, "bo@example.com") == ""

    stripe_proxy.inject("error", method="*", path=r"/v1/.*", status=500, times=-1)
    offline = open_provider(settings, max_network_retries=0)
    assert card_setup_link_for(offline, settings, fee_policies, "cy@example.com") == "", "the email still goes out"


def test_the_booking_confirmation_carries_the_card_link_only_for_clients_without_a_card(
    tmp_path, stripe_proxy, stripe_provider, stripe_client_with_card, monkeypatch
):
    from datetime import timedelta

    from tests.support.builders import event
    from tests.support.stripe_fixtures import KEY_ENV, TEST_KEY

    monkeypatch.setenv(KEY_ENV, TEST_KEY)
    settings = practice_with_fee_policies(
        payments={"provider": "stripe", "secret_key": {"env": KEY_ENV}, "api_base": stripe_proxy.base_url}
    )
    stripe_client_with_card("ana@example.com")
    calendar, mailer = MemoryCalendar("primary"), MemoryMailer()
    now = datetime.now(UTC).replace(microsecond=0)
    calendar.put(event("e1", now + timedelta(days=3)), now)
    calendar.put(event("e2", now + timedelta(days=3, hours=2), client="new@example.com", name="New Client"), now)
    engine = build_engine(settings, now, ledger=Ledger(tmp_path / "l.sqlite3"), calendars=[(calendar, NullWriteBack())],
                          provider=stripe_provider, mailer=mailer)
    engine.tick(now)
    bodies = {m["To"].addresses[0].addr_spec: m.get_body(("plain",)).get_content() for m in mailer.sent.values()}
    assert set(bodies) == {"ana@example.com", "new@example.com"}
    assert "/c/pay/" not in bodies["ana@example.com"], "Ana has a card on file"
    link = next(word for word in bodies["new@example.com"].split() if "/c/pay/" in word)
    assert page_is_live(link)


def test_each_reminder_carries_a_fresh_card_link_while_the_client_has_no_card(
    tmp_path, stripe_proxy, stripe_provider, stripe_client_with_card, monkeypatch
):
    """The confirmation's card-setup link lasts 24 hours; a reminder two days later brings
    one that works, and stops once the client has saved a card."""
    from datetime import timedelta

    from tests.support.builders import event
    from tests.support.stripe_fixtures import KEY_ENV, TEST_KEY

    monkeypatch.setenv(KEY_ENV, TEST_KEY)
    settings = practice_with_fee_policies(
        payments={"provider": "stripe", "secret_key": {"env": KEY_ENV}, "api_base": stripe_proxy.base_url},
        mail={"quiet_hours": ""},  # `now` is the wall clock: a run in the evening would hold the reminders till morning
    )
    calendar, mailer = MemoryCalendar("primary"), MemoryMailer()
    now = datetime.now(UTC).replace(microsecond=0)
    start = now + timedelta(days=5)
    calendar.put(event("e1", start, client="new@example.com", name="New Client"), now)
    engine = build_engine(settings, now, ledger=Ledger(tmp_path / "l.sqlite3"), calendars=[(calendar, NullWriteBack())],
                          provider=stripe_provider, mailer=mailer)

    def links_in_reminders() -> list[str]:
        found = []
        for message in mailer.sent.values():
            if message["Subject"].startswith("Reminder"):
                body = message.get_body(("plain",)).get_content()
                found.append(next((word for word in body.split() if "/c/pay/" in word), ""))
        return found

    engine.tick(now)
    engine.tick(start - timedelta(hours=48) + timedelta(minutes=1))
    [first] = links_in_reminders()
    assert first and page_is_live(first)
    stripe_proxy.complete_checkout(first.rsplit("/", 1)[-1], "pm_card_visa")  # the client saves a card

    engine.tick(start - timedelta(hours=24) + timedelta(minutes=1))
    assert links_in_reminders() == [first, ""], "no link once a card is on file"
