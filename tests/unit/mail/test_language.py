"""What the texts say, per language: the digest speaks to the practitioner in their own
words, Norwegian waives a fee (not "deletes" it), Polish neither declines names wrongly nor
makes the practice a group of men, Hebrew keeps numbers and Latin text in their order, and
English follows the practice's clock."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from slotguard.mail.bidi import LRI, PDI, isolate_html, isolate_text
from slotguard.mail.messages import TEMPLATE_NAMES, Renderer, fee_variants
from slotguard.mail.samples import sample_context
from slotguard.policies.loading import load_enabled
from tests.support.builders import settings as make_settings


def practice(locale="en", **extra):
    settings = make_settings(practice={
        "name": "Studio Nord", "address": "Storgata 1, Oslo", "phone": "+47 400 00 000",
        "payment_instructions": "Vipps 400 00 000", "locale": locale, **extra,
    })
    return settings, load_enabled(settings), Renderer(locale, "Europe/Oslo")


def every_email(settings, policies, renderer, locale):
    for name in TEMPLATE_NAMES:
        for context in fee_variants(sample_context(settings, policies, name, locale)):
            yield name, renderer.render(name, context, locale)


@pytest.mark.parametrize(("locale", "client_words", "own_words"), [
    ("nb", ("du ikke kom til", "time du ikke"), "manglende oppmøte"),
    ("da", ("du ikke kom til",), "udeblivelse"),
])
def test_the_digest_tells_the_practitioner_what_a_fee_is_for_in_their_words(locale, client_words, own_words):
    settings, policies, renderer = practice(locale)
    rendered = renderer.render("practitioner_digest", sample_context(settings, policies, "practitioner_digest"), locale)
    for part in (rendered.text, rendered.html):
        assert own_words in part
        assert not [words for words in client_words if words in part], "a client's phrase in the practitioner's digest"


def test_norwegian_says_a_cancelled_fee_is_waived_not_deleted():
    settings, policies, renderer = practice("nb")
    texts = [rendered.text + rendered.html for name, rendered in every_email(settings, policies, renderer, "nb")
             if name == "refund_notice"]
    assert any("er frafalt" in text for text in texts)
    assert not any("slettet" in text for text in texts)


# Past tense of "we" in the masculine-personal form (-liśmy, -iśmy, -byśmy, powinniśmy): a
# practice may be one woman.
MASCULINE_WE = re.compile(r"\w+(liśmy|liście|byśmy)\b|powinniśmy|mogliśmy", re.IGNORECASE)


def test_polish_greets_without_a_nominative_name_and_never_makes_the_practice_men():
    settings, policies, renderer = practice("pl")
    for name, rendered in every_email(settings, policies, renderer, "pl"):
        for part in (rendered.subject, rendered.text, rendered.html):
            assert not MASCULINE_WE.search(part), (name, MASCULINE_WE.search(part).group())
            assert "Dzień dobry Ana" not in part and "Dzień dobry, Ana" not in part, name
        if name != "slot_freed":
            assert rendered.text.startswith("Dzień dobry,"), name


RUN_OF_WORDS = re.compile(r"[+A-Za-z0-9][^\u0590-\u05ff\u200f\n·]*[ \u00a0\t–/(-][^\u0590-\u05ff\u200f\n·]*[A-Za-z0-9]")


class _Unisolated(HTMLParser):
    """Collects text outside <bdi>, <code> and dir="ltr" elements that holds Latin letters or digits."""

    def __init__(self):
        super().__init__()
        self.stack: list[bool] = []
        self.found: list[str] = []
        self.in_body = False

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.in_body = True
        if tag in ("br", "meta", "img", "hr"):
            return
        self.stack.append(tag in ("bdi", "code") or ("dir", "ltr") in attrs)

    def handle_endtag(self, tag):
        if tag not in ("br", "meta", "img", "hr") and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        # Left-to-right words or numbers with a space or dash between them (one word keeps its order).
        if self.in_body and not any(self.stack) and RUN_OF_WORDS.search(data):
            self.found.append(data)


def test_hebrew_html_isolates_every_number_and_latin_text():
    settings, policies, renderer = practice("he")
    for name, rendered in every_email(settings, policies, renderer, "he"):
        parser = _Unisolated()
        parser.feed(rendered.html)
        assert parser.found == [], (name, parser.found[:3])
        if name == "reminder":
            assert "<bdi>Studio Nord</bdi>" in rendered.html and "<bdi>Storgata 1, Oslo</bdi>" in rendered.html


def test_hebrew_text_part_keeps_a_phone_number_and_a_time_in_order_and_links_whole():
    settings, policies, renderer = practice("he")
    rendered = renderer.render("reminder", sample_context(settings, policies, "reminder", "he"), "he")
    assert f"{LRI}+47 400 00 000{PDI}" in rendered.text
    assert re.search(f"{LRI}[^{PDI}]*10:00–11:00[^{PDI}]*{PDI}", rendered.text)
    assert "https://meet.example.com/abc-defg-hij" in rendered.text
    assert f"{LRI}https://" not in rendered.text and f"{LRI}Studio Nord{PDI}" in rendered.text
    assert "שלום Ana," in rendered.text, "one word keeps its order without an isolate"


def test_isolation_leaves_markup_entities_and_left_to_right_emails_alone():
    html = '<html><body dir="rtl"><p title="a 1">שלום Tom &amp; Jerry (massage), +47 400 00 000.</p><code>main.py</code></body></html>'
    isolated = isolate_html(html)
    assert '<p title="a 1">שלום <bdi>Tom &amp; Jerry (massage), +47 400 00 000</bdi>.</p>' in isolated
    assert isolate_html("<body><p>שלום Ana, מ-5</p></body>") == "<body><p>שלום Ana, מ-5</p></body>"
    assert "<code>main.py</code>" in isolated
    assert isolate_text("שלום Ana Silva, +47 1") == f"שלום {LRI}Ana Silva, +47 1{PDI}"
    assert isolate_text("שלום Ana, 450.00 lena@example.com") == "שלום Ana, 450.00 lena@example.com"
    settings, policies, renderer = practice("en")
    english = renderer.render("reminder", sample_context(settings, policies, "reminder"), "en")
    assert LRI not in english.text and "<bdi>" not in english.html


@pytest.mark.parametrize(("practice_locale", "expected", "not_expected"), [
    ("nb", "Wednesday, 4 March 2026, 10:00–11:00", "AM"),
    ("en", "Wednesday, March 4, 2026, 10:00\u202fAM–11:00\u202fAM", "10:00–"),
    ("en-GB", "Wednesday, 4 March 2026, 10:00–11:00", "AM"),
])
def test_english_emails_write_dates_and_times_as_the_practice_does(practice_locale, expected, not_expected):
    settings, policies, renderer = practice(practice_locale)
    rendered = renderer.render("reminder", sample_context(settings, policies, "reminder", "en"), "en")
    assert expected in rendered.text
    assert not_expected not in rendered.text
    assert "NOK\u00a0" in renderer.render("fee_charged", sample_context(settings, policies, "fee_charged", "en"), "en").text


def test_polish_instalments_read_right_for_any_number():
    settings, policies, renderer = practice("pl")
    texts = [rendered.text for name, rendered in every_email(settings, policies, renderer, "pl") if "liczba rat" in rendered.text]
    assert texts, "the offer of instalments is rendered"
    assert not [text for text in texts if re.search(r"na \d+ raty", text)], "'na 5 raty' is wrong Polish; the count stands apart"


REPLY_VARIANTS = [
    {"outcome": "waived"}, {"outcome": "charged"}, {"outcome": "charge_failed", "state": "failed"},
    {"outcome": "charge_failed", "state": "busy"}, {"outcome": "kept", "due": "2026-03-04T20:00:00+00:00", "purpose": "deposit"},
    {"outcome": "kept", "due": "2026-03-04T20:00:00+00:00", "purpose": "fee"}, {"outcome": "kept", "due": ""},
    {"outcome": "refused_sender", "sender": "x@icloud.com", "due": "2026-03-04T20:00:00+00:00"},
    {"outcome": "refused_auth", "sender": "x@icloud.com", "due": ""},
    {"outcome": "refused_expired", "valid_days": 14, "due": "2026-03-04T20:00:00+00:00"},
    {"outcome": "not_now", "state": "failed"}, {"outcome": "not_now", "state": "open"}, {"outcome": "not_now", "state": "busy"},
    {"kind": "forward", "outcome": "cancelled", "sender": "ana@example.com", "received_at": "2026-03-04T08:12:00+00:00"},
]


@pytest.mark.parametrize("locale", ["en", "nb", "da", "de", "pl", "he"])
def test_every_inbox_reply_says_what_happens_next_in_words_and_never_points_at_the_command_line(locale):
    settings, policies, renderer = practice(locale)
    base = sample_context(settings, policies, "inbox_reply", locale)
    for variant in REPLY_VARIANTS:
        context = {**base, "details": {**base["details"], **variant}}
        rendered = renderer.render("inbox_reply", context, locale)
        assert "main.py" not in rendered.text and "main.py" not in rendered.html, (locale, variant)
        assert "Ana Silva" in rendered.subject, (locale, variant)


def test_hebrew_reply_isolates_the_name_and_the_date_apart_and_names_the_waiver():
    settings, policies, renderer = practice("he")
    rendered = renderer.render("inbox_reply", sample_context(settings, policies, "inbox_reply", "he"), "he")
    assert rendered.subject.startswith("ויתור על העמלה: ")
    assert "בוצע ויתור על העמלה של" in rendered.text and "בוטלה" not in rendered.text
    assert f"{LRI}Ana Silva{PDI}" in rendered.text  # the name alone, not run together with the date
