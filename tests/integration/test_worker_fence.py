"""A worker whose fence goes while it ticks (issue 16): the connection holding the practice's
ledger lock is cut (pg_terminate_backend, as a server restart or an idle cut would), the server
frees the lock; the worker carries out no further action, records the lost lock as the
practice's failure and runs nothing more in that tick. Another process may then take the
fence, and the next worker finishes the practice's actions: each email goes out once."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

from slotguard.config.deployment import load_deployment
from slotguard.run import worker as worker_module
from slotguard.run.engine import Engine
from slotguard.run.practices import practice_settings
from slotguard.run.worker import Worker
from slotguard.store.daemon_lock import exclusive
from slotguard.store.pg_lock import lock_key
from tests.end_to_end.test_workers import FIRST_TICK, Deployment
from tests.support.cli import NOW


def lock_backend(url: str, schema: str) -> int:
    """The server process holding the advisory lock of the ledger schema `schema`."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND ((classid::bigint << 32) | objid::bigint) = (%s::bigint & x'FFFFFFFFFFFFFFFF'::bigint)",
            (lock_key(schema),),
        ).fetchone()
    assert row is not None, "nobody holds the ledger's lock"
    return row[0]


def test_a_worker_whose_ledger_lock_is_cut_stops_before_the_next_action(tmp_path, monkeypatch, pg_url, pg_schema):
    made = Deployment(tmp_path, pg_url, pg_schema, "postgresql", good=1)
    [practice] = made.good
    (tmp_path / "practices" / f"{made.broken}.toml").unlink()
    (tmp_path / "practices" / f"{made.nocal}.toml").unlink()
    monkeypatch.chdir(tmp_path)
    deployment = load_deployment("deployment.toml")
    schema = f"practice_{practice}"
    carried_out: list[str] = []
    original = Engine.execute

    def execute(engine, action, now, report):
        if not carried_out:  # the first action: the fence's connection is cut while it is carried out
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (lock_backend(pg_url, schema),))
        carried_out.append(action.id)
        return original(engine, action, now, report)

    monkeypatch.setattr(Engine, "execute", execute)
    written_back: list[int] = []
    write_back = Engine.write_back
    monkeypatch.setattr(Engine, "write_back", lambda engine, report, now: written_back.append(1) or write_back(engine, report, now))
    now = datetime.fromisoformat(NOW)
    try:
        worker = Worker(deployment, "w1", until_idle=True, clock=lambda: now)
        worker.run()
        assert len(carried_out) == 1, f"actions carried out after the lock was lost: {carried_out}"
        assert written_back == [], "no step of the tick after the lost lock (the calendar write-back)"
        assert worker.failures == 1 and worker.ticks == 0
        row = made.queue()[practice]
        assert row["consecutive_failures"] == 1 and row["last_error"].startswith("the practice's lock was lost: "), row
        assert row["lease_owner"] is None
        assert len(made.outbox(practice)) == 1
        # The server freed the lock: another process may take the fence now.
        settings = practice_settings(deployment, practice)
        with exclusive(settings.storage.data_dir, settings.storage.location, settings.storage.schema_name):
            pass
        # The next worker (once the backoff has passed) finishes the practice: each email once.
        monkeypatch.setattr(Engine, "execute", original)
        later = now + timedelta(minutes=5)
        Worker(deployment, "w2", until_idle=True, clock=lambda: later).run()
        assert made.recipients(practice) == FIRST_TICK
        assert made.queue()[practice]["consecutive_failures"] == 0
    finally:
        made.cleanup()


def test_a_worker_whose_lease_is_lost_runs_nothing_of_the_tick(tmp_path, monkeypatch, pg_url, pg_schema):
    made = Deployment(tmp_path, pg_url, pg_schema, "postgresql", good=1)
    [practice] = made.good
    (tmp_path / "practices" / f"{made.broken}.toml").unlink()
    (tmp_path / "practices" / f"{made.nocal}.toml").unlink()
    monkeypatch.chdir(tmp_path)

    class LostHeartbeat:  # the heartbeat found the lease taken (a renewal refused)
        lost = True

        def __init__(self, *args):
            pass

        def stop(self) -> None:
            pass

    monkeypatch.setattr(worker_module, "Heartbeat", LostHeartbeat)
    recovered: list[int] = []
    monkeypatch.setattr(Engine, "recover", lambda engine, now: recovered.append(1) or 0)
    try:
        worker = Worker(load_deployment("deployment.toml"), "w1", until_idle=True, clock=lambda: datetime.fromisoformat(NOW))
        worker.run()
        assert recovered == [] and made.outbox(practice) == [], "nothing of the tick ran"
        assert worker.failures == 1
        assert "the practice's lock was lost: its lease" in made.queue()[practice]["last_error"]
    finally:
        made.cleanup()
