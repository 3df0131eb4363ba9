"""The `gmail` mail transport against a local server speaking the Gmail v1 wire format,
driven through the real google-api-python-client and google-auth."""

from __future__ import annotations

import email
import email.policy
import json
import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from integration import google_auth
from integration.gmail_mailer import GmailMailer
from integration.google_auth import SCOPE_GMAIL_SEND, SCOPE_OWNED, SCOPE_READONLY, save_credentials, token_path
from integration.memory import MemoryCalendar
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import AdapterError, NullWriteBack, ReauthorizationNeeded
from slotguard.domain.model import ActionKind, ActionState
from slotguard.mail.context import appointment_attachment
from slotguard.mail.messages import build_email, message_id_for
from slotguard.mail.samples import sample_appointment, sample_context
from slotguard.policies.loading import load_enabled
from slotguard.run.wiring import build_engine, make_renderer, open_mailer
from slotguard.store.ledger import Ledger
from tests.support.builders import event
from tests.support.builders import settings as build_settings
from tests.support.fake_gmail import FakeGmail

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
WEDNESDAY_10 = datetime(2026, 3, 4, 10, 0, tzinfo=OSLO)


@pytest.fixture
def google_fake():
    """Overrides the conftest fixture: the Gmail fake (a Calendar fake plus Gmail), so the
    google_credentials fixture issues tokens this server accepts."""
    fake = FakeGmail(account="lena@example.com").start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def gmail_settings(tmp_path, google_fake):
    def make(**sections):
        base = {
            "calendar": {"source": "memory", "token_uri": google_fake.token_uri},
            "mail": {"transport": "gmail", "gmail_api_endpoint": google_fake.gmail_api_endpoint},
            "storage": {"data_dir": str(tmp_path / "data")},
        }
        for name, values in sections.items():
            base[name] = {**base.get(name, {}), **values}
        return build_settings(**base)

    return make


@pytest.fixture
def gmail_mailer(gmail_settings, google_credentials):
    """A mailer with a gmail.send token, retrying without waiting."""
    delays: list[float] = []
    mailer = GmailMailer(gmail_settings(), credentials=google_credentials([SCOPE_GMAIL_SEND]), sleep=delays.append)
    mailer.delays = delays
    return mailer


def rendered_confirmation(settings, to_name="Åse Bjørnstad", to_email="ase@example.com"):
    """A booking confirmation as the engine builds it: text + HTML + the .ics."""
    policies = load_enabled(settings)
    context = sample_context(settings, policies, "booking_confirmation")
    rendered = make_renderer(settings, policies).render("booking_confirmation", context)
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    return build_email(
        rendered, sender_name=settings.practice.name, sender_email=settings.sender, reply_to=settings.practice.email,
        to_name=to_name, to_email=to_email, message_id=message_id_for("act_0123abcd", settings.sender), date=now,
        attachments=[appointment_attachment(settings, sample_appointment(settings), context, now)],
    )


# --- sending ---------------------------------------------------------------------------


def test_a_rendered_message_arrives_whole_with_its_headers_parts_and_attachment(google_fake, gmail_settings, gmail_mailer):
    message = rendered_confirmation(gmail_settings())
    gmail_mailer.send(message, "act_0123abcd")

    [request] = google_fake.gmail_requests()
    assert request.method == "POST" and request.path == "/gmail/v1/users/me/messages/send"
    assert request.headers["authorization"].startswith("Bearer ya29.fake-")
    body = json.loads(request.body)
    assert list(body) == ["raw"] and not {"+", "/"} & set(body["raw"])  # base64url, as Gmail requires
    [sent] = google_fake.sent
    assert sent.recipients == ["ase@example.com"]
    received = email.message_from_bytes(sent.raw, policy=email.policy.default)
    for header in ("Subject", "From", "To", "Reply-To", "Date", "Message-ID", "Content-Language", "Auto-Submitted"):
        assert received[header] == message[header], header
    assert received["Message-ID"] == "<act_0123abcd@example.com>"
    assert received["To"] == "Åse Bjørnstad <ase@example.com>" and sent.message["From"] == message["From"]
    assert received.get_content_type() == "multipart/mixed"
    for part in ("plain", "html"):  # on the wire lines end in CRLF (RFC 5322)
        assert received.get_body((part,)).get_content().replace("\r\n", "\n") == message.get_body((part,)).get_content()
    [attachment] = list(received.iter_attachments())
    assert attachment.get_content_type() == "text/calendar" and b"BEGIN:VEVENT" in attachment.get_content().encode()


def test_a_message_with_no_recipient_is_rejected_and_not_retried(google_fake, gmail_settings, gmail_mailer):
    message = rendered_confirmation(gmail_settings())
    del message["To"]
    with pytest.raises(AdapterError, match="Gmail rejected the message: Recipient address required") as raised:
        gmail_mailer.send(message, "act_1")
    assert raised.value.retryable is False and len(google_fake.gmail_requests()) == 1 and google_fake.sent == []


@pytest.mark.parametrize("status, reason", [(429, ""), (403, "rateLimitExceeded"), (403, "userRateLimitExceeded"), (500, ""), (503, "")])
def test_rate_limits_and_server_errors_are_retried_and_the_message_goes_once(google_fake, gmail_settings, gmail_mailer, status, reason):
    google_fake.fail_next(status, reason=reason, times=2, path_contains="/gmail/")
    gmail_mailer.send(rendered_confirmation(gmail_settings()), "act_1")
    assert len(google_fake.gmail_requests()) == 3  # two refused, then accepted
    assert len(google_fake.sent) == 1
    assert len(gmail_mailer.delays) == 2 and all(d > 0 for d in gmail_mailer.delays)


def test_persistent_rate_limiting_gives_up_within_the_budget_as_retryable(google_fake, gmail_settings, google_credentials):
    mailer = GmailMailer(gmail_settings(), credentials=google_credentials([SCOPE_GMAIL_SEND]), retry_budget=0.3, base_delay=0.05)
    google_fake.fail_next(429, times=10_000, path_contains="/gmail/")
    with pytest.raises(AdapterError, match="Gmail: sending failed .* HTTP 429 rateLimitExceeded; will try again later") as raised:
        mailer.send(rendered_confirmation(gmail_settings()), "act_1")
    assert raised.value.retryable is True and not isinstance(raised.value, ReauthorizationNeeded)
    assert 2 <= len(google_fake.gmail_requests()) < 20 and google_fake.sent == []


def test_a_retry_after_beyond_the_budget_is_left_to_the_engine(google_fake, gmail_settings, gmail_mailer):
    google_fake.fail_next(429, retry_after="3600", path_contains="/gmail/")  # Gmail's sending limit reached
    with pytest.raises(AdapterError) as raised:
        gmail_mailer.send(rendered_confirmation(gmail_settings()), "act_1")
    assert raised.value.retryable is True and gmail_mailer.delays == [] and len(google_fake.gmail_requests()) == 1


@pytest.mark.parametrize("status, reason, words", [
    (400, "invalidArgument", "rejected the message"),
    (403, "domainPolicy", "may send mail"),
    (403, "accessNotConfigured", "enable it in the Google Cloud console"),
])
def test_final_refusals_are_not_retried(google_fake, gmail_settings, gmail_mailer, status, reason, words):
    google_fake.fail_next(status, reason=reason, path_contains="/gmail/")
    with pytest.raises(AdapterError, match=words) as raised:
        gmail_mailer.send(rendered_confirmation(gmail_settings()), "act_1")
    assert raised.value.retryable is False and len(google_fake.gmail_requests()) == 1


# --- authorization -----------------------------------------------------------------------


def test_auth_google_asks_for_gmail_send_only_when_mail_goes_through_gmail(gmail_settings):
    assert google_auth.scopes_for(gmail_settings()) == [SCOPE_GMAIL_SEND]  # .ics calendar: no calendar scope
    assert google_auth.scopes_for(gmail_settings(calendar={"source": "google"})) == [SCOPE_OWNED, SCOPE_GMAIL_SEND]
    assert google_auth.scopes_for(gmail_settings(calendar={"source": "google", "write_back": False})) == [SCOPE_READONLY, SCOPE_GMAIL_SEND]
    assert google_auth.scopes_for(gmail_settings(calendar={"source": "google"}, mail={"transport": "outbox-dir"})) == [SCOPE_OWNED]


def test_a_token_without_gmail_send_asks_for_the_auth_command_before_any_request(google_fake, gmail_settings, google_credentials):
    settings = gmail_settings(calendar={"source": "google"})
    save_credentials(google_credentials([SCOPE_OWNED]), token_path(settings))  # connected before switching to gmail
    mailer = open_mailer(settings)
    with pytest.raises(ReauthorizationNeeded, match=r"Gmail: .*gmail\.send.*Run `python main\.py auth google`") as raised:
        mailer.send(rendered_confirmation(settings), "act_1")
    assert raised.value.retryable is False and google_fake.gmail_requests() == []
    save_credentials(google_credentials([SCOPE_OWNED, SCOPE_GMAIL_SEND]), token_path(settings))  # the user ran it
    mailer.send(rendered_confirmation(settings), "act_1")
    assert len(google_fake.sent) == 1


def test_a_token_google_says_lacks_the_scope_asks_for_the_auth_command(google_fake, gmail_settings, google_credentials):
    # The file lists gmail.send but the grant does not (the user unticked it on the consent page).
    credentials = google_credentials([SCOPE_GMAIL_SEND])
    credentials.token = google_fake.issue_access_token([SCOPE_OWNED])
    mailer = GmailMailer(gmail_settings(), credentials=credentials)
    with pytest.raises(ReauthorizationNeeded, match=r"gmail\.send permission\)\. Run `python main\.py auth google`"):
        mailer.send(rendered_confirmation(gmail_settings()), "act_1")
    assert len(google_fake.gmail_requests()) == 1 and google_fake.sent == []  # refused once, not retried


def test_missing_token_asks_for_the_auth_command(gmail_settings):
    with pytest.raises(ReauthorizationNeeded, match=r"Gmail: Google is not connected yet .*python main\.py auth google"):
        open_mailer(gmail_settings()).send(rendered_confirmation(gmail_settings()), "act_1")


def test_revoked_token_asks_for_the_auth_command_and_a_new_one_works_without_a_restart(google_fake, gmail_settings, google_credentials, caplog):
    settings = gmail_settings()
    credentials = google_credentials([SCOPE_GMAIL_SEND], expired=True)
    save_credentials(credentials, token_path(settings))
    mailer = open_mailer(settings)
    mailer.send(rendered_confirmation(settings), "act_1")  # refreshed at the token endpoint, then sent
    saved = json.loads(token_path(settings).read_text())
    assert saved["token"] != credentials.token and [r.path for r in google_fake.requests] == ["/token", "/gmail/v1/users/me/messages/send"]

    caplog.set_level(logging.DEBUG)
    google_fake.revoke_refresh_token(credentials.refresh_token)
    google_fake.expire_access_tokens()
    with pytest.raises(ReauthorizationNeeded, match=r"Gmail: Google no longer accepts .*python main\.py auth google") as raised:
        mailer.send(rendered_confirmation(settings), "act_2")
    for secret in (credentials.token, saved["token"], credentials.refresh_token, google_fake.client_secret):
        assert secret not in caplog.text + str(raised.value)

    save_credentials(google_credentials([SCOPE_GMAIL_SEND]), token_path(settings))  # the user ran the auth command
    mailer.send(rendered_confirmation(settings), "act_2")
    assert len(google_fake.sent) == 2


def test_an_endpoint_given_with_the_api_path_still_reaches_the_method(google_fake, gmail_settings, google_credentials):
    settings = gmail_settings(mail={"gmail_api_endpoint": google_fake.gmail_api_endpoint + "gmail/v1/"})
    GmailMailer(settings, credentials=google_credentials([SCOPE_GMAIL_SEND])).send(rendered_confirmation(settings), "act_1")
    assert [r.path for r in google_fake.gmail_requests()] == ["/gmail/v1/users/me/messages/send"]


# --- through the engine ------------------------------------------------------------------


class Crash(BaseException):
    """The process dying right after Gmail accepted a message (kill -9, power loss)."""


def test_the_engine_mails_through_gmail_retries_later_and_a_crash_costs_at_most_one_duplicate(tmp_path, google_fake, gmail_settings, google_credentials):
    settings = gmail_settings()
    save_credentials(google_credentials([SCOPE_GMAIL_SEND]), token_path(settings))
    calendar = MemoryCalendar("primary")
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    engine = build_engine(settings, MONDAY, ledger=ledger, calendars=[(calendar, NullWriteBack())], provider=RecordOnlyProvider())
    assert isinstance(engine.mailer, GmailMailer)  # wired from mail.transport = "gmail"

    calendar.put(event("e1", WEDNESDAY_10, client="ana@example.com", name="Ana Silva"), MONDAY)
    report = engine.tick(MONDAY)
    [confirmation] = [a for a in ledger.actions(kinds=[ActionKind.EMAIL]) if a.template == "booking_confirmation"]
    assert confirmation.state is ActionState.DONE and not report.problems
    [sent] = google_fake.sent
    assert sent.recipients == ["ana@example.com"] and sent.message["Message-ID"] == confirmation.external_id
    assert sent.message["Message-ID"] == f"<{confirmation.id}@example.com>"

    # Gmail's sending limit: the reminder waits for the engine's backoff, then goes.
    google_fake.fail_next(429, retry_after="3600", path_contains="/gmail/")
    reminder_due = WEDNESDAY_10 - timedelta(hours=48)
    engine.tick(reminder_due)
    [reminder] = [a for a in ledger.actions(kinds=[ActionKind.EMAIL]) if a.template == "reminder" and a.due_at <= reminder_due + timedelta(hours=1)]
    assert reminder.state is ActionState.PLANNED and "429" in reminder.last_error and reminder.attempts == 1
    engine.tick(reminder.due_at)
    assert ledger.action(reminder.id).state is ActionState.DONE and len(google_fake.sent) == 2

    # A crash after Gmail took the next reminder, before the ledger said done: recovery sends
    # it again, once, under the same Message-ID.
    real_send = engine.mailer.send

    def send_then_die(message, action_id):
        real_send(message, action_id)
        raise Crash()

    engine.mailer.send = send_then_die
    second_due = WEDNESDAY_10 - timedelta(hours=24)
    with pytest.raises(Crash):
        engine.tick(second_due)
    engine.mailer.send = real_send
    assert engine.recover(second_due) == 1
    engine.tick(second_due + timedelta(minutes=1))
    engine.tick(second_due + timedelta(minutes=2))
    last = [s for s in google_fake.sent[2:] if s.recipients == ["ana@example.com"]]  # the digest went to Lena meanwhile
    assert len(last) == 2 and last[0].message["Message-ID"] == last[1].message["Message-ID"]
    assert all(a.state is ActionState.DONE for a in ledger.actions(kinds=[ActionKind.EMAIL]) if a.template == "reminder")


def test_a_revoked_token_holds_the_email_until_the_account_is_connected_again(tmp_path, google_fake, gmail_settings, google_credentials):
    settings = gmail_settings()
    credentials = google_credentials([SCOPE_GMAIL_SEND], expired=True)
    save_credentials(credentials, token_path(settings))
    google_fake.revoke_refresh_token(credentials.refresh_token)
    calendar = MemoryCalendar("primary")
    engine = build_engine(settings, MONDAY, ledger=Ledger(tmp_path / "ledger.sqlite3"), calendars=[(calendar, NullWriteBack())],
                          provider=RecordOnlyProvider())
    calendar.put(event("e1", WEDNESDAY_10), MONDAY)
    report = engine.tick(MONDAY)
    assert any("python main.py auth google" in problem for problem in report.problems)
    [confirmation] = [a for a in engine.ledger.actions(kinds=[ActionKind.EMAIL]) if a.template == "booking_confirmation"]
    assert confirmation.state is ActionState.PLANNED and "Gmail" in confirmation.last_error
    assert google_fake.sent == []
    # Many ticks later it still waits, without using up its attempts...
    for minutes in range(15, 24 * 60, 15):
        engine.tick(MONDAY + timedelta(minutes=minutes))
    assert engine.ledger.action(confirmation.id).state is ActionState.PLANNED
    # ...and goes out once the practitioner has run the auth command again.
    save_credentials(google_credentials([SCOPE_GMAIL_SEND]), token_path(settings))
    engine.tick(MONDAY + timedelta(days=1, minutes=15))
    assert engine.ledger.action(confirmation.id).state is ActionState.DONE
    confirmations = [sent for sent in google_fake.sent
                     if sent.recipients == ["ana@example.com"] and "About your" in sent.message["Subject"]]  # found at the first look
    assert len(confirmations) == 1
