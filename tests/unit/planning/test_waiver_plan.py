"""`main.py waive ACTION_ID` and the waive mark, decided without a ledger: the account is a
view built here by hand, and the plan says what would be waived, cancelled, kept waiting or
given back. The rescheduling credit is undone the way its policy says (`slotguard_undo`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from slotguard.domain.model import (
    OUTCOME_UNKNOWN,
    ActionKind,
    ActionState,
    ActionSubject,
    Happening,
    HappeningKind,
    Undo,
    action_id_for,
    new_action,
)
from slotguard.domain.money import Money
from slotguard.planning.view import AccountView, Draft
from slotguard.planning.waivers import MANUAL_WAIVER, plan_hand_waiver, waive_slot
from slotguard.policies.account import SETTLES, TARGET
from tests.unit.planning.test_plan import appointment

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=OSLO)
CLIENT = "ana@example.com"
HERE = ActionSubject("primary", "e1", CLIENT, "Ana", MONDAY)
WHY = "waived by the practitioner: sick child"


def nok(major: int) -> Money:
    return Money(major * 100, "NOK")


def action(kind: ActionKind, policy: str, slot: str, state: ActionState, subject: ActionSubject = HERE,
           external_id: str = "", **fields):
    """An action as the ledger holds it (carried out with `external_id`, if given)."""
    made = new_action(subject, kind, policy, f"{policy} {kind.value}", key=f"{subject.calendar_id}/{subject.event_id}/x",
                      slot=slot, now=MONDAY - timedelta(days=3), state=state, **fields)
    made.external_id = external_id
    return made


def view_of(*actions) -> AccountView:
    return AccountView(CLIENT, "primary/e1", client_actions=list(actions))


def test_an_open_fee_is_waived_and_nothing_is_given_back():
    fee = action(ActionKind.CHARGE, "no_show", "", ActionState.PENDING_REVIEW, amount=nok(900))
    decided, result = plan_hand_waiver(view_of(fee), fee, WHY)
    assert result.waived and not result.problem
    assert dict(decided.plan.waive) == {fee.id: WHY} and decided.plan.new == ()


def test_a_fee_taken_is_refunded_but_only_what_is_left_with_ids_stable_for_the_waiver():
    fee = action(ActionKind.CHARGE, "no_show", "", ActionState.DONE, amount=nok(900), external_id="ch_1")
    part = action(ActionKind.REFUND, "no_show", "part", ActionState.DONE, amount=nok(300), context={TARGET: fee.id})
    decided, result = plan_hand_waiver(view_of(fee, part), fee, WHY)
    refund, notice = decided.plan.new
    assert refund.kind is ActionKind.REFUND and refund.amount == nok(600) and refund.context[TARGET] == fee.id
    assert notice.template == "refund_notice" and notice.reports_on == refund.slot
    assert decided.plan.by_hand and not result.waived
    # Planned once: with the refund in the account under the waiver's key, nothing new.
    stored = action(ActionKind.REFUND, "no_show", refund.slot, ActionState.PLANNED, amount=nok(600), context=dict(refund.context))
    stored.id = action_id_for(f"{MANUAL_WAIVER}/{fee.id}", refund.policy, "refund", refund.slot)
    again, result = plan_hand_waiver(view_of(fee, part, stored), fee, WHY)
    assert [p for p in again.plan.new if p.kind is ActionKind.REFUND] == [] and result.before == [stored]


def test_a_fee_whose_outcome_is_unknown_keeps_the_waiver_waiting():
    fee = action(ActionKind.CHARGE, "no_show", "", ActionState.PLANNED, amount=nok(900), context={OUTCOME_UNKNOWN: "lost"})
    decided, result = plan_hand_waiver(view_of(fee), fee, WHY)
    assert result.waiting and not result.waived
    assert dict(decided.plan.wait) == {fee.id: WHY} and not decided.plan.waive


def test_a_deposit_applied_to_a_session_cannot_be_waived():
    applied = action(ActionKind.CREDIT, "deposit", "applied", ActionState.DONE, amount=nok(270), context={"purpose": "deposit_applied"})
    decided, result = plan_hand_waiver(view_of(applied), applied, WHY)
    assert decided is None and "applied to the price of a session" in result.problem


def credit_world(used: bool = False):
    deposit = action(ActionKind.CHARGE, "deposit", "deposit", ActionState.DONE, amount=nok(270),
                     context={"purpose": "deposit"}, external_id="ch_dep")
    token = "primary/e1/cancelled_by_client/x#0"
    common = {TARGET: deposit.id, "credit_id": token, "credit_until": "2026-03-05T09:00:00Z"}
    credit = action(ActionKind.CREDIT, "reschedule_credit", "credit-0", ActionState.DONE, amount=nok(270),
                    context={"purpose": "credit", SETTLES: deposit.id, **common})
    end = action(ActionKind.REFUND, "reschedule_credit", "credit-end-0", ActionState.PLANNED, amount=nok(270),
                 context={"purpose": "deposit_return", "expires_credit": token, **common})
    end_notice = action(ActionKind.EMAIL, "reschedule_credit", "notice", ActionState.PLANNED, reports_on=end.id, template="refund_notice")
    actions = [deposit, credit, end, end_notice]
    if used:
        actions.append(action(ActionKind.CREDIT, "reschedule_credit", "deposit", ActionState.DONE, amount=nok(270),
                              subject=ActionSubject("primary", "e2", CLIENT), context={"purpose": "deposit", "uses_credit": token}))
    return actions


def test_waiving_a_credit_or_its_end_gives_the_deposit_back_now_and_cancels_the_end():
    deposit, credit, end, end_notice = credit_world()
    for waived in (credit, end):
        decided, result = plan_hand_waiver(view_of(deposit, credit, end, end_notice), waived, WHY)
        assert not result.problem
        assert set(decided.plan.cancel) == {end.id, end_notice.id}
        assert decided.plan.cancel[end.id] == f"the credit was given back: {WHY}"
        refund = next(p for p in decided.plan.new if p.kind is ActionKind.REFUND)
        assert refund.amount == nok(270) and refund.context[TARGET] == deposit.id


def test_a_credit_that_paid_a_new_booking_is_that_bookings_money():
    actions = credit_world(used=True)
    decided, result = plan_hand_waiver(view_of(*actions), actions[1], WHY)
    assert decided is None and f"main.py waive {actions[-1].id}" in result.problem


def test_the_waive_mark_asks_the_policy_that_made_an_entry_how_to_undo_it():
    """The planner names no policy: whatever answers `slotguard_undo` decides."""
    other = action(ActionKind.CREDIT, "goodwill", "gift", ActionState.DONE, amount=nok(100), context={"purpose": "gift"})
    follow = action(ActionKind.EMAIL, "goodwill", "mail", ActionState.PLANNED, template="gift_mail")
    asked = []

    def ask(entry, account):
        asked.append(entry.id)
        return Undo(entry=entry.id, cancel={follow.id: "the gift was taken back"}) if entry.id == other.id else None

    booked = appointment()
    mark = Happening(key="primary/e1/waived/x", kind=HappeningKind.WAIVED, calendar_id="primary", event_id="e1",
                     client_email=CLIENT, start=booked.start, at=MONDAY, seen_at=MONDAY)
    draft = Draft(AccountView(CLIENT, booked.ref, client_actions=[other, follow]))
    assert waive_slot(draft, mark, booked, WHY, ask) == []
    assert asked == [other.id]
    assert dict(draft.plan().cancel) == {follow.id: f"the gift was taken back: {WHY}"}


# -- the mail about a waived fee (issue 13, item 2) -------------------------------------------


def fee_and_its_mail(booked):
    """A no-show fee under review with its follow-up, a collections reminder about it, the
    booking's reminder and an unrelated refund notice (all not sent yet)."""
    subject = ActionSubject.of_appointment(booked)
    fee = action(ActionKind.CHARGE, "no_show", "", ActionState.PENDING_REVIEW, subject=subject, amount=nok(600))
    followup = action(ActionKind.EMAIL, "no_show", "followup", ActionState.PLANNED, subject=subject,
                      template="no_show_followup", reports_on=fee.id)
    chasing = action(ActionKind.EMAIL, "collections", "step0", ActionState.PLANNED, subject=subject,
                     template="payment_reminder_1", reports_on=fee.id, context={"collects": fee.id, "role": "step"})
    reminder = action(ActionKind.EMAIL, "lifecycle", "reminder", ActionState.PLANNED, subject=subject, template="reminder")
    refund = action(ActionKind.REFUND, "deposit", "back", ActionState.PLANNED, subject=subject, amount=nok(100))
    told = action(ActionKind.EMAIL, "deposit", "told", ActionState.PLANNED, subject=subject, template="refund_notice",
                  reports_on=refund.id)
    return fee, followup, chasing, reminder, told, [fee, followup, chasing, reminder, refund, told]


def waiver_happening(booked, suffix: str) -> Happening:
    return Happening(key=f"{booked.ref}/waived/x{suffix}", kind=HappeningKind.WAIVED, calendar_id="primary", event_id="e1",
                     client_email=CLIENT, start=booked.start, at=MONDAY, seen_at=MONDAY, detail="the no-show mark was removed")


def test_a_no_show_mark_taken_off_cancels_every_email_about_the_fee_whatever_waiver_note_says():
    booked = appointment()
    fee, followup, chasing, reminder, told, actions = fee_and_its_mail(booked)
    for note in (True, False):
        for suffix in ("no-show-withdrawn", "cancellation-withdrawn"):
            draft = Draft(AccountView(CLIENT, booked.ref, client_actions=actions))
            waive_slot(draft, waiver_happening(booked, suffix), booked, "the no-show mark was removed", note=note)
            plan = draft.plan()
            assert set(plan.waive) == {fee.id}
            assert set(plan.cancel) == {followup.id, chasing.id}  # not the booking's reminder, not a refund's notice
            assert "the no-show mark was removed" in plan.cancel[followup.id]


def test_the_waive_mark_keeps_the_kind_note_only_when_the_practitioner_wants_one():
    booked = appointment()
    fee, followup, chasing, reminder, told, actions = fee_and_its_mail(booked)
    draft = Draft(AccountView(CLIENT, booked.ref, client_actions=actions))
    waive_slot(draft, waiver_happening(booked, ""), booked, WHY, note=True)
    assert set(draft.plan().cancel) == {chasing.id}  # the follow-up goes, saying there is no fee
    draft = Draft(AccountView(CLIENT, booked.ref, client_actions=actions))
    waive_slot(draft, waiver_happening(booked, ""), booked, WHY, note=False)
    assert set(draft.plan().cancel) == {followup.id, chasing.id}
    assert "mail.waiver_note is off" in draft.plan().cancel[followup.id]


def test_main_py_waive_of_a_fee_follows_waiver_note_too():
    booked = appointment()
    fee, followup, chasing, reminder, told, actions = fee_and_its_mail(booked)
    kept, _ = plan_hand_waiver(AccountView(CLIENT, booked.ref, client_actions=actions), fee, WHY, note=True)
    assert set(kept.plan.waive) == {fee.id} and set(kept.plan.cancel) == {chasing.id}
    silent, _ = plan_hand_waiver(AccountView(CLIENT, booked.ref, client_actions=actions), fee, WHY, note=False)
    assert set(silent.plan.cancel) == {followup.id, chasing.id}
