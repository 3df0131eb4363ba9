"""The deployment's work queue on a real PostgreSQL server (slotguard/store/work_queue.py):
two workers claiming at once get different practices, a lease that runs out hands the
practice to another worker, a wake makes a practice due (and is not lost during a tick),
removed practices leave the queue, a failing practice backs off without holding up others."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from slotguard.run.worker import Heartbeat
from slotguard.store import work_queue as queue
from slotguard.store.pg import connect

T0 = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
LEASE = timedelta(minutes=2)


@pytest.fixture
def conn(pg_url, pg_schema):
    with connect(pg_url) as connection:
        queue.ensure_tables(connection, pg_schema)
        yield connection


def row(conn, schema, practice):
    return {r["practice"]: r for r in queue.rows(conn, schema)}[practice]


def run_out(conn, schema, practice):
    """The lease on `practice` runs out now (leases are on the server's clock, not a pretend one)."""
    conn.execute(f'UPDATE "{schema}".work_queue SET lease_until = clock_timestamp() - interval \'1 second\' WHERE practice = %s', (practice,))


def server_now(conn):
    return conn.execute("SELECT clock_timestamp()").fetchone()[0]


def test_two_connections_claiming_at_once_get_different_practices(pg_url, pg_schema, conn):
    queue.sync_practices(conn, ["a", "b", "c"], T0, pg_schema)
    other = connect(pg_url)
    other.execute("SET lock_timeout = '3s'")  # without SKIP LOCKED the claim below would wait, then fail
    try:
        # The first claimer holds its row lock (transaction open) while the second claims:
        # SKIP LOCKED gives the second the next practice instead of waiting or doubling.
        with conn.transaction():
            first = conn.execute(
                f'SELECT practice FROM "{pg_schema}".work_queue WHERE due_at <= %s ORDER BY due_at, practice LIMIT 1 FOR UPDATE SKIP LOCKED', (T0,),
            ).fetchone()
            assert first == ("a",)
            second = queue.claim(other, "w2", LEASE, T0, pg_schema)
            assert second is not None and second.practice == "b"
        claims: dict[str, str] = {}
        barrier = threading.Barrier(2)

        def take(name, connection):
            barrier.wait()
            claimed = queue.claim(connection, name, LEASE, T0, pg_schema)
            claims[name] = claimed.practice if claimed else ""

        threads = [threading.Thread(target=take, args=(name, c)) for name, c in (("w1", conn), ("w3", other))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(claims.values()) == ["a", "c"], claims
        assert queue.claim(conn, "w4", LEASE, T0, pg_schema) is None, "every practice is held"
    finally:
        other.close()


def test_claims_go_earliest_due_first_and_release_sets_the_next_time(conn, pg_schema):
    queue.sync_practices(conn, ["late", "early"], T0, pg_schema)
    conn.execute(f'UPDATE "{pg_schema}".work_queue SET due_at = %s WHERE practice = %s', (T0 - timedelta(minutes=5), "early"))
    before = server_now(conn)
    claimed = queue.claim(conn, "w1", LEASE, T0, pg_schema)
    assert claimed is not None and claimed.practice == "early"
    assert before + LEASE <= claimed.lease_until <= server_now(conn) + LEASE, "the lease runs on the server's clock"
    assert queue.release(conn, "early", "w1", T0 + timedelta(minutes=2), now=T0, schema=pg_schema)
    held = row(conn, pg_schema, "early")
    assert held["due_at"] == T0 + timedelta(minutes=2) and held["lease_owner"] is None and held["last_tick_at"] == T0
    assert not queue.release(conn, "early", "w1", T0, schema=pg_schema), "released twice: the second is refused"
    assert queue.claim(conn, "w1", LEASE, T0, pg_schema).practice == "late"
    assert queue.claim(conn, "w1", LEASE, T0, pg_schema) is None
    # w1's lease on "late" runs out (it was never released: a dead worker): "late", due
    # earlier, is claimed again before "early".
    run_out(conn, pg_schema, "late")
    assert queue.claim(conn, "w2", LEASE, T0 + timedelta(minutes=2), pg_schema).practice == "late"
    assert queue.claim(conn, "w2", LEASE, T0 + timedelta(minutes=2), pg_schema).practice == "early"


def test_an_expired_lease_hands_the_practice_to_another_worker(conn, pg_schema):
    lease = timedelta(seconds=1)
    queue.sync_practices(conn, ["p"], T0, pg_schema)
    assert queue.claim(conn, "dead", lease, T0, pg_schema).practice == "p"
    assert queue.claim(conn, "alive", lease, T0, pg_schema) is None, "the lease still holds"
    time.sleep(0.6)
    assert queue.renew(conn, "p", "dead", lease, pg_schema)
    time.sleep(0.6)
    assert queue.claim(conn, "alive", lease, T0, pg_schema) is None, "renewed: past the first lease, it still holds"
    time.sleep(0.6)
    taken = queue.claim(conn, "alive", LEASE, T0, pg_schema)
    assert taken is not None and taken.practice == "p"
    assert not queue.renew(conn, "p", "dead", lease, pg_schema), "the first worker lost it"
    assert not queue.release(conn, "p", "dead", T0, schema=pg_schema), "a late release of the first worker changes nothing"
    assert row(conn, pg_schema, "p")["lease_owner"] == "alive"
    time.sleep(0.3)
    assert 0.3 <= queue.stats(conn, T0 + timedelta(days=1), pg_schema).lease_age_seconds < 5, "by the server's clock, whatever the caller's"


def test_a_claimer_whose_clock_runs_fast_does_not_take_a_live_lease(conn, pg_schema):
    queue.sync_practices(conn, ["p"], T0, pg_schema)
    assert queue.claim(conn, "w1", LEASE, T0, pg_schema) is not None
    assert queue.claim(conn, "fast", LEASE, T0 + timedelta(minutes=10), pg_schema) is None, "w1's lease runs on the server's clock"
    assert queue.stats(conn, T0 + timedelta(minutes=10), pg_schema).depth == 0
    assert row(conn, pg_schema, "p")["lease_owner"] == "w1"
    assert queue.renew(conn, "p", "w1", LEASE, pg_schema)


def test_a_busy_give_back_keeps_the_failure_count(conn, pg_schema):
    queue.sync_practices(conn, ["p"], T0, pg_schema)
    now = T0
    for _ in range(2):
        queue.claim(conn, "w", LEASE, now, pg_schema)
        queue.release(conn, "p", "w", now, "the tick failed: boom", now=now, schema=pg_schema)
        now = row(conn, pg_schema, "p")["due_at"]
    assert row(conn, pg_schema, "p")["consecutive_failures"] == 2
    queue.claim(conn, "w", LEASE, now, pg_schema)
    # Another process held the practice's fence: the worker gives it back without ticking it.
    assert queue.release(conn, "p", "w", now + timedelta(seconds=1), now=now, busy=True, schema=pg_schema)
    given_back = row(conn, pg_schema, "p")
    assert (given_back["consecutive_failures"], given_back["last_error"]) == (2, "the tick failed: boom"), "nothing was tried: nothing is cleared"
    assert given_back["due_at"] == now + timedelta(seconds=1) and given_back["lease_owner"] is None and given_back["last_tick_at"] == T0 + timedelta(seconds=30)


def test_wake_makes_a_practice_due_now_and_a_wake_during_a_tick_is_kept(conn, pg_schema):
    queue.sync_practices(conn, ["p", "q"], T0, pg_schema)
    for practice in ("p", "q"):
        queue.claim(conn, "w", LEASE, T0, pg_schema)
        queue.release(conn, practice, "w", T0 + timedelta(minutes=30), now=T0, schema=pg_schema)
    assert queue.claim(conn, "w", LEASE, T0 + timedelta(minutes=1), pg_schema) is None
    queue.wake(conn, "p", "push calendar=primary", now=T0 + timedelta(minutes=1), schema=pg_schema)
    woken = queue.claim(conn, "w", LEASE, T0 + timedelta(minutes=1), pg_schema)
    assert woken is not None and woken.practice == "p" and woken.wake_reason == "push calendar=primary"
    # A push arrives while p is being ticked: the release makes it due at once (WAKE_FLOOR
    # after the tick ended), not in 30 minutes.
    queue.wake(conn, "p", "push again", now=T0 + timedelta(minutes=2), schema=pg_schema)
    queue.release(conn, "p", "w", T0 + timedelta(minutes=32), now=T0 + timedelta(minutes=2), schema=pg_schema)
    assert row(conn, pg_schema, "p")["due_at"] == T0 + timedelta(minutes=2) + queue.WAKE_FLOOR
    assert queue.claim(conn, "w", LEASE, T0 + timedelta(minutes=2), pg_schema) is None
    again = queue.claim(conn, "w", LEASE, T0 + timedelta(minutes=2) + queue.WAKE_FLOOR, pg_schema)
    assert again.practice == "p" and again.wake_reason == "push again"
    queue.release(conn, "p", "w", T0 + timedelta(minutes=32), now=T0 + timedelta(minutes=2), schema=pg_schema)
    assert row(conn, pg_schema, "p")["due_at"] == T0 + timedelta(minutes=32) and row(conn, pg_schema, "p")["wake_reason"] is None
    queue.wake(conn, "unknown", "push", schema=pg_schema)  # ignored, no error
    assert sorted(r["practice"] for r in queue.rows(conn, pg_schema)) == ["p", "q"]


def test_a_storm_of_wakes_never_ticks_a_practice_sooner_than_the_floor(conn, pg_schema):
    floor = queue.WAKE_FLOOR
    assert timedelta(seconds=1) <= floor <= timedelta(seconds=30), "push latency stays low"
    queue.sync_practices(conn, ["p"], T0, pg_schema)
    queue.claim(conn, "w", LEASE, T0, pg_schema)
    queue.release(conn, "p", "w", T0 + timedelta(minutes=30), now=T0, schema=pg_schema)  # its tick ended at T0
    ticks, now = [], T0
    while now < T0 + timedelta(minutes=1):  # a (replayed) push every half second for a minute
        now += timedelta(seconds=0.5)
        queue.wake(conn, "p", "push replayed", now=now, schema=pg_schema)
        claimed = queue.claim(conn, "w", LEASE, now, pg_schema)
        if claimed is not None:
            ticks.append(now)
            queue.wake(conn, "p", "push during the tick", now=now, schema=pg_schema)
            queue.release(conn, "p", "w", now + timedelta(minutes=30), now=now + timedelta(seconds=0.5), schema=pg_schema)
            now += timedelta(seconds=0.5)
    assert ticks[0] == T0 + floor, "a wake after a tick waits for the floor"
    gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False)]
    assert gaps and min(gaps) >= floor + timedelta(seconds=0.5), gaps
    assert len(ticks) <= 60 / floor.total_seconds() + 1


def test_removed_practices_leave_the_queue_and_new_ones_are_due_at_once(conn, pg_schema):
    assert queue.sync_practices(conn, ["a", "b"], T0, pg_schema) == (["a", "b"], [])
    queue.claim(conn, "w", LEASE, T0, pg_schema)  # a is held by w
    later = T0 + timedelta(minutes=1)
    assert queue.sync_practices(conn, ["b", "c"], later, pg_schema) == (["c"], ["a"])
    assert queue.sync_practices(conn, ["b", "c"], later, pg_schema) == ([], [])
    assert not queue.release(conn, "a", "w", later, schema=pg_schema), "the holder of a removed practice finds it gone"
    assert [r["practice"] for r in queue.rows(conn, pg_schema)] == ["b", "c"]
    assert row(conn, pg_schema, "c")["due_at"] == later


def test_a_failing_practice_backs_off_capped_and_never_blocks_the_others(conn, pg_schema):
    queue.sync_practices(conn, ["broken", "fine"], T0, pg_schema)
    now = T0
    waits = []
    for _ in range(9):
        claimed = queue.claim(conn, "w", LEASE, now, pg_schema)
        assert claimed is not None and claimed.practice == "broken"
        queue.release(conn, "broken", "w", now, "configuration: bad key", now=now, backoff_max=timedelta(minutes=10), schema=pg_schema)
        due = row(conn, pg_schema, "broken")["due_at"]
        waits.append(int((due - now).total_seconds()))
        # while it waits, the other practice is claimed, every time
        fine = queue.claim(conn, "w", LEASE, now, pg_schema)
        assert fine is not None and fine.practice == "fine"
        queue.release(conn, "fine", "w", due, now=now, schema=pg_schema)
        now = due
    assert waits == [30, 60, 120, 240, 480, 600, 600, 600, 600]
    broken = row(conn, pg_schema, "broken")
    assert broken["consecutive_failures"] == 9 and broken["last_error"] == "configuration: bad key"
    assert queue.stats(conn, now, pg_schema).failing == 1
    queue.wake(conn, "broken", "push", now=now - timedelta(minutes=5), schema=pg_schema)
    assert row(conn, pg_schema, "broken")["due_at"] == now, "a wake does not cut a failing practice's wait"
    claimed = queue.claim(conn, "w", LEASE, now, pg_schema)
    queue.release(conn, claimed.practice, "w", now + timedelta(minutes=2), now=now, schema=pg_schema)
    assert row(conn, pg_schema, "broken")["consecutive_failures"] == 0 and row(conn, pg_schema, "broken")["last_error"] is None


def test_stats_for_metrics(conn, pg_schema):
    queue.sync_practices(conn, ["a", "b", "c"], T0, pg_schema)
    queue.claim(conn, "w", LEASE, T0 + timedelta(seconds=10), pg_schema)
    stats = queue.stats(conn, T0 + timedelta(seconds=40), pg_schema)
    assert (stats.depth, stats.oldest_due_seconds, stats.failing) == (2, 40, 0)
    assert 0 <= stats.lease_age_seconds < 5, "the lease's age by the server's clock"
    empty = queue.stats(conn, T0 - timedelta(minutes=1), pg_schema)
    assert (empty.depth, empty.oldest_due_seconds) == (0, 0)


def test_ensure_tables_twice_and_bad_schema_names(conn, pg_schema):
    queue.ensure_tables(conn, pg_schema)
    with pytest.raises(ValueError):
        queue.rows(conn, 'x"; DROP TABLE y; --')


def test_the_heartbeat_keeps_a_long_tick_claimed_and_stops_renewing_when_stopped(pg_url, conn, pg_schema):
    # Leases of seconds, not fractions: the heartbeat (every lease/3) first opens a connection
    # of its own, and on a busy machine neither that nor a wake is prompt.
    lease = timedelta(seconds=2)
    queue.sync_practices(conn, ["slow"], datetime.now(UTC), pg_schema)
    claimed = queue.claim(conn, "busy", lease, datetime.now(UTC), pg_schema)
    assert claimed is not None
    first_expiry = row(conn, pg_schema, "slow")["lease_until"]
    beat = Heartbeat(pg_url, pg_schema, "slow", "busy", lease)
    try:
        while datetime.now(UTC) < first_expiry + lease:  # two leases long: without renewals another worker would have it
            time.sleep(0.25)
            assert queue.claim(conn, "other", lease, datetime.now(UTC), pg_schema) is None
    finally:
        beat.stop()
    assert not beat.lost
    deadline = time.monotonic() + lease.total_seconds() + 15
    taken = None
    while taken is None and time.monotonic() < deadline:  # the last renewal's lease runs out: nothing renews it
        time.sleep(0.1)
        taken = queue.claim(conn, "other", lease, datetime.now(UTC), pg_schema)
    assert taken is not None and taken.practice == "slow", "no renewal after stop(): the lease ran out"
