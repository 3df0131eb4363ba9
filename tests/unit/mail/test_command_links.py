"""The links' own rules, without an engine: a `mailto:` built from untrusted words stays one
link with a subject and a body; a client's links only where they make sense."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from slotguard.domain.model import ActionKind, ActionSubject, new_action
from slotguard.mail.client_links import wants_links
from slotguard.mail.links import SUBJECT_WORDS_LIMIT, command_mailto, find_token, sign, verify
from slotguard.mail.samples import sample_appointment
from tests.support.builders import settings

SECRET = b"0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("words", [
    "Waive NOK 450.00 for Ana\r\nBcc: evil@example.org",
    "Waive NOK 450.00 for Ana & Bo?cc=evil@example.org&body=pay",
    "Waive NOK 450.00 for Ana%0ABcc:%20evil@example.org",
    "Waive NOK 450.00 for Ana\u2028#fragment " + "x" * 300,
])
def test_untrusted_words_cannot_add_a_line_a_header_or_a_parameter(words):
    token = sign(SECRET, "waive", "0a1b2c3d4e5f60718293", sample_appointment(settings()).start + timedelta(days=1))
    link = command_mailto("lena+slotguard@example.com", words, token, "Reason (optional), then press send:\nBcc: x@y")
    parts = urlsplit(link)
    assert (parts.scheme, parts.path, parts.fragment) == ("mailto", "lena+slotguard@example.com", "")
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
    assert set(query) == {"subject", "body"} and len(query["subject"]) == 1
    subject = query["subject"][0]
    assert not any(character in subject for character in "\r\n\u2028")
    assert subject.endswith(f"[{token}]") and find_token(subject) == token
    assert len(subject) <= SUBJECT_WORDS_LIMIT + len(token) + 3
    assert "\n" not in query["body"][0]
    assert verify(SECRET, find_token(subject), sample_appointment(settings()).start).command == "waive"
    if "%0A" in words:
        assert "Ana%0ABcc:%20evil" in subject  # kept as the text it is, not decoded into a line break


def _reminder(practice, appointment, **context):
    subject = ActionSubject(appointment.calendar_id, appointment.event_id, appointment.client.email, appointment.client.name)
    return new_action(subject, ActionKind.EMAIL, "reminders", "reminder", key="k", now=appointment.start - timedelta(days=1),
                      template="reminder", context=context)


def test_a_client_gets_links_only_for_an_appointment_ahead_of_their_own_that_is_neither_cancelled_nor_their_own_event():
    inbox = settings(inbox={"source": "memory", "address": "lena+slotguard@example.com"})
    appointment = sample_appointment(inbox)
    before = appointment.start - timedelta(hours=24)
    action = _reminder(inbox, appointment)
    assert wants_links(inbox, action, appointment, before)
    assert not wants_links(settings(), action, appointment, before)  # no inbox
    assert not wants_links(settings(inbox={"source": "memory", "address": "i@example.com", "client_links": False}), action, appointment, before)
    assert not wants_links(inbox, action, appointment, appointment.start)  # started
    assert not wants_links(inbox, action, dataclasses.replace(appointment, status="cancelled"), before)
    assert not wants_links(inbox, action, dataclasses.replace(appointment, client_organised=True), before)
    assert not wants_links(inbox, _reminder(inbox, appointment, client_organised=True), appointment, before)
    other = dataclasses.replace(action, client_email="bo@example.com")
    assert not wants_links(inbox, other, appointment, before)  # not the appointment's own client
    assert not wants_links(inbox, dataclasses.replace(action, template="late_cancel_notice"), appointment, before)


def _money_ahead_email(settings_, action_id: str):
    subject = ActionSubject("practice", "", settings_.practice.email, settings_.practice.name)
    return new_action(subject, ActionKind.EMAIL, "money_ahead", "unpaid", key="m", now=sample_appointment(settings_).start,
                      template="money_ahead_unpaid", context={"id": action_id})


def test_the_unpaid_money_alert_offers_mark_paid_and_waive_on_its_own_deposit_only_with_an_inbox(tmp_path):
    from slotguard.mail.compose import EmailView
    from slotguard.mail.links import action_target, load_secret
    from slotguard.mail.messages import Renderer
    from slotguard.practitioner.command_links import slotguard_email_extras
    from slotguard.store.ledger import Ledger

    secret_file = tmp_path / "s" / "secret"
    inbox = settings(inbox={"source": "memory", "address": "lena+slotguard@example.com", "secret_file": str(secret_file)})
    now = sample_appointment(inbox).start - timedelta(hours=2)
    ledger = Ledger(":memory:")
    try:
        extras = slotguard_email_extras(_money_ahead_email(inbox, "act_0a1b2c3d4e5f60718293"), None,
                                        EmailView(inbox, [], Renderer("en", "Europe/Oslo"), ledger), now)
        assert extras is not None and extras.details["inbox_address"] == "lena+slotguard@example.com"
        found = [verify(load_secret(secret_file), row["token"], now) for row in extras.details["commands"]]
        assert [(token.command, token.target) for token in found] == [
            ("mark_paid", action_target("act_0a1b2c3d4e5f60718293")), ("waive", action_target("act_0a1b2c3d4e5f60718293"))]
        assert all(token.expires == now + inbox.inbox.link_valid_for for token in found)
        plain = settings()
        assert slotguard_email_extras(_money_ahead_email(plain, "act_0a1b2c3d4e5f60718293"), None,
                                      EmailView(plain, [], Renderer("en", "Europe/Oslo"), ledger), now) is None
    finally:
        ledger.close()


@pytest.mark.parametrize(("body", "cut"), [
    ("Reason (optional), then press send:", False),
    ("שליחת המייל מבטלת את התור ביום חמישי 5 במרץ בשעה 10:00. אם יש משהו למסור, אפשר לכתוב כאן:", False),
    ("א" * 200, True),
    ("Wiadomość dla: Łucja Żółkiewska (opcjonalnie) – napisz ją tutaj: " * 10, True),
])
def test_the_body_is_cut_by_its_encoded_length_not_its_letters(body, cut):
    token = sign(SECRET, "cancel", "0a1b2c3d4e5f60718293", sample_appointment(settings()).start)
    link = command_mailto("lena+slotguard@example.com", "Cancel", token, body)
    encoded = link.split("&body=", 1)[1]
    assert len(encoded) <= 900
    shown = parse_qs(urlsplit(link).query)["body"][0]
    assert shown.endswith("…") is cut
    assert (shown == body) is not cut and (not cut or body.startswith(shown[:-1].rstrip()))
