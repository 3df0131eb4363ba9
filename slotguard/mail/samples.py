"""Sample data for checking and previewing templates (`main.py check-config`, `preview`,
`send-test`): what each template gets, realistic and complete, with something in every
section of the daily digest. Follows the template contract of slotguard/mail/context.py
and docs/templates.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from slotguard.config.schema import Settings
from slotguard.domain.model import Appointment, Client
from slotguard.domain.money import Money
from slotguard.mail.context import appointment_details, payments_context, practice_context, service_label, terms
from slotguard.mail.decided import decided
from slotguard.mail.links import action_target, appointment_target, sign
from slotguard.policies.info import Policy

# The policy behind a sample prepayment or a credit's end: the digest shows what it is for
# (purpose), not which plugin asked, and the core names no plugin.
OTHER_POLICY = "some_policy"
# Signs the sample links (they verify with nothing real).
SAMPLE_SECRET = b"sample-secret-for-previews-only-not-a-real-one"
SAMPLE_NOW = datetime(2026, 3, 4, 7, 0, tzinfo=UTC)


def sample_inbox_address(settings: Settings) -> str:
    return settings.inbox.address or "inbox@example.com"


def sample_commands(action_id: str, *commands: str) -> list[dict[str, str]]:
    """One-tap commands on an action, as slotguard/practitioner/command_links.py gives them."""
    expires = SAMPLE_NOW + timedelta(days=3)
    return [{"command": command, "token": sign(SAMPLE_SECRET, command, action_target(action_id), expires)} for command in commands]


def sample_client_links(settings: Settings) -> dict[str, str]:
    """The client's two links, as slotguard/mail/client_links.py gives them."""
    appointment = sample_appointment(settings)
    target = appointment_target(appointment.calendar_id, appointment.event_id, appointment.start, appointment.client.email)
    return {
        "address": sample_inbox_address(settings),
        "confirm": sign(SAMPLE_SECRET, "confirm", target, appointment.start),
        "cancel": sign(SAMPLE_SECRET, "cancel", target, appointment.start),
    }


def sample_appointment(settings: Settings) -> Appointment:
    start = datetime(2026, 3, 4, 9, 0, tzinfo=UTC).astimezone(settings.zone)
    default = settings.services["default"]
    return Appointment(
        calendar_id="sample",
        event_id="sample",
        client=Client("ana@example.com", "Ana Silva"),
        start=start,
        end=start + default.duration,
        timezone=settings.practice.timezone,
        status="confirmed",
        price=default.price,
        service="default",
        title="sample",
        updated=start - timedelta(days=3),
        meeting_link="https://meet.example.com/abc-defg-hij",
    )


def sample_details(settings: Settings, template: str | None) -> dict[str, Any]:
    """What the planner or a policy puts in an action's context, per template (see
    docs/templates.md); with no template, everything at once."""
    price = settings.services["default"].price
    per_template: dict[str, dict[str, Any]] = {
        "booking_confirmation": {"rescheduled": False, "series_id": "", "client_links": sample_client_links(settings)},
        "reminder": {"offset_hours": 48, "card_link": "https://pay.example.com/c/sample", "client_links": sample_client_links(settings)},
        "late_cancel_notice": {"notice_minutes": 300},
        "grace_warning": {"policy": "late_cancel", "waived_amount": price.percent(50).as_json()},
        "deposit_request": {"amount": price.percent(50).as_json(), "payment_link": "https://pay.example.com/d/sample"},
        "payment_failed": {"payment_link": "https://pay.example.com/p/sample"},
        "money_ahead_unpaid": sample_money_ahead_details(settings),
        "inbox_reply": sample_inbox_reply_details(settings),
        "inbox_receipt": {"command": "cancel", "received_at": (sample_appointment(settings).start - timedelta(minutes=48)).isoformat()},
        **sample_collection_details(settings),
    }
    if template == "practitioner_digest" or template is None:
        per_template["practitioner_digest"] = sample_digest_details(settings)
    if template == "monthly_report":
        per_template["monthly_report"] = sample_monthly_report_details(settings)
    if template is not None:
        return dict(per_template.get(template, {}))
    merged: dict[str, Any] = {}
    for details in per_template.values():
        merged.update(details)
    return merged


def sample_monthly_report_details(settings: Settings) -> dict[str, Any]:
    """The monthly report's details (slotguard/reports/page.py `details`), already written out
    for the practice's language as the report gives them, with one chart of each kind."""
    price = settings.services["default"].price
    zero = Money.zero(price.currency).as_json()
    month = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
    charts = [{"name": name, "title": name, "alt": f"sample chart {name}", "svg": "", "cid": f"{name}.sample@slotguard",
               "width": 600, "height": 360} for name in ("rates", "fees", "back", "early")]
    return {
        "month": month, "month_name": "02/2026", "previous_name": "01/2026", "booked": "84", "no_shows": "5",
        "late_cancels": "7", "no_show_rate": "6%", "late_cancel_rate": "8.3%", "previous_no_show_rate": "9%",
        "previous_late_cancel_rate": "10%", "proposed": price.percent(600).as_json(), "waived": price.percent(150).as_json(),
        "charged": price.percent(450).as_json(), "collected": price.percent(300).as_json(), "written_off": zero,
        "open": price.percent(150).as_json(), "kept": price.percent(50).as_json(), "came_back": price.percent(350).as_json(),
        "rebooked": "3", "hours": "7", "reminders": "160", "cancellations": "11", "early_share": "45%",
        "cancelled_in_time": "4", "notes_left_out": True,
        "waivers": [{"who": "practitioner", "why": "", "count": 1, "amount": price.as_json()},
                    {"who": "policy_notice", "why": "", "count": 1, "amount": price.percent(50).as_json()}],
        "more_waivers": 2,
        "spared": {"first_offense_grace": {"waived": 2, "reduced": 0, "amount": price.as_json()}},
        "clients": [{"name": "Ana Silva", "email": "ana@example.com", "incidents": 3, "last": month}],
        "enabled": [{"policy": "late_cancel", "since": month}],
        "charts": charts,
    }


def sample_money_ahead_details(settings: Settings) -> dict[str, Any]:
    """The practitioner's alert that a prepayment is not paid as the session comes near."""
    appointment = sample_appointment(settings)
    return {"id": "act_6071829304152637485a", "name": "Ana Silva", "client": "ana@example.com", "start": appointment.start,
            "end": appointment.end, "service": service_label(settings, "default"), "purpose": "prepayment", "amount": appointment.price.as_json(),
            "status": "unpaid", "asked_at": appointment.start - timedelta(hours=6),
            "inbox_address": sample_inbox_address(settings), "commands": sample_commands("act_6071829304152637485a", "mark_paid", "waive")}


def sample_inbox_reply_details(settings: Settings) -> dict[str, Any]:
    """The reply to the practitioner's "waive" by email (slotguard/run/inbox_commands.py)."""
    appointment = sample_appointment(settings)
    return {"kind": "command", "command": "waive", "outcome": "waived", "state": "cancelled", "name": "Ana Silva",
            "client": "ana@example.com", "amount": appointment.price.percent(50).as_json(), "start": appointment.start.isoformat(),
            "given_back": False, "waiting": False}


def sample_collection_details(settings: Settings) -> dict[str, dict[str, Any]]:
    """What the collections ladder (slotguard/collections/ladder.py) puts in its emails."""
    price = settings.services["default"].price
    half, tenth = price.percent(50), price.percent(10)
    start = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    step = {"collects": "act_3d4e5f60718293041526", "fee_policy": "late_cancel", "balance": half.as_json(),
            "original": half.as_json(), "days_overdue": 14, "payment_link": "https://pay.example.com/p/sample"}
    plan = {"kind": "plan", "every_days": 30, "request": "act_4e5f6071829304152637", "payment_link": "https://pay.example.com/p/plan",
            "installments": [{"number": n, "amount": tenth.as_json(), "due": (start + timedelta(days=30 * n)).isoformat()} for n in (1, 2, 3)]}
    settlement = {"kind": "settlement", "amount": half.percent(80).as_json(), "forgiven": half.percent(20).as_json(), "discount": "20%",
                  "valid_until": (start + timedelta(days=44)).isoformat(), "request": "act_5f607182930415263748",
                  "payment_link": "https://pay.example.com/p/settle"}
    return {
        "payment_reminder_1": {**step, "days_overdue": 3},
        "payment_reminder_2": {**step, "retried": True, "offer": settlement},
        "payment_final_notice": {**step, "days_overdue": 30, "balance": price.percent(30).as_json(), "offer": plan},
        "payment_plan_installment": {"collects": step["collects"], "fee_policy": "late_cancel", "plan": 2, "installment": 2, "of": 3,
                                     "due_on": (start + timedelta(days=60)).isoformat()},
        "payment_receipt": {"collects": step["collects"], "fee_policy": "late_cancel", "paid_total": half.percent(80).as_json(),
                            "original": half.as_json(), "written_off": half.percent(20).as_json(),
                            "payments": [{"amount": half.percent(40).as_json(), "at": (start + timedelta(days=40)).isoformat()},
                                         {"amount": half.percent(40).as_json(), "at": (start + timedelta(days=70)).isoformat()}]},
        "payment_referral": {**step, "days_overdue": 45, "cost": half.percent(30).as_json(), "recovery": half.percent(70).as_json(),
                             "collection_cost": "30%", "debtor": {"email": "eva@example.com", "name": "Eva Lund"},
                             "inbox_address": sample_inbox_address(settings),
                             "commands": sample_commands(str(step["collects"]), "mark_paid", "waive")},
    }


PURPOSES = ("deposit", "prepayment")  # what a sample deposit_request asks for (`preview --purpose`)
NOTICE_MINUTES = 300  # the sample late cancellation: five hours before the start


def sample_fee_amount(policy: str, found_terms: dict[str, Any], price: Money) -> Money:
    """The fee the policies' own terms give for the sample: the no-show fee, or the late
    cancellation tier for NOTICE_MINUTES of notice; half the price when no such policy is
    enabled. So a preview never shows a fee of 450 under a policy line of "100 % (900)"."""
    if policy == "no_show" and "no_show" in found_terms:
        return found_terms["no_show"]["fee"]
    if policy == "late_cancel" and "late_cancel" in found_terms:
        tiers = [tier for tier in found_terms["late_cancel"]["tiers"] if tier["within_hours"] * 60 >= NOTICE_MINUTES]
        if tiers:
            return min(tiers, key=lambda tier: tier["within_hours"])["fee"]
    return price.percent(50)


def sample_context(
    settings: Settings, policies: list[Policy], template: str | None = None, locale: str = "", purpose: str = "deposit"
) -> dict[str, Any]:
    """Realistic sample data for checking and previewing templates: the context `template`
    gets (with no template, one context every template can render from), the practitioner's
    own words in `locale` (default the practice's). Amounts agree with each other and with
    the enabled policies' terms. `purpose` ("deposit" or "prepayment") is what a sample
    deposit_request asks for."""
    appointment = sample_appointment(settings)
    default = settings.services["default"]
    found_terms = terms(policies, appointment)
    policy = "no_show" if template == "no_show_followup" else "late_cancel"
    amount = sample_fee_amount(policy, found_terms, default.price)
    fee: dict[str, Any] = {
        "amount": amount,
        "state": "pending_review",
        "kind": "charge",
        "policy": policy,
        "executed_at": appointment.start + timedelta(hours=14),
        "payment_status": "",
        "payment_link": "",
        "refunded_before": None,
        "refunded_total": None,
    }
    details = sample_details(settings, template)
    if template == "refund_notice":
        fee = {**fee, "kind": "refund", "state": "done", "payment_status": "paid"}
    elif template == "deposit_request":
        if purpose == "prepayment":
            details = {**details, "purpose": "prepayment", "amount": default.price.as_json()}
            fee = {**fee, "policy": OTHER_POLICY, "amount": default.price}
        else:
            fee = {**fee, "policy": "deposit", "amount": Money(**details["amount"])}
    elif template == "grace_warning":
        details = {**details, "waived_amount": amount.as_json()}
    client = {"name": "Ana Silva", "first_name": "Ana", "email": "ana@example.com"}
    if template == "slot_freed":
        client = {"name": "", "first_name": "", "email": "bo@example.com"}
    return {
        "practice": practice_context(settings, locale),
        "client": client,
        "appointment": appointment_details(settings, appointment, locale),
        "fee": fee if template not in ("booking_confirmation", "reminder", "slot_freed") else None,
        "terms": found_terms,
        "details": details,
        "decided": decided(details),
        "payments": payments_context(settings),
    }


def sample_digest_details(settings: Settings) -> dict[str, Any]:
    """A digest with something in every section, for checking and previewing the template."""
    zone = settings.zone
    today = datetime(2026, 3, 4, tzinfo=zone)
    tomorrow = datetime(2026, 3, 5, tzinfo=zone)
    price = settings.services["default"].price
    half = price.percent(50)
    label = service_label(settings, "default")
    return {
        "date": today,
        "tomorrow_date": tomorrow,
        "pending": [
            {
                "id": "act_0a1b2c3d4e5f60718293", "commands": sample_commands("act_0a1b2c3d4e5f60718293", "waive", "charge_now", "keep"), "client": "bo@example.com", "name": "Bo Ek", "amount": price,
                "policy": "no_show", "kind": "charge", "appointment_start": today - timedelta(hours=14),
                "charge_at": today + timedelta(hours=21), "since": today, "payment_link": "", "purpose": "fee", "paid_from": "",
            },
            {
                "id": "act_7182930415263748596a", "commands": sample_commands("act_7182930415263748596a", "waive", "keep"), "client": "hal@example.com", "name": "Hal Berg", "amount": half,
                "policy": "late_cancel", "kind": "credit", "appointment_start": today - timedelta(hours=20),
                "charge_at": today + timedelta(hours=22), "since": today, "payment_link": "", "purpose": "fee", "paid_from": "deposit",
            },
            {
                "id": "act_8293041526374859607b", "commands": sample_commands("act_8293041526374859607b", "waive", "charge_now", "keep"), "client": "ivy@example.com", "name": "Ivy Nes", "amount": price,
                "policy": OTHER_POLICY, "kind": "charge", "appointment_start": today + timedelta(days=6, hours=10),
                "charge_at": today + timedelta(hours=23), "since": today, "payment_link": "", "purpose": "prepayment", "paid_from": "",
            },
            {
                "id": "act_930415263748596071c8", "commands": sample_commands("act_930415263748596071c8", "waive", "keep"), "client": "jon@example.com", "name": "Jon Lie", "amount": half,
                "policy": OTHER_POLICY, "kind": "credit", "appointment_start": today + timedelta(days=1, hours=14),
                "charge_at": today + timedelta(days=4, hours=14), "since": today, "payment_link": "", "purpose": "credit_expired",
                "paid_from": "deposit",
            },
        ],
        "payment_failed": [{
            "id": "act_1b2c3d4e5f6071829304", "commands": sample_commands("act_1b2c3d4e5f6071829304", "waive", "mark_paid"), "client": "cy@example.com", "name": "Cy Dahl", "amount": half,
            "policy": "late_cancel", "kind": "charge", "appointment_start": today - timedelta(days=3),
            "charge_at": today - timedelta(days=2), "since": today - timedelta(days=2),
            "payment_link": "https://pay.example.com/p/sample", "purpose": "fee", "paid_from": "",
        }],
        "failed": [
            {
                "id": "act_2c3d4e5f607182930415", "kind": "email", "template": "reminder", "client": "dag@example.com",
                "amount": None, "error": "550 mailbox unavailable", "at": today - timedelta(hours=3),
                "unreachable": False, "tried_for": "", "provider": "Stripe",
            },
            {
                "id": "act_e4859607182930415263", "kind": "charge", "template": "", "client": "bo@example.com",
                "amount": price, "error": "could not reach Stripe (payment intents); will retry", "at": today - timedelta(hours=2),
                "unreachable": True, "tried_for": "24h", "provider": "Stripe",
            },
        ],
        "receivables": [
            {
                "id": "act_3d4e5f60718293041526", "commands": sample_commands("act_3d4e5f60718293041526", "waive", "mark_paid"), "client": "eva@example.com", "name": "Eva Lund", "amount": half,
                "policy": "late_cancel", "kind": "charge", "appointment_start": today - timedelta(days=9),
                "charge_at": today - timedelta(days=8), "since": today - timedelta(days=8), "payment_link": "",
                "purpose": "fee", "paid_from": "",
            },
            {
                "id": "act_a04152637485960718d9", "commands": sample_commands("act_a04152637485960718d9", "waive", "mark_paid"), "client": "ana@example.com", "name": "Ana Silva", "amount": half,
                "policy": "deposit", "kind": "charge", "appointment_start": tomorrow + timedelta(hours=9),
                "charge_at": today - timedelta(days=3), "since": today - timedelta(days=3), "payment_link": "",
                "purpose": "deposit", "paid_from": "",
            },
        ],
        "receivables_total": [half + half + half],
        "collections": [
            {"id": "act_4e5f6071829304152637", "commands": sample_commands("act_4e5f6071829304152637", "waive", "mark_paid"), "client": "fay@example.com", "name": "Fay Moe", "policy": "no_show", "amount": price,
             "balance": price, "paid": price - price, "state": "referred", "step": 4, "steps": 4, "plan_paid": 0, "plan_of": 0,
             "appointment_start": today - timedelta(days=50), "since": today - timedelta(days=49), "next_at": None},
            {"id": "act_5f607182930415263748", "client": "eva@example.com", "name": "Eva Lund", "policy": "late_cancel", "amount": half,
             "balance": half.percent(50), "paid": half.percent(50), "state": "plan", "step": 3, "steps": 4, "plan_paid": 1, "plan_of": 2,
             "appointment_start": today - timedelta(days=40), "since": today - timedelta(days=39), "next_at": None},
            {"id": "act_6071829304152637485a", "commands": sample_commands("act_6071829304152637485a", "waive", "mark_paid"), "client": "gus@example.com", "name": "Gus Holm", "policy": "no_show", "amount": price,
             "balance": price, "paid": price - price, "state": "owed", "step": 1, "steps": 4, "plan_paid": 0, "plan_of": 0,
             "appointment_start": today - timedelta(days=6), "since": today - timedelta(days=5), "next_at": today + timedelta(days=9)},
        ],
        "not_charged": [
            {"why": "untold", "id": "act_718293041526374859ab", "client": "ida@example.com", "name": "Ida Berg", "amount": half,
             "start": today - timedelta(hours=14), "days": 0, "at": today - timedelta(hours=13)},
            {"why": "late_mark", "id": "act_8293041526374859abc0", "commands": sample_commands("act_8293041526374859abc0", "charge_now"), "client": "jon@example.com", "name": "Jon Dahl", "amount": price,
             "start": today - timedelta(days=10, hours=-10), "days": 10, "at": today - timedelta(hours=3)},
        ],
        "to_call": [{"client": "bo@example.com", "name": "Bo Ek", "kind": "no_show", "start": today - timedelta(hours=14)}],
        "talk_to": [
            {"client": "bo@example.com", "name": "Bo Ek", "at": today - timedelta(hours=13), "trigger": "no_show",
             "start": today - timedelta(hours=14), "amount": None, "incidents": 3, "days": 180, "suggest_ending": False,
             "note": "3 late cancellations or no-shows in 180 days; bookings need full prepayment"},
            {"client": "ivy@example.com", "name": "Ivy Nes", "at": today - timedelta(hours=2), "trigger": "booking",
             "start": today + timedelta(days=6, hours=10), "amount": price, "incidents": 5, "days": 180, "suggest_ending": True,
             "note": "5 late cancellations or no-shows in 180 days; bookings need full prepayment; "
                     "consider ending the relationship, kindly"},
            {"client": "kim@example.com", "name": "Kim Ro", "at": today - timedelta(hours=1), "trigger": "",
             "start": None, "amount": None, "incidents": None, "days": None, "suggest_ending": False,
             "note": "always books the last slot of the day and comes late"},
        ],
        "freed": [{
            "start": today + timedelta(hours=15), "end": today + timedelta(hours=16), "service": label,
            "by_client": True, "offered_to": 3,
        }],
        "tomorrow": [
            {
                "start": tomorrow + timedelta(hours=9), "end": tomorrow + timedelta(hours=10), "client": "ana@example.com",
                "name": "Ana Silva", "service": label, "price": price, "online": True, "first_visit": True, "owes": [], "repeat": None,
                "deposit": {"id": "act_a04152637485960718d9", "purpose": "deposit", "amount": half, "status": "receivable"},
            },
            {
                "start": tomorrow + timedelta(hours=11), "end": tomorrow + timedelta(hours=12), "client": "eva@example.com",
                "name": "Eva Lund", "service": label, "price": price, "online": False, "first_visit": False, "owes": [half],
                "repeat": None, "deposit": None,
            },
            {
                "start": tomorrow + timedelta(hours=13), "end": tomorrow + timedelta(hours=14), "client": "lea@example.com",
                "name": "Lea Dal", "service": "", "price": price, "online": False, "first_visit": False, "owes": [],
                "repeat": {"note": "4 late cancellations or no-shows in 180 days; bookings need full prepayment",
                           "incidents": 4, "days": 180, "suggest_ending": True, "trigger": "booking",
                           "start": tomorrow + timedelta(hours=13), "amount": price},
                "deposit": {"id": "act_b1526374859607182930", "purpose": "prepayment", "amount": price, "status": "unpaid",
                            "commands": sample_commands("act_b1526374859607182930", "mark_paid", "waive")},
            },
            {
                "start": tomorrow + timedelta(hours=15), "end": tomorrow + timedelta(hours=16), "client": "max@example.com",
                "name": "Max Vik", "service": label, "price": price, "online": False, "first_visit": False, "owes": [],
                "repeat": {"note": "asked to talk about the late cancellations", "incidents": None, "days": None, "suggest_ending": False,
                           "trigger": "", "start": None, "amount": None},
                "deposit": {"id": "act_c2637485960718293041", "purpose": "deposit", "amount": half, "status": "failed"},
            },
            {
                "start": tomorrow + timedelta(hours=16), "end": tomorrow + timedelta(hours=17), "client": "ned@example.com",
                "name": "Ned Aas", "service": label, "price": price, "online": False, "first_visit": False, "owes": [],
                "repeat": None, "deposit": {"id": "act_d3748596071829304152", "purpose": "deposit", "amount": half, "status": "not_taken"},
            },
        ],
        "tomorrow_total": 7,
        "unconfirmed": [{"client": "ola@example.com", "name": "Ola Nord", "start": tomorrow + timedelta(hours=10),
                         "end": tomorrow + timedelta(hours=11), "service": label}],
        "client_mail": [
            {"sender": "ana@example.com", "name": "Ana Silva", "known": True, "at": today - timedelta(hours=5), "where": "forward"},
            {"sender": "someone@example.org", "name": "someone@example.org", "known": False, "at": today - timedelta(hours=2),
             "where": "leave"},
        ],
        "refused": 2,
        "inbox_address": sample_inbox_address(settings),
        "problems": [{"where": "primary evt123", "message": "price: 'a lot' is not an amount"}],
        "review_hint": True,
        "mark_privacy": {"rules": ["late_cancel", "waive"], "tags": ["#latecancel", "#waive", "#emergency"]},
    }
