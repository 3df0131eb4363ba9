"""Every email template in every shipped language: renders with sample data (no missing key:
StrictUndefined), has no English left in the translations, is right-to-left in Hebrew, and
formats money and dates for its locale."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from markupsafe import escape

from slotguard.domain.money import Money
from slotguard.mail.messages import LOCALES, TEMPLATE_NAMES, Renderer, fee_variants
from slotguard.mail.samples import sample_context
from slotguard.policies.loading import load_enabled
from tests.support.builders import settings as make_settings

# Whole words and phrases of the English templates; none may appear in a translation once the
# data (names, addresses, links, the error text of a failed action) is taken out.
ENGLISH = (
    "the", "and", "your", "you", "please", "thank", "thanks", "dear", "hello", "regards", "appointment",
    "reminder", "fee", "cancel", "cancelled", "cancellation", "booking", "booked", "payment", "refund",
    "receipt", "deposit", "tomorrow", "waitlist", "with", "our", "we", "here", "today", "policy", "price",
    "notice", "free", "pay", "paid", "see you soon", "good morning", "failed", "since",
)
ENGLISH_RE = re.compile(r"\b(" + "|".join(re.escape(word) for word in ENGLISH) + r")\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def practice():
    settings = make_settings(practice={
        "name": "Studio Nord", "address": "Storgata 1, Oslo", "phone": "+47 400 00 000",
        "payment_instructions": "Vipps 400 00 000",
    })
    return settings, load_enabled(settings), Renderer("en", "Europe/Oslo")


def data_strings(value) -> set[str]:
    """Every string in the sample data (the template's own words are what is checked)."""
    if isinstance(value, str):
        return {value} if len(value) > 2 else set()
    if isinstance(value, dict):
        return set().union(*(data_strings(item) for item in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(data_strings(item) for item in value)) if value else set()
    return set()


def english_left(text: str, context: dict) -> list[str]:
    for data in sorted(data_strings(context), key=len, reverse=True):
        text = text.replace(data, " ").replace(str(escape(data)), " ")
    text = re.sub(r"https?://\S+|\S+@\S+|python main\.py[^\n<]*", " ", text)
    return sorted({match.lower() for match in ENGLISH_RE.findall(text)})


def renders(practice, name, locale):
    settings, policies, renderer = practice
    for context in fee_variants(sample_context(settings, policies, name)):
        yield context, renderer.render(name, context, locale)


def test_every_template_ships_in_every_locale(practice):
    renderer = practice[2]
    for name in TEMPLATE_NAMES:
        assert renderer.locales_for(name) == sorted(LOCALES), name


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_the_template_renders_in_the_locale_with_no_missing_key_and_no_english_left(practice, name, locale):
    for context, rendered in renders(practice, name, locale):
        assert rendered.locale == locale
        assert rendered.subject and "\n" not in rendered.subject
        assert "Studio Nord" in rendered.text + rendered.subject
        if locale != "en":
            for part in (rendered.subject, rendered.text, rendered.html):
                assert english_left(part, context) == [], f"{name} ({locale}) still has English"
        html = rendered.html
        assert f'<html lang="{locale}" dir="{"rtl" if locale == "he" else "ltr"}">' in html


def test_the_english_check_would_catch_an_untranslated_template(practice):
    """The check above can fail: the English templates themselves are full of marker words."""
    for name in TEMPLATE_NAMES:
        context, rendered = next(iter(renders(practice, name, "en")))
        assert english_left(rendered.text, context), name


def test_hebrew_is_right_to_left_and_the_others_left_to_right(practice):
    settings, policies, renderer = practice
    context = sample_context(settings, policies, "reminder")
    assert 'dir="rtl"' in renderer.render("reminder", context, "he").html
    for locale in ("en", "nb", "da", "de", "pl"):
        assert 'dir="rtl"' not in renderer.render("reminder", context, locale).html


@pytest.mark.parametrize(("locale", "amount", "expected"), [
    ("nb", Money(45000, "NOK"), "450,00\u00a0kr"),
    ("da", Money(45000, "DKK"), "450,00\u00a0kr."),
    ("de", Money(45000, "EUR"), "450,00\u00a0€"),
    ("pl", Money(45000, "PLN"), "450,00\u00a0zł"),
    ("en", Money(45000, "NOK"), "NOK\u00a0450.00"),
    ("en", Money(4500, "JPY"), "¥4,500"),
])
def test_money_is_formatted_by_babel_for_the_locale_from_money_or_its_json(locale, amount, expected):
    money = Renderer("en", "Europe/Oslo").env_for(locale).filters["money"]
    assert money(amount) == expected
    assert money(amount.as_json()) == expected, "action.context holds {minor, currency}"


def test_hebrew_shekels_and_dates_from_iso_text():
    env = Renderer("en", "Asia/Jerusalem").env_for("he")
    shekels = env.filters["money"]({"minor": 45000, "currency": "ILS"})
    assert "450.00" in shekels and "₪" in shekels
    assert env.filters["date"]("2026-03-04T09:00:00+00:00") == "יום רביעי, 4 במרץ 2026"
    assert env.filters["time"](datetime(2026, 3, 4, 9, 0, tzinfo=UTC)) == "11:00"


def test_a_non_amount_is_a_template_problem_not_a_silent_blank():
    money = Renderer("en", "Europe/Oslo").env_for("en").filters["money"]
    with pytest.raises(TypeError):
        money(450)


def test_a_locale_is_tried_as_given_then_as_its_language_then_the_practice_default():
    renderer = Renderer("nb", "Europe/Oslo")
    assert renderer.pick_locale("reminder", "de-AT") == "de"
    assert renderer.pick_locale("reminder", "PL") == "pl"
    assert renderer.pick_locale("reminder", "no") == "nb"
    assert renderer.pick_locale("reminder", "fr") == "nb"
    assert renderer.pick_locale("reminder", None) == "nb"
    assert renderer.pick_locale("reminder", "../../etc/passwd") == "nb", "a lang: line never reaches a path"


def test_an_admin_template_for_one_locale_takes_precedence(tmp_path, practice):
    settings, policies, _ = practice
    (tmp_path / "de").mkdir()
    (tmp_path / "de" / "reminder.txt.j2").write_text('{% set subject %}Bis morgen!{% endset %}Hallo {{ client.first_name }}\n')
    (tmp_path / "de" / "reminder.html.j2").write_text("<p>Hallo {{ client.first_name }}</p>\n")
    renderer = Renderer("en", "Europe/Oslo", tmp_path)
    context = sample_context(settings, policies, "reminder")
    assert renderer.render("reminder", context, "de").subject == "Bis morgen!"
    assert renderer.render("late_cancel_notice", sample_context(settings, policies, "late_cancel_notice"), "de").subject.startswith("Ihr abgesagter Termin")


def test_a_broken_admin_template_in_any_locale_is_caught_at_start_up(tmp_path, practice):
    settings, policies, _ = practice
    (tmp_path / "pl").mkdir()
    (tmp_path / "pl" / "reminder.txt.j2").write_text("{% set subject %}Hej{% endset %}{{ client.nmae }}\n")
    (tmp_path / "pl" / "reminder.html.j2").write_text("<p></p>\n")
    renderer = Renderer("en", "Europe/Oslo", tmp_path)
    problems = renderer.check_all(lambda name: sample_context(settings, policies, name))
    assert problems and all("reminder" in problem and "(pl)" in problem and "nmae" in problem for problem in problems)
