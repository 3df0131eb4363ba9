"""A deployment of several practices worked by `main.py worker` processes sharing a real
PostgreSQL work queue: every practice ticked once per due time, each practice's outbox holds
its expected emails exactly once, a practice with a broken config or an unreadable calendar
does not stop the others and is reported; `--deployment FILE --practice ID` makes the other
commands work on one practice; SIGTERM stops a worker cleanly; a worker killed mid-action
leaves the practice to the next one, which finishes the action."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from slotguard.store import work_queue
from slotguard.store.daemon_lock import exclusive
from tests.support.cli import NOW, ROOT, main

DAY_AFTER = "2026-11-27T09:00:00+01:00"  # Friday morning: Bjørn's fee is out of its review window
# As tests/end_to_end/test_main.py: Lena gets her digest and her monthly report of October.
FIRST_TICK = ["clara@example.com", "frank@example.com", "greta@example.com", "lena@example.com", "lena@example.com"]
LEDGERS = ["sqlite", "postgresql"]


class Deployment:
    """A deployment in a scratch folder: practices named GOOD (the example practice, each a copy),
    `broken_X` (an unknown key) and `nocal_X` (its calendar file is missing)."""

    def __init__(self, folder: Path, url: str, schema: str, ledgers: str, good: int = 4):
        self.folder, self.url, self.schema, self.ledgers = folder, url, schema, ledgers
        tag = uuid.uuid4().hex[:8]  # practice ids (and so lock keys, schemas) of their own beside other tests on the server
        self.good = [f"clinic{number}_{tag}" for number in range(good)]
        self.broken, self.nocal = f"broken_{tag}", f"nocal_{tag}"
        (folder / "config").mkdir()
        (folder / "config/sample-week.ics").write_bytes((ROOT / "config/sample-week.ics").read_bytes())
        practices = folder / "practices"
        practices.mkdir()
        example = (ROOT / "config/example.toml").read_text()
        own = example.replace('outbox_dir = "var/outbox"\n', "").replace('data_dir = "var"\n', "")
        assert own != example
        for practice in self.good:
            (practices / f"{practice}.toml").write_text(own)
        (practices / f"{self.broken}.toml").write_text(own.replace("[reminders]", "[reminders]\nsooon = 1"))
        (practices / f"{self.nocal}.toml").write_text(own.replace("config/sample-week.ics", "config/gone.ics"))
        (folder / "deployment.toml").write_text(
            f'[deployment]\npractices = "practices"\ndata_dir = "var/deployment"\nledgers = "{ledgers}"\n'
            f'[storage]\nurl = "{url}"\n[workers]\nqueue_schema = "{schema}"\nlease = "1m"\nidle_sleep = "1s"\n'
            '[metrics]\nlisten = ""\n'  # several workers on this machine: one port each would be needed (the SIGTERM test serves one)
        )

    @property
    def all(self) -> list[str]:
        return [*self.good, self.broken, self.nocal]

    def outbox(self, practice: str) -> list[email.message.EmailMessage]:
        paths = sorted((self.folder / "var/deployment" / practice / "outbox").glob("*.eml"))
        return [email.message_from_bytes(path.read_bytes(), policy=email.policy.default) for path in paths]  # type: ignore[misc]

    def recipients(self, practice: str) -> list[str]:
        return sorted(message["To"].addresses[0].addr_spec for message in self.outbox(practice))

    def workers(self, count: int, now: str, *, env: dict | None = None) -> list[subprocess.CompletedProcess]:
        """`count` workers started together with --until-idle at `now`; their results."""
        running = [
            subprocess.Popen([sys.executable, str(ROOT / "main.py"), "-v", "worker", "--deployment", "deployment.toml", "--until-idle",
                              "--now", now, "--name", f"w{number}"], cwd=self.folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
            for number in range(count)
        ]
        results = []
        for process in running:
            out, err = process.communicate(timeout=240)
            results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
        return results

    def queue(self) -> dict[str, dict]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            work_queue.ensure_tables(conn, self.schema)  # a worker just started may not have made it yet
            return {row["practice"]: row for row in work_queue.rows(conn, self.schema)}

    def cleanup(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            for practice in self.all:  # the practices' ledger schemas, with PostgreSQL ledgers; ours only
                conn.execute(f'DROP SCHEMA IF EXISTS "practice_{practice}" CASCADE')


@pytest.fixture(params=LEDGERS)
def deployment(request, tmp_path, pg_url, pg_schema):
    made = Deployment(tmp_path, pg_url, pg_schema, request.param)
    yield made
    made.cleanup()


def ticks(results) -> Counter:
    """How often each practice was ticked, over the workers' logs."""
    return Counter(re.findall(r"logger=slotguard.worker tick practice=(\S+)", "".join(result.stderr for result in results)))


def test_two_workers_tick_every_practice_once_and_mail_each_email_once(deployment):
    first = deployment.workers(2, NOW)
    assert [result.returncode for result in first] == [0, 0], [result.stderr[-3000:] for result in first]
    assert all("stopped cleanly" in result.stdout for result in first)
    logs = "".join(result.stderr for result in first)
    # Every practice that can be ticked was ticked exactly once, by one worker or the other.
    assert ticks(first) == Counter({practice: 1 for practice in [*deployment.good, deployment.nocal]}), logs[-3000:]
    for practice in deployment.good:
        assert deployment.recipients(practice) == FIRST_TICK, practice
    # The broken practice is reported with its id and its file's problem; the others did not wait for it.
    assert re.search(rf"practice_failed practice={deployment.broken} worker=w\d failures=1 retry_in=30s error=configuration: reminders.sooon", logs)
    queue = deployment.queue()
    assert queue[deployment.broken]["consecutive_failures"] == 1 and "reminders.sooon" in queue[deployment.broken]["last_error"]
    # The practice whose calendar cannot be read: reported, its digest still sent, its status shows why.
    assert f"practice_problem practice={deployment.nocal} problem=calendar config/gone.ics: cannot read" in logs
    assert deployment.recipients(deployment.nocal) == ["lena@example.com"]
    status = main(deployment.folder, "status", "--deployment", "deployment.toml", "--practice", deployment.nocal, "--now", NOW).stdout
    assert "config/gone.ics" in status and "last error: cannot read the calendar file" in status
    assert all(row["lease_owner"] is None for row in queue.values()), "every claim was released"
    poll = datetime.fromisoformat(NOW) + timedelta(minutes=2)  # calendar.poll_interval: no action falls due sooner
    assert all(queue[practice]["due_at"] == poll for practice in deployment.good)
    listing = main(deployment.folder, "worker", "--deployment", "deployment.toml", "--queue").stdout
    assert re.search(rf"{deployment.broken} +due \S+  free  1 failure\(s\) in a row: configuration: reminders.sooon", listing), listing
    assert f"{len(deployment.all)} practice(s)" in listing

    # Nothing is due any more at the same time: a second round does nothing.
    again = deployment.workers(2, NOW)
    assert ticks(again) == Counter() and [result.returncode for result in again] == [0, 0]

    # One practice's fee is waived from the command line, the day goes on: each practice mails its own.
    waived, kept = deployment.good[0], deployment.good[1]
    pending = json.loads(main(deployment.folder, "status", "--json", "--deployment", "deployment.toml", "--practice", waived, "--now", NOW).stdout)
    [fee] = [action["id"] for action in pending["pending_review"] if action["client"] == "bjorn@example.com"]
    main(deployment.folder, "waive", fee, "--reason", "sick", "--deployment", "deployment.toml", "--practice", waived, "--now", NOW)
    later = deployment.workers(2, DAY_AFTER)
    assert ticks(later) == Counter({practice: 1 for practice in [*deployment.good, deployment.nocal]}), "".join(r.stderr for r in later)[-3000:]
    for practice in deployment.good:
        ledger = json.loads(main(deployment.folder, "ledger", "--json", "--deployment", "deployment.toml", "--practice", practice).stdout)["actions"]
        sent = [action for action in ledger if action["kind"] == "email" and action["state"] == "done"]
        files = deployment.outbox(practice)
        assert len(files) == len(sent) == len({message["Message-ID"] for message in files}), f"{practice}: each email once"
        [charge] = [action for action in ledger if action["kind"] == "charge" and action["client"] == "bjorn@example.com"]
        assert charge["state"] == ("waived" if practice == waived else "done"), practice
        [to_bjorn] = [message for message in files if message["To"].addresses[0].addr_spec == "bjorn@example.com"]
        asks_for_the_fee = "Vipps" in to_bjorn.get_body(("plain",)).get_content()
        assert asks_for_the_fee == (practice != waived), practice
    assert len(deployment.outbox(kept)) > len(FIRST_TICK)


def test_commands_take_a_practice_of_a_deployment(deployment):
    folder = deployment.folder
    broken = main(folder, "check-config", "--deployment", "deployment.toml", "--practice", deployment.broken, check=False)
    assert broken.returncode == 2 and f"practice {deployment.broken} (practices/{deployment.broken}.toml)" in broken.stderr
    assert "reminders.sooon" in broken.stderr
    main(folder, "check-config", "--deployment", "deployment.toml", "--practice", deployment.good[0])
    run = main(folder, "run", "--once", "--now", NOW, "--deployment", "deployment.toml", "--practice", deployment.good[0])
    assert "Lena Berg Massage" in run.stdout
    assert deployment.recipients(deployment.good[0]) == FIRST_TICK and deployment.outbox(deployment.good[1]) == []
    for wrong, message in [
        (["--practice", deployment.good[0]], "--deployment and --practice go together"),
        (["--deployment", "deployment.toml", "--practice", "nobody"], "there is no practices/nobody.toml"),
        (["--config", "config/example.toml", "--deployment", "deployment.toml", "--practice", deployment.good[0]], "not both"),
    ]:
        result = main(folder, "ledger", *wrong, check=False)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (folder / "var/ledger.sqlite3").exists(), "no command fell back to the default config"
    check = main(folder, "worker", "--deployment", "deployment.toml", "--check", check=False)
    assert check.returncode == 2, check.stdout + check.stderr
    assert f"{deployment.broken} (practices/{deployment.broken}.toml): 1 problem(s)\n  - reminders.sooon" in check.stdout
    assert re.search(rf"{deployment.nocal} \(practices/{deployment.nocal}.toml\): 1 problem\(s\)\n  - calendar.url: .*config/gone.ics", check.stdout), check.stdout
    assert all(f"{practice} (practices/{practice}.toml): valid" in check.stdout for practice in deployment.good)
    assert f"{len(deployment.all)} practice(s), 2 with problems" in check.stdout


def test_a_practice_held_by_another_process_is_given_back_and_the_others_go_on(deployment):
    first, second = deployment.good[:2]
    # The first practice's ledger lock, as `main.py run` takes it (its schema's advisory lock on
    # PostgreSQL, LEDGER.lock beside a SQLite file), held with a data folder of its own; the
    # second one's data folder lock, as `main.py charge-now` on that practice takes it.
    ledger = deployment.url if deployment.ledgers == "postgresql" else deployment.folder / "var/deployment" / first / "ledger.sqlite3"
    with exclusive(deployment.folder / "elsewhere", ledger, f"practice_{first}"), exclusive(deployment.folder / "var/deployment" / second):
        results = deployment.workers(2, NOW)
    logs = "".join(result.stderr for result in results)
    assert ticks(results) == Counter({practice: 1 for practice in [*deployment.good[2:], deployment.nocal]}), logs[-3000:]
    assert re.search(rf"practice_busy practice={first} worker=w\d holder=another Slotguard is running on the ledger", logs), logs[-3000:]
    assert re.search(rf"practice_busy practice={second} worker=w\d holder=another Slotguard is running on", logs), logs[-3000:]
    assert deployment.outbox(first) == [] and deployment.outbox(second) == []
    assert deployment.queue()[first]["consecutive_failures"] == 0, "a held practice is not a failing one"
    # Given back due after idle_sleep (1s): the next round, the fences gone, ticks them.
    later = deployment.workers(1, "2026-11-26T12:00:02+01:00")
    assert ticks(later) == Counter({first: 1, second: 1})
    assert deployment.recipients(first) == deployment.recipients(second) == FIRST_TICK


def test_sigterm_finishes_the_current_practice_and_exits_cleanly_and_the_endpoints_answer(deployment):
    log = deployment.folder / "worker.log"
    with log.open("w") as errors:
        worker = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "-v", "worker", "--deployment", "deployment.toml", "--name", "steady"],
                                  cwd=deployment.folder, stdout=subprocess.PIPE, stderr=errors, text=True,
                                  env={**os.environ, "PYTHONPATH": str(ROOT), "SLOTGUARD_METRICS_LISTEN": "127.0.0.1:0"})
    try:
        deadline = time.monotonic() + 60
        while sum(1 for name, row in deployment.queue().items() if row["last_tick_at"] and not row["lease_owner"]) < len(deployment.all):
            assert time.monotonic() < deadline and worker.poll() is None, f"the worker did not tick every practice: {log.read_text()[-3000:]}"
            time.sleep(0.2)
        [port] = re.findall(r"ops_server listen=127.0.0.1:(\d+)", log.read_text())
        endpoint = f"http://127.0.0.1:{port}"
        assert urllib.request.urlopen(f"{endpoint}/healthz", timeout=10).read() == b"ok\n"
        assert urllib.request.urlopen(f"{endpoint}/readyz", timeout=10).read() == b"ok\n"
        scraped = urllib.request.urlopen(f"{endpoint}/metrics", timeout=10).read().decode()
        assert f'slotguard_ticks_total{{practice="{deployment.good[0]}"}} 1.0' in scraped, scraped
        assert f'slotguard_failures_total{{kind="config",practice="{deployment.broken}"}}' in scraped
        assert re.search(r"^slotguard_queue_depth \d", scraped, re.MULTILINE) and re.search(r"^slotguard_lease_age_seconds \d", scraped, re.MULTILINE)
        # A practice added to the folder is ticked at once; one taken away leaves the queue.
        newcomer, leaver = f"{deployment.good[0]}_new", deployment.good[1]
        folder = deployment.folder / "practices"
        (folder / f"{newcomer}.toml").write_text((folder / f"{deployment.good[0]}.toml").read_text())
        (folder / f"{leaver}.toml").unlink()
        deployment.good.append(newcomer)  # its schema, with PostgreSQL ledgers, is dropped with the others'
        while not (deployment.queue().get(newcomer, {}).get("last_tick_at") and leaver not in deployment.queue()):
            assert time.monotonic() < deadline + 30 and worker.poll() is None, f"the folder's change was not seen: {log.read_text()[-3000:]}"
            time.sleep(0.2)
        assert deployment.queue()[newcomer]["consecutive_failures"] == 0
        assert f"practice_added practice={newcomer}" in log.read_text() and f"practice_removed practice={leaver}" in log.read_text()
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=60)
    finally:
        worker.kill()
    err = log.read_text()
    assert worker.returncode == 0, err[-3000:]
    assert "signal=15" in err and "Slotguard worker steady stopped cleanly" in out
    assert all(row["lease_owner"] is None for row in deployment.queue().values()), "nothing is left held"


def test_a_worker_killed_mid_action_leaves_the_practice_to_the_next(deployment):
    for practice in deployment.all[1:]:
        (deployment.folder / "practices" / f"{practice}.toml").unlink()  # one practice: the one the killed worker held
    [practice] = deployment.good[:1]
    assert ticks(deployment.workers(1, NOW)) == Counter({practice: 1})
    # Friday morning Bjørn's fee is carried out: the worker dies right after the provider took it.
    [killed] = deployment.workers(1, DAY_AFTER, env={"SLOTGUARD_CRASH_AT": "after_call:charge"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert deployment.queue()[practice]["lease_owner"] == "w0"
    # The dead worker's lease holds until it runs out: a worker at the same moment finds nothing to do.
    assert ticks(deployment.workers(1, DAY_AFTER)) == Counter()
    # Past the lease (1m, on the server's clock: run out here rather than waited for): the next
    # worker takes the practice over (the dead one's locks went with its process), recovers the
    # interrupted charge through the provider lookup and goes on.
    with psycopg.connect(deployment.url, autocommit=True) as conn:
        conn.execute(f'UPDATE "{deployment.schema}".work_queue SET lease_until = clock_timestamp() WHERE practice = %s', (practice,))
    [next_one] = deployment.workers(1, "2026-11-27T09:01:30+01:00")
    assert next_one.returncode == 0, next_one.stderr[-3000:]
    assert f"recovered practice={practice} actions=1" in next_one.stderr
    assert ticks([next_one]) == Counter({practice: 1})
    ledger = json.loads(main(deployment.folder, "ledger", "--json", "--deployment", "deployment.toml", "--practice", practice).stdout)["actions"]
    assert not [action for action in ledger if action["state"] == "executing"]
    [charge] = [action for action in ledger if action["kind"] == "charge"]
    assert charge["state"] == "done" and charge["client"] == "bjorn@example.com"
    assert deployment.recipients(practice).count("bjorn@example.com") == 1, "his fee's email once"
    assert deployment.queue()[practice]["lease_owner"] is None
