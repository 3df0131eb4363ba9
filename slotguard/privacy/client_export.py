"""`client export`: everything Slotguard holds about one client, as JSON and as a page they read.

`export_client` only reads: the ledger (the client found as slotguard/privacy/client_records.py
says), the outbox folder (the messages sent to them, as sent) and the record of the card-setup
pages they completed. The JSON's shape (FORMAT, version 1; docs/privacy.md describes it):

    format, version, exported_at, practice {name, email}
    client {address, spellings, names, locale}
    appointments [{calendar_id, event_id, start, end, timezone, status, service, service_label, title,
                   location, meeting_link, price, marks, declined, cancelled_at, outcome,
                   cancellation, first_seen, series_id}]
    marks_read [{kind, event_id, start, at, seen_at, detail}]     what Slotguard read in the calendar
    money [{id, kind, purpose, state, policy, reason, amount {minor, currency}, payment_status,
            event_id, appointment_start, created_at, executed_at, provider_reference,
            history [{at, state, note}]}]                          fees, deposits, refunds...
    emails [{id, template, state, due_at, sent_at, subject, text, source}]
            source: "outbox" (the message as sent), "rendered" (composed again from the ledger:
            only the action is kept), "" (not sent, or it cannot be rendered: `note` says why)
    problems [{calendar_id, item, message, first_at, last_at}]     events naming them we could not read;
            the message with every other address, and every text quoted from the calendar
            (the title, a line's value: it may name other people), replaced (`for_client`)
    card_pages [{reference, saved_at, card_terms}]

Every time is UTC ISO 8601; every amount is integer minor units and a currency.
`summary_html` renders templates/client_export.html.j2 in the client's language.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slotguard.config.schema import Settings
from slotguard.domain.durations import to_utc_text
from slotguard.domain.model import Action, ActionKind
from slotguard.domain.untrusted import without_clients
from slotguard.mail.compose import compose_email
from slotguard.mail.context import service_label
from slotguard.mail.messages import Renderer
from slotguard.payments.card_terms import seen_by
from slotguard.policies.account import purpose_of
from slotguard.policies.info import Policy
from slotguard.privacy.client_files import sent_messages
from slotguard.privacy.client_forget import client_actions
from slotguard.privacy.client_records import ClientFound, mentions, placeholders, summary_locale
from slotguard.store.ledger import Ledger
from slotguard.store.rows import appointment_from_json

OTHER_ADDRESS = "(another address)"
CALENDAR_TEXT = "(text from the calendar, not shown)"
FORMAT = "slotguard.client-export"
VERSION = 1
SUMMARY_TEMPLATE = "client_export.html.j2"


def _time(value: datetime | None) -> str | None:
    return to_utc_text(value) if value else None


def _appointments(settings: Settings, ledger: Ledger, client: ClientFound) -> list[dict[str, Any]]:
    spellings = list(client.spellings)
    rows = ledger.db.execute(
        f"SELECT * FROM appointments WHERE client_email IN ({placeholders(spellings)}) ORDER BY start_utc, event_id", spellings)
    found = []
    for row in rows:
        appointment = appointment_from_json(row["snapshot"])
        found.append({
            "calendar_id": appointment.calendar_id, "event_id": appointment.event_id,
            "start": _time(appointment.start), "end": _time(appointment.end), "timezone": appointment.timezone,
            "status": appointment.status, "service": appointment.service,
            "service_label": service_label(settings, appointment.service, summary_locale(client, settings)) or appointment.service,
            "title": appointment.title,
            "location": appointment.location, "meeting_link": appointment.meeting_link, "price": appointment.price.as_json(),
            "marks": sorted(appointment.marks), "declined": appointment.client_declined,
            "cancelled_at": _time(appointment.cancelled_at), "outcome": row["outcome"], "cancellation": row["cancellation"],
            "first_seen": row["first_seen"], "series_id": appointment.series_id,
        })
    return found


def _marks_read(ledger: Ledger, client: ClientFound) -> list[dict[str, Any]]:
    spellings = list(client.spellings)
    rows = ledger.db.execute(
        f"SELECT kind, event_id, start_utc, at, seen_at, detail FROM happenings WHERE client_email IN ({placeholders(spellings)}) "
        "ORDER BY seq", spellings)
    return [{"kind": row["kind"], "event_id": row["event_id"], "start": row["start_utc"], "at": row["at"],
             "seen_at": row["seen_at"], "detail": row["detail"]} for row in rows]


def _money(ledger: Ledger, action: Action) -> dict[str, Any]:
    return {
        "id": action.id, "kind": action.kind.value, "purpose": purpose_of(action.kind, action.context),
        "state": action.state.value, "policy": action.policy, "reason": action.reason,
        "amount": action.amount.as_json() if action.amount else None,
        "payment_status": str(action.context.get("payment_status", "")), "event_id": action.event_id,
        "appointment_start": _time(action.appointment_start), "created_at": _time(action.created_at),
        "executed_at": _time(action.executed_at), "provider_reference": action.external_id,
        "history": ledger.action_log(action.id),
    }


def _email(settings: Settings, policies: list[Policy], renderer: Renderer | None, ledger: Ledger, action: Action,
           sent: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {"id": action.id, "template": action.template or "", "state": action.state.value,
                              "due_at": _time(action.due_at), "sent_at": _time(action.executed_at),
                              "subject": "", "text": "", "source": "", "note": ""}
    message = sent.get(action.id)
    if message is None and action.executed_at is not None and renderer is not None:
        try:
            message = compose_email(settings, policies, renderer, ledger, action, action.executed_at)
            record["source"] = "rendered"
            record["note"] = "composed again from the ledger with today's templates; the message sent may have differed"
        except Exception as error:  # noqa: BLE001 - one message that cannot be rendered must not stop the export
            record["note"] = f"cannot be rendered again: {error}"
    elif message is not None:
        record["source"] = "outbox"
    if message is not None:
        record["subject"] = str(message["Subject"] or "")
        body = message.get_body(("plain",))
        record["text"] = body.get_content().replace("\r\n", "\n") if body is not None else ""
    return record


def for_client(message: str, client: ClientFound) -> str:
    """A problem's message as the client may read it: their own address kept, every other
    address and every text quoted from the calendar (a title may name someone else) replaced."""
    own = frozenset({client.address, *(spelling.strip().lower() for spelling in client.spellings)})
    return without_clients(message, own, OTHER_ADDRESS, CALENDAR_TEXT)


def _problems(ledger: Ledger, client: ClientFound) -> list[dict[str, Any]]:
    named = mentions(client.needles())
    found = []
    for row in ledger.problems():
        if named(str(row["item"])) or named(str(row["message"])):
            found.append({**dict(row), "message": for_client(str(row["message"]), client)})
    return found


def export_client(settings: Settings, ledger: Ledger, client: ClientFound, now: datetime, *,
                  renderer: Renderer | None = None, policies: list[Policy] | None = None) -> dict[str, Any]:
    """Everything held about `client` (see the module's docstring for the shape). `renderer`
    and `policies` compose again a message sent whose file is not kept (another transport)."""
    actions = client_actions(ledger, client) if client.known else []
    sent = sent_messages(settings, client)
    problems = _problems(ledger, client)
    card_pages = [{"reference": record.reference, "saved_at": record.saved_at, "card_terms": record.card_terms}
                  for spelling in {client.address, *client.spellings} for record in seen_by(ledger, spelling)]
    emails = [_email(settings, policies or [], renderer, ledger, action, sent) for action in actions if action.kind is ActionKind.EMAIL]
    known = {email["id"] for email in emails}
    for action_id, message in sent.items():  # a message whose action is no longer in the ledger
        if action_id not in known:
            body = message.get_body(("plain",))
            emails.append({"id": action_id, "template": "", "state": "done", "due_at": None, "sent_at": None,
                           "subject": str(message["Subject"] or ""), "text": body.get_content() if body is not None else "",
                           "source": "outbox", "note": ""})
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": to_utc_text(now),
        "practice": {"name": settings.practice.name, "email": settings.practice.email},
        "client": {"address": client.address, "spellings": list(client.spellings), "names": list(client.names),
                   "locale": summary_locale(client, settings)},
        "appointments": _appointments(settings, ledger, client) if client.known else [],
        "marks_read": _marks_read(ledger, client) if client.known else [],
        "money": [_money(ledger, action) for action in actions if action.kind is not ActionKind.EMAIL],
        "emails": emails,
        "problems": problems,
        "card_pages": card_pages,
    }


def summary_html(settings: Settings, renderer: Renderer, data: dict[str, Any]) -> str:
    """The export as a page in the client's language (their locale, else the practice's),
    with dates in the practice's time zone and amounts in the currency's units."""
    # The client's locale if Slotguard has its words (a catalog, or the admin's templates), else
    # the practice's, else English: as for every email (booking_confirmation exists in each).
    locale = renderer.pick_locale("booking_confirmation", data["client"]["locale"])
    env = renderer.env_for(locale)
    template = env.get_template(SUMMARY_TEMPLATE)
    direction = renderer.babel_locale(locale).text_direction
    return template.render(data=data, locale=locale, text_direction=direction, zone=settings.practice.timezone)
