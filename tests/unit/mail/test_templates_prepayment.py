"""The prepayment request of `repeat_offender_prepay`, as the client reads it in every
language: it asks for the session's price in advance and never calls it a deposit, carries
the amount and the payment link in both parts, and says that a cancellation in time gets the
money back (which the planner then does). A deposit request still says deposit.

The messages are planned by the real policies and planner and composed by compose_email,
so the `purpose` the policy puts in the email's context is what the template gets."""

from __future__ import annotations

from datetime import timedelta

import pytest

from slotguard.domain.model import ActionKind, ActionState
from slotguard.mail.compose import compose_email
from slotguard.mail.messages import LOCALES, Renderer
from tests.unit.mail.test_templates import english_left
from tests.unit.planning.test_policy_planner import MONDAY, K, World, fee_config, nok

PAYMENT_LINK = "https://pay.example.com/p/prepay-b1"

# The word each language's deposit request uses (a stem, to catch its inflections), and what
# the prepayment request says about a cancellation in time.
DEPOSIT_WORD = {"en": "deposit", "nb": "depositum", "da": "depositum", "de": "anzahlung", "pl": "zadat", "he": "מקדמה"}
FULL_REFUND = {
    "en": "back in full",
    "nb": "hele beløpet tilbake",
    "da": "hele beløbet tilbage",
    "de": "den vollen Betrag zurück",
    "pl": "zwrócimy Ci całą kwotę",
    "he": "יוחזר אליך במלואו",
}


def booked_after_an_incident(locale: str, *enabled: str, **tables) -> tuple[World, list]:
    """A client who missed one session books another; returns the world and the new actions."""
    world = World(**fee_config(*enabled, **tables), mail={"client_locales": {"ana@example.com": locale}})
    world.happen(K.NO_SHOW, world.appointment("n1", MONDAY), MONDAY)
    world.carry_out(MONDAY + timedelta(days=1))
    _, booked = world.book("b1", MONDAY + timedelta(days=10), at=MONDAY + timedelta(days=2))
    return world, booked


def request_sent(world: World, booked: list, payment_status: str, link: str = ""):
    """The deposit_request email once the money it asks for is carried out (as the engine
    does: `payment_status` and the provider's payment link on the charge)."""
    charge = next(action for action in booked if action.kind in (ActionKind.CHARGE, ActionKind.HOLD))
    charge.state = ActionState.DONE
    charge.context.update(payment_status=payment_status, **({"payment_link": link} if link else {}))
    world.ledger.update_action(charge, MONDAY + timedelta(days=3), "done")
    email = next(action for action in booked if action.template == "deposit_request")
    renderer = Renderer(world.settings.practice.locale, world.settings.practice.timezone)
    return compose_email(world.settings, world.policies, renderer, world.ledger, email, MONDAY + timedelta(days=3)), charge.amount


def parts(message) -> tuple[str, str, str]:
    return message["Subject"], message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


def money_in(locale: str, amount) -> str:
    return Renderer("en", "Europe/Oslo").env_for(locale).filters["money"](amount)


@pytest.fixture(scope="module")
def prepayment_requests():
    """Per locale: the prepayment request with a payment link to follow, and the amount."""
    found = {}
    for locale in LOCALES:
        world, booked = booked_after_an_incident(locale, "no_show", "late_cancel", "repeat_offender_prepay", repeat_offender_prepay={"incidents": 1})
        found[locale] = request_sent(world, booked, "unpaid", PAYMENT_LINK)
    return found


@pytest.mark.parametrize("locale", LOCALES)
def test_a_prepayment_request_asks_for_the_amount_with_the_link_and_never_says_deposit(prepayment_requests, locale):
    message, amount = prepayment_requests[locale]
    subject, text, html = parts(message)
    assert amount == nok(900), "the whole price of the session"
    word = DEPOSIT_WORD[locale]
    assert word not in subject.lower() and word not in text.lower(), f"{locale}: a prepayment is not a deposit"
    assert money_in(locale, amount) in text and PAYMENT_LINK in text
    assert money_in(locale, amount) in html and f'href="{PAYMENT_LINK}"' in html, "the HTML part asks for the same"
    assert word not in html.lower()


@pytest.mark.parametrize("locale", LOCALES)
def test_a_prepayment_request_says_the_money_comes_back_after_a_cancellation_in_time(prepayment_requests, locale):
    _, text, html = parts(prepayment_requests[locale][0])
    assert FULL_REFUND[locale] in text and FULL_REFUND[locale] in html
    promise = next(line for line in text.splitlines() if FULL_REFUND[locale] in line)
    assert "24" in promise, "with the notice that counts as in time"


@pytest.mark.parametrize("locale", [locale for locale in LOCALES if locale != "en"])
def test_a_prepayment_request_has_no_english_left_in_a_translation(prepayment_requests, locale):
    """test_templates.py checks the sample deposit request; this is the prepayment wording."""
    for part in parts(prepayment_requests[locale][0]):
        assert english_left(part, {}) == [], f"the {locale} prepayment request still has English"


def test_a_prepayment_already_taken_from_the_card_is_not_asked_for_again():
    world, booked = booked_after_an_incident("en", "no_show", "repeat_offender_prepay", repeat_offender_prepay={"incidents": 1})
    message, amount = request_sent(world, booked, "paid")
    subject, text, html = parts(message)
    assert "charged to the card you have on file" in text and money_in("en", amount) in text
    assert "deposit" not in (subject + text + html).lower()
    assert "pay.example.com" not in text + html


def test_the_cancellation_in_time_that_the_email_promises_refunds_the_whole_prepayment():
    world, booked = booked_after_an_incident("en", "no_show", "late_cancel", "repeat_offender_prepay", repeat_offender_prepay={"incidents": 1})
    appointment = world.ledger.tracked("primary", "b1").appointment
    world.carry_out(MONDAY + timedelta(days=3))
    planned = world.happen(K.CANCELLED_BY_CLIENT, appointment, appointment.start - timedelta(days=2))
    assert [a.amount for a in planned if a.kind is ActionKind.REFUND] == [nok(900)]
    assert [a.template for a in planned if a.kind is ActionKind.EMAIL] == ["refund_notice"]


@pytest.mark.parametrize("locale", LOCALES)
def test_a_deposit_request_still_says_deposit(locale):
    world, booked = booked_after_an_incident(locale, "no_show", "deposit")
    message, amount = request_sent(world, booked, "unpaid", PAYMENT_LINK)
    subject, text, html = parts(message)
    word = DEPOSIT_WORD[locale]
    assert word in subject.lower() and word in text.lower() and word in html.lower()
    assert money_in(locale, amount) in text and PAYMENT_LINK in text and f'href="{PAYMENT_LINK}"' in html
    assert FULL_REFUND[locale] not in text, "the deposit wording is unchanged"
