"""Who handles an action: the feature that planned it checks it before it is carried out.

The engine and the mail code never name a feature. They ask the first-result hook
`slotguard_action_owner(action)`, which the feature owning the action answers (a built-in
one in slotguard/features/, or a plugin's) with an `ActionOwner`; an action nobody owns
(a policy's fee, a notice) needs no check of its own. A feature's own step of the tick is a
`TickStep`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import pluggy

from slotguard.domain.durations import to_utc_text
from slotguard.domain.model import Action
from slotguard.policies.loading import plugin_manager


class ActionOwner:
    """What the feature that owns an action says about it. Override what applies; the
    defaults say "go ahead" and "still to be sent"."""

    name = ""

    def ready(self, action: Action, ledger: Any, provider: Any, settings: Any, now: datetime) -> bool:
        """Just before `action` is carried out: True to go ahead. False when it is not to be
        carried out now; the owner has then cancelled it or moved it on, with the reason."""
        return True

    def stale_reason(self, action: Any, tracked: Any, now: datetime, show: Callable[[datetime], str] = to_utc_text) -> str:
        """Why the email `action` about the appointment `tracked` is no longer to be sent, ""
        while it still is (slotguard/mail/stale.py asks after its own general rules)."""
        return ""


@dataclass(frozen=True)
class TickStep:
    """A step a feature runs once per tick (`slotguard_tick_steps`), in `order` (lowest
    first) among the features' steps. `run(settings, ledger, provider, now, report)` returns
    the (calendar id, event id) pairs whose calendar notes it changed, or None. A step that
    raises is reported under `name` and the tick goes on (slotguard/store/containment.py)."""

    name: str
    order: int
    run: Callable[..., Iterable[tuple[str, str]] | None]


def tick_steps(manager: pluggy.PluginManager) -> list[TickStep]:
    """Every feature's tick steps, in their order."""
    steps = [step for answer in manager.hook.slotguard_tick_steps() for step in answer or ()]
    return sorted(steps, key=lambda step: step.order)


@lru_cache(maxsize=1)
def default_manager() -> pluggy.PluginManager:
    """The process's plugin manager (built-in features and policies, installed plugins),
    built once, as datasette keeps one. Raises ConfigError like plugin_manager()."""
    return plugin_manager()


def action_owner(action: Action, manager: pluggy.PluginManager | None = None) -> ActionOwner | None:
    """The owner of `action` (the first feature that claims it), or None."""
    return (manager or default_manager()).hook.slotguard_action_owner(action=action)
