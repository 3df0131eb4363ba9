"""Which actions quiet hours hold, and until when (`mail.quiet_hours`, docs/templates.md).

No client email arrives at night, and a charge goes with the email that explains it, so
both wait for the end of quiet hours in the client's time zone (the appointment's, else the
practice's): every email to a client, and every `charge` or `capture` (money taken from the
client; a refund or a release only gives back). Not held:

- mail to the practitioner (the digest, a referral to a collection agency);
- the answer to a booking made or moved in the last hour (`JUST_MADE`): its confirmation, a
  deposit or prepayment request and the money it asks for. The client (or the practitioner
  on the phone with them) has just acted and waits for the confirmation, which also states
  the policy, so it must arrive before a session booked for early next morning. Bookings
  found later (a catch-up after the daemon was stopped, a first look at a calendar) wait;
- mail, and money asked ahead, about a session that starts before quiet hours end (a
  reminder at 06:00 for a 07:30 session is of no use at 08:00);
- what the practitioner asks for now (`main.py charge-now`: the fee and its notice, `AT_ONCE`);
- the email that explains a charge taken in the last hour (taken at 20:59, its notice a
  minute later): a charge never goes without its explanation.

`allowed_at` is pure; slotguard/run/quiet_hours.py applies it to an action about to be carried out.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from slotguard.config.schema import Settings
from slotguard.domain.model import Action, ActionKind, Appointment
from slotguard.domain.quiet_hours import next_allowed
from slotguard.policies.account import DEPOSIT, PREPAYMENT, purpose_of

# Mail the practitioner reads, never held.
PRACTITIONER_TEMPLATES = frozenset({"practitioner_digest", "payment_referral"})
# What answers a booking: sent at once when the booking was just made or moved.
BOOKING_ANSWERS = frozenset({"booking_confirmation", "deposit_request"})
JUST_MADE = timedelta(hours=1)
# Context of an action the practitioner asked to carry out now (charge-now): not held.
AT_ONCE = "at_once"
TAKES_MONEY = (ActionKind.CHARGE, ActionKind.CAPTURE)


def client_zone(settings: Settings, appointment: Appointment | None) -> str:
    """The time zone of the client's wall clock: the appointment's, else the practice's."""
    return (appointment.timezone if appointment is not None else "") or settings.practice.timezone


def held(settings: Settings, action: Action) -> bool:
    """Whether quiet hours apply to `action` at all: an email to a client, or money taken
    from one, not asked for now by the practitioner."""
    if AT_ONCE in action.context:
        return False
    if action.kind is ActionKind.EMAIL:
        practitioner = {settings.practice.email.lower(), *(a.lower() for a in settings.calendar.practitioner_addresses)}
        return bool(action.event_id) and action.template not in PRACTITIONER_TEMPLATES and action.client_email.lower() not in practitioner
    return action.kind in TAKES_MONEY


def allowed_at(settings: Settings, action: Action, appointment: Appointment | None, now: datetime,
               charged_at: datetime | None = None) -> datetime:
    """When `action`, due at `now`, may be carried out: `now`, or the end of the quiet hours
    `now` falls in. `appointment` is the one it is about (None: unknown); `charged_at`, for
    an email, when the money it reports on was taken (None: not taken, or nothing)."""
    quiet = settings.mail.quiet
    if quiet is None or not held(settings, action):
        return now
    if charged_at is not None and now - charged_at <= JUST_MADE:
        return now  # the explanation of a charge taken just before quiet hours began goes with it
    allowed = next_allowed(now, quiet, client_zone(settings, appointment))
    if allowed <= now:
        return now
    if appointment is None:
        return allowed
    asks_ahead = action.template in BOOKING_ANSWERS or purpose_of(action.kind, action.context) in (DEPOSIT, PREPAYMENT)
    if asks_ahead and now - appointment.updated <= JUST_MADE:
        return now  # the answer to what was just done
    if (action.kind is ActionKind.EMAIL or asks_ahead) and now < appointment.start <= allowed:
        return now  # later would be after the session has begun
    return allowed
