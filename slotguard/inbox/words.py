"""What the sender of a command wrote themselves: the body without the sentence our link
prefilled and without a phone's signature line (docs/inbox.md).

A link's body is prefilled with one sentence in the reader's language ("Reason (optional), then
press send:", "Press send to cancel your appointment on ... write it here:"). Mail apps keep it,
may rewrap it, and add "Sent from my iPhone"; people type above it or below it. `own_words`
takes out every prefilled sentence (each locale's, as the message catalogs word it, matched
with any whitespace and any day, time or name in its placeholders) and signature lines, and
returns what is left: "" when the sender wrote nothing of their own.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from slotguard.mail.catalogs import CatalogProblem, translations_for
from slotguard.mail.render import BUNDLED_TEMPLATES, LOCALES

# The prefilled sentences, by their message ids (templates/_commands.txt.j2).
PREFILLED = (
    "Reason (optional), then press send:",
    "Press send to confirm that you are coming on %(day)s at %(time)s. If you want to tell %(name)s something, write it here:",
    "Press send to cancel your appointment on %(day)s at %(time)s. If you want to tell %(name)s something, write it here:",
)
_PLACEHOLDER = re.compile(r"%\(\w+\)s")
# A phone's or mail app's signature line, in the languages Slotguard speaks.
SIGNATURE = re.compile(
    r"^\s*(sent from|sendt fra|skickat från|von meinem|gesendet von|wysłane z|get outlook|hent outlook|hämta outlook|"
    r"outlook for (ios|android)|נשלח מ)[^\n]{0,60}$",
    re.IGNORECASE | re.MULTILINE,
)


def _pattern(text: str) -> str:
    parts = _PLACEHOLDER.split(text)
    words = [r"\s+".join(re.escape(word) for word in part.split()) for part in parts]
    return r"[\s\S]{0,120}?".join(words)  # a day, a time, a practice's name: on one line or folded


@functools.lru_cache(maxsize=8)
def _prefilled(override_dir: str) -> re.Pattern[str]:
    """One pattern matching any locale's prefilled sentence (bundled catalogs and the practice's own)."""
    found: set[str] = set(PREFILLED)
    for locale in LOCALES:
        try:
            translations = translations_for(locale, BUNDLED_TEMPLATES, Path(override_dir) if override_dir else None)
        except CatalogProblem:
            continue
        found.update(translations.gettext(message) for message in PREFILLED)
    patterns = sorted((_pattern(text) for text in found if text.strip()), key=len, reverse=True)
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns), re.IGNORECASE)


def own_words(note: str, templates_dir: str = "") -> str:
    """`note` without our prefilled sentences and signature lines, whitespace tidied ("" when
    nothing of the sender's own is left)."""
    text = _prefilled(templates_dir).sub(" ", note or "")
    text = SIGNATURE.sub("", text)
    paragraphs = [" ".join(part.split()) for part in re.split(r"\n\s*\n", text)]
    return "\n\n".join(part for part in paragraphs if part)
