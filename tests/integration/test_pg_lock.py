"""The PostgreSQL ledger's lock: one holder per schema, released when the holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg

from slotguard.store.pg_lock import SchemaLock, lock_key


def test_one_holder_per_schema_and_others_free(pg_url, pg_schema):
    first, second, other = SchemaLock(pg_url, pg_schema), SchemaLock(pg_url, pg_schema), SchemaLock(pg_url, pg_schema + "_x")
    try:
        assert first.try_acquire()
        assert not second.try_acquire()
        assert "slotguard" in second.holder()
        assert other.try_acquire()  # another practice's ledger is not blocked
        first.release()
        assert second.try_acquire()
    finally:
        for lock in (first, second, other):
            lock.release()


def test_a_killed_holder_releases_the_lock(pg_url, pg_schema):
    code = (
        "import sys, time; from slotguard.store.pg_lock import SchemaLock\n"
        f"lock = SchemaLock({pg_url!r}, {pg_schema!r}); assert lock.try_acquire(); print('held', flush=True); time.sleep(60)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        waiting = SchemaLock(pg_url, pg_schema)
        assert not waiting.try_acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        deadline = time.monotonic() + 10
        while not waiting.try_acquire():
            assert time.monotonic() < deadline, "the lock of a killed holder was not released"
            time.sleep(0.1)
        waiting.release()
    finally:
        holder.kill()
        holder.wait()


def test_keys_differ_by_schema_and_are_stable():
    assert lock_key("practice_a") == lock_key("practice_a")
    assert lock_key("practice_a") != lock_key("practice_b")
    assert -(2**63) <= lock_key("practice_a") < 2**63


def terminate(url: str, pid: int | None) -> None:
    """Cut a session from the server's side, as a restart or an idle cut would."""
    assert pid is not None
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)


def test_a_lock_whose_connection_is_cut_says_so_and_is_free_for_another(pg_url, pg_schema):
    lock, other = SchemaLock(pg_url, pg_schema), SchemaLock(pg_url, pg_schema)
    try:
        assert not lock.held() and lock.pid is None
        assert lock.try_acquire() and lock.held()
        conn = lock._conn
        assert conn is not None
        assert conn.execute("SHOW idle_session_timeout").fetchone() == ("0",), "an idle holder is never cut by the server"
        parameters = conn.info.get_parameters()
        assert (parameters["keepalives"], parameters["keepalives_idle"], parameters["keepalives_interval"], parameters["keepalives_count"]) == ("1", "30", "10", "3")
        terminate(pg_url, lock.pid)
        deadline = time.monotonic() + 10
        while lock.held():
            assert time.monotonic() < deadline, "held() still True after the lock's connection was cut"
            time.sleep(0.1)
        assert not lock.held(), "it stays lost (never raises)"
        assert other.try_acquire(), "the server freed the lock"
    finally:
        lock.release()
        other.release()
