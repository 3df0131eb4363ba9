"""A generated year (or more) of a practice's appointments written into a ledger, with the
happenings, fees, waivers, reminders and waitlist offers Slotguard would have stored for
them, and the counts the monthly report should find, tallied here while generating (the
independent count the report's figures are checked against; tests/unit/reports,
bench/bench_report.py).

The rows have the shapes the planner and the executors write (reason chains such as
"no_show proposed ...; first_offense_grace waived it: first incident in 365 days", contexts
with "incident", "payment_status", "settles"), written through the ledger's own methods.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from slotguard.domain.model import (
    ActionKind,
    ActionState,
    ActionSubject,
    Appointment,
    Client,
    Happening,
    HappeningKind,
    new_action,
)
from slotguard.domain.money import Money
from slotguard.intake.tracker import Tracked
from slotguard.store.ledger import Ledger

PRICE = 90000
CURRENCY = "NOK"
FREED_WITHIN = timedelta(hours=48)
# The late_cancel policy's widest tier by default: a client's cancellation with less notice is
# late (an incident, a fee); with more it is "in good time" (no incident, no fee).
LATE_WITHIN = timedelta(hours=24)
# What became of a fee, and how often.
FATES = (("grace", 15), ("untold", 5), ("loyal_waived", 5), ("loyal_reduced", 5), ("practitioner", 10),
         ("paid", 20), ("replaced", 5), ("owed", 10), ("review", 5), ("deposit", 10), ("written_off", 10))


@dataclass
class Truth:
    """What the generator wrote, counted per local month ("2026-11") of the appointment."""

    booked: Counter = field(default_factory=Counter)
    no_shows: Counter = field(default_factory=Counter)
    late_cancels: Counter = field(default_factory=Counter)
    proposed: Counter = field(default_factory=Counter)
    waived: Counter = field(default_factory=Counter)
    charged: Counter = field(default_factory=Counter)
    collected: Counter = field(default_factory=Counter)
    written_off: Counter = field(default_factory=Counter)
    open: Counter = field(default_factory=Counter)
    kept: Counter = field(default_factory=Counter)
    rebooked: Counter = field(default_factory=Counter)
    protected_minutes: Counter = field(default_factory=Counter)
    reminders: Counter = field(default_factory=Counter)
    cancellations: Counter = field(default_factory=Counter)
    cancelled_early: Counter = field(default_factory=Counter)
    cancelled_in_time: Counter = field(default_factory=Counter)
    fates: dict = field(default_factory=lambda: defaultdict(Counter))  # month -> fate -> count
    waived_by: dict = field(default_factory=lambda: defaultdict(Counter))  # month -> who -> count
    incidents: dict = field(default_factory=lambda: defaultdict(list))  # client -> [start]
    names: dict = field(default_factory=dict)
    appointments: int = 0


def month_of(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m")


def generate(ledger: Ledger, *, end: date, months: int = 12, per_day: float = 4.0, seed: int = 17,
             zone: ZoneInfo = ZoneInfo("Europe/Oslo")) -> Truth:
    """Fill `ledger` with `months` months of appointments ending the day before `end`
    (about `per_day` a day); return what it holds, counted."""
    rng = random.Random(seed)
    truth = Truth()
    back = end.year * 12 + end.month - 1 - months
    first = date(back // 12, back % 12 + 1, 1)
    clients = [(f"client{number}@example.com", f"Client {number}") for number in range(max(8, int(per_day * 20)))]
    day, serial = first, 0
    with ledger.transaction():
        while day < end:
            for _ in range(_how_many(rng, per_day)):
                serial += 1
                _one(ledger, truth, rng, zone, day, serial, clients)
            day += timedelta(days=1)
    truth.appointments = serial
    return truth


def _how_many(rng: random.Random, per_day: float) -> int:
    whole = int(per_day)
    return whole + (1 if rng.random() < per_day - whole else 0)


def _one(ledger: Ledger, truth: Truth, rng: random.Random, zone: ZoneInfo, day: date, serial: int, clients) -> None:
    email, name = rng.choice(clients)
    truth.names[email] = name
    minutes = rng.choice((30, 60, 60, 90))
    start = datetime(day.year, day.month, day.day, rng.randint(8, 17), rng.choice((0, 30)), tzinfo=zone)
    month = month_of(start, zone)
    roll = rng.random()
    fate = "attended" if roll < 0.78 else "no_show" if roll < 0.86 else "late" if roll < 0.93 else "practitioner"
    event_id = f"ev{serial}"
    marks = {"no_show": frozenset({"no_show"}), "late": frozenset({"late_cancel"})}.get(fate, frozenset())
    appointment = Appointment(
        calendar_id="cal", event_id=event_id, client=Client(email, name), start=start, end=start + timedelta(minutes=minutes),
        timezone=str(zone), status="cancelled" if fate == "practitioner" else "confirmed", price=Money(PRICE, CURRENCY),
        service="default", title="massage", updated=start - timedelta(days=3), marks=marks,
    )
    cancellation = {"late": "client", "practitioner": "practitioner"}.get(fate, "")
    outcome = {"attended": "attended", "no_show": "no_show"}.get(fate, "")
    booked_at = start - timedelta(days=rng.randint(3, 30))
    ledger.save_tracked(Tracked(appointment, cancellation, outcome, booked_at))
    _happening(ledger, appointment, HappeningKind.BOOKED, booked_at)
    subject = ActionSubject.of_appointment(appointment)
    if fate != "practitioner":
        truth.booked[month] += 1
        # One reminder 48 hours ahead, sent unless the session was cancelled before it was due.
        reminder_at = start - timedelta(hours=48)
        cancelled_at = start - timedelta(hours=rng.choice((1, 3, 20, 30, 60, 100))) if fate == "late" else None
        if cancelled_at is None or cancelled_at > reminder_at:
            ledger.add_action(new_action(subject, ActionKind.EMAIL, "lifecycle", "reminder 48h before", key=f"{event_id}/r",
                                         now=reminder_at, state=ActionState.DONE, template="reminder", executed_at=reminder_at))
            truth.reminders[month_of(reminder_at, zone)] += 1
    if fate == "attended" and rng.random() < 0.3:
        _happening(ledger, appointment, HappeningKind.ATTENDED, appointment.end)
    if fate in ("late", "practitioner"):
        if fate == "practitioner":
            cancelled_at = start - timedelta(hours=rng.choice((2, 30, 50, 200)))
        assert cancelled_at is not None
        kind = HappeningKind.CANCELLED_BY_CLIENT if fate == "late" else HappeningKind.CANCELLED_BY_PRACTITIONER
        _happening(ledger, appointment, kind, cancelled_at)
        truth.cancellations[month] += 1
        if start - cancelled_at >= FREED_WITHIN:
            truth.cancelled_early[month] += 1
    if fate == "late" and start - cancelled_at >= LATE_WITHIN:
        truth.cancelled_in_time[month] += 1
        if rng.random() < 0.5:
            _waitlist(ledger, truth, rng, zone, appointment, cancelled_at, clients, month)
    elif fate in ("no_show", "late"):
        if fate == "no_show":
            truth.no_shows[month] += 1
            _happening(ledger, appointment, HappeningKind.NO_SHOW, appointment.end)
        else:
            truth.late_cancels[month] += 1
        truth.incidents[email].append(start)
        _fee(ledger, truth, rng, subject, event_id, month, minutes, "no_show" if fate == "no_show" else "late_cancel")
        if fate == "late" and rng.random() < 0.5:
            _waitlist(ledger, truth, rng, zone, appointment, cancelled_at, clients, month)


def _happening(ledger: Ledger, appointment: Appointment, kind: HappeningKind, at: datetime) -> None:
    ledger.add_happening(Happening(
        key=f"{appointment.ref}/{kind.value}", kind=kind, calendar_id=appointment.calendar_id, event_id=appointment.event_id,
        client_email=appointment.client.email, start=appointment.start, at=at, seen_at=at,
    ))


def _pick_fate(rng: random.Random) -> str:
    total = sum(weight for _, weight in FATES)
    roll = rng.uniform(0, total)
    for name, weight in FATES:
        roll -= weight
        if roll <= 0:
            return name
    return FATES[-1][0]


def _fee(ledger: Ledger, truth: Truth, rng: random.Random, subject: ActionSubject, event_id: str, month: str, minutes: int,
         policy: str) -> None:
    amount = PRICE if policy == "no_show" else PRICE // 2
    fate = _pick_fate(rng)
    truth.fates[month][fate] += 1
    base = f"{policy} proposed {amount / 100:.2f} NOK: marked"
    now = subject.appointment_start or datetime.now()
    key = f"{event_id}/fee"
    context = {"incident": True}

    def add(kind, state, reason, money, ctx, *, executed=True, slot="", who="") -> None:
        action = new_action(subject, kind, policy if not who else who, reason, key=key, slot=slot, now=now, state=state,
                            amount=Money(money, CURRENCY), executed_at=now if executed else None, context=ctx)
        ledger.add_action(action)

    if fate == "grace":
        add(ActionKind.WAIVE, ActionState.DONE, f"{base}; first_offense_grace waived it: first incident in 365 days", amount,
            {**context, "waived_amount": {"minor": amount, "currency": CURRENCY}})
        truth.proposed[month] += amount
        truth.waived[month] += amount
        truth.waived_by[month]["first_offense_grace"] += 1
    elif fate == "untold":
        add(ActionKind.WAIVE, ActionState.DONE, f"{base}; no fee: the client had not been told the policy; a warning quoting it was sent",
            amount, {**context, "policy_untold": True})
        truth.proposed[month] += amount
        truth.waived[month] += amount
        truth.waived_by[month]["policy_notice"] += 1
    elif fate == "loyal_waived":
        add(ActionKind.WAIVE, ActionState.DONE, f"{base}; loyal_client waived it: 14 sessions attended", amount, context)
        truth.proposed[month] += amount
        truth.waived[month] += amount
        truth.waived_by[month]["loyal_client"] += 1
    elif fate == "loyal_reduced":
        half = amount // 2
        add(ActionKind.CHARGE, ActionState.DONE, f"{base}; loyal_client reduced it by 50% to {half / 100:.2f} NOK: 14 sessions",
            half, {**context, "payment_status": "paid"})
        truth.proposed[month] += half
        truth.charged[month] += half
        truth.collected[month] += half
        truth.protected_minutes[month] += minutes
    elif fate == "practitioner":
        action = new_action(subject, ActionKind.CHARGE, policy, base, key=key, now=now, state=ActionState.PENDING_REVIEW,
                            amount=Money(amount, CURRENCY), context=context)
        ledger.add_action(action)
        action.state = ActionState.WAIVED
        ledger.update_action(action, now + timedelta(hours=1), rng.choice(("waived: waived by the practitioner: family emergency", "waived: waived by the practitioner's mark on the event")))
        truth.proposed[month] += amount
        truth.waived[month] += amount
        truth.waived_by[month]["practitioner"] += 1
    elif fate == "paid":
        add(ActionKind.CHARGE, ActionState.DONE, base, amount, {**context, "payment_status": "paid"})
        truth.proposed[month] += amount
        truth.charged[month] += amount
        truth.collected[month] += amount
        truth.protected_minutes[month] += minutes
    elif fate == "replaced":
        # A fee replaced by another before it was charged (slotguard/store/apply.py `supersede`):
        # only the one that replaced it counts.
        first = new_action(subject, ActionKind.CHARGE, policy, base, key=key, slot="first", now=now,
                           state=ActionState.PENDING_REVIEW, amount=Money(amount // 2, CURRENCY), context=context)
        ledger.add_action(first)
        add(ActionKind.CHARGE, ActionState.DONE, base, amount, {**context, "payment_status": "paid"})
        first.state = ActionState.WAIVED
        first.reason = f"{first.reason}; waived: replaced by act_x ({policy})"
        ledger.update_action(first, now, "waived: replaced by act_x")
        truth.proposed[month] += amount
        truth.charged[month] += amount
        truth.collected[month] += amount
        truth.protected_minutes[month] += minutes
    elif fate == "owed":
        add(ActionKind.CHARGE, ActionState.DONE, base, amount, {**context, "payment_status": "receivable"})
        truth.proposed[month] += amount
        truth.charged[month] += amount
        truth.open[month] += amount
    elif fate == "review":
        add(ActionKind.CHARGE, ActionState.PENDING_REVIEW, base, amount, context, executed=False)
        truth.proposed[month] += amount
        truth.open[month] += amount
    elif fate == "deposit":
        deposit = PRICE // 2
        covered = min(deposit, amount)
        add(ActionKind.CREDIT, ActionState.DONE, f"{base}; deposit: {covered / 100:.2f} NOK of it paid from the deposit", covered,
            {**context, "purpose": "fee", "settles": "act_deposit", "target_action_id": "act_deposit", "payment_status": "paid"})
        truth.proposed[month] += covered
        truth.kept[month] += covered
        truth.protected_minutes[month] += minutes
        if amount > covered:
            add(ActionKind.CHARGE, ActionState.DONE, f"{policy}: the rest of the fee after the deposit", amount - covered,
                {**context, "payment_status": "paid"}, slot="rest")
            truth.proposed[month] += amount - covered
            truth.charged[month] += amount - covered
            truth.collected[month] += amount - covered
    elif fate == "written_off":
        add(ActionKind.CHARGE, ActionState.DONE, base, amount, {**context, "payment_status": "written_off"})
        add(ActionKind.WRITEOFF, ActionState.DONE, "collections: written off after the last step", amount,
            {"role": "writeoff", "collects": "x"}, slot="writeoff", who="collections")
        truth.proposed[month] += amount
        truth.charged[month] += amount
        truth.written_off[month] += amount


def _waitlist(ledger: Ledger, truth: Truth, rng: random.Random, zone: ZoneInfo, appointment: Appointment, cancelled_at,
              clients, month: str) -> None:
    """Offer the freed slot to two clients; sometimes one of them books it."""
    offered = rng.sample([client for client in clients if client[0] != appointment.client.email], 2)
    for email, name in offered:
        subject = ActionSubject(appointment.calendar_id, appointment.event_id, email, name, appointment.start)
        ledger.add_action(new_action(subject, ActionKind.EMAIL, "waitlist", "offer the slot", key=f"{appointment.ref}/offer",
                                     slot=email, now=cancelled_at, state=ActionState.DONE, template="slot_freed",
                                     executed_at=cancelled_at))
    if rng.random() < 0.5:
        email, name = offered[0]
        minutes = int((appointment.end - appointment.start).total_seconds() // 60)
        rebooked = Appointment(
            calendar_id="cal", event_id=f"{appointment.event_id}-again", client=Client(email, name), start=appointment.start,
            end=appointment.end, timezone=str(zone), status="confirmed", price=appointment.price, service="default",
            title="massage", updated=cancelled_at,
        )
        ledger.save_tracked(Tracked(rebooked, "", "attended", cancelled_at))
        truth.rebooked[month] += 1
        truth.booked[month] += 1
        truth.protected_minutes[month] += minutes
        truth.names[email] = name
