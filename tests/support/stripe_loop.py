"""The engine in this process with the Stripe provider (localstripe behind the test proxy),
an in-memory calendar and mailer, on a real SQLite ledger: for tests that follow a fee
through ticks, waivers, outages and restarts.

The clock is the real one (Stripe stamps its objects with it); `tick(minutes)` runs a tick
that many minutes from the start, so a test can let hours pass without waiting for them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from integration.memory import MemoryCalendar, MemoryMailer
from integration.stripe_provider import open_provider
from slotguard.domain.interfaces import NullWriteBack, PaymentResult
from slotguard.domain.model import OPEN_STATES, Action, ActionKind, ActionState
from slotguard.domain.tick_report import TickReport
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import event
from tests.support.builders import settings as practice
from tests.support.stripe_fixtures import KEY_ENV, TEST_KEY


class StripeLoop:
    """A practice whose fees are charged through Stripe at once (review window 0m)."""

    def __init__(self, tmp_path, stripe_proxy, monkeypatch, network_retries: int = 2, **payments: Any):
        monkeypatch.setenv(KEY_ENV, TEST_KEY)
        self.network_retries = network_retries
        self.settings = practice(
            payments={"provider": "stripe", "secret_key": {"env": KEY_ENV}, "api_base": stripe_proxy.base_url,
                      "review_window": "0m", **payments},
            # On the real clock: quiet hours would make when a fee goes depend on the hour the
            # tests run (tests/unit/domain/test_quiet_hours.py and the replay scenarios test them).
            mail={"transport": "outbox-dir", "digest_hour": -1, "quiet_hours": ""},
        )
        self.path = tmp_path / "ledger.sqlite3"
        self.calendar, self.mailer = MemoryCalendar("primary"), MemoryMailer()
        self.start = datetime.now(UTC).replace(microsecond=0)
        self.session = self.start - timedelta(hours=3)  # the appointments were this morning
        self.ledger = Ledger(self.path)
        self.engine = self.restart()

    def provider(self):
        """A fresh provider, as after a restart: test timings, stripe-python's retries on."""
        return open_provider(self.settings, timeout_seconds=2.0, backoff_seconds=0.01, rate_per_second=1000,
                             max_network_retries=self.network_retries)

    def restart(self):
        """A new engine on the same ledger, calendar and mailer (a process restarted)."""
        self.engine = build_engine(self.settings, self.start - timedelta(days=2), ledger=self.ledger,
                                   calendars=[(self.calendar, NullWriteBack())], provider=self.provider(), mailer=self.mailer)
        return self.engine

    def at(self, minutes: float) -> datetime:
        return self.start + timedelta(minutes=minutes)

    def tick(self, minutes: float = 0) -> TickReport:
        return self.engine.tick(self.at(minutes))

    def book(self, event_id: str, client: str = "ana@example.com", name: str = "Ana Silva", minutes_before: int = 0) -> None:
        """An appointment this morning, booked two days ago, seen by a tick then."""
        self.calendar.put(event(event_id, self.session, client=client, name=name), self.start - timedelta(days=2))
        self.engine.tick(self.start - timedelta(days=2))

    def mark(self, event_id: str, tags: str, minutes: float, client: str = "ana@example.com", name: str = "Ana Silva") -> None:
        """The practitioner puts `tags` in the title at `minutes` (e.g. "#noshow #waive")."""
        self.calendar.put(event(event_id, self.session, client=client, name=name, title=f"Massage {tags}"), self.at(minutes))

    def killed_after_the_call(self, action: Action, minutes: float) -> PaymentResult:
        """What `main.py run` does up to a SIGKILL right after the provider answered: the
        action committed `executing`, the call made (Stripe has the object), nothing more."""
        action.state, action.attempts = ActionState.EXECUTING, action.attempts + 1
        assert self.ledger.update_action(action, self.at(minutes), f"attempt {action.attempts}", expect=OPEN_STATES)
        return self.engine.provider.execute(action)

    def actions(self, kind: ActionKind, event_id: str | None = None) -> list[Action]:
        return self.ledger.actions(kinds=[kind], event_id=event_id)

    def only(self, kind: ActionKind, event_id: str | None = None) -> Action:
        [found] = self.actions(kind, event_id)
        return found

    def mail_to(self, client: str) -> list[tuple[str, str]]:
        """(subject, plain text) of every message sent to `client`, in sending order."""
        found = []
        for message in self.mailer.sent.values():
            if client in message["To"]:
                found.append((str(message["Subject"]), message.get_body(("plain",)).get_content()))
        return found
