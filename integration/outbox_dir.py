"""The `outbox-dir` mail transport: each message is written as ACTION_ID.eml.

Writing is atomic (a temporary file renamed into place) and a message whose file exists is
not written again, so a retry after a crash never duplicates a message. The folder is 0700
and each file 0600 (mkstemp's mode, kept by the rename): the messages are clients' mail.
"""

from __future__ import annotations

import os
import tempfile
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from slotguard.domain.interfaces import AdapterError
from slotguard.store.private_files import private_folder


class OutboxDirMailer:
    name = "outbox-dir"

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def path_for(self, action_id: str) -> Path:
        return self.folder / f"{action_id}.eml"

    def send(self, message: EmailMessage, action_id: str) -> None:
        target = self.path_for(action_id)
        if target.exists():
            return
        try:
            private_folder(self.folder)  # 0700: the messages are clients' mail
            handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".eml")
            with os.fdopen(handle, "wb") as output:
                output.write(message.as_bytes(policy=SMTP))
            os.replace(temporary, target)
        except OSError as error:
            raise AdapterError(
                f"cannot write to the mail outbox folder {self.folder}: {error.strerror}; "
                "check mail.outbox_dir and its permissions"
            ) from None
