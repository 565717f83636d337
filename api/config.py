"""The configuration file (`subledger.toml`) parsed once into typed models.

Every table and key is declared here with its type and bounds; anything else is refused with
its path (`targets.billy.requests_per_minte: unknown key`), as is a value of the wrong type
(`book = "false"` is a string, not false) or out of bounds (`requests_per_minute = 0`). The
credentials come from the environment through pydantic-settings where it sets them
(`SUBLEDGER_TARGET_<NAME>_TOKEN`, `..._CLIENT_SECRET`, `SUBLEDGER_SMTP_PASSWORD`), else from
the file. docs/sync.md has every key of a target and of `[notifications]`; docs/journal.md
the `[accounts]` table.

The models say what may be written; `api.sync` turns a target's table into the adapters'
`TargetSettings`, its schedule and the notifier's settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from subledger.adapters.sync.dispatcher import period_seconds

#: The longest payment terms a target is given, in days.
MAX_TERMS_DAYS = 365


def _number(value: Any) -> Any:
    """A product or account number, written as a string or a whole number, as a string; a
    boolean, an empty string or anything else is left for the string type to refuse."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


#: A product or account number (`"5810"` or `5810`).
Number = Annotated[str, BeforeValidator(_number), Field(min_length=1)]
#: Whole days to pay, from 0 to a year.
TermDays = Annotated[int, Field(ge=0, le=MAX_TERMS_DAYS)]


class _Table(BaseModel):
    """A table of the file: only its declared keys, each of its declared type (no coercion
    of strings into numbers or booleans)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class KindTable(_Table):
    """`kinds.<person|company|public>`: what a kind of customer does otherwise than the
    target's own settings."""

    book: bool | None = None
    email: bool | None = None
    e_invoice: bool | None = None

    def settings(self) -> dict[str, bool]:
        return self.model_dump(exclude_none=True)


class TargetTable(_Table):
    """The keys every target takes (`[targets.<name>]`)."""

    kind: Literal["billy", "dinero"] | None = None
    url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    token: SecretStr | None = None
    book: bool = True
    email: bool = False
    e_invoice: bool = False
    match: Literal["customer_number", "vat_number", "ean", "email"] = "customer_number"
    direction: Literal["push", "both"] = "push"
    poll_seconds: float = Field(default=60.0, ge=1, le=86_400)
    requests_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    timeout_seconds: float = Field(default=20.0, gt=0, le=600)
    accounts: dict[str, Number] = Field(default_factory=dict)
    payment_terms: dict[str, TermDays] = Field(default_factory=dict)
    mode: Literal["continuous", "scheduled", "manual"] = "continuous"
    every: str | None = None
    kinds: dict[Literal["person", "company", "public"], KindTable] = Field(default_factory=dict)
    transfer: Literal["on_issue", "on_payment"] = "on_issue"
    draft_recheck: str = "15m"

    @field_validator("poll_seconds", "timeout_seconds", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        """Seconds as a whole or a decimal number (TOML's `20` is an integer)."""
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    @field_validator("every", "draft_recheck")
    @classmethod
    def _every(cls, every: str | None) -> str | None:
        """A period: a whole number and `s`, `m`, `h` or `d` (`"3h"`)."""
        if every is not None:
            period_seconds(every)
        return every

    @model_validator(mode="after")
    def _period(self) -> TargetTable:
        """`every` belongs to, and is needed by, a scheduled target alone."""
        if self.mode == "scheduled" and self.every is None:
            raise ValueError('every: a scheduled target needs its period, as every = "3h"')
        if self.mode != "scheduled" and self.every is not None:
            raise ValueError('every: only a scheduled target has a period (mode = "scheduled")')
        return self

    def every_seconds(self) -> int | None:
        return None if self.every is None else period_seconds(self.every)


class BillyTable(TargetTable):
    """A Billy target's table."""

    kind: Literal["billy"] | None = None
    products: dict[str, Number] = Field(default_factory=dict)
    rounding_product: Number | None = None
    create_products: bool = False


class DineroTable(TargetTable):
    """A Dinero target's table."""

    kind: Literal["dinero"] | None = None
    organization_id: Annotated[str, BeforeValidator(_number), Field(pattern=r"^[0-9]+$")]
    client_id: str = Field(min_length=1)
    client_secret: SecretStr | None = None
    token_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    vat_accounts: dict[str, Number] = Field(default_factory=dict)
    rounding_account: (
        Annotated[str, BeforeValidator(_number), Field(pattern=r"^[0-9]+$")] | None
    ) = None
    #: Not Dinero's: refused with what to write instead.
    products: Any = None

    @field_validator("vat_accounts")
    @classmethod
    def _rates(cls, accounts: dict[str, str]) -> dict[str, str]:
        """Keys are VAT rates in percent, from 0 to 100 (`"25"`, `"12.5"`)."""
        for rate in accounts:
            try:
                percent = Decimal(rate)
            except ArithmeticError:
                percent = Decimal("NaN")
            if not percent.is_finite() or not 0 <= percent <= 100:
                raise ValueError(f'keys are VAT rates in percent, as "25" (got {rate!r})')
        return accounts

    @field_validator("products", mode="before")
    @classmethod
    def _no_products(cls, products: Any) -> Any:
        raise ValueError(
            "Dinero's invoice lines name accounts, not products: map VAT rates to accounts"
            " with vat_accounts instead"
        )


class NotificationsTable(_Table):
    """`[notifications]`: where a failed message is told."""

    webhook_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    smtp_host: str | None = Field(default=None, min_length=1)
    smtp_port: int = Field(default=25, ge=1, le=65_535)
    smtp_from: str = Field(default="subledger@localhost", min_length=3)
    smtp_to: str | list[str] = Field(default_factory=list)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["starttls", "implicit", "none"] | None = None
    smtp_starttls: bool | None = None
    smtp_ca_file: str | None = None
    smtp_insecure: bool = False

    def recipients(self) -> tuple[str, ...]:
        return (self.smtp_to,) if isinstance(self.smtp_to, str) else tuple(self.smtp_to)


class _FileTables(_Table):
    """The file's top level: only these tables."""

    accounts: dict[str, Any] = Field(default_factory=dict)
    #: Each target's table, as written: checked by `target_table`, as its kind's.
    targets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    notifications: NotificationsTable | None = None


@dataclass(frozen=True)
class ConfigFile:
    """The whole file, parsed: the chart of accounts (`Chart.from_mapping` checks what its
    numbers and names say), each target's table by its name, and the notifications."""

    accounts: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, BillyTable | DineroTable] = field(default_factory=dict)
    notifications: NotificationsTable | None = None


class TargetSecrets(BaseSettings):
    """A target's credentials from the environment: `SUBLEDGER_TARGET_<NAME>_TOKEN` and
    `SUBLEDGER_TARGET_<NAME>_CLIENT_SECRET`, which win over the file's."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    token: SecretStr | None = None
    client_secret: SecretStr | None = None

    @classmethod
    def of(cls, name: str) -> TargetSecrets:
        return cls(_env_prefix=f"SUBLEDGER_TARGET_{name.upper()}_")  # type: ignore[call-arg]


class NotificationSecrets(BaseSettings):
    """The SMTP password from `SUBLEDGER_SMTP_PASSWORD`, which wins over the file's."""

    model_config = SettingsConfigDict(env_prefix="SUBLEDGER_SMTP_", extra="ignore")

    password: SecretStr | None = None


class ConfigError(ValueError):
    """What is wrong in the file, one `path: problem` per line."""


def parse_file(tables: Mapping[str, Any]) -> ConfigFile:
    """The file's tables as a `ConfigFile`, every target's table checked by its kind;
    `ConfigError` naming each key that is wrong."""
    problems: list[str] = []
    try:
        written = _FileTables.model_validate(tables)
    except ValidationError as error:
        raise ConfigError("\n".join(_problems(error))) from None
    targets = {}
    for name, table in written.targets.items():
        try:
            targets[name] = target_table(name, table)
        except ConfigError as error:
            problems.append(str(error))
    if problems:
        raise ConfigError("\n".join(problems))
    return ConfigFile(written.accounts, targets, written.notifications)


def target_table(name: str, table: Mapping[str, Any]) -> BillyTable | DineroTable:
    """A target's table checked as its kind's (`kind`, else the table's name)."""
    kind = table.get("kind", name)
    model: type[BillyTable] | type[DineroTable]
    if kind == "dinero":
        model = DineroTable
    elif kind == "billy":
        model = BillyTable
    else:
        raise ConfigError(f"targets.{name}.kind: must be 'billy' or 'dinero' (got {kind!r})")
    try:
        return model.model_validate(table)
    except ValidationError as error:
        raise ConfigError("\n".join(_problems(error, ("targets", name)))) from None


#: Pydantic's refusals in the file's words.
_SAID = {
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "string_too_short": "must not be empty",
    "bool_type": "must be true or false",
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "string_type": "must be a string",
}


#: Keys holding a number of the target's, and what a wrong value is told.
_NUMBERS = {
    "organization_id": "must be the organization's number",
    "rounding_account": "must be an account number",
    "rounding_product": "must be a product number",
    "url": "must be an http:// or https:// address",
    "token_url": "must be an http:// or https:// address",
    "webhook_url": "must be an http:// or https:// address",
}
#: Tables mapping our names to the target's numbers.
_MAPPINGS = {"products", "accounts", "vat_accounts"}


def _problems(error: ValidationError, prefix: tuple[str, ...] = ()) -> list[str]:
    """Each of pydantic's errors as `path: problem`, in the file's own words."""
    found = []
    for detail in error.errors(include_url=False):
        loc = [str(part) for part in (*prefix, *detail["loc"]) if part != "[key]"]
        kind, message = detail["type"], str(detail["msg"])
        message = message.removeprefix("Value error, ")
        key, _, said = message.partition(": ")
        if kind == "value_error" and not detail["loc"] and key.isidentifier():
            loc, message = [*loc, key], said  # a table's rule about one of its keys
        where = ".".join(loc)
        if kind == "extra_forbidden":
            message = "unknown key"
        elif kind == "missing":
            message = "missing (it has no default)"
        elif loc and loc[-1] in _NUMBERS:
            message = _NUMBERS[loc[-1]]
        elif len(loc) > 1 and loc[-2] in _MAPPINGS:
            message = "must be a name or a number"
        elif kind in _SAID:
            message = _SAID[kind]
        elif kind == "value_error":
            pass
        else:
            message = message.replace("Input should be", "must be")
        told = "(got " in message  # a rule of ours that names the value itself
        shown = detail["loc"] and "input" in detail and not told
        if shown and kind not in {"extra_forbidden", "missing"}:
            message = f"{message} (got {_shown(detail['input'], where)})"
        found.append(f"{where}: {message}" if where else message)
    return found


def _shown(value: Any, where: str) -> str:
    """A refused value as the message shows it: never a credential's."""
    if any(word in where for word in ("token", "secret", "password")):
        return "a value that is not shown"
    if isinstance(value, Mapping):
        return "a table"
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def path_message(path: Path, error: ConfigError) -> str:
    """The error as a `ConfigurationError` says it: the file, then each problem."""
    return "\n".join(f"{path}: {line}" for line in str(error).splitlines())
