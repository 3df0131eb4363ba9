#!/usr/bin/env python3
"""The message catalogs of the email templates: extract, update, compile, check.

The words of every email are English message ids in the templates (`{% trans %}`, `_()`,
`pgettext()`); each locale's translations live in templates/locale/LANG/LC_MESSAGES/messages.po,
committed. Only the babel package is used (Jinja's extractor `jinja2.ext.babel_extract`), no
pybabel command.

Usage:
    python tools/catalogs.py extract      write templates/locale/messages.pot from the templates
    python tools/catalogs.py update       extract, then add new messages to every .po (empty,
                                          to translate) and drop the ones no template uses
    python tools/catalogs.py update LANG  the same, and start LANG's catalog if it has none
    python tools/catalogs.py compile      write each .mo beside its .po (when older or missing)
    python tools/catalogs.py compile PO   write that .po's .mo
    python tools/catalogs.py check        exit 1 listing missing, stale, empty or fuzzy messages
"""

from __future__ import annotations

import sys
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from slotguard.mail import catalogs  # noqa: E402 (after the path: the script runs from anywhere)

TEMPLATES = ROOT / "templates"
CATALOGS = TEMPLATES / "locale"
POT = CATALOGS / "messages.pot"
SOURCE_LOCALE = "en"
# Babel gives Hebrew two plural forms; the emails say "an hour", "two hours" (one word) and
# "N hours", as CLDR's one/two/other do.
PLURAL_FORMS = {"he": (3, "(n == 1 ? 0 : n == 2 ? 1 : 2)")}


def po_path(locale: str, root: Path = CATALOGS) -> Path:
    return root / locale / "LC_MESSAGES" / "messages.po"


def catalog_locales(root: Path = CATALOGS) -> list[str]:
    """The locales that have a catalog, sorted."""
    return sorted(path.parent.parent.name for path in root.glob("*/LC_MESSAGES/messages.po"))


def extract_messages(templates: Path = TEMPLATES) -> Catalog:
    """Every message the templates in `templates` (the top folder only) use, with where."""
    return catalogs.extract_messages([templates])


def _write(path: Path, catalog: Catalog) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = BytesIO()
    write_po(buffer, catalog, width=100, include_lineno=False, ignore_obsolete=True, sort_by_file=False)
    path.write_bytes(buffer.getvalue())


def new_catalog(locale: str) -> Catalog:
    """An empty catalog for `locale`, with its plural forms."""
    catalog = Catalog(locale=locale, project="Slotguard", charset="utf-8", fuzzy=False)
    if locale in PLURAL_FORMS:
        catalog._num_plurals, catalog._plural_expr = PLURAL_FORMS[locale]
    return catalog


def update(new_locales: list[str]) -> list[Path]:
    """Bring every catalog (and the new ones asked for) in line with the templates; returns
    the files written."""
    template = extract_messages()
    _write(POT, template)
    written = [POT]
    for locale in sorted(set(catalog_locales()) | set(new_locales)):
        path = po_path(locale)
        if path.is_file():
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=locale)
        else:
            catalog = new_catalog(locale)
        catalog.update(template, no_fuzzy_matching=True)
        _write(path, catalog)
        written.append(path)
    return written


def compile_all(force: bool = False, only: list[Path] | None = None) -> list[Path]:
    """Write LANG/LC_MESSAGES/messages.mo for every .po (or those in `only`) that is newer than
    its .mo; returns the files written."""
    written = []
    sources = only if only else [po_path(locale) for locale in catalog_locales()]
    for source in sources:
        locale = source.parent.parent.name
        target = source.with_suffix(".mo")
        if not force and target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
            continue
        with source.open("rb") as handle:
            catalog = read_po(handle, locale=locale)
        buffer = BytesIO()
        write_mo(buffer, catalogs.usable(catalog))
        target.write_bytes(buffer.getvalue())
        written.append(target)
    return written


def problems(templates: Path = TEMPLATES, root: Path = CATALOGS) -> list[str]:
    """What is wrong with the catalogs under `root` compared with the templates: a message a
    template uses and a catalog lacks, a message no template uses any more, and in a
    translation an empty or fuzzy message or one with the wrong number of plural forms."""
    wanted = {(message.context, message.id if isinstance(message.id, str) else message.id[0]): message
              for message in list(extract_messages(templates))[1:]}
    found = []
    locales = catalog_locales(root)
    if not locales:
        return [f"{root}: no catalogs"]
    for locale in locales:
        path = po_path(locale, root)
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=locale)
        have = {}
        for message in list(catalog)[1:]:
            have[(message.context, message.id if isinstance(message.id, str) else message.id[0])] = message
        where = path.relative_to(root.parent) if root.parent in path.parents else path
        for key in sorted(set(wanted) - set(have), key=str):
            found.append(f"{where}: missing {_name(key)}")
        for key in sorted(set(have) - set(wanted), key=str):
            found.append(f"{where}: stale (no template uses it) {_name(key)}")
        for key in sorted(set(have) & set(wanted), key=str):
            message, source = have[key], wanted[key]
            if message.pluralizable != source.pluralizable or (source.pluralizable and message.id != source.id):
                found.append(f"{where}: singular/plural differs from the templates for {_name(key)}")
                continue
            if locale == SOURCE_LOCALE:
                continue
            strings = message.string if isinstance(message.string, (list, tuple)) else (message.string,)
            if message.fuzzy:
                found.append(f"{where}: fuzzy {_name(key)}")
            elif not all(strings):
                found.append(f"{where}: not translated {_name(key)}")
            elif message.pluralizable and len(strings) != catalog.num_plurals:
                found.append(f"{where}: {len(strings)} plural forms, the catalog says {catalog.num_plurals}, for {_name(key)}")
    return found


def _name(key: tuple) -> str:
    context, message_id = key
    text = message_id if len(message_id) <= 70 else message_id[:67] + "..."
    return f"{text!r}" + (f" (context {context!r})" if context else "")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "extract":
        _write(POT, extract_messages())
        print(POT.relative_to(ROOT))
    elif command == "update":
        for path in update(argv[1:]):
            print(path.relative_to(ROOT))
    elif command == "compile":
        paths = [Path(argument).resolve() for argument in argv[1:] if argument != "--force"]
        for path in compile_all(force="--force" in argv or bool(paths), only=paths):
            print(path.relative_to(ROOT))
    elif command == "check":
        found = problems()
        for problem in found:
            print(problem)
        return 1 if found else 0
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
