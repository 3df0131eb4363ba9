"""What a policy plugin declares about itself, and a loaded policy ready to be called.

`PolicyConfig` is the base of every policy's settings model; `PolicyInfo` is what
`slotguard_policy_info` returns; `Policy` is an enabled policy with its validated config and
its hook functions (built by slotguard/policies/loading.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


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
