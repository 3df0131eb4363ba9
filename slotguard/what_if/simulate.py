"""What-if: replay the calendar's history from the ledger under another set of policies.

`python main.py simulate --config PATH --from DATE --to DATE [--policies a,b,c]` answers "what
would these policies have charged, waived and emailed over the past three months?" before
the practitioner enables them.

How: the ledger keeps every happening (booked, cancelled by the client at a given time,
no-show, attended, waived...) with the time it was seen, and the last snapshot of each
appointment. The simulation copies the ledger into memory (the file is opened read-only),
then feeds the happenings, in the order they were seen, to a fresh planner with the chosen
policies, writing into an in-memory ledger; between happenings it carries out what has
fallen due with the record-only provider and an in-memory mailer. Nothing is charged, sent or
written. History before `--from` is replayed too, so that policies counting earlier incidents
or sessions see them, but only appointments starting in [from, to) are reported, and fees are
counted only for them (`charge_from` is `--from`).

Approximations, said plainly: each appointment is seen as its last snapshot (title, price,
client) at the start time the happening had; reminders are not replayed (no policy changes
them); the ledger's `payments.charge_from` is ignored.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from integration.memory import MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.config.schema import ConfigError, Settings
from slotguard.domain.model import OPEN_STATES, Action, ActionKind, ActionState, Appointment, Happening, HappeningKind
from slotguard.domain.money import Money, format_money
from slotguard.domain.tick_report import TickReport
from slotguard.intake.tracker import BY_CLIENT, BY_PRACTITIONER, Tracked
from slotguard.policies.account import DEPOSIT, FEE, PACKAGE_CREDIT, PREPAYMENT, purpose_of
from slotguard.policies.info import Policy
from slotguard.policies.loading import load_enabled
from slotguard.run.engine import Engine
from slotguard.run.wiring import make_renderer
from slotguard.store.backend import exists, place
from slotguard.store.ledger import Ledger, LedgerError

MAX_STEPS = 1_000_000
SETTLE_AFTER = timedelta(days=7)  # run on after the last happening, so reviewed fees are decided
NOT_REPLAYED = frozenset({"reminder", "slot_freed", "practitioner_digest"})  # mail no policy changes
LIVE = frozenset({ActionState.PLANNED, ActionState.PENDING_REVIEW, ActionState.EXECUTING, ActionState.DONE})


class SimulationError(ValueError):
    """The simulation cannot run; the message says why and what to do."""


@dataclass
class ClientTotals:
    fees: int = 0  # charged, or paid from a deposit: what the client pays for incidents
    waived: int = 0
    written_off: int = 0
    deposits: int = 0  # deposits and prepayments asked
    refunded: int = 0
    prepaid_sessions: int = 0  # fees paid with a prepaid session instead of money (purpose package_credit)
    emails: Counter = field(default_factory=Counter)

    def add(self, other: ClientTotals) -> None:
        for name in ("fees", "waived", "written_off", "deposits", "refunded", "prepaid_sessions"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.emails.update(other.emails)


@dataclass
class SimulationResult:
    policies: list[str]
    start: datetime
    end: datetime
    currency: str
    happenings: int
    appointments: int
    actions: list[Action]
    clients: dict[str, ClientTotals]
    total: ClientTotals
    actual: ClientTotals
    problems: list[str]

    def as_json(self) -> dict[str, Any]:
        def totals(item: ClientTotals) -> dict[str, Any]:
            return {
                "fees": Money(item.fees, self.currency).as_json(),
                "waived": Money(item.waived, self.currency).as_json(),
                "written_off": Money(item.written_off, self.currency).as_json(),
                "deposits": Money(item.deposits, self.currency).as_json(),
                "refunded": Money(item.refunded, self.currency).as_json(),
                "prepaid_sessions": item.prepaid_sessions,
                "emails": dict(sorted(item.emails.items())),
            }

        return {
            "policies": self.policies,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "happenings": self.happenings,
            "appointments": self.appointments,
            "clients": {email: totals(item) for email, item in sorted(self.clients.items())},
            "total": totals(self.total),
            "actual": totals(self.actual),
            "actions": [
                {
                    "id": action.id,
                    "kind": action.kind.value,
                    "state": action.state.value,
                    "client": action.client_email,
                    "event_id": action.event_id,
                    "appointment_start": action.appointment_start.isoformat() if action.appointment_start else None,
                    "amount": action.amount.as_json() if action.amount else None,
                    "policy": action.policy,
                    "template": action.template,
                    "reason": action.reason,
                }
                for action in self.actions
            ],
            "problems": self.problems,
        }


def copy_of_ledger(location: str, schema: str | None = None) -> Ledger:
    """An in-memory (SQLite) copy of the ledger at `location` (a SQLite file, or a PostgreSQL
    URL with `schema`), which is read and left as it was. Raises SimulationError when there
    is no ledger there yet or it cannot be read."""
    where = place(location, schema)
    if not where.postgres:
        return _copy_of_file(location)
    try:
        if not exists(where):
            raise SimulationError(f"no ledger at {where.shown}: run `main.py run` first, so there is history to replay")
        source = Ledger(location, schema)
        try:
            copy = Ledger.scratch()
            source.copy_into(copy)
        finally:
            source.close()
    except LedgerError as error:
        raise SimulationError(f"cannot read the ledger: {error}") from None
    return copy


def _copy_of_file(path: str) -> Ledger:
    if path == ":memory:" or not Path(path).is_file():
        raise SimulationError(f"no ledger at {path}: run `main.py run` first, so there is history to replay")
    copy = Ledger.scratch()
    file = Path(path).resolve()
    # With the daemon running, its -wal and -shm files exist and a read-only connection uses
    # them; without, the file is whole and is read as immutable, so no -shm file is created.
    live = Path(f"{file}-wal").exists() or Path(f"{file}-shm").exists()
    try:
        source = sqlite3.connect(f"file:{file}?{'mode=ro' if live else 'immutable=1'}", uri=True)
        try:
            assert isinstance(copy.db, sqlite3.Connection), "a scratch ledger is SQLite"
            source.backup(copy.db)
        finally:
            source.close()
    except sqlite3.Error as error:
        raise SimulationError(f"cannot read the ledger {path}: {error}") from None
    return copy


def with_policies(raw_config: dict[str, Any], names: list[str] | None) -> dict[str, Any]:
    """The raw config with `policies.enabled` replaced by `names` (when given)."""
    if names is None:
        return raw_config
    config = dict(raw_config)
    config["policies"] = {**(raw_config.get("policies") or {}), "enabled": names}
    return config


def simulate(
    settings: Settings,
    source: Ledger,
    start: datetime,
    end: datetime,
    renderer=None,
    policies: list[Policy] | None = None,
) -> SimulationResult:
    """Replay `source`'s history under `settings.policies`; report appointments in [start, end).

    Raises ConfigError for a policy set that does not validate, SimulationError when
    `start` is not before `end`.
    """
    if start >= end:
        raise SimulationError("--from must be before --to")
    policies = policies if policies is not None else load_enabled(settings)
    renderer = renderer or make_renderer(settings, policies)
    snapshots = {(t.appointment.calendar_id, t.appointment.event_id): t for t in source.all_tracked()}
    happenings = [h for h in source.all_happenings() if h.start < end and (h.calendar_id, h.event_id) in snapshots]
    ledger = Ledger.scratch()
    engine = Engine(
        settings=settings,
        ledger=ledger,
        calendars=[],
        provider=RecordOnlyProvider(),
        mailer=MemoryMailer(),
        renderer=renderer,
        policies=policies,
        charge_from=start,
    )
    report = TickReport()
    states: dict[tuple[str, str], tuple[str, str]] = {}
    for happening in sorted(happenings, key=lambda h: h.seen_at):  # stable: keeps the stored order
        _carry_out_until(engine, happening.seen_at, report)
        tracked = snapshots[(happening.calendar_id, happening.event_id)]
        appointment, state = _as_it_was(tracked, happening, states.get((happening.calendar_id, happening.event_id), ("", "")))
        states[(happening.calendar_id, happening.event_id)] = state
        with ledger.transaction():
            ledger.save_tracked(Tracked(appointment, state[0], state[1], tracked.first_seen))
            if ledger.add_happening(happening):
                engine.planner.plan(happening, appointment, happening.seen_at)
    last = max([h.seen_at for h in happenings], default=end)
    _carry_out_until(engine, max(last, end) + settings.payments.review_window + SETTLE_AFTER, report)

    reported = [a for a in ledger.actions() if a.appointment_start is not None and start <= a.appointment_start < end]
    actual = [a for a in source.actions() if a.appointment_start is not None and start <= a.appointment_start < end]
    clients: dict[str, ClientTotals] = defaultdict(ClientTotals)
    for action in reported:
        count_action(clients[action.client_email], action)
    total = ClientTotals()
    for item in clients.values():
        total.add(item)
    actual_total = ClientTotals()
    for action in actual:
        count_action(actual_total, action)
    ledger.close()
    return SimulationResult(
        policies=[policy.name for policy in policies],
        start=start,
        end=end,
        currency=settings.practice.currency,
        happenings=len(happenings),
        appointments=len({(h.calendar_id, h.event_id) for h in happenings if start <= h.start}),
        actions=reported,
        clients=dict(clients),
        total=total,
        actual=actual_total,
        problems=report.problems,
    )


def _as_it_was(tracked: Tracked, happening: Happening, state: tuple[str, str]) -> tuple[Appointment, tuple[str, str]]:
    """The appointment as the planner saw it for this happening, and (cancellation, outcome) after it."""
    last = tracked.appointment
    duration = last.end - last.start
    kind = happening.kind
    cancellation, outcome = state
    if kind is HappeningKind.BOOKED:
        cancellation, outcome = "", ""
    elif kind is HappeningKind.RESCHEDULED:
        outcome = ""
        cancellation = "" if cancellation == BY_PRACTITIONER else cancellation
    elif kind is HappeningKind.CANCELLED_BY_CLIENT:
        cancellation = BY_CLIENT
    elif kind is HappeningKind.CANCELLED_BY_PRACTITIONER:
        cancellation = BY_PRACTITIONER
    else:
        outcome = kind.value
    appointment = replace(
        last,
        start=happening.start,
        end=happening.start + duration,
        status="cancelled" if cancellation == BY_PRACTITIONER else "confirmed",
        cancelled_at=happening.at if kind is HappeningKind.CANCELLED_BY_CLIENT else last.cancelled_at,
    )
    return appointment, (cancellation, outcome)


def _carry_out_until(engine: Engine, until: datetime, report: TickReport) -> None:
    """Carry out every action falling due up to `until`, each at its own due time."""
    for _ in range(MAX_STEPS):
        pending = engine.ledger.actions(states=OPEN_STATES, due_before=until)
        if not pending:
            return
        engine.execute_due(min(action.due_at for action in pending), report)
    raise SimulationError("the simulation did not settle; this is a bug, please report it")  # pragma: no cover


def count_action(totals: ClientTotals, action: Action) -> None:
    amount = action.amount.minor if action.amount else 0
    purpose = purpose_of(action.kind, action.context)
    live = action.state in LIVE
    if action.kind is ActionKind.EMAIL:
        if action.state not in (ActionState.CANCELLED, ActionState.FAILED) and action.template and action.template not in NOT_REPLAYED:
            totals.emails[action.template] += 1
    elif action.kind is ActionKind.WAIVE or (action.state is ActionState.WAIVED and purpose == FEE):
        totals.waived += amount
    elif action.kind is ActionKind.WRITEOFF:
        totals.written_off += amount
    elif purpose == FEE and action.kind in (ActionKind.CHARGE, ActionKind.CAPTURE, ActionKind.CREDIT) and live:
        totals.fees += amount
    elif purpose == PACKAGE_CREDIT and live:
        totals.prepaid_sessions += 1
    elif purpose in (DEPOSIT, PREPAYMENT) and action.kind in (ActionKind.CHARGE, ActionKind.HOLD) and live:
        totals.deposits += amount
    elif action.kind in (ActionKind.REFUND, ActionKind.RELEASE) and live:
        totals.refunded += amount


def format_text(result: SimulationResult, settings: Settings) -> str:
    """The report a practitioner reads: per client and in total, then every action."""
    zone = settings.zone
    currency = result.currency

    def money(minor: int) -> str:
        return format_money(Money(minor, currency), settings.practice.locale)

    lines = [
        f"What-if for {settings.practice.name}: appointments from {result.start.astimezone(zone):%Y-%m-%d %H:%M} "
        f"to {result.end.astimezone(zone):%Y-%m-%d %H:%M} ({settings.practice.timezone})",
        f"Policies: {', '.join(result.policies) or '(none)'}",
        f"Replayed {result.happenings} happening(s); {result.appointments} appointment(s) in the period. "
        "Nothing was charged, sent or written.",
        "",
        f"{'client':<32} {'fees':>13} {'waived':>13} {'written off':>13} {'deposits':>13} {'refunded':>13} {'credits':>7}  emails",
    ]

    def row(name: str, item: ClientTotals) -> str:
        emails = ", ".join(f"{template} {count}" for template, count in sorted(item.emails.items())) or "-"
        return (
            f"{name:<32} {money(item.fees):>13} {money(item.waived):>13} {money(item.written_off):>13} "
            f"{money(item.deposits):>13} {money(item.refunded):>13} {item.prepaid_sessions:>7}  {emails}"
        )

    for email, item in sorted(result.clients.items()):
        lines.append(row(email, item))
    lines.append(row("total", result.total))
    lines.append(row("now, with the ledger's policies", result.actual))
    lines.append("")
    lines.append("What would have been done:")
    for action in result.actions:
        if action.kind is ActionKind.EMAIL and action.state is ActionState.CANCELLED:
            continue
        when = action.appointment_start.astimezone(zone).strftime("%Y-%m-%d %H:%M") if action.appointment_start else ""
        amount = format_money(action.amount, settings.practice.locale) if action.amount else ""
        what = action.template if action.kind is ActionKind.EMAIL else action.kind.value
        lines.append(f"  {when}  {action.client_email:<28} {what:<20} {action.state.value:<14} {amount:>14}  {action.reason}")
    for problem in result.problems:
        lines.append(f"problem: {problem}")
    return "\n".join(lines)


__all__ = ["simulate", "count_action", "copy_of_ledger", "with_policies", "format_text", "SimulationError", "SimulationResult", "ConfigError"]
