"""One Slotguard per data folder, and a daemon that outlives a failing tick (issue 11, item 14
and the run-loop part of item 10): `main.py run` as a real process, a second one beside it,
a real SMTP server and a ledger another program keeps locked."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from slotguard.store.backend import exists, place
from slotguard.store.ledger import Ledger
from tests.support.cli import ROOT, main
from tests.support.smtp_server import Recorder, SmtpServer


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def feed(start: datetime, *uids: str) -> str:
    events = []
    for number, uid in enumerate(uids):
        begin = start + timedelta(days=number)
        events.append(
            "BEGIN:VEVENT\n"
            f"UID:{uid}\nSUMMARY:Massage\n"
            f"DTSTART:{begin:%Y%m%dT%H%M%SZ}\nDTEND:{begin + timedelta(hours=1):%Y%m%dT%H%M%SZ}\n"
            "ORGANIZER:mailto:lena@example.com\n"
            f"ATTENDEE;CN=Client {number};PARTSTAT=ACCEPTED:mailto:client{number}@example.com\n"
            "END:VEVENT\n"
        )
    return "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n" + "".join(events) + "END:VCALENDAR\n"


def practice_folder(folder: Path, *, poll: str, smtp_port: int | None = None) -> Path:
    """The example practice reading `calendar.ics` in `folder`, ticking every `poll`, no digest nor monthly report;
    mail over SMTP to 127.0.0.1:`smtp_port` when given (else to the outbox folder)."""
    shutil.copytree(ROOT / "config", folder / "config")
    path = folder / "config/example.toml"
    text = path.read_text()
    text = text.replace('url = "config/sample-week.ics"', 'url = "calendar.ics"').replace('poll_interval = "2m"', f'poll_interval = "{poll}"')
    text = text.replace("digest_hour = 7", "digest_hour = -1\nmonthly_report = false")
    text = text.replace('quiet_hours = "21:00-08:00"', 'quiet_hours = ""')  # on the real clock, quiet hours would make when fees and emails go depend on the hour the tests run
    if smtp_port:
        text = text.replace('transport = "outbox-dir"', 'transport = "smtp"')
        text += f'\n[mail.smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\ntimeout = "60s"\n'
    path.write_text(text)
    return folder


def start_daemon(folder: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "run"], cwd=folder, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=log.open("w"), text=True,
    )


def stop(daemon: subprocess.Popen) -> tuple[int, str]:
    daemon.send_signal(signal.SIGTERM)
    out, _ = daemon.communicate(timeout=60)
    return daemon.returncode, out


class HoldFirstMessage(Recorder):
    """Keeps the first message in the middle of DATA until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        if not self.holding.is_set():
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


def test_a_second_slotguard_is_refused_while_the_daemon_sends_and_nothing_is_sent_twice(tmp_path):
    recorder = HoldFirstMessage()
    server = SmtpServer(recorder=recorder).start()
    daemon = None
    try:
        folder = practice_folder(tmp_path, poll="1h", smtp_port=server.port)
        (folder / "calendar.ics").write_text(feed(datetime.now(UTC).replace(microsecond=0) + timedelta(days=3), "booking-1"))
        daemon = start_daemon(folder, tmp_path / "daemon.log")
        wait_for(recorder.holding.is_set, 60, "the daemon to be in the middle of sending the booking confirmation")
        refused = f"error: another Slotguard is running on var (pid {daemon.pid}); stop it first"
        for command in (["run", "--once"], ["run"], ["charge-now", "act_x"], ["retry", "--all-failed", "--yes"]):
            second = main(folder, *command, check=False)
            assert second.returncode == 1 and second.stderr.strip() == refused, (command, second.stderr)
        recorder.release.set()
        wait_for(lambda: len(server.messages) == 1, 30, "the confirmation to arrive")
        code, out = stop(daemon)
        assert code == 0 and "Slotguard stopped cleanly." in out
        # The lock went with the daemon: a new run may go, and finds nothing left to send.
        main(folder, "run", "--once")
        assert [message["To"].addresses[0].addr_spec for message in server.messages] == ["client0@example.com"]
        ledger = Ledger(folder / "var/ledger.sqlite3")
        notes = [row[0] for row in ledger.db.execute("SELECT note FROM action_log")]
        ledger.close()
        assert not any("interrupted while executing" in note for note in notes), "nobody put the in-flight email back"
    finally:
        recorder.release.set()
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        server.stop()


def test_the_daemon_reports_a_failing_tick_and_goes_on_at_the_next(tmp_path):
    folder = practice_folder(tmp_path, poll="1s")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    (folder / "calendar.ics").write_text(feed(start, "booking-1"))
    log = tmp_path / "daemon.log"
    daemon = start_daemon(folder, log)
    ledger = folder / "var/ledger.sqlite3"

    def booked(uid: str) -> bool:
        if not exists(place(str(ledger))):
            return False  # not made yet
        reader = Ledger(ledger)
        try:
            return reader.db.execute("SELECT 1 FROM appointments WHERE event_id LIKE ?", (f"{uid}%",)).fetchone() is not None
        finally:
            reader.close()

    try:
        wait_for(lambda: booked("booking-1"), 60, "the first tick")
        # Another program keeps the ledger locked for writing longer than a writer waits (5 s):
        # the daemon's next tick fails.
        blocker = Ledger(ledger).db
        blocker.execute("BEGIN IMMEDIATE")
        (folder / "calendar.ics").write_text(feed(start, "booking-1", "booking-2"))
        wait_for(lambda: "tick_failed" in log.read_text(), 30, "a failed tick in the log")
        blocker.execute("ROLLBACK")
        blocker.close()
        assert daemon.poll() is None, log.read_text()
        wait_for(lambda: booked("booking-2"), 30, "the next tick to read the new booking")
        [line] = [line for line in log.read_text().splitlines() if "tick_failed" in line][:1]
        assert "level=error" in line and "error_type=LedgerError" in line and "failed_ticks=1" in line
        assert "is locked by another program" in line and "next_tick_in=1s" in line
        code, out = stop(daemon)
        assert code == 0 and "tick(s) failed; see the log" in out
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()


@pytest.mark.sqlite_only  # the LEDGER.lock file; PostgreSQL's schema lock: test_pg_daemon.py
def test_a_second_config_naming_the_daemons_ledger_is_refused_whatever_its_data_folder(tmp_path):
    """Two configs with different `storage.data_dir` but one ledger (`storage.ledger`) would
    be two daemons on one ledger: the ledger has a lock of its own, LEDGER.lock beside it."""
    folder = practice_folder(tmp_path, poll="1h")
    (folder / "calendar.ics").write_text(feed(datetime.now(UTC).replace(microsecond=0) + timedelta(days=3), "booking-1"))
    example = (folder / "config/example.toml").read_text()
    assert 'data_dir = "var"\n' in example
    (folder / "config/other.toml").write_text(example.replace('data_dir = "var"\n', 'data_dir = "other-var"\nledger = "var/ledger.sqlite3"\n'))
    (folder / "config/absolute.toml").write_text(
        example.replace('data_dir = "var"\n', f'data_dir = "third-var"\nledger = "{folder / "var/../var/ledger.sqlite3"}"\n'))
    daemon = start_daemon(folder, tmp_path / "daemon.log")
    running = folder / "var/slotguard.lock"
    try:
        wait_for(lambda: running.exists() and running.read_text().strip() == str(daemon.pid), 60, "the daemon to hold its locks")
        for config, named in (("config/other.toml", "var/ledger.sqlite3"), ("config/absolute.toml", str(folder / "var/../var/ledger.sqlite3"))):
            for command in (["run", "--once"], ["charge-now", "act_x"], ["retry", "--all-failed", "--yes"]):
                second = main(folder, *command, "--config", config, check=False)
                assert second.returncode == 1, (config, command, second.stdout, second.stderr)
                assert second.stderr.strip() == f"error: another Slotguard is running on the ledger {named} (pid {daemon.pid}); stop it first"
        lock = folder / "var/ledger.sqlite3.lock"
        assert lock.read_text().strip() == str(daemon.pid) and oct(lock.stat().st_mode & 0o777) == "0o600"
        code, _ = stop(daemon)
        assert code == 0
        main(folder, "run", "--once", "--config", "config/other.toml")  # the daemon is gone: the other config may run
        assert (folder / "other-var/slotguard.lock").exists() and not (folder / "other-var/ledger.sqlite3").exists()
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
