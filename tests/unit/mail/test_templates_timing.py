"""Words that match the time (issue 13, item 7): the no-show follow-up arrives a day or more
after the session (the review window, then quiet hours), so in every locale it names the day
of the session and never says "today"."""

from __future__ import annotations

from datetime import timedelta

import pytest

from slotguard.mail.compose import compose_email
from slotguard.mail.messages import LOCALES, Renderer
from tests.unit.planning.test_policy_planner import MONDAY, K, World, fee_config

# The session's day (Monday 2 March 2026) as each locale writes it, and its word for "today".
SESSION_DAY = {
    "en": "Monday, March 2",
    "nb": "mandag 2. mars",
    "da": "mandag den 2. marts",
    "de": "Montag, 2. März",
    "pl": "poniedziałek, 2 marca",
    "he": "יום שני, 2 במרץ",
}
TODAY = {"en": ["today"], "nb": ["i dag"], "da": ["i dag"], "de": ["heute"], "pl": ["dziś", "dzisiaj"], "he": ["היום"]}


def test_every_locale_has_its_expected_words():
    assert set(SESSION_DAY) == set(TODAY) == set(LOCALES)


@pytest.mark.parametrize("locale", LOCALES)
def test_the_no_show_follow_up_sent_days_later_names_the_day_of_the_session_not_today(locale):
    world = World(**fee_config("no_show"), mail={"client_locales": {"ana@example.com": locale}})
    planned = world.happen(K.NO_SHOW, world.appointment("n1", MONDAY), MONDAY + timedelta(hours=1))
    email = next(action for action in planned if action.template == "no_show_followup")
    renderer = Renderer(world.settings.practice.locale, world.settings.practice.timezone)
    message = compose_email(world.settings, world.policies, renderer, world.ledger, email, MONDAY + timedelta(days=2, hours=-2))
    subject = str(message["Subject"])
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert SESSION_DAY[locale] in subject, subject
    for word in TODAY[locale]:
        assert word not in subject.lower() and word not in text.lower() and word not in html.lower(), (word, subject)
