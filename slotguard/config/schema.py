"""The configuration schema, loading and validation.

Schema first: every key has a description, a default (where it can have one) and an
example; unknown keys are errors; all errors are reported at once, each with its path, e.g.
`policies.no_show.fee: "abc" is not a fee`. Secrets are referenced, never written in.

Relative paths are resolved against the working directory Slotguard is started in.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)

from slotguard.config.inbox import Inbox
from slotguard.config.privacy import Privacy
from slotguard.config.sections import (
    Calendar,
    Mail,
    Payments,
    Practice,
    Reminders,
    Services,
    Storage,
)
from slotguard.config.types import (
    ConfigError,
    FeeRule,
    PositiveAmount,
    PositiveDuration,
    Strict,
)

# Duration is imported from here by policies written before slotguard/config/types.py existed.
from slotguard.config.types import Duration as Duration
from slotguard.domain.durations import format_duration
from slotguard.domain.money import Fee


def _percent(value: Any) -> Decimal:
    """A percent written "20%" (or "20"), between 0 and 100; floats are refused."""
    if isinstance(value, Decimal):
        percent = value
    elif isinstance(value, (float, bool)):
        raise ValueError('write the percent as text, like "20%" (not a float)')
    else:
        try:
            percent = Decimal(str(value).strip().removesuffix("%").strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a percent like \"20%\"") from None
    if not percent.is_finite() or percent < 0 or percent > 100:
        raise ValueError("must be between 0% and 100%")
    return percent


Percent = Annotated[Decimal, BeforeValidator(_percent), PlainSerializer(lambda value: f"{value.normalize():f}%", return_type=str)]
COLLECTION_TEMPLATES = ("payment_reminder_1", "payment_reminder_2", "payment_final_notice")


class CollectionStep(Strict):
    """One step of the ladder for an unpaid fee: an email (and optionally a card retry and an
    offer), or the final decision to write the debt off or refer it."""

    after: PositiveDuration = Field(description="How long after the fee became unpaid the step comes (the gap to the previous step is kept when a step comes late).", examples=["14d"])
    template: str = Field("", description=f"The email sent at this step: {', '.join(COLLECTION_TEMPLATES)} or a template of your own (mail.templates_dir). Not with `action`.", examples=["payment_reminder_2"])
    retry_charge: bool = Field(False, description="stripe: try the saved card again (off-session, once for this step) before the email goes; ignored with record-only.", examples=[True])
    offer: Literal["plan", "settlement"] | None = Field(None, description='Offer a payment plan ([collections.plan]) or a settlement ([collections.settlement]) in this email.', examples=["plan"])
    action: Literal["writeoff_or_refer"] | None = Field(None, description="The last step: write the debt off (below `writeoff_below`, or when collecting would not be worth `collection_cost`) or mark it for referral and tell you.", examples=["writeoff_or_refer"])


class CollectionPlan(Strict):
    installments: int = Field(3, ge=2, description="Into how many installments the balance is split (fewer when an installment would be below `min_installment`).", examples=[3])
    every: PositiveDuration = Field(timedelta(days=30), description="Time between installments; an installment unpaid this long after it was due ends the plan, and the reminders resume for the rest.", examples=["30d"])
    min_installment: PositiveAmount | None = Field(None, description="No installment is smaller than this; a balance too small for two is not offered a plan.", examples=["200 NOK"])


class CollectionSettlement(Strict):
    discount: Percent = Field(Decimal(20), description="How much less the client pays when settling within `valid_for`; the rest is written off when they pay.", examples=["20%"])
    valid_for: PositiveDuration = Field(timedelta(days=14), description="How long the settlement offer stands.", examples=["14d"])


class Collections(Strict):
    """The polite ladder for unpaid fees (docs/collections.md). Off while `steps` is empty."""

    steps: list[CollectionStep] = Field(
        default_factory=list,
        description="The ladder, ordered by `after`; empty turns collections off.",
        examples=[[
            {"after": "3d", "template": "payment_reminder_1"},
            {"after": "14d", "template": "payment_reminder_2", "retry_charge": True},
            {"after": "30d", "template": "payment_final_notice", "offer": "plan"},
            {"after": "45d", "action": "writeoff_or_refer"},
        ]],
    )
    plan: CollectionPlan = Field(default_factory=CollectionPlan, description="The payment plan a step with `offer = \"plan\"` proposes.")
    settlement: CollectionSettlement = Field(default_factory=CollectionSettlement, description="The settlement a step with `offer = \"settlement\"` proposes.")
    writeoff_below: PositiveAmount | None = Field(None, description="The last step writes off a balance below this, and one whose expected recovery after `collection_cost` is below it; never chase less.", examples=["150 NOK"])
    collection_cost: FeeRule = Field(Fee(percent=Decimal(30)), description="What referring a debt to an agency would cost: a percent of the balance or a fixed amount.", examples=["30%"])

    @property
    def enabled(self) -> bool:
        return bool(self.steps)

    def problems(self, currency: str, templates_dir: str) -> list[str]:
        """What is wrong with the ladder, each with its path (amounts in `currency`)."""
        problems = []
        previous = None
        for index, step in enumerate(self.steps):
            path = f"collections.steps.{index}"
            if previous is not None and step.after <= previous:
                problems.append(f"{path}.after: {format_duration(step.after)} is not after the previous step ({format_duration(previous)}): order the steps by `after`")
            previous = step.after
            if step.action:
                if step.template or step.retry_charge or step.offer:
                    problems.append(f"{path}: a step with action = \"{step.action}\" sends nothing, so leave out template, retry_charge and offer")
                if index != len(self.steps) - 1:
                    problems.append(f"{path}.action: \"{step.action}\" ends the ladder, so make it the last step")
            elif not step.template:
                problems.append(f"{path}.template: required (one of {', '.join(COLLECTION_TEMPLATES)}) unless the step has an action")
            elif not _template_exists(step.template, templates_dir):
                problems.append(f"{path}.template: no template {step.template!r} ({step.template}.txt.j2 or LOCALE/{step.template}.txt.j2) in the bundled templates or mail.templates_dir (known: {', '.join(COLLECTION_TEMPLATES)})")
        amounts = (("plan.min_installment", self.plan.min_installment), ("writeoff_below", self.writeoff_below), ("collection_cost", self.collection_cost.fixed))
        for path, amount in amounts:
            if amount is not None and amount.currency != currency:
                problems.append(f"collections.{path}: {amount} is not in the practice currency {currency}")
        if not Decimal(0) < self.settlement.discount < Decimal(100):
            problems.append("collections.settlement.discount: must be more than 0% and less than 100%")
        return problems


def _template_exists(name: str, templates_dir: str) -> bool:
    if not re.fullmatch(r"[a-z0-9_]+", name):
        return False
    bundled = Path(__file__).resolve().parents[2] / "templates"
    folders = [Path(templates_dir)] if templates_dir else []
    folders.append(bundled)
    # NAME.txt.j2 serves every locale; LOCALE/NAME.txt.j2 is a practice's template for one.
    return any(folder.is_dir() and ((folder / f"{name}.txt.j2").is_file() or any(folder.glob(f"*/{name}.txt.j2"))) for folder in folders)


class Policies(BaseModel):
    """`enabled` lists active policies in order; each may have its own table of settings."""

    model_config = ConfigDict(extra="allow", frozen=True)
    enabled: list[str] = Field(default_factory=list, description="Active policies, fee policies first, then modifiers in the order they apply.", examples=[["late_cancel", "no_show"]])


class Settings(Strict):
    practice: Practice
    calendar: Calendar
    services: Services = Field(description='Priced services by name (`[services.NAME]`; "default" is required) and the price ceiling `max_price`.')
    payments: Payments = Field(default_factory=Payments)
    mail: Mail = Field(default_factory=Mail)
    reminders: Reminders = Field(default_factory=Reminders)
    storage: Storage = Field(default_factory=Storage)
    policies: Policies = Field(default_factory=Policies)
    collections: Collections = Field(default_factory=Collections, description="Unpaid fees: a polite ladder of reminders, payment plans, settlement and write-off (docs/collections.md). Off unless `steps` is set.")
    inbox: Inbox = Field(default_factory=Inbox, description="The mailbox Slotguard reads: the practitioner's one-tap commands and clients' confirmations and cancellations by email (docs/inbox.md).")
    privacy: Privacy = Field(default_factory=Privacy, description="How long client data is kept, and pseudonyms in the money records kept after it (docs/privacy.md).")

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        problems = []
        if "default" not in self.services:
            problems.append('services: add a "default" service with a price')
        for name, service in self.services.items():
            if service.price.currency != self.practice.currency:
                problems.append(
                    f"services.{name}.price: {service.price} is not in the practice currency {self.practice.currency}"
                )
        for key in ("max_single_charge", "daily_cap"):
            cap = getattr(self.payments, key)
            if cap and cap.currency != self.practice.currency:
                problems.append(f"payments.{key}: {cap} is not in {self.practice.currency}")
        cap = self.payments.max_single_charge
        if cap is None and self.payments.provider == "stripe":
            problems.append(
                'payments.max_single_charge: required with provider = "stripe": the most one fee may take '
                f'from a card, e.g. max_single_charge = "2000 {self.practice.currency}"'
            )
        ceiling = self.services.max_price
        if ceiling is not None:
            if ceiling.currency != self.practice.currency:
                problems.append(f"services.max_price: {ceiling} is not in the practice currency {self.practice.currency}")
            else:
                problems += [
                    f"services.max_price: {ceiling} is below the price of service {name} ({service.price}); raise it or lower that price"
                    for name, service in self.services.items()
                    if service.price.currency == ceiling.currency and service.price > ceiling
                ]
        if self.mail.transport == "smtp" and self.mail.smtp is None:
            problems.append('mail.smtp: mail.transport = "smtp" needs a [mail.smtp] table with host')
        if self.payments.provider == "stripe" and self.payments.secret_key is None:
            problems.append('payments.secret_key: the stripe provider needs secret_key = { env = "STRIPE_SECRET_KEY" }')
        problems += self.collections.problems(self.practice.currency, self.mail.templates_dir)
        problems += self.privacy.problems(self.calendar.window_past)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.practice.timezone)

    @property
    def sender(self) -> str:
        return self.mail.from_address or self.practice.email

    def policy_settings(self, name: str) -> dict[str, Any]:
        """The raw table [policies.NAME] (empty when absent)."""
        extra = self.policies.model_extra or {}
        value = extra.get(name, {})
        return value if isinstance(value, dict) else {}


# --- loading --------------------------------------------------------------------------


def _format_location(loc: tuple) -> str:
    parts = [str(p) for p in loc if not (isinstance(p, str) and p.startswith("function-"))]
    return ".".join(parts) or "(top level)"


def format_validation_error(error: ValidationError, prefix: str = "") -> list[str]:
    """Turn pydantic's errors into "path: message" lines the user can act on."""
    problems = []
    for item in error.errors(include_url=False):
        path = _format_location(item["loc"])
        if prefix:
            path = f"{prefix}.{path}" if path != "(top level)" else prefix
        message = item["msg"]
        for lead in ("Value error, ", "Assertion failed, "):
            if message.startswith(lead):
                message = message[len(lead):]
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see config/example.toml)"
        elif item["type"] == "missing":
            message = "required key is missing"
        if path in ("(top level)", prefix):
            # Cross-field checks report several problems, each already starting with its path.
            problems.extend(message.split("; "))
        else:
            problems.append(f"{path}: {message}")
    return problems


@dataclass(frozen=True)
class LoadedConfig:
    settings: Settings
    policy_settings: dict[str, Any]
    source: str


def parse_settings(data: dict[str, Any], source: str = "") -> Settings:
    """Validate a config mapping (as read from TOML or a scenario). Raises ConfigError."""
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_error(error), source) from None


MAX_CONFIG_BYTES = 1024 * 1024


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file. Raises ConfigError naming the file: missing, a folder, unreadable,
    larger than a config can be, not UTF-8, or not TOML (with the line)."""
    path = Path(path)

    def problem(text: str) -> ConfigError:
        return ConfigError([f"{path}: {text}"], str(path))

    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise problem("no such file; copy config/example.toml and edit it") from None
    except IsADirectoryError:
        raise problem("is a folder; give the path of the TOML file (e.g. config/example.toml)") from None
    except OSError as error:
        raise problem(f"cannot be read ({error.strerror or error}); check that the user Slotguard runs as may read it") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise problem(f"is larger than {MAX_CONFIG_BYTES // 1024} KB; a configuration is a few KB of TOML: check the path")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise problem(f"is not UTF-8 text (byte {error.start} cannot be read); save it as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise problem(f"not valid TOML: {error}") from None
    except RecursionError:
        raise problem("not valid TOML: arrays or tables are nested too deeply") from None
