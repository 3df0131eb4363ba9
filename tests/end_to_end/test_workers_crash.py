"""Money exactly once across workers, one of them killed at random moments (issue 16).

Three `main.py worker` processes share one deployment of 50 practices
(tests/support/practices.py): one PostgreSQL server (a schema per practice), one Google wire
fake (a calendar per practice), Stripe through localstripe behind the fault proxy. The
workers' clock is the real one, as in tests/end_to_end/test_crash_anywhere.py: the bookings
ended a few hours ago, a fee is due as soon as its mark is seen (review window 0m), so what
"arrives over time" is the practitioner marking no-shows (`#noshow`) and waiving some of them
(`#waive`), before their fee is charged or after, while the workers poll.

Each round marks and waives a few bookings, wakes most of the practices it touched (what the
webhook server does on a Google push; the others see their marks at their next poll, 30
seconds after their last tick: a worker never ticks a practice sooner), may inject Stripe faults (lost responses, failing
lookups), and SIGKILLs one worker after a random delay (its PostgreSQL session dies with it, so
its lock on the practice it was ticking goes too), then starts it again. After every kill the
proxy forgets the idempotency keys not used for 5 seconds (Stripe forgets them after 24 hours;
a key a live worker's own retry still uses is kept), so only the lookup by action id stands
between a practice taken over after a kill and a second charge.

Then, faults gone, the workers settle what is due now and are stopped; practices left with an
action waiting out a back-off (after a lost response or a kill, 2 minutes and more) are settled
by `main.py worker --until-idle --now` an hour and more later (the worker's pretend clock), as
test_crash_anywhere does with `run --once --now`. Checked against
Stripe itself (localstripe, not the ledger): no booking with two payments; every fee that
stands paid exactly once; nothing kept and no link open for a waived fee; nothing for an
unmarked booking. Against each practice's ledger: one fee and at most one refund per booking,
every money action of Stripe in exactly one practice's ledger, nothing left executing. And
`main.py reconcile` per practice is clean (the practices share one localstripe account, so a
practice's reconcile also sees the others' payments as unknown: those, and only those, are
excused, each found in the ledger of the practice that made it).

SLOTGUARD_WORKERS_CHAOS_SEED=S replays a run (the seed is printed and named in every failure);
SLOTGUARD_WORKERS_CHAOS_KILLS=N sets the number of kills (default 8),
SLOTGUARD_WORKERS_CHAOS_PRACTICES=N the number of practices (default 50).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from slotguard.store import work_queue
from tests.end_to_end.test_crash_anywhere import inject_faults, money_by_fee
from tests.support.fake_google_calendar import FakeGoogleCalendar
from tests.support.practices import FEE_MINOR, NO_SHOW, WAIVE, Booking, GeneratedDeployment, GeneratedPractice, write_deployment
from tests.support.stripe_fixtures import *  # noqa: F401,F403 - localstripe, proxy, admin client
from tests.support.stripe_fixtures import KEY_ENV, TEST_KEY
from tests.support.stripe_practice import ROOT, command, process_env

KILLS = int(os.environ.get("SLOTGUARD_WORKERS_CHAOS_KILLS", "8"))
PRACTICES = int(os.environ.get("SLOTGUARD_WORKERS_CHAOS_PRACTICES", "50"))
SEED = int(os.environ.get("SLOTGUARD_WORKERS_CHAOS_SEED") or random.SystemRandom().randrange(10**9))
WORKERS = 3
BOOKINGS, CLIENTS = 4, 2  # per practice: 200 bookings, 100 clients with a saved card
POLL = "5s"  # calendar.poll_interval; a worker reads a calendar every 30 s at most often (worker.MIN_WAIT), a wake at once
IDLE_KEY_SECONDS = 5.0  # longer than stripe-python's retries of one request (2, after 0.5 s and about 1 s)
EVERYTHING = ("--from", "2000-01-01", "--to", "2100-12-31")


class Workers:
    """The three worker processes (ours), their logs in files (a pipe would fill and block)."""

    def __init__(self, deployment: GeneratedDeployment, logs: Path):
        self.deployment, self.logs = deployment, logs
        self.processes: dict[str, subprocess.Popen] = {}
        self.starts: dict[str, int] = defaultdict(int)
        logs.mkdir(exist_ok=True)

    def start(self, name: str) -> None:
        self.starts[name] += 1
        log = open(self.logs / f"{name}-{self.starts[name]}.log", "w")  # noqa: SIM115 - the child owns it
        self.processes[name] = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "-v", "worker", "--deployment", str(self.deployment.file), "--name", name],
            cwd=self.deployment.root, env=process_env(), stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def kill(self, name: str) -> bool:
        """SIGKILL worker `name`; False when it had already died (that is a failure: read its log)."""
        process = self.processes[name]
        alive = process.poll() is None
        if alive:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        return alive

    def stop(self) -> None:
        """SIGTERM every worker still running (each finishes its current action), then wait."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def tracebacks(self) -> list[str]:
        return [f"{path.name}:\n{path.read_text()[-3000:]}" for path in sorted(self.logs.glob("*.log")) if "Traceback" in path.read_text()]


def forget_idle_idempotency(proxy, idle_seconds: float = IDLE_KEY_SECONDS) -> None:
    """Forget the proxy's stored idempotent responses whose key was last used more than
    `idle_seconds` ago, as Stripe forgets a key after 24 hours. Not all of them, as
    test_crash_anywhere does once its one daemon is dead: here the other workers live on, and a
    key forgotten between a lost answer and stripe-python's own retry of it (half a second
    later) would be a test artefact, something Stripe never does. (Reads the proxy's request
    log and store, under its lock.)"""
    cutoff = time.monotonic() - idle_seconds
    with proxy._lock:
        last_used: dict[str, float] = {}
        for exchange in proxy.exchanges:
            if exchange.idempotency_key:
                last_used[exchange.idempotency_key] = max(exchange.at, last_used.get(exchange.idempotency_key, 0.0))
        for key in [key for key in proxy._idempotency if last_used.get(key, 0.0) < cutoff]:
            del proxy._idempotency[key]


def wait_for(condition, timeout: float, what: str, detail=lambda: "") -> float:
    """Seconds until `condition()` held; AssertionError naming `what` (and `detail()`) after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} {detail()}")
        time.sleep(0.5)
    return time.monotonic() - started


def synced(deployment: GeneratedDeployment) -> int:
    """How many practices have a completed calendar sync in their ledger (their sync_state row)."""
    done = 0
    with psycopg.connect(deployment.url, autocommit=True) as conn:
        for practice in deployment.practices:
            if conn.execute("SELECT to_regclass(%s)", (f'"{practice.schema}".sync_state',)).fetchone()[0] is None:
                continue
            if conn.execute(f'SELECT count(*) FROM "{practice.schema}".sync_state').fetchone()[0]:
                done += 1
    return done


def in_process(config: Path, *argv: str) -> tuple[int, str]:
    """A read-only command's handler in this process (no interpreter start): exit status, stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = command(config, *argv)
    return status, out.getvalue()


def ledger_actions(practice: GeneratedPractice) -> list[dict]:
    status, text = in_process(practice.config, "ledger", "--json")
    assert status == 0, text
    return json.loads(text)["actions"]


def wake(deployment: GeneratedDeployment, practice_ids: list[str]) -> None:
    """Make these practices due now, as the webhook server does when Google pushes a change
    (the others read their marks at their next poll)."""
    with psycopg.connect(deployment.url, autocommit=True) as conn:
        for practice_id in practice_ids:
            work_queue.wake(conn, practice_id, "test: a calendar changed", schema=deployment.queue_schema)


def unseen_marks(deployment: GeneratedDeployment) -> list[str]:
    """The marked bookings whose fee is not in their practice's ledger yet ("practice/event").
    A waived one is left out: waived before its mark was first seen, it never has a fee."""
    missing = []
    for practice in deployment.practices:
        marked = [b.event_id for b in practice.bookings if b.noshow and not b.waived]
        if marked:
            charged = {a["event_id"] for a in ledger_actions(practice) if a["kind"] == "charge"}
            missing += [f"{practice.id}/{event_id}" for event_id in marked if event_id not in charged]
    return missing


@pytest.fixture
def deployment(tmp_path, pg_url, stripe_proxy, stripe_client_with_card, monkeypatch):
    monkeypatch.setenv(KEY_ENV, TEST_KEY)
    google = FakeGoogleCalendar(require_auth=True).start()
    built = write_deployment(tmp_path, PRACTICES, url=pg_url, google=google, stripe_api_base=stripe_proxy.base_url,
                             bookings=BOOKINGS, clients=CLIENTS, past_hours=6.0, poll_interval=POLL,
                             workers='lease = "10s"\nidle_sleep = "1s"\n')
    for practice in built.practices:
        for client in practice.clients:
            stripe_client_with_card(client.email, name=client.name)
    try:
        yield built
    finally:
        google.stop()
        built.drop()


@pytest.mark.slow
def test_money_is_right_across_workers_however_often_one_is_killed(deployment, stripe_proxy, stripe_admin, tmp_path):
    rng = random.Random(SEED)
    print(f"\nworkers-crash: seed={SEED} kills={KILLS} practices={PRACTICES} "
          f"(SLOTGUARD_WORKERS_CHAOS_SEED={SEED} replays it)")
    names = [f"w{number}" for number in range(1, WORKERS + 1)]
    workers = Workers(deployment, tmp_path / "logs")
    started = time.monotonic()
    faults: list[str] = []
    waive_in_round: dict[int, list[Booking]] = defaultdict(list)
    try:
        for name in names:
            workers.start(name)
        first_sync = wait_for(lambda: synced(deployment) == PRACTICES, 120, f"the first sync of all {PRACTICES} practices")

        unmarked = deployment.bookings()
        rng.shuffle(unmarked)
        for round_number in range(KILLS):
            touched: set[str] = set()
            for booking in [unmarked.pop() for _ in range(min(len(unmarked), rng.randint(6, 14)))]:
                deployment.tag(booking, NO_SHOW)
                touched.add(booking.practice.id)
                if rng.random() < 0.4:  # waived in this round (before its fee) or one of the next (often after it)
                    waive_in_round[round_number + rng.randint(0, 3)].append(booking)
            for booking in waive_in_round.pop(round_number, []):
                deployment.tag(booking, WAIVE)
                touched.add(booking.practice.id)
            wake(deployment, [practice for practice in sorted(touched) if rng.random() < 0.7])
            faults += inject_faults(rng, stripe_proxy)
            time.sleep(rng.uniform(0.5, 4.0))
            victim = rng.choice(names)
            assert workers.kill(victim), f"worker {victim} had died before it was killed; see its log"
            forget_idle_idempotency(stripe_proxy)
            time.sleep(rng.uniform(0.0, 1.0))
            workers.start(victim)
        for later in sorted(waive_in_round):  # waivers planned for rounds that did not come
            for booking in waive_in_round[later]:
                deployment.tag(booking, WAIVE)

        stripe_proxy.faults.clear()
        missing: list[str] = []

        def all_seen() -> bool:
            missing[:] = unseen_marks(deployment)
            return not missing

        settle = wait_for(all_seen, 120, "the workers to plan every marked booking's fee", lambda: f"(not yet: {missing[:10]})")
        time.sleep(5)  # for the last waivers woken (the others, and what waits out a back-off, are settled below)
        workers.stop()
        assert not workers.tracebacks(), "\n".join(workers.tracebacks())
        settled_later = settle_back_offs(deployment)

        intents, refunds = money_by_fee(stripe_admin)
        owners = check_ledgers(deployment, intents, refunds)
        checked = check_stripe(deployment, intents, refunds, stripe_proxy)
        check_reconcile(deployment, owners, intents, refunds)
    except AssertionError as error:
        raise AssertionError(f"workers-crash seed={SEED} (SLOTGUARD_WORKERS_CHAOS_SEED={SEED} to replay): {error}") from error
    finally:
        workers.stop()
    print(f"workers-crash: {PRACTICES} practices, {WORKERS} workers, {KILLS} kills, seed {SEED}; first sync {first_sync:.1f}s; "
          f"faults injected: {len(faults)}; every mark's fee planned {settle:.1f}s after the last round; {settled_later} practice(s) "
          f"settled later by worker --now; checked {checked}; reconcile clean for every practice; "
          f"wall time {time.monotonic() - started:.0f}s")


def settle_back_offs(deployment: GeneratedDeployment) -> int:
    """What the workers would do over the next hours: `main.py worker --until-idle --now` an
    hour and more later (the worker's pretend clock), so that actions waiting out a back-off
    (after a lost answer or a kill: 2 minutes, doubling) are carried out. Returns how many
    practices had such an action."""
    later = datetime.now(UTC)
    waiting = [practice for practice in deployment.practices
               if any(a["state"] in ("planned", "executing") and a["kind"] in ("charge", "refund") for a in ledger_actions(practice))]
    for minutes in (75, 76):
        settled = subprocess.run(
            [sys.executable, str(ROOT / "main.py"), "worker", "--deployment", str(deployment.file), "--name", f"settle{minutes}",
             "--until-idle", "--now", (later + timedelta(minutes=minutes)).isoformat()],
            cwd=deployment.root, env=process_env(), capture_output=True, text=True, timeout=300)
        assert settled.returncode == 0, f"{settled.stdout}\n{settled.stderr}"
        assert "Traceback" not in settled.stderr and "practice_failed" not in settled.stderr, settled.stderr[-5000:]
    return len(waiting)


def check_ledgers(deployment: GeneratedDeployment, intents: dict[str, list[dict]], refunds: dict[str, list[dict]]) -> dict[str, str]:
    """Each practice's ledger: one fee per marked booking, in a final state, at most one refund,
    nothing left executing, every Stripe object's action in exactly one ledger. Returns
    {action id: practice id} for every money action."""
    owners: dict[str, str] = {}
    for practice in deployment.practices:
        actions = ledger_actions(practice)
        assert not [a["id"] for a in actions if a["state"] == "executing"], f"{practice.id}: actions left executing"
        for action in actions:
            if action["kind"] in ("charge", "refund"):
                assert action["id"] not in owners, f"action {action['id']} is in the ledgers of {owners[action['id']]} and {practice.id}"
                owners[action["id"]] = practice.id
        sent: dict[tuple[str, str], list[str]] = defaultdict(list)
        for action in actions:
            if action["kind"] == "email" and action["state"] == "done":
                sent[(action["event_id"], action["template"])].append(action["id"])
        twice = {key: ids for key, ids in sent.items() if len(ids) > 1}
        assert not twice, f"{practice.id}: emails sent more than once (event, template): {twice}"
        by_booking: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for action in actions:
            if action["kind"] in ("charge", "refund") and action["state"] != "cancelled":
                by_booking[(action["event_id"], action["kind"])].append(action)
        for booking in practice.bookings:
            fees = by_booking.get((booking.event_id, "charge"), [])
            given_back = by_booking.get((booking.event_id, "refund"), [])
            where = f"{practice.id}/{booking.event_id}"
            if not booking.noshow:
                assert not fees, f"{where}: a fee for a booking nobody marked: {fees}"
                continue
            if booking.waived:  # waived before its mark was seen: no fee; after: one, waived or refunded
                assert len(fees) <= 1, f"{where}: {len(fees)} fee action(s) for one waived no-show: {[f['id'] for f in fees]}"
                assert all(fee["state"] in ("done", "waived") for fee in fees), f"{where}: its fee is {fees[0]['state']}"
            else:
                assert len(fees) == 1, f"{where}: {len(fees)} fee action(s) for one no-show: {[f['id'] for f in fees]}"
                assert fees[0]["state"] == "done", f"{where}: its fee is {fees[0]['state']}"
            assert len(given_back) <= 1, f"{where}: {len(given_back)} refund actions"
            assert all(r["state"] == "done" for r in given_back), f"{where}: refund {given_back[0]['state']}"
    strangers = [action_id for action_id in [*intents, *refunds] if action_id not in owners]
    assert not strangers, f"Stripe objects whose action is in no practice's ledger: {strangers}"
    return owners


def check_stripe(deployment: GeneratedDeployment, intents: dict[str, list[dict]], refunds: dict[str, list[dict]], proxy) -> str:
    """Stripe itself, booking by booking (metadata.slotguard_event = CALENDAR/EVENT); returns what was checked."""
    by_booking: dict[str, list[dict]] = defaultdict(list)
    for action_id, found in intents.items():
        paid = [intent for intent in found if intent["status"] in ("succeeded", "requires_capture")]
        assert len(paid) <= 1, f"fee {action_id} was paid {len(paid)} times: {[i['id'] for i in paid]}"
        for intent in found:
            by_booking[intent["metadata"].get("slotguard_event", "")].append(intent)
    for action_id, made in refunds.items():
        assert len(made) <= 1, f"refund action {action_id} refunded {len(made)} times: {[r['id'] for r in made]}"
    refunded_on: dict[str, int] = defaultdict(int)
    for made in refunds.values():
        for refund in made:
            refunded_on[refund["payment_intent"]] += refund["amount"]
    open_links = [s.public for s in proxy.sessions.values() if s.public["status"] == "open" and s.public["mode"] == "payment"]
    standing = waived = 0
    for booking in deployment.bookings():
        ref = f"{booking.practice.calendar_id}/{booking.event_id}"
        moved = [intent for intent in by_booking[ref] if intent["status"] in ("succeeded", "requires_capture")]
        assert len(moved) <= 1, f"{ref}: charged {len(moved)} times: {[i['id'] for i in moved]}"
        kept = sum(intent["amount"] - refunded_on[intent["id"]] for intent in moved if intent["status"] == "succeeded")
        if booking.waived:
            waived += 1
            assert kept == 0, f"{ref}: {kept} kept for a waived fee"
            links = [session["id"] for session in open_links if session["metadata"].get("slotguard_event") == ref]
            assert not links, f"{ref}: payment link(s) {links} still open for a waived fee"
        elif booking.noshow:
            standing += 1
            assert kept == FEE_MINOR, f"{ref}: {kept} taken for a fee that stands, not {FEE_MINOR}"
        else:
            assert not by_booking[ref], f"{ref}: a PaymentIntent for a booking nobody marked"
    return (f"{standing} standing fee(s) paid exactly once, {waived} waived fee(s) with nothing kept and no link open, "
            f"{sum(len(found) for found in intents.values())} PaymentIntent(s), {sum(len(made) for made in refunds.values())} refund(s)")


def check_reconcile(deployment: GeneratedDeployment, owners: dict[str, str], intents: dict[str, list[dict]],
                    refunds: dict[str, list[dict]]) -> None:
    """`main.py reconcile --json` per practice: no mismatch but the other practices' money
    (one shared localstripe account), each of those Stripe objects made for an action in its
    own practice's ledger (check_ledgers gave `owners`, action id -> practice)."""
    made_by = {item["id"]: owners[action_id] for found in (intents, refunds) for action_id, items in found.items() for item in items}
    for practice in deployment.practices:
        status, text = in_process(practice.config, "reconcile", "--json", *EVERYTHING)
        assert status in (0, 1), f"{practice.id}: reconcile could not compare (exit {status}): {text}"
        mismatches = json.loads(text)["mismatches"]
        ours = [m for m in mismatches
                if not (m["kind"] == "unknown_in_stripe" and made_by.get(m["stripe_id"], practice.id) != practice.id)]
        assert not ours, f"{practice.id}: reconcile is not clean: {json.dumps(ours, indent=1)}"
