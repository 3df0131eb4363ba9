"""The Google push channels of a deployment: one row per open channel, in PostgreSQL.

A channel is Google's promise to POST to the webhook server whenever an event of one
calendar changes (events.watch). The row says which practice and calendar it is for, the
resource id Google gave it (needed to stop it), when it expires, and a SHA-256 digest of its
token: the token itself (an HMAC of the channel id, slotguard/run/push.py) is never stored,
so a copy of this table cannot forge notifications.

The table lives in the schema shared by all practices (`slotguard_cluster` by default; tests
pass their own), created by `ensure_tables(conn)`. A channel replaced by a newer one keeps
its row, with `renewed_at` set, until Google confirms it stopped; notifications from it are
still accepted meanwhile, so none is lost across a renewal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slotguard.store.pg import checked_schema, create_shared_tables

CLUSTER_SCHEMA = "slotguard_cluster"


@dataclass(frozen=True)
class PushChannel:
    """One open channel, as stored."""

    channel_id: str
    practice: str
    calendar_id: str
    resource_id: str
    token_digest: str
    expires_at: datetime
    created_at: datetime
    renewed_at: datetime | None = None  # when a newer channel replaced this one

    @property
    def replaced(self) -> bool:
        return self.renewed_at is not None

    @property
    def pending(self) -> bool:
        """Recorded, but Google's answer to events.watch is not (yet) in: no resource id."""
        return not self.resource_id


_COLUMNS = "channel_id, practice, calendar_id, resource_id, token_digest, expires_at, created_at, renewed_at"


def token_digest(token: str) -> str:
    """The digest stored for a channel token (SHA-256, hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_tables(conn: Any, schema: str = CLUSTER_SCHEMA) -> None:
    """Create the schema and the push_channels table when missing (idempotent; safe from every worker at once)."""
    schema = checked_schema(schema)
    create_shared_tables(conn, schema, f"""
        CREATE TABLE IF NOT EXISTS "{schema}".push_channels (
            channel_id   text PRIMARY KEY,
            practice     text NOT NULL,
            calendar_id  text NOT NULL,
            resource_id  text NOT NULL,
            token_digest text NOT NULL,
            expires_at   timestamptz NOT NULL,
            created_at   timestamptz NOT NULL,
            renewed_at   timestamptz
        )""", f'CREATE INDEX IF NOT EXISTS push_channels_practice ON "{schema}".push_channels (practice, calendar_id)')


def add_channel(conn: Any, channel: PushChannel, schema: str = CLUSTER_SCHEMA) -> None:
    """Record a channel. It is recorded before Google is asked to open it, with an empty
    resource id (pending), because Google's first message can arrive before its answer."""
    schema = checked_schema(schema)
    conn.execute(
        f'INSERT INTO "{schema}".push_channels ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)',
        (channel.channel_id, channel.practice, channel.calendar_id, channel.resource_id, channel.token_digest,
         channel.expires_at, channel.created_at, channel.renewed_at),
    )


def set_opened(conn: Any, channel_id: str, resource_id: str, expires_at: datetime, schema: str = CLUSTER_SCHEMA) -> None:
    """Complete a channel recorded before Google was asked (see `add_channel`): its resource
    id and the expiry Google gave it."""
    schema = checked_schema(schema)
    conn.execute(f'UPDATE "{schema}".push_channels SET resource_id = %s, expires_at = %s WHERE channel_id = %s',
                 (resource_id, expires_at, channel_id))


def find_channel(conn: Any, channel_id: str, schema: str = CLUSTER_SCHEMA) -> PushChannel | None:
    """The channel with this id, or None."""
    schema = checked_schema(schema)
    row = conn.execute(f'SELECT {_COLUMNS} FROM "{schema}".push_channels WHERE channel_id = %s', (channel_id,)).fetchone()
    return PushChannel(*row) if row else None


def channels_of(conn: Any, practice: str, schema: str = CLUSTER_SCHEMA) -> list[PushChannel]:
    """Every channel of one practice, oldest first."""
    schema = checked_schema(schema)
    rows = conn.execute(
        f'SELECT {_COLUMNS} FROM "{schema}".push_channels WHERE practice = %s ORDER BY created_at, channel_id', (practice,),
    ).fetchall()
    return [PushChannel(*row) for row in rows]


def mark_replaced(conn: Any, channel_id: str, at: datetime, schema: str = CLUSTER_SCHEMA) -> None:
    """Note that a newer channel took over from this one (it is to be stopped)."""
    schema = checked_schema(schema)
    conn.execute(f'UPDATE "{schema}".push_channels SET renewed_at = %s WHERE channel_id = %s', (at, channel_id))


def remove_channel(conn: Any, channel_id: str, schema: str = CLUSTER_SCHEMA) -> None:
    """Forget a channel (stopped, or expired at Google)."""
    schema = checked_schema(schema)
    conn.execute(f'DELETE FROM "{schema}".push_channels WHERE channel_id = %s', (channel_id,))
