"""The tick's inbox step: read the mailbox of commands by email (docs/inbox.md).

Skeleton: each new message is parsed (slotguard/inbox/parse.py); a client's verified cancel
or confirm goes to slotguard/run/client_mail.client_command. The practitioner's commands,
STATUS and other mail follow.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slotguard.domain.tick_report import TickReport
from slotguard.inbox.parse import incoming
from slotguard.mail.links import CLIENT_COMMANDS, BadToken, load_secret, secret_path, verify
from slotguard.run.client_mail import client_command

CURSOR = "inbox_cursor"


def read_inbox(engine: Any, now: datetime, report: TickReport) -> None:
    """Read new mail from `engine.inbox` and act on what it asks (nothing when None)."""
    if engine.inbox is None:
        return
    page = engine.inbox.read(engine.ledger.meta(CURSOR), now)
    secret = load_secret(secret_path(engine.settings))
    for mail in page.mails:
        message = incoming(mail, engine.settings)
        if engine.ledger.mail_known(message.message_key):
            engine.inbox.file(mail, True)
            continue
        if message.token:
            try:
                token = verify(secret, message.token, now)
            except BadToken:
                continue
            if token.command in CLIENT_COMMANDS:
                client_command(engine, message, token, now, report)
    with engine.ledger.transaction():
        engine.ledger.set_meta(CURSOR, page.cursor)
