"""The client's page of `client export` (templates/client_export.html.j2) in each language."""

from __future__ import annotations

import pytest

from slotguard.mail.render import Renderer
from slotguard.privacy.client_export import summary_html
from tests.support.builders import settings

HEADINGS = {"en": "Fees and payments", "nb": "Avgifter og betalinger", "da": "Gebyrer og betalinger",
            "de": "Gebühren und Zahlungen", "pl": "Opłaty i płatności", "he": "דמי ביטול ותשלומים"}


def export(locale: str) -> dict:
    return {
        "exported_at": "2026-03-02T11:00:00Z", "practice": {"name": "Lena Berg Massage", "email": "lena@example.com"},
        "client": {"address": "ana@example.com", "spellings": ["ana@example.com"], "names": ["Ana Silva"], "locale": locale},
        "appointments": [{"start": "2026-03-01T09:00:00Z", "service_label": "massage", "outcome": "no_show", "cancellation": "",
                          "price": {"minor": 90000, "currency": "NOK"}}],
        "marks_read": [{"kind": "no_show", "at": "2026-03-01T10:00:00Z", "start": "2026-03-01T09:00:00Z"}],
        "money": [{"kind": "charge", "state": "done", "amount": {"minor": 90000, "currency": "NOK"},
                   "created_at": "2026-03-01T12:00:00Z", "executed_at": "2026-03-02T08:00:00Z"}],
        "emails": [{"subject": "We missed you", "text": "Hi Ana", "sent_at": "2026-03-01T12:00:00Z"}],
        "problems": [], "card_pages": [{"saved_at": "2026-02-01T10:00:00Z", "card_terms": "Fees per the policy"}],
    }


@pytest.mark.parametrize("locale", sorted(HEADINGS))
def test_the_page_speaks_the_clients_language_with_their_amounts(locale):
    practice = settings(practice={"locale": "en"})
    page = summary_html(practice, Renderer("en", "Europe/Oslo"), export(locale))
    assert f'lang="{locale}"' in page and HEADINGS[locale] in page
    assert ("900,00" if locale in ("nb", "da", "de", "pl") else "900.00") in page
    assert "Hi Ana" in page and "Fees per the policy" in page
    if locale == "he":
        assert 'dir="rtl"' in page and "<bdi>ana@example.com</bdi>" in page
    if locale != "en":
        assert "Your details" not in page, "every heading translated"


def test_an_unknown_language_falls_back_to_the_practices():
    page = summary_html(settings(practice={"locale": "de"}), Renderer("de", "Europe/Oslo"), export("fi"))
    assert 'lang="de"' in page and "Ihre Angaben" in page
