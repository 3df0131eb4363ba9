"""The files in deploy/ and config/deployment.example.toml say what the code does: the
compose file parses and runs three workers probed on /healthz at the port their deployment
file serves it on; the deployment files load; the example documents every key; the systemd
units keep their hardening."""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from slotguard.config.deployment import Deployment
from slotguard.run.ops_server import parse_listen
from tests.support.cli import ROOT

COMPOSE = ROOT / "deploy/compose/compose.yaml"


def parse_yaml(text: str) -> object:
    """The compose file's data. PyYAML when it is installed; else a reader of the block
    YAML the file is written in (mappings, "- " lists of scalars, JSON flow lists and
    quoted strings, comments), which fails loudly on anything else."""
    try:
        import yaml  # optional: not a dependency of Slotguard
    except ImportError:
        return _block_yaml(text)
    return yaml.safe_load(text)


def _scalar(text: str) -> object:
    if text.startswith(("[", '"')):
        return json.loads(text)
    assert not text.startswith(("{", "&", "*", "'", "|", ">")), f"the reader does not know {text!r}"
    return text


def _block_yaml(text: str) -> object:
    lines = []
    for raw in text.splitlines():
        stripped = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if stripped.strip():
            lines.append((len(stripped) - len(stripped.lstrip()), stripped.strip()))

    def block(index: int, indent: int) -> tuple[object, int]:
        if lines[index][1].startswith("- "):
            items = []
            while index < len(lines) and lines[index][0] == indent and lines[index][1].startswith("- "):
                items.append(_scalar(lines[index][1][2:].strip()))
                index += 1
            return items, index
        mapping: dict[str, object] = {}
        while index < len(lines) and lines[index][0] == indent:
            key, colon, rest = lines[index][1].partition(":")
            assert colon, f"not a mapping line: {lines[index][1]!r}"
            index += 1
            if rest.strip():
                mapping[key] = _scalar(rest.strip())
            elif index < len(lines) and lines[index][0] > indent:
                mapping[key], index = block(index, lines[index][0])
            else:
                mapping[key] = None
        return mapping, index

    data, end = block(0, 0)
    assert end == len(lines), f"unread from line {lines[end]}"
    return data


def load_deployment_file(path) -> Deployment:
    return Deployment.model_validate(tomllib.loads(path.read_text()))


def test_the_compose_file_runs_postgresql_three_workers_and_the_webhook_server_with_health_checks():
    compose = parse_yaml(COMPOSE.read_text())
    assert isinstance(compose, dict)
    services = compose["services"]
    workers = {name: service for name, service in services.items() if "worker" in service.get("command", [])}
    assert sorted(workers) == ["worker-1", "worker-2", "worker-3"]
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert "webhook-server" in services["webhook"]["command"]
    deployment = load_deployment_file(ROOT / "deploy/compose/deployment.toml")
    _, port = parse_listen(deployment.metrics.listen)
    names = set()
    for name, worker in workers.items():
        command = worker["command"]
        names.add(command[command.index("--name") + 1])
        assert command[command.index("--deployment") + 1] == "/etc/slotguard/deployment.toml"
        assert "./deployment.toml:/etc/slotguard/deployment.toml:ro" in worker["volumes"]
        probe = " ".join(worker["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/healthz" in probe, name
        assert worker["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert worker["build"]["dockerfile"] == "deploy/Dockerfile" and (COMPOSE.parent / worker["build"]["context"] / "deploy/Dockerfile").exists()
    assert len(names) == 3, "each worker has a name of its own on the queue"
    assert deployment.storage.url.startswith("postgresql://slotguard@postgres:5432/"), "the workers reach the postgres service"


def test_the_block_reader_refuses_what_it_does_not_know():
    with pytest.raises(AssertionError):
        _block_yaml("a:\n  b: &anchor x\n")
    assert _block_yaml('a:\n  - x\n  - "y"\nb: [1, 2]  # note\n') == {"a": ["x", "y"], "b": [1, 2]}


def test_the_example_deployment_file_loads_and_documents_every_key():
    path = ROOT / "config/deployment.example.toml"
    deployment = load_deployment_file(path)
    assert deployment.storage.url.startswith("postgresql://") and deployment.metrics.per_practice
    text = path.read_text()
    for section, field in Deployment.model_fields.items():
        assert re.search(rf"^\[{section}\]", text, re.MULTILINE), f"[{section}] is missing from {path.name}"
        model = field.annotation
        for key in model.model_fields:  # type: ignore[union-attr]
            assert re.search(rf"^#? ?{key} = ", text, re.MULTILINE), f"{section}.{key} is missing from {path.name}"


@pytest.mark.parametrize("unit", ["slotguard-worker@.service", "slotguard-webhook.service"])
def test_the_systemd_units_are_hardened_and_stop_gently(unit):
    text = (ROOT / "deploy/systemd" / unit).read_text()
    settings = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    for key, value in {"User": "slotguard", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
                       "ReadWritePaths": "/var/lib/slotguard", "Restart": "on-failure", "KillSignal": "SIGTERM", "UMask": "0077"}.items():
        assert settings.get(key) == value, f"{unit}: {key}"
    assert "TimeoutStopSec" in settings
    assert "--deployment /etc/slotguard/deployment.toml" in settings["ExecStart"]
    if unit.startswith("slotguard-worker@"):
        assert settings["Environment"] == "SLOTGUARD_METRICS_LISTEN=127.0.0.1:%i", "each instance its own metrics port"
        assert " worker " in settings["ExecStart"] and "--name %H-%i" in settings["ExecStart"]
