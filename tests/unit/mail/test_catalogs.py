"""The words of the emails live in message catalogs: every catalog has every message the
templates use and no stale one, plural forms come from the catalog (Polish has three, Hebrew
says "an hour" and "two hours" in one word), a .po without its .mo still speaks the client's
language, and a practice can override one message, one template or add a language."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from slotguard.mail import render
from slotguard.mail.messages import LOCALES, Renderer
from slotguard.mail.samples import sample_context
from slotguard.policies.loading import load_enabled
from tests.support.builders import settings as make_settings

ROOT = Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location("catalogs_tool", ROOT / "tools" / "catalogs.py")
catalogs_tool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(catalogs_tool)


@pytest.fixture(scope="module")
def practice():
    settings = make_settings(practice={"name": "Studio Nord", "address": "Storgata 1, Oslo", "phone": "+47 400 00 000"})
    return settings, load_enabled(settings)


def context_for(practice, name, **changes):
    settings, policies = practice
    context = sample_context(settings, policies, name)
    context.update(changes)
    return context


def with_tiers(practice, name, *hours):
    context = context_for(practice, name)
    tier = context["terms"]["late_cancel"]["tiers"][0]
    context["terms"] = {**context["terms"], "late_cancel": {"tiers": [{**tier, "within_hours": n} for n in hours]}}
    return context


def po_entry(msgid: str, msgstr: str, context: str | None = None) -> str:
    quoted = msgid.replace('"', '\\"').replace("\n", "\\n")
    text = f'msgctxt "{context}"\n' if context else ""
    return text + f'msgid "{quoted}"\nmsgstr "{msgstr}"\n\n'


def write_po(folder: Path, locale: str, entries: str, plural_forms: str = "nplurals=2; plural=(n != 1);") -> Path:
    path = folder / "locale" / locale / "LC_MESSAGES" / "messages.po"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n'
              f'"Language: {locale}\\n"\n"Plural-Forms: {plural_forms}\\n"\n\n')
    path.write_text(header + entries, encoding="utf-8")
    return path


def test_every_shipped_locale_has_a_catalog_with_every_message_and_no_stale_one():
    assert catalogs_tool.catalog_locales() == ["da", "de", "en", "he", "nb", "pl"]
    assert sorted(LOCALES) == catalogs_tool.catalog_locales(), "every catalog is a language the emails are written in"
    assert catalogs_tool.problems() == []


def test_the_check_names_a_missing_a_stale_an_empty_and_a_fuzzy_message(tmp_path):
    root = tmp_path / "locale"
    shutil.copytree(ROOT / "templates" / "locale", root)
    path = root / "pl" / "LC_MESSAGES" / "messages.po"
    text = path.read_text(encoding="utf-8")
    assert 'msgid "See you soon,"\nmsgstr "Do zobaczenia,"\n' in text
    text = text.replace('msgid "See you soon,"\nmsgstr "Do zobaczenia,"\n', 'msgid "See you later,"\nmsgstr "Na razie,"\n')
    text = text.replace('msgid "our cancellation policy"\nmsgstr "zasady odwoływania wizyt"\n', 'msgid "our cancellation policy"\nmsgstr ""\n')
    text = text.replace('msgid "Place"\nmsgstr "Miejsce"\n', '#, fuzzy\nmsgid "Place"\nmsgstr "Miejsce"\n')
    path.write_text(text, encoding="utf-8")
    problems = "\n".join(catalogs_tool.problems(ROOT / "templates", root))
    assert "pl/LC_MESSAGES/messages.po: missing 'See you soon,'" in problems
    assert "stale (no template uses it) 'See you later,'" in problems
    assert "not translated 'our cancellation policy'" in problems
    assert "fuzzy 'Place'" in problems
    assert "de/LC_MESSAGES" not in problems


@pytest.mark.parametrize(("locale", "expected"), [
    ("en", ["less than 1 hour before", "less than 2 hours before", "less than 5 hours before", "less than 22 hours before"]),
    ("pl", ["mniej niż 1 godzinę", "mniej niż 2 godziny", "mniej niż 5 godzin", "mniej niż 22 godziny"]),
    ("he", ["ביטול פחות משעה לפני", "ביטול פחות משעתיים לפני", "ביטול פחות מ-5 שעות לפני", "ביטול פחות מ-22 שעות לפני"]),
    ("de", ["weniger als 1 Stunde vor", "weniger als 2 Stunden vor", "weniger als 5 Stunden vor", "weniger als 22 Stunden vor"]),
])
def test_the_catalog_picks_the_plural_form_of_the_language(practice, locale, expected):
    rendered = Renderer("en", "Europe/Oslo").render("reminder", with_tiers(practice, "reminder", 1, 2, 5, 22), locale)
    for phrase in expected:
        assert phrase in rendered.text, (phrase, rendered.text)
        assert phrase in rendered.html


def test_a_catalog_without_its_compiled_file_or_with_an_older_one_still_speaks_the_language(tmp_path, monkeypatch, practice):
    bundled = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", bundled, ignore=shutil.ignore_patterns("*.mo"))
    monkeypatch.setattr(render, "BUNDLED_TEMPLATES", bundled)
    context = context_for(practice, "reminder")
    assert "Do zobaczenia," in Renderer("en", "Europe/Oslo").render("reminder", context, "pl").text, "no .mo: the .po is read"
    catalogs_tool.compile_all(only=[catalogs_tool.po_path("pl", bundled / "locale")])
    mo_file = bundled / "locale" / "pl" / "LC_MESSAGES" / "messages.mo"
    assert mo_file.is_file()
    po_file = mo_file.with_suffix(".po")
    po_file.write_text(po_file.read_text(encoding="utf-8").replace('msgstr "Do zobaczenia,"', 'msgstr "Do zobaczenia wkrótce,"'), encoding="utf-8")
    os.utime(mo_file, (1, 1))
    assert "Do zobaczenia wkrótce," in Renderer("en", "Europe/Oslo").render("reminder", context, "pl").text, "an older .mo gives way to the .po"


def test_a_practice_message_wins_for_its_locale_and_the_rest_stays_translated(tmp_path, practice):
    write_po(tmp_path, "pl", po_entry("See you soon,", "Do zobaczenia w gabinecie,"),
             "nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);")
    renderer = Renderer("en", "Europe/Oslo", tmp_path)
    context = context_for(practice, "reminder")
    polish = renderer.render("reminder", context, "pl")
    assert "Do zobaczenia w gabinecie," in polish.text
    assert polish.subject.startswith("Przypomnienie"), "the bundled catalog still gives the other messages"
    german = renderer.render("reminder", context, "de").text
    assert "Bis bald," in german and "Do zobaczenia" not in german, "the override is for Polish only"
    assert renderer.check_all(lambda name: context_for(practice, name)) == []


def test_a_practice_message_that_no_template_uses_or_a_broken_catalog_is_reported(tmp_path, practice):
    write_po(tmp_path, "de", po_entry("See you son,", "Bis dann,"))
    problems = Renderer("en", "Europe/Oslo", tmp_path).check_all(lambda name: context_for(practice, name))
    assert any("no template uses the message 'See you son,'" in problem for problem in problems)
    broken = tmp_path / "broken"
    path = write_po(broken, "nb", "")
    path.write_text('msgid "x"\nthis is not a catalog\n', encoding="utf-8")
    problems = Renderer("en", "Europe/Oslo", broken).check_all(lambda name: context_for(practice, name))
    assert problems and all("nb/LC_MESSAGES/messages.po" in problem for problem in problems)
    assert any(problem.startswith("messages (nb)") for problem in problems), "the locale is named"


def test_one_template_of_the_practice_serves_every_locale_with_the_catalogs_words(tmp_path, practice):
    (tmp_path / "reminder.txt.j2").write_text(
        '{% set subject %}{{ _("Place") }}: {{ practice.name }}{% endset %}{{ _("See you soon,") }}\n{{ practice.name }}\n')
    (tmp_path / "reminder.html.j2").write_text("<p>{% trans %}See you soon,{% endtrans %}</p>\n")
    renderer = Renderer("en", "Europe/Oslo", tmp_path)
    context = context_for(practice, "reminder")
    polish = renderer.render("reminder", context, "pl")
    assert polish.subject == "Miejsce: Studio Nord" and polish.text.startswith("Do zobaczenia,\nStudio Nord")
    assert polish.html == "<p>Do zobaczenia,</p>\n"
    assert renderer.render("reminder", context, "en").text.startswith("See you soon,\nStudio Nord")
    assert "Dzień dobry" in renderer.render("fee_charged", context_for(practice, "fee_charged"), "pl").text, "other emails are the bundled ones"


def test_adding_a_language_is_adding_one_catalog(tmp_path, practice):
    write_po(tmp_path, "sv", po_entry("See you soon,", "Vi ses snart,"))
    renderer = Renderer("en", "Europe/Oslo", tmp_path)
    assert renderer.pick_locale("reminder", "sv-SE") == "sv"
    rendered = renderer.render("reminder", context_for(practice, "reminder"), "sv")
    assert rendered.locale == "sv" and "Vi ses snart," in rendered.text
    assert "A friendly reminder" in rendered.text, "a message the new catalog lacks is in English, not blank"



def test_hebrew_html_isolates_amounts_and_latin_names_and_the_text_part_does_not(practice):
    context = context_for(practice, "fee_charged")
    context["fee"] = {**context["fee"], "state": "done", "payment_status": "receivable"}
    renderer = Renderer("en", "Europe/Oslo")
    amount = renderer.env_for("he").filters["money"](context["fee"]["amount"])
    hebrew = renderer.render("fee_charged", context, "he")
    assert f"<bdi>{amount}</bdi>" in hebrew.html
    assert "<bdi>Studio Nord</bdi>" in hebrew.html
    assert "<bdi>" not in hebrew.text and amount in hebrew.text
    for locale in ("en", "pl"):
        assert "<bdi>" not in renderer.render("fee_charged", context, locale).html
