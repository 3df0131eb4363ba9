"""The monthly report by email (slotguard/reports/mailing.py): planned on the first working
morning of the month for the month before, sent exactly once per month across ticks, restarts
and a crash between planning and sending; its charts are PNG parts of the HTML, each named by
the Content-ID its <img> shows, each <img> with alt text. Real engine, record-only provider,
in-memory mailer, a ledger file (PostgreSQL under SLOTGUARD_TEST_BACKEND=postgresql)."""

from __future__ import annotations

import io
import re
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from PIL import Image

from integration.memory import MemoryCalendar, MemoryMailer
from integration.record_only import RecordOnlyProvider
from slotguard.domain.interfaces import NullWriteBack
from slotguard.domain.model import ActionKind, ActionState
from slotguard.reports.mailing import POLICY, first_working_day, plan_monthly_report, report_action_id
from slotguard.run.wiring import build_engine
from slotguard.store.ledger import Ledger
from tests.support.builders import event, settings
from tests.support.report_year import generate

OSLO = ZoneInfo("Europe/Oslo")


def engine_for(config, ledger, calendar, mailer, now):
    return build_engine(config, now, ledger=ledger, calendars=[(calendar, NullWriteBack())], provider=RecordOnlyProvider(),
                        mailer=mailer)


def reports(mailer: MemoryMailer) -> dict[str, EmailMessage]:
    return {action_id: message for action_id, message in mailer.sent.items() if "monthly report" in str(message["Subject"])}


def test_the_first_working_morning_is_the_first_weekday_at_the_digest_hour(tmp_path):
    assert first_working_day(date(2026, 11, 1)) == date(2026, 11, 2)  # a Sunday: Monday
    assert first_working_day(date(2026, 8, 1)) == date(2026, 8, 3)  # a Saturday
    assert first_working_day(date(2026, 12, 1)) == date(2026, 12, 1)  # a Tuesday
    config = settings(mail={"digest_hour": 8, "monthly_report": True})
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    generate(ledger, end=date(2026, 11, 1), months=1, per_day=1)
    assert plan_monthly_report(config, ledger, datetime(2026, 11, 2, 7, 59, tzinfo=OSLO)) is None
    planned = plan_monthly_report(config, ledger, datetime(2026, 11, 2, 8, 0, tzinfo=OSLO))
    assert planned is not None and planned.context == {"month": "2026-10"} and planned.client_email == "lena@example.com"
    assert plan_monthly_report(config, ledger, datetime(2026, 11, 20, 8, 0, tzinfo=OSLO)) is None  # once per month
    assert plan_monthly_report(settings(mail={"monthly_report": False}), ledger, datetime(2026, 12, 1, 9, tzinfo=OSLO)) is None
    ledger.close()


def test_a_ledger_with_no_appointment_records_nothing_to_report(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    planned = plan_monthly_report(settings(mail={"monthly_report": True}), ledger, datetime(2026, 11, 2, 9, 0, tzinfo=OSLO))
    assert planned is not None and planned.state is ActionState.CANCELLED and "nothing to report" in planned.reason
    ledger.close()


def test_sent_once_per_month_across_ticks_a_restart_and_a_crash_before_sending(tmp_path):
    config = settings(mail={"digest_hour": -1, "monthly_report": True})
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(path)
    generate(ledger, end=date(2026, 10, 1), months=2, per_day=2)
    calendar, mailer = MemoryCalendar("primary"), MemoryMailer()
    start = datetime(2026, 10, 1, 6, 0, tzinfo=OSLO)  # Thursday 1 October: the first working day
    calendar.put(event("b1", start + timedelta(days=3, hours=4)), start - timedelta(days=1))
    engine = engine_for(config, ledger, calendar, mailer, start)
    engine.tick(start)
    assert reports(mailer) == {}, "before 07:00 nothing goes"
    # The tick step plans it, then the process dies before the executor runs.
    planned = plan_monthly_report(config, ledger, start + timedelta(hours=1, minutes=5))
    assert planned is not None
    ledger.close()
    # Restarted: a new engine on the same ledger sends it once, and never again this month.
    ledger = Ledger(path)
    engine = engine_for(config, ledger, calendar, mailer, start + timedelta(hours=2))
    for hours in (2, 3, 26, 24 * 10):
        engine.tick(start + timedelta(hours=hours))
    sent = reports(mailer)
    assert list(sent) == [report_action_id("2026-09")]
    assert ledger.action(report_action_id("2026-09")).state is ActionState.DONE
    # A new engine later in the month (a restart) sends nothing more.
    engine = engine_for(config, ledger, calendar, mailer, start + timedelta(days=20))
    engine.tick(start + timedelta(days=20))
    assert list(reports(mailer)) == [report_action_id("2026-09")]
    # November's first working morning: Monday 2 November, October's report.
    for moment in (datetime(2026, 11, 2, 6, 59, tzinfo=OSLO), datetime(2026, 11, 2, 7, 1, tzinfo=OSLO), datetime(2026, 11, 3, 7, 1, tzinfo=OSLO)):
        engine.tick(moment)
    assert list(reports(mailer)) == [report_action_id("2026-09"), report_action_id("2026-10")]
    actions = [a for a in ledger.actions(kinds=[ActionKind.EMAIL]) if a.policy == POLICY]
    assert len(actions) == 2
    ledger.close()


def test_the_email_shows_its_charts_inline_by_content_id_with_alt_text(tmp_path):
    config = settings(practice={"locale": "en"}, mail={"digest_hour": 7, "monthly_report": True})
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    truth = generate(ledger, end=date(2026, 11, 1), months=12, per_day=3)
    calendar, mailer = MemoryCalendar("primary"), MemoryMailer()
    now = datetime(2026, 11, 2, 7, 30, tzinfo=OSLO)
    engine_for(config, ledger, calendar, mailer, now).tick(now)
    [message] = reports(mailer).values()
    assert message["To"].addresses[0].addr_spec == "lena@example.com"
    assert "October 2026" in str(message["Subject"])
    html_part = message.get_body(("html",))
    related = [part for part in message.walk() if part.get_content_type() == "multipart/related"]
    assert len(related) == 1, "the HTML and its images travel together in one multipart/related"
    images = {part["Content-ID"].strip("<>"): part for part in related[0].iter_parts() if part.get_content_maintype() == "image"}
    html = html_part.get_content()
    shown = re.findall(r'<img src="cid:([^"]+)" alt="([^"]*)"', html)
    assert len(shown) == 4 and {cid for cid, _ in shown} == set(images)
    assert all(len(alt) > 40 for _, alt in shown), "every chart says in words what it shows"
    for part in images.values():
        assert part.get_content_type() == "image/png" and part.get_content().startswith(b"\x89PNG\r\n\x1a\n")
        assert part.get_content_disposition() == "inline"
        image = Image.open(io.BytesIO(part.get_content()))
        assert image.mode == "P" and image.size[0] == 1200, "a light palette image, still sharp at twice 600 px"
    text = message.get_body(("plain",)).get_content()
    october = "2026-10"
    assert f"{truth.booked[october]} sessions booked" in text
    assert f"{truth.reminders[october]} reminders sent" in text
    # The alt text of the rates chart carries October's no-show rate, as Babel writes it.
    from babel.numbers import format_percent

    rate = format_percent(round(truth.no_shows[october] / truth.booked[october], 3), locale="en", decimal_quantization=False)
    assert any(rate in alt for _, alt in shown)
    ledger.close()


def test_the_monthly_report_is_on_unless_the_config_says_otherwise():
    from slotguard.config.schema import parse_settings
    from tests.support.builders import BASE_CONFIG

    plain = {**BASE_CONFIG, "mail": {"transport": "outbox-dir"}}
    assert parse_settings(plain).mail.monthly_report is True


def test_the_practitioners_own_waive_note_stays_out_of_the_email_and_in_the_out_page(tmp_path):
    # Free text such as "Bo has cancer" must not travel through the SMTP relay; the HTML file
    # `main.py report --out` writes (0600, on the machine) keeps it.
    from slotguard.domain.model import ActionSubject, Appointment, Client, new_action
    from slotguard.domain.money import Money
    from slotguard.mail.context import practitioner_context
    from slotguard.mail.messages import Renderer
    from slotguard.reports.monthly import build_report
    from slotguard.reports.page import TEMPLATE, html_page

    note = "Bo has cancer, be gentle"
    config = settings(practice={"locale": "en"}, mail={"digest_hour": 7, "monthly_report": True})
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    generate(ledger, end=date(2026, 11, 1), months=2, per_day=2)
    start = datetime(2026, 10, 14, 10, 0, tzinfo=OSLO)
    appointment = Appointment(calendar_id="cal", event_id="bo1", client=Client("bo@example.com", "Bo"), start=start,
                              end=start + timedelta(hours=1), timezone="Europe/Oslo", status="confirmed",
                              price=Money(90000, "NOK"), service="default", title="massage", updated=start)
    fee = new_action(ActionSubject.of_appointment(appointment), ActionKind.CHARGE, "no_show", "no_show proposed 900.00 NOK",
                     key="bo1/fee", now=start, state=ActionState.PENDING_REVIEW, amount=Money(90000, "NOK"),
                     context={"incident": True})
    ledger.add_action(fee)
    fee.state = ActionState.WAIVED
    ledger.update_action(fee, start + timedelta(hours=2), f"waived: waived by the practitioner: {note}")
    calendar, mailer = MemoryCalendar("primary"), MemoryMailer()
    now = datetime(2026, 11, 2, 7, 30, tzinfo=OSLO)
    engine_for(config, ledger, calendar, mailer, now).tick(now)
    [message] = reports(mailer).values()
    html, text = message.get_body(("html",)).get_content(), message.get_body(("plain",)).get_content()
    assert "You: " in text, "the practitioner's waivers are still counted, grouped under who"
    assert note not in html and note not in text and "Bo has cancer" not in message.as_string()
    assert "left out of this email" in text
    renderer = Renderer("en", "Europe/Oslo", None)
    page = html_page(renderer, build_report(config, ledger, date(2026, 10, 1), now), practitioner_context(config, {}, "en"),
                     renderer.pick_locale(TEMPLATE, "en"))
    assert note in page and "left out of this email" not in page
    ledger.close()
