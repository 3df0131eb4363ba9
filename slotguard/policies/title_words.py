"""What is kept of an event's title: only the words the enabled policies look for.

A title is the practitioner's own text and may hold health notes ("physio after knee
surgery"); the ledger keeps an appointment's snapshot for as long as privacy.retention says,
so only what the engine reads is kept. Marks and the service are read from the title when
the event is normalised; after that only policies read `appointment.title`, each for the
words and phrases it declares with `slotguard_title_words` (emergency_waiver's claim tags,
prospect_second_chance's first-meeting words). `kept_title` keeps those the title holds, in
lower case, joined by " | " (so two kept words never read as a phrase neither had).
"""

from __future__ import annotations

import re
from typing import Any

from slotguard.config.types import ConfigError
from slotguard.policies.loading import load_enabled
from slotguard.policies.owners import default_manager

SEPARATOR = " | "
# Settings objects seen, by id, with their words: normalising an event asks once per event.
# The settings are held, so an id is never reused while it is here.
_SEEN: dict[int, tuple[Any, tuple[str, ...]]] = {}
_SEEN_MAX = 16


def title_words(settings: Any) -> tuple[str, ...]:
    """The words and phrases (lower case) the policies `settings` enables look for in a title.
    () when the policies' settings are not valid (the daemon does not start with them)."""
    seen = _SEEN.get(id(settings))
    if seen is not None and seen[0] is settings:
        return seen[1]
    try:
        policies = load_enabled(settings, default_manager())
    except ConfigError:
        words: tuple[str, ...] = ()
    else:
        found: dict[str, None] = {}
        for policy in policies:
            for word in policy.call("slotguard_title_words", config=policy.config) or ():
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
