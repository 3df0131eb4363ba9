"""A practice on one calendar source, as the contract suite runs it: the practice config of
tests/support/builders.py with the harness's [calendar] table, the real engine
(slotguard/run/wiring.py build_engine) over the source's own adapter, a real ledger (SQLite,
or PostgreSQL under SLOTGUARD_TEST_BACKEND=postgresql), record-only payments and an
in-memory mailer. It answers what the practitioner would see: the appointments, the fees
proposed, the emails sent.

Times: the wire fakes stamp changes with the real clock (Google's `updated`), and the engine
times a client's cancellation by that stamp, so `now` starts at the real minute and bookings
are placed relative to it; later ticks pass a later `now`, as the daemon would.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from integration.memory import MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.model import MONEY_KINDS, Action
from slotguard.domain.tick_report import TickReport
from slotguard.intake.tracker import Tracked
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.contract.harness import Booking, SourceHarness
from tests.support.builders import settings as practice_settings

FEE = 90000  # the practice's price, 900 NOK, in øre
HALF = 45000  # the late-cancel fee within 24 hours: 50 %


class Practice:
    def __init__(self, harness: SourceHarness, tmp_path: Path, **sections: Any):
        self.harness = harness
        self.now = datetime.now(UTC).replace(second=0, microsecond=0)
        self.settings = practice_settings(calendar=harness.calendar_table(), **sections)
        self.ledger = Ledger(tmp_path / "ledger.sqlite3")
        self.mailer = MemoryMailer()
        self.engine = build_engine(self.settings, self.now, ledger=self.ledger, calendars=harness.open_calendars(self.settings),
                                   provider=RecordOnlyProvider(), mailer=self.mailer)

    def book(self, client: str, start: datetime, minutes: int = 60, title: str = "Massage") -> str:
        name = client.split("@")[0].title()
        return self.harness.create(Booking(title, client, name, start, start + timedelta(minutes=minutes)))

    def tick(self, at: datetime | None = None) -> TickReport:
        return self.engine.tick(at or self.now)

    # --- what the practitioner sees ---------------------------------------------------------

    def appointments(self) -> dict[str, Tracked]:
        """Every appointment Slotguard knows, by event id."""
        return {tracked.appointment.event_id: tracked for tracked in self.ledger.all_tracked()}

    def cancelled(self) -> set[str]:
        return {event_id for event_id, tracked in self.appointments().items() if tracked.cancellation}

    def fees(self, event_id: str | None = None) -> list[Action]:
        return [action for action in self.ledger.actions(event_id=event_id) if action.kind in MONEY_KINDS]

    def fee_amounts(self) -> dict[str, list[int]]:
        """The fees proposed, by event id: their amounts in minor units."""
        amounts: dict[str, list[int]] = {}
        for fee in self.fees():
            amounts.setdefault(fee.event_id, []).append(fee.amount.minor if fee.amount else 0)
        return amounts

    def happening_kinds(self, event_id: str) -> list[str]:
        calendar_id = self.engine.calendars[0][0].calendar_id
        return [row["kind"] for row in self.ledger.happenings_for(calendar_id, event_id)]
