"""Calendar text made safe to keep, show and send (slotguard/domain/untrusted.py)."""

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from slotguard.domain.untrusted import description_text, email_address, https_link, one_line, shown


def test_one_line_folds_breaks_and_controls_and_caps_the_length():
    assert one_line("Storgata 1\r\n\r\nPAY NOW\x00\u2028at\tonce ", 100) == "Storgata 1 PAY NOW at once"
    assert one_line("x" * 50, 10) == "x" * 9 + "…"


def test_shown_makes_line_breaks_visible_and_stays_short():
    assert shown("a@b.c\r\nBcc: x") == "'a@b.c\\r\\nBcc: x'"
    assert len(shown("y" * 10_000)) < 90


@pytest.mark.parametrize("text, expected", [
    ("Ana@Example.com", "ana@example.com"),
    (" bo+tag@mail.example.org ", "bo+tag@mail.example.org"),
    ("анна@пример.рф", "анна@пример.рф"),
    ("ana@example.com\r\nBcc: x@y.z", None),
    ("Ana <ana@example.com>", None),
    ("ana@example.com, bo@example.com", None),
    ("ana@@example.com", None),
    ("ana@example", None),
    ("ana@-example.com", None),
    (".ana@example.com", None),
    ("ana@127.0.0.1", None),
    ("a" * 65 + "@example.com", None),
    ("", None),
])
def test_an_address_is_one_plain_address_or_nothing(text, expected):
    assert email_address(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("https://meet.google.com/abc-defg-hij", "https://meet.google.com/abc-defg-hij"),
    (" HTTPS://zoom.example.com/j/1?pwd=x ", "HTTPS://zoom.example.com/j/1?pwd=x"),
    ("javascript:alert(1)", ""),
    ("http://meet.example.com/a", ""),
    ("data:text/html,<b>x</b>", ""),
    ("https://", ""),
    ("https:///path", ""),
    ("https://a b.example/", ""),
    ('https://x.example/"onmouseover="alert(1)', ""),
    ("https://x.example/\nSecond line", ""),
    ("https://x.example:99999999999/", ""),
    ("//x.example/a", ""),
])
def test_only_an_https_url_with_a_host_is_a_link(text, expected):
    assert https_link(text) == expected


@hsettings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.text(max_size=80))
def test_an_https_link_is_returned_as_given_or_not_at_all(value):
    link = https_link(value)
    assert link == "" or (link == value.strip() and link.lower().startswith("https://") and " " not in link and "\n" not in link)


@pytest.mark.parametrize("text, expected", [
    ("lang: de<br>price: 450 NOK", "lang: de\nprice: 450 NOK"),
    ("<div>a</div><div><i>b</i> &amp; c</div>", "\na\n\nb & c\n"),
    ("a<!-- #noshow -->b<!-- unclosed", "ab<!-- unclosed"),
    ("email: <ana@example.com>, 2 < 3 > 1", "email: <ana@example.com>, 2 < 3 > 1"),
    ("&lt;br&gt; stays text", "<br> stays text"),
])
def test_a_description_is_read_as_text_with_html_line_breaks(text, expected):
    assert description_text(text, 1000) == expected


def test_a_description_is_cut_before_it_is_read():
    assert description_text("<b>" * 10 + "price: 1 NOK", 21) == ""
