"""One failure stays with its item: an event, an appointment, a calendar or a step of a tick.

The engine processes each event (and each appointment the clock looks at again) as if under
its own ledger savepoint, and each calendar and each step of a tick on its own. An exception
there (a bug in Slotguard or in a policy plugin, or input that nothing before caught) undoes
only that item's writes, becomes a problem the practitioner sees in the tick's summary (and
in `status` for an event), and is logged with the place it was raised; the rest go on.
KeyboardInterrupt and SystemExit are never caught, nor is a LedgerError: a ledger that
cannot be written (a full disk, a read-only or damaged file) is no item's fault, so it ends
the tick with one message, the whole transaction rolled back (slotguard/store/ledger_errors.py).
Two events of one page under one id (a source's fault, or a UID crafted to match someone
else's appointment) are contained together (`unique_ids`): read one after the other, the
second would overwrite what the first made, so neither is read; they become one problem naming
both, the appointment known by that id stays as it was, and the page is no longer `full`, so
nothing missing from it is taken as deleted.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from slotguard.domain.interfaces import SyncPage
from slotguard.domain.untrusted import one_line, shown
from slotguard.store.ledger import Ledger, LedgerError

log = logging.getLogger("slotguard.engine")
T = TypeVar("T")


def describe(error: BaseException) -> str:
    """An exception for a message: its type and its text on one short line."""
    text = one_line(str(error), 200)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def raised_at(error: BaseException) -> str:
    """file:line of the innermost frame that raised, for the log (no locals, no data)."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "?"
    return f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno}"


def problem_item(event_id: str) -> str:
    """The key a problem is stored under for an event id: the id itself, or a quoted,
    folded form when the id holds line breaks or is absurdly long."""
    return event_id if len(event_id) <= 1024 and event_id.isprintable() else shown(event_id)


@contextmanager
def contained(ledger: Ledger, report: Any, calendar_id: str, item: str, label: str, now: datetime) -> Iterator[None]:
    """Run one item (the body of the `with`) under a savepoint of the ledger's transaction.

    `report` is the tick's TickReport: what the item counts (happenings, planned actions)
    is kept only if it succeeds. On an exception the item's writes are undone, a problem
    is recorded on (calendar_id, item) and reported, and the `with` ends normally.
    """
    outer = report.happenings, report.planned
    report.happenings, report.planned = Counter(), Counter()
    try:
        with ledger.savepoint():
            yield
    except LedgerError:
        report.happenings, report.planned = outer
        raise
    except Exception as error:  # noqa: BLE001 - one item never stops the others
        report.happenings, report.planned = outer
        message = (
            f"{label} could not be processed ({describe(error)}); nothing was changed for it and the others went on. "
            "This is a bug in Slotguard or a policy plugin: please report it with the log"
        )
        log.error("item failed calendar=%s item=%s error=%s at=%s", calendar_id, shown(item), type(error).__name__, raised_at(error))
        ledger.record_problem(calendar_id, item, message, now)
        report.problem(f"calendar {calendar_id}: {message}")
    else:
        outer[0].update(report.happenings)
        outer[1].update(report.planned)
        report.happenings, report.planned = outer


def contain_each(
    ledger: Ledger,
    report: Any,
    items: Iterable[T],
    process: Callable[[T], None],
    identify: Callable[[T], tuple[str, str, str]],
    now: datetime,
) -> None:
    """Process every item; an exception in one undoes only that one (see `contained`).

    The items are first processed together under one savepoint: a savepoint per item
    would make SQLite copy every page an item touches that an earlier item had touched
    (its statement journal), a third of a first sync's time. Only when something raises
    are they all undone and processed again one savepoint each, so the others are kept.
    `identify(item)` gives (calendar_id, problem item, label) for a failing one.
    """
    items = list(items)
    problems_before = len(report.problems)
    outer = report.happenings, report.planned
    report.happenings, report.planned = Counter(), Counter()
    try:
        with ledger.savepoint():
            for item in items:
                process(item)
    except LedgerError:
        report.happenings, report.planned = outer
        raise
    except Exception:  # noqa: BLE001 - redone one at a time below, where it is reported
        del report.problems[problems_before:]
        report.happenings, report.planned = outer
        for item in items:
            calendar_id, key, label = identify(item)
            with contained(ledger, report, calendar_id, key, label, now):
                process(item)
        return
    outer[0].update(report.happenings)
    outer[1].update(report.planned)
    report.happenings, report.planned = outer


def run_step(name: str, report: Any, run: Callable[[], object]) -> None:
    """Run one step of a tick; an exception is reported and logged, never raised."""
    try:
        run()
    except LedgerError:
        raise
    except Exception as error:  # noqa: BLE001 - one failing step never stops the tick
        report.problem(f"the {name} step failed ({describe(error)}); the other steps went on and it is tried again next tick")
        log.error("step failed step=%r error=%s at=%s", name, type(error).__name__, raised_at(error))


def calendar_failed(ledger: Ledger, report: Any, calendar_id: str, error: Exception, now: datetime) -> None:
    """Report a calendar whose reading raised something unexpected, and keep it as its
    sync error (shown by `status`), so the other calendars go on."""
    message = f"could not be read ({describe(error)}); the other calendars went on and it is tried again next tick"
    log.error("calendar failed calendar=%s error=%s at=%s", calendar_id, type(error).__name__, raised_at(error))
    report.problem(f"calendar {calendar_id}: {message}")
    try:
        ledger.record_sync_error(calendar_id, message, now)
    except Exception:  # noqa: BLE001 - the ledger itself may be what failed
        log.exception("could not record the sync error calendar=%s", calendar_id)


def unique_ids(page: SyncPage) -> SyncPage:
    """`page`, with the events that share an id replaced by one problem (see the module docstring)."""
    groups: dict[str, list[dict]] = {}
    for event in page.events:
        groups.setdefault(str(event.get("id") or ""), []).append(event)
    shared = {event_id for event_id, events in groups.items() if event_id and len(events) > 1}
    if not shared:
        return page
    events: list[dict] = []
    for event in page.events:
        event_id = str(event.get("id") or "")
        if event_id not in shared:
            events.append(event)
        elif groups[event_id][0] is event:
            named = " and ".join(shown(str(each.get("summary") or each.get("_error") or each.get("status") or ""), 40) for each in groups[event_id][:2])
            events.append({"id": event_id, "_error": f"{len(groups[event_id])} events in the calendar have this id ({named}); "
                                                      "neither is read until only one is left"})
    return replace(page, events=events, full=False)
