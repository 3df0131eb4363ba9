"""Google push notifications: a calendar change wakes its practice at once, polling becomes
a slow safety net.

Three parts, each given what it needs (no module here talks to Google or opens a server):

- `make_push_handler(open_connection, secret, wake)`: what the webhook server's
  /google/push route calls with a notification's headers. A notification counts only when
  its channel is one of ours (a row in slotguard/store/push_channels.py), its
  X-Goog-Channel-Token equals the HMAC of the channel id under [push] token_secret
  (compared in constant time) and its X-Goog-Resource-ID is the channel's. Then `sync`
  (Google's "channel open" message) is acknowledged and ignored, and `exists` or
  `not_exists` wakes the channel's practice through `wake(conn, practice, reason)`
  (slotguard.store.work_queue.wake), whose next tick syncs its calendars incrementally.
  Anything else is answered and logged (channel id and state, never the token), and wakes
  nothing.
- `maintain_channels(...)`: for one practice, during its tick (under the worker's claim
  on the practice, so never twice at once): open a channel for each watched calendar
  without one, renew a channel expiring within [push] renew_before (the new channel is
  opened before the old one is stopped: for a moment both deliver, so no change falls in a
  gap), stop the channels of calendars no longer configured, and forget channels Google
  has already expired. With nothing due it makes no request at all.
- `watched_calendars(settings, deployment)`: what to pass maintain_channels for a practice
  (none with push off or a calendar that is not Google: its channels are then stopped).
- `next_poll(settings, deployment)`: how long until a calendar is read again without a
  notification: [push] poll_fallback for a Google calendar with push on, else
  calendar.poll_interval.

Answers follow Google's rules for a receiving address: 2xx is success; 500, 502, 503 and
504 make Google retry with exponential backoff (we answer 503 when the ledger server cannot
be reached, so the notification comes again); any other status is a failed message that is
not retried (400 malformed, 403 bad token or resource, 404 unknown channel).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from slotguard.domain.interfaces import AdapterError
from slotguard.store.push_channels import (
    CLUSTER_SCHEMA,
    PushChannel,
    add_channel,
    channels_of,
    find_channel,
    mark_replaced,
    remove_channel,
    set_opened,
    token_digest,
)

log = logging.getLogger("slotguard.push")

STATES = ("sync", "exists", "not_exists")
WAKE_REASON = "google_push"

# (connection, practice id, reason): slotguard.store.work_queue.wake
Wake = Callable[[Any, str, str], None]
# Headers of one notification (names lower-case) -> (HTTP status, short text)
PushHandler = Callable[[Mapping[str, str]], tuple[int, str]]


class ChannelApi(Protocol):
    """What maintain_channels needs from Google (integration.google_calendar.GooglePushChannels)."""

    def watch(self, calendar_id: str, channel_id: str, address: str, token: str, ttl: timedelta) -> tuple[str, datetime]: ...

    def stop_channel(self, channel_id: str, resource_id: str) -> None: ...


def channel_token(secret: str, channel_id: str) -> str:
    """The token Google echoes in X-Goog-Channel-Token for this channel: HMAC-SHA256 of the
    channel id under [push] token_secret (hex, 64 characters; Google allows 256). Only the
    holder of the secret can make it, and it is never stored."""
    return hmac.new(secret.encode(), channel_id.encode(), hashlib.sha256).hexdigest()


# --- receiving ------------------------------------------------------------------------------


def make_push_handler(open_connection: Callable[[], AbstractContextManager[Any]], secret: str, wake: Wake,
                      schema: str = CLUSTER_SCHEMA) -> PushHandler:
    """A handler for the webhook server's /google/push route.

    Given `open_connection()` (a context manager yielding a PostgreSQL connection, opened per
    notification), the token secret and `wake`. The handler takes the headers (lower-case
    names) and returns (status, text); it never raises."""
    if not secret:
        raise ValueError("push.token_secret is empty")

    def handle(headers: Mapping[str, str]) -> tuple[int, str]:
        channel_id = headers.get("x-goog-channel-id", "")
        state = headers.get("x-goog-resource-state", "")
        number = headers.get("x-goog-message-number", "")
        if not channel_id or state not in STATES:
            log.warning("push_rejected why=%r channel=%r state=%r", "not a Google notification", channel_id[:80], state[:40])
            return 400, "not a Google push notification"
        # The token is checked first, from the secret alone: a forged notification costs no
        # connection to the ledger server.
        given = headers.get("x-goog-channel-token", "")
        if not hmac.compare_digest(channel_token(secret, channel_id).encode(), given.encode()):
            log.warning("push_rejected why=%r channel=%r state=%s number=%r", "bad token", channel_id[:80], state, number[:20])
            return 403, "bad channel token"
        try:
            with open_connection() as conn:
                channel = find_channel(conn, channel_id, schema)
                if channel is None:
                    log.warning("push_rejected why=%r channel=%r state=%s number=%r", "unknown channel", channel_id[:80], state, number[:20])
                    return 404, "unknown channel"
                if not channel.pending and headers.get("x-goog-resource-id", "") != channel.resource_id:
                    log.warning("push_rejected why=%r practice=%s channel=%s", "another resource", channel.practice, channel_id)
                    return 403, "not this channel's resource"
                if state == "sync":
                    log.info("push_sync practice=%s calendar=%s channel=%s", channel.practice, channel.calendar_id, channel_id)
                    return 200, "sync"
                wake(conn, channel.practice, WAKE_REASON)
                log.info("push_woke practice=%s calendar=%s channel=%s state=%s number=%r",
                         channel.practice, channel.calendar_id, channel_id, state, number[:20])
                return 200, "woken"
        except Exception as error:  # noqa: BLE001 - 503: Google delivers again with backoff
            log.error("push_failed channel=%r state=%s error=%s", channel_id[:80], state, type(error).__name__)
            return 503, "could not record the notification; try again"

    return handle


# --- keeping channels open --------------------------------------------------------------------


@dataclass
class ChannelReport:
    """What maintain_channels did for one practice (calendar ids)."""

    opened: list[str] = field(default_factory=list)
    renewed: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)  # expired at Google: no request needed
    failed: dict[str, str] = field(default_factory=dict)  # calendar id -> why

    @property
    def requests(self) -> int:
        """Requests made to Google (a renewal is two), failures left out."""
        return len(self.opened) + 2 * len(self.renewed) + len(self.stopped)


def maintain_channels(conn: Any, practice: str, calendar_ids: list[str], api: ChannelApi, push: Any, secret: str,
                      now: datetime, *, schema: str = CLUSTER_SCHEMA, new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
                      ) -> ChannelReport:
    """Keep one channel open per watched calendar of `practice`.

    Given the practice's watched Google calendar ids, the Google channel API, the deployment's
    [push] settings (address, channel_ttl, renew_before), the token secret and timezone-aware
    `now`. Opens what is missing, renews what expires within renew_before (or was made with
    another secret), stops channels of calendars no longer watched and retries stopping
    replaced ones, forgets expired ones. A Google error on one calendar is recorded in the
    report's `failed` and the others go on; the next tick tries again (polling covers the
    gap). Makes no request when nothing is due. Raises only for ledger errors.

    `conn` must be in autocommit mode (each write its own transaction): a channel is recorded
    before Google is asked to open it and must be visible to the webhook server at once."""
    report = ChannelReport()
    wanted = list(dict.fromkeys(calendar_ids))
    current: dict[str, PushChannel] = {}
    for channel in channels_of(conn, practice, schema):
        if channel.pending:  # left by a crash between recording and Google's answer: cannot be stopped, runs out
            remove_channel(conn, channel.channel_id, schema)
            log.warning("push_channel_abandoned practice=%s calendar=%s channel=%s", practice, channel.calendar_id, channel.channel_id)
        elif channel.expires_at <= now:
            remove_channel(conn, channel.channel_id, schema)
            report.forgotten.append(channel.calendar_id)
            log.info("push_channel_expired practice=%s calendar=%s channel=%s", practice, channel.calendar_id, channel.channel_id)
        elif channel.replaced:
            _stop(conn, api, channel, report, schema, report.stopped)
        else:
            older = current.get(channel.calendar_id)
            if older is not None:  # two live channels for one calendar: keep the newer
                _stop(conn, api, older, report, schema, report.stopped)
            current[channel.calendar_id] = channel
    for calendar_id, channel in current.items():
        if calendar_id not in wanted:
            _stop(conn, api, channel, report, schema, report.stopped)
    for calendar_id in wanted:
        old = current.get(calendar_id)
        stale_token = old is not None and old.token_digest != token_digest(channel_token(secret, old.channel_id))
        if old is not None and old.expires_at - now > push.renew_before and not stale_token:
            continue
        opened = _open(conn, api, practice, calendar_id, push, secret, now, report, schema, new_id)
        if opened is None:
            continue
        if old is None:
            report.opened.append(calendar_id)
            continue
        mark_replaced(conn, old.channel_id, now, schema)
        report.renewed.append(calendar_id)
        _stop(conn, api, old, report, schema, None)
    if report.opened or report.renewed or report.stopped or report.failed:
        log.info("push_channels practice=%s opened=%d renewed=%d stopped=%d failed=%d",
                 practice, len(report.opened), len(report.renewed), len(report.stopped), len(report.failed))
    return report


def _open(conn: Any, api: ChannelApi, practice: str, calendar_id: str, push: Any, secret: str, now: datetime,
          report: ChannelReport, schema: str, new_id: Callable[[], str]) -> PushChannel | None:
    channel_id = new_id()
    token = channel_token(secret, channel_id)
    # Recorded first: Google's sync message, or a change made at once, may arrive before its answer.
    add_channel(conn, PushChannel(channel_id, practice, calendar_id, "", token_digest(token), now + push.channel_ttl, now), schema)
    try:
        resource_id, expires = api.watch(calendar_id, channel_id, push.address, token, push.channel_ttl)
    except AdapterError as error:
        remove_channel(conn, channel_id, schema)
        report.failed[calendar_id] = str(error)
        log.warning("push_channel_failed practice=%s calendar=%s what=open error=%r", practice, calendar_id, str(error))
        return None
    set_opened(conn, channel_id, resource_id, expires, schema)
    channel = PushChannel(channel_id, practice, calendar_id, resource_id, token_digest(token), expires, now)
    log.info("push_channel_opened practice=%s calendar=%s channel=%s expires=%s", practice, calendar_id, channel_id, expires.isoformat())
    return channel


def _stop(conn: Any, api: ChannelApi, channel: PushChannel, report: ChannelReport, schema: str, done: list[str] | None) -> None:
    """Stop a channel at Google and forget it; on failure keep it marked replaced, so the next
    maintain_channels tries again."""
    try:
        api.stop_channel(channel.channel_id, channel.resource_id)
    except AdapterError as error:
        if not channel.replaced:
            mark_replaced(conn, channel.channel_id, channel.created_at, schema)
        report.failed[channel.calendar_id] = str(error)
        log.warning("push_channel_failed practice=%s calendar=%s what=stop channel=%s error=%r",
                    channel.practice, channel.calendar_id, channel.channel_id, str(error))
        return
    remove_channel(conn, channel.channel_id, schema)
    if done is not None:
        done.append(channel.calendar_id)
    log.info("push_channel_stopped practice=%s calendar=%s channel=%s", channel.practice, channel.calendar_id, channel.channel_id)


# --- polling with push on ---------------------------------------------------------------------


def watched_calendars(settings: Any, deployment: Any) -> list[str]:
    """The calendars of a practice that should have a push channel: its calendar_ids when the
    deployment has push on and the practice's calendar is Google, else none. Pass this to
    maintain_channels, so that turning push off, or moving a practice to another calendar
    source, stops its channels at its next tick."""
    push = getattr(deployment, "push", None)
    if push is not None and push.enabled and settings.calendar.source == "google":
        return list(settings.calendar.calendar_ids)
    return []


def next_poll(settings: Any, deployment: Any) -> timedelta:
    """How long after reading a practice's calendars to read them again unprompted.

    Given the practice's Settings and the Deployment (or None for a single practice):
    [push] poll_fallback when push is enabled and the calendar is Google (notifications
    prompt the reads in between), else calendar.poll_interval."""
    if watched_calendars(settings, deployment):
        return deployment.push.poll_fallback
    return settings.calendar.poll_interval
