"""The inbox's own emails to the practice (docs/inbox.md): the reply to a command or STATUS,
and a message that is no command forwarded as it came. Both are email actions (policy
"inbox", template `inbox_reply`, to practice.email) with ids stable from the message's key,
so they go through the outbox with its retries and are planned once.

What the template gets (`details`) is kept in the action's context under REPLY, in JSON:
words chosen by Slotguard (an outcome, a state) and data from the ledger (a client's name,
an amount, a time), never text from the message, but the sender's address of a forwarded
message. A forwarded message waits in a 0600 file under DATA_DIR/inbox-spool until its email
is sent (SPOOL in the context names it); `sweep_spool` removes the files whose email is done.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from slotguard.config.schema import Settings
from slotguard.domain.model import Action, ActionKind, ActionState, ActionSubject, action_id_for, new_action
from slotguard.store.ledger import Ledger
from slotguard.store.private_files import private_file, private_folder

log = logging.getLogger("slotguard.inbox")

POLICY = "inbox"
TEMPLATE = "inbox_reply"
REPLY = "reply"  # context: the template's details
SPOOL = "spool"  # context: the file name of the forwarded message under spool_folder()
PRACTICE = "practice"  # the calendar id of mail to the practice itself (as the digest's)


def spool_folder(settings: Settings) -> Path:
    return Path(settings.storage.data_dir) / "inbox-spool"


def reply_id(message_key: str, what: str = "reply") -> str:
    return action_id_for(f"inbox/{message_key}", POLICY, ActionKind.EMAIL.value, what)


def plan_reply(settings: Settings, ledger: Ledger, message_key: str, details: dict[str, Any], now: datetime, what: str = "reply") -> Action | None:
    """Store the email to the practice about the message `message_key` (in the caller's
    transaction); None when it was planned before."""
    action_id = reply_id(message_key, what)
    context: dict[str, Any] = {REPLY: details}
    if what == "forward":
        context[SPOOL] = f"{action_id}.eml"
    action = new_action(
        ActionSubject(PRACTICE, "", settings.practice.email, settings.practice.name),
        ActionKind.EMAIL, POLICY, f"inbox {what}: {details.get('kind', '')} {details.get('outcome', '')}".strip(),
        key=f"inbox/{message_key}", action_id=action_id, now=now, template=TEMPLATE, context=context,
    )
    with ledger.transaction():
        added = ledger.add_action(action)
    if added:
        log.info("planned action=%s kind=email template=%s what=%s", action.id, TEMPLATE, what)
    return action if added else None


def spool(settings: Settings, message_key: str, raw: bytes) -> Path:
    """Keep `raw` (0600) until the email forwarding it is sent; written before the action
    that names it is committed, so a crash leaves at worst a file `sweep_spool` removes."""
    folder = private_folder(spool_folder(settings))
    path = folder / f"{reply_id(message_key, 'forward')}.eml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(raw)
        handle.flush()
        os.fsync(handle.fileno())
    private_file(path)
    return path


def spooled(settings: Settings, action: Action) -> bytes:
    """The forwarded message of `action`; raises OSError when its file is gone."""
    name = Path(str(action.context.get(SPOOL) or "")).name
    if not name:
        raise ValueError(f"{action.id}: no forwarded message")
    return (spool_folder(settings) / name).read_bytes()


def sweep_spool(settings: Settings, ledger: Ledger) -> int:
    """Remove the spooled messages whose email is done or cancelled (or was never stored);
    return how many."""
    folder = spool_folder(settings)
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.glob("act_*.eml"):
        action = ledger.action(path.stem)
        if action is None or action.state in (ActionState.DONE, ActionState.CANCELLED):
            path.unlink(missing_ok=True)
            removed += 1
    return removed
