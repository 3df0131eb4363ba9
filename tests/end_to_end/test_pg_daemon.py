"""`main.py run` on a PostgreSQL ledger (storage.url): one Slotguard per ledger schema, by the
schema's lock (slotguard/store/pg_lock.py) instead of the LEDGER.lock file, a second one
refused with a message naming the holder, the password never shown; the data folder's own
lock is kept. The counterpart of tests/end_to_end/test_one_daemon.py's LEDGER.lock test."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import psycopg

from slotguard.cli.main import FENCE_LOST_EXIT
from slotguard.cli.main import main as cli_main
from slotguard.run.engine import Engine
from slotguard.store.backend import exists, place
from slotguard.store.ledger import Ledger
from tests.end_to_end.test_one_daemon import feed, practice_folder, start_daemon, stop, wait_for
from tests.integration.test_ledger_postgres import with_password
from tests.integration.test_worker_fence import lock_backend
from tests.support.cli import NOW, ROOT, main


def test_a_second_slotguard_on_the_same_postgresql_ledger_is_refused_naming_the_holder(tmp_path, pg_url, pg_schema):
    url = with_password(pg_url, "s3cret-word")  # trust auth lets it in; no message may show it
    folder = practice_folder(tmp_path, poll="1h")
    (folder / "calendar.ics").write_text(feed(datetime.now(UTC).replace(microsecond=0) + timedelta(days=3), "booking-1"))
    example = (folder / "config/example.toml").read_text()
    storage = f'[storage]\ndata_dir = "var"\nurl = "{url}"\nschema = "{pg_schema}"\n'
    (folder / "config/example.toml").write_text(example.replace('[storage]\ndata_dir = "var"\n', storage))
    (folder / "config/other.toml").write_text(example.replace('[storage]\ndata_dir = "var"\n', storage.replace('"var"', '"other-var"')))
    daemon = start_daemon(folder, tmp_path / "daemon.log")
    try:
        # It takes the data folder's lock, then the schema's, then opens (makes) the ledger.
        wait_for(lambda: exists(place(pg_url, pg_schema)) or daemon.poll() is not None, 60, "the daemon to make its ledger")
        assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()
        shown = f"postgresql://postgres:***@127.0.0.1:5432/test (schema {pg_schema})" if "127.0.0.1:5432/test" in pg_url else ""
        for command in (["run", "--once"], ["charge-now", "act_x"], ["retry", "--all-failed", "--yes"]):
            same_folder = main(folder, *command, check=False)
            assert same_folder.returncode == 1 and same_folder.stderr.strip() == f"error: another Slotguard is running on var (pid {daemon.pid}); stop it first"
            other = main(folder, *command, "--config", "config/other.toml", check=False)
            assert other.returncode == 1, (command, other.stderr)
            assert "another Slotguard is running on the ledger" in other.stderr and "server pid" in other.stderr and "(slotguard" in other.stderr
            assert "s3cret-word" not in other.stderr and (not shown or shown in other.stderr), other.stderr
        assert not list(folder.glob("var/ledger.sqlite3*")), "no SQLite file and no LEDGER.lock beside it"
        code, out = stop(daemon)
        assert code == 0 and "Slotguard stopped cleanly." in out
        main(folder, "run", "--once", "--config", "config/other.toml")  # the daemon is gone: the other config may run
        status = main(folder, "status", "--config", "config/other.toml")
        assert "s3cret-word" not in status.stdout + status.stderr
        ledger = Ledger(pg_url, pg_schema)
        assert [row["event_id"].split("_")[0] for row in ledger.db.execute("SELECT event_id FROM appointments")] == ["booking-1"]
        ledger.close()
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()


def test_a_daemon_whose_ledger_lock_is_cut_exits_non_zero_and_another_may_run(tmp_path, pg_url, pg_schema):
    folder = practice_folder(tmp_path, poll="1h")
    (folder / "calendar.ics").write_text(feed(datetime.now(UTC).replace(microsecond=0) + timedelta(days=3), "booking-1"))
    example = (folder / "config/example.toml").read_text()
    storage = f'[storage]\ndata_dir = "var"\nurl = "{pg_url}"\nschema = "{pg_schema}"\n'
    (folder / "config/example.toml").write_text(example.replace('[storage]\ndata_dir = "var"\n', storage))
    (folder / "config/other.toml").write_text(example.replace('[storage]\ndata_dir = "var"\n', storage.replace('"var"', '"other-var"')))
    log = tmp_path / "daemon.log"
    daemon = start_daemon(folder, log)
    try:
        wait_for(lambda: exists(place(pg_url, pg_schema)) or daemon.poll() is not None, 60, "the daemon to make its ledger")
        assert daemon.poll() is None, log.read_text()
        with psycopg.connect(pg_url, autocommit=True) as conn:  # cut the lock's connection, as a server restart would
            conn.execute("SELECT pg_terminate_backend(%s)", (lock_backend(pg_url, pg_schema),))
        out, _ = daemon.communicate(timeout=30)  # at its next check (between ticks: FENCE_CHECK_SECONDS), not in an hour
        text = log.read_text()
        assert daemon.returncode == FENCE_LOST_EXIT, (daemon.returncode, text)
        assert "was lost" in text and "The service manager restarts it" in text and "Slotguard stopped cleanly" not in out, text
        main(folder, "run", "--once", "--config", "config/other.toml")  # the lock is free: another Slotguard may run
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()


def test_run_once_whose_ledger_lock_is_cut_stops_after_the_current_action(tmp_path, monkeypatch, pg_url, pg_schema, capsys):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    path = tmp_path / "config/example.toml"
    path.write_text(path.read_text().replace('[storage]\ndata_dir = "var"\n', f'[storage]\ndata_dir = "var"\nurl = "{pg_url}"\nschema = "{pg_schema}"\n'))
    monkeypatch.chdir(tmp_path)
    carried_out: list[str] = []
    original = Engine.execute

    def execute(engine, action, now, report):
        if not carried_out:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (lock_backend(pg_url, pg_schema),))
        carried_out.append(action.id)
        return original(engine, action, now, report)

    monkeypatch.setattr(Engine, "execute", execute)
    assert cli_main(["run", "--once", "--now", NOW]) == FENCE_LOST_EXIT
    assert len(carried_out) == 1, f"actions carried out after the lock was lost: {carried_out}"
    assert "the lock on the ledger" in capsys.readouterr().err
    assert len(list((tmp_path / "var/outbox").glob("*.eml"))) == 1
