"""The ledger's schema: its tables, and the migrations that bring an older ledger up to date.

`MIGRATIONS[n]` brings a ledger from version n-1 to n; `Ledger` applies those it lacks when it
opens (slotguard/store/ledger.py). Written once, in SQLite's dialect; on PostgreSQL each
statement is translated (slotguard/store/backend.py `postgres_ddl`: an identity column for
`INTEGER PRIMARY KEY AUTOINCREMENT`, BIGINT for INTEGER, TEXT compared byte by byte).
"""

from __future__ import annotations

from collections.abc import Callable

from slotguard.store.backend import Connection
from slotguard.store.retention_rows import strip_titles

SCHEMA_VERSION = 7

# Every table, in an order a copy can insert them (`Ledger.copy_into`).
TABLES = ("meta", "sync_state", "appointments", "happenings", "actions", "action_log", "problems", "pending_writes", "erasures", "inbox_mail", "email_signals")
# The tables whose `seq` numbers rows in the order they were stored.
SEQUENCED = ("happenings", "actions", "action_log", "erasures")

# The migration after which .ics single events are stored under their UID (see MIGRATIONS).
ICS_SINGLE_IDS = 6
# The migration that adds the inbox's tables (docs/inbox.md).
INBOX = 7

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE sync_state (
        calendar_id TEXT PRIMARY KEY,
        sync_token TEXT,
        last_sync_at TEXT,
        last_error TEXT NOT NULL DEFAULT '',
        last_error_at TEXT
    );
    CREATE TABLE appointments (
        calendar_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        client_email TEXT NOT NULL,
        start_utc TEXT NOT NULL,
        status TEXT NOT NULL,
        cancellation TEXT NOT NULL,
        outcome TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        snapshot TEXT NOT NULL,
        PRIMARY KEY (calendar_id, event_id)
    );
    CREATE INDEX appointments_open ON appointments (outcome, cancellation, start_utc);
    CREATE INDEX appointments_client ON appointments (client_email);
    CREATE TABLE happenings (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        calendar_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        client_email TEXT NOT NULL,
        start_utc TEXT NOT NULL,
        at TEXT NOT NULL,
        seen_at TEXT NOT NULL,
        previous_start TEXT,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX happenings_client ON happenings (client_email);
    CREATE TABLE actions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        policy TEXT NOT NULL,
        reason TEXT NOT NULL,
        calendar_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        client_email TEXT NOT NULL,
        client_name TEXT NOT NULL DEFAULT '',
        happening_key TEXT NOT NULL,
        due_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        amount_minor INTEGER,
        currency TEXT,
        template TEXT,
        reports_on TEXT,
        appointment_start TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        external_id TEXT NOT NULL DEFAULT '',
        executed_at TEXT,
        context TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX actions_due ON actions (state, due_at);
    CREATE INDEX actions_event ON actions (calendar_id, event_id);
    CREATE INDEX actions_client ON actions (client_email);
    CREATE TABLE action_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        action_id TEXT NOT NULL,
        at TEXT NOT NULL,
        state TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX action_log_action ON action_log (action_id);
    CREATE TABLE problems (
        calendar_id TEXT NOT NULL,
        item TEXT NOT NULL,
        message TEXT NOT NULL,
        first_at TEXT NOT NULL,
        last_at TEXT NOT NULL,
        PRIMARY KEY (calendar_id, item)
    );
    """,
    # Clients whose booking carries the wants-earlier mark, found without reading every
    # future snapshot: the lookup ran once per short-notice cancellation and was a sixth of
    # a 100,000-appointment first sync. The WHERE text must match clients_wanting_earlier's.
    # The happenings of one appointment (the digest asks per fee, evidence per debt) were
    # a scan of the whole table.
    2: """
    CREATE INDEX appointments_wants_earlier ON appointments (start_utc)
        WHERE snapshot LIKE '%"wants_earlier"%';
    CREATE INDEX happenings_event ON happenings (calendar_id, event_id)
    """,
    # Status notes the calendar refused to take (a 503, the daily quota): tried again on
    # later ticks until one write succeeds or the event is gone. Also queued by commands
    # that change a fee outside a tick (`waive`, `mark-paid`), for the next tick to write.
    # Card holds by when they were placed: each tick looks for holds about to lapse (the
    # WHERE text must match holds_placed_since's).
    3: """
    CREATE TABLE pending_writes (
        calendar_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        due_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        since TEXT NOT NULL,
        PRIMARY KEY (calendar_id, event_id)
    );
    CREATE INDEX pending_writes_due ON pending_writes (due_at);
    CREATE INDEX actions_holds ON actions (executed_at) WHERE kind = 'hold'
    """,
    # `client forget` (slotguard/privacy/client_forget.py): one row per client erased, without
    # their personal data: when, who ran it, the pseudonym their kept money records carry now,
    # and how many of each record were erased or pseudonymised (JSON counts).
    4: """
    CREATE TABLE erasures (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        asked_by TEXT NOT NULL,
        pseudonym TEXT NOT NULL,
        erased TEXT NOT NULL DEFAULT '{}'
    )
    """,
    # Event titles are no longer kept (docs/privacy.md): the work is DATA_STEPS[TITLES_TAKEN_OUT]'s.
    5: "",
    # No table changes: the .ics source names a single event by its UID now (no longer
    # UID_START), and an appointment stored under its old id is renamed when the feed is read
    # (slotguard/store/former_ids.py: only the feed tells a single event from a series'). The
    # version is raised so that an older Slotguard (a worker not yet upgraded in a rolling
    # restart) refuses this ledger: it would read every renamed event as deleted and booked again.
    ICS_SINGLE_IDS: "",
    # The inbox (docs/inbox.md, slotguard/store/inbox_rows.py): every message read, once by its
    # Message-ID, with the token it used (a token is used once: UNIQUE), what it was and what was
    # done, never its text; and what clients said by email about one appointment at one time
    # (a cancellation, timed by the server's receipt; a confirmation).
    # IF NOT EXISTS: tests wind the version of a new ledger back to replay older migrations.
    INBOX: """
    CREATE TABLE IF NOT EXISTS inbox_mail (
        message_key TEXT PRIMARY KEY,
        token_key TEXT UNIQUE,
        received_at TEXT NOT NULL,
        sender TEXT NOT NULL,
        kind TEXT NOT NULL,
        command TEXT NOT NULL DEFAULT '',
        calendar_id TEXT NOT NULL DEFAULT '',
        event_id TEXT NOT NULL DEFAULT '',
        action_id TEXT NOT NULL DEFAULT '',
        outcome TEXT NOT NULL DEFAULT '',
        handled_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS inbox_mail_received ON inbox_mail (received_at);
    CREATE TABLE IF NOT EXISTS email_signals (
        calendar_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        start_utc TEXT NOT NULL,
        kind TEXT NOT NULL,
        client_email TEXT NOT NULL,
        received_at TEXT NOT NULL,
        message_key TEXT NOT NULL,
        PRIMARY KEY (calendar_id, event_id, start_utc, kind)
    )
    """,
}

# The migration that takes event titles out of snapshots: a SQLite ledger older than it is
# also vacuumed once (Ledger.__init__), so no freed copy of a title stays in the file.
TITLES_TAKEN_OUT = 5

# What a migration does beyond its SQL, in Python, after it (same transaction): rewriting
# stored JSON the same way on both engines.
DATA_STEPS: dict[int, Callable[[Connection], None]] = {
    TITLES_TAKEN_OUT: strip_titles,
}
