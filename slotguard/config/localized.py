"""Texts the practitioner writes for clients (a service's label, payment instructions), one
for every language or a table by language, and how the one for an email is picked."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

# Language codes people write that have a bundled neighbour under another name.
LOCALE_ALIASES = {"no": "nb", "nn": "nb", "iw": "he"}
_LOCALE_CODE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})*")


def locale_code(text: str) -> str | None:
    """A language code as written ("de_AT", "NO") in the form Slotguard uses ("de-at", "nb"),
    or None when it is not shaped like one."""
    code = (text or "").strip().lower().replace("_", "-")
    if not _LOCALE_CODE.fullmatch(code):
        return None
    language, _, rest = code.partition("-")
    language = LOCALE_ALIASES.get(language, language)
    return f"{language}-{rest}" if rest else language


def _localized(value: Any) -> str | dict[str, str]:
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):
        raise ValueError('give text, or a table by language like { nb = "massasje", en = "massage" }')
    found: dict[str, str] = {}
    for written, text in value.items():
        code = locale_code(str(written))
        if code is None:
            raise ValueError(f'{written!r} is not a language code like "nb", "de" or "de-AT"')
        if not isinstance(text, str):
            raise ValueError(f"{written}: give the text in quotes")
        found[code] = text
    if not found:
        raise ValueError('the table is empty; give the text in at least one language, like { nb = "massasje" }')
    return found


# A text clients read, the same in every language ("massasje") or a table by language
# ({ nb = "massasje", de = "Massage" }); `localized_text` picks the one for an email.
LocalizedText = Annotated[str | dict[str, str], BeforeValidator(_localized)]


def localized_text(value: str | dict[str, str], locale: str, practice_locale: str = "") -> str:
    """The text of a LocalizedText for an email in `locale`: that locale ("de-at"), its
    language ("de"), the practice's locale and its language, English, then the first
    language given. A plain string is the text for every language."""
    if isinstance(value, str):
        return value
    wanted = [locale_code(code) for code in (locale, practice_locale)]
    for code in wanted:
        if code and code in value:
            return value[code]
        if code and code.partition("-")[0] in value:
            return value[code.partition("-")[0]]
    if "en" in value:
        return value["en"]
    return next(iter(value.values()), "")


def has_text_for(value: str | dict[str, str], locale: str) -> bool:
    """Whether a LocalizedText has its own text for `locale` (a plain string: only when
    `locale` is the practice's, which the caller decides)."""
    code = locale_code(locale)
    return isinstance(value, dict) and code is not None and (code in value or code.partition("-")[0] in value)
