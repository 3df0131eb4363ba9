"""The evidence pack for one fee: a printable HTML record for a dispute or a conversation.

What it holds, from the ledger: the client and the appointment (its service label, never the
event title, which may hold private notes); how the client knew the policy before the
incident (the message that carried it and when, or the practitioner's word); the policy the client received at booking and
when (the booking confirmation as sent, from the outbox folder when it is there, else
rendered again from the current templates and settings, and said so); every message about
the appointment; the calendar marks as Slotguard saw them and when (happenings); the fee
with its computation and reason; every payment attempt (the action log of the fee, of the
ladder's charges and of refunds); the balance today; the saved card: when, and what the page
said it may be charged for (card_evidence.py).

`evidence_html` only reads. It is used by `main.py evidence` and attached to the referral
email of the collections ladder.
"""

from __future__ import annotations

import email
import email.policy
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from slotguard.collections.debts import COLLECTIONS, COLLECTS, Capabilities
from slotguard.collections.decide import evaluate
from slotguard.config.schema import Settings
from slotguard.domain.durations import from_utc_text
from slotguard.domain.model import Action, ActionKind, ActionState, Appointment, HappeningKind
from slotguard.domain.plan import POLICY_TOLD, POLICY_UNTOLD
from slotguard.intake.tracker import FIRST_LOOK, MOVED_BEFORE_SEEN
from slotguard.mail.compose import EmailExtras, EmailView, compose_email
from slotguard.mail.context import service_label
from slotguard.mail.messages import Attachment, Renderer
from slotguard.policies.account import TARGET
from slotguard.policies.hookspecs import hookimpl
from slotguard.policies.info import Policy
from slotguard.practitioner.card_evidence import card_terms_section
from slotguard.store.ledger import Ledger

STYLE = """
body { font-family: Georgia, 'Times New Roman', serif; color: #222; max-width: 860px; margin: 24px auto; padding: 0 16px; line-height: 1.45; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #bbb; padding-bottom: 3px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; } th, td { text-align: left; vertical-align: top; padding: 4px 8px 4px 0; border-bottom: 1px solid #e4e4e4; }
th { font-weight: bold; white-space: nowrap; } pre { white-space: pre-wrap; font-family: inherit; background: #f7f7f4; padding: 10px; border: 1px solid #e4e4e4; }
.muted { color: #666; font-size: 13px; } code { font-size: 13px; }
@media print { body { margin: 0; max-width: none; } h2 { page-break-after: avoid; } tr { page-break-inside: avoid; } }
"""


class EvidenceError(ValueError):
    """The action id names nothing a record can be made for."""


def fee_for(ledger: Ledger, action_id: str) -> Action:
    """The fee an action id is about: the fee itself, or the fee a collection action, a refund
    or an email reports on. Raises EvidenceError naming the id."""
    action = ledger.action(action_id)
    if action is None:
        raise EvidenceError(f"no action with id {action_id}; see `main.py ledger`")
    target = None
    if action.policy == COLLECTIONS:
        target = action.context.get(COLLECTS)
    elif action.kind in (ActionKind.REFUND, ActionKind.RELEASE, ActionKind.CREDIT) and action.context.get(TARGET):
        target = action.context.get(TARGET)
    elif action.kind is ActionKind.EMAIL:
        target = action.reports_on
    found = ledger.action(str(target)) if target else None
    action = found or action
    if action.kind not in (ActionKind.CHARGE, ActionKind.CAPTURE, ActionKind.WAIVE, ActionKind.WRITEOFF, ActionKind.CREDIT):
        raise EvidenceError(f"{action_id} is a {action.kind.value} action, not a fee; give the id of the fee (see `main.py ledger`)")
    return action


def time_label(happening: dict[str, Any]) -> tuple[str, str]:
    """(the time to show for a stored happening, what that time is). A booking Slotguard found
    already in the calendar at its first look has no booking time: only when it was first seen
    (its event's last change may be a later move or the cancellation)."""
    kind, detail = happening["kind"], happening["detail"]
    if detail in (FIRST_LOOK, MOVED_BEFORE_SEEN):
        return happening["seen_at"], "first seen by Slotguard"
    labels = {
        HappeningKind.BOOKED.value: "booked",
        HappeningKind.RESCHEDULED.value: "moved",
        HappeningKind.CANCELLED_BY_CLIENT.value: "cancelled",
        HappeningKind.CANCELLED_BY_PRACTITIONER.value: "cancelled",
        HappeningKind.NO_SHOW.value: "session start (marked as not come)",
        HappeningKind.ATTENDED.value: "session start",
        HappeningKind.WAIVED.value: "marked",
    }
    return happening["at"], labels.get(kind, kind.replace("_", " "))


def _local(value: Any, settings: Settings) -> str:
    if not value:
        return ""
    moment = from_utc_text(value) if isinstance(value, str) else value
    return moment.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M")


def _table(headers: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    if not rows:
        return '<p class="muted">None.</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _sent_text(settings: Settings, policies: list[Policy], renderer: Renderer | None, ledger: Ledger, action: Action) -> tuple[str, str]:
    """(text of a message as the client got it, where the text comes from)."""
    if settings.mail.transport == "outbox-dir":
        path = Path(settings.mail.outbox_dir) / f"{action.id}.eml"
        if path.is_file():
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            body = message.get_body(("plain",))
            if body is not None:
                return f"Subject: {message['Subject']}\n\n{body.get_content()}", f"as sent, from the outbox ({path.name})"
    if renderer is None:
        return "", ""
    try:
        message = compose_email(settings, policies, renderer, ledger, action, action.executed_at or action.due_at)
    except Exception as error:  # noqa: BLE001 - a template or data problem must not stop the record
        return "", f"could not be rendered again: {error}"
    body = message.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    return (f"Subject: {message['Subject']}\n\n{text}",
            "rendered again from the current templates and policy settings; if you changed them since, the message sent differed")


def _told_html(ledger: Ledger, fee: Action, settings: Settings) -> str:
    """What planning recorded on the fee about the client knowing the policy before the
    incident (slotguard/planning/fee_stands.py): the message that carried it and when, or the
    practitioner's word, or that the client had not been told (no fee, a warning instead)."""
    told = fee.context.get(POLICY_TOLD)
    if fee.context.get(POLICY_UNTOLD):
        return ("<p>The client had not been sent the policy before the incident (no booking confirmation, reminder, "
                "deposit request or earlier warning carrying it), and you had not said they knew it: no fee was asked, "
                "and a kind warning quoting the policy was sent instead.</p>")
    if not isinstance(told, dict):
        return '<p class="muted">Not recorded on this fee (planned before Slotguard recorded it, or paid from money taken earlier).</p>'
    if told.get("how") == "mark":
        return "<p>You marked the event: the client knows the policy (calendar.marks.knows_policy).</p>"
    if told.get("how") == "config":
        return "<p>You listed the client in payments.policy_known_by: the client knows the policy.</p>"
    message = ledger.action(str(told.get("action", "")))
    to = f" to {message.client_email}" if message else ""
    return (f"<p>The policy was in the {escape(str(told.get('template', '')).replace('_', ' '))} {escape(str(told.get('action', '')))}"
            f"{escape(to)}, sent {escape(_local(told.get('sent'), settings))}, before the incident.</p>")


def evidence_html(settings: Settings, policies: list[Policy], renderer: Renderer | None, ledger: Ledger, fee_id: str, now: datetime) -> str:
    """The record for the fee `fee_id` (or the fee an action is about) as a standalone HTML
    page. Raises EvidenceError when the id names no fee."""
    fee = fee_for(ledger, fee_id)
    tracked = ledger.tracked(fee.calendar_id, fee.event_id)
    appointment = tracked.appointment if tracked else None
    event_actions = ledger.actions(calendar_id=fee.calendar_id, event_id=fee.event_id)
    mine = [a for a in event_actions if a.policy == COLLECTIONS and a.context.get(COLLECTS) == fee.id]
    related = [*mine, *ledger.actions(client_email=fee.client_email, kinds=[ActionKind.REFUND, ActionKind.CREDIT, ActionKind.WAIVE])]
    parts = [f"<h1>{escape(settings.practice.name)}: record of a fee</h1>",
             f'<p class="muted">Made by Slotguard on {escape(_local(now, settings))} ({escape(settings.practice.timezone)}) from its ledger. Fee {escape(fee.id)}.</p>']

    client_rows = [("Client", f"{fee.client_name} <{fee.client_email}>".strip())]
    if appointment is not None:
        client_rows += [
            ("Appointment", f"{_local(appointment.start, settings)} to {_local(appointment.end, settings)[-5:]}"),
            # The record is in English: the label a client reading English gets.
            ("Service", service_label(settings, appointment.service, "en") or appointment.service),
            ("Price", str(appointment.price)),
            ("Calendar", f"{appointment.calendar_id}, event {appointment.event_id}"),
            ("Status now", "cancelled" if appointment.is_cancelled else "confirmed"
             + (f"; marks: {', '.join(sorted(appointment.marks))}" if appointment.marks else "")),
        ]
    parts.append("<h2>Client and appointment</h2>" + _table(("", ""), client_rows))

    parts.append("<h2>How the client knew the policy before the incident</h2>" + _told_html(ledger, fee, settings))

    # The policy the client received at booking.
    confirmations = [a for a in ledger.actions(client_email=fee.client_email, kinds=[ActionKind.EMAIL])
                     if a.template == "booking_confirmation" and (
                         (a.calendar_id, a.event_id) == (fee.calendar_id, fee.event_id)
                         or a.context.get("existing_booking")  # one introduction covers the client's earlier bookings
                         or (appointment is not None and appointment.series_id and a.context.get("series_id") == appointment.series_id))]
    parts.append("<h2>The policy the client received at booking</h2>")
    if not confirmations:
        parts.append('<p class="muted">No booking confirmation is in the ledger for this appointment (it was booked before Slotguard watched the calendar, or no confirmation was planned).</p>')
    for confirmation in confirmations:
        when = _local(confirmation.executed_at, settings) if confirmation.state is ActionState.DONE else f"not sent ({confirmation.state.value})"
        what = ("Introduction of the policy (the booking was made before Slotguard watched the calendar)"
                if confirmation.context.get("existing_booking") else "Booking confirmation")
        parts.append(f"<p>{what} {escape(confirmation.id)} to {escape(confirmation.client_email)}: sent {escape(when)}.</p>")
        if confirmation.state is ActionState.DONE:
            text, source = _sent_text(settings, policies, renderer, ledger, confirmation)
            if text:
                parts.append(f'<p class="muted">Its text, {escape(source)}:</p><pre>{escape(text)}</pre>')
            elif source:
                parts.append(f'<p class="muted">Its text {escape(source)}.</p>')

    emails = [a for a in event_actions if a.kind is ActionKind.EMAIL]
    parts.append("<h2>Messages about this appointment</h2>" + _table(
        ("sent", "message", "to", "state", "why"),
        [(_local(a.executed_at, settings) if a.executed_at else f"(due {_local(a.due_at, settings)})", a.template or "", a.client_email, a.state.value, a.reason)
         for a in emails]))

    happenings = ledger.happenings_for(fee.calendar_id, fee.event_id)
    parts.append("<h2>What the calendar showed, and when Slotguard saw it</h2>"
                 f'<p class="muted">Read from calendar {escape(fee.calendar_id)}: marks (colour or tag) are set by whoever edits that calendar. '
                 'Each time says what it is; "seen" is when Slotguard read it.</p>'
                 + _table(("time", "what the time is", "what", "seen", "detail"),
                          [(_local(at, settings), label, h["kind"].replace("_", " "), _local(h["seen_at"], settings), h["detail"])
                           for h in happenings for at, label in [time_label(h)]]))

    fee_rows = [
        ("Kind", f"{fee.kind.value} by the {fee.policy} policy"),
        ("Amount", str(fee.amount) if fee.amount else ""),
        ("How it was computed", fee.reason),
        ("Planned", _local(fee.created_at, settings)),
        ("Review window ended", _local(fee.due_at, settings)),
        ("Carried out", _local(fee.executed_at, settings)),
        ("State", fee.state.value + (f", payment status {fee.context.get('payment_status')}" if fee.context.get("payment_status") else "")),
    ]
    if fee.amount is not None and fee.kind is ActionKind.CHARGE:
        decision = evaluate(fee, related, settings.collections, now, Capabilities(), (settings.practice.email, settings.practice.name))
        fee_rows += [("Paid so far", str(decision.paid)), ("Still owed", str(decision.balance))]
        if decision.written_off.minor:
            fee_rows.append(("Written off", str(decision.written_off)))
        if decision.covered.minor:
            fee_rows.append(("Refunded, credited or waived", str(decision.covered)))
    parts.append("<h2>The fee</h2>" + _table(("", ""), fee_rows))

    money = [fee, *[a for a in event_actions if a.id != fee.id and a.kind is not ActionKind.EMAIL
                    and (a.context.get(COLLECTS) == fee.id or a.context.get(TARGET) == fee.id)]]
    attempts = []
    for action in money:
        what = f"{action.kind.value} {action.amount or ''} ({action.context.get('role') or action.policy})".replace("  ", " ")
        for entry in ledger.action_log(action.id):
            attempts.append((entry["at"], what, entry["state"], entry["note"], action.id))
    attempts.sort(key=lambda row: row[0])
    parts.append("<h2>Payment attempts and decisions</h2>" + _table(
        ("when", "what", "state", "note", "action"), [(_local(at, settings), what, state, note, action_id) for at, what, state, note, action_id in attempts]))

    # What the client saw before saving the card (slotguard/practitioner/card_evidence.py).
    parts.append(card_terms_section(settings, ledger, fee))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(settings.practice.name)}: record of fee {escape(fee.id)}</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def evidence_attachment(settings: Settings, policies: list[Policy], renderer: Renderer | None, ledger: Ledger, action: Action, now: datetime) -> Attachment:
    """The evidence pack of the fee `action` is about, as an email attachment."""
    html = evidence_html(settings, policies, renderer, ledger, str(action.context.get(COLLECTS) or action.reports_on or action.id), now)
    return Attachment(filename="evidence.html", maintype="text", subtype="html", data=html.encode("utf-8"), params={"charset": "utf-8"})


@hookimpl
def slotguard_email_extras(action: Action, appointment: Appointment | None, view: EmailView, now: datetime) -> EmailExtras | None:
    """The collections ladder's referral (`payment_referral`) carries the fee's evidence pack."""
    if action.template != "payment_referral":
        return None
    return EmailExtras(attachments=(evidence_attachment(view.settings, view.policies, view.renderer, view.ledger, action, now),))
