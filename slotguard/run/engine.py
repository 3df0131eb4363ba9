"""One tick of the loop: read calendars, track changes, plan, execute, write back.

calendar source -> normalized appointments -> tracker -> policies (planner) -> actions in
the ledger -> executors (payments, mail, calendar write-back) -> results in the ledger.

A failing calendar, a bad event or a failing side effect is recorded and reported; the
other calendars, events and actions go on. The engine never reads the clock: `now` is given.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from slotguard.config.schema import Settings
from slotguard.domain.durations import from_utc_text, to_utc_text
from slotguard.domain.interfaces import (
    AdapterError,
    CalendarSource,
    CalendarWriteBack,
    InboxSource,
    Mailer,
    PaymentProvider,
    ReauthorizationNeeded,
    SyncTokenExpired,
)
from slotguard.domain.model import MONEY_KINDS, OPEN_STATES, Action, ActionKind, ActionState, Appointment
from slotguard.domain.tick_report import TickReport
from slotguard.inbox.signals import with_email_signals
from slotguard.intake.normalize import EventError, ForeignEvent, normalize
from slotguard.intake.tracker import FOREIGN, AttendanceRules, Tracked, follow
from slotguard.mail.messages import Renderer, TemplateProblem
from slotguard.mail.stale import stale_email_reason
from slotguard.payments.poll import poll_unpaid
from slotguard.payments.recovery import Recovered, lookup, record_found, resolve_interrupted, settle_waiting_waiver
from slotguard.payments.results import GAVE_UP_AFTER, after_money, next_money_try, record_payment_result
from slotguard.planning.planner import OUTCOME_UNKNOWN, WAITING_WAIVER, Planner
from slotguard.policies.account import TARGET
from slotguard.policies.info import Policy
from slotguard.policies.owners import TickStep, action_owner, default_manager, tick_steps
from slotguard.practitioner.write_back import write_statuses
from slotguard.privacy.client_forget import forgotten_event
from slotguard.privacy.pseudonyms import is_pseudonym
from slotguard.run import metrics
from slotguard.run.action_failure import retry_delay, unexpected_failure
from slotguard.run.daily_cap import within_daily_cap
from slotguard.run.deletions import observe_deletions
from slotguard.run.email_effects import send_email
from slotguard.run.inbox_step import read_inbox
from slotguard.run.logs import action_context, current_practice
from slotguard.run.quiet_hours import wait_for_quiet_hours
from slotguard.store.containment import calendar_failed, contain_each, problem_item, run_step, unique_ids
from slotguard.store.former_ids import adopt_former_ids
from slotguard.store.ledger import Ledger, LedgerError

log = logging.getLogger("slotguard.engine")

REAUTH_WAIT = timedelta(minutes=15)
TIME_CHECK_HORIZON = timedelta(days=14)


def _crash_point(stage: str, action: Action) -> None:
    """Test hook for the exactly-once tests (tests/end_to_end/test_stripe_crash.py):
    SLOTGUARD_CRASH_AT=STAGE, STAGE:KIND or STAGE:ACTION_ID (stages before_call, after_call,
    after_commit; e.g. after_call:refund) kills this process with SIGKILL there."""
    wanted = os.environ.get("SLOTGUARD_CRASH_AT")
    if wanted and wanted in (stage, f"{stage}:{action.kind.value}", f"{stage}:{action.id}"):
        os.kill(os.getpid(), signal.SIGKILL)


def _series_of(event: dict) -> str:
    """The id of the recurring series an event resource belongs to, "" for none."""
    series = event.get("recurringEventId")
    return series if isinstance(series, str) else ""


@dataclass
class Engine:
    settings: Settings
    ledger: Ledger
    calendars: list[tuple[CalendarSource, CalendarWriteBack]]
    provider: PaymentProvider
    mailer: Mailer
    renderer: Renderer
    policies: list[Policy]
    charge_from: datetime
    stop_requested: Callable[[], bool] = lambda: False
    inbox: InboxSource | None = None  # the mailbox of commands by email (docs/inbox.md); None: no inbox

    def __post_init__(self) -> None:
        self.planner = Planner(self.settings, self.policies, self.ledger, self.charge_from)
        marks = self.settings.calendar.marks
        self.rules = AttendanceRules(marks.unmarked_after_end, marks.settle_after_end)
        self.write_backs = {source.calendar_id: write_back for source, write_back in self.calendars}
        self._touched: set[tuple[str, str]] = set()
        self._first_look: dict[str, bool] = {}  # calendar id -> its first sync (no sync completed yet)
        self.features = default_manager()  # built-in features and plugins (slotguard/features/)

    # -- the tick -------------------------------------------------------------------------
    def tick(self, now: datetime) -> TickReport:
        """One pass of the loop. Never raises for a failure in one calendar or one step: it
        is reported (and logged with where it happened) and the next calendar or step goes
        on; the step is tried again next tick. Once stop_requested() says so (a signal, or the
        ledger's lock lost), no further calendar, action or step is started."""
        report = TickReport()
        self._touched = set()
        # Before any calendar is read: a waiver must never meet money whose outcome is unknown.
        run_step("resolving interrupted money", report, lambda: self._touched.update(self._resolve(now, report.problem).touched))
        for source, _ in self.calendars:
            if self.stop_requested():
                break
            started = time.monotonic()  # a duration for the metrics, not the tick's time (that is `now`)
            self.sync_calendar(source, now, report)
            metrics.observe_sync(current_practice(), source.calendar_id, time.monotonic() - started)
        steps: list[tuple[str, Callable[[], object]]] = [
            ("reading the inbox", lambda: read_inbox(self, now, report)),  # commands and clients' answers by email (docs/inbox.md)
            ("time check", lambda: self.check_time(now, report)),
        ]
        steps += [(step.name, functools.partial(self._feature_step, step, now, report))  # the digest, the collections ladder (slotguard/features/)
                  for step in tick_steps(self.features)]
        steps += [
            ("carrying out due actions", lambda: self.execute_due(now, report)),
            ("payment polling", lambda: self._touched.update(poll_unpaid(self.ledger, self.provider, now, report))),
            ("calendar write-back", lambda: self.write_back(report, now)),
        ]
        for name, step_run in steps:
            if self.stop_requested():
                break  # stopping (a signal, or the ledger's lock lost): nothing more in this tick; the next one goes on
            run_step(name, report, step_run)
        return report

    def _feature_step(self, step: TickStep, now: datetime, report: TickReport) -> None:
        self._touched.update(step.run(self.settings, self.ledger, self.provider, now, report) or ())

    def recover(self, now: datetime) -> int:
        """At start-up: resolve the actions a crash left `executing`; return how many there
        were. Money actions are looked up at the provider first (slotguard/payments/recovery.py):
        found, they are done; not found, back in the queue (carried out again with the same
        idempotency key); the provider unreachable, they wait (every tick asks again).
        Emails and records go back in the queue."""
        return self._resolve(now, lambda message: log.warning("problem %s", message)).found

    def _resolve(self, now: datetime, problem: Callable[[str], None]) -> Recovered:
        return resolve_interrupted(self.ledger, self.provider, self.settings.payments.dry_run, now, problem)

    # -- calendars ------------------------------------------------------------------------
    def sync_calendar(self, source: CalendarSource, now: datetime, report: TickReport) -> None:
        calendar_id = source.calendar_id
        token = self.ledger.sync_token(calendar_id)
        self._first_look[calendar_id] = not self.ledger.has_synced(calendar_id)
        last_full = self.ledger.meta(f"full_sync:{calendar_id}")
        if token and (last_full is None or from_utc_text(last_full) + self.settings.calendar.full_resync <= now):
            # A periodic full listing: incremental sync alone never shows an event that was
            # beyond the window when first listed and has not changed since.
            log.info("periodic full sync calendar=%s", calendar_id)
            token = None
        try:
            try:
                self._read_pages(source, token, now, report)
            except SyncTokenExpired:
                log.info("sync token expired calendar=%s; doing a full sync", calendar_id)
                self.ledger.clear_sync_token(calendar_id)
                self._read_pages(source, None, now, report)
        except ReauthorizationNeeded as error:
            self.ledger.record_sync_error(calendar_id, str(error), now)
            report.problem(f"calendar {calendar_id}: {error}")
        except AdapterError as error:
            self.ledger.record_sync_error(calendar_id, str(error), now)
            report.problem(f"calendar {calendar_id}: {error} (will try again next tick)")
        except LedgerError:
            raise  # the ledger itself failed: no calendar can go on (see slotguard/store/containment.py)
        except Exception as error:  # noqa: BLE001 - a bug in one source never stops the others
            calendar_failed(self.ledger, report, calendar_id, error, now)

    def _read_pages(self, source: CalendarSource, token: str | None, now: datetime, report: TickReport) -> None:
        calendar_id = source.calendar_id
        seen_ids: set[str] = set()
        full = False
        window: tuple[datetime | None, datetime | None] = (None, None)
        adopting = self.ledger.has_synced(calendar_id)  # before a first sync nothing is stored under an older id
        for page in map(unique_ids, source.pages(token, now)):  # two events under one id: neither is read
            full = full or page.full
            with self.ledger.transaction():
                for old, new in adopt_former_ids(self.ledger.db, calendar_id, page.events) if adopting else ():
                    log.info("event renamed by its calendar calendar=%s from=%s to=%s", calendar_id, old, new)
                ids = [str(event.get("id") or "") for event in page.events]
                known = self.ledger.fingerprints(calendar_id, ids)
                with_problems = self.ledger.problem_items(calendar_id)
                seen_ids.update(ids)
                report.events_seen += len(ids)
                contain_each(
                    self.ledger, report, zip(ids, page.events),
                    # Called at once by contain_each, inside this iteration: the loop's values are the right ones.
                    lambda pair: self.process_event(calendar_id, pair[1], now, report, known.get(pair[0]),  # noqa: B023
                                                    pair[0] in with_problems or _series_of(pair[1]) in with_problems),  # noqa: B023
                    lambda pair: (calendar_id, problem_item(pair[0] or "?"), f"event {problem_item(pair[0] or '?')}"),
                    now,
                )
            window = (page.window_start, page.window_end)
            if page.last:
                with self.ledger.transaction():
                    if full:
                        observe_deletions(self, calendar_id, seen_ids, window, now, report)
                    if token is None:
                        self.ledger.set_meta(f"full_sync:{calendar_id}", to_utc_text(now))
                    self.ledger.record_sync(calendar_id, page.next_sync_token, now)

    def process_event(
        self, calendar_id: str, event: dict, now: datetime, report: TickReport,
        known: tuple[str, bool] | None | Literal[False] = False, has_problem: bool = True,
    ) -> None:
        """Track one event; a bad one is recorded as a problem and skipped.

        `known` is the event's (fingerprint, open) from the ledger when the caller fetched it
        for a whole page, None when the ledger does not know the event, False to look it up.
        `has_problem` False says neither the event nor its series has a problem recorded
        (nothing to clear; an .ics series that could not be read is reported under its UID,
        and its problem is cleared when one of its instances reads again).
        Exceptions other than EventError propagate: the caller contains them (contain_each).
        """
        event_id = problem_item(str(event.get("id") or "?"))
        if known is False:
            known = self.ledger.fingerprint(calendar_id, event_id)
        if forgotten_event(self.ledger, calendar_id, known, _series_of(event)):
            return  # its client was forgotten (`client forget`): not read, changed or not, nor stored
        try:
            previous = self.ledger.tracked(calendar_id, event_id) if known else None
            result = normalize(event, calendar_id, self.settings, now, previous.appointment if previous else None)
        except EventError as error:
            self.ledger.record_problem(calendar_id, event_id, str(error), now)
            if isinstance(error, ForeignEvent):
                if known and known[1]:
                    # Someone else organises it now: nothing more happens to it, not even
                    # with time, until it is the practitioner's event again.
                    self.ledger.set_outcome(calendar_id, event_id, FOREIGN)
                report.problem(f"calendar {calendar_id}: {error}")
            else:
                report.problem(f"calendar {calendar_id}: {error}; fix the event, the others go on")
            return
        if known or has_problem:
            self.ledger.clear_problem(calendar_id, event_id)
        if has_problem and _series_of(event):
            self.ledger.clear_problem(calendar_id, problem_item(_series_of(event)))
        appointment = result.appointment
        if appointment is None:
            return
        appointment = with_email_signals(self.ledger, appointment, known)  # a cancellation by email stands (docs/inbox.md)
        if known and known[0] == appointment.fingerprint() and not (known[1] and now >= appointment.start):
            return  # nothing the tracker reacts to changed (e.g. only our own note was written)
        self._observe(previous, appointment, now, report)

    def _observe(self, previous: Tracked | None, appointment: Appointment | None, now: datetime, report: TickReport) -> None:
        if previous is not None and is_pseudonym(previous.appointment.client.email):
            return  # a forgotten client's: deleted or time passing plans nothing for them
        first_look = appointment is not None and self._first_look.get(appointment.calendar_id, False)
        tracked, bookings = follow(previous, appointment, now, self.rules, first_look)  # after a change of client, two bookings
        if tracked is None:
            return
        self.ledger.save_tracked(tracked)
        for booking, happenings in bookings:
            for happening in happenings:
                if not self.ledger.add_happening(happening):
                    continue
                report.happenings[happening.kind.value] += 1
                if booking.client_organised:
                    continue  # the client's own event: reminders only (slotguard/planning/reminders.py), no fee, no other mail
                planned = self.planner.plan(happening, booking, now)
                for more in self.features.hook.slotguard_after_happening(  # a slot offer to the waitlist
                        happening=happening, appointment=booking, ledger=self.ledger, settings=self.settings, now=now):
                    planned += more
                for action in planned:
                    report.planned[f"{action.kind.value}:{action.state.value}"] += 1
                self._touched.add((happening.calendar_id, happening.event_id))

    def check_time(self, now: datetime, report: TickReport) -> None:
        """Let time pass for appointments that started: attendance settles, marks take effect."""
        with self.ledger.transaction():
            contain_each(
                self.ledger, report, self.ledger.open_appointments_started(now - TIME_CHECK_HORIZON, now),
                lambda tracked: self._observe(tracked, tracked.appointment, now, report),
                lambda tracked: (tracked.appointment.calendar_id, tracked.appointment.event_id, f"appointment {tracked.appointment.event_id}"),
                now,
            )
            # Reminders fallen due, card holds about to lapse (slotguard/features/).
            for planned in self.features.hook.slotguard_time_passes(ledger=self.ledger, settings=self.settings, now=now):
                for action in planned:
                    report.planned[f"{action.kind.value}:{action.state.value}"] += 1

    # -- execution ------------------------------------------------------------------------
    def execute_due(self, now: datetime, report: TickReport, only: str | None = None) -> None:
        for action in self.ledger.due_actions(OPEN_STATES, now):
            if self.stop_requested():
                break
            if only and action.id != only:
                continue
            self.execute(action, now, report)

    def execute(self, action: Action, now: datetime, report: TickReport) -> None:
        """Carry out one action, recording the outcome. Never raises for the action's own
        failures, expected (an adapter's error) or not (a bug anywhere: it fails alone, its
        money looked up first; slotguard/run/action_failure.py), except a LedgerError."""
        try:
            with action_context(action.id):  # every line logged while it is carried out names it
                self._execute(action, now, report)
        except LedgerError:
            raise
        except Exception as error:  # noqa: BLE001 - one action never holds up the others
            unexpected_failure(self.ledger, self.provider, self.settings, action.id, error, now, report)
        if action.kind in MONEY_KINDS:
            self._touched.add((action.calendar_id, action.event_id))

    def _execute(self, action: Action, now: datetime, report: TickReport) -> None:
        if action.kind in MONEY_KINDS and WAITING_WAIVER in action.context:
            return  # waived while its outcome was unknown: a lookup decides (recovery.py), not a new attempt
        if action.kind is ActionKind.EMAIL and not self._email_ready(action, now):
            return
        if wait_for_quiet_hours(self.ledger, self.settings, action, now):
            return  # no email to a client, and no charge, in their night
        if action.kind is ActionKind.CHARGE and not within_daily_cap(
                self.ledger, self.settings, action, now, lambda why: self._failed(action, action.state, why, now, report)):
            return
        owner = action_owner(action)  # the feature that planned it (slotguard/features/) checks it last
        if owner is not None and not owner.ready(action, self.ledger, self.provider, self.settings, now):
            return  # e.g. a debt paid meanwhile, a hold renewal no longer wanted: the owner cancelled it
        previous_state = action.state
        action.state = ActionState.EXECUTING
        action.attempts += 1
        if not self.ledger.update_action(action, now, f"attempt {action.attempts}", expect=[previous_state]):
            return  # waived or changed meanwhile
        try:
            note = "done"
            if action.kind is ActionKind.EMAIL:
                self._send(action, now)
            elif action.kind in MONEY_KINDS:
                note = self._move_money(action)
            action.state = ActionState.DONE
            action.executed_at = now
            action.last_error = ""
            with self.ledger.transaction():
                self._keep_waiting_waiver(action)
                self.ledger.update_action(action, now, note)
                renewal_problem = after_money(self.ledger, action, now)
                settle_waiting_waiver(self.ledger, action.id, now)
            if renewal_problem:
                report.problem(renewal_problem)
            if action.kind in MONEY_KINDS:
                _crash_point("after_commit", action)
            report.executed[f"{action.kind.value}:done"] += 1
            log.info("done action=%s kind=%s event=%s", action.id, action.kind.value, action.event_ref)
        except (AdapterError, TemplateProblem, ValueError) as error:
            if action.kind in MONEY_KINDS and not isinstance(error, AdapterError):
                raise  # not the provider's answer: the money may have moved (action_failure.py asks)
            self._failed(action, previous_state, error, now, report)

    def _keep_waiting_waiver(self, action: Action) -> None:
        """A waiver stored on the action while it was being carried out (`main.py waive` in
        another process) is kept when the outcome is written over it."""
        stored = self.ledger.action(action.id)
        if stored is not None and WAITING_WAIVER in stored.context:
            action.context[WAITING_WAIVER] = stored.context[WAITING_WAIVER]

    def _failed(self, action: Action, previous_state: ActionState, error: Exception, now: datetime, report: TickReport) -> None:
        with self.ledger.transaction():
            self._keep_waiting_waiver(action)
            self._record_failure(action, previous_state, error, now, report)
            settle_waiting_waiver(self.ledger, action.id, now)

    def _record_failure(self, action: Action, previous_state: ActionState, error: Exception, now: datetime, report: TickReport) -> None:
        retryable = isinstance(error, AdapterError) and error.retryable
        limit = self.settings.mail.max_attempts
        action.last_error = str(error)
        if isinstance(error, ReauthorizationNeeded):
            # Nothing is wrong with the action itself: it waits, without using up its
            # attempts, until the practitioner runs the auth command again.
            action.state = previous_state
            action.attempts -= 1
            action.due_at = now + REAUTH_WAIT
            self.ledger.update_action(action, now, f"waiting for the account to be connected again: {error}")
            report.executed[f"{action.kind.value}:waiting"] += 1
            report.problem(f"action {action.id} ({action.kind.value} for {action.client_email}) waits: {error}")
        elif isinstance(error, AdapterError) and error.retryable and action.kind in MONEY_KINDS:
            self._money_retry(action, error, now, report)
        elif retryable and action.attempts < limit:
            action.state = ActionState.PLANNED
            action.due_at = now + retry_delay(action.attempts)
            self.ledger.update_action(action, now, f"attempt {action.attempts} failed, retry at {to_utc_text(action.due_at)}: {error}")
            report.executed[f"{action.kind.value}:retry"] += 1
        else:
            action.state = ActionState.FAILED
            if not self.ledger.update_action(action, now, f"failed: {error}"):
                return  # waived or cancelled meanwhile (the daily cap's check reads it before): that stands
            report.executed[f"{action.kind.value}:failed"] += 1
            report.problem(f"action {action.id} ({action.kind.value} for {action.client_email}) failed: {error}")

    def _money_retry(self, action: Action, error: AdapterError, now: datetime, report: TickReport) -> None:
        """A money action the provider could not carry out for now (unreachable, 5xx, rate
        limited): tried again with back-off for `payments.retry_for`, then failed and listed
        in the digest as "could not reach" with the retry command."""
        provider = "Stripe" if self.provider.name == "stripe" else f"the {self.provider.name} provider"
        # The failed request may have been applied before its answer was lost: ask first.
        try:
            found = lookup(self.provider, action)
            action.context.pop(OUTCOME_UNKNOWN, None)
        except AdapterError:
            found = None
            action.context[OUTCOME_UNKNOWN] = True  # a waiver meanwhile waits for a lookup
        if found is not None:
            problem = record_found(self.ledger, action, found, now, f"attempt {action.attempts} failed ({error}), but {provider} has it")
            if problem:
                report.problem(problem)
            report.executed[f"{action.kind.value}:done"] += 1
            return
        due = next_money_try(self.settings.payments, action, error, now)
        if due is not None:
            action.state = ActionState.PLANNED
            action.due_at = due
            self.ledger.update_action(action, now, f"attempt {action.attempts} failed, retry at {to_utc_text(due)}: {error}")
            report.executed[f"{action.kind.value}:retry"] += 1
            return
        action.state = ActionState.FAILED
        tried = action.context.get(GAVE_UP_AFTER, "")
        self.ledger.update_action(action, now, f"failed: could not reach {provider} for {tried} ({action.attempts} attempts): {error}")
        report.executed[f"{action.kind.value}:failed"] += 1
        amount = f" of {action.amount}" if action.amount else ""
        report.problem(f"action {action.id} ({action.kind.value}{amount} for {action.client_email}) failed: could not reach "
                       f"{provider} for {tried}: {error}; once it is back, retry with `main.py retry {action.id}`")

    def _email_ready(self, action: Action, now: datetime) -> bool:
        """Emails wait for the fee they report on; lifecycle mail for a stale slot is dropped."""
        if not action.event_id:
            return True  # practice mail (the daily digest) is about no single appointment
        tracked = self.ledger.tracked(action.calendar_id, action.event_id)
        why = stale_email_reason(action, tracked, now)
        if why:
            action.state = ActionState.CANCELLED
            self.ledger.update_action(action, now, why)
            return False
        if action.reports_on:
            fee = self.ledger.action(action.reports_on)
            if fee and fee.state in (*OPEN_STATES, ActionState.EXECUTING):
                action.due_at = max(fee.due_at, now + timedelta(minutes=1))
                self.ledger.update_action(action, now, "waiting for the fee it reports on")
                return False
        return True

    def _send(self, action: Action, now: datetime) -> None:
        # Fetch what needs the provider, then compose (no call) and send (slotguard/run/email_effects.py).
        action.external_id = send_email(action, now, self.settings, self.policies, self.renderer, self.ledger, self.provider, self.mailer)

    def _move_money(self, action: Action) -> str:
        """Carry out a money action with the provider; return the note for its log."""
        if self.settings.payments.dry_run:
            action.context["dry_run"] = True
            action.external_id = "dry-run"
            log.info("dry-run action=%s kind=%s amount=%s", action.id, action.kind.value, action.amount)
            return "done"
        if action.kind is ActionKind.REFUND and action.context.get(TARGET):
            # What the ledger knows of the money to give back: a fee never paid (a
            # receivable, an unpaid link) is withdrawn rather than refunded.
            target = self.ledger.action(str(action.context[TARGET]))
            if target is not None:
                action.context["target_payment_status"] = str(target.context.get("payment_status", ""))
        _crash_point("before_call", action)
        result = self.provider.execute(action)
        _crash_point("after_call", action)
        if result.status == "not_attempted":
            raise AdapterError(result.detail or "not attempted", retryable=False)
        return record_payment_result(action, result)

    # -- write-back -----------------------------------------------------------------------
    def write_back(self, report: TickReport, now: datetime) -> None:
        """Write the fee status of every appointment touched this tick onto its event, and
        the notes still owed from earlier ticks (slotguard/practitioner/write_back.py)."""
        write_statuses(self.ledger, self.settings, self.write_backs, self._touched, now, report)
        self._touched = set()
