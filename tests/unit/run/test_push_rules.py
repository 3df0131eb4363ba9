"""The rules of push that need no server: the [push] section refuses what Google would,
the poll interval with push on, the channel token, and `webhook-server --deployment`
refusing an unusable deployment before it listens."""

from __future__ import annotations

import hmac
from datetime import timedelta

import pytest
from pydantic import ValidationError

from integration.google_calendar import checked_push_address
from slotguard.cli.main import main
from slotguard.config.deployment import Deployment, Push
from slotguard.config.schema import parse_settings
from slotguard.domain.interfaces import AdapterError
from slotguard.run.push import channel_token, make_push_handler, next_poll, watched_calendars


def practice(source: str = "google", poll: str = "2m"):
    return parse_settings({
        "practice": {"name": "Lena Berg Massage", "email": "lena@example.com", "timezone": "Europe/Oslo", "currency": "NOK"},
        "calendar": {"source": source, "poll_interval": poll, **({"url": "config/sample-week.ics"} if source == "ics" else {})},
        "services": {"default": {"price": "900 NOK"}},
    })


PUSH_ON = {"enabled": True, "address": "https://hooks.example.com/google/push", "token_secret": {"env": "SLOTGUARD_PUSH_SECRET"}}


def test_only_google_calendars_of_a_deployment_with_push_on_are_watched():
    on = Deployment.model_validate({"push": PUSH_ON})
    google = parse_settings({
        "practice": {"name": "Lena Berg Massage", "email": "lena@example.com", "timezone": "Europe/Oslo", "currency": "NOK"},
        "calendar": {"source": "google", "calendar_ids": ["primary", "clinic@group.calendar.google.com"]},
        "services": {"default": {"price": "900 NOK"}},
    })
    assert watched_calendars(google, on) == ["primary", "clinic@group.calendar.google.com"]
    assert watched_calendars(google, Deployment()) == []  # push off: maintain_channels stops them
    assert watched_calendars(practice("ics"), on) == []
    assert watched_calendars(google, None) == []


def test_push_on_polls_a_google_calendar_only_as_a_safety_net():
    deployment = Deployment.model_validate({"push": {**PUSH_ON, "poll_fallback": "30m"}})
    assert next_poll(practice("google"), deployment) == timedelta(minutes=30)
    assert next_poll(practice("ics"), deployment) == timedelta(minutes=2)  # no push for a feed
    assert next_poll(practice("google"), Deployment()) == timedelta(minutes=2)  # push off
    assert next_poll(practice("google", "5m"), None) == timedelta(minutes=5)  # a single practice


@pytest.mark.parametrize("push, problem", [
    ({"enabled": True, "address": "http://hooks.example.com/google/push", "token_secret": {"env": "X"}}, "https"),
    ({"enabled": True, "address": "", "token_secret": {"env": "X"}}, "https"),
    ({"enabled": True, "address": "https://hooks.example.com/google/push"}, "token_secret"),
    ({"channel_ttl": "1d", "renew_before": "1d"}, "renew_before"),
    ({"renew_before": "20m", "poll_fallback": "30m"}, "poll_fallback"),
])
def test_the_push_section_refuses_what_google_would_not_deliver_to(push, problem):
    with pytest.raises(ValidationError, match=problem):
        Deployment.model_validate({"push": push})
    assert Push.model_validate(PUSH_ON).enabled


def test_the_adapter_refuses_plain_http_unless_a_test_allows_loopback():
    assert checked_push_address("https://hooks.example.com/google/push")
    for address in ("http://hooks.example.com/google/push", "ftp://x/y", "https:///nohost", ""):
        with pytest.raises(AdapterError):
            checked_push_address(address, allow_loopback_http=True)
    with pytest.raises(AdapterError):
        checked_push_address("http://127.0.0.1:8080/google/push")
    assert checked_push_address("http://127.0.0.1:8080/google/push", allow_loopback_http=True)


def test_a_channel_token_is_an_hmac_of_its_id_that_only_the_secret_makes():
    token = channel_token("s3cret", "chan-1")
    assert token == hmac.new(b"s3cret", b"chan-1", "sha256").hexdigest() and len(token) <= 256
    assert token != channel_token("s3cret", "chan-2") and token != channel_token("other", "chan-1")
    with pytest.raises(ValueError):
        make_push_handler(lambda: None, "", lambda conn, practice, reason: None)  # type: ignore[arg-type,return-value]


def test_a_notification_without_google_headers_is_refused_before_any_lookup():
    def never():
        raise AssertionError("no connection for a malformed notification")

    handle = make_push_handler(never, "s3cret", lambda conn, practice, reason: None)
    assert handle({})[0] == 400
    assert handle({"x-goog-channel-id": "c", "x-goog-resource-state": "deleted"})[0] == 400


def test_the_ledger_server_being_down_makes_google_deliver_again():
    def down():
        raise OSError("connection refused")

    handle = make_push_handler(down, "s3cret", lambda conn, practice, reason: None)
    genuine = {"x-goog-channel-id": "c", "x-goog-resource-state": "exists", "x-goog-channel-token": channel_token("s3cret", "c")}
    assert handle(genuine) == (503, "could not record the notification; try again")


def test_a_forged_token_is_refused_without_touching_the_ledger_server():
    def never():
        raise AssertionError("a forged notification must not cost a connection")

    handle = make_push_handler(never, "s3cret", lambda conn, practice, reason: None)
    forged = {"x-goog-channel-id": "c", "x-goog-resource-state": "exists", "x-goog-channel-token": channel_token("guess", "c")}
    assert handle(forged)[0] == 403
    assert handle({**forged, "x-goog-channel-token": ""})[0] == 403


def write(tmp_path, text: str):
    path = tmp_path / "deployment.toml"
    path.write_text(text)
    return str(path)


def test_webhook_server_refuses_a_deployment_it_cannot_serve_push_for(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SLOTGUARD_PUSH_SECRET", raising=False)
    off = write(tmp_path, '[storage]\nurl = "postgresql://slotguard@127.0.0.1:1/none"\n')
    assert main(["webhook-server", "--deployment", off, "--port", "0"]) == 2
    assert "push.enabled" in capsys.readouterr().err

    plain = write(tmp_path, '[push]\nenabled = true\naddress = "http://hooks.example.com/google/push"\ntoken_secret = { env = "SLOTGUARD_PUSH_SECRET" }\n')
    assert main(["webhook-server", "--deployment", plain, "--port", "0"]) == 2
    assert "https" in capsys.readouterr().err

    no_secret = write(tmp_path, '[storage]\nurl = "postgresql://slotguard@127.0.0.1:1/none"\n'
                      '[push]\nenabled = true\naddress = "https://hooks.example.com/google/push"\ntoken_secret = { env = "SLOTGUARD_PUSH_SECRET" }\n')
    assert main(["webhook-server", "--deployment", no_secret, "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "push.token_secret" in err and "SLOTGUARD_PUSH_SECRET" in err
