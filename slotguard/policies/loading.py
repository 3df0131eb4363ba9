"""Loading policy plugins, validating their configuration, and the toolkit policies use.

Built-in policies are listed in DEFAULT_PLUGINS and registered through the same pluggy
manager as external ones (entry-point group `slotguard.policies`). A policy is active only if
`policies.enabled` names it; an unknown name is a config error that lists the known ones.

The toolkit (plain data, no I/O): `ClientAccount`, what the ledger holds for a client (fees,
deposits, credits, refunds) as policies see it; `is_fee`, `derive` and `money_json` to read
and rewrite proposals; `fee_incidents` to count a client's late cancellations and no-shows.
See docs/plugins.md.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Callable, Iterable, Literal, Mapping

import pluggy
from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, ValidationError

from slotguard.policies import hookspecs
from slotguard.config.schema import ConfigError, Settings, format_validation_error
from slotguard.domain.model import Action, ActionKind, ActionState, ClientHistory, HappeningKind, Proposal
from slotguard.domain.money import Money

ENTRY_POINT_GROUP = "slotguard.policies"
DEFAULT_PLUGINS = (
    "plugins.late_cancel",
    "plugins.no_show",
    "plugins.deposit",
    "plugins.reschedule_credit",
    "plugins.rolling_half_deposit",
    "plugins.package_credits",
    "plugins.repeat_offender_prepay",
    "plugins.first_offense_grace",
    "plugins.loyal_client",
    "plugins.prospect_second_chance",
    "plugins.emergency_waiver",
    "plugins.practitioner_cancel_refund",
    "plugins.small_amount_writeoff",
    "plugins.friends_and_family",
)
HOOKS = (
    "slotguard_check_config",
    "slotguard_propose",
    "slotguard_modify",
    "slotguard_settle",
    "slotguard_email_details",
    "slotguard_waiver_reason",
    "slotguard_terms",
    "slotguard_undo",
    "slotguard_email_extras",
)

# What a money or record proposal is for (Proposal.context["purpose"]); "fee" when absent.
FEE = "fee"  # a late-cancellation or no-show fee, however it is paid
DEPOSIT = "deposit"  # taken at booking (charge, hold, or a credit carried over) to hold the slot
DEPOSIT_APPLIED = "deposit_applied"  # the deposit paid part of an attended session
DEPOSIT_RETURN = "deposit_return"  # the deposit given back (refund or release)
PREPAYMENT = "prepayment"  # the full price asked before the session (repeat offenders)
CREDIT = "credit"  # a credit kept for the client (reschedule credit, goodwill)
PACKAGE_CREDIT = "package_credit"  # a prepaid package session forfeited instead of a fee
REFUND = "refund"  # money given back for a fee or prepayment

# The planner's own bookkeeping keys in Proposal.context (docs/plugins.md, "Proposal context").
SUPERSEDES = "supersedes"  # ids of open actions this proposal replaces (waived or cancelled)
SETTLES = "settles"  # id of the deposit or credit this proposal uses up
TARGET = "target_action_id"  # the charge or hold a capture, release or refund acts on
INCIDENT = "incident"  # set by the planner on fees: this slot counts as an incident
REPLACES_NOTICES = "replaces_notices"  # an email that replaces the notices about the same fee
RENEWS = "renews"  # a card hold placed again before the one it names lapses (slotguard/planning/holds.py)
HOLD_RENEWED = "hold_renewed"  # purpose of the release of a hold a fresh one replaced

LIVE_STATES = frozenset(
    {ActionState.PLANNED, ActionState.PENDING_REVIEW, ActionState.EXECUTING, ActionState.DONE}
)


def _percent(value: Any) -> Decimal:
    """A percent written "50%", "50" or 50, between 0 and 100; floats are refused."""
    if isinstance(value, Decimal):
        percent = value
    elif isinstance(value, float) or isinstance(value, bool):
        raise ValueError('write the percent as text, like "50%" (not a float)')
    else:
        try:
            percent = Decimal(str(value).strip().removesuffix("%").strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a percent like \"50%\"") from None
    if not percent.is_finite() or percent < 0 or percent > 100:
        raise ValueError("must be between 0% and 100%")
    return percent


# A percentage in a policy's config: "50%" in TOML, a Decimal in Python.
Percent = Annotated[Decimal, BeforeValidator(_percent), PlainSerializer(lambda value: f"{value.normalize():f}%", return_type=str)]


class PolicyConfig(BaseModel):
    """Base class for a policy's settings: unknown keys are errors, values immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


@dataclass(frozen=True)
class PolicyInfo:
    """What a plugin says about itself.

    role: "fee" policies propose fees and decide how they are paid; "modifier" policies
    adjust or waive proposed fees, in the order `policies.enabled` lists them. `requires`
    names policies that must be enabled too (and listed before this one); `conflicts` names
    policies that cannot be enabled with it. `emails` lists the templates it may plan.
    """

    name: str
    role: Literal["fee", "modifier"]
    config_model: type[BaseModel] = PolicyConfig
    summary: str = ""
    emails: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()


@dataclass
class Policy:
    """A loaded, enabled policy with its validated config and its hook functions."""

    info: PolicyInfo
    config: Any
    hooks: dict[str, tuple[Callable, tuple[str, ...]]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.info.name

    def implements(self, hook: str) -> bool:
        return hook in self.hooks

    def wants(self, hook: str, argument: str) -> bool:
        """True when this policy implements `hook` and its implementation takes `argument`."""
        found = self.hooks.get(hook)
        return found is not None and argument in found[1]

    def call(self, hook: str, **arguments: Any) -> Any:
        """Call this policy's implementation of `hook` with the arguments it asks for."""
        found = self.hooks.get(hook)
        if found is None:
            return None
        function, argnames = found
        return function(**{name: arguments.get(name) for name in argnames})


# -- the toolkit ---------------------------------------------------------------------------


def money_json(amount: Money | None) -> dict[str, Any] | None:
    """{"minor": 90000, "currency": "NOK"}: how amounts travel in contexts and JSON."""
    return amount.as_json() if amount is not None else None


def purpose_of(kind: ActionKind, context: Mapping[str, Any]) -> str:
    """What a proposal or action is for; a charge or capture with no purpose is a fee."""
    purpose = context.get("purpose")
    if purpose:
        return str(purpose)
    return FEE if kind in (ActionKind.CHARGE, ActionKind.CAPTURE, ActionKind.WAIVE, ActionKind.WRITEOFF) else ""


def is_fee(proposal: Proposal) -> bool:
    """True for a late-cancellation or no-show fee still to be charged (what modifiers adjust)."""
    return (
        proposal.kind in (ActionKind.CHARGE, ActionKind.CAPTURE)
        and proposal.amount is not None
        and purpose_of(proposal.kind, proposal.context) == FEE
    )


def derive(proposal: Proposal, *, because: str | None = None, context: Mapping[str, Any] | None = None, **changes: Any) -> Proposal:
    """A copy of `proposal` with fields changed, `because` appended to the reason chain and
    `context` merged into its context (the original's keys are kept)."""
    if because:
        changes["reason"] = f"{changes.get('reason', proposal.reason)}; {because}"
    if context:
        changes["context"] = {**proposal.context, **context}
    return dataclasses.replace(proposal, **changes)


@dataclass(frozen=True, slots=True)
class AccountEntry:
    """One ledger action of the client, as policies see it."""

    id: str
    kind: ActionKind
    state: ActionState
    policy: str
    event_ref: str
    appointment_start: datetime | None
    amount: Money | None
    created_at: datetime
    due_at: datetime
    context: Mapping[str, Any]

    @property
    def purpose(self) -> str:
        return purpose_of(self.kind, self.context)

    @property
    def live(self) -> bool:
        """Done, or still to be done: not failed, waived or cancelled."""
        return self.state in LIVE_STATES

    @property
    def is_open(self) -> bool:
        return self.state in (ActionState.PLANNED, ActionState.PENDING_REVIEW)

    @classmethod
    def of(cls, action: Action) -> AccountEntry:
        return cls(
            id=action.id,
            kind=action.kind,
            state=action.state,
            policy=action.policy,
            event_ref=action.event_ref,
            appointment_start=action.appointment_start,
            amount=action.amount,
            created_at=action.created_at,
            due_at=action.due_at,
            context=dict(action.context),
        )


@dataclass(frozen=True)
class ClientAccount:
    """What the ledger holds for one client: every action but emails, oldest first.

    Entries point at each other through their context: a deposit return or a kept deposit
    names the deposit it uses up (`settles`), a refund the charge it gives back (`target_action_id`).
    """

    email: str
    entries: tuple[AccountEntry, ...] = ()

    @classmethod
    def from_actions(cls, email: str, actions: Iterable[Action]) -> ClientAccount:
        entries = tuple(AccountEntry.of(action) for action in actions if action.kind is not ActionKind.EMAIL)
        return cls(email=email, entries=entries)

    def entry(self, entry_id: str) -> AccountEntry | None:
        return next((entry for entry in self.entries if entry.id == entry_id), None)

    def for_event(self, event_ref: str) -> list[AccountEntry]:
        return [entry for entry in self.entries if entry.event_ref == event_ref]

    def used_up(self) -> set[str]:
        """Ids of deposits and credits that a live entry settles (uses up or gives back)."""
        used = set()
        for entry in self.entries:
            if entry.live and entry.context.get(SETTLES):
                used.add(str(entry.context[SETTLES]))
        return used

    def open_deposits(self, event_ref: str) -> list[AccountEntry]:
        """Deposits for this event (any start: a moved appointment keeps its deposit) that are
        taken or still to be taken, and not yet applied, kept or returned. A card hold placed
        again (`renews`) counts once it is in place; the hold it replaces is then released
        (a release that `settles` it), so a deposit is never counted twice."""
        used = self.used_up()
        return [
            entry
            for entry in self.for_event(event_ref)
            if entry.purpose == DEPOSIT and entry.live and entry.id not in used
            and not (entry.context.get(RENEWS) and not (entry.state is ActionState.DONE and entry.context.get("payment_status") == "paid"))
        ]

    def money_taken(self, event_ref: str) -> list[AccountEntry]:
        """Charges and captures for this event carried out (done), with what is left of each
        after the refunds already made or planned."""
        return [entry for entry in self.for_event(event_ref) if entry.kind in (ActionKind.CHARGE, ActionKind.CAPTURE) and entry.state is ActionState.DONE]

    def refunded(self, target_id: str) -> int:
        """Minor units already refunded (or planned to be) for the charge `target_id`."""
        return sum(
            entry.amount.minor
            for entry in self.entries
            if entry.kind is ActionKind.REFUND and entry.live and entry.amount is not None and entry.context.get(TARGET) == target_id
        )


def fee_incidents(
    history: ClientHistory | None,
    account: ClientAccount | None,
    since: datetime | None = None,
    exclude_ref: str | None = None,
) -> list[tuple[datetime, str]]:
    """The client's incidents, oldest first, as (start, event ref): appointments for which a
    fee policy proposed a fee (charged, waived by a modifier, paid from a deposit or a package
    credit, or written off). A fee the practitioner waived (waive mark, removed mark,
    `main.py waive`) is not an incident: the practitioner said it should not count."""
    if account is None:
        return []
    forgiven_slots = set()
    if history is not None:
        forgiven_slots = {(item.event_ref, item.start) for item in history.outcomes if item.kind is HappeningKind.WAIVED}
    slots: dict[tuple[str, datetime], bool] = {}
    for entry in account.entries:
        if not entry.context.get(INCIDENT) or entry.appointment_start is None:
            continue
        slot = (entry.event_ref, entry.appointment_start)
        waived_by_practitioner = entry.state is ActionState.WAIVED
        slots[slot] = slots.get(slot, True) and not waived_by_practitioner
    found = [
        (start, ref)
        for (ref, start), counts in slots.items()
        if counts
        and (ref, start) not in forgiven_slots
        and (since is None or start >= since)
        and ref != exclude_ref
    ]
    return sorted(found)


def refund_notice(money: Proposal, why: str, **details: Any) -> Proposal:
    """The `refund_notice` email telling the client about a refund or a released hold; it
    reports on `money` (sent once that is carried out, and not at all if it is dropped)."""
    return Proposal(
        kind=ActionKind.EMAIL,
        policy=money.policy,
        reason=f"tell the client: {why}",
        template="refund_notice",
        slot=f"notice-{money.slot}",
        reports_on=money.slot,
        context={
            "kind": money.kind.value,
            "purpose": money.context.get("purpose", REFUND),
            "amount": money_json(money.amount),
            "why": why,
            **details,
        },
    )


def local_text(moment: datetime, appointment: Any, with_time: bool = True) -> str:
    """`moment` as the practitioner reads it, in the appointment's time zone: "2026-03-05 10:00"."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(appointment.timezone) if getattr(appointment, "timezone", "") else moment.tzinfo
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def ordinal(number: int) -> str:
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


# -- loading -------------------------------------------------------------------------------


def plugin_manager() -> pluggy.PluginManager:
    """A manager with the hook specs, the built-in policies and installed external ones."""
    manager = pluggy.PluginManager("slotguard")
    manager.add_hookspecs(hookspecs)
    for module_name in DEFAULT_PLUGINS:
        manager.register(importlib.import_module(module_name), name=module_name)
    manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return manager


def available(manager: pluggy.PluginManager) -> dict[str, tuple[object, PolicyInfo]]:
    """Map policy name -> (plugin, info) for every registered plugin."""
    found: dict[str, tuple[object, PolicyInfo]] = {}
    for impl in manager.hook.slotguard_policy_info.get_hookimpls():
        info = impl.function()
        found[info.name] = (impl.plugin, info)
    return found


def _hooks_of(manager: pluggy.PluginManager, plugin: object) -> dict[str, tuple[Callable, tuple[str, ...]]]:
    hooks = {}
    for hook_name in HOOKS:
        for impl in getattr(manager.hook, hook_name).get_hookimpls():
            if impl.plugin is plugin:
                hooks[hook_name] = (impl.function, tuple(impl.argnames))
    return hooks


def load_enabled(settings: Settings, manager: pluggy.PluginManager | None = None) -> list[Policy]:
    """Validate `[policies]` against the plugins and return the enabled ones, in order:
    fee policies first, then modifiers, each group in `policies.enabled` order.

    Raises ConfigError listing every problem: unknown policy names (with the known ones),
    settings tables for unknown policies, each invalid setting with its path, policies
    that need another one or cannot be combined, and what each policy's own check finds.
    """
    manager = manager or plugin_manager()
    known = available(manager)
    problems, configs = _tables(settings.policies, known)
    policies: list[Policy] = []
    order = list(dict.fromkeys(settings.policies.enabled))
    for name in order:
        if name not in known:
            continue
        plugin, info = known[name]
        for needed in info.requires:
            if needed not in order:
                problems.append(f"policies.enabled: {name} needs {needed}; add {needed!r} before {name!r}")
            elif order.index(needed) > order.index(name):
                problems.append(f"policies.enabled: list {needed!r} before {name!r} (it works on what {needed} decided)")
        for other in info.conflicts:
            pair = " and ".join(sorted((name, other)))
            problem = f"policies.enabled: {pair} cannot be used together; enable one of them"
            if other in order and problem not in problems:
                problems.append(problem)
        if name not in configs:
            continue
        config = configs[name]
        problems.extend(_check_currency(config, settings, name))
        policy = Policy(info=info, config=config, hooks=_hooks_of(manager, plugin))
        for problem in policy.call("slotguard_check_config", config=config, settings=settings) or []:
            problems.append(f"policies.{name}.{problem}")
        policies.append(policy)
    if problems:
        raise ConfigError(problems)
    fee_first = sorted(policies, key=lambda policy: policy.info.role != "fee")
    return fee_first


def table_problems(raw: Any, manager: pluggy.PluginManager | None = None) -> list[str]:
    """The `[policies]` section as read from the file, checked on its own: unknown names and
    each enabled policy's settings against its schema. For a file whose core settings have
    errors too, so that one pass reports every problem (the checks that need the rest of the
    settings wait for it). Returns [] when the section itself is malformed: the core settings
    report that."""
    from slotguard.config.schema import Policies

    try:
        section = Policies.model_validate({} if raw is None else raw)
    except ValidationError:
        return []
    problems, _ = _tables(section, available(manager or plugin_manager()))
    return problems


def _tables(section: Any, known: dict[str, tuple[object, PolicyInfo]]) -> tuple[list[str], dict[str, BaseModel]]:
    """(problems, validated config by policy name) of the enabled policies' tables."""
    names = ", ".join(sorted(known))
    problems: list[str] = []
    enabled = section.enabled
    for name in enabled:
        if name not in known:
            problems.append(f"policies.enabled: unknown policy {name!r}; known policies: {names}")
    if len(set(enabled)) != len(enabled):
        problems.append("policies.enabled: a policy is listed twice")
    extra = section.model_extra or {}
    for table in extra:
        if table not in known:
            problems.append(f"policies.{table}: no policy has this name; known policies: {names}")
    configs: dict[str, BaseModel] = {}
    for name in dict.fromkeys(enabled):
        if name not in known:
            continue
        raw = extra.get(name, {})
        if not isinstance(raw, dict):
            problems.append(f"policies.{name}: must be a table of settings, like [policies.{name}]")
            continue
        try:
            configs[name] = known[name][1].config_model.model_validate(raw)
        except ValidationError as error:
            for problem in format_validation_error(error, prefix=f"policies.{name}"):
                # A check across keys of the table reports without a path: it is the table's.
                problems.append(problem if problem.startswith(f"policies.{name}") else f"policies.{name}: {problem}")
    return problems, configs


def _check_currency(config: BaseModel, settings: Settings, name: str) -> list[str]:
    """Fixed amounts in a policy's config must be in the practice currency."""
    from slotguard.domain.money import Fee, Money

    problems = []
    currency = settings.practice.currency

    def walk(value: Any, path: str) -> None:
        if isinstance(value, Money) and value.currency != currency:
            problems.append(f"{path}: {value} is not in the practice currency {currency}")
        elif isinstance(value, Fee) and value.fixed and value.fixed.currency != currency:
            problems.append(f"{path}: {value} is not in the practice currency {currency}")
        elif isinstance(value, BaseModel):
            for key in type(value).model_fields:
                walk(getattr(value, key), f"{path}.{key}")
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                walk(item, f"{path}.{index}")
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")

    walk(config, f"policies.{name}")
    return problems
