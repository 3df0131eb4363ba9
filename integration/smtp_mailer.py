"""The `smtp` mail transport: one connection per message, STARTTLS or implicit TLS, AUTH.
The server's certificate is verified against the system's trusted authorities, or only those
in mail.smtp.ca_file (an office relay signed by a private authority); host names are checked.

Failures become AdapterError: retryable for what may pass later (the server cannot be
reached, the connection drops, a 4xx "try again later" reply), not retryable for what will
not (a 5xx permanent rejection, a refused login, a server without the TLS it was configured
for, a certificate that does not verify). Messages name the server and what to check; the
password is never logged or put in a message.

Exactly once: the engine writes the action `executing` before `send` and `done` after it.
SMTP has no way to ask whether a message was already accepted, so a crash between the
server's 250 reply and the ledger commit sends it again after recovery: at most one
duplicate, carrying the same Message-ID (stable per action), which mail clients and
mailbox providers use to recognise it.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from email.message import EmailMessage

from slotguard.config.sections import Smtp
from slotguard.config.types import ConfigError
from slotguard.domain.interfaces import AdapterError

log = logging.getLogger("slotguard.smtp")


class SmtpMailer:
    name = "smtp"

    def __init__(self, settings: Smtp, *, ssl_context: ssl.SSLContext | None = None, local_hostname: str | None = None):
        """`settings` is the [mail.smtp] table; the password is resolved here, so a missing
        secret stops start-up (ConfigError naming the reference, never the value).
        TLS verifies the server's certificate against mail.smtp.ca_file (a private
        authority's PEM file) or, when that is empty, the system's trusted authorities; a
        `ca_file` that cannot be used is a ConfigError. `ssl_context` replaces both (tests)."""
        self.settings = settings
        self._uses_ca_file = ssl_context is None and bool(settings.ca_file)
        if ssl_context is not None:
            self._trusted = "the certificate authorities given"
        elif settings.ca_file:
            self._trusted = f"the certificate authorities in {settings.ca_file} (mail.smtp.ca_file)"
        else:
            self._trusted = "the system's trusted certificate authorities"
        self.ssl_context = ssl_context or settings.tls_context()
        self.local_hostname = local_hostname
        self._password = ""
        if settings.username:
            if settings.password is None:
                raise ConfigError(['mail.smtp.password: a username needs a password = { env = "SMTP_PASSWORD" }'])
            self._password = settings.password.resolve()

    def __repr__(self) -> str:
        return (f"SmtpMailer(host={self.settings.host!r}, port={self.settings.port}, security={self.settings.security!r}, "
                f"ca_file={self.settings.ca_file!r})")

    @property
    def where(self) -> str:
        return f"SMTP server {self.settings.host}:{self.settings.port}"

    def _connect(self) -> smtplib.SMTP:
        timeout = self.settings.timeout.total_seconds()
        if self.settings.security == "tls":
            return smtplib.SMTP_SSL(self.settings.host, self.settings.port, local_hostname=self.local_hostname,
                                    timeout=timeout, context=self.ssl_context)
        return smtplib.SMTP(self.settings.host, self.settings.port, local_hostname=self.local_hostname, timeout=timeout)

    def send(self, message: EmailMessage, action_id: str) -> None:
        """Deliver `message` to its To addresses. Raises AdapterError (see the module doc)."""
        recipients = [address.addr_spec for address in message["To"].addresses]
        sender = message["From"].addresses[0].addr_spec
        try:
            with self._connect() as client:
                client.ehlo()
                if self.settings.security == "starttls":
                    if not client.has_extn("starttls"):
                        raise AdapterError(
                            f"{self.where} does not offer STARTTLS; set mail.smtp.security to \"tls\" (port 465) "
                            "or, for a local relay only, \"none\"",
                            retryable=False,
                        )
                    client.starttls(context=self.ssl_context)
                    client.ehlo()
                if self.settings.username:
                    client.login(self.settings.username, self._password)
                refused = client.send_message(message, from_addr=sender, to_addrs=recipients)
        except AdapterError:
            raise
        except Exception as error:  # every failure is classified; nothing escapes unnamed
            raise self._classify(error) from None
        if refused:
            raise self._refused(refused)
        log.info("sent action=%s via=smtp host=%s recipients=%d", action_id, self.settings.host, len(recipients))

    def _classify(self, error: Exception) -> AdapterError:
        where = self.where
        if isinstance(error, smtplib.SMTPAuthenticationError):
            return AdapterError(
                f"{where} refused the login for user {self.settings.username!r} ({error.smtp_code}); "
                f"check mail.smtp.username and the password in the {self.settings.password.describe() if self.settings.password else 'secret'}",
                retryable=False,
            )
        if isinstance(error, smtplib.SMTPNotSupportedError):
            return AdapterError(f"{where}: {error}; check mail.smtp.security and username", retryable=False)
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            return self._refused(error.recipients)
        if isinstance(error, smtplib.SMTPResponseException):
            text = error.smtp_error.decode("utf-8", "replace") if isinstance(error.smtp_error, bytes) else str(error.smtp_error)
            if 400 <= error.smtp_code < 500:
                return AdapterError(f"{where} asked to try again later: {error.smtp_code} {text}", retryable=True)
            return AdapterError(f"{where} rejected the message: {error.smtp_code} {text}", retryable=False)
        if isinstance(error, ssl.SSLCertVerificationError):
            if self._uses_ca_file:
                advice = "check that this file holds the authority that signed the server's certificate, and mail.smtp.host"
            else:
                advice = ("check mail.smtp.host, or, if the server's certificate is signed by a private certificate "
                          "authority, set mail.smtp.ca_file to that authority's PEM file")
            return AdapterError(
                f"{where}: its certificate could not be verified against {self._trusted}: "
                f"{str(error.verify_message).rstrip('.')}; {advice}",
                retryable=False,
            )
        if isinstance(error, smtplib.SMTPServerDisconnected):
            return AdapterError(f"{where} closed the connection before confirming the message; will try again", retryable=True)
        if isinstance(error, (socket.timeout, TimeoutError)):
            return AdapterError(f"{where} did not answer within {self.settings.timeout}; will try again", retryable=True)
        if isinstance(error, (OSError, smtplib.SMTPException)):
            reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
            return AdapterError(f"cannot reach the {where}: {reason}; will try again", retryable=True)
        return AdapterError(f"{where}: unexpected {type(error).__name__}: {error}", retryable=False)

    def _refused(self, refused: dict) -> AdapterError:
        codes = [code for code, _ in refused.values()]
        details = "; ".join(
            f"{address}: {code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}"
            for address, (code, text) in refused.items()
        )
        temporary = all(400 <= code < 500 for code in codes)
        verb = "asked to try again later for" if temporary else "refused"
        return AdapterError(f"{self.where} {verb} the recipient ({details})", retryable=temporary)


def open_mailer(settings) -> SmtpMailer:
    """The SMTP mailer for `settings` (a Settings with mail.smtp set)."""
    if settings.mail.smtp is None:
        raise ConfigError(['mail.smtp: mail.transport = "smtp" needs a [mail.smtp] table with host'])
    return SmtpMailer(settings.mail.smtp)
