"""A calendar write-back Google refused is stored and written on a later tick (issue 11,
item 23), against the Calendar v3 wire fake through the real google-api-python-client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from integration.google_calendar import open_calendars
from integration.outbox_dir import OutboxDirMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.model import ActionKind, ActionState
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import settings as practice_settings

EVENT_ID = "kari1"


def booking(start: datetime, **extra) -> dict:
    """The practitioner's own event; the client is named by an `email:` line, not invited."""
    return {
        "id": EVENT_ID, "summary": "Massage",
        "description": "email: kari@example.com\nBring the referral letter.",
        "start": {"dateTime": start.isoformat(), "timeZone": "Europe/Oslo"},
        "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "Europe/Oslo"},
        "organizer": {"email": "lena@example.com", "self": True},
        **extra,
    }


class Practice:
    """The engine on a real ledger, reading and writing the fake Google calendar."""

    def __init__(self, fake, credentials, tmp_path, now):
        self.fake = fake
        self.settings = practice_settings(
            calendar={"source": "google", "calendar_ids": ["primary"], "api_endpoint": fake.api_endpoint},
            storage={"data_dir": str(tmp_path / "data")},
            mail={"quiet_hours": ""},  # on the real clock, quiet hours would make when fees and emails go depend on the hour the tests run
        )
        self.ledger = Ledger(tmp_path / "ledger.sqlite3")
        # One attempt per call (no retries inside the adapter): a refused write fails at once.
        calendars = open_calendars(self.settings, credentials=credentials(), retry_budget=0, sleep=lambda s: None)
        self.engine = build_engine(self.settings, now, ledger=self.ledger, calendars=calendars,
                                   provider=RecordOnlyProvider(), mailer=OutboxDirMailer(tmp_path / "outbox"))

    def description(self) -> str:
        return self.fake.get_event("primary", EVENT_ID).get("description", "")

    def patches(self) -> int:
        return len([r for r in self.fake.api_requests() if r.method == "PATCH" and r.status == 200])


@pytest.fixture
def practice(google_fake, google_credentials, tmp_path):
    now = datetime.now(UTC).replace(microsecond=0)
    practice = Practice(google_fake, google_credentials, tmp_path, now)
    google_fake.put_event("primary", booking(now + timedelta(hours=1)))
    practice.engine.tick(now)
    return practice, now


FAULTS = {"server error": (503, "backendError"), "daily quota": (403, "quotaExceeded")}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
def test_the_pending_review_note_google_refused_is_written_on_a_later_tick(practice, fault):
    practice, t0 = practice
    status, reason = FAULTS[fault]
    practice.fake.modify_event("primary", EVENT_ID, colorId="11")  # tomato: a no-show
    practice.fake.fail_next(status, reason=reason, method="PATCH", times=1)

    report = practice.engine.tick(t0 + timedelta(hours=1, minutes=30))

    [fee] = practice.ledger.actions(kinds=[ActionKind.CHARGE])
    assert fee.state is ActionState.PENDING_REVIEW
    assert "Slotguard:" not in practice.description()
    assert any("could not write" in problem and EVENT_ID in problem for problem in report.problems)

    # The next ticks during the review window write it (after a short backoff), once.
    for minutes in (32, 35, 45):
        practice.engine.tick(t0 + timedelta(hours=1, minutes=minutes))
    description = practice.description()
    assert "Slotguard: no-show fee 900.00 NOK pending review" in description and "unless you add #waive" in description
    assert description.startswith("email: kari@example.com\nBring the referral letter.")
    assert practice.patches() == 1
    assert practice.ledger.write_backs_due(t0 + timedelta(days=1)) == []


def test_a_write_that_keeps_failing_backs_off_and_a_later_successful_write_clears_it(practice):
    practice, t0 = practice
    practice.fake.modify_event("primary", EVENT_ID, colorId="11")
    practice.fake.fail_next(403, reason="quotaExceeded", method="PATCH", times=3)
    marked = t0 + timedelta(hours=1, minutes=30)
    practice.engine.tick(marked)                                # attempt 1 fails
    practice.engine.tick(marked + timedelta(minutes=1))         # not due yet: no request
    practice.engine.tick(marked + timedelta(minutes=3))         # attempt 2 fails
    practice.engine.tick(marked + timedelta(minutes=6))         # attempt 3 only after 4 more minutes
    attempts = [r for r in practice.fake.api_requests() if r.method == "PATCH"]
    assert len(attempts) == 2
    practice.engine.tick(marked + timedelta(minutes=8))         # attempt 3 fails
    [pending] = practice.ledger.pending_write_backs()
    assert pending["attempts"] == 3 and "quota" in pending["last_error"]
    # Google accepts again; a change on the event (the practitioner waives the fee) makes the
    # next tick write at once, before the backoff runs out, and nothing is left pending.
    practice.fake.modify_event("primary", EVENT_ID, summary="Massage #waive")
    practice.engine.tick(marked + timedelta(minutes=9))
    assert "Slotguard: no-show fee 900.00 NOK waived" in practice.description()
    assert practice.ledger.pending_write_backs() == []


def test_a_pending_write_for_an_event_deleted_meanwhile_is_dropped(practice):
    practice, t0 = practice
    practice.fake.modify_event("primary", EVENT_ID, colorId="11")
    practice.fake.fail_next(503, method="PATCH", times=1)
    practice.engine.tick(t0 + timedelta(hours=1, minutes=30))
    assert len(practice.ledger.pending_write_backs()) == 1
    practice.fake.delete_event("primary", EVENT_ID)
    practice.engine.tick(t0 + timedelta(hours=2))
    assert practice.ledger.pending_write_backs() == []
    assert not [r for r in practice.fake.api_requests() if r.method == "PATCH" and r.status == 200]
