"""`main.py policies` and `main.py simulate` as separate processes on the example practice,
and a third-party policy (the example package, installed by the Makefile) enabled in a real
config file."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.support.cli import NOW, ROOT, main


@pytest.fixture()
def practice(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_policies_lists_built_in_and_installed_policies_and_what_is_enabled(practice):
    found = {item["name"]: item for item in json.loads(main(practice, "policies", "--json").stdout)["policies"]}
    assert found["late_cancel"]["enabled"] and found["late_cancel"]["position"] == 1 and found["late_cancel"]["source"] == "built in"
    assert found["first_offense_grace"]["emails"] == ["grace_warning"] and not found["first_offense_grace"]["enabled"]
    assert found["weekend_surcharge"]["source"] == "installed (slotguard_weekend_surcharge)"


def test_simulate_tries_a_policy_set_on_the_past_and_changes_nothing(practice):
    main(practice, "run", "--once", "--now", NOW)
    before = digest(practice)
    result = main(practice, "simulate", "--from", "2026-11-23", "--to", "2026-11-29", "--policies", "late_cancel,no_show,first_offense_grace", "--json")
    data = json.loads(result.stdout)
    assert data["policies"] == ["late_cancel", "no_show", "first_offense_grace"]
    assert data["clients"]["bjorn@example.com"]["waived"] == {"minor": 90000, "currency": "NOK"}
    assert data["clients"]["clara@example.com"]["waived"] == {"minor": 45000, "currency": "NOK"}
    assert data["total"]["fees"]["minor"] == 0
    assert data["actual"]["fees"]["minor"] == 90000  # Clara had not been told the policy: a warning, no fee
    assert data["clients"]["bjorn@example.com"]["emails"]["grace_warning"] == 1
    assert digest(practice) == before, "no money moved, no mail written, the ledger untouched"
    text = main(practice, "simulate", "--from", "2026-11-23", "--to", "2026-11-29").stdout
    assert "Policies: late_cancel, no_show" in text and "bjorn@example.com" in text


def test_simulate_refuses_unknown_policies_and_a_missing_ledger(practice):
    result = main(practice, "simulate", "--from", "2026-11-23", "--to", "2026-11-29", "--policies", "late_cancel,nope", check=False)
    assert result.returncode == 2 and "unknown policy 'nope'" in result.stderr and "first_offense_grace" in result.stderr
    result = main(practice, "simulate", "--from", "2026-11-23", "--to", "2026-11-29", check=False)
    assert result.returncode == 2 and "no ledger at var/ledger.sqlite3" in result.stderr
    assert not (practice / "var").exists()


def test_a_third_party_policy_in_a_config_file_is_validated_at_start(practice):
    path = practice / "config/example.toml"
    text = path.read_text()
    text = text.replace('enabled = ["late_cancel", "no_show"]', 'enabled = ["late_cancel", "no_show", "weekend_surcharge"]')
    path.write_text(text + '\n[policies.weekend_surcharge]\nsurcharge = "150%"\n')
    result = main(practice, "check-config", check=False)
    assert result.returncode == 2 and "policies.weekend_surcharge.surcharge: must be between 0% and 100%" in result.stderr
    path.write_text(text + '\n[policies.weekend_surcharge]\nsurcharge = "20%"\n')
    assert "configuration is valid" in main(practice, "check-config").stdout


def test_a_plugin_with_a_misspelled_hook_stops_check_config_naming_the_plugin_and_the_hook(practice):
    """A hook name pluggy does not know (`slotguard_propse`) would never be called: the fee it
    was meant to propose would silently never be charged. It is a config error at start-up."""
    site = practice / "site"
    (site / "typo_policy-0.1.dist-info").mkdir(parents=True)
    (site / "typo_policy-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: typo-policy\nVersion: 0.1\n")
    (site / "typo_policy-0.1.dist-info" / "entry_points.txt").write_text("[slotguard.policies]\ntypo_policy = typo_policy\n")
    (site / "typo_policy.py").write_text(
        "from slotguard.kit import PolicyInfo, hookimpl\n\n"
        "@hookimpl\ndef slotguard_policy_info():\n    return PolicyInfo(name='typo_policy', role='fee')\n\n"
        "@hookimpl\ndef slotguard_propse(happening):\n    return []\n"
    )
    env = {"PYTHONPATH": f"{ROOT}{os.pathsep}{site}"}
    result = main(practice, "check-config", check=False, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "plugin typo_policy: slotguard_propse is not a Slotguard hook" in result.stderr
    assert "did you mean slotguard_propose?" in result.stderr
    (site / "typo_policy.py").write_text((site / "typo_policy.py").read_text().replace("slotguard_propse", "slotguard_propose"))
    assert "configuration is valid" in main(practice, "check-config", env=env).stdout
