"""The tick's inbox step: read the mailbox of commands by email (docs/inbox.md).

Each new message (after the cursor kept in the ledger's meta) is read on its own: one that
cannot be read, or whose handling raises, is a problem of the tick and the next one goes on.
A message is remembered (slotguard/store/inbox_rows.py) in the ledger transaction that does
what it asks; then it is filed with the transport, then the cursor moves. A crash between
those finds the message remembered next time: it is filed again, nothing is done again.

What a message can be:
- a practitioner's signed command (waive, charge_now, mark_paid, keep) from a practitioner's
  address, not failing authentication, with a token that verifies and was not used: carried
  out once (slotguard/run/inbox_commands.py), the practice gets a reply;
- STATUS in the subject from a practitioner's address: a reply with the status;
- a client's signed cancel or confirm: slotguard/run/client_mail.client_command;
- anything refused (forged or unknown sender with a command, a bad or expired token, a token
  used before, an authentication fail, an automatic message with a command): nothing happens,
  a REFUSED row and a log line with a digest of the sender; never a reply to the sender. A
  practitioner's own token sent again from a practitioner's address gets a reply "already done";
  one whose signature holds but came from another address, failed authentication or expired
  gets one note per token to practice.email (slotguard/inbox/replies.py plan_refused_note);
- anything else: never acted on; forwarded to the practice (`inbox.other_mail = "forward"`,
  an email action with the message attached) or left unread ("leave"). An automatic message
  (an auto-reply, a bounce) is left unread either way: forwarding it could loop.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from datetime import datetime
from typing import Any

from slotguard.domain.interfaces import AdapterError, ReceivedMail
from slotguard.domain.tick_report import TickReport
from slotguard.inbox.incoming import Incoming
from slotguard.inbox.parse import incoming
from slotguard.inbox.replies import plan_refused_note, plan_reply, spool, sweep_spool
from slotguard.inbox.words import own_words
from slotguard.mail.links import CLIENT_COMMANDS, PRACTITIONER_COMMANDS, BadToken, Token, load_secret, secret_path, verify
from slotguard.run.client_mail import client_command
from slotguard.run.inbox_commands import already_done, practitioner_command, status_reply
from slotguard.store.containment import describe, raised_at
from slotguard.store.inbox_rows import CLIENT_MAIL, OTHER, REFUSED
from slotguard.store.ledger import LedgerError

log = logging.getLogger("slotguard.inbox")
CURSOR = "inbox_cursor"
LEFT = "left"  # the outcome of a message left unread in the mailbox
_STATUS = re.compile(r"^\s*(?:(?:re|aw|sv|vs|odp|fwd?)\s*:\s*)*status\s*$", re.IGNORECASE)


def sender_digest(sender: str, settings: Any) -> str:
    """The sender as the log names it: a short HMAC under this installation's link secret,
    never the address, and not one anyone holding the client list can recompute."""
    if not sender:
        return "none"
    secret = load_secret(secret_path(settings))
    return hmac.new(secret, b"slotguard-log-sender|" + sender.encode(), hashlib.sha256).hexdigest()[:10]


def is_status(subject: str) -> bool:
    return bool(_STATUS.match(subject))


def read_inbox(engine: Any, now: datetime, report: TickReport) -> None:
    """Read new mail from `engine.inbox` and act on what it asks (nothing when None)."""
    if engine.inbox is None:
        return
    ledger = engine.ledger
    sweep_spool(engine.settings, ledger)
    try:
        page = engine.inbox.read(ledger.meta(CURSOR), now)
    except AdapterError as error:
        report.problem(f"the inbox could not be read ({describe(error)}); it is read again next tick")
        return
    secret = load_secret(secret_path(engine.settings))
    for mail in page.mails:
        if engine.stop_requested():
            return  # the cursor stays: the rest are read next time
        handled = _contained(engine, mail, secret, now, report)
        try:
            engine.inbox.file(mail, handled)
        except AdapterError as error:  # remembered: filed again next time it is read
            report.problem(f"a message read from the inbox could not be filed ({describe(error)}); tried again next tick")
            return
    with ledger.transaction():
        ledger.set_meta(CURSOR, page.cursor)


def _contained(engine: Any, mail: ReceivedMail, secret: bytes, now: datetime, report: TickReport) -> bool:
    """Handle one message; an exception is a problem and the message is left unread."""
    try:
        return handle(engine, mail, secret, now, report)
    except LedgerError:
        raise
    except Exception as error:  # noqa: BLE001 - one bad message never stops the others
        log.error("inbox message failed error=%s at=%s", type(error).__name__, raised_at(error))
        report.problem(f"a message in the inbox (received {mail.received_at.isoformat()}) could not be handled "
                       f"({type(error).__name__}); nothing was done with it, it is left unread, and the others went on")
        return False


def handle(engine: Any, mail: ReceivedMail, secret: bytes, now: datetime, report: TickReport) -> bool:
    """Decide and do what one message asks; True when it is to be filed as handled."""
    settings, ledger = engine.settings, engine.ledger
    if mail.too_large:  # over inbox.max_message_size, not downloaded: left unread for the practitioner, in the digest
        with ledger.transaction():
            new = ledger.remember_mail(message_key=f"too_large:{engine.inbox.name}:{mail.ref}", token_key=None, received_at=mail.received_at,
                                       sender="", kind=OTHER, handled_at=now, outcome="too_large")
        log.info("inbox other kind=%s outcome=too_large size=%d", OTHER, mail.too_large)
        report.happenings[f"inbox:{OTHER}"] += int(new)
        return False
    message = incoming(mail, settings)
    known = ledger.mail_row(message.message_key)
    if known is not None:  # handled before (a crash, or filing failed): filed as it was then, nothing done again
        return not (known["outcome"] == LEFT or known["outcome"].endswith(f"; {LEFT}"))
    practitioner = bool(message.sender) and message.sender in settings.inbox.practitioners(settings.practice.email)
    status = not message.token and is_status(message.subject)
    if not message.token and not status:
        return _other_mail(engine, message, now, report)
    if message.automatic:
        return _refuse(engine, message, "automatic", now, report)
    if message.authenticated is False:
        if not practitioner and message.sender and ledger.is_client(message.sender):
            return _not_carried_out(engine, message, "authentication", now, report)  # not acted on; the practitioner reads it
        return _refuse(engine, message, "authentication", now, report)
    if status:
        if not practitioner:
            return _refuse(engine, message, "sender", now, report)
        status_reply(engine, message, now, report)
        return True
    try:
        token = verify(secret, message.token, message.received_at)  # a link counts as of when the inbox received it
    except BadToken as error:
        reason = "expired" if str(error).startswith("expired") else "bad_token"
        if not practitioner and message.sender and ledger.is_client(message.sender):
            return _not_carried_out(engine, message, reason, now, report)  # a client's stale link: the practitioner reads it
        return _refuse(engine, message, reason, now, report)
    if token.command in CLIENT_COMMANDS:
        words = own_words(message.note, settings.mail.templates_dir)  # what the client wrote beside the command
        forward = bool(words) and settings.inbox.other_mail == "forward" and not message.automatic
        if forward:
            spool(settings, message.message_key, message.mail.raw)  # before the command is committed
        done = "cancelled" if token.command == "cancel" else "confirmed"
        outcome = client_command(engine, message, token, now, report,
                                 also=(lambda: _pass_on(engine, message, done, now)) if forward else None,
                                 left=bool(words) and not forward)
        log.info("inbox client_command command=%s outcome=%s", token.command, outcome)
        if outcome.startswith(("refused", "not acted on")):
            return _not_carried_out(engine, message, outcome.split(":", 1)[-1].strip(), now, report)
        return not (words and not forward)  # what the client wrote stays unread for the practitioner ("leave")
    if token.command not in PRACTITIONER_COMMANDS or not practitioner:
        return _refuse(engine, message, "sender", now, report)
    used = ledger.token_use(token.key)
    if used is not None:
        return _replay(engine, message, token, used, now, report)
    practitioner_command(engine, message, token, now, report)
    return True


def _refuse(engine: Any, message: Incoming, reason: str, now: datetime, report: TickReport) -> bool:
    """Nothing happens: a REFUSED row (the token is not used up) and a log line; never a reply
    to the sender. A practitioner's token whose signature holds, refused for its sender, a
    failed authentication or its expiry, gets one note to practice.email per token (never for
    a bad signature: a forger learns nothing and the practice is not flooded)."""
    with engine.ledger.transaction():
        engine.ledger.remember_mail(message_key=message.message_key, token_key=None, received_at=message.received_at,
                                    sender=message.sender, kind=REFUSED, handled_at=now, outcome=reason)
        plan_refused_note(engine.settings, engine.ledger, message, reason, now)
    log.warning("inbox refused reason=%s sender=%s", reason, sender_digest(message.sender, engine.settings))
    report.happenings["inbox:refused"] += 1
    return True


def _replay(engine: Any, message: Incoming, token: Token, used: dict[str, Any], now: datetime, report: TickReport) -> bool:
    """A practitioner's token used before, from a practitioner's address: refused, and the
    practice is told it was done already (the reply goes to practice.email, not the sender)."""
    with engine.ledger.transaction():
        engine.ledger.remember_mail(message_key=message.message_key, token_key=None, received_at=message.received_at,
                                    sender=message.sender, kind=REFUSED, handled_at=now, command=token.command,
                                    action_id=f"act_{token.target}", outcome="replay")
        already_done(engine, message, token, used, now)
    log.warning("inbox refused reason=replay sender=%s", sender_digest(message.sender, engine.settings))
    report.happenings["inbox:refused"] += 1
    return True


def _not_carried_out(engine: Any, message: Incoming, reason: str, now: datetime, report: TickReport) -> bool:
    """A client's link that cannot be carried out (too late, expired, another address, moved):
    nothing happens, and the message reaches the practitioner as any other mail from a client."""
    log.info("inbox client link not carried out reason=%s sender=%s", reason, sender_digest(message.sender, engine.settings))
    return _other_mail(engine, message, now, report)


def _pass_on(engine: Any, message: Incoming, done: str, now: datetime) -> None:
    """A client's command was carried out and they wrote something beside it: plan the
    forward to the practice (in client_command's transaction), saying what was done."""
    details = {"kind": "forward", "outcome": done, "sender": message.sender, "received_at": message.received_at.isoformat()}
    plan_reply(engine.settings, engine.ledger, message.message_key, details, now, what="forward")


def _other_mail(engine: Any, message: Incoming, now: datetime, report: TickReport) -> bool:
    """Free text (a client's question, a reply): never acted on; forwarded or left unread."""
    settings, ledger = engine.settings, engine.ledger
    kind = CLIENT_MAIL if message.sender and ledger.is_client(message.sender) else OTHER
    ours = message.sender and message.sender == settings.sender.lower()  # our own mail come back: forwarding it could loop
    forward = settings.inbox.other_mail == "forward" and not message.automatic and not ours
    if forward:
        spool(settings, message.message_key, message.mail.raw)  # before the action naming it is committed
    with ledger.transaction():
        ledger.remember_mail(message_key=message.message_key, token_key=None, received_at=message.received_at,
                             sender=message.sender, kind=kind, handled_at=now, outcome="forwarded" if forward else LEFT)
        if forward:
            details = {"kind": "forward", "outcome": "forwarded", "sender": message.sender, "received_at": message.received_at.isoformat()}
            plan_reply(settings, ledger, message.message_key, details, now, what="forward")
    log.info("inbox other kind=%s outcome=%s sender=%s", kind, "forwarded" if forward else LEFT, sender_digest(message.sender, engine.settings))
    report.happenings[f"inbox:{kind}"] += 1
    return forward
