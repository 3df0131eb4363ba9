"""The documentation stays true to the code: docs/configuration.md is what the schema says,
the example configuration it points people to is valid, docs/plugins.md lists exactly the
hooks hookspecs.py declares and the names the kit exports, and docs/architecture.md names
every stage of the core in the order tests/unit/test_layers.py keeps."""

import importlib.util
import inspect
import re
import tomllib
from pathlib import Path

import slotguard.kit
from slotguard.cli.main import load_settings
from slotguard.policies import hookspecs
from slotguard.policies.loading import load_enabled
from tests.unit.test_layers import ORDER

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_config_docs", ROOT / "tools" / "gen_config_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Keys whose value may be a table by language ({ nb = "...", en = "..." }): one key.
TEXT_BY_LANGUAGE = ("practice.payment_instructions", "services.NAME.label")


def _key_paths(table: dict, prefix: str = "") -> list[str]:
    """Dotted paths of every key in a TOML table; names under [services] become NAME."""
    paths = []
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else key
        if prefix == "services":
            path = "services.NAME"
        if isinstance(value, dict) and not path.startswith("calendar.marks.") and path not in TEXT_BY_LANGUAGE:
            paths += _key_paths(value, path)
        else:
            paths.append(path)
    return paths


def test_configuration_reference_matches_the_schema():
    expected, _ = _generator().render()
    current = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert current == expected, (
        "docs/configuration.md is out of date with slotguard/config/schema.py or a built-in policy's "
        "config model; run: .venv/bin/python tools/gen_config_docs.py"
    )


def test_every_key_of_the_example_config_is_documented():
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    with (ROOT / "config" / "example.toml").open("rb") as handle:
        example = tomllib.load(handle)
    missing = [path for path in _key_paths(example) if f"`{path}`" not in page]
    assert not missing, f"keys used in config/example.toml but not in docs/configuration.md: {missing}"


def test_the_example_config_validates_with_its_policies():
    settings = load_settings(str(ROOT / "config" / "example.toml"))
    assert settings.practice.currency == "NOK"
    assert [policy.name for policy in load_enabled(settings)] == ["late_cancel", "no_show"]


def _page(name: str) -> str:
    return (ROOT / "docs" / name).read_text(encoding="utf-8")


def test_the_hooks_table_is_the_hook_specs():
    """Each row of docs/plugins.md's hooks table: the hook, its arguments and whether the
    first result wins, exactly as slotguard/policies/hookspecs.py declares them."""
    rows = re.findall(r"^\| `(slotguard_\w+)\(([^)]*)\)` \| (yes|no) \|", _page("plugins.md"), re.MULTILINE)
    documented = {name: (arguments, first == "yes") for name, arguments, first in rows}
    declared = {
        name: (", ".join(inspect.signature(spec).parameters), bool(spec.slotguard_spec["firstresult"]))
        for name, spec in vars(hookspecs).items() if name.startswith("slotguard_") and hasattr(spec, "slotguard_spec")
    }
    assert len(rows) == len(documented), "a hook is listed twice in docs/plugins.md"
    assert documented == declared, "docs/plugins.md's hooks table differs from slotguard/policies/hookspecs.py"


def test_the_kit_table_names_what_the_kit_exports():
    section = _page("plugins.md").split("## One import: `slotguard.kit`")[1].split("\n## ")[0]
    table = "\n".join(line.split(" | ", 1)[1] for line in section.splitlines() if line.startswith("| ") and " | " in line)
    documented = set(re.findall(r"`(\w+)`", table)) - {"slotguard_undo", "payment_status", "paid", "unpaid", "receivable", "StrEnum"}
    assert documented == set(slotguard.kit.__all__)


def test_the_architecture_names_every_stage_in_order_and_modules_that_exist():
    rows = re.findall(r"^\| `slotguard/(\w+)/` \| [^|]* \| ([^|]*) \|$", _page("architecture.md"), re.MULTILINE)
    assert [stage for stage, _ in rows] == ORDER
    missing = [f"slotguard/{stage}/{module}.py" for stage, modules in rows for module in re.findall(r"(\w+)\.py", modules)
               if not (ROOT / "slotguard" / stage / f"{module}.py").exists()]
    assert missing == []
