"""The tables workers share are made safely by every worker starting at once."""

from __future__ import annotations

import threading

import psycopg

from slotguard.store import push_channels, shared_limits, work_queue
from tests.support.pg import fresh_schema_name


def test_workers_starting_together_make_the_shared_schema_and_tables_once(pg_url):
    schema = fresh_schema_name("shared")
    makers = [work_queue.ensure_tables, shared_limits.ensure_tables, push_channels.ensure_tables]
    failures: list[BaseException] = []
    ready = threading.Barrier(len(makers) * 2)

    def start(make) -> None:
        try:
            with psycopg.connect(pg_url, autocommit=True) as conn:
                ready.wait(timeout=30)
                make(conn, schema)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            failures.append(error)

    threads = [threading.Thread(target=start, args=(make,)) for make in makers * 2]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert failures == []
        with psycopg.connect(pg_url) as conn:
            tables = {row[0] for row in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))}
        assert tables == {"work_queue", "rate_limits", "push_channels"}
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
