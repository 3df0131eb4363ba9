"""pyproject.toml: the `slotguard` console script is main.py, and the built-in policies are
listed in the `slotguard.policies` entry point group under the names the checkout registers
them by, so an installed Slotguard registers each policy once."""

from __future__ import annotations

import tomllib
from pathlib import Path

from slotguard.policies.loading import DEFAULT_PLUGINS, ENTRY_POINT_GROUP, available, plugin_manager

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_console_script_runs_what_main_py_runs():
    assert PROJECT["project"]["scripts"] == {"slotguard": "slotguard.cli.main:main"}
    assert "from slotguard.cli.main import main" in (ROOT / "main.py").read_text(encoding="utf-8")


def test_the_entry_point_group_lists_every_built_in_policy_by_its_module():
    points = PROJECT["project"]["entry-points"][ENTRY_POINT_GROUP]
    assert points == {module: module for module in DEFAULT_PLUGINS}


def test_an_installed_slotguard_registers_each_built_in_policy_once(tmp_path, monkeypatch):
    """As if `pip install -e .` had run: the group's entry points are on the path."""
    info = tmp_path / "slotguard-0.12.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: slotguard\nVersion: 0.12.0\n")
    points = PROJECT["project"]["entry-points"][ENTRY_POINT_GROUP]
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n" + "".join(f"{name} = {value}\n" for name, value in points.items()))
    monkeypatch.syspath_prepend(str(tmp_path))
    manager = plugin_manager()  # a second registration of one module would raise ValueError
    modules = [plugin.__name__ for plugin, _ in available(manager).values() if plugin.__name__ in DEFAULT_PLUGINS]
    assert sorted(modules) == sorted(DEFAULT_PLUGINS)
