"""The practitioner's own words clients read (a service's label, the payment instructions):
one text for every client, or a table by language, each client reading theirs; check-config
says which language a table lacks."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from integration.memory import MemoryCalendar, MemoryMailer
from slotguard.config.limits import warnings
from slotguard.config.localized import localized_text
from slotguard.config.schema import parse_settings
from slotguard.config.types import ConfigError
from slotguard.domain.interfaces import NullWriteBack
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import config, event, settings

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
LABELS = {"nb": "massasje", "en": "massage", "de": "Massage"}
PAYING = {"nb": "Vipps til 400 00 000", "en": "Vipps to 400 00 000", "pl": "Vipps na numer 400 00 000"}


def test_a_plain_string_is_still_one_text_for_every_language():
    practice = settings()
    assert practice.services["default"].label == "massage"
    assert localized_text(practice.practice.payment_instructions, "pl", "en") == "Vipps 400 00 000"


def test_a_table_gives_the_locale_then_its_language_then_the_practice_then_english():
    table = {"nb": "massasje", "en": "massage", "de": "Massage"}
    assert localized_text(table, "de", "nb") == "Massage"
    assert localized_text(table, "de-AT", "nb") == "Massage"
    assert localized_text(table, "pl", "nb") == "massasje"
    assert localized_text({"en": "massage", "de": "Massage"}, "pl", "nb") == "massage"
    assert localized_text({"de": "Massage"}, "pl", "nb") == "Massage"


def test_the_table_keys_are_language_codes_read_as_the_mail_reads_them():
    parsed = settings(services={"default": {"label": {"NO": "massasje", "de_AT": "Massage"}}})
    assert parsed.services["default"].label == {"nb": "massasje", "de-at": "Massage"}
    with pytest.raises(ConfigError) as error:
        parse_settings(config(services={"default": {"label": {"Norsk!": "massasje"}}}, practice={"payment_instructions": {}}))
    text = str(error.value)
    assert "services.default.label" in text and "'Norsk!' is not a language code" in text
    assert "practice.payment_instructions" in text and "the table is empty" in text


def test_check_config_warns_when_a_language_the_practice_writes_in_has_no_text():
    clients = {"client_locales": {"ana@example.com": "de", "bo@example.com": "pl"}}
    found = warnings(settings(practice={"locale": "nb", "payment_instructions": PAYING},
                              services={"default": {"label": LABELS}}, mail=clients))
    assert any(line.startswith("services.default.label: no text for pl") and '"massasje"' in line for line in found), found
    assert any(line.startswith("practice.payment_instructions: no text for de") for line in found), found
    plain = warnings(settings(practice={"locale": "nb"}, mail=clients))
    assert any(line.startswith("services.default.label: one text for every client") and "de, pl" in line for line in plain), plain
    assert not [line for line in warnings(settings()) if "label" in line or "payment_instructions" in line]


def test_each_client_reads_the_label_and_the_payment_instructions_in_the_language_of_their_email():
    practice = settings(
        practice={"locale": "nb", "payment_instructions": PAYING},
        services={"default": {"label": LABELS}},
        mail={"digest_hour": -1, "client_locales": {"ana@example.com": "de", "bo@example.com": "pl", "cy@example.com": "sv"}},
    )
    calendar, mailer, ledger = MemoryCalendar("primary"), MemoryMailer(), Ledger(":memory:")
    engine = build_engine(practice, MONDAY, ledger=ledger, calendars=[(calendar, NullWriteBack())], mailer=mailer)
    wednesday = datetime(2026, 3, 4, 10, 0, tzinfo=OSLO)
    for number, (client, name) in enumerate([("ana@example.com", "Ana"), ("bo@example.com", "Bo"), ("cy@example.com", "Cy")]):
        calendar.put(event(f"e{number}", wednesday.replace(hour=10 + 2 * number), client=client, name=name), MONDAY)
    engine.tick(MONDAY)
    confirmations = {a.client_email: mailer.sent[a.id] for a in ledger.actions() if a.template == "booking_confirmation"}
    text = {client: message.get_body(("plain",)).get_content() for client, message in confirmations.items()}
    html = {client: message.get_body(("html",)).get_content() for client, message in confirmations.items()}
    assert "Massage" in text["ana@example.com"] and "massasje" not in text["ana@example.com"]
    assert "Massage" in html["ana@example.com"]
    # Polish has no label of its own: the practice's language, then; Swedish has no catalog:
    # the email is in Norwegian, and so is the label.
    assert "massasje" in text["bo@example.com"]
    assert confirmations["cy@example.com"]["Content-Language"] == "nb" and "massasje" in text["cy@example.com"]
    [ics] = [part for part in confirmations["ana@example.com"].iter_attachments() if part.get_filename().endswith(".ics")]
    assert "SUMMARY:Massage" in ics.get_content()


def test_the_payment_instructions_are_in_the_language_of_the_fee_email():
    from slotguard.mail.messages import Renderer
    from slotguard.mail.samples import sample_context
    from slotguard.policies.loading import load_enabled

    practice = settings(practice={"locale": "nb", "payment_instructions": PAYING}, services={"default": {"label": LABELS}})
    renderer = Renderer("nb", "Europe/Oslo")
    for locale, expected, label in (("pl", "Vipps na numer 400 00 000", "massasje"), ("de", "Vipps til 400 00 000", "Massage"),
                                    ("en", "Vipps to 400 00 000", "massage")):
        context = sample_context(practice, load_enabled(practice), "fee_charged", locale)
        context["fee"] = {**context["fee"], "state": "done", "payment_status": "receivable"}
        rendered = renderer.render("fee_charged", context, locale)
        assert expected in rendered.text and expected in rendered.html, locale
        assert label in rendered.text, locale
