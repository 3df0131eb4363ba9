"""The documentation stays true to the code: docs/configuration.md is what the schema says,
and the example configuration it points people to is valid."""

import importlib.util
import tomllib
from pathlib import Path

from slotguard.cli.main import load_settings
from slotguard.policies.loading import load_enabled

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_config_docs", ROOT / "tools" / "gen_config_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _key_paths(table: dict, prefix: str = "") -> list[str]:
    """Dotted paths of every key in a TOML table; names under [services] become NAME."""
    paths = []
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else key
        if prefix == "services":
            path = "services.NAME"
        if isinstance(value, dict) and not path.startswith("calendar.marks."):
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
