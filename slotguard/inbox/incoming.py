"""One message read from the inbox, as the commands see it (docs/inbox.md).

Everything here comes from the sender and is untrusted, but `received_at` (the receiving
server's time) and `authenticated` (what the receiving server found, read only from the
Authentication-Results headers it is trusted to add). The parsing (`incoming`) is the
commands' (slotguard/inbox/parse.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from slotguard.domain.interfaces import ReceivedMail


@dataclass(frozen=True, slots=True)
class Incoming:
    mail: ReceivedMail
    message_key: str  # the Message-ID (angle brackets kept, as sent); a digest of the message when it has none
    sender: str  # the From address, lower case; "" when there is none or several
    subject: str  # one line, untrusted, for matching words (STATUS) and the token
    token: str  # the token in the subject (slotguard/mail/links.py find_token), "" when none
    note: str  # what the sender wrote in the body: plain text, quoted lines and signature left out, short; untrusted
    authenticated: bool | None  # True: an aligned DKIM, SPF or DMARC pass for the sender's domain; False: the trusted header shows no aligned pass (or authserv_id's header is missing); None: no header
    automatic: bool  # an auto-reply, bounce or list message (Auto-Submitted, Precedence, a null sender): never answered

    @property
    def received_at(self) -> datetime:
        return self.mail.received_at
