"""Where the CalDAV client sends the credentials (integration/caldav_http.py)."""

from __future__ import annotations

import pytest

from integration.caldav_http import DavClient, credential_scope, parse_multistatus
from slotguard.domain.interfaces import AdapterError


def test_credentials_go_to_the_server_and_its_siblings_only():
    client = DavClient("https://caldav.icloud.com/", "lena@icloud.com", "app-password")
    assert client._credentials_for("https://caldav.icloud.com/123/principal/")
    assert client._credentials_for("https://p42-caldav.icloud.com/123/calendars/")
    assert not client._credentials_for("http://p42-caldav.icloud.com/123/calendars/"), "never unencrypted"
    assert not client._credentials_for("https://icloud.com.evil.example/")
    assert not client._credentials_for("https://evil-icloud.com/")


@pytest.mark.parametrize(("host", "scope"), [("caldav.icloud.com", "icloud.com"), ("cloud.example.co.uk", "example.co.uk"),
                                             ("example.co.uk", ""), ("example.com", ""), ("localhost", "")])
def test_the_scope_is_never_a_public_suffix(host, scope):
    assert credential_scope(host) == scope


def test_a_password_never_travels_unencrypted_to_another_machine():
    with pytest.raises(AdapterError, match="unencrypted"):
        DavClient("http://dav.example.com/", "lena", "secret")
    DavClient("http://127.0.0.1:5232/", "lena", "secret")  # a server on this machine


def test_a_multistatus_is_read_with_hrefs_made_absolute_and_other_xml_refused():
    body = (b'<?xml version="1.0"?><d:multistatus xmlns:d="DAV:"><d:sync-token>tok-2</d:sync-token><d:response>'
            b'<d:href>/cal/a.ics</d:href><d:propstat><d:prop><d:getetag>"e1"</d:getetag></d:prop>'
            b'<d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response><d:response><d:href>/cal/b.ics</d:href>'
            b'<d:status>HTTP/1.1 404 Not Found</d:status></d:response></d:multistatus>')
    items, token = parse_multistatus(body, "https://dav.example.com/cal/")
    assert token == "tok-2"
    assert [(item.href, item.status) for item in items] == [("https://dav.example.com/cal/a.ics", 200), ("https://dav.example.com/cal/b.ics", 404)]
    with pytest.raises(AdapterError):
        parse_multistatus(b"<html>maintenance</html>", "https://dav.example.com/")
    with pytest.raises(AdapterError):
        parse_multistatus(b'<!DOCTYPE d:multistatus [<!ENTITY a "aaaa">]><d:multistatus xmlns:d="DAV:"><d:sync-token>&a;</d:sync-token>'
                          b'</d:multistatus>', "https://dav.example.com/")
