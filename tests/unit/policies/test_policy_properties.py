"""Properties that hold whatever the policies, their settings and the calendar's history:
a fee is never negative and never more than the price or `max_single_charge`; replaying the
same history changes nothing; a waived fee is never charged."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from integration.memory import MemoryCalendar, MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import ActionKind, ActionState, Mark
from slotguard.domain.money import Fee, Money
from slotguard.mail.messages import Renderer
from slotguard.policies.loading import load_enabled
from slotguard.run.engine import Engine
from slotguard.store.ledger import Ledger
from tests.support.builders import event, settings
from tests.unit.planning.test_policy_planner import K, World

OSLO = ZoneInfo("Europe/Oslo")
MONDAY = datetime(2026, 3, 2, 8, 0, tzinfo=OSLO)
SLOW = hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def amount_text(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d} NOK"


fee_rules = st.one_of(
    st.integers(0, 100).map(lambda percent: f"{percent}%"),
    st.integers(0, 1_000_000).map(amount_text),
)
modifiers = st.fixed_dictionaries(
    {},
    optional={
        "first_offense_grace": st.just({}),
        "loyal_client": st.integers(1, 100).map(lambda d: {"min_sessions": 1, "discount": f"{d}%"}),
        "friends_and_family": st.integers(1, 100).map(lambda s: {"clients": ["ana@example.com"], "share": f"{s}%"}),
        "weekend_surcharge": st.integers(1, 100).map(lambda s: {"surcharge": f"{s}%", "days": ["monday", "tuesday", "wednesday"]}),
        "small_amount_writeoff": st.integers(1, 50_000).map(lambda b: {"below": amount_text(b)}),
        "emergency_waiver": st.just({}),
    },
)


@SLOW
@given(
    price=st.integers(100, 500_000),
    cap=st.none() | st.integers(100, 300_000),
    tiers=st.lists(st.tuples(st.integers(1, 96), fee_rules), min_size=1, max_size=4, unique_by=lambda tier: tier[0]),
    no_show_fee=fee_rules,
    deposit=st.none() | st.tuples(fee_rules, st.sampled_from(["charge", "hold"])),
    chosen=modifiers,
    kind=st.sampled_from([K.NO_SHOW, K.CANCELLED_BY_CLIENT]),
    notice_minutes=st.integers(-120, 5000),
    attended_before=st.integers(0, 2),
)
def test_a_fee_is_never_negative_nor_above_the_price_or_max_single_charge(
    price, cap, tiers, no_show_fee, deposit, chosen, kind, notice_minutes, attended_before
):
    # A closer tier never costs less than a wider one (check-config refuses that): the
    # tightest window gets the highest of the drawn fees at this price.
    windows = sorted(hours for hours, _ in tiers)
    fees = sorted((fee for _, fee in tiers), key=lambda fee: Fee.parse(fee).of(Money(price, "NOK")).minor, reverse=True)
    policies = {
        "enabled": ["late_cancel", "no_show", *(["deposit"] if deposit else []), *chosen],
        "late_cancel": {"tiers": [{"within": f"{hours}h", "fee": fee} for hours, fee in zip(windows, fees)]},
        "no_show": {"fee": no_show_fee},
        **chosen,
    }
    if deposit:
        policies["deposit"] = {"amount": deposit[0], "kind": deposit[1]}
    payments = {"max_single_charge": amount_text(cap) if cap else None}
    world = World(services={"default": {"price": amount_text(price), "duration": "60m"}}, payments=payments, policies=policies)
    start = MONDAY + timedelta(days=1, hours=2)
    for number in range(attended_before):
        earlier = world.appointment(f"past{number}", start - timedelta(days=7 * (number + 1)))
        world.happen(K.ATTENDED, earlier, earlier.start + timedelta(hours=3))
    appointment, _ = world.book("e1", start, at=start - timedelta(days=6))
    world.carry_out(start - timedelta(days=1))
    at = start - timedelta(minutes=notice_minutes) if kind is K.CANCELLED_BY_CLIENT else start
    world.happen(kind, appointment, at, max(at, start - timedelta(days=6)))
    limit = Money(price, "NOK") if cap is None else Money(min(price, cap), "NOK")
    for action in world.actions():
        if action.amount is None:
            continue
        assert action.amount.minor >= 0, action.reason
        if action.kind in (ActionKind.CHARGE, ActionKind.HOLD, ActionKind.CAPTURE):
            assert 0 < action.amount.minor <= limit.minor, action.reason


# -- whole histories through the engine -------------------------------------------------------

RENDERER = Renderer("en", "Europe/Oslo")
POLICIES = {
    "enabled": ["late_cancel", "no_show", "deposit", "first_offense_grace", "loyal_client", "practitioner_cancel_refund", "small_amount_writeoff"],
    "late_cancel": {"tiers": [{"within": "24h", "fee": "50%"}, {"within": "2h", "fee": "100%"}]},
    "no_show": {"fee": "100%"},
    "deposit": {"amount": "30%"},
    "loyal_client": {"min_sessions": 1, "discount": "50%"},
    "practitioner_cancel_refund": {"goodwill": "10%"},
    "small_amount_writeoff": {"below": "300 NOK"},
}
FATES = ("attended", "no_show", "late_cancel", "early_cancel", "deleted", "waived_later", "moved")


class RecordingProvider(RecordOnlyProvider):
    def __init__(self):
        self.seen: list[str] = []

    def execute(self, action):
        self.seen.append(action.id)
        return super().execute(action)


def timeline(bookings):
    """(at, "put"|"delete", event) steps for bookings of (client, day, hour, fate, minutes)."""
    steps = []
    for number, (client, day, hour, fate, minutes) in enumerate(bookings):
        start = MONDAY.replace(hour=hour) + timedelta(days=day)
        event_id = f"e{number}"
        base = dict(client=f"{client}@example.com", name=client.capitalize())
        steps.append((MONDAY, "put", event(event_id, start, **base)))
        if fate == "no_show" or fate == "waived_later":
            steps.append((start + timedelta(minutes=minutes % 90), "put", event(event_id, start, color="11", **base)))
        if fate == "waived_later":
            steps.append((start + timedelta(minutes=90 + minutes * 10), "put", event(event_id, start, color="11", title="Massage #waive", **base)))
        if fate in ("late_cancel", "early_cancel"):
            notice = timedelta(minutes=minutes) if fate == "late_cancel" else timedelta(hours=30 + minutes % 40)
            steps.append((max(MONDAY, start - notice), "put", event(event_id, start, title="Massage #latecancel", **base)))
        if fate == "deleted":
            steps.append((max(MONDAY, start - timedelta(minutes=minutes * 5)), "delete", event_id))
        if fate == "moved":
            steps.append((max(MONDAY, start - timedelta(hours=20)), "put", event(event_id, start + timedelta(days=1), **base)))
    return sorted(steps, key=lambda step: step[0])


def run(steps, ledger=None, provider=None, until=MONDAY + timedelta(days=6), policies=POLICIES):
    config = settings(policies=policies)
    ledger = ledger or Ledger(":memory:")
    calendar = MemoryCalendar("primary")
    provider = provider or RecordingProvider()
    engine = Engine(
        settings=config, ledger=ledger, calendars=[(calendar, NullWriteBack())], provider=provider,
        mailer=MemoryMailer(), renderer=RENDERER, policies=load_enabled(config), charge_from=MONDAY,
    )
    now, pending = MONDAY, list(steps)
    while now <= until:
        while pending and pending[0][0] <= now:
            at, what, item = pending.pop(0)
            calendar.put(item, at) if what == "put" else calendar.delete(item, at)
        engine.tick(now)
        now += timedelta(hours=1)
    return ledger, calendar, provider


def story(ledger):
    return [(a.id, a.kind, a.state, a.amount, a.reason, a.due_at, a.executed_at) for a in ledger.actions()]


bookings = st.lists(
    st.tuples(st.sampled_from(["ana", "bo"]), st.integers(0, 3), st.integers(9, 16), st.sampled_from(FATES), st.integers(0, 600)),
    min_size=1,
    max_size=4,
    unique_by=lambda booking: (booking[0], booking[1], booking[2]),
)


@hsettings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bookings=bookings)
def test_replaying_the_same_history_twice_changes_nothing(bookings):
    steps = timeline(bookings)
    ledger, calendar, _ = run(steps)
    first = story(ledger)
    assert story(run(steps)[0]) == first, "the same history gives the same ledger"
    # The same calendar read again in full, by a fresh engine on the same ledger: nothing new.
    config = settings(policies=POLICIES)
    again = Engine(
        settings=config, ledger=ledger, calendars=[(calendar, NullWriteBack())], provider=RecordingProvider(),
        mailer=MemoryMailer(), renderer=RENDERER, policies=load_enabled(config), charge_from=MONDAY,
    )
    for source, _ in again.calendars:
        ledger.clear_sync_token(source.calendar_id)
    report = again.tick(MONDAY + timedelta(days=6))
    assert sum(report.planned.values()) == 0
    assert story(ledger) == first


waivers = st.lists(
    st.tuples(st.sampled_from(["ana", "bo"]), st.integers(0, 3), st.integers(9, 16), st.sampled_from(["waived_later", "waived_later", "no_show", "late_cancel"]), st.integers(0, 300)),
    min_size=1,
    max_size=3,
    unique_by=lambda booking: (booking[0], booking[1], booking[2]),
)


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bookings=waivers)
def test_a_waived_fee_is_never_charged(bookings):
    """A fee waived while in review is never carried out; one charged before the waiver is
    refunded, so a waived appointment costs the client nothing in the end."""
    provider = RecordingProvider()
    strict = {**POLICIES, "enabled": ["late_cancel", "no_show", "deposit", "small_amount_writeoff"]}  # no grace to hide a fee
    ledger, _, _ = run(timeline(bookings), provider=provider, policies=strict)
    for action in ledger.actions():
        if action.state is ActionState.WAIVED or action.kind is ActionKind.WAIVE:
            assert action.id not in provider.seen, f"{action.id} was waived but carried out: {action.reason}"
    for tracked in ledger.all_tracked():
        if Mark.WAIVE not in tracked.appointment.marks:  # the title itself is not kept
            continue
        money = ledger.actions(calendar_id="primary", event_id=tracked.appointment.event_id, states=[ActionState.DONE])
        taken = sum(a.amount.minor for a in money if a.kind in (ActionKind.CHARGE, ActionKind.CAPTURE))
        given_back = sum(a.amount.minor for a in money if a.kind is ActionKind.REFUND)
        assert taken == given_back, [(a.kind.value, a.amount, a.reason) for a in money]
