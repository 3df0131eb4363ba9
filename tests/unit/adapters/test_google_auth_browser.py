"""Whether `auth google` opens a browser, and what it prints when it cannot (issue 14)."""

import sys
import webbrowser

import pytest

from integration.google_auth import browser_available, waiting_message


@pytest.fixture
def desktop(monkeypatch):
    """A desktop session: a display, no SSH, a browser Python knows."""
    for name in ("SSH_CONNECTION", "SSH_TTY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(webbrowser, "get", lambda using=None: object())
    return monkeypatch


def test_a_desktop_opens_a_browser(desktop):
    assert browser_available() is True


def test_an_ssh_session_opens_none(desktop):
    desktop.setenv("SSH_CONNECTION", "203.0.113.7 52000 198.51.100.2 22")
    assert browser_available() is False


def test_a_linux_server_without_a_display_opens_none(desktop):
    desktop.delenv("DISPLAY")
    desktop.setattr(sys, "platform", "linux")
    assert browser_available() is False


def test_no_known_browser_opens_none(desktop):
    def none(using=None):
        raise webbrowser.Error("could not locate runnable browser")

    desktop.setattr(webbrowser, "get", none)
    assert browser_available() is False


def test_without_a_browser_the_message_gives_the_tunnel_and_the_curl_hand_over():
    text = waiting_message(9123, False, 600)
    assert "{url}" in text and "for 10 minutes" in text
    assert "ssh -L 9123:localhost:9123 YOU@THIS-SERVER" in text and "curl 'http://localhost:9123/" in text


def test_with_a_browser_the_message_is_short():
    text = waiting_message(8765, True, None)
    assert "{url}" in text and "ssh" not in text and "http://localhost:8765/" in text
