"""`main.py check-config` on the example config switched to a CalDAV calendar on a real
Radicale: the password reference, the password itself and the calendar's name are checked."""

from __future__ import annotations

import shutil

from tests.support.cli import ROOT, main
from tests.support.radicale_server import radicale  # noqa: F401 - the module-scoped fixture


def _example_on(folder, url: str, calendar: str) -> None:
    shutil.copytree(ROOT / "config", folder / "config")
    path = folder / "config/example.toml"
    text = path.read_text()
    text = text.replace('source = "ics" ', 'source = "caldav" ', 1)
    text = text.replace('# [calendar.caldav]', '[calendar.caldav]').replace('# url = "https://caldav.fastmail.com/"', f'url = "{url}"')
    text = text.replace('# username = "lena@fastmail.com"', 'username = "lena"').replace('# password = { env = "CALDAV_PASSWORD" }', 'password = { env = "CALDAV_PASSWORD" }')
    text = text.replace('# calendar = "Appointments"', f'calendar = "{calendar}"')
    path.write_text(text)


def test_check_config_finds_the_caldav_calendar_for_real(radicale, tmp_path):  # noqa: F811
    radicale.make_calendar("work", "Clinic")
    _example_on(tmp_path, radicale.url, "Clinic")
    unread = main(tmp_path, "check-config", check=False, env={"CALDAV_PASSWORD": ""})
    assert unread.returncode == 2 and "calendar.caldav.password: the environment variable CALDAV_PASSWORD is not set" in unread.stderr
    refused = main(tmp_path, "check-config", check=False, env={"CALDAV_PASSWORD": "wrong-" + radicale.password})
    assert refused.returncode == 2 and "refused the user name and password" in refused.stderr
    assert radicale.password not in refused.stdout + refused.stderr
    accepted = main(tmp_path, "check-config", check=False, env={"CALDAV_PASSWORD": radicale.password})
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "the CalDAV server has the calendar 'Clinic' and Slotguard asks what changed (sync-collection)" in accepted.stdout


def test_check_config_lists_the_calendars_when_the_name_is_wrong(radicale, tmp_path):  # noqa: F811
    radicale.make_calendar("home", "Private")
    _example_on(tmp_path, radicale.url, "Appointmens")
    result = main(tmp_path, "check-config", check=False, env={"CALDAV_PASSWORD": radicale.password})
    assert result.returncode == 2 and "no calendar named 'Appointmens'" in result.stderr and "'Private'" in result.stderr
