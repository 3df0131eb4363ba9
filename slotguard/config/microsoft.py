"""`[calendar.microsoft]`: reading and writing a Microsoft 365 / Outlook calendar through
Microsoft Graph (`calendar.source = "microsoft"`; integration/microsoft_graph.py).

Hooked into slotguard/config/sections.py's Calendar as its `microsoft` field. The sign-in is
MSAL's device-code flow (`main.py auth microsoft`, integration/microsoft_auth.py); the
authority and the Graph endpoint are settings so that sovereign clouds, proxies and tests can
point elsewhere, and `ca_file` names the certificate authorities to trust for both.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from slotguard.config.types import Strict

PUBLIC_AUTHORITY_HOST = "https://login.microsoftonline.com"
PUBLIC_GRAPH = "https://graph.microsoft.com/v1.0"
MARK_NAMES = ("no_show", "late_cancel", "waive", "attended", "wants_earlier", "knows_policy")


def _names(value: list[str]) -> list[str]:
    """Category names as given, without blanks; ValueError for one Outlook could not hold."""
    found = []
    for name in value:
        name = name.strip()
        if not name or len(name) > 255 or "," in name or ";" in name:
            raise ValueError(f"{name!r} is not an Outlook category name (1 to 255 characters, no comma or semicolon)")
        found.append(name)
    return found


class MicrosoftCategories(Strict):
    """Outlook categories that mean a mark, by mark. Categories are private to your mailbox
    (an attendee never sees them), so they are the natural way to mark a no-show in Outlook.
    Names are compared without regard to case."""

    no_show: list[str] = Field(default_factory=lambda: ["No-show"], description="Categories that mark a no-show.", examples=[["No-show"]])
    late_cancel: list[str] = Field(default_factory=lambda: ["Late cancellation"], description="Categories that mark a client's late cancellation on an event kept in the calendar.", examples=[["Late cancellation"]])
    waive: list[str] = Field(default_factory=lambda: ["Waive"], description="Categories that waive a fee.", examples=[["Waive"]])
    attended: list[str] = Field(default_factory=list, description="Categories that mark attendance explicitly.", examples=[["Attended"]])
    wants_earlier: list[str] = Field(default_factory=list, description="Categories that mark a client who would like an earlier time.", examples=[["Wants earlier"]])
    knows_policy: list[str] = Field(default_factory=list, description="Categories that say the client knows the fee policy.", examples=[["Knows policy"]])

    @field_validator(*MARK_NAMES)
    @classmethod
    def _check(cls, value: list[str]) -> list[str]:
        return _names(value)

    def marks_of(self, categories: list[str]) -> list[str]:
        """The mark names (as in MARK_NAMES) that any of `categories` means."""
        present = {str(name).strip().lower() for name in categories if isinstance(name, str)}
        return [mark for mark in MARK_NAMES if any(name.lower() in present for name in getattr(self, mark))]


def _check_ca_file(ca_file: str) -> None:
    """Raise ValueError saying what is wrong when `ca_file` is not a readable PEM file of
    certificates (read now, so check-config reports it)."""
    path = Path(ca_file)
    shown = str(path) if path.is_absolute() else str(Path.cwd() / path)
    try:
        ssl.create_default_context(cafile=ca_file)
    except FileNotFoundError:
        raise ValueError(f"no file {shown}; give the PEM file of the certificate authority your proxy's certificate comes from, or leave ca_file out") from None
    except IsADirectoryError:
        raise ValueError(f"{shown} is a folder; give the PEM file in it") from None
    except ssl.SSLError:
        raise ValueError(f"{shown} is not a PEM file of certificates (-----BEGIN CERTIFICATE----- blocks)") from None
    except OSError as error:
        raise ValueError(f"{shown} cannot be read ({error.strerror or error}); check the path and its permissions") from None


def _https_url(value: str, what: str, example: str) -> str:
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"{value!r} is not an https:// address like {example}; {what} is only ever reached over https")
    return value


class Microsoft(Strict):
    client_id: str = Field(
        description="The Application (client) ID of the app registration in Microsoft Entra ID (a public client with device code flow allowed; see docs/microsoft.md).",
        examples=["8a2b6f0e-3c1d-4e5f-9a7b-1c2d3e4f5a6b"],
    )
    tenant: str = Field(
        "organizations",
        description='Who may sign in: your directory (tenant) ID or domain, "organizations" (any work or school account), "consumers" (personal Outlook.com accounts) or "common" (both).',
        examples=["contoso.onmicrosoft.com", "organizations"],
    )
    authority: str = Field(
        "",
        description="The sign-in authority URL, https://HOST/TENANT; empty: https://login.microsoftonline.com/TENANT. Set it for a sovereign cloud (https://login.microsoftonline.us/TENANT) or a proxy; with one set, MSAL's instance discovery is off.",
        examples=["https://login.microsoftonline.us/contoso.onmicrosoft.us"],
    )
    graph_endpoint: str = Field(
        PUBLIC_GRAPH,
        description="The Microsoft Graph root the calendar is read and written through (a sovereign cloud's, or a proxy's). Only links under it are ever followed.",
        examples=["https://graph.microsoft.us/v1.0"],
    )
    calendar: str = Field(
        "",
        description="The calendar to watch, by its Graph id or its name as Outlook shows it; empty: your default calendar.",
        examples=["Clinic"],
    )
    categories: MicrosoftCategories = Field(default_factory=MicrosoftCategories, description="Outlook categories that mean a mark (beside the tags of calendar.marks, which also count in the subject and body).")
    ca_file: str = Field(
        "",
        description="A PEM file of the certificate authorities to trust instead of the system's, for the authority and Graph (a proxy that re-signs TLS); empty: the system's.",
        examples=["/etc/slotguard/proxy-ca.pem"],
    )

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("give the Application (client) ID of your app registration (docs/microsoft.md, step 1)")
        return value

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, value: str) -> str:
        value = value.strip()
        if not value or "/" in value or " " in value:
            raise ValueError(f"{value!r} is not a tenant: give a directory ID, a domain, or organizations / consumers / common")
        return value

    @field_validator("authority")
    @classmethod
    def _authority(cls, value: str) -> str:
        if not value.strip():
            return ""
        value = _https_url(value, "the sign-in authority", "https://login.microsoftonline.com/contoso.onmicrosoft.com")
        if urlsplit(value).path.strip("/") == "":
            raise ValueError(f"{value!r} names no tenant: write it like https://login.microsoftonline.com/TENANT")
        return value

    @field_validator("graph_endpoint")
    @classmethod
    def _graph(cls, value: str) -> str:
        return _https_url(value, "Microsoft Graph", PUBLIC_GRAPH)

    @field_validator("ca_file")
    @classmethod
    def _ca(cls, value: str) -> str:
        if value:
            _check_ca_file(value)
        return value

    def category_problems(self, marks: object) -> list[str]:
        """Why a category could not be read as its mark: a category becomes the mark's first
        tag (or its colour) in the event Slotguard reads, so the mark needs one."""
        problems = []
        for mark in MARK_NAMES:
            rule = getattr(marks, mark)
            if getattr(self.categories, mark) and not (rule.tags or rule.color):
                problems.append(f"calendar.microsoft.categories.{mark} names categories, but calendar.marks.{mark} has no tag or colour; give it a tag (e.g. tags = [\"#{mark.replace('_', '')}\"]) or empty the categories")
        return problems

    @property
    def authority_url(self) -> str:
        """The authority MSAL signs in at."""
        return self.authority or f"{PUBLIC_AUTHORITY_HOST}/{self.tenant}"

    @property
    def custom_authority(self) -> bool:
        """True when `authority` is set: MSAL's instance discovery (a request to Microsoft
        asking whether the host is known) is then turned off."""
        return bool(self.authority)
