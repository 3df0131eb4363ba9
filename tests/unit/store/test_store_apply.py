"""The one writer of plans: `Store.apply` writes a whole plan in one transaction (all of it
or none of it), with the stable ids Stripe takes as idempotency keys, the review window for
fees and `charge_from`."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from slotguard.domain.model import ActionKind, ActionState, ActionSubject, Proposal, new_action
from slotguard.domain.money import Money
from slotguard.domain.plan import Plan
from slotguard.store.apply import Store
from slotguard.store.ledger import Ledger

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=OSLO)
KEY = "primary/e1/no_show/2026-03-02T09:00:00Z"
HERE = ActionSubject("primary", "e1", "ana@example.com", "Ana", MONDAY)
REVIEW = timedelta(hours=12)


def nok(major: int) -> Money:
    return Money(major * 100, "NOK")


def fee_plan(old_fee_id: str, old_mail_id: str) -> Plan:
    fee = Proposal(kind=ActionKind.CHARGE, policy="no_show", reason="no_show proposed 900.00 NOK", amount=nok(900), slot="fee")
    notice = Proposal(kind=ActionKind.EMAIL, policy="no_show", reason="tell the client", template="no_show_followup",
                      slot="notice", reports_on="fee")
    return Plan(subject=HERE, new=(fee, notice), waive={old_fee_id: "replaced"}, cancel={old_mail_id: "the appointment was cancelled"})


@pytest.fixture
def ledger():
    ledger = Ledger(":memory:")
    yield ledger
    ledger.close()


def stored_before(ledger: Ledger):
    old_fee = new_action(HERE, ActionKind.CHARGE, "late_cancel", "old fee", key="primary/e1/old", now=MONDAY - timedelta(days=1),
                         state=ActionState.PENDING_REVIEW, amount=nok(450))
    old_mail = new_action(HERE, ActionKind.EMAIL, "lifecycle", "confirm", key="primary/e1/old", slot="confirmation",
                          now=MONDAY - timedelta(days=1), template="booking_confirmation")
    with ledger.transaction():
        ledger.add_action(old_fee)
        ledger.add_action(old_mail)
    return old_fee, old_mail


def test_a_plan_is_written_whole_with_stable_ids_and_the_review_window(ledger):
    old_fee, old_mail = stored_before(ledger)
    store = Store(ledger, REVIEW, charge_from=MONDAY - timedelta(days=30))
    stored = store.apply(fee_plan(old_fee.id, old_mail.id), key=KEY, now=MONDAY)
    fee = next(action for action in stored if action.kind is ActionKind.CHARGE)
    # The id scheme is the idempotency key Stripe sees: it must never change.
    assert fee.id == "act_78a8e71b53378533c445"
    assert fee.state is ActionState.PENDING_REVIEW and fee.due_at == MONDAY + REVIEW
    assert ledger.action(old_fee.id).state is ActionState.WAIVED
    assert ledger.action(old_mail.id).state is ActionState.CANCELLED
    # Applying the same plan again plans nothing new.
    assert store.apply(fee_plan(old_fee.id, old_mail.id), key=KEY, now=MONDAY + timedelta(minutes=1)) == []


def test_fees_before_charge_from_are_stored_cancelled_with_their_notice(ledger):
    old_fee, old_mail = stored_before(ledger)
    stored = Store(ledger, REVIEW, charge_from=MONDAY + timedelta(days=1)).apply(fee_plan(old_fee.id, old_mail.id), key=KEY, now=MONDAY)
    assert {action.kind: action.state for action in stored} == {ActionKind.CHARGE: ActionState.CANCELLED, ActionKind.EMAIL: ActionState.CANCELLED}


def test_a_write_failing_midway_leaves_nothing_of_the_plan(ledger, monkeypatch):
    old_fee, old_mail = stored_before(ledger)
    log_before = ledger.action_log(old_fee.id) + ledger.action_log(old_mail.id)
    real_add = ledger.add_action
    calls = []

    def add_then_fail(action, note=""):
        calls.append(action.id)
        if len(calls) == 2:
            raise OSError("disk gone")
        return real_add(action, note)

    monkeypatch.setattr(ledger, "add_action", add_then_fail)
    with pytest.raises(OSError):
        Store(ledger, REVIEW).apply(fee_plan(old_fee.id, old_mail.id), key=KEY, now=MONDAY)
    assert len(calls) == 2, "the failure came after the waiver, the cancellation and the first new action"
    assert ledger.action(old_fee.id).state is ActionState.PENDING_REVIEW
    assert ledger.action(old_mail.id).state is ActionState.PLANNED
    assert [action.id for action in ledger.actions()] == [old_fee.id, old_mail.id]
    assert ledger.action_log(old_fee.id) + ledger.action_log(old_mail.id) == log_before


def test_planning_a_waiver_reads_the_ledger_once_and_writes_it_once():
    """The planner used to go in and out of the ledger while planning one happening and
    re-read the client's account to see its own writes; now it reads the client's and the
    event's actions once, decides, and the store writes."""
    from slotguard.domain.model import HappeningKind
    from tests.unit.planning.test_policy_planner import MONDAY as WEEK_START
    from tests.unit.planning.test_policy_planner import World, fee_config

    world = World(**fee_config("no_show", "deposit", deposit={"amount": "30%"}))
    appointment, _ = world.book("e1", WEEK_START)
    world.carry_out(WEEK_START - timedelta(days=3))
    world.happen(HappeningKind.NO_SHOW, appointment, WEEK_START)
    reads, writes = [], []
    real_actions, real_update = world.ledger.actions, world.ledger.update_action

    def actions(**filters):
        assert not writes, "nothing is read after the first write"
        reads.append(filters)
        return real_actions(**filters)

    def update_action(action, at, note="", **guard):
        writes.append(action.id)
        return real_update(action, at, note, **guard)

    world.ledger.actions, world.ledger.update_action = actions, update_action
    planned = world.happen(HappeningKind.WAIVED, appointment, WEEK_START + timedelta(hours=2))
    assert [a.kind for a in planned if a.kind is ActionKind.REFUND] == [ActionKind.REFUND]
    assert len(writes) >= 2, "the kept deposit and the rest of the fee are waived"
    assert sorted(map(sorted, (f.keys() for f in reads))) == [["calendar_id", "event_id"], ["client_email"]]


def test_collections_close_a_fee_and_withdraw_a_request_only_while_they_are_still_owed(ledger):
    """The ladder's decision, as a plan: a settlement offer that ended is no longer asked for
    (nothing polls it or counts it), the fee is closed as written off; money already paid is
    never touched, whatever the plan says."""
    fee = new_action(HERE, ActionKind.CHARGE, "no_show", "fee", key="primary/e1/fee", now=MONDAY, state=ActionState.DONE,
                     amount=nok(900), context={"payment_status": "unpaid"})
    offer = new_action(HERE, ActionKind.CHARGE, "collections", "settlement", key="collections/x", slot="offer", now=MONDAY,
                       state=ActionState.DONE, amount=nok(700), context={"payment_status": "unpaid"})
    paid = new_action(HERE, ActionKind.CHARGE, "collections", "installment", key="collections/x", slot="i1", now=MONDAY,
                      state=ActionState.DONE, amount=nok(300), context={"payment_status": "paid"})
    with ledger.transaction():
        for action in (fee, offer, paid):
            ledger.add_action(action)
    Store(ledger).apply(Plan(withdraw={offer.id: "collections: no longer asked for: the offer ended", paid.id: "the offer ended"},
                             close={fee.id: ("written_off", "written off by collections")}), now=MONDAY + timedelta(days=40))
    assert ledger.action(offer.id).state is ActionState.CANCELLED
    assert ledger.action(offer.id).context["payment_status"] == "superseded"
    assert ledger.action(fee.id).context["payment_status"] == "written_off"
    assert ledger.action(paid.id).state is ActionState.DONE and ledger.action(paid.id).context["payment_status"] == "paid"
    # Closed once: a second plan closing it again changes nothing.
    Store(ledger).apply(Plan(close={fee.id: ("settled", "settled through collections")}), now=MONDAY + timedelta(days=41))
    assert ledger.action(fee.id).context["payment_status"] == "written_off"
