"""The PostgreSQL ledger's lock: one holder per schema, released when the holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

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
