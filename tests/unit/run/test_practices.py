"""A deployment's practices (slotguard/run/practices.py, slotguard/config/deployment.py): the
folder's ID.toml files, a practice's settings with the deployment's part, a broken practice
file reported with its id and path while the others load; when a ticked practice is due
again (slotguard/run/worker.py next_due)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from slotguard.config.deployment import Deployment, load_deployment
from slotguard.config.schema import ConfigError
from slotguard.domain.model import Action, ActionKind, ActionState
from slotguard.run.practices import list_practices, practice_settings, with_deployment
from slotguard.run.worker import MIN_WAIT, next_due
from slotguard.store.ledger import Ledger
from tests.support.builders import settings as make_settings

ROOT = Path(__file__).resolve().parents[3]
URL = "postgresql://slotguard@db.example.com/slotguard"


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config/sample-week.ics").write_bytes((ROOT / "config/sample-week.ics").read_bytes())
    folder = tmp_path / "practices"
    folder.mkdir()
    example = (ROOT / "config/example.toml").read_text()
    (folder / "lena.toml").write_text(example.replace('outbox_dir = "var/outbox"\n', ""))
    (folder / "own_server.toml").write_text(example.replace('[storage]\ndata_dir = "var"', '[storage]\nurl = "postgresql://other@elsewhere/db"'))
    (folder / "broken.toml").write_text(example.replace("[reminders]", "[reminders]\nsoon = 1"))
    (folder / "Not A Practice.toml").write_text(example)
    (folder / "notes.txt").write_text("not a config")
    (tmp_path / "deployment.toml").write_text(f'[deployment]\npractices = "practices"\ndata_dir = "var/dep"\n[storage]\nurl = "{URL}"\n')
    return load_deployment(tmp_path / "deployment.toml")


def test_the_folder_lists_practices_by_id_and_reports_files_that_are_not(deployment):
    practices, problems = list_practices(deployment)
    assert [p.id for p in practices] == ["broken", "lena", "own_server"]
    assert len(problems) == 1 and "Not A Practice.toml" in problems[0] and "lower-case" in problems[0]


def test_a_practice_gets_the_deployments_server_its_own_schema_and_a_private_folder(deployment):
    settings = practice_settings(deployment, "lena")
    assert settings.storage.url == URL
    assert settings.storage.schema_name == "practice_lena"
    assert settings.storage.data_dir == os.path.join("var/dep", "lena")
    assert stat.S_IMODE(os.stat("var/dep/lena").st_mode) == 0o700
    assert settings.mail.outbox_dir == os.path.join("var/dep", "lena", "outbox"), "no outbox_dir in the file: under its folder"
    assert settings.practice.name == "Lena Berg Massage"
    own = practice_settings(deployment, "own_server")
    assert own.storage.url == "postgresql://other@elsewhere/db" and own.storage.schema_name == "practice_own_server"
    assert own.mail.outbox_dir == "var/outbox", "an outbox the file names is kept"


def test_sqlite_ledgers_keep_each_practice_in_its_own_file(deployment, tmp_path):
    (tmp_path / "deployment.toml").write_text(f'[deployment]\nledgers = "sqlite"\ndata_dir = "var/dep"\n[storage]\nurl = "{URL}"\n')
    settings = practice_settings(load_deployment(tmp_path / "deployment.toml"), "lena")
    assert settings.storage.url == "" and settings.storage.location == os.path.join("var/dep", "lena", "ledger.sqlite3")


def test_a_broken_practice_is_reported_with_its_id_and_path_and_the_others_load(deployment):
    with pytest.raises(ConfigError) as raised:
        practice_settings(deployment, "broken")
    assert raised.value.source == f"practice broken ({Path('practices/broken.toml')})"
    assert any(problem.startswith("reminders.soon") for problem in raised.value.problems)
    assert practice_settings(deployment, "lena").practice.name == "Lena Berg Massage"
    with pytest.raises(ConfigError, match="no practices/ghost.toml"):
        practice_settings(deployment, "ghost")
    with pytest.raises(ConfigError, match="lower-case"):
        practice_settings(deployment, "../etc/passwd")


def test_the_deployment_decides_and_the_file_is_not_changed(deployment):
    data = {"storage": {"data_dir": "elsewhere", "schema": "mine"}, "mail": {"transport": "smtp"}}
    merged = with_deployment(data, deployment, "lena")
    assert merged["storage"] == {"data_dir": os.path.join("var/dep", "lena"), "schema": "practice_lena", "url": URL}
    assert data == {"storage": {"data_dir": "elsewhere", "schema": "mine"}, "mail": {"transport": "smtp"}}


def test_a_broken_deployment_file_lists_its_problems(tmp_path):
    path = tmp_path / "deployment.toml"
    path.write_text('[workers]\nlease = "soon"\nqueue_schema = "Bad-Name"\n[deployment]\npracticez = "x"\n')
    with pytest.raises(ConfigError) as raised:
        load_deployment(path)
    text = "\n".join(raised.value.problems)
    assert "workers.lease" in text and "workers.queue_schema" in text and "deployment.practicez" in text
    assert raised.value.source == str(path)


def test_an_unreadable_practices_folder_is_an_error_not_an_empty_deployment(tmp_path):
    path = tmp_path / "deployment.toml"
    path.write_text(f'[deployment]\npractices = "{tmp_path / "missing"}"\n')
    with pytest.raises(ConfigError, match="cannot be read"):
        list_practices(load_deployment(path))


def test_the_example_deployment_file_is_valid():
    deployment = load_deployment(ROOT / "config/deployment.example.toml")
    assert deployment.storage.url.startswith("postgresql://") and deployment.deployment.practices == "practices"


def test_next_due_is_the_next_poll_or_an_earlier_due_action_but_never_at_once():
    now = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
    practice = make_settings(calendar={"poll_interval": "10m"})
    ledger = Ledger(":memory:")

    def planned(number: int, due: datetime, state: ActionState = ActionState.PLANNED) -> None:
        ledger.add_action(Action(id=f"act_{number}", kind=ActionKind.EMAIL, state=state, policy="lifecycle", reason="test",
                                 calendar_id="cal", event_id=f"e{number}", client_email="ana@example.com", client_name="Ana",
                                 happening_key=f"k{number}", due_at=due, created_at=now, updated_at=now, template="reminder"))

    assert next_due(practice, ledger, now, Deployment()) == now + timedelta(minutes=10)
    planned(1, now + timedelta(minutes=4))
    planned(2, now + timedelta(minutes=3), ActionState.DONE)  # done: not waited for
    assert next_due(practice, ledger, now, Deployment()) == now + timedelta(minutes=4)
    planned(3, now - timedelta(minutes=1))  # still due after the tick (waiting on something): not at once
    assert next_due(practice, ledger, now, Deployment()) == now + MIN_WAIT
