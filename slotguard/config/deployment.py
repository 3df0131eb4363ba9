"""A deployment: many practices, one PostgreSQL ledger server, any number of workers.

One practitioner runs Slotguard with one config file (config/example.toml) and needs none of
this. A clinic group or a host names a deployment file (config/deployment.example.toml):
where the practices' config files are (`practices/ID.toml`, each an ordinary Slotguard config
whose file name is the practice's id), the PostgreSQL server they share, how workers claim
work, push notifications, the limits shared by all workers, metrics and logs.
See docs/deploy.md.

Each section belongs to one part of the code: [workers] to slotguard/run/worker.py,
[limits] to slotguard/store/shared_limits.py, [push] to the push channels, [metrics] and
[logging] to the operations endpoints.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, model_validator

from slotguard.config.schema import ConfigError, format_validation_error, read_toml
from slotguard.config.types import PositiveDuration, SecretRef, Strict


class DeploymentFolders(Strict):
    practices: str = Field("practices", description="Folder of the practices' config files, one ID.toml per practice (the id: lower-case letters, digits and _).", examples=["practices"])
    data_dir: str = Field("var/deployment", description="Where the deployment keeps each practice's files (DATA_DIR/ID: tokens, evidence, outbox).", examples=["var/deployment"])
    ledgers: Literal["postgresql", "sqlite"] = Field("postgresql", description='Where each practice\'s ledger is: "postgresql" (schema practice_ID on storage.url, for workers on any machine) or "sqlite" (DATA_DIR/ID/ledger.sqlite3: workers on one machine only; the work queue is on storage.url still). A practice file naming a storage.url of its own keeps it.', examples=["postgresql"])


class DeploymentStorage(Strict):
    url: str = Field("", description='The PostgreSQL server every practice\'s ledger lives on, "postgresql://user@host/db" (a password by PGPASSWORD or ~/.pgpass, never here). Each practice has its own schema, practice_ID.', examples=["postgresql://slotguard@127.0.0.1:5432/slotguard"])


class Workers(Strict):
    lease: PositiveDuration = Field(timedelta(minutes=2), description="How long a worker's claim on a practice lasts without renewal; a worker that dies loses it after this at the latest.", examples=["2m"])
    idle_sleep: PositiveDuration = Field(timedelta(seconds=5), description="How long a worker with nothing to do waits before looking again (a push wakes it sooner).", examples=["5s"])
    backoff_max: PositiveDuration = Field(timedelta(minutes=30), description="A practice whose tick fails is tried again after 30s, 1m, 2m, ... up to this (the others go on meanwhile).", examples=["30m"])
    cached_practices: int = Field(32, ge=1, le=10000, description="How many practices' engines (settings, templates, calendar and payment clients) a worker keeps between their ticks, the least recently used dropped; a PostgreSQL ledger's connection is closed after every tick either way.", examples=[32])
    queue_schema: str = Field("slotguard_cluster", pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="The PostgreSQL schema of the tables shared by all practices: the work queue, the push channels and the shared request limits; another name only to keep two deployments apart on one database.", examples=["slotguard_cluster"])


class Limits(Strict):
    google_project_per_minute: int = Field(10000, ge=1, description="Google Calendar requests per minute for the whole deployment (the Cloud project's quota), shared by all workers.", examples=[10000])
    google_user_per_minute: int = Field(600, ge=1, description="Google Calendar requests per minute for one practice's account, shared by all workers.", examples=[600])
    stripe_test_per_second: int = Field(25, ge=1, description="Stripe requests per second for one Stripe account in test mode, shared by all workers (Stripe allows 25).", examples=[25])
    stripe_live_per_second: int = Field(100, ge=1, description="Stripe requests per second for one Stripe account in live mode, shared by all workers (Stripe allows 100).", examples=[100])
    fallback_share: float = Field(0.25, gt=0, le=1, description="While PostgreSQL cannot be reached, each worker paces its requests alone at this share of every limit (0.25: up to four workers stay within the limits together); it logs once and goes back to the shared limits when the server answers.", examples=[0.25])
    margin_seconds: float = Field(0.05, ge=0, le=5, description="Seconds added to each limit's window: a start is used a little after it is given (the database's answer travelling back, a sleep waking late), and a start used late must not put one request too many into the service's window. Raise it on busy machines.", examples=[0.05])
    offline_retry: PositiveDuration = Field(timedelta(seconds=10), description="While PostgreSQL cannot be reached, how often a worker tries it again for the shared limits.", examples=["10s"])


class Push(Strict):
    enabled: bool = Field(False, description="Google push notifications (events.watch) instead of polling every calendar.poll_interval: a change to a watched calendar wakes its practice within seconds. Needs address and token_secret. See docs/deploy.md#8-google-push-notifications.", examples=[True])
    address: str = Field("", description="The public https address of the webhook server's /google/push, which Google calls (a certificate Google trusts; plain http is refused).", examples=["https://hooks.example.com/google/push"])
    token_secret: SecretRef | None = Field(None, description="A secret, by reference, that signs each channel's token (an HMAC of the channel id; only its digest is stored). Changing it renews every channel at the practices' next ticks.", examples=[{"env": "SLOTGUARD_PUSH_SECRET"}])
    channel_ttl: PositiveDuration = Field(timedelta(days=7), description="How long a channel is asked to live (Google's default and usual limit for events is 7 days; the expiry Google answers is the one used).", examples=["7d"])
    renew_before: PositiveDuration = Field(timedelta(days=1), description="A channel is renewed (a new one opened, then the old one stopped) this long before it expires; shorter than channel_ttl, longer than poll_fallback.", examples=["1d"])
    poll_fallback: PositiveDuration = Field(timedelta(minutes=30), description="With push on, each Google calendar is still read this often, as a safety net for a lost notification.", examples=["30m"])

    @model_validator(mode="after")
    def _usable(self) -> Push:
        if self.renew_before >= self.channel_ttl:
            raise ValueError("renew_before must be shorter than channel_ttl, or every channel would be renewed at every tick")
        if self.renew_before <= self.poll_fallback:
            raise ValueError("renew_before must be longer than poll_fallback: an idle practice's tick, which renews its channels, may come only every poll_fallback")
        if self.enabled:
            parts = urlsplit(self.address)
            if parts.scheme != "https" or not parts.hostname:
                raise ValueError(f"address: with enabled = true, give the public https address Google calls (e.g. https://hooks.example.com/google/push), not {self.address!r}")
            if self.token_secret is None:
                raise ValueError('token_secret: with enabled = true, give a secret by reference, e.g. token_secret = { env = "SLOTGUARD_PUSH_SECRET" }')
        return self


class Metrics(Strict):
    listen: str = Field("127.0.0.1:9108", description='Where a worker serves /metrics, /healthz and /readyz, "host:port" ("" for nowhere; port 0 for any free one).', examples=["0.0.0.0:9108"])
    per_practice: bool = Field(True, description="Label metrics with the practice id. Each practice a worker has ticked adds about 15 to 60 series per worker; false drops the label for deployments of thousands of practices (counters then add up over practices).", examples=[False])
    stuck_after: PositiveDuration = Field(timedelta(minutes=10), description="/healthz answers 503 when the worker's loop has not turned for this long (a tick stuck on a call that never returns); longer than your slowest tick.", examples=["10m"])


class Logging(Strict):
    format: Literal["text", "json"] = Field("text", description='"text": key=value lines; "json": one JSON object per line with time, level, logger, message, practice and action ids (--log-format on the command line wins).', examples=["json"])


class Deployment(Strict):
    deployment: DeploymentFolders = Field(default_factory=DeploymentFolders, description="Where the practices' configs and files are.")
    storage: DeploymentStorage = Field(default_factory=DeploymentStorage, description="The shared PostgreSQL server.")
    workers: Workers = Field(default_factory=Workers, description="How workers claim and hold work.")
    limits: Limits = Field(default_factory=Limits, description="Request limits shared by all workers.")
    push: Push = Field(default_factory=Push, description="Google push notifications.")
    metrics: Metrics = Field(default_factory=Metrics, description="Prometheus metrics and health endpoints.")
    logging: Logging = Field(default_factory=Logging, description="Log format.")


def load_deployment(path: str | Path) -> Deployment:
    """Read and validate the deployment file at `path`. Raises ConfigError naming the file with
    every problem (missing, not TOML, unknown keys, bad values). Relative paths in it (the
    practices folder, data_dir) are relative to the folder Slotguard is started in, as in a
    practice's config."""
    data = read_toml(path)
    try:
        return Deployment.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error), str(path)) from None
