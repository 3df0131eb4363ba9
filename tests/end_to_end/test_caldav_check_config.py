"""`main.py check-config` on the example config switched to a CalDAV calendar."""

from __future__ import annotations

import shutil

from tests.support.cli import ROOT, main


def test_check_config_on_the_example_with_caldav(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    path = tmp_path / "config/example.toml"
    text = path.read_text()
    text = text.replace('source = "ics" ', 'source = "caldav" ', 1)
    text = text.replace('# [calendar.caldav]', '[calendar.caldav]').replace('# url = "https://caldav.fastmail.com/"', 'url = "https://caldav.fastmail.com/"')
    text = text.replace('# username = "lena@fastmail.com"', 'username = "lena@fastmail.com"').replace('# password = { env = "CALDAV_PASSWORD" }', 'password = { env = "CALDAV_PASSWORD" }')
    path.write_text(text)
    refused = main(tmp_path, "check-config", check=False, env={"CALDAV_PASSWORD": ""})
    assert refused.returncode != 0 and "calendar.caldav.password" in refused.stdout + refused.stderr
    accepted = main(tmp_path, "check-config", check=False, env={"CALDAV_PASSWORD": "app-password"})
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
