"""Who is behind the month's figures: the waivers grouped by who let a fee go and why, the
policies that spared a fee (a first-offence grace, a loyal client), the clients to talk to,
and since when each policy is enabled.

Who waived a fee is read from what the ledger keeps: a fee a policy took to zero is a `waive`
action whose reason chain says "NAME waived it: why" (a reduction: "NAME reduced it ...");
one not charged because the client had not been told the policy says "no fee: the client had
not been told the policy"; a fee the practitioner waived (the waive mark, `main.py waive`) is
in state `waived`, its why the note of that change in the action's log.

When a policy was enabled: the ledger keeps, in `meta`, the first time a tick ran with it
in `policies.enabled` (`record_enabled`, a tick step of the monthly report feature; taken
out when it is no longer enabled, so enabling it again starts a new date). A ledger older than
that record has no such row: then the policy's first action stands in for the date, and the
earlier of the two wins.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from slotguard.domain.durations import from_utc_text, to_utc_text
from slotguard.reports.figures import REPLACED, is_late
from slotguard.reports.months import Month
from slotguard.store.ledger import Ledger

PRACTITIONER = "practitioner"
NOT_TOLD = "policy_notice"  # the planner's own waiver: the client had not been told the policy
ENABLED_KEY = "policy_enabled:"
REPEAT_WINDOW = timedelta(days=90)
REPEAT_AT_LEAST = 2
_BY_POLICY = re.compile(r"(?:^|; )([a-z][a-z0-9_]*) (waived|reduced) it(?:[^:;]*)?(?:: ([^;]*))?")
_NOT_TOLD = "no fee: the client had not been told the policy"


@dataclass(frozen=True)
class WaiverGroup:
    who: str  # a policy's name, or "practitioner"
    why: str
    count: int
    amount: int  # minor units let go


@dataclass(frozen=True)
class Spared:
    policy: str
    waived: int  # fees taken to zero
    reduced: int  # fees made smaller
    amount: int  # minor units of the fees taken to zero


@dataclass(frozen=True)
class ClientToTalkTo:
    email: str
    name: str
    incidents: int
    last: datetime


def _month_actions(ledger: Ledger, month: Month, where: str, params: list) -> list:
    return ledger.db.execute(
        "SELECT id, kind, state, policy, reason, amount_minor FROM actions "
        "WHERE COALESCE(appointment_start, created_at) >= ? AND COALESCE(appointment_start, created_at) < ? "
        f"AND context LIKE '%\"incident\":true%' AND policy != 'collections' AND reason NOT LIKE '{REPLACED}' AND {where}",
        [month.start, month.end, *params],
    ).fetchall()


def waivers(ledger: Ledger, month: Month) -> list[WaiverGroup]:
    """The month's waived fees grouped by who waived them and why, largest groups first."""
    counts: Counter[tuple[str, str]] = Counter()
    amounts: Counter[tuple[str, str]] = Counter()
    for row in _month_actions(ledger, month, "((kind = 'waive' AND state = 'done') OR state = 'waived')", []):
        if row["state"] == "waived":
            who, why = PRACTITIONER, _practitioner_why(ledger, row["id"])
        elif _NOT_TOLD in row["reason"]:
            who, why = NOT_TOLD, "the client had not been told the policy"
        else:
            found = [match for match in _BY_POLICY.finditer(row["reason"]) if match.group(2) == "waived"]
            who = found[-1].group(1) if found else PRACTITIONER
            why = (found[-1].group(3) or "").strip() if found else ""
        key = (who, why[:120])
        counts[key] += 1
        amounts[key] += int(row["amount_minor"] or 0)
    return [WaiverGroup(who, why, count, amounts[(who, why)]) for (who, why), count in counts.most_common()]


def _practitioner_why(ledger: Ledger, action_id: str) -> str:
    row = ledger.db.execute(
        "SELECT note FROM action_log WHERE action_id = ? AND state = 'waived' ORDER BY seq DESC LIMIT 1", (action_id,)
    ).fetchone()
    # The store writes "waived: WHY"; `main.py waive` gives WHY as "waived by the practitioner: REASON".
    note = (row["note"] if row else "").strip().removeprefix("waived: ").removeprefix("waived by the practitioner: ")
    return note[:120]


def spared(ledger: Ledger, month: Month) -> dict[str, Spared]:
    """For each modifier policy, the month's fees it took to zero or made smaller."""
    waived: Counter[str] = Counter()
    reduced: Counter[str] = Counter()
    amounts: Counter[str] = Counter()
    rows = _month_actions(ledger, month, "state != 'cancelled' AND (reason LIKE ? OR reason LIKE ?)", ["% waived it%", "% reduced it%"])
    for row in rows:
        for match in _BY_POLICY.finditer(row["reason"]):
            name = match.group(1)
            if match.group(2) == "waived" and row["kind"] == "waive":
                waived[name] += 1
                amounts[name] += int(row["amount_minor"] or 0)
            elif match.group(2) == "reduced":
                reduced[name] += 1
    return {name: Spared(name, waived[name], reduced[name], amounts[name]) for name in sorted(set(waived) | set(reduced))}


def clients_to_talk_to(ledger: Ledger, month: Month, late_window: timedelta = timedelta(hours=24)) -> list[ClientToTalkTo]:
    """Clients with at least REPEAT_AT_LEAST no-shows or late cancellations (with less notice
    than `late_window`, slotguard/reports/figures.py `is_late`) in the REPEAT_WINDOW ending
    with the month, one of them in the month; most incidents first. A cancellation in good
    time is no incident: a client who declines weeks ahead is not someone to call."""
    since = to_utc_text(from_utc_text(month.end) - REPEAT_WINDOW)
    # Counted here, not by GROUP BY: SQLite would walk the client index for the grouping,
    # reading every appointment of the ledger in the index's order.
    counts: Counter[str] = Counter()
    last: dict[str, str] = {}
    window = (min(since, month.start), month.end)
    cancelled_at: dict[tuple[str, str, str], str] = {}
    for row in ledger.db.execute(
        "SELECT calendar_id, event_id, start_utc, MAX(at) AS at FROM happenings WHERE kind = 'cancelled_by_client' "
        "AND start_utc >= ? AND start_utc < ? GROUP BY calendar_id, event_id, start_utc", window,
    ):
        cancelled_at[(row["calendar_id"], row["event_id"], row["start_utc"])] = row["at"]
    for row in ledger.db.execute(
        "SELECT calendar_id, event_id, client_email, start_utc, cancellation FROM appointments WHERE start_utc >= ? "
        "AND start_utc < ? AND (outcome = 'no_show' OR cancellation = 'client')", window,
    ):
        if row["cancellation"] == "client" and not is_late(
            row["start_utc"], cancelled_at.get((row["calendar_id"], row["event_id"], row["start_utc"])), late_window,
        ):
            continue
        counts[row["client_email"]] += 1
        last[row["client_email"]] = max(last.get(row["client_email"], ""), row["start_utc"])
    wanted = sorted((email for email, count in counts.items() if count >= REPEAT_AT_LEAST and last[email] >= month.start),
                    key=lambda email: (-counts[email], email))
    names = _names(ledger, wanted)
    return [ClientToTalkTo(email, names.get(email, ""), counts[email], from_utc_text(last[email])) for email in wanted]


def _names(ledger: Ledger, emails: list[str]) -> dict[str, str]:
    """The name each client was last written to by (the actions' client_name)."""
    found: dict[str, str] = {}
    for index in range(0, len(emails), 500):
        chunk = emails[index:index + 500]
        rows = ledger.db.execute(
            f"SELECT client_email, client_name FROM actions WHERE client_email IN ({','.join('?' * len(chunk))}) "
            "AND client_name != '' ORDER BY seq", chunk,
        )
        found.update((row["client_email"], row["client_name"]) for row in rows)
    return found


def record_enabled(ledger: Ledger, enabled: list[str], now: datetime) -> list[str]:
    """Note in the ledger since when each policy of `enabled` is enabled (the first tick that
    saw it), and forget those no longer enabled. Returns the names newly noted."""
    stored = {row["key"][len(ENABLED_KEY):] for row in ledger.db.execute(
        "SELECT key FROM meta WHERE key LIKE ?", (ENABLED_KEY + "%",)
    )}
    new = [name for name in enabled if name not in stored]
    gone = stored - set(enabled)
    if new or gone:
        with ledger.transaction():
            for name in new:
                ledger.set_meta(ENABLED_KEY + name, to_utc_text(now))
            for name in gone:
                ledger.db.execute("DELETE FROM meta WHERE key = ?", (ENABLED_KEY + name,))
    return new


def enabled_since(ledger: Ledger, enabled: list[str]) -> dict[str, datetime]:
    """When each enabled policy was enabled, as far as the ledger knows (see the module's
    docstring); a policy the ledger knows nothing of is left out."""
    found: dict[str, str] = {}
    for row in ledger.db.execute("SELECT key, value FROM meta WHERE key LIKE ?", (ENABLED_KEY + "%",)):
        found[row["key"][len(ENABLED_KEY):]] = row["value"]
    if enabled:
        rows = ledger.db.execute(
            f"SELECT policy, MIN(created_at) AS first FROM actions WHERE policy IN ({','.join('?' * len(enabled))}) GROUP BY policy",
            list(enabled),
        )
        for row in rows:
            name = row["policy"]
            found[name] = min(found.get(name, row["first"]), row["first"])
    return {name: from_utc_text(found[name]) for name in enabled if name in found}


def group_by_who(groups: list[WaiverGroup]) -> dict[str, list[WaiverGroup]]:
    """The groups under each who, in order of first appearance."""
    by_who: dict[str, list[WaiverGroup]] = defaultdict(list)
    for group in groups:
        by_who[group.who].append(group)
    return dict(by_who)
