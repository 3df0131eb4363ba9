"""Loading policy plugins and validating their configuration.

Built-in policies are listed in DEFAULT_PLUGINS and registered through the same pluggy
manager as external ones (entry-point group `slotguard.policies`). A policy is active only if
`policies.enabled` names it; an unknown name is a config error that lists the known ones.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import pluggy
from pydantic import BaseModel, ConfigDict, ValidationError

from slotguard import hookspecs
from slotguard.config import ConfigError, Settings, format_validation_error

ENTRY_POINT_GROUP = "slotguard.policies"
DEFAULT_PLUGINS = (
    "plugins.late_cancel",
    "plugins.no_show",
)


class PolicyConfig(BaseModel):
    """Base class for a policy's settings: unknown keys are errors, values immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


@dataclass(frozen=True)
class PolicyInfo:
    """What a plugin says about itself.

    role: "fee" policies propose actions; "modifier" policies adjust or waive money
    proposals, in the order `policies.enabled` lists them.
    """

    name: str
    role: Literal["fee", "modifier"]
    config_model: type[BaseModel] = PolicyConfig
    summary: str = ""
    emails: tuple[str, ...] = ()


@dataclass
class Policy:
    """A loaded, enabled policy with its validated config and its hook functions."""

    info: PolicyInfo
    config: Any
    hooks: dict[str, tuple[Callable, tuple[str, ...]]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.info.name

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
        return function(**{name: arguments[name] for name in argnames})


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
    for hook_name in ("slotguard_propose", "slotguard_modify", "slotguard_terms"):
        for impl in getattr(manager.hook, hook_name).get_hookimpls():
            if impl.plugin is plugin:
                hooks[hook_name] = (impl.function, tuple(impl.argnames))
    return hooks


def load_enabled(settings: Settings, manager: pluggy.PluginManager | None = None) -> list[Policy]:
    """Validate `[policies]` against the plugins and return the enabled ones, in order.

    Raises ConfigError listing every problem: unknown policy names (with the known ones),
    settings tables for unknown policies, and each invalid setting with its path.
    """
    manager = manager or plugin_manager()
    known = available(manager)
    names = ", ".join(sorted(known))
    problems: list[str] = []
    enabled = settings.policies.enabled
    for name in enabled:
        if name not in known:
            problems.append(f"policies.enabled: unknown policy {name!r}; known policies: {names}")
    if len(set(enabled)) != len(enabled):
        problems.append("policies.enabled: a policy is listed twice")
    for table in settings.policies.model_extra or {}:
        if table not in known:
            problems.append(f"policies.{table}: no policy has this name; known policies: {names}")
    policies: list[Policy] = []
    for name in dict.fromkeys(enabled):
        if name not in known:
            continue
        plugin, info = known[name]
        raw = settings.policy_settings(name)
        try:
            config = info.config_model.model_validate(raw)
        except ValidationError as error:
            problems.extend(format_validation_error(error, prefix=f"policies.{name}"))
            continue
        problems.extend(_check_currency(config, settings, name))
        policies.append(Policy(info=info, config=config, hooks=_hooks_of(manager, plugin)))
    if problems:
        raise ConfigError(problems)
    fee_first = sorted(policies, key=lambda policy: policy.info.role != "fee")
    return fee_first


def _check_currency(config: BaseModel, settings: Settings, name: str) -> list[str]:
    """Fixed amounts in a policy's config must be in the practice currency."""
    from slotguard.money import Fee, Money

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

    walk(config, f"policies.{name}")
    return problems
