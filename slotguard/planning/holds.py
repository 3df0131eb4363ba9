"""Card holds stay valid until they are captured: how long a hold lasts, and placing it again.

A hold (money reserved on the card, captured later) lapses when the card network's
authorisation window ends. The shortest is Visa's for a card-not-present payment the
merchant initiates, which is what a hold placed while the client is away is: 5 days, exactly
4 days 18 hours (Mastercard, American Express, Discover: 7 days; Stripe, "Place a hold on a
payment method"). A deposit hold is needed until it is captured or released: the outcome of
the appointment comes at the latest `calendar.marks.settle_after_end` after its end, and what
it keeps then waits `payments.review_window` (`needed_until`).

plugins/deposit.py refuses a `hold_before` that does not leave that much room. When a hold
would still lapse too early (the appointment was moved later, or a long session), the hold is
placed again in time (`renewal_due`, pure): a new `hold` action whose id derives from the old
one's (`renews` in its context), due as close to `hold_before` before the start as the old
hold allows, else just before the old one lapses. `plan_hold_renewals` stores the renewals
that are due; before one is carried out `renewal_ready` checks that it is still wanted; once
it is in place `renewal_done` plans the release of the old hold (`settles` it), so a deposit
is held once, and captures and releases use the live hold (`ClientAccount.open_deposits`).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from slotguard.config.schema import Settings
from slotguard.domain.durations import format_duration
from slotguard.domain.holds import HOLD_BEFORE, HOLD_VALIDITY, RENEW_MARGIN
from slotguard.domain.model import OPEN_STATES, Action, ActionKind, ActionState, ActionSubject, Appointment, new_action
from slotguard.domain.payment_status import PaymentStatus
from slotguard.domain.plan import Plan
from slotguard.policies.account import DEPOSIT, HOLD_RENEWED, RENEWS, SETTLES, TARGET, ClientAccount, purpose_of
from slotguard.policies.builders import local_text
from slotguard.store.apply import Store
from slotguard.store.ledger import Ledger

log = logging.getLogger("slotguard.holds")

LOOKBACK = timedelta(days=14)  # holds placed longer ago than this have lapsed whatever happens


def needed_until(appointment: Appointment, settings: Settings) -> datetime:
    """The latest a deposit hold on `appointment` may be captured: its outcome comes at most
    `settle_after_end` after the end, and what is kept then waits the review window, and the
    client's quiet hours if it ends in them (mail.quiet_hours)."""
    quiet = settings.mail.quiet
    night = quiet.longest if quiet is not None else timedelta(0)
    return appointment.end + settings.calendar.marks.settle_after_end + settings.payments.review_window + night


def renewal_due(hold: Action, appointment: Appointment, settings: Settings) -> datetime | None:
    """When the carried-out `hold` must be placed again so that a hold is valid until
    `needed_until(appointment)`, or None when it lasts that long (with RENEW_MARGIN to spare).

    The new hold goes at the latest moment that still finds the old one valid, and no later
    than the deposit's `hold_before` (else RENEW_MARGIN) before the start, but never so early
    that it lapses before it is needed: an appointment moved far ahead gets a hold placed again
    before each lapse, so the slot is never without one.
    """
    assert hold.executed_at is not None
    lapses = hold.executed_at + HOLD_VALIDITY
    needed = needed_until(appointment, settings)
    keeps_until = lapses - RENEW_MARGIN  # the old hold is still safe to rely on
    if keeps_until >= needed:
        return None
    earliest_covering = needed - HOLD_VALIDITY + RENEW_MARGIN
    if earliest_covering > keeps_until:
        return keeps_until
    lead = timedelta(seconds=int(hold.context.get(HOLD_BEFORE) or 0)) or RENEW_MARGIN
    return max(earliest_covering, min(keeps_until, appointment.start - lead))


def plan_hold_renewals(ledger: Ledger, settings: Settings, now: datetime) -> list[Action]:
    """Store a renewal for every deposit hold in force whose `renewal_due` has come, while
    its appointment is still ahead and open; return the new actions. With the record-only
    provider no hold exists on a card, so nothing is renewed."""
    if settings.payments.provider == "record-only":
        return []
    planned = []
    for hold in ledger.holds_placed_since(now - LOOKBACK):
        if purpose_of(hold.kind, hold.context) != DEPOSIT or hold.context.get("payment_status") != PaymentStatus.PAID:
            continue
        tracked = ledger.tracked(hold.calendar_id, hold.event_id)
        if tracked is None or tracked.cancellation or tracked.outcome or tracked.appointment.is_cancelled:
            continue
        appointment = tracked.appointment
        due = renewal_due(hold, appointment, settings)
        if due is None or due > now or appointment.start <= now:
            continue
        account = ClientAccount.from_actions(hold.client_email, ledger.actions(client_email=hold.client_email))
        if hold.id in account.used_up():
            continue  # captured, released, or already replaced
        renewal = _renewal(hold, appointment, now)
        if Store(ledger).apply(Plan(actions=(renewal,)), now=now):
            planned.append(renewal)
            log.info("planned action=%s kind=hold renews=%s event=%s", renewal.id, hold.id, hold.event_ref)
    return planned


def _renewal(hold: Action, appointment: Appointment, now: datetime) -> Action:
    lapses = hold.executed_at + HOLD_VALIDITY if hold.executed_at else now
    reason = (
        f"{hold.policy}: the {hold.amount} hold {hold.id} is placed again before it lapses ({local_text(lapses, appointment)}; "
        f"card holds last {format_duration(HOLD_VALIDITY)}), so a hold is in place until the appointment on "
        f"{local_text(appointment.start, appointment)} is settled; the old hold is released once the new one holds"
    )
    context = {"purpose": DEPOSIT, "deposit_kind": "hold", RENEWS: hold.id}
    if hold.context.get(HOLD_BEFORE):
        context[HOLD_BEFORE] = hold.context[HOLD_BEFORE]
    return _beside(hold, ActionKind.HOLD, f"{RENEWS}:{hold.id}", reason, appointment.start, context, now)


def _beside(hold: Action, kind: ActionKind, slot: str, reason: str, appointment_start: datetime | None, context: dict, now: datetime) -> Action:
    """A new action about `hold` (its renewal, or its release once renewed), planned now for
    the same client, event and amount; its id derives from the hold's happening and `slot`,
    so planning it again plans nothing new."""
    return new_action(
        replace(ActionSubject.of_action(hold), appointment_start=appointment_start), kind, hold.policy, reason,
        key=hold.happening_key, slot=slot, now=now, amount=hold.amount, context=context,
    )


def renewal_ready(ledger: Ledger, renewal: Action, now: datetime) -> bool:
    """Before a renewal is carried out: True while it is still wanted; otherwise it is
    cancelled with the reason (the old hold was captured or released meanwhile, the
    appointment was cancelled, settled or has started)."""
    old = ledger.action(str(renewal.context.get(RENEWS)))
    tracked = ledger.tracked(renewal.calendar_id, renewal.event_id)
    why = ""
    if old is None or old.state is not ActionState.DONE:
        why = "the hold it replaces is not in force"
    elif old.id in ClientAccount.from_actions(old.client_email, ledger.actions(client_email=old.client_email)).used_up():
        why = "the hold it replaces was captured or released meanwhile"
    elif tracked is None or tracked.cancellation or tracked.outcome or tracked.appointment.is_cancelled:
        why = "the appointment was cancelled or has its outcome"
    elif tracked.appointment.start <= now:
        why = "the appointment has started; the hold in place stays"
    if not why:
        return True
    renewal.state = ActionState.CANCELLED
    ledger.update_action(renewal, now, f"not placed: {why}", expect=OPEN_STATES)
    return False


def renewal_done(ledger: Ledger, renewal: Action, now: datetime) -> str:
    """After a renewal was carried out (inside its transaction): once the new hold is in
    place, plan the release of the old one. Returns a problem for the practitioner when the
    card refused the new hold (the old one stays until it lapses), else ""."""
    old = ledger.action(str(renewal.context.get(RENEWS)))
    if old is None:
        return ""
    if renewal.context.get("payment_status") != PaymentStatus.PAID:
        lapses = f"{old.executed_at + HOLD_VALIDITY:%Y-%m-%d %H:%M %Z}" if old.executed_at else "soon"
        return (
            f"action {renewal.id}: the card of {renewal.client_email} refused a fresh {renewal.amount} hold; the current hold "
            f"{old.id} lapses {lapses}, after that a fee is charged to the card (or asked for by link) instead of captured"
        )
    release = _beside(
        old, ActionKind.RELEASE, f"{HOLD_RENEWED}:{old.id}",
        f"{old.policy}: the {old.amount} hold {old.id} is released: the fresh hold {renewal.id} holds the deposit now",
        renewal.appointment_start,
        {"purpose": HOLD_RENEWED, TARGET: old.id, "target_external_id": old.external_id, SETTLES: old.id},
        now,
    )
    if Store(ledger).apply(Plan(actions=(release,)), now=now):
        log.info("planned action=%s kind=release renewed_by=%s event=%s", release.id, renewal.id, old.event_ref)
    return ""
