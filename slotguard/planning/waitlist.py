"""Offering a freed slot to the waitlist.

When a client cancels an appointment that starts within `mail.slot_freed_within`, everyone
on `mail.waitlist`, and every client whose later booking carries the wants-earlier mark
(`#earlier` by default: they asked for an earlier time), gets a `slot_freed` email offering
the time, first come first served through the practice's booking link. The offer goes out at once; one still unsent when the
slot starts is dropped by the engine (action.appointment_start has passed). The cancelling
client is never on the list for their own slot, and an offer never names them.

Pure planning on a happening, like the planner; the engine calls `plan_slot_freed` right
after planning a happening.
"""

from __future__ import annotations

from datetime import datetime

from slotguard.config.schema import Settings
from slotguard.domain.durations import to_utc_text
from slotguard.domain.model import Action, ActionKind, ActionSubject, Appointment, Happening, HappeningKind, new_action
from slotguard.domain.plan import Plan
from slotguard.store.apply import Store
from slotguard.store.ledger import Ledger

POLICY = "waitlist"
TEMPLATE = "slot_freed"

def plan_slot_freed(settings: Settings, ledger: Ledger, happening: Happening, appointment: Appointment, now: datetime) -> list[Action]:
    """Store one `slot_freed` email per waitlist address for a short-notice client
    cancellation; return the actions newly stored (none for anything else)."""
    if happening.kind is not HappeningKind.CANCELLED_BY_CLIENT:
        return []
    if not (now < appointment.start <= now + settings.mail.slot_freed_within):
        return []
    # The configured list first, then clients who asked for an earlier time, once each.
    recipients: dict[str, str] = {address.lower(): "" for address in settings.mail.waitlist}
    for email, name in ledger.clients_wanting_earlier(appointment.start):
        recipients.setdefault(email.lower(), name)
    offers = []
    for address, name in recipients.items():
        if address == appointment.client.email.lower():
            continue
        action = new_action(
            ActionSubject(appointment.calendar_id, appointment.event_id, address, name, appointment.start),
            ActionKind.EMAIL, POLICY,
            f"offer the slot freed at short notice to the waitlist ({to_utc_text(appointment.start)})",
            key=happening.key, slot=f"{TEMPLATE}-{address.lower()}", now=now, template=TEMPLATE,
        )
        offers.append(action)
    return Store(ledger).apply(Plan(actions=tuple(offers)), now=now)
