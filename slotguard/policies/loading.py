"""Loading policy plugins and validating their configuration.

Built-in policies are listed in DEFAULT_PLUGINS (and Slotguard's own features in
BUILT_IN_FEATURES) and registered through the same pluggy manager as external ones (entry-point group `slotguard.policies`). A policy is active only if
`policies.enabled` names it; an unknown name is a config error that lists the known ones.

What policies use (the account view, the builders, the declaration types) lives beside this
module and reaches policy authors through `slotguard.kit` (docs/plugins.md); the core imports
them from their own modules.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any, cast

import pluggy
from pydantic import BaseModel, ValidationError

from slotguard.config.schema import ConfigError, Policies, Settings, format_validation_error
from slotguard.domain.money import Fee, Money
from slotguard.policies import hookspecs
from slotguard.policies.info import Policy, PolicyInfo

ENTRY_POINT_GROUP = "slotguard.policies"
# Slotguard's own features, plugins of the same manager (slotguard/features/): registered
# first, they answer the hooks that keep the core from naming them.
BUILT_IN_FEATURES = (
    "slotguard.features.lifecycle",
    "slotguard.features.waitlist",
    "slotguard.features.digest",
    "slotguard.features.collections",
    "slotguard.features.hold_renewals",
    "slotguard.features.card_pages",
    "slotguard.features.money_ahead",
    "slotguard.features.inbox_mail",
    "slotguard.features.retention",
    "slotguard.features.monthly_report",
    # What features add to an email (slotguard_email_extras): the card-setup link, the
    # digest's sections, the evidence pack attached to a referral, the inbox's command links.
    "slotguard.payments.card_setup",
    "slotguard.mail.client_links",
    "slotguard.practitioner.command_links",
    "slotguard.practitioner.digest",
    "slotguard.practitioner.evidence",
    "slotguard.reports.mailing",
)
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
# The hooks a policy implements, in the order hookspecs.py declares them (slotguard_policy_info
# is asked of every plugin at load, not of one policy).
HOOKS = tuple(
    name for name, value in vars(hookspecs).items()
    if name.startswith("slotguard_") and callable(value) and name != "slotguard_policy_info"
)


def plugin_manager() -> pluggy.PluginManager:
    """A manager with the hook specs, the built-in features and policies, and installed external ones.

    Raises ConfigError when a plugin implements a hook that is not declared (a misspelled
    `slotguard_propse` would otherwise never run), naming the plugin and the hook.
    """
    manager = pluggy.PluginManager("slotguard")
    manager.add_hookspecs(hookspecs)
    for module_name in (*BUILT_IN_FEATURES, *DEFAULT_PLUGINS):
        manager.register(importlib.import_module(module_name), name=module_name)
    manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    problems = undeclared_hooks(manager)
    if problems:
        raise ConfigError(problems)
    manager.check_pending()  # the same check, pluggy's own: nothing is left once ours passed
    return manager


def undeclared_hooks(manager: pluggy.PluginManager) -> list[str]:
    """One line per implementation of a hook hookspecs.py does not declare: which plugin,
    which hook, and the declared hook it most resembles."""
    declared = [name for name, value in vars(hookspecs).items() if name.startswith("slotguard_") and callable(value)]
    problems = []
    for name, caller in sorted(vars(manager.hook).items()):
        if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
            continue
        for implementation in caller.get_hookimpls():
            if implementation.hookwrapper or implementation.optionalhook:
                continue
            plugin = manager.get_name(implementation.plugin) or repr(implementation.plugin)
            close = difflib.get_close_matches(name, declared, n=1)
            hint = f"did you mean {close[0]}?" if close else f"the hooks are {', '.join(declared)}"
            problems.append(f"plugin {plugin}: {name} is not a Slotguard hook, so it would never run; {hint}")
    return problems


def available(manager: pluggy.PluginManager) -> dict[str, tuple[object, PolicyInfo]]:
    """Map policy name -> (plugin, info) for every registered plugin."""
    found: dict[str, tuple[object, PolicyInfo]] = {}
    for impl in manager.hook.slotguard_policy_info.get_hookimpls():
        info = cast(PolicyInfo, impl.function())  # pluggy types a hook's answer as object; the hookspec's is a PolicyInfo
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
    try:
        section = Policies.model_validate({} if raw is None else raw)
    except ValidationError:
        return []
    try:
        manager = manager or plugin_manager()
    except ConfigError as error:
        return error.problems
    problems, _ = _tables(section, available(manager))
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
