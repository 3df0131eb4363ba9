"""The SMTP transport against a real SMTP server (aiosmtpd) on a free loopback port: plain,
STARTTLS with AUTH and implicit TLS (a self-signed certificate made in the test), a relay
whose certificate a private certificate authority signed (mail.smtp.ca_file), a server that
refuses and then accepts, one that drops the connection mid-DATA, a refused login."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from integration.memory import MemoryCalendar
from integration.record_only import RecordOnlyProvider
from integration.smtp_mailer import SmtpMailer
from slotguard.config.sections import Smtp
from slotguard.config.types import ConfigError
from slotguard.domain.interfaces import AdapterError, NullWriteBack
from slotguard.domain.model import ActionState
from slotguard.mail.messages import Rendered, build_email
from slotguard.run.wiring import build_engine, open_mailer
from slotguard.store.ledger import Ledger
from tests.support.builders import event, settings
from tests.support.smtp_server import PrivateAuthority, Recorder, SmtpServer, free_port, self_signed_certificate

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
WEDNESDAY_10 = datetime(2026, 3, 4, 10, 0, tzinfo=OSLO)
PASSWORD = "correct horse battery staple"


@pytest.fixture
def certificate(tmp_path):
    return self_signed_certificate(tmp_path)


@pytest.fixture
def servers():
    started = []

    def start(**options) -> SmtpServer:
        server = SmtpServer(**options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def message(to="ana@example.com", name="Ana Silva", action_id="act_0123456789abcdef0123"):
    rendered = Rendered(subject="Your massage is booked", text="Dear Ana,\n", html="<p>Dear Ana,</p>", locale="en")
    return build_email(
        rendered, sender_name="Lena Berg Massage", sender_email="lena@example.com", reply_to="lena@example.com",
        to_name=name, to_email=to, message_id=f"<{action_id}@example.com>", date=MONDAY,
    )


def smtp(port, **options) -> Smtp:
    return Smtp(host="127.0.0.1", port=port, timeout="5s", **{"security": "none", **options})


def test_a_plain_relay_receives_the_message_with_its_headers_and_envelope(servers):
    server = servers()
    SmtpMailer(smtp(server.port)).send(message(), "act_0123456789abcdef0123")
    [received] = server.messages
    assert received["To"] == "Ana Silva <ana@example.com>"
    assert received["Reply-To"] == "Lena Berg Massage <lena@example.com>"
    assert received["Message-ID"] == "<act_0123456789abcdef0123@example.com>"
    assert received["Date"] and received.get_body(("html",)).get_content().strip() == "<p>Dear Ana,</p>"
    assert server.recorder.envelopes == [("lena@example.com", ["ana@example.com"])]


def test_starttls_with_auth_logs_in_with_the_referenced_password_and_never_logs_it(servers, certificate, monkeypatch, caplog):
    monkeypatch.setenv("SLOTGUARD_TEST_SMTP_PASSWORD", PASSWORD)
    server = servers(certificate=certificate, users={"lena": PASSWORD})
    settings_ = smtp(server.port, security="starttls", username="lena", password={"env": "SLOTGUARD_TEST_SMTP_PASSWORD"})
    with caplog.at_level(logging.DEBUG):
        SmtpMailer(settings_, ssl_context=certificate.client_context()).send(message(), "act_0123456789abcdef0123")
    assert len(server.messages) == 1 and server.recorder.logins == ["lena"]
    assert PASSWORD not in caplog.text and "act_0123456789abcdef0123" in caplog.text
    assert PASSWORD not in repr(SmtpMailer(settings_, ssl_context=certificate.client_context()))


def test_implicit_tls_sends_over_an_encrypted_connection(servers, certificate):
    server = servers(certificate=certificate, implicit_tls=True)
    SmtpMailer(smtp(server.port, security="tls"), ssl_context=certificate.client_context()).send(message(), "act_1")
    assert len(server.messages) == 1


def test_a_certificate_that_does_not_verify_is_a_clear_error_that_is_not_retried(servers, certificate):
    server = servers(certificate=certificate)
    with pytest.raises(AdapterError) as caught:
        SmtpMailer(smtp(server.port, security="starttls")).send(message(), "act_1")  # system trust store only
    assert not caught.value.retryable and "certificate" in str(caught.value)
    assert server.messages == []


def test_a_server_without_starttls_is_refused_rather_than_sending_in_clear(servers):
    server = servers()
    with pytest.raises(AdapterError) as caught:
        SmtpMailer(smtp(server.port, security="starttls")).send(message(), "act_1")
    assert not caught.value.retryable and "STARTTLS" in str(caught.value) and "mail.smtp.security" in str(caught.value)
    assert server.messages == []


def test_a_refused_login_is_not_retried_and_names_what_to_check_but_not_the_password(servers, certificate, monkeypatch):
    monkeypatch.setenv("SLOTGUARD_TEST_SMTP_PASSWORD", "wrong password")
    server = servers(certificate=certificate, users={"lena": PASSWORD})
    settings_ = smtp(server.port, security="starttls", username="lena", password={"env": "SLOTGUARD_TEST_SMTP_PASSWORD"})
    with pytest.raises(AdapterError) as caught:
        SmtpMailer(settings_, ssl_context=certificate.client_context()).send(message(), "act_1")
    text = str(caught.value)
    assert not caught.value.retryable
    assert "refused the login" in text and "'lena'" in text and "SLOTGUARD_TEST_SMTP_PASSWORD" in text
    assert "wrong password" not in text and server.messages == []


def test_a_temporary_refusal_is_retryable_and_a_permanent_one_is_not(servers):
    busy = servers(recorder=Recorder(refuse_first=1, refuse_reply="451 4.3.0 Mailbox busy, try again later"))
    with pytest.raises(AdapterError) as temporary:
        SmtpMailer(smtp(busy.port)).send(message(), "act_1")
    assert temporary.value.retryable and "451" in str(temporary.value)
    gone = servers(recorder=Recorder(refuse_first=1, refuse_reply="550 5.1.1 No such mailbox"))
    with pytest.raises(AdapterError) as permanent:
        SmtpMailer(smtp(gone.port)).send(message(), "act_1")
    assert not permanent.value.retryable and "550" in str(permanent.value)


def test_a_server_that_cannot_be_reached_is_retryable():
    with pytest.raises(AdapterError) as caught:
        SmtpMailer(smtp(free_port())).send(message(), "act_1")
    assert caught.value.retryable and "127.0.0.1" in str(caught.value)


def test_a_connection_dropped_mid_data_is_retryable(servers):
    server = servers(recorder=Recorder(drop_first=1))
    with pytest.raises(AdapterError) as caught:
        SmtpMailer(smtp(server.port)).send(message(), "act_1")
    assert caught.value.retryable and "closed the connection" in str(caught.value)
    SmtpMailer(smtp(server.port)).send(message(), "act_1")
    assert len(server.messages) == 1


# -- through the engine: retries with backoff, failures reported --------------------------------


class Loop:
    def __init__(self, tmp_path, mailer):
        self.settings = settings(mail={"transport": "outbox-dir", "digest_hour": -1})
        self.calendar = MemoryCalendar("primary")
        self.ledger = Ledger(tmp_path / "ledger.sqlite3")
        self.engine = build_engine(
            self.settings, MONDAY, ledger=self.ledger, calendars=[(self.calendar, NullWriteBack())],
            provider=RecordOnlyProvider(), mailer=mailer,
        )

    def confirmation(self):
        [action] = [a for a in self.ledger.actions() if a.template == "booking_confirmation"]
        return action


def test_a_server_that_refuses_then_accepts_gets_the_message_once_after_a_backoff(tmp_path, servers):
    server = servers(recorder=Recorder(refuse_first=2))
    loop = Loop(tmp_path, SmtpMailer(smtp(server.port)))
    loop.calendar.put(event("e1", WEDNESDAY_10), MONDAY)
    report = loop.engine.tick(MONDAY)
    first = loop.confirmation()
    assert report.executed["email:retry"] == 1 and first.state is ActionState.PLANNED
    assert first.due_at == MONDAY + timedelta(minutes=2) and "451" in first.last_error
    loop.engine.tick(MONDAY + timedelta(minutes=1))
    assert server.recorder.data_attempts == 1, "nothing is tried again before the backoff is over"
    loop.engine.tick(first.due_at)
    second = loop.confirmation()
    assert second.state is ActionState.PLANNED and second.due_at == first.due_at + timedelta(minutes=4)
    loop.engine.tick(second.due_at)
    done = loop.confirmation()
    assert done.state is ActionState.DONE and done.attempts == 3
    assert [m["Message-ID"] for m in server.messages] == [done.external_id]
    loop.engine.tick(second.due_at + timedelta(hours=1))
    assert len(server.messages) == 1, "sent exactly once"


def test_a_dropped_connection_is_retried_by_the_engine_with_the_same_message_id(tmp_path, servers):
    server = servers(recorder=Recorder(drop_first=1))
    loop = Loop(tmp_path, SmtpMailer(smtp(server.port)))
    loop.calendar.put(event("e1", WEDNESDAY_10), MONDAY)
    loop.engine.tick(MONDAY)
    assert loop.confirmation().state is ActionState.PLANNED
    loop.engine.tick(MONDAY + timedelta(minutes=2))
    done = loop.confirmation()
    assert done.state is ActionState.DONE
    [received] = server.messages
    assert received["Message-ID"] == f"<{done.id}@example.com>"


def test_a_refused_login_fails_the_action_at_once_and_reports_it(tmp_path, servers, certificate, monkeypatch):
    monkeypatch.setenv("SLOTGUARD_TEST_SMTP_PASSWORD", "wrong password")
    server = servers(certificate=certificate, users={"lena": PASSWORD})
    settings_ = smtp(server.port, security="starttls", username="lena", password={"env": "SLOTGUARD_TEST_SMTP_PASSWORD"})
    loop = Loop(tmp_path, SmtpMailer(settings_, ssl_context=certificate.client_context()))
    loop.calendar.put(event("e1", WEDNESDAY_10), MONDAY)
    report = loop.engine.tick(MONDAY)
    failed = loop.confirmation()
    assert failed.state is ActionState.FAILED and failed.attempts == 1
    assert any("refused the login" in problem and "ana@example.com" in problem for problem in report.problems)


# -- wiring ----------------------------------------------------------------------------------


def test_the_smtp_transport_is_wired_from_the_config_and_a_missing_secret_stops_start_up(monkeypatch):
    wired = open_mailer(settings(mail={"transport": "smtp", "smtp": {"host": "127.0.0.1", "port": 2525, "security": "none"}}))
    assert isinstance(wired, SmtpMailer)
    monkeypatch.delenv("SLOTGUARD_TEST_SMTP_PASSWORD", raising=False)
    with pytest.raises(ConfigError) as missing:
        open_mailer(settings(mail={"transport": "smtp", "smtp": {
            "host": "smtp.example.com", "username": "lena", "password": {"env": "SLOTGUARD_TEST_SMTP_PASSWORD"}}}))
    assert "SLOTGUARD_TEST_SMTP_PASSWORD" in str(missing.value)
    with pytest.raises(ConfigError) as no_password:
        open_mailer(settings(mail={"transport": "smtp", "smtp": {"host": "smtp.example.com", "username": "lena"}}))
    assert "mail.smtp.password" in str(no_password.value)


# -- a relay whose certificate a private certificate authority signed (mail.smtp.ca_file) -------


@pytest.fixture
def office(tmp_path):
    """The office's own certificate authority; its certificate is in no system trust store."""
    return PrivateAuthority(tmp_path, "office")


SECURITIES = [pytest.param("starttls", id="starttls"), pytest.param("tls", id="implicit-tls")]


@pytest.mark.parametrize("security", SECURITIES)
def test_a_relay_signed_by_a_private_authority_gets_the_message_when_ca_file_names_that_authority(servers, office, security):
    server = servers(certificate=office.issue(("127.0.0.1", "localhost")), implicit_tls=security == "tls")
    SmtpMailer(smtp(server.port, security=security, ca_file=str(office.cert_file))).send(message(), "act_0123456789abcdef0123")
    [received] = server.messages
    assert received["Message-ID"] == "<act_0123456789abcdef0123@example.com>"
    assert server.recorder.envelopes == [("lena@example.com", ["ana@example.com"])]


@pytest.mark.parametrize("security", SECURITIES)
def test_without_ca_file_a_privately_signed_relay_is_refused_with_advice_to_set_it(servers, office, security):
    server = servers(certificate=office.issue(), implicit_tls=security == "tls")
    with pytest.raises(AdapterError) as caught:
        SmtpMailer(smtp(server.port, security=security)).send(message(), "act_1")
    text = str(caught.value)
    assert not caught.value.retryable
    assert f"SMTP server 127.0.0.1:{server.port}: its certificate could not be verified" in text
    assert "against the system's trusted certificate authorities: unable to get local issuer certificate;" in text
    assert "set mail.smtp.ca_file to that authority's PEM file" in text
    assert server.messages == [] and server.recorder.data_attempts == 0


@pytest.mark.parametrize("security", SECURITIES)
def test_a_ca_file_holding_another_authority_is_refused_and_names_the_file(servers, office, tmp_path, security):
    stranger = PrivateAuthority(tmp_path, "stranger")
    server = servers(certificate=office.issue(), implicit_tls=security == "tls")
    with pytest.raises(AdapterError) as caught:
        SmtpMailer(smtp(server.port, security=security, ca_file=str(stranger.cert_file))).send(message(), "act_1")
    text = str(caught.value)
    assert not caught.value.retryable and "could not be verified" in text
    assert f"the certificate authorities in {stranger.cert_file} (mail.smtp.ca_file)" in text
    assert "holds the authority that signed the server's certificate" in text
    assert server.messages == []


@pytest.mark.parametrize("security", SECURITIES)
def test_with_ca_file_the_host_name_is_still_checked(servers, office, security):
    server = servers(certificate=office.issue(("mail.office.example",)), implicit_tls=security == "tls")
    with pytest.raises(AdapterError) as caught:
        SmtpMailer(smtp(server.port, security=security, ca_file=str(office.cert_file))).send(message(), "act_1")
    text = str(caught.value)
    assert not caught.value.retryable
    assert "mismatch, certificate is not valid for '127.0.0.1'" in text and "mail.smtp.host" in text
    assert server.messages == []


def test_an_unverified_relay_fails_the_email_visibly_and_keeps_it_in_the_ledger(tmp_path, servers, office):
    server = servers(certificate=office.issue())
    loop = Loop(tmp_path, SmtpMailer(smtp(server.port, security="starttls")))
    loop.calendar.put(event("e1", WEDNESDAY_10), MONDAY)
    report = loop.engine.tick(MONDAY)
    failed = loop.confirmation()
    assert failed.state is ActionState.FAILED and failed.attempts == 1
    assert "could not be verified" in failed.last_error and "mail.smtp.ca_file" in failed.last_error
    assert [a.id for a in loop.ledger.actions(states=[ActionState.FAILED])] == [failed.id], "listed by `main.py status`"
    assert any("could not be verified" in problem and "ana@example.com" in problem for problem in report.problems)
    assert server.messages == []
    loop.engine.tick(MONDAY + timedelta(hours=1))
    assert server.messages == [] and loop.confirmation().state is ActionState.FAILED, "never sent unverified"


def test_ca_file_is_wired_from_the_config_and_a_file_gone_since_loading_stops_start_up(servers, office):
    server = servers(certificate=office.issue(), implicit_tls=True)
    configured = settings(mail={"transport": "smtp", "smtp": {
        "host": "127.0.0.1", "port": server.port, "security": "tls", "timeout": "5s", "ca_file": str(office.cert_file)}})
    open_mailer(configured).send(message(), "act_1")
    assert len(server.messages) == 1
    office.cert_file.unlink()
    with pytest.raises(ConfigError) as gone:
        open_mailer(configured)
    [problem] = gone.value.problems
    assert problem.startswith(f"mail.smtp.ca_file: no file {office.cert_file};")
