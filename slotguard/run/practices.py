"""The practices of a deployment: one ordinary Slotguard config per practice in the
deployment's practices folder, `ID.toml`, the id being lower-case letters, digits and _ (at
most 40).

A practice's settings are its own file with three things the deployment decides:
  - storage.url: the deployment's server, when the practice names none of its own (with
    deployment.ledgers = "sqlite": none, each practice's ledger a file in its data folder);
  - storage.schema: `practice_ID`, the practice's own schema on that server;
  - storage.data_dir: DATA_DIR/ID under the deployment's data_dir (made 0700), where its
    tokens, evidence and (when the file names no mail.outbox_dir) its outbox live.
So a practice of a deployment is run within it (`main.py run --deployment FILE --practice ID`,
or by the workers), which opens its ledger and takes its lock: the file run alone
(`--config practices/ID.toml`) would be another Slotguard, on the file's own ledger, beside the
workers (docs/deploy.md, "When a worker dies"). A broken practice file is that practice's
problem only: it is reported with its id and path, the others load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slotguard.config.deployment import Deployment
from slotguard.config.schema import ConfigError, Settings, parse_settings, read_toml
from slotguard.policies.loading import load_enabled, table_problems
from slotguard.store.private_files import private_folder

PRACTICE_ID = re.compile(r"^[a-z0-9_]{1,40}$")
SCHEMA_PREFIX = "practice_"


@dataclass(frozen=True)
class PracticeFile:
    """A practice of the deployment: its id and its config file."""
    id: str
    path: Path


def practices_folder(deployment: Deployment) -> Path:
    return Path(deployment.deployment.practices)


def practice_schema(practice_id: str) -> str:
    """The PostgreSQL schema of a practice's ledger (and the key of its lock)."""
    return f"{SCHEMA_PREFIX}{practice_id}"


def practice_data_dir(deployment: Deployment, practice_id: str) -> Path:
    return Path(deployment.deployment.data_dir) / practice_id


def list_practices(deployment: Deployment) -> tuple[list[PracticeFile], list[str]]:
    """The practices in the deployment's folder, sorted by id, and the problems met: a
    `.toml` file whose name is not a practice id (it is left out, not guessed at). Raises
    ConfigError when the folder itself cannot be read: a caller must not take that for "no
    practices" (the work queue would forget them all)."""
    folder = practices_folder(deployment)
    try:
        entries = sorted(folder.iterdir())
    except OSError as error:
        raise ConfigError([f"deployment.practices: the folder {folder} cannot be read ({error.strerror or error}); "
                           "check the path and that the user Slotguard runs as may read it"]) from None
    found: list[PracticeFile] = []
    problems: list[str] = []
    for path in entries:
        if path.suffix != ".toml" or path.name.startswith("."):
            continue
        if not PRACTICE_ID.match(path.stem):
            problems.append(f"{path}: not a practice: the file name must be the practice id, lower-case letters, digits "
                            "and _ (at most 40), then .toml; rename it to include it")
            continue
        found.append(PracticeFile(path.stem, path))
    return found, problems


def practice_file(deployment: Deployment, practice_id: str) -> PracticeFile:
    """The practice `practice_id` of the deployment. Raises ConfigError when the id is not a
    practice id or there is no such file (naming the folder)."""
    if not PRACTICE_ID.match(practice_id):
        raise ConfigError([f"--practice {practice_id!r}: a practice id is lower-case letters, digits and _ (at most 40)"])
    path = practices_folder(deployment) / f"{practice_id}.toml"
    if not path.is_file():
        raise ConfigError([f"--practice {practice_id}: there is no {path}; the deployment's practices are the ID.toml files in "
                           f"{practices_folder(deployment)}"])
    return PracticeFile(practice_id, path)


def with_deployment(data: dict[str, Any], deployment: Deployment, practice_id: str) -> dict[str, Any]:
    """A practice's config mapping (as read from its file) with what the deployment decides:
    its server (unless the file names one, or the deployment keeps ledgers in SQLite), its schema and its data folder; its outbox under
    that folder unless the file names one. Returns a new mapping; `data` is not changed. A
    section that is not a table is left alone for the validation to report."""
    merged = dict(data)
    storage = merged.get("storage", {})
    if isinstance(storage, dict):
        storage = dict(storage)
        if not storage.get("url") and deployment.storage.url and deployment.deployment.ledgers == "postgresql":
            storage["url"] = deployment.storage.url
        storage["schema"] = practice_schema(practice_id)
        storage["data_dir"] = str(practice_data_dir(deployment, practice_id))
        merged["storage"] = storage
    mail = merged.get("mail", {})
    if isinstance(mail, dict) and "outbox_dir" not in mail:
        merged["mail"] = {**mail, "outbox_dir": str(practice_data_dir(deployment, practice_id) / "outbox")}
    return merged


def settings_from(data: dict[str, Any], source: str) -> Settings:
    """Validate a config mapping, the policies' own settings too. Raises ConfigError naming
    `source` with every problem, the policies' tables included even when the core settings
    have errors of their own."""
    try:
        settings = parse_settings(data, source)
    except ConfigError as error:
        raise ConfigError(error.problems + table_problems(data.get("policies")), source) from None
    try:
        load_enabled(settings)
    except ConfigError as error:
        raise ConfigError(error.problems, source) from None
    return settings


def practice_data(deployment: Deployment, practice_id: str) -> tuple[dict[str, Any], PracticeFile]:
    """The practice's config mapping with the deployment's part (with_deployment), and its file."""
    practice = practice_file(deployment, practice_id)
    return with_deployment(read_toml(practice.path), deployment, practice_id), practice


def practice_settings(deployment: Deployment, practice_id: str) -> Settings:
    """The settings of one practice of the deployment (see the module's docstring); its data
    folder is made (0700). Raises ConfigError naming the practice's id and file with every
    problem of that file; OSError from making the folder becomes a ConfigError too."""
    data, practice = practice_data(deployment, practice_id)
    source = f"practice {practice_id} ({practice.path})"
    settings = settings_from(data, source)
    try:
        private_folder(settings.storage.data_dir)
    except OSError as error:
        raise ConfigError([f"deployment.data_dir: the folder {settings.storage.data_dir} cannot be made ({error.strerror or error}); "
                           "check deployment.data_dir and its permissions"], source) from None
    return settings
