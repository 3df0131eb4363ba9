"""How values are written into ledger rows and read back: times, appointment snapshots."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime

from slotguard.domain.durations import from_utc_text, to_utc_text
from slotguard.domain.model import Appointment, Client
from slotguard.domain.money import Money

APPOINTMENT_FIELDS = tuple(field.name for field in fields(Appointment))


def optional_utc_text(value: datetime | None) -> str | None:
    """A time as the ledger stores it, or None."""
    return to_utc_text(value) if value else None


def optional_utc_time(value: str | None) -> datetime | None:
    """A stored time read back, or None."""
    return from_utc_text(value) if value else None


def appointment_to_json(appointment: Appointment) -> str:
    """The snapshot of an appointment as the `appointments` table keeps it."""
    # A shallow copy: dataclasses.asdict deep-copies every field and was a fifth of a tick.
    data = {name: getattr(appointment, name) for name in APPOINTMENT_FIELDS}
    data["client"] = {"email": appointment.client.email, "name": appointment.client.name}
    data["start"] = appointment.start.isoformat()
    data["end"] = appointment.end.isoformat()
    data["updated"] = appointment.updated.isoformat()
    data["cancelled_at"] = appointment.cancelled_at.isoformat() if appointment.cancelled_at else None
    data["original_start"] = appointment.original_start.isoformat() if appointment.original_start else None
    data["price"] = appointment.price.as_json()
    data["marks"] = sorted(appointment.marks)
    data["inherited_marks"] = sorted(appointment.inherited_marks)
    return json.dumps(data, separators=(",", ":"))


def appointment_from_json(text: str) -> Appointment:
    """An appointment read back from its stored snapshot."""
    data = json.loads(text)
    data["client"] = Client(**data["client"])
    for key in ("start", "end", "updated"):
        data[key] = datetime.fromisoformat(data[key])
    for key in ("cancelled_at", "original_start"):
        data[key] = datetime.fromisoformat(data[key]) if data.get(key) else None
    data["price"] = Money(**data["price"])
    data["marks"] = frozenset(data["marks"])
    data["inherited_marks"] = frozenset(data.get("inherited_marks") or ())
    return Appointment(**data)
