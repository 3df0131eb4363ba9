#!/usr/bin/env python3
"""A git merge driver for the message catalogs: merges two branches' .po (or .pot) files
message by message instead of line by line.

Two branches that each add sentences to the emails and translate them touch the same
catalogs; a line merge then conflicts wherever their messages sit side by side, and a
conflict inside a .po is easy to resolve wrongly. This driver takes every message either side
added, drops a message only when one side dropped it and the other left it as it was, and for
a translation both sides changed keeps the one that differs from the common ancestor. When
both sides changed the same translation differently it keeps ours, names the message on
stderr and exits 1, so git reports the file as conflicted.

After a merge, `tools/catalogs.py update` puts the catalogs back in line with the templates
(order, locations, and messages no template uses any more) and `tools/catalogs.py check`
lists anything left untranslated.

Set up once per clone (the attribute is committed in .gitattributes):
    git config merge.po.name "message catalogs, message by message"
    git config merge.po.driver ".venv/bin/python tools/po_merge.py %O %A %B"

Usage (by git): po_merge.py BASE OURS THEIRS   (the result is written over OURS)
"""

from __future__ import annotations

import sys
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po, write_po


def _read(path: str) -> Catalog:
    data = Path(path).read_bytes()
    return read_po(BytesIO(data)) if data.strip() else Catalog()


def _messages(catalog: Catalog) -> dict[tuple, Message]:
    return {(message.context, message.id): message for message in list(catalog)[1:]}


def _string(message: Message | None):
    if message is None:
        return None
    return (tuple(message.string) if isinstance(message.string, (list, tuple)) else message.string, message.fuzzy)


def merge(base: Catalog, ours: Catalog, theirs: Catalog) -> tuple[Catalog, list[str]]:
    """`ours` with `theirs`' changes since `base` merged in, message by message; and the
    messages both sides changed differently (ours kept)."""
    old, mine, other = _messages(base), _messages(ours), _messages(theirs)
    conflicts: list[str] = []
    for key in list(mine) + [key for key in other if key not in mine]:
        in_base, in_mine, in_other = key in old, key in mine, key in other
        if in_mine and in_other:
            before, kept, offered = _string(old.get(key)), _string(mine[key]), _string(other[key])
            if kept == offered or offered == before:
                continue
            if kept == before or _untranslated(mine[key]):
                _take(ours, other[key])
            else:
                conflicts.append(f"{key[1]!r}" + (f" (context {key[0]!r})" if key[0] else ""))
        elif in_other and not in_base:
            _take(ours, other[key])  # they added it
        elif in_mine and in_base and not in_other and _string(mine[key]) == _string(old[key]):
            ours.delete(key[1], context=key[0])  # they dropped it, we left it as it was
    return ours, conflicts


def _untranslated(message: Message) -> bool:
    strings = message.string if isinstance(message.string, (list, tuple)) else (message.string,)
    return message.fuzzy or not all(strings)


def _take(catalog: Catalog, message: Message) -> None:
    """Put `message` in `catalog`, replacing its translation (Catalog.add would keep the old one)."""
    if catalog.get(message.id, context=message.context) is not None:
        catalog.delete(message.id, context=message.context)
    catalog.add(message.id, message.string, list(message.locations), flags=message.flags,
                auto_comments=message.auto_comments, user_comments=message.user_comments, context=message.context)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__)
        return 2
    base_path, ours_path, theirs_path = argv
    catalog, conflicts = merge(_read(base_path), _read(ours_path), _read(theirs_path))
    buffer = BytesIO()
    write_po(buffer, catalog, width=100, include_lineno=False, ignore_obsolete=True, sort_by_file=False)
    Path(ours_path).write_bytes(buffer.getvalue())
    for conflict in conflicts:
        print(f"po_merge: both sides changed the translation of {conflict}; ours kept", file=sys.stderr)
    return 1 if conflicts else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
