"""What is kept of an event's title: only the words the installed policies look for.

A title is the practitioner's own text and may hold health notes ("physio after knee
surgery"); the ledger keeps an appointment's snapshot for as long as privacy.retention says,
so only what the engine reads is kept. Marks and the service are read from the title when
the event is normalised; after that only policies read `appointment.title`, each for the
words and phrases it declares with `slotguard_title_words` (emergency_waiver's claim tags,
prospect_second_chance's first-meeting words), asked of every installed policy, enabled or
not. `kept_title` keeps those the title holds, in lower case, joined by " | " (so two kept
words never read as a phrase neither had).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, cast

from pydantic import ValidationError

from slotguard.policies.loading import available
from slotguard.policies.owners import default_manager

SEPARATOR = " | "
# Settings objects seen, by id, with their words: normalising an event asks once per event.
# The settings are held, so an id is never reused while it is here.
_SEEN: dict[int, tuple[Any, tuple[str, ...]]] = {}
_SEEN_MAX = 16


def title_words(settings: Any) -> tuple[str, ...]:
    """The words and phrases (lower case) the installed policies look for in a title, each
    with its settings in `settings` (`[policies.NAME]`, its defaults when there is none),
    enabled or not: `simulate` tries policies not enabled yet on the history, and enabling
    one finds its words already kept. A policy whose table is not valid adds none (the
    daemon does not start with it enabled)."""
    seen = _SEEN.get(id(settings))
    if seen is not None and seen[0] is settings:
        return seen[1]
    manager = default_manager()
    by_plugin = {id(plugin): info for plugin, info in available(manager).values()}
    found: dict[str, None] = {}
    for implementation in manager.hook.slotguard_title_words.get_hookimpls():
        info = by_plugin.get(id(implementation.plugin))
        if info is None:
            continue
        try:
            config = info.config_model.model_validate(settings.policy_settings(info.name))
        except ValidationError:
            continue
        # pluggy types a hook's answer as object; the hookspec's is a list of words
        answer = cast(Iterable[Any], implementation.function(**{name: config for name in implementation.argnames if name == "config"}) or ())
        for word in answer:
            word = " ".join(str(word).lower().split())
            if word:
                found[word] = None
    words = tuple(found)
    if len(_SEEN) >= _SEEN_MAX:
        _SEEN.clear()
    _SEEN[id(settings)] = (settings, words)
    return words


def kept_title(title: str, words: tuple[str, ...]) -> str:
    """Of `title`, the `words` it holds (as whole words: "intro" is not in "introductory";
    a tag's own "#" is part of it), in the order given, joined by SEPARATOR; "" for none."""
    lowered = " ".join(title.lower().split())
    return SEPARATOR.join(word for word in words if re.search(r"(?<!\w)" + re.escape(word) + r"(?!\w)", lowered))
