"""The card-setup email and page (issue 13, item 11): a deposit is mentioned only when a deposit
policy asks for one; before the card is saved the client reads, in their language, what the
card may be charged for and when (the policy in short, the review window, that an email always
tells them); the page shows the same words, and when the client completes it the webhook's
record (what the page said, when) is kept once and shown in the evidence pack."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from slotguard.domain.interfaces import AdapterError, CardPage, PaymentUpdate
from slotguard.domain.model import ActionKind, ActionState
from slotguard.features.card_pages import look_up_card_pages
from slotguard.mail.catalogs import translations_for
from slotguard.mail.compose import compose_email
from slotguard.mail.messages import BUNDLED_TEMPLATES, LOCALES, Renderer
from slotguard.payments.card_setup import FETCHED, TERMS_LIMIT, card_terms_text
from slotguard.payments.card_terms import record_card_saved, seen_by
from slotguard.payments.webhook_updates import apply_update
from slotguard.practitioner.evidence import evidence_html
from slotguard.run.email_features import email_extras_hook
from tests.unit.planning.test_policy_planner import MONDAY, K, World, fee_config

LINK = "https://checkout.example.com/c/pay/cs_test_ana"
DEPOSIT_WORD = {"en": "deposit", "nb": "depositum", "da": "depositum", "de": "anzahlung", "pl": "zadat", "he": "מקדמה"}
HOURS = {"en": "12 hours", "nb": "12 timer", "da": "12 timer", "de": "12 Stunden", "pl": "12 godzin", "he": "12 שעות"}


def booked(locale: str, *enabled: str, **tables):
    world = World(**fee_config(*enabled, **tables), mail={"client_locales": {"ana@example.com": locale}})
    _, actions = world.book("b1", MONDAY + timedelta(days=5), at=MONDAY)
    return world, next(action for action in actions if action.template == "booking_confirmation")


def confirmation_with_card_link(locale: str, *enabled: str, **tables) -> tuple[str, str]:
    """The booking confirmation as sent to a client with no card on file (the executor fetched
    a card-setup link before composing it): its text and HTML."""
    world, email = booked(locale, *enabled, **tables)
    renderer = Renderer(world.settings.practice.locale, world.settings.practice.timezone)
    message = compose_email(world.settings, world.policies, renderer, world.ledger, email, MONDAY,
                            extras=email_extras_hook(), fetched={FETCHED: LINK})
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


def card_sentence(locale: str) -> str:
    """The start of the card-terms sentence in the locale (up to its first placeholder)."""
    msgid = ("A saved card is only charged for a fee under our cancellation policy, if you cancel late or do not come. "
             "Before any fee is charged, we look at what happened for %(count)s hour, and you always get an email from us about it.")
    plural = msgid.replace("%(count)s hour,", "%(count)s hours,")
    return translations_for(locale, BUNDLED_TEMPLATES, None).ngettext(msgid, plural, 12).split("%(count)s")[0].split(",")[0]


@pytest.mark.parametrize("locale", LOCALES)
def test_without_a_deposit_policy_the_card_link_never_mentions_a_deposit_and_says_what_the_card_is_for(locale):
    text, html = confirmation_with_card_link(locale, "late_cancel", "no_show")
    for part in (text, html):
        assert LINK in part
        assert DEPOSIT_WORD[locale] not in part.lower(), f"{locale}: a deposit is mentioned but none is asked"
        assert card_sentence(locale) in part, f"{locale}: the card terms are missing"
        assert HOURS[locale] in part, f"{locale}: the review window is missing"


@pytest.mark.parametrize("locale", LOCALES)
def test_with_a_deposit_policy_the_card_link_mentions_the_deposit(locale):
    text, html = confirmation_with_card_link(locale, "late_cancel", "no_show", "deposit")
    for part in (text, html):
        assert DEPOSIT_WORD[locale] in part.lower()
        assert LINK in part and card_sentence(locale) in part


@pytest.mark.parametrize("locale", LOCALES)
def test_a_reminder_with_a_fresh_card_link_says_what_the_card_may_be_charged_for(locale):
    world, confirmation = booked(locale, "late_cancel", "no_show")
    reminder = replace(confirmation, id="act_reminder", template="reminder", context={"offset_hours": 48})
    renderer = Renderer(world.settings.practice.locale, world.settings.practice.timezone)
    message = compose_email(world.settings, world.policies, renderer, world.ledger, reminder, MONDAY,
                            extras=email_extras_hook(), fetched={FETCHED: LINK})
    for part in (message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()):
        assert LINK in part and card_sentence(locale) in part and HOURS[locale] in part


@pytest.mark.parametrize("locale", LOCALES)
def test_the_checkout_page_text_is_the_email_sentence_and_the_policy_in_the_clients_language(locale):
    world, email = booked(locale, "late_cancel", "no_show")
    tracked = world.ledger.tracked(email.calendar_id, email.event_id)
    renderer = Renderer(world.settings.practice.locale, world.settings.practice.timezone)
    text = card_terms_text(world.settings, world.policies, renderer, email, tracked.appointment)
    first, *policy = text.splitlines()
    assert first.startswith(card_sentence(locale)) and HOURS[locale] in first
    assert len(policy) == 3, "both late-cancellation tiers and the no-show line"
    assert len(text) <= TERMS_LIMIT


def test_with_no_review_window_the_card_terms_promise_no_review_time():
    world = World(**fee_config("late_cancel", "no_show"), payments={"review_window": "0m"})
    _, actions = world.book("b1", MONDAY + timedelta(days=5), at=MONDAY)
    email = next(action for action in actions if action.template == "booking_confirmation")
    tracked = world.ledger.tracked(email.calendar_id, email.event_id)
    text = card_terms_text(world.settings, world.policies, Renderer("en", "Europe/Oslo"), email, tracked.appointment)
    assert text.startswith("A saved card is only charged for a fee under our cancellation policy")
    assert "0 hours" not in text and "we look at what happened" not in text
    assert "you always get an email from us about it" in text


def test_the_checkout_page_text_keeps_to_stripes_limit_in_whole_lines():
    tiers = [{"within": f"{hours}h", "fee": f"{100 - hours} NOK"} for hours in range(1, 60)]
    world, email = booked("en", "late_cancel", "no_show", late_cancel={"tiers": tiers})
    tracked = world.ledger.tracked(email.calendar_id, email.event_id)
    renderer = Renderer("en", "Europe/Oslo")
    text = card_terms_text(world.settings, world.policies, renderer, email, tracked.appointment)
    assert len(text) <= TERMS_LIMIT
    assert all(line.startswith(("A saved card", "- Cancelling")) for line in text.splitlines()), "no line cut in half"


TERMS = "A saved card is only charged for a fee under our cancellation policy ..."
SAVED = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)


def card_saved(event_id: str, reference: str = "cs_test_1", card_terms: str = TERMS, client: str = "ana@example.com") -> PaymentUpdate:
    return PaymentUpdate(event_id=event_id, event_type="checkout.session.completed", change="card_saved",
                         client_email=client, card_terms=card_terms, reference=reference, at=SAVED)


def test_a_completed_card_page_is_recorded_once_with_what_it_said_and_when():
    world, _ = booked("en", "late_cancel", "no_show")
    ledger = world.ledger
    now = SAVED + timedelta(minutes=1)
    note = apply_update(ledger, card_saved("evt_1"), now)
    assert "saved a card" in note and "recorded" in note
    assert apply_update(ledger, card_saved("evt_1"), now) == "duplicate"
    # Stripe also reports the SetupIntent: it names no page, and records nothing more.
    apply_update(ledger, PaymentUpdate(event_id="evt_2", event_type="setup_intent.succeeded", change="card_saved",
                                       client_email="ana@example.com"), now)
    with ledger.transaction():
        assert not record_card_saved(ledger, card_saved("evt_3"), now), "the same page reported again"
    [record] = seen_by(ledger, "ANA@example.com ")
    assert (record.reference, record.card_terms, record.saved_at, record.event_id) == ("cs_test_1", TERMS, "2026-03-01T17:30:00Z", "evt_1")
    assert seen_by(ledger, "bo@example.com") == []


def test_the_evidence_pack_shows_what_the_card_page_said_and_when_in_the_practice_zone():
    world = World(**fee_config("late_cancel", "no_show"))
    world.happen(K.NO_SHOW, world.appointment("n1", MONDAY), MONDAY + timedelta(hours=1))
    world.carry_out(MONDAY + timedelta(days=1))
    fee = world.one(ActionKind.CHARGE)
    assert fee.state is ActionState.DONE
    before = evidence_html(world.settings, world.policies, None, world.ledger, fee.id, MONDAY + timedelta(days=2))
    assert "No card-setup page completed by this client is recorded" in before

    apply_update(world.ledger, card_saved("evt_1", card_terms="Only a fee under <our> policy"), MONDAY)
    page = evidence_html(world.settings, world.policies, None, world.ledger, fee.id, MONDAY + timedelta(days=2))
    assert "saved a card on 2026-03-01 18:30 (Europe/Oslo) before the fee was charged" in page
    assert "cs_test_1" in page and "evt_1" in page
    assert "Only a fee under &lt;our&gt; policy" in page, "the page's words, escaped"


class PageProvider:
    """A provider that lists card-setup pages, counting the questions."""

    def __init__(self, pages=(), fail: bool = False):
        self.pages, self.fail, self.asked = list(pages), fail, []

    def completed_card_pages(self, client_email: str):
        self.asked.append(client_email)
        if self.fail:
            raise AdapterError("Stripe is unreachable", retryable=True)
        return self.pages


def charged_world():
    world = World(**fee_config("late_cancel", "no_show"))
    world.happen(K.NO_SHOW, world.appointment("n1", MONDAY), MONDAY + timedelta(hours=1))
    world.carry_out(MONDAY + timedelta(days=1))
    fee = world.one(ActionKind.CHARGE)
    fee.context["payment_status"] = "paid"  # charged to the card on file
    world.ledger.update_action(fee, MONDAY + timedelta(days=1), "paid")
    return world, fee


def test_without_webhooks_a_charged_clients_card_page_is_looked_up_once_and_recorded():
    world, fee = charged_world()
    page = CardPage("cs_test_9", SAVED, TERMS)
    provider = PageProvider([page])
    later = MONDAY + timedelta(days=1, hours=1)
    look_up_card_pages(world.settings, world.ledger, provider, later)
    look_up_card_pages(world.settings, world.ledger, provider, later + timedelta(days=2))
    assert provider.asked == ["ana@example.com"], "asked once: the record is there"
    [record] = seen_by(world.ledger, "ana@example.com")
    assert (record.reference, record.card_terms, record.saved_at) == ("cs_test_9", TERMS, "2026-03-01T17:30:00Z")
    page_html = evidence_html(world.settings, world.policies, None, world.ledger, fee.id, later)
    assert "found by asking Stripe" in page_html and TERMS in page_html
    # A webhook arriving late for the same page adds nothing.
    apply_update(world.ledger, card_saved("evt_late", reference="cs_test_9"), later)
    assert len(seen_by(world.ledger, "ana@example.com")) == 1


def test_a_client_with_no_card_page_is_asked_at_most_once_a_day_and_only_after_a_recent_charge():
    world, fee = charged_world()
    provider = PageProvider([])
    start = MONDAY + timedelta(days=1, hours=1)
    for hours in (0, 1, 23):
        look_up_card_pages(world.settings, world.ledger, provider, start + timedelta(hours=hours))
    assert provider.asked == ["ana@example.com"]
    look_up_card_pages(world.settings, world.ledger, provider, start + timedelta(days=1))
    assert len(provider.asked) == 2, "asked again the next day"
    look_up_card_pages(world.settings, world.ledger, provider, start + timedelta(days=9))
    assert len(provider.asked) == 2, "a charge more than a week old is not a reason to ask"


def test_a_failed_lookup_is_asked_again_and_a_provider_without_lookups_is_skipped():
    world, _ = charged_world()
    failing = PageProvider(fail=True)
    at = MONDAY + timedelta(days=1, hours=1)
    look_up_card_pages(world.settings, world.ledger, failing, at)
    look_up_card_pages(world.settings, world.ledger, failing, at + timedelta(minutes=1))
    assert len(failing.asked) == 2, "a failure leaves no mark: the next tick asks again"
    look_up_card_pages(world.settings, world.ledger, object(), at)  # record-only: nothing to ask
    assert seen_by(world.ledger, "ana@example.com") == []
