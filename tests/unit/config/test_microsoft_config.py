"""`[calendar.microsoft]` (slotguard/config/microsoft.py): what check-config accepts and refuses."""

from __future__ import annotations

import pytest

from slotguard.config.schema import ConfigError
from tests.support.builders import settings

CLIENT = "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"


def microsoft(**values):
    return settings(calendar={"source": "microsoft", "microsoft": {"client_id": CLIENT, **values}})


def problems(**calendar) -> str:
    with pytest.raises(ConfigError) as raised:
        settings(calendar={"source": "microsoft", **calendar})
    return str(raised.value)


def test_defaults_sign_in_at_microsoft_for_work_accounts_and_read_the_default_calendar():
    found = microsoft().calendar.microsoft
    assert found.authority_url == "https://login.microsoftonline.com/organizations" and not found.custom_authority
    assert found.graph_endpoint == "https://graph.microsoft.com/v1.0" and found.calendar == ""
    assert found.categories.no_show == ["No-show"] and found.categories.marks_of(["NO-SHOW", "waive"]) == ["no_show", "waive"]


def test_a_custom_authority_turns_instance_discovery_off():
    found = microsoft(authority="https://login.microsoftonline.us/contoso.onmicrosoft.us/").calendar.microsoft
    assert found.custom_authority and found.authority_url == "https://login.microsoftonline.us/contoso.onmicrosoft.us"


def test_the_source_needs_the_table():
    assert "needs a [calendar.microsoft] table with client_id" in problems()


@pytest.mark.parametrize(("values", "expected"), [
    ({"client_id": " "}, "calendar.microsoft.client_id: give the Application (client) ID"),
    ({"client_id": CLIENT, "authority": "http://login.example.com/t"}, "calendar.microsoft.authority: 'http://login.example.com/t' is not an https:// address"),
    ({"client_id": CLIENT, "authority": "https://login.example.com"}, "names no tenant"),
    ({"client_id": CLIENT, "graph_endpoint": "graph.microsoft.com"}, "calendar.microsoft.graph_endpoint"),
    ({"client_id": CLIENT, "tenant": "a/b"}, "calendar.microsoft.tenant"),
    ({"client_id": CLIENT, "ca_file": "/nonexistent/ca.pem"}, "calendar.microsoft.ca_file: no file /nonexistent/ca.pem"),
    ({"client_id": CLIENT, "categories": {"no_show": ["a,b"]}}, "calendar.microsoft.categories.no_show"),
    ({"client_id": CLIENT, "colour": "red"}, "calendar.microsoft.colour"),
])
def test_each_wrong_setting_is_named(values, expected):
    assert expected in problems(microsoft=values)


def test_a_category_for_a_mark_that_has_neither_tag_nor_colour_is_refused():
    text = problems(microsoft={"client_id": CLIENT, "categories": {"attended": ["Came"]}}, marks={"attended": {"tags": []}})
    assert "calendar.microsoft.categories.attended names categories, but calendar.marks.attended has no tag or colour" in text
