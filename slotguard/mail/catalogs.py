"""The words of the emails: gettext message catalogs per locale, loaded for rendering.

Each email is one template (templates/NAME.txt.j2 and NAME.html.j2) whose words are English
message ids; the catalog `templates/locale/LANG/LC_MESSAGES/messages.po` gives them in LANG.
The set-up compiles each .po to a .mo beside it (`python tools/catalogs.py compile`); a .mo
that is missing or older than its .po is compiled from the .po in memory instead, so a clone
run straight away never sends English to a client who reads Polish.

A practice may override messages: `MAIL_TEMPLATES_DIR/locale/LANG/LC_MESSAGES/messages.po`
holds only the messages it changes; its translations win over the bundled ones.
"""

from __future__ import annotations

import gettext
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po
from babel.support import Translations
from jinja2.ext import babel_extract

CATALOG_FOLDER = "locale"
DOMAIN = "messages"
# The language the message ids are written in: it needs no catalog.
SOURCE_LOCALE = "en"
# The options the renderer's environment uses: the extractor must read the templates alike.
JINJA_OPTIONS = {"trim_blocks": "true", "lstrip_blocks": "true", "silent": "false"}


class CatalogProblem(Exception):
    """A catalog cannot be read; the message names the file and the cause."""


def catalog_path(templates_dir: Path, locale: str, suffix: str = ".po") -> Path:
    """Where the catalog of `locale` lives under a template folder."""
    return templates_dir / CATALOG_FOLDER / locale / "LC_MESSAGES" / f"{DOMAIN}{suffix}"


def catalog_locales(templates_dir: Path | None) -> set[str]:
    """The locales a template folder has a .po catalog for."""
    if templates_dir is None:
        return set()
    root = templates_dir / CATALOG_FOLDER
    if not root.is_dir():
        return set()
    return {entry.name for entry in root.iterdir() if (entry / "LC_MESSAGES" / f"{DOMAIN}.po").is_file()}


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    """A .po file as a Babel catalog. Raises CatalogProblem on a file that is not a catalog."""
    try:
        with path.open("rb") as handle:
            return read_po(handle, locale=locale, abort_invalid=True)
    except (OSError, PoFileError, ValueError) as error:
        raise CatalogProblem(f"message catalog {path}: {error}") from None


def usable(catalog: Catalog) -> Catalog:
    """The catalog without fuzzy entries and entries not (fully) translated: gettext then
    falls back to the next catalog, or to the English message id."""
    for message in list(catalog)[1:]:
        strings = message.string if isinstance(message.string, (list, tuple)) else (message.string,)
        if message.fuzzy or not all(strings):
            catalog.delete(message.id, context=message.context)
    return catalog


def compile_catalog(catalog: Catalog) -> Translations:
    """A Babel catalog as gettext translations, compiled in memory."""
    buffer = BytesIO()
    write_mo(buffer, usable(catalog))
    buffer.seek(0)
    return Translations(buffer, domain=DOMAIN)


def load_catalog(templates_dir: Path, locale: str) -> Translations | None:
    """The translations of `locale` in a template folder, or None when it has no catalog: from
    the compiled .mo when it is at least as new as the .po, else from the .po itself.

    Raises CatalogProblem when the file cannot be read."""
    po_file = catalog_path(templates_dir, locale)
    mo_file = catalog_path(templates_dir, locale, ".mo")
    if not po_file.is_file():
        return None
    if mo_file.is_file() and mo_file.stat().st_mtime >= po_file.stat().st_mtime:
        try:
            with mo_file.open("rb") as handle:
                return Translations(handle, domain=DOMAIN)
        except (OSError, ValueError):
            pass  # a damaged .mo: the .po below still holds the words
    return compile_catalog(read_catalog(po_file, locale))


def translations_for(locale: str, bundled_dir: Path, override_dir: Path | None) -> gettext.NullTranslations:
    """The practice's messages for `locale` (if any), falling back to the bundled catalog,
    falling back to the English message ids.

    Raises CatalogProblem when a catalog cannot be read."""
    chain: list[gettext.NullTranslations] = []
    for folder in (override_dir, bundled_dir):
        if folder is None:
            continue
        found = load_catalog(folder, locale)
        if found is not None:
            chain.append(found)
    if not chain:
        return gettext.NullTranslations()
    first = chain[0]
    for fallback in chain[1:]:
        first.add_fallback(fallback)
    return first


def extract_messages(folders: list[Path]) -> Catalog:
    """Every message the templates use (`{% trans %}`, `_()`, `pgettext()`...), extracted by
    Babel with Jinja's extractor from the `*.j2` files at the top of each folder (a locale
    folder's own templates carry their own words)."""
    catalog = Catalog(project="Slotguard", charset="utf-8", fuzzy=False)
    for folder in folders:
        for path in sorted(folder.glob("*.j2")):
            with path.open("rb") as handle:
                for lineno, message, comments, context in extract(
                    babel_extract, handle, keywords=DEFAULT_KEYWORDS, options=JINJA_OPTIONS  # type: ignore[arg-type]
                ):
                    catalog.add(message, None, [(path.name, lineno)], auto_comments=comments, context=context)
    return catalog


def message_key(message) -> tuple[str | None, str]:
    """A message's context and (singular) id: what gettext looks it up by."""
    return message.context, message.id if isinstance(message.id, str) else message.id[0]


def unused_overrides(override_dir: Path, template_folders: list[Path]) -> list[str]:
    """The messages in a practice's own catalogs that no template uses (a typo in a msgid
    would silently change nothing), and catalogs that cannot be read."""
    locales = catalog_locales(override_dir)
    if not locales:
        return []
    used = {message_key(message) for message in list(extract_messages(template_folders))[1:]}
    problems = []
    for locale in sorted(locales):
        path = catalog_path(override_dir, locale)
        try:
            catalog = read_catalog(path, locale)
        except CatalogProblem as error:
            problems.append(str(error))
            continue
        for message in list(catalog)[1:]:
            if message_key(message) not in used:
                problems.append(f"message catalog {path}: no template uses the message {message_key(message)[1]!r}"
                                + (f" (context {message.context!r})" if message.context else ""))
    return problems
