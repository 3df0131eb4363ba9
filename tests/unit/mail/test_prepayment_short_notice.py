"""A prepayment asked for a session starting soon (issue 13, item 4): the request says, in
every language, when the session starts and that the client may pay at its start instead;
with time to spare it says nothing of the kind. Practitioner mail about a booking found at the
first look, and the introduction itself, are in tests/unit/mail/test_templates_lifecycle.py."""

from __future__ import annotations

import pytest

from slotguard.mail.messages import LOCALES, Renderer
from slotguard.mail.samples import sample_context
from slotguard.policies.loading import load_enabled
from tests.support.builders import settings as make_settings
from tests.unit.mail.test_templates import english_left

START_TIMES = {"en": "10:00", "nb": "10:00", "da": "10.00", "de": "10:00", "pl": "10:00", "he": "10:00"}
PAY_AT_THE_SESSION = {
    "en": "you can pay at the start of the session instead",
    "nb": "kan du i stedet betale når timen begynner",
    "da": "kan du i stedet betale, når aftalen begynder",
    "de": "können Sie auch zu Beginn des Termins bezahlen",
    "pl": "możesz zapłacić na początku wizyty",
    "he": "אפשר לשלם בתחילת התור",
}


@pytest.fixture(scope="module")
def practice():
    settings = make_settings(policies={"enabled": ["no_show", "repeat_offender_prepay"]})
    return settings, load_enabled(settings), Renderer("en", "Europe/Oslo")


def request(practice, locale, starts_soon):
    settings, policies, renderer = practice
    context = sample_context(settings, policies, "deposit_request")
    context["details"] = {**context["details"], "purpose": "prepayment", "amount": {"minor": 90000, "currency": "NOK"},
                          "starts_soon": starts_soon}
    context["fee"] = {**context["fee"], "policy": "repeat_offender_prepay", "state": "done", "payment_status": "unpaid"}
    return context, renderer.render("deposit_request", context, locale)


@pytest.mark.parametrize("locale", LOCALES)
def test_a_prepayment_for_a_session_starting_soon_may_be_paid_at_the_session(practice, locale):
    context, rendered = request(practice, locale, starts_soon=True)
    assert PAY_AT_THE_SESSION[locale] in rendered.text and PAY_AT_THE_SESSION[locale] in rendered.html
    assert START_TIMES[locale] in rendered.text or "10:00\u202fAM" in rendered.text
    if locale != "en":
        assert english_left(rendered.text, context) == []
    _, later = request(practice, locale, starts_soon=False)
    assert PAY_AT_THE_SESSION[locale] not in later.text
