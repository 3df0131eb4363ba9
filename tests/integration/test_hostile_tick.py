"""The hostile-input suite, engine half: a page of hostile v3 events (tests/support/hostile.py)
through whole ticks on a real SQLite ledger, with the deposit, late-cancellation and
no-show policies, the record-only provider and an in-memory mailer.

Asserted: a tick never raises; no fee (charge, hold, capture) and no email is ever planned
for an event the practitioner does not organise; every email that goes out goes to a
plain address and links only to https:// (or the practice's mailto:).

Deterministic (derandomize, no example database) and a few seconds long."""

import dataclasses
import re
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from integration.memory import MemoryCalendar, MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import ActionKind
from slotguard.domain.untrusted import email_address
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import settings
from tests.support.hostile import CALENDAR_ID, NOW, OTHER_OWN_ADDRESS, appointment_like, practitioners_own, v3_event

FEES = {ActionKind.CHARGE, ActionKind.HOLD, ActionKind.CAPTURE}
SETTINGS = settings(
    calendar={"practitioner_addresses": [OTHER_OWN_ADDRESS]},
    policies={"enabled": ["deposit", "late_cancel", "no_show"], "deposit": {"amount": "30%"}},
    mail={"digest_hour": -1},
)


@pytest.fixture(scope="module")
def engine():
    """One engine (rendering every template once at start-up is the slow part); each example
    gets its own ledger, calendar and mailer."""
    return build_engine(SETTINGS, NOW - timedelta(days=30), ledger=Ledger(":memory:"), calendars=[],
                        provider=RecordOnlyProvider(), mailer=MemoryMailer())


@st.composite
def page(draw) -> list[dict]:
    """Events that read as appointments but for their organizer, and anything at all."""
    plausible = [draw(appointment_like(f"apt{index}")) for index in range(draw(st.integers(1, 4)))]
    return plausible + [draw(v3_event(f"evt{index}")) for index in range(draw(st.integers(0, 3)))]


@hsettings(max_examples=40, deadline=None, derandomize=True, database=None,
           suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(page())
def test_a_tick_never_raises_and_never_plans_a_fee_for_someone_elses_event(engine, events):
    calendar, mailer, ledger = MemoryCalendar(CALENDAR_ID), MemoryMailer(), Ledger(":memory:")
    for event in events:
        calendar.put(event, NOW - timedelta(days=2))
        if "updated" in event:
            calendar.events[event["id"]]["updated"] = event["updated"]  # hostile stamps too
    run = dataclasses.replace(engine, ledger=ledger, calendars=[(calendar, NullWriteBack())], mailer=mailer)
    for now in (NOW, NOW + timedelta(days=1), NOW + timedelta(days=6)):
        run.tick(now)
    for event in events:
        if practitioners_own(event):
            continue
        planned = ledger.actions(event_id=event["id"])
        assert not planned, f"someone else's event {event['id']} got {[(a.kind.value, a.template) for a in planned]}"
    for message in mailer.sent.values():
        [recipient] = message["To"].addresses
        assert email_address(recipient.addr_spec) == recipient.addr_spec.lower()
        html = message.get_body(("html",)).get_content()
        hrefs = re.findall(r'href="([^"]*)"', html)
        assert all(href.startswith("https://") or href == "mailto:lena@example.com" for href in hrefs), hrefs
    fees = [a for a in ledger.actions() if a.kind in FEES]
    assert all(a.amount is not None and 0 <= a.amount.minor <= 200000 for a in fees), "never above max_single_charge"
