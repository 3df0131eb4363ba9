"""The plugin API others build on: hooks declared once, third-party policies found through
the `slotguard.policies` entry point, their config validated at start-up, and run like the
built-in ones. The example package examples/slotguard-weekend-surcharge is installed in the
test environment (see the Makefile) and proves it end to end."""

from __future__ import annotations

import inspect
import re
from datetime import datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from zoneinfo import ZoneInfo

import pluggy
import pytest

from slotguard.config.schema import ConfigError
from slotguard.domain.model import ActionKind
from slotguard.policies import hookspecs
from slotguard.policies.hookspecs import hookimpl
from slotguard.policies.loading import DEFAULT_PLUGINS, ENTRY_POINT_GROUP, HOOKS, available, load_enabled, plugin_manager
from tests.support.builders import settings
from tests.unit.planning.test_policy_planner import K, World, fee_config, nok

ROOT = Path(__file__).resolve().parents[3]
SATURDAY = datetime(2026, 3, 7, 10, 0, tzinfo=ZoneInfo("Europe/Oslo"))
INSTALL = "install it: .venv/bin/python -m pip install --no-deps -e examples/slotguard-weekend-surcharge (make does)"


def test_the_example_package_is_installed_through_its_entry_point():
    found = {point.name: point.value for point in entry_points(group=ENTRY_POINT_GROUP)}
    assert found.get("weekend_surcharge") == "slotguard_weekend_surcharge", INSTALL
    plugin, info = available(plugin_manager())["weekend_surcharge"]
    assert plugin.__name__ not in DEFAULT_PLUGINS and info.role == "modifier"


def test_a_third_party_policy_is_configured_and_validated_like_a_built_in_one():
    with pytest.raises(ConfigError) as error:
        load_enabled(settings(policies={"enabled": ["no_show", "weekend_surcharge"], "weekend_surcharge": {"surcharge": "0%", "days": ["caturday"], "extra": 1}}))
    problems = "\n".join(error.value.problems)
    assert "policies.weekend_surcharge.surcharge: must be more than 0%" in problems
    assert "policies.weekend_surcharge.days.0:" in problems
    assert "policies.weekend_surcharge.extra: unknown key" in problems


def test_a_third_party_policy_runs_in_the_pipeline_and_the_safety_rules_still_hold():
    world = World(**fee_config("no_show", "weekend_surcharge", no_show={"fee": "600 NOK"}))
    fee = next(a for a in world.happen(K.NO_SHOW, world.appointment("e1", SATURDAY), SATURDAY) if a.kind is ActionKind.CHARGE)
    assert fee.amount == nok(750)
    assert fee.reason.endswith("weekend_surcharge added 25% for a Saturday appointment: 750.00 NOK")
    weekday = world.appointment("e2", SATURDAY - timedelta(days=2))
    assert next(a for a in world.happen(K.NO_SHOW, weekday, weekday.start) if a.kind is ActionKind.CHARGE).amount == nok(600)
    steep = World(**fee_config("no_show", "weekend_surcharge", weekend_surcharge={"surcharge": "100%"}))
    fee = next(a for a in steep.happen(K.NO_SHOW, steep.appointment("e1", SATURDAY), SATURDAY) if a.kind is ActionKind.CHARGE)
    assert fee.amount == nok(900) and fee.reason.endswith("safety: capped at the price 900.00 NOK")


def test_every_hook_is_declared_once_with_a_docstring_and_documented():
    declared = [name for name, value in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("slotguard_")]
    assert sorted(declared) == sorted(HOOKS + ("slotguard_policy_info",))
    page = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    for name in declared:
        function = getattr(hookspecs, name)
        assert function.__doc__ and len(function.__doc__.splitlines()) == 1, name
        signature = f"{name}({', '.join(inspect.signature(function).parameters)})"
        assert signature in page, f"docs/plugins.md does not show {signature}"
    assert ENTRY_POINT_GROUP in page


def test_pluggy_refuses_an_implementation_asking_for_an_argument_no_hook_gives():
    class Wrong:
        @hookimpl
        def slotguard_modify(self, proposal, weather):
            return None

    manager = plugin_manager()
    with pytest.raises(pluggy.PluginValidationError, match="weather"):
        manager.register(Wrong(), name="wrong")


def test_the_policy_reference_covers_every_built_in_policy_its_keys_and_emails():
    page = (ROOT / "docs" / "policies.md").read_text(encoding="utf-8")
    for name, (plugin, info) in available(plugin_manager()).items():
        if plugin.__name__ not in DEFAULT_PLUGINS:
            continue
        section = re.search(rf"^## `{name}`\n(.*?)(?=^## |\Z)", page, re.MULTILINE | re.DOTALL)
        assert section, f"docs/policies.md has no section `## \\`{name}\\``"
        text = section.group(1)
        for key in info.config_model.model_fields:
            assert f"`{key}`" in text, f"{name}: key {key} is not documented"
        for template in info.emails:
            assert f"`{template}`" in text, f"{name}: email {template} is not documented"
        assert "```toml" in text, f"{name}: no example"


def test_every_example_in_the_policy_reference_is_a_valid_configuration():
    import tomllib

    page = (ROOT / "docs" / "policies.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", page, re.DOTALL)
    assert len(blocks) >= 15
    services = {"default": {"price": "900 NOK"}, "intro": {"price": "500 NOK", "duration": "30m", "match": ["intro"]}}
    for block in blocks:
        policies = tomllib.loads(block)["policies"]
        loaded = load_enabled(settings(services=services, policies=policies))
        assert [policy.name for policy in loaded] and set(policies) - {"enabled"} <= {policy.name for policy in loaded}, block


def test_every_policy_imports_from_slotguard_only_the_kit():
    """A policy author's promise is one module: the built-in policies and the example package
    use nothing else of Slotguard, so everything they need is in slotguard.kit."""
    import ast
    import sys

    sources = [*sorted((ROOT / "plugins").glob("*.py")), *(ROOT / "examples").rglob("*.py")]
    assert len(sources) > 10
    allowed = set(sys.stdlib_module_names) | {"__future__", "pydantic"}
    outside = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or ""] if not node.level else []
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                if module != "slotguard.kit" and module.split(".")[0] not in allowed:
                    outside.append(f"{path.relative_to(ROOT)}: {module}")
    assert outside == []


def test_the_kit_exports_what_it_names_and_one_percent_type():
    import slotguard.kit as kit
    from slotguard.config import schema
    from slotguard.policies import loading

    assert all(hasattr(kit, name) for name in kit.__all__)
    assert kit.Percent is schema.Percent
    assert getattr(loading, "Percent", schema.Percent) is schema.Percent  # no second Percent type where plugins are loaded
    share = type("Share", (kit.PolicyConfig,), {"__annotations__": {"share": kit.Percent}})
    assert str(share.model_validate({"share": "12.5%"}).share) == "12.5"
    with pytest.raises(Exception, match="between 0% and 100%"):
        share.model_validate({"share": "150%"})


def test_a_hook_name_no_spec_declares_is_reported_with_its_plugin():
    from slotguard.policies.loading import undeclared_hooks

    class Typo:
        @hookimpl
        def slotguard_modfy(self, proposal):
            return None

    manager = plugin_manager()
    assert undeclared_hooks(manager) == []
    manager.register(Typo(), name="typo_plugin")
    assert undeclared_hooks(manager) == [
        "plugin typo_plugin: slotguard_modfy is not a Slotguard hook, so it would never run; did you mean slotguard_modify?"
    ]
