"""`main.py run --metrics-listen` serving /metrics, /healthz and /readyz while the daemon
runs, and `--log-format json` lines: parseable, naming the practice and the action, and
without a secret given in the environment."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter

import pytest

from tests.support.cli import NOW, ROOT, main
from tests.support.ops_http import closed_port, get

TOKEN = "Zq9feedTok3nXy"  # the secret part of a calendar feed's address, as a secret iCal URL has


@pytest.fixture()
def practice(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path


def test_json_log_lines_parse_name_the_practice_and_action_and_hold_no_secret(practice):
    # The feed's file name carries the secret, so it is in every event's reference.
    shutil.copy(practice / "config/sample-week.ics", practice / f"config/feed-{TOKEN}.ics")
    path = practice / "config/example.toml"
    path.write_text(path.read_text().replace('url = "config/sample-week.ics"', f'url = "config/feed-{TOKEN}.ics"'))
    result = main(practice, "-v", "run", "--log-format", "json", "--once", "--now", NOW, env={"ICS_FEED_TOKEN": TOKEN})
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert len(lines) > 10
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert {line["practice"] for line in lines} == {"example"}, "main.py run names its practice by its file: example.toml"
    done = [line for line in lines if line["message"].startswith("done action=")]
    assert len(done) >= 2
    for line in done:
        assert line["message"].split()[1] == f"action={line['action']}"
    assert TOKEN not in result.stderr
    assert "feed-[redacted].ics" in result.stderr, "the secret was in the lines, and was taken out"


def test_text_log_lines_stay_key_value_with_the_practice_at_the_end(practice):
    result = main(practice, "-v", "run", "--once", "--now", NOW)
    done = [line for line in result.stderr.splitlines() if " done action=" in line]
    assert done and all(" level=info logger=slotguard.engine done action=" in line and line.endswith(" practice=example") for line in done)


def test_the_daemon_serves_metrics_matching_its_ledger_and_answers_health_probes(practice):
    port = closed_port()
    base = f"http://127.0.0.1:{port}"
    daemon = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "run", "--metrics-listen", f"127.0.0.1:{port}"],
                              cwd=practice, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        text = ""
        deadline = time.monotonic() + 60
        while "slotguard_ticks_total{" not in text and time.monotonic() < deadline:
            time.sleep(0.3)
            try:
                text = get(base + "/metrics")[1]
            except OSError:
                continue  # not listening yet
        assert 'slotguard_ticks_total{practice="example"} 1.0' in text, text[:2000]
        assert get(base + "/healthz") == (200, "ok\n")
        assert get(base + "/readyz") == (200, "ok\n")
        ledger = json.loads(main(practice, "ledger", "--json").stdout)["actions"]
        counted = Counter((action["kind"], action["state"]) for action in ledger)
        served = Counter()
        for line in text.splitlines():
            if line.startswith("slotguard_actions{"):
                labels = dict(part.split("=") for part in line[len("slotguard_actions{"):line.index("}")].split(","))
                served[(labels["kind"].strip('"'), labels["state"].strip('"'))] = int(float(line.rsplit(" ", 1)[1]))
        assert +served == counted and counted
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    assert "stopped cleanly" in out


def test_an_address_the_daemon_cannot_listen_on_is_a_configuration_error_not_a_traceback(practice):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = main(practice, "run", "--metrics-listen", f"127.0.0.1:{port}", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"--metrics-listen: cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    result = main(practice, "run", "--metrics-listen", "9108", check=False)
    assert result.returncode == 2 and '--metrics-listen: metrics listen address \'9108\' is not "host:port"' in result.stderr
