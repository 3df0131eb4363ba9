"""Retention: what the ledger keeps about clients, and for how long (docs/privacy.md).

Once a day (slotguard/features/retention.py) the daemon prunes the ledger by privacy.retention
and privacy.bookkeeping_years. The unit is an appointment (calendar id, event id) with its
snapshot, happenings and actions; its last activity is the latest of its start, its
happenings seen and its actions changed. A unit idle for longer than `retention`:

- with open money (`open_money` says why) is left whole: nothing of it is pruned or
  pseudonymised while a fee, hold, deposit, credit or outcome still waits on it;
- otherwise its snapshot, happenings, emails (but the booking confirmation of a recurring
  series that still has appointments kept), queued calendar note and problem are deleted,
  and its money records (every action but emails: charges, holds, captures, releases,
  refunds, credits, waivers, write-offs) are kept for the bookkeeping period with the
  client's address replaced by a pseudonym (slotguard/privacy/pseudonyms.py; one per client
  and batch), their name removed, and the address and name replaced in their
  reasons, contexts, happening keys and logs (the collections ladder leaves such records
  alone: slotguard/collections/ladder.py `debts`);
- once past the bookkeeping period (counted from the end of the calendar year of its last
  activity, as bookkeeping law counts) the rest is deleted too.

Then problems not seen for `retention` are deleted, and the meta entries kept under the
address of a client the ledger no longer names (card terms seen). A batch of units is one
transaction: a crash leaves it undone, and the next tick does it again; pruning again
changes nothing. `decide` is pure; `prune` reads, decides and writes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from slotguard.collections.debts import COLLECTIONS
from slotguard.domain.durations import from_utc_text, to_utc_text
from slotguard.domain.model import MONEY_KINDS, OUTCOME_UNKNOWN, OWED, WAITING_WAIVER, Action, ActionKind, ActionState
from slotguard.domain.payment_status import PaymentStatus
from slotguard.policies.account import CREDIT, DEPOSIT, PREPAYMENT, SETTLES, TARGET, purpose_of
from slotguard.privacy.pseudonyms import new_pseudonym
from slotguard.store import retention_rows as rows
from slotguard.store.ledger import Ledger

log = logging.getLogger("slotguard.retention")

UNFINISHED = frozenset({ActionState.PLANNED, ActionState.PENDING_REVIEW, ActionState.EXECUTING})
LIVE = frozenset({*UNFINISHED, ActionState.DONE})
FUNDS = frozenset({DEPOSIT, PREPAYMENT, CREDIT})  # money the practice holds for the client
NO_MONEY_HELD = frozenset({PaymentStatus.WAIVED, PaymentStatus.NOTHING_TAKEN, PaymentStatus.REFUNDED_ELSEWHERE,
                           PaymentStatus.SUPERSEDED, PaymentStatus.SETTLED, PaymentStatus.WRITTEN_OFF})


@dataclass(frozen=True)
class Uses:
    """Which actions other live actions act on: `settled` (a deposit or credit used up or
    given back: `settles`), `targeted` (a charge or hold captured, released or refunded:
    `target_action_id`), `closed_holds` (named either way by an action carried out)."""

    settled: frozenset[str] = frozenset()
    targeted: frozenset[str] = frozenset()
    closed_holds: frozenset[str] = frozenset()

    @classmethod
    def of(cls, references: Iterable[tuple[str, Mapping[str, Any]]]) -> Uses:
        settled: set[str] = set()
        targeted: set[str] = set()
        done: set[str] = set()
        for state, context in references:
            if state not in LIVE:
                continue
            for key, into in ((SETTLES, settled), (TARGET, targeted)):
                if context.get(key):
                    into.add(str(context[key]))
                    if state == ActionState.DONE:
                        done.add(str(context[key]))
        return cls(frozenset(settled), frozenset(targeted), frozenset(done))


def open_money(action: Action, uses: Uses) -> str:
    """Why `action` keeps money open, in a few words; "" when it does not. Open: anything
    not finished (planned, in review, being carried out); an outcome not known or a waiver
    waiting on it; a money action that failed and was not resolved (a collections retry's
    failure leaves its debt open instead); a charge the client has not paid (an unpaid fee,
    a debt in collections, an installment or settlement asked); a card hold neither captured
    nor released; a deposit, prepayment or credit taken and not used up or given back."""
    if action.state in UNFINISHED:
        return f"{action.kind.value} {action.state.value}"
    if action.kind is ActionKind.EMAIL:
        return ""
    if action.context.get(OUTCOME_UNKNOWN) or WAITING_WAIVER in action.context:
        if action.state is not ActionState.DONE:
            return f"{action.kind.value}: outcome not known"
    if action.state is ActionState.FAILED and action.kind in MONEY_KINDS and action.policy != COLLECTIONS:
        return f"{action.kind.value} failed, not retried or waived"
    if action.state is not ActionState.DONE:
        return ""
    status = action.context.get("payment_status", "")
    if status in OWED:
        return f"{action.kind.value} {status}"
    if action.kind is ActionKind.HOLD and action.id not in uses.closed_holds:
        return "hold neither captured nor released"
    if (purpose_of(action.kind, action.context) in FUNDS and action.kind in (ActionKind.CHARGE, ActionKind.HOLD, ActionKind.CREDIT)
            and status not in NO_MONEY_HELD and action.id not in uses.settled and action.id not in uses.targeted):
        return f"{purpose_of(action.kind, action.context)} not used up"
    return ""


@dataclass
class Pruned:
    """What one pruning did, in counts (what the log says: never who)."""

    appointments: int = 0
    happenings: int = 0
    emails: int = 0
    pseudonymised: int = 0
    money_deleted: int = 0
    kept_open: int = 0
    problems: int = 0
    meta: int = 0
    open_reasons: dict[str, int] = field(default_factory=dict)
    resume: tuple[str, str] | None = None  # where the next batch starts; None: nothing left

    def add(self, other: Pruned) -> None:
        for name in ("appointments", "happenings", "emails", "pseudonymised", "money_deleted", "kept_open", "problems", "meta"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for why, count in other.open_reasons.items():
            self.open_reasons[why] = self.open_reasons.get(why, 0) + count

    def line(self) -> str:
        return (f"appointments={self.appointments} happenings={self.happenings} emails={self.emails} "
                f"pseudonymised={self.pseudonymised} money_deleted={self.money_deleted} kept_open={self.kept_open} "
                f"problems={self.problems} meta={self.meta}")


@dataclass(frozen=True)
class Decision:
    """What becomes of one idle unit: `keep` (open money: why), or `prune` (delete its
    snapshot, happenings and emails, pseudonymise its money records), or `delete` (past the
    bookkeeping period: everything)."""

    unit: tuple[str, str]
    what: str  # "keep", "prune", "delete", "done" (pseudonymised already: nothing to do)
    why: str = ""


def bookkeeping_cutoff(now: datetime, years: int) -> datetime:
    """Records whose last activity is before this are past the bookkeeping period: kept to the
    end of the calendar year `years` after the year of their last activity."""
    return datetime(now.astimezone(UTC).year - years, 1, 1, tzinfo=UTC)


def decide(unit: rows.IdleUnit, actions: list[Action], uses: Uses, past_bookkeeping: datetime) -> Decision:
    """What to do with an idle unit. Pure."""
    key = (unit.calendar_id, unit.event_id)
    for action in actions:
        why = open_money(action, uses)
        if why:
            return Decision(key, "keep", why)
    if unit.last < past_bookkeeping:
        return Decision(key, "delete")
    return Decision(key, "prune" if unit.personal else "done")


def scrub(text: str, names: Iterable[str], pseudonym: str) -> str:
    """`text` with each of `names` (an address, in plain and URL-encoded form; a name of
    three letters or more), in any case, replaced by `pseudonym`."""
    wanted = tuple(name for name in names if len(name) >= 3)
    lowered = text.lower()
    if not any(name.lower() in lowered for name in wanted):
        return text  # the usual case, without a regular expression
    return _pattern(wanted).sub(pseudonym, text)


@lru_cache(maxsize=256)
def _pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    longest_first = sorted(names, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(name) for name in longest_first) + r")(?!\w)", re.IGNORECASE)


def _scrub_value(value: Any, names: list[str], pseudonym: str) -> Any:
    if isinstance(value, str):
        return scrub(value, names, pseudonym)
    if isinstance(value, list):
        return [_scrub_value(item, names, pseudonym) for item in value]
    if isinstance(value, dict):
        return {key: _scrub_value(item, names, pseudonym) for key, item in value.items()}
    return value


def pseudonymised(action: Action, pseudonym: str) -> Action:
    """`action` standing for its client by `pseudonym`: the address replaced, the name
    removed, both replaced wherever its reason, last error, context and happening key quote
    them (a booking handed over to another client keys its happenings by the new client's
    address, slotguard/intake/tracker.py `hand_over`). The id stays: it was derived from the
    key once, and nothing looks a kept record up by its key (its happenings are gone)."""
    names = _names(action)
    return replace(
        action,
        client_email=pseudonym,
        client_name="",
        reason=scrub(action.reason, names, pseudonym),
        last_error=scrub(action.last_error, names, pseudonym),
        happening_key=scrub(action.happening_key, names, pseudonym),
        context=_scrub_value(action.context, names, pseudonym),
    )


def _names(action: Action) -> list[str]:
    email = action.client_email
    found = [email, email.replace("@", "%40")] if "@" in email else []
    if action.client_name.strip():
        found.append(action.client_name.strip())
    return found


def _confirms_kept_series(db: Any, action: Action) -> bool:
    """A recurring series' booking confirmation stays while the series has appointments kept:
    without it the next instance would be confirmed again as a new series."""
    series = action.context.get("series_id")
    return (action.template == "booking_confirmation" and bool(series) and action.state is ActionState.DONE
            and rows.series_still_booked(db, action.client_email, str(series)))


def prune(ledger: Ledger, retention_cutoff: datetime, past_bookkeeping: datetime,
          batch: int | None = None, after: tuple[str, str] = ("", "")) -> Pruned:
    """Prune the units idle since before `retention_cutoff` (see the module docstring) that
    come after `after` (calendar id, event id), at most `batch` of them (None: all), in one
    transaction of `ledger`'s; return the counts, with `resume` set to the last unit looked
    at when more are left."""
    pruned = Pruned()
    db = ledger.db
    with ledger.transaction():
        idle = sorted(rows.idle_units(db, retention_cutoff), key=lambda unit: (unit.calendar_id, unit.event_id))
        # A unit pseudonymised already, and within the bookkeeping period, needs no look.
        look = [unit for unit in idle
                if (unit.calendar_id, unit.event_id) > after and (unit.personal or unit.last < past_bookkeeping)]
        if batch is not None and len(look) > batch:
            look = look[:batch]
            pruned.resume = (look[-1].calendar_id, look[-1].event_id)
        by_unit = rows.unit_actions(db, [(unit.calendar_id, unit.event_id) for unit in look])
        uses = Uses.of(rows.references(db))
        clients: set[str] = set()
        pseudonyms: dict[str, str] = {}
        for unit in look:
            key = (unit.calendar_id, unit.event_id)
            actions = by_unit[key]
            decision = decide(unit, actions, uses, past_bookkeeping)
            if decision.what == "keep":
                pruned.kept_open += 1
                pruned.open_reasons[decision.why] = pruned.open_reasons.get(decision.why, 0) + 1
                continue
            if decision.what == "done":
                continue
            clients.update(rows.units_with_clients(db, [key])[key])
            appointments, happenings = rows.delete_unit_records(db, key)
            pruned.appointments += appointments
            pruned.happenings += happenings
            emails = [action.id for action in actions if action.kind is ActionKind.EMAIL and not _confirms_kept_series(db, action)]
            money = [action for action in actions if action.kind is not ActionKind.EMAIL]
            pruned.emails += rows.delete_actions(db, emails)
            if decision.what == "delete":
                pruned.money_deleted += rows.delete_actions(db, [action.id for action in money])
                continue
            for action in money:
                if "@" not in action.client_email and not action.client_name:
                    continue  # a pseudonym already
                pseudonym = pseudonyms.setdefault(action.client_email, new_pseudonym())
                names = _names(action)
                rows.rewrite_action(db, pseudonymised(action, pseudonym))
                for seq, note in rows.log_notes(db, action.id):
                    cleaned = scrub(note, names, pseudonym)
                    if cleaned != note:
                        rows.set_log_note(db, seq, cleaned)
                pruned.pseudonymised += 1
        pruned.problems = rows.delete_problems_before(db, retention_cutoff)
        for email in sorted(clients):
            if "@" in email and not rows.client_still_named(db, email):
                pruned.meta += rows.forget_client_meta(db, email)
    return pruned


LAST_RUN = "retention:last_run"  # meta: when the daily pruning last ran (UTC text)
BATCH = 2000  # units per transaction (a few tenths of a second on SQLite)


def prune_daily(ledger: Ledger, settings: Any, now: datetime, batch: int = BATCH) -> Pruned | None:
    """Prune by `settings.privacy` unless it ran already on this day (the practice's time
    zone); return the counts, or None when it had run today. `batch` units per transaction,
    so that a large first pruning (after an upgrade) never holds the ledger for long: other
    writers (`main.py waive`) get their turn between batches. Each batch is whole or not at
    all, and the day's mark is written with the last one: after a crash the next tick goes
    on where it stopped (what is done stays done). Logged (counts only)."""
    zone = settings.zone
    last = ledger.meta(LAST_RUN)
    if last is not None and from_utc_text(last).astimezone(zone).date() >= now.astimezone(zone).date():
        return None
    privacy = settings.privacy
    cutoff, past = now - privacy.retention, bookkeeping_cutoff(now, privacy.bookkeeping_years)
    pruned, after = Pruned(), ("", "")
    while True:
        with ledger.transaction():
            part = prune(ledger, cutoff, past, batch, after)
            if part.resume is None:
                ledger.set_meta(LAST_RUN, to_utc_text(now))
        pruned.add(part)
        if part.resume is None:
            break
        after = part.resume
    if not ledger.place.postgres:
        # Deleted rows are overwritten in the file (secure_delete); their old pages in the
        # write-ahead log go with a checkpoint. Other readers may hold some back: best effort.
        ledger.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    reasons = " ".join(f"{why.replace(' ', '_')}={count}" for why, count in sorted(pruned.open_reasons.items()))
    log.info("retention pruned %s%s", pruned.line(), f" open: {reasons}" if reasons else "")
    return pruned
