"""/metrics, /healthz and /readyz over HTTP (slotguard/run/ops_server.py), after real ticks
of the example practice (an .ics week, record-only payments), against the ledger and the
outbox counted independently; /readyz against a real PostgreSQL server and a closed port."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from slotguard.cli.common import load_settings
from slotguard.config.deployment import Deployment
from slotguard.config.schema import ConfigError
from slotguard.domain.model import OPEN_STATES
from slotguard.run import metrics
from slotguard.run.ops_server import LISTEN_VARIABLE, Health, OpsServer, database_check, parse_listen, start_ops_server
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.cli import ROOT
from tests.support.ops_http import closed_port, get

THURSDAY = datetime.fromisoformat("2026-11-26T12:00:00+01:00")  # the example week's Thursday noon
FRIDAY = datetime.fromisoformat("2026-11-27T09:00:00+01:00")  # Bjørn's fee is due after its review window


def scrape(server: OpsServer) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, from /metrics."""
    status, text = get(server.url + "/metrics")
    assert status == 200
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


@pytest.fixture
def example_practice(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    monkeypatch.chdir(tmp_path)  # the example's paths are relative to the folder it runs in
    return load_settings("config/example.toml")


@pytest.fixture
def served():
    metrics.configure(per_practice=True)
    health = Health(timedelta(minutes=10), lambda: "")
    health.loaded()
    server = OpsServer("127.0.0.1:0", health)
    yield server
    server.stop()


def test_metrics_after_two_ticks_match_the_ledger_and_the_outbox(example_practice, served, tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite")
    engine = build_engine(example_practice, THURSDAY, ledger=ledger)
    reports = []
    for now in (THURSDAY, FRIDAY):
        started = time.monotonic()
        reports.append(engine.tick(now))
        metrics.observe_tick("example", reports[-1], time.monotonic() - started)
        metrics.observe_ledger("example", ledger, now)
    values = scrape(served)

    assert values[("slotguard_ticks_total", (("practice", "example"),))] == 2
    assert values[("slotguard_tick_duration_seconds_count", ())] == 2
    assert values[("slotguard_sync_duration_seconds_count", ())] == 2, "one calendar read per tick"
    # Every email carried out is a file in the outbox: counted there, not from the report.
    mailed = len(list((tmp_path / "var/outbox").glob("*.eml")))
    assert mailed > 0
    assert values[("slotguard_actions_executed_total", (("kind", "email"), ("outcome", "done"), ("practice", "example")))] == mailed
    # Bjørn's no-show fee became a receivable on Friday (record-only).
    assert values[("slotguard_actions_executed_total", (("kind", "charge"), ("outcome", "done"), ("practice", "example")))] == 1
    # The gauges equal the ledger's actions counted here, one by one, by kind and state.
    counted = Counter((action.kind.value, action.state.value) for action in ledger.actions())
    gauges = {(dict(labels)["kind"], dict(labels)["state"]): value for (name, labels), value in values.items() if name == "slotguard_actions"}
    assert {key: value for key, value in gauges.items() if value} == counted
    assert counted[("charge", "done")] == 1
    due = [action.due_at for action in ledger.actions() if action.state in OPEN_STATES and action.due_at <= FRIDAY]
    oldest = (FRIDAY - min(due)).total_seconds() if due else 0.0
    assert values[("slotguard_oldest_due_action_age_seconds", (("practice", "example"),))] == oldest


def test_without_the_practice_label_counts_add_up_over_practices(example_practice, tmp_path):
    registry_of = metrics.configure(per_practice=False)
    ledgers = []
    for name in ("north", "south"):
        ledger = Ledger(tmp_path / f"{name}.sqlite")
        report = build_engine(example_practice, THURSDAY, ledger=ledger).tick(THURSDAY)
        metrics.observe_tick(name, report, 0.01)
        metrics.observe_ledger(name, ledger, THURSDAY)
        ledgers.append(ledger)
    assert registry_of.registry.get_sample_value("slotguard_ticks_total") == 2
    both = sum(len(ledger.actions()) for ledger in ledgers)
    total = sum(sample.value for family in registry_of.registry.collect() if family.name == "slotguard_actions" for sample in family.samples)
    assert total == both > 0
    assert all("practice" not in sample.labels for family in registry_of.registry.collect() for sample in family.samples)


def test_queue_quota_and_failures_are_served(served):
    metrics.set_queue(depth=7, oldest_due_seconds=12.5, lease_age_seconds=30)
    metrics.set_quota("google_project", 420, 10000)
    metrics.count_failure("north", "tick")
    metrics.count_failure("north", "tick")
    values = scrape(served)
    assert values[("slotguard_queue_depth", ())] == 7
    assert values[("slotguard_queue_oldest_due_seconds", ())] == 12.5
    assert values[("slotguard_lease_age_seconds", ())] == 30
    assert values[("slotguard_quota_used", (("quota", "google_project"),))] == 420
    assert values[("slotguard_quota_limit", (("quota", "google_project"),))] == 10000
    assert values[("slotguard_failures_total", (("kind", "tick"), ("practice", "north")))] == 2
    assert get(served.url + "/nothing")[0] == 404


def test_readyz_answers_200_when_postgresql_answers_and_503_with_a_reason_when_it_does_not(pg_url):
    health = Health(timedelta(minutes=10), database_check(pg_url))
    server = OpsServer("127.0.0.1:0", health)
    try:
        status, body = get(server.url + "/readyz")
        assert (status, body) == (503, "the practices are not loaded yet\n")
        health.loaded()
        assert get(server.url + "/readyz") == (200, "ok\n")
        # The same server asked on a port nothing listens on, with a password in the URL.
        health.database = database_check(f"postgresql://slotguard:hunter2secret@127.0.0.1:{closed_port()}/test")
        started = time.monotonic()
        status, body = get(server.url + "/readyz")
        assert status == 503 and time.monotonic() - started < 5
        assert body.startswith("the database postgresql://slotguard:***@127.0.0.1:") and "does not answer" in body
        assert "hunter2secret" not in body and body.count("\n") == 1
        assert get(server.url + "/healthz") == (200, "ok\n"), "a database away is not a reason to restart the process"
    finally:
        server.stop()


@pytest.mark.sqlite_only  # a SQLite file that does not exist yet
def test_readyz_on_a_sqlite_ledger(tmp_path):
    path = tmp_path / "ledger.sqlite"
    health = Health(timedelta(minutes=10), database_check(str(path)))
    health.loaded()
    assert "does not exist yet" in health.ready()
    Ledger(path).close()
    assert health.ready() == ""


def healthz_until(server: OpsServer, status: int, seconds: float = 20.0) -> tuple[int, str]:
    """Ask /healthz until it answers `status` or `seconds` passed (then the last answer): on a
    busy machine a thread may turn, or a lapse be noticed, later than planned."""
    deadline = time.monotonic() + seconds
    while True:
        answer = get(server.url + "/healthz")
        if answer[0] == status or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def test_healthz_goes_503_while_the_loop_is_stuck_and_200_once_it_turns_again():
    health = Health(timedelta(seconds=1), lambda: "")  # stuck: no turn for a second, where a turn comes every 20 ms
    server = OpsServer("127.0.0.1:0", health)
    blocked, stop = threading.Event(), threading.Event()

    def loop() -> None:  # a worker's loop: turns every 20 ms, unless a "tick" blocks it
        while not stop.is_set():
            health.turn()
            while blocked.is_set() and not stop.is_set():
                time.sleep(0.01)
            time.sleep(0.02)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        assert healthz_until(server, 200) == (200, "ok\n")
        blocked.set()
        status, body = healthz_until(server, 503)
        assert status == 503 and "the loop has not turned for" in body and "restart" in body
        assert scrape(server) is not None, "/metrics still answers while the loop is stuck"
        blocked.clear()
        assert healthz_until(server, 200) == (200, "ok\n")
    finally:
        stop.set()
        thread.join()
        server.stop()


def test_listen_addresses():
    assert parse_listen("127.0.0.1:9108") == ("127.0.0.1", 9108)
    assert parse_listen("[::1]:9108") == ("::1", 9108)
    assert parse_listen(":9108") == ("", 9108)
    for wrong in ("9108", "host:", "host:99999", "host:http"):
        with pytest.raises(ValueError, match="host:port"):
            parse_listen(wrong)


def test_a_worker_serves_on_its_deployments_address_or_the_one_its_environment_gives(monkeypatch):
    deployment = Deployment.model_validate({"metrics": {"listen": "", "per_practice": False}})
    monkeypatch.delenv(LISTEN_VARIABLE, raising=False)
    assert start_ops_server(deployment, Health(timedelta(minutes=1), lambda: "")) is None
    assert metrics.current().per_practice is False
    monkeypatch.setenv(LISTEN_VARIABLE, "127.0.0.1:0")  # the systemd unit's per-instance port
    server = start_ops_server(deployment, Health(timedelta(minutes=1), lambda: ""))
    assert server is not None
    try:
        assert get(server.url + "/readyz") == (503, "the practices are not loaded yet\n")
        server.health.loaded()
        assert get(server.url + "/readyz") == (200, "ok\n")
    finally:
        server.stop()


def test_a_worker_told_to_listen_on_a_taken_port_gets_a_configuration_error(monkeypatch):
    monkeypatch.delenv(LISTEN_VARIABLE, raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        deployment = Deployment.model_validate({"metrics": {"listen": f"127.0.0.1:{taken.getsockname()[1]}"}})
        with pytest.raises(ConfigError, match=r"metrics.listen: cannot listen on 127.0.0.1:\d+: Address already in use"):
            start_ops_server(deployment, Health(timedelta(minutes=1), lambda: ""))
