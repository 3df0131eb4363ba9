"""`[calendar.caldav]`: the CalDAV server, account and calendar (calendar.source = "caldav").

Read by integration/caldav_source.py; hooked into the calendar section as `Calendar.caldav`
(slotguard/config/sections.py). The password is a secret reference, like the Stripe key and
the SMTP password: an environment variable or a 0600 file, never the config itself.
"""

from __future__ import annotations

import ssl
from datetime import timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, field_validator

from slotguard.config.limits import at_most
from slotguard.config.types import PositiveDuration, SecretRef, Strict

LOOPBACK = ("127.0.0.1", "::1", "localhost")


class CategoryMarks(Strict):
    """Which CATEGORIES values on an event mean which mark (compared without regard to case)."""

    no_show: list[str] = Field(default_factory=lambda: ["No-show"], description="Categories that mark a no-show.", examples=[["No-show", "Udeblevet"]])
    late_cancel: list[str] = Field(default_factory=lambda: ["Late cancellation"], description="Categories that mark a late cancellation kept in the calendar.", examples=[["Late cancellation"]])
    waive: list[str] = Field(default_factory=lambda: ["Waive fee"], description="Categories that waive a fee.", examples=[["Waive fee"]])
    attended: list[str] = Field(default_factory=list, description="Categories that mark attendance explicitly.", examples=[["Attended"]])
    wants_earlier: list[str] = Field(default_factory=list, description="Categories that mark a client who would like an earlier time.", examples=[["Wants earlier"]])
    knows_policy: list[str] = Field(default_factory=list, description="Categories saying the client knows the fee policy.", examples=[["Knows policy"]])


class CalDav(Strict):
    url: str = Field(
        description="The CalDAV server's address (https). Slotguard finds your calendars from it: "
        "iCloud https://caldav.icloud.com/, Fastmail https://caldav.fastmail.com/, Nextcloud https://cloud.example.com/remote.php/dav/.",
        examples=["https://caldav.fastmail.com/"],
    )
    username: str = Field(description="The account's user name (iCloud: your Apple ID email; Fastmail: your full address).", examples=["lena@fastmail.com"])
    password: SecretRef = Field(
        description="The account's password, by reference: an app-specific password for iCloud, an app password for Fastmail and Nextcloud.",
        examples=[{"env": "CALDAV_PASSWORD"}],
    )
    calendar: str = Field(
        "",
        description="The calendar to read: its display name as your calendar app shows it, or its address (an https URL or a path on the server). Empty: the only calendar of the account (with several, check-config and the first tick list their names, as they do for a name the account does not have).",
        examples=["Appointments", "https://caldav.fastmail.com/dav/calendars/user/lena@fastmail.com/Default/"],
    )
    categories: CategoryMarks = Field(
        default_factory=CategoryMarks,
        description="CATEGORIES values that mark an event (a category set in Apple Calendar, Thunderbird or Nextcloud), beside the tags and colours of calendar.marks.",
    )
    ca_file: str = Field(
        "",
        description="A PEM file of the certificate authorities to trust instead of the system's (a Nextcloud or Baïkal whose certificate a private authority signed); empty: the system's.",
        examples=["/etc/slotguard/office-ca.pem"],
    )
    timeout: Annotated[PositiveDuration, AfterValidator(at_most(timedelta(minutes=5), "a server silent for longer is gone"))] = Field(
        timedelta(seconds=30), description="How long one request may wait for the server (at most 5m).", examples=["30s"]
    )

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme == "https" and parts.hostname:
            return value.strip()
        if parts.scheme == "http" and parts.hostname in LOOPBACK:
            return value.strip()  # a server on this machine (tests, a local Radicale)
        raise ValueError(f"{value!r} is not an https:// address of a CalDAV server, like https://caldav.fastmail.com/ (the password must not travel unencrypted)")

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if not value.strip() or ":" in value:
            raise ValueError("give the account's user name (it cannot be empty or hold a colon)")
        return value.strip()

    @field_validator("ca_file")
    @classmethod
    def _ca_file(cls, value: str) -> str:
        if value:
            try:
                ssl.create_default_context(cafile=value)
            except FileNotFoundError:
                raise ValueError(f"no file {Path(value).absolute()}; give the PEM file of the authority that signed your server's certificate, or leave ca_file out") from None
            except (ssl.SSLError, OSError) as error:
                raise ValueError(f"{value} is not a readable PEM file of certificates ({error}); it should hold -----BEGIN CERTIFICATE----- blocks") from None
        return value

