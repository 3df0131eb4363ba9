"""The monthly report's figures, counted from a generated year of appointments, against the
generator's own tally of what it wrote (tests/support/report_year.py): every month of the
twelve, every figure, on both ledger engines."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from slotguard.reports.monthly import build_report
from slotguard.reports.people import REPEAT_AT_LEAST, REPEAT_WINDOW, record_enabled
from slotguard.store.ledger import Ledger
from tests.support.builders import settings as make_settings
from tests.support.report_year import _happening, generate

ZONE = ZoneInfo("Europe/Oslo")
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=ZONE)
FIGURES = ("booked", "no_shows", "late_cancels", "proposed", "waived", "charged", "collected", "written_off", "open", "kept",
           "rebooked", "protected_minutes", "reminders", "cancellations", "cancelled_early", "cancelled_in_time")


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    ledger = Ledger(tmp_path_factory.mktemp("year") / "ledger.sqlite3")
    truth = generate(ledger, end=date(2026, 12, 1), months=13, per_day=4.0, seed=7)
    settings = make_settings(policies={"enabled": ["late_cancel", "no_show", "first_offense_grace", "loyal_client"]})
    yield ledger, truth, settings
    ledger.close()


def test_every_figure_of_every_month_matches_what_was_written(year):
    ledger, truth, settings = year
    report = build_report(settings, ledger, date(2026, 11, 1), NOW)
    assert [figures.month.key for figures in report.months] == ["2025-12"] + [f"2026-{m:02d}" for m in range(1, 12)]
    assert sum(truth.booked.values()) > 1000  # a real year was generated
    for figures in report.months:
        key = figures.month.key
        expected = {name: getattr(truth, name)[key] for name in FIGURES}
        found = {name: getattr(figures, name) for name in FIGURES}
        assert found == expected, key
        assert figures.no_show_rate == pytest.approx(truth.no_shows[key] / truth.booked[key])


def test_the_month_boundaries_are_local_midnight():
    # An appointment at 00:30 on 1 November in Oslo is 23:30Z on 31 October: it is November's.
    from slotguard.reports.months import months_ending

    november = months_ending(date(2026, 11, 1), ZONE, 1)[0]
    assert november.start == "2026-10-31T23:00:00Z" and november.end == "2026-11-30T23:00:00Z"
    summer = months_ending(date(2026, 7, 1), ZONE, 1)[0]
    assert summer.start == "2026-06-30T22:00:00Z"


def test_waivers_are_grouped_by_who_and_spared_fees_by_policy(year):
    ledger, truth, settings = year
    report = build_report(settings, ledger, date(2026, 10, 1), NOW)
    by_who: dict[str, int] = {}
    for group in report.waivers:
        by_who[group.who] = by_who.get(group.who, 0) + group.count
    assert by_who == {who: count for who, count in truth.waived_by["2026-10"].items() if count}
    practitioner_whys = {group.why for group in report.waivers if group.who == "practitioner"}
    assert practitioner_whys <= {"family emergency", "waived by the practitioner's mark on the event"} and practitioner_whys
    fates = truth.fates["2026-10"]
    assert report.spared["first_offense_grace"].waived == fates["grace"]
    assert report.spared["loyal_client"].waived == fates["loyal_waived"]
    assert report.spared["loyal_client"].reduced == fates["loyal_reduced"]


def test_clients_to_talk_to_have_repeat_incidents_in_the_last_90_days(year):
    ledger, truth, settings = year
    report = build_report(settings, ledger, date(2026, 11, 1), NOW)
    month_start = datetime(2026, 11, 1, tzinfo=ZONE)
    month_end = datetime(2026, 12, 1, tzinfo=ZONE)
    expected = {}
    for email, starts in truth.incidents.items():
        recent = [start for start in starts if month_end - REPEAT_WINDOW <= start < month_end]
        if len(recent) >= REPEAT_AT_LEAST and max(recent) >= month_start:
            expected[email] = len(recent)
    assert expected, "the generated year has clients with repeat incidents"
    assert {client.email: client.incidents for client in report.clients} == expected
    counts = [client.incidents for client in report.clients]
    assert counts == sorted(counts, reverse=True)


def test_a_policy_is_marked_from_the_first_tick_that_saw_it_enabled(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    settings = make_settings(policies={"enabled": ["late_cancel", "no_show"]})
    assert record_enabled(ledger, ["late_cancel", "no_show"], datetime(2026, 3, 10, 9, tzinfo=UTC)) == ["late_cancel", "no_show"]
    assert record_enabled(ledger, ["late_cancel", "no_show"], datetime(2026, 4, 10, tzinfo=UTC)) == []  # already noted
    report = build_report(settings, ledger, date(2026, 11, 1), NOW)
    assert report.enabled["late_cancel"] == datetime(2026, 3, 10, 9, tzinfo=UTC)
    march = [figures.month.key for figures in report.months].index("2026-03")
    assert sorted(report.markers) == [(march, "late_cancel"), (march, "no_show")]
    # Taken out and put back: a new date.
    record_enabled(ledger, ["late_cancel"], datetime(2026, 5, 1, tzinfo=UTC))
    record_enabled(ledger, ["late_cancel", "no_show"], datetime(2026, 6, 15, tzinfo=UTC))
    assert build_report(settings, ledger, date(2026, 11, 1), NOW).enabled["no_show"] == datetime(2026, 6, 15, tzinfo=UTC)
    ledger.close()


def test_an_empty_ledger_gives_zeros_and_no_rates(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    report = build_report(make_settings(), ledger, date(2026, 11, 1), NOW + timedelta(days=1))
    assert all(figures.booked == 0 and figures.no_show_rate is None for figures in report.months)
    assert report.waivers == [] and report.clients == [] and report.spared == {}
    ledger.close()


def test_two_early_declines_are_no_incident_and_no_late_cancellation(tmp_path):
    # A client declines two invitations three weeks ahead: cancelled in good time, not late;
    # not someone to talk to. The same two declines an hour ahead are.
    from slotguard.domain.model import Appointment, Client, HappeningKind
    from slotguard.domain.money import Money
    from slotguard.intake.tracker import Tracked

    def decline(ledger, serial, start, notice):
        appointment = Appointment(
            calendar_id="cal", event_id=f"ev{serial}", client=Client("bo@example.com", "Bo"), start=start,
            end=start + timedelta(hours=1), timezone=str(ZONE), status="confirmed", price=Money(90000, "NOK"),
            service="default", title="massage", updated=start - timedelta(days=30), client_declined=True,
        )
        ledger.save_tracked(Tracked(appointment, "client", "", start - timedelta(days=30)))
        _happening(ledger, appointment, HappeningKind.CANCELLED_BY_CLIENT, start - notice)

    settings = make_settings(policies={"enabled": ["late_cancel"]})
    starts = [datetime(2026, 11, 10, 10, tzinfo=ZONE), datetime(2026, 11, 24, 10, tzinfo=ZONE)]
    for notice, late in ((timedelta(weeks=3), False), (timedelta(hours=1), True)):
        ledger = Ledger(tmp_path / f"{late}.sqlite3")
        for serial, start in enumerate(starts):
            decline(ledger, serial, start, notice)
        report = build_report(settings, ledger, date(2026, 11, 1), NOW)
        this = report.this
        assert (this.booked, this.cancellations) == (2, 2)
        assert (this.late_cancels, this.cancelled_in_time) == ((2, 0) if late else (0, 2))
        assert this.late_cancel_rate == (1.0 if late else 0.0)
        assert [client.email for client in report.clients] == (["bo@example.com"] if late else [])
        ledger.close()
