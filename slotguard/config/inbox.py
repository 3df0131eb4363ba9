"""`[inbox]`: the mailbox Slotguard reads, so the practitioner and clients can act by email (docs/inbox.md).

The practitioner's emails carry signed one-tap command links (`mailto:` this inbox with the
command in the subject); clients' reminders and confirmations carry "I'll be there" and "I need
to cancel" links of the same kind. Slotguard reads the inbox each tick (IMAP, with IDLE where
the server offers it, or the Gmail API), carries out a valid command exactly once and files
the message; anything else is never acted on and reaches the practitioner.

Read by slotguard/inbox/ (tokens, commands) and the transports integration/imap_inbox.py and
integration/gmail_inbox.py. Passwords are secret references, never the config itself.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from slotguard.config.limits import at_most
from slotguard.config.types import DAY, PositiveDuration, SecretRef, Strict

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class Imap(Strict):
    host: str = Field(description="The IMAP server's host name.", examples=["imap.fastmail.com", "imap.gmail.com"])
    port: int = Field(0, ge=0, le=65535, description="The port; 0: 993 for tls = \"imaps\", 143 otherwise.", examples=[993])
    tls: Literal["imaps", "starttls", "none"] = Field(
        "imaps",
        description='"imaps" (TLS from the first byte, port 993), "starttls" (plain, then STARTTLS, port 143; refused if the server does not offer it) or "none" (only to a server on this machine: 127.0.0.1, ::1, localhost).',
    )
    ca_file: str = Field("", description="A PEM file of the certificate authorities to trust instead of the system's; empty: the system's.", examples=["/etc/slotguard/mail-ca.pem"])
    username: str = Field(description="The mailbox's user name (usually its address).", examples=["lena@example.com"])
    password: SecretRef = Field(description="The password (an app password where the provider has them), by reference.", examples=[{"env": "IMAP_PASSWORD"}])
    folder: str = Field("INBOX", description="The folder command messages arrive in.", examples=["INBOX", "Slotguard"])
    processed_folder: str = Field(
        "Processed by Slotguard",
        description="Where a message Slotguard has handled is moved (created when missing); the practitioner can look there for what was done. Never named like the sub-address of inbox.address (not \"Slotguard\" nor \"Slotguard/...\" for lena+slotguard@): Fastmail, Cyrus and Dovecot deliver name+slotguard@ mail into a folder of that name when it exists.",
        examples=["Processed by Slotguard"],
    )
    idle: bool = Field(True, description="Wait for new mail with IMAP IDLE where the server offers it (a command is carried out within seconds); false, or a server without IDLE: read once per calendar.poll_interval.")
    timeout: Annotated[PositiveDuration, AfterValidator(at_most(timedelta(minutes=5), "a server silent for longer is gone"))] = Field(
        timedelta(seconds=30), description="How long to wait for the server before a read counts as failed (tried again next tick).", examples=["30s"]
    )

    @property
    def port_or_default(self) -> int:
        return self.port or (993 if self.tls == "imaps" else 143)

    @model_validator(mode="after")
    def _plain_only_here(self) -> Imap:
        if self.tls == "none" and self.host.strip("[]").lower() not in LOOPBACK:
            raise ValueError(f'inbox.imap.tls = "none" sends the password in clear: only to this machine (127.0.0.1, ::1, localhost), not {self.host}')
        return self


class GmailInbox(Strict):
    api_endpoint: str = Field("", description="Override the Gmail API root (tests, proxies); empty: Google's.", examples=["http://127.0.0.1:8080/"])
    processed_label: str = Field(
        "Processed by Slotguard",
        description="The label a handled message gets (created when missing); it also leaves the inbox and is marked read.",
        examples=["Processed by Slotguard"],
    )


class Inbox(Strict):
    source: Literal["none", "imap", "gmail", "memory"] = Field(
        "none",
        description='"none": no inbox (emails carry no command links); "imap" ([inbox.imap]); "gmail" (the Gmail API with the Google authorisation the calendar uses, scope gmail.modify; `main.py auth google` asks for it); "memory" is for replay.',
    )
    address: str = Field(
        "",
        description="The address command links send to: the practitioner's own with a sub-address (lena+slotguard@example.com) or a mailbox of its own. Required unless source is \"none\".",
        examples=["lena+slotguard@example.com", "slotguard@example.com"],
    )
    practitioner_addresses: list[str] = Field(
        default_factory=list,
        description="The addresses a practitioner's command is accepted from (compared without regard to case); empty: practice.email only.",
        examples=[["lena@example.com", "lena.berg@gmail.com"]],
    )
    authserv_id: str = Field(
        "",
        description="The name your receiving mail server gives itself in Authentication-Results headers (mx.example.com). Set: a command needs that server's DKIM or SPF pass for the sender's domain. Empty: the topmost Authentication-Results header, when there is one, must say so.",
        examples=["mx.fastmail.com", "mx.google.com"],
    )
    other_mail: Literal["forward", "leave"] = Field(
        "forward",
        description='What happens to a message that is no command (a client\'s question, a reply): "forward" sends it on to practice.email (for a mailbox of its own), "leave" leaves it unread where it is (for the practitioner\'s own mailbox). Never acted on either way; the digest mentions it.',
    )
    link_valid_for: Annotated[PositiveDuration, AfterValidator(at_most(90 * DAY, "an old link should not move money"))] = Field(
        timedelta(days=14), description="How long a practitioner's command link can be used after its email was sent.", examples=["14d"]
    )
    max_message_size: int = Field(
        5 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024,
        description="The largest message, in bytes, Slotguard downloads from the inbox: a command or a client's note is a few kB; a larger message is left unread for the practitioner (the digest mentions it) and the reading goes on past it.",
        examples=[5242880],
    )
    client_links: bool = Field(True, description="Reminders and booking confirmations carry \"I'll be there\" and \"I need to cancel\" links (valid until the appointment starts).")
    secret_file: str = Field(
        "",
        description="The file of this installation's signing key for links (created 0600 on first use); empty: DATA_DIR/inbox-secret (memory:NAME: a secret of replay, never written). Anyone who has it can make links: keep it like the Stripe key.",
        examples=["/var/lib/slotguard/inbox-secret"],
    )
    imap: Imap | None = Field(None, description="imap: the server and mailbox ([inbox.imap]).")
    gmail: GmailInbox = Field(default_factory=GmailInbox, description="gmail: the API endpoint and the label of handled messages ([inbox.gmail]).")

    @model_validator(mode="after")
    def _complete(self) -> Inbox:
        if self.source != "none" and "@" not in self.address:
            raise ValueError(f'inbox.source = "{self.source}" needs inbox.address, the address command links send to')
        if self.secret_file.startswith("memory:") and self.source != "memory":
            raise ValueError('inbox.secret_file = "memory:..." (a secret that is never kept) is for replay only, with inbox.source = "memory"')
        if self.source == "imap" and self.imap is None:
            raise ValueError('inbox.source = "imap" needs an [inbox.imap] table with host, username and password')
        detail = self.address.partition("@")[0].partition("+")[2].strip().lower()
        if self.source == "imap" and self.imap is not None and detail:
            top = self.imap.processed_folder.replace(".", "/").split("/", 1)[0].strip().lower()
            if top == detail:
                raise ValueError(f'inbox.imap.processed_folder = "{self.imap.processed_folder}" is named like the sub-address of inbox.address '
                                 f'(+{detail}): many servers (Fastmail, Cyrus, Dovecot) then deliver new mail to that address into the folder, '
                                 'where Slotguard does not read it; choose another name, such as "Processed by Slotguard"')
        return self

    def practitioners(self, practice_email: str) -> frozenset[str]:
        """The addresses commands are accepted from, lower case."""
        return frozenset(address.strip().lower() for address in (self.practitioner_addresses or [practice_email]) if address.strip())
