"""The ledger's rows about the inbox (docs/inbox.md): the messages read and what clients said
by email about their appointments. Part of `Ledger`.

- `inbox_mail`: one row per message read, by its Message-ID (`message_key`), with the token it
  carried (`token_key`, unique: a token is used once) and what was done; never the message's
  text. A message already there, or a token already used, is not handled again.
- `email_signals`: a client's cancellation or confirmation of one appointment at one start
  time, with when the inbox received it (the server's time, not the sender's Date header).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slotguard.domain.durations import to_utc_text
from slotguard.store.backend import Connection

# inbox_mail.kind
PRACTITIONER_COMMAND = "command"  # a practitioner's signed command (waive, charge_now, mark_paid, keep)
STATUS = "status"  # a practitioner's STATUS
CLIENT_COMMAND = "client_command"  # a client's signed cancel or confirm
CLIENT_MAIL = "client_mail"  # anything else from a client: forwarded or left for the practitioner
REFUSED = "refused"  # a command not carried out: forged sender, bad or expired token, replay
OTHER = "other"  # from no one we know: left for the practitioner (or forwarded), never acted on
# email_signals.kind
CANCEL = "cancel"
CONFIRM = "confirm"


class InboxRows:
    """Ledger methods for the inbox_mail and email_signals tables."""

    db: Connection

    def mail_known(self, message_key: str) -> bool:
        """True when a message with this Message-ID was handled before."""
        return self.db.execute("SELECT 1 FROM inbox_mail WHERE message_key = ?", (message_key,)).fetchone() is not None

    def mail_row(self, message_key: str) -> dict[str, Any] | None:
        """The row of the message with this Message-ID, if it was handled before."""
        row = self.db.execute("SELECT * FROM inbox_mail WHERE message_key = ?", (message_key,)).fetchone()
        return dict(row) if row else None

    def is_client(self, email: str) -> bool:
        """True when any appointment in the ledger names this address as its client."""
        found = self.db.execute("SELECT 1 FROM appointments WHERE lower(client_email) = ? LIMIT 1", (email.strip().lower(),)).fetchone()
        return found is not None

    def token_use(self, token_key: str) -> dict[str, Any] | None:
        """The message that used this token, if any."""
        row = self.db.execute("SELECT * FROM inbox_mail WHERE token_key = ?", (token_key,)).fetchone()
        return dict(row) if row else None

    def remember_mail(
        self, *, message_key: str, token_key: str | None, received_at: datetime, sender: str, kind: str, handled_at: datetime,
        command: str = "", calendar_id: str = "", event_id: str = "", action_id: str = "", outcome: str = "",
    ) -> bool:
        """Record a message as handled; False (nothing written) when its Message-ID or its
        token was recorded before: it must not be acted on again."""
        if self.mail_known(message_key) or (token_key and self.token_use(token_key) is not None):
            return False
        self.db.execute(
            "INSERT INTO inbox_mail (message_key, token_key, received_at, sender, kind, command, calendar_id, event_id, "
            "action_id, outcome, handled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (message_key, token_key or None, to_utc_text(received_at), sender, kind, command, calendar_id, event_id,
             action_id, outcome, to_utc_text(handled_at)),
        )
        return True

    def mail_since(self, since: datetime, kinds: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """Messages received at or after `since`, oldest first (of `kinds`, when given)."""
        sql = "SELECT * FROM inbox_mail WHERE received_at >= ?"
        params: list[Any] = [to_utc_text(since)]
        if kinds:
            sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
            params += list(kinds)
        return [dict(row) for row in self.db.execute(sql + " ORDER BY received_at, message_key", params).fetchall()]

    def add_email_signal(
        self, calendar_id: str, event_id: str, start: datetime, kind: str, client_email: str, received_at: datetime, message_key: str,
    ) -> bool:
        """Record a client's cancellation or confirmation of the appointment at `start`; False
        when one of that kind was recorded already (the first one stands)."""
        start_text = to_utc_text(start)
        found = self.db.execute(
            "SELECT 1 FROM email_signals WHERE calendar_id = ? AND event_id = ? AND start_utc = ? AND kind = ?",
            (calendar_id, event_id, start_text, kind),
        ).fetchone()
        if found is not None:
            return False
        self.db.execute(
            "INSERT INTO email_signals (calendar_id, event_id, start_utc, kind, client_email, received_at, message_key) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (calendar_id, event_id, start_text, kind, client_email.lower(), to_utc_text(received_at), message_key),
        )
        return True

    def email_signal(self, calendar_id: str, event_id: str, start: datetime, kind: str) -> dict[str, Any] | None:
        """The client's cancellation or confirmation by email of the appointment at `start`, if any."""
        row = self.db.execute(
            "SELECT * FROM email_signals WHERE calendar_id = ? AND event_id = ? AND start_utc = ? AND kind = ?",
            (calendar_id, event_id, to_utc_text(start), kind),
        ).fetchone()
        return dict(row) if row else None

    def email_signals_of(self, calendar_id: str, event_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Every signal of these events of a calendar, by event id (one query for a page)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for chunk in range(0, len(event_ids), 500):
            ids = event_ids[chunk:chunk + 500]
            if not ids:
                continue
            rows = self.db.execute(
                f"SELECT * FROM email_signals WHERE calendar_id = ? AND event_id IN ({', '.join('?' for _ in ids)})",
                (calendar_id, *ids),
            ).fetchall()
            for row in rows:
                found.setdefault(row["event_id"], []).append(dict(row))
        return found
