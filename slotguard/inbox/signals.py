"""A client's cancellation by email, laid over the appointment as the calendar shows it
(docs/inbox.md). Placeholder until the client commands land: the appointment as read."""

from __future__ import annotations

from typing import Any

from slotguard.domain.model import Appointment


def with_email_signals(ledger: Any, appointment: Appointment) -> Appointment:
    """`appointment` as the calendar shows it, with what its client said by email laid over."""
    return appointment
