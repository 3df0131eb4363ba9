"""main.py as a separate process sending through a real SMTP server (aiosmtpd, started here
on a free loopback port), and `preview` rendering templates for an admin to look at."""

from __future__ import annotations

import pytest

from tests.support.cli import NOW, ROOT, example_practice_over_smtp, main
from tests.support.smtp_server import Recorder, SmtpServer


@pytest.fixture
def server():
    smtp = SmtpServer(recorder=Recorder()).start()
    yield smtp
    smtp.stop()


@pytest.fixture
def practice(tmp_path, server):
    return example_practice_over_smtp(tmp_path, server.port, "none")


def test_a_run_sends_through_smtp_in_the_practice_language_and_a_second_run_sends_nothing(practice, server):
    main(practice, "run", "--once", "--now", NOW)
    # Lena's monthly report of October apart (the first tick of a month sends last month's).
    [monthly] = [m for m in server.messages if m["Subject"].startswith("Månedsrapport")]
    assert monthly["To"].addresses[0].addr_spec == "lena@example.com"
    received = {m["To"].addresses[0].addr_spec: m for m in server.messages if m is not monthly}
    # Clara, never sent the policy before her late cancellation, gets a kind warning, no fee.
    assert sorted(received) == ["clara@example.com", "frank@example.com", "greta@example.com", "lena@example.com"]
    greta = received["greta@example.com"]
    assert greta["Subject"].startswith("Om timen din")  # practice.locale = "nb"; the first run is the first look: an introduction
    assert greta["Content-Language"] == "nb" and greta["Reply-To"].addresses[0].addr_spec == "lena@example.com"
    assert greta["Message-ID"].startswith("<act_") and greta["Date"]
    [calendar] = [part for part in greta.iter_attachments() if part.get_content_type() == "text/calendar"]
    assert b"METHOD:PUBLISH" in calendar.get_payload(decode=True)
    assert received["lena@example.com"]["Subject"].startswith("Dagsoversikt for Lena Berg Massage")
    main(practice, "run", "--once", "--now", NOW)
    assert len(server.messages) == 5, "nothing is sent twice"


def test_mail_test_checks_the_transport(practice, server):
    out = main(practice, "mail-test", "--to", "lena@example.com").stdout
    assert "sent a sample reminder to lena@example.com through smtp" in out
    [sample] = server.messages
    assert sample["To"].addresses[0].addr_spec == "lena@example.com"
    server.stop()
    failed = main(practice, "mail-test", "--to", "lena@example.com", check=False)
    assert failed.returncode == 1 and "cannot reach the SMTP server 127.0.0.1" in failed.stderr


def test_preview_renders_a_template_with_sample_data_in_a_chosen_language(tmp_path):
    out = tmp_path / "reminder.html"
    result = main(ROOT, "preview", "reminder", "--locale", "he", "--out", str(out))
    assert result.stdout.startswith("Subject: תזכורת: התור שלך")
    assert "https://meet.example.com/abc-defg-hij" in result.stdout
    html = out.read_text(encoding="utf-8")
    assert '<html lang="he" dir="rtl">' in html
    english = main(ROOT, "preview", "slot_freed", "--locale", "en").stdout
    assert "Subject: A time has become free" in english and "Ana" not in english
    unknown = main(ROOT, "preview", "welcome_pack", check=False)
    assert unknown.returncode == 1 and "practitioner_digest" in unknown.stderr and "reminder" in unknown.stderr
