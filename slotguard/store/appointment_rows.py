"""The ledger's rows about appointments and what happened to them: the last snapshot of each
event (what the tracker concluded) and each happening, stored once by its key; a client's
history is read from them. Part of `Ledger`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from slotguard.domain.durations import from_utc_text, to_utc_text
from slotguard.domain.model import ClientHistory, Happening, HappeningKind, Incident
from slotguard.intake.tracker import Tracked
from slotguard.store.backend import Connection, LedgerRow
from slotguard.store.rows import appointment_from_json, appointment_to_json, optional_utc_text, optional_utc_time


class AppointmentRows:
    """Ledger methods for the appointments and happenings tables."""

    db: Connection
    _series_seen: set[tuple[str, str]]

    # -- appointments ---------------------------------------------------------------------
    def tracked(self, calendar_id: str, event_id: str) -> Tracked | None:
        row = self.db.execute(
            "SELECT * FROM appointments WHERE calendar_id = ? AND event_id = ?", (calendar_id, event_id)
        ).fetchone()
        return self._tracked(row) if row else None

    @staticmethod
    def _tracked(row: LedgerRow) -> Tracked:
        return Tracked(
            appointment=appointment_from_json(row["snapshot"]),
            cancellation=row["cancellation"],
            outcome=row["outcome"],
            first_seen=from_utc_text(row["first_seen"]),
        )

    def fingerprints(self, calendar_id: str, event_ids: list[str]) -> dict[str, tuple[str, bool]]:
        """fingerprint() for many events of one calendar at once (one query per 500)."""
        found: dict[str, tuple[str, bool]] = {}
        for index in range(0, len(event_ids), 500):
            chunk = event_ids[index:index + 500]
            rows = self.db.execute(
                "SELECT event_id, fingerprint, cancellation, outcome FROM appointments WHERE calendar_id = ? "
                f"AND event_id IN ({','.join('?' * len(chunk))})",
                [calendar_id, *chunk],
            )
            for row in rows:
                found[row["event_id"]] = (row["fingerprint"], not row["cancellation"] and not row["outcome"])
        return found

    def fingerprint(self, calendar_id: str, event_id: str) -> tuple[str, bool] | None:
        """(fingerprint, still open) of a known event, without decoding its snapshot."""
        row = self.db.execute(
            "SELECT fingerprint, cancellation, outcome FROM appointments WHERE calendar_id = ? AND event_id = ?",
            (calendar_id, event_id),
        ).fetchone()
        if row is None:
            return None
        return row["fingerprint"], not row["cancellation"] and not row["outcome"]

    def has_invited_clients(self, since: datetime) -> bool:
        """True when an appointment starting at or after `since` has its client invited."""
        row = self.db.execute(
            "SELECT 1 FROM appointments WHERE start_utc >= ? AND snapshot LIKE ? LIMIT 1",
            (optional_utc_text(since), '%"client_invited":true%'),
        ).fetchone()
        return row is not None

    def own_client_name(self, client_email: str) -> str | None:
        """The name the latest appointment you organised gives this client ("" when it gives
        none); None when no appointment of yours names the client: an event the client
        organised (calendar.client_organised) does not make anyone a client."""
        row = self.db.execute(
            "SELECT snapshot FROM appointments WHERE client_email = ? AND snapshot NOT LIKE ? ORDER BY start_utc DESC LIMIT 1",
            (client_email, '%"client_organised":true%'),
        ).fetchone()
        return None if row is None else appointment_from_json(row["snapshot"]).client.name

    def save_tracked(self, tracked: Tracked) -> None:
        appointment = tracked.appointment
        self.db.execute(
            "INSERT INTO appointments (calendar_id, event_id, client_email, start_utc, status, cancellation, "
            "outcome, fingerprint, first_seen, snapshot) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (calendar_id, event_id) DO UPDATE SET client_email = excluded.client_email, first_seen = excluded.first_seen, "
            "start_utc = excluded.start_utc, status = excluded.status, cancellation = excluded.cancellation, "
            "outcome = excluded.outcome, fingerprint = excluded.fingerprint, snapshot = excluded.snapshot",
            (
                appointment.calendar_id,
                appointment.event_id,
                appointment.client.email,
                to_utc_text(appointment.start),
                appointment.status,
                tracked.cancellation,
                tracked.outcome,
                appointment.fingerprint(),
                to_utc_text(tracked.first_seen),
                appointment_to_json(appointment),
            ),
        )

    def set_outcome(self, calendar_id: str, event_id: str, outcome: str) -> None:
        """Store `outcome` for a known appointment without changing its snapshot, and forget
        its fingerprint, so the next reading of the event is observed in full."""
        self.db.execute(
            "UPDATE appointments SET outcome = ?, fingerprint = '' WHERE calendar_id = ? AND event_id = ?",
            (outcome, calendar_id, event_id),
        )

    def event_ids(self, calendar_id: str, start_from: datetime, start_to: datetime) -> set[str]:
        """Ids of known, not cancelled events of a calendar starting inside a window."""
        rows = self.db.execute(
            "SELECT event_id FROM appointments WHERE calendar_id = ? AND status != 'cancelled' "
            "AND start_utc >= ? AND start_utc < ?",
            (calendar_id, to_utc_text(start_from), to_utc_text(start_to)),
        )
        return {row["event_id"] for row in rows}

    def open_appointments_started(self, since: datetime, until: datetime) -> list[Tracked]:
        """Appointments that started in [since, until] with no cancellation and no outcome yet."""
        rows = self.db.execute(
            "SELECT * FROM appointments WHERE outcome = '' AND cancellation = '' AND start_utc >= ? AND start_utc <= ?",
            (to_utc_text(since), to_utc_text(until)),
        )
        return [self._tracked(row) for row in rows]

    def clients_wanting_earlier(self, before: datetime) -> list[tuple[str, str]]:
        """(email, name) of clients whose booking after `before` is marked wants-earlier."""
        rows = self.db.execute(
            "SELECT client_email, snapshot FROM appointments WHERE cancellation = '' AND status != 'cancelled' "
            "AND start_utc > ? AND snapshot LIKE '%\"wants_earlier\"%' ORDER BY start_utc",
            (to_utc_text(before),),
        )
        found = []
        for row in rows:
            appointment = appointment_from_json(row["snapshot"])
            if "wants_earlier" in appointment.marks:
                found.append((appointment.client.email, appointment.client.name))
        return found

    def upcoming_open(self, after: datetime, until: datetime) -> list[Tracked]:
        """Confirmed, not cancelled appointments starting in (after, until]."""
        rows = self.db.execute(
            "SELECT * FROM appointments WHERE outcome = '' AND cancellation = '' AND status != 'cancelled' "
            "AND start_utc > ? AND start_utc <= ?",
            (to_utc_text(after), to_utc_text(until)),
        )
        return [self._tracked(row) for row in rows]

    def upcoming(self, now: datetime, limit: int = 50) -> list[Tracked]:
        rows = self.db.execute(
            "SELECT * FROM appointments WHERE status != 'cancelled' AND cancellation = '' AND start_utc >= ? "
            "ORDER BY start_utc LIMIT ?",
            (to_utc_text(now), limit),
        )
        return [self._tracked(row) for row in rows]

    def client_appointments(self, client_email: str, start_from: datetime, limit: int = 200) -> list[Tracked]:
        """A client's tracked appointments starting at or after `start_from`, earliest first
        (by the client index: what a client's email link may name)."""
        rows = self.db.execute(
            "SELECT * FROM appointments WHERE client_email = ? AND start_utc >= ? ORDER BY start_utc LIMIT ?",
            (client_email.strip().lower(), to_utc_text(start_from), limit),
        )
        return [self._tracked(row) for row in rows]

    # -- happenings -----------------------------------------------------------------------
    def add_happening(self, happening: Happening) -> bool:
        """Store a happening; False when its key was already stored (nothing new)."""
        cursor = self.db.execute(
            "INSERT INTO happenings (key, kind, calendar_id, event_id, client_email, start_utc, at, seen_at, "
            "previous_start, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
            (
                happening.key,
                happening.kind.value,
                happening.calendar_id,
                happening.event_id,
                happening.client_email,
                to_utc_text(happening.start),
                to_utc_text(happening.at),
                to_utc_text(happening.seen_at),
                optional_utc_text(happening.previous_start),
                happening.detail,
            ),
        )
        return cursor.rowcount == 1

    def happenings_for(self, calendar_id: str, event_id: str) -> list[dict[str, Any]]:
        return [
            dict(row)
            for row in self.db.execute(
                "SELECT * FROM happenings WHERE calendar_id = ? AND event_id = ? ORDER BY seq", (calendar_id, event_id)
            )
        ]

    def happenings_seen_since(self, kinds: tuple[HappeningKind, ...], since: datetime) -> list[dict[str, Any]]:
        """Happenings of these kinds seen at or after `since`, in the order they were stored
        (kind, calendar_id, event_id, client_email, start_utc, at, seen_at)."""
        marks = ",".join("?" * len(kinds))
        rows = self.db.execute(
            f"SELECT kind, calendar_id, event_id, client_email, start_utc, at, seen_at FROM happenings "
            f"WHERE kind IN ({marks}) AND seen_at >= ? ORDER BY seq",
            [kind.value for kind in kinds] + [to_utc_text(since)],
        )
        return [dict(row) for row in rows]

    def all_happenings(self) -> list[Happening]:
        """Every stored happening, in the order it was stored (for `simulate`)."""
        return [
            Happening(
                key=row["key"],
                kind=HappeningKind(row["kind"]),
                calendar_id=row["calendar_id"],
                event_id=row["event_id"],
                client_email=row["client_email"],
                start=from_utc_text(row["start_utc"]),
                at=from_utc_text(row["at"]),
                seen_at=from_utc_text(row["seen_at"]),
                previous_start=optional_utc_time(row["previous_start"]),
                detail=row["detail"],
            )
            for row in self.db.execute("SELECT * FROM happenings ORDER BY seq")
        ]

    def all_tracked(self) -> list[Tracked]:
        """The last snapshot of every known appointment (for `simulate`)."""
        return [self._tracked(row) for row in self.db.execute("SELECT * FROM appointments")]

    def history(self, client_email: str) -> ClientHistory:
        """The client's outcomes, one per appointment slot, the latest outcome winning."""
        rows = self.db.execute(
            "SELECT kind, calendar_id, event_id, start_utc, at, seen_at FROM happenings "
            "WHERE client_email = ? AND kind IN (?, ?, ?, ?) ORDER BY seq",
            (
                client_email,
                HappeningKind.ATTENDED.value,
                HappeningKind.NO_SHOW.value,
                HappeningKind.CANCELLED_BY_CLIENT.value,
                HappeningKind.WAIVED.value,
            ),
        )
        slots: dict[tuple[str, str], Incident] = {}
        first_seen = None
        for row in rows:
            ref = f"{row['calendar_id']}/{row['event_id']}"
            slots[(ref, row["start_utc"])] = Incident(
                kind=HappeningKind(row["kind"]),
                start=from_utc_text(row["start_utc"]),
                at=from_utc_text(row["at"]),
                event_ref=ref,
            )
        first = self.db.execute(
            "SELECT MIN(first_seen) AS first FROM appointments WHERE client_email = ?", (client_email,)
        ).fetchone()
        if first and first["first"]:
            first_seen = from_utc_text(first["first"])
        outcomes = tuple(sorted(slots.values(), key=lambda item: item.start))
        return ClientHistory(email=client_email, outcomes=outcomes, first_seen=first_seen)

    def series_confirmed(self, client_email: str, series_id: str) -> bool:
        """True when a booking confirmation was planned for this client and recurring series."""
        if (client_email, series_id) in self._series_seen:
            return True
        rows = self.db.execute(
            "SELECT context FROM actions WHERE client_email = ? AND kind = 'email' AND template = 'booking_confirmation'",
            (client_email,),
        )
        found = any(json.loads(row["context"]).get("series_id") == series_id for row in rows)
        if found:
            self._series_seen.add((client_email, series_id))
        return found
