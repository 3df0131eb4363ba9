"""The merge driver of the message catalogs (tools/po_merge.py): two branches that each add
and translate sentences merge without losing either's words, and a translation both changed
differently is reported, not silently picked."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location("po_merge_tool", ROOT / "tools" / "po_merge.py")
assert spec and spec.loader
po_merge = importlib.util.module_from_spec(spec)
spec.loader.exec_module(po_merge)

HEADER = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'


def catalog(folder: Path, name: str, **messages: str) -> Path:
    path = folder / f"{name}.po"
    path.write_text(HEADER + "".join(f'msgid "{key}"\nmsgstr "{value}"\n\n' for key, value in messages.items()))
    return path


def translations(path: Path) -> dict[str, str]:
    return {message.id: message.string for message in list(po_merge._read(str(path)))[1:]}


def run(base: Path, ours: Path, theirs: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "tools" / "po_merge.py"), str(base), str(ours), str(theirs)],
                          capture_output=True, text=True, check=False)


def test_both_sides_additions_and_changes_are_kept(tmp_path):
    base = catalog(tmp_path, "base", Hello="Hei", Bye="Ha det", Gone="Borte", Empty="")
    ours = catalog(tmp_path, "ours", Hello="Hei", Bye="Ha det bra", Gone="Borte", Empty="", Mine="Min")
    theirs = catalog(tmp_path, "theirs", Hello="Hallo", Bye="Ha det", Empty="Tom", Theirs="Deres")
    result = run(base, ours, theirs)
    assert result.returncode == 0, result.stderr
    assert translations(ours) == {"Hello": "Hallo", "Bye": "Ha det bra", "Empty": "Tom", "Mine": "Min", "Theirs": "Deres"}


def test_a_translation_both_changed_differently_is_a_conflict_and_ours_is_kept(tmp_path):
    base = catalog(tmp_path, "base", Fee="avgiften er slettet")
    ours = catalog(tmp_path, "ours", Fee="avgiften er frafalt")
    theirs = catalog(tmp_path, "theirs", Fee="gebyret er frafalt")
    result = run(base, ours, theirs)
    assert result.returncode == 1 and "'Fee'" in result.stderr
    assert translations(ours) == {"Fee": "avgiften er frafalt"}


def test_a_real_catalog_merged_with_itself_is_unchanged(tmp_path):
    real = ROOT / "templates" / "locale" / "he" / "LC_MESSAGES" / "messages.po"
    ours = tmp_path / "ours.po"
    ours.write_bytes(real.read_bytes())
    assert run(real, ours, real).returncode == 0
    assert ours.read_bytes() == real.read_bytes()
