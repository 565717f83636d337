"""The service's settings, read from `SUBLEDGER_*` environment variables (or a `.env` file),
and its configuration file (`subledger.toml`: the chart of accounts, the sync targets, the
notifications)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from subledger.adapters.store import StoreOptions
from subledger.api.config import ConfigError, ConfigFile, parse_file, path_message
from subledger.domain.ledger import DEFAULT_AGGREGATE_CACHE_SIZE


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUBLEDGER_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///subledger.db",
        description="postgresql://user:pass@host:port/db[?schema=s], sqlite:///path or memory://",
    )
    api_keys: SecretStr = Field(
        default=SecretStr(""),
        description="Comma-separated `name:secret:scope+scope` (scopes: events:write, read, admin)",
    )
    key_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="How long a process remembers a lookup of a key made with `subledger keys`"
        " (a revoked key keeps working in a process at most this long)",
    )
    lock_timeout_seconds: int = Field(default=5, ge=1, le=600)
    connect_timeout_seconds: int = Field(default=5, ge=1, le=600)
    pool_size: int = Field(default=5, ge=1, le=100)
    pool_max_overflow: int = Field(default=10, ge=0, le=100)
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    recognition: Literal["daily", "monthly"] = Field(
        default="daily",
        description="How lines with a service period and no recognition of their own are"
        " recognized; changing it rebuilds the revenue projection",
    )
    projection_page_size: int = Field(
        default=2000, ge=1, le=100_000, description="Events a projection folds per transaction"
    )
    projection_checkpoint_every: int = Field(
        default=20_000,
        ge=0,
        le=10_000_000,
        description="Positions between two checkpoints of the projections (0: none); an"
        " answer as of a past point folds on from the last checkpoint before it",
    )
    projection_partitions: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Partitions by customer each projection is folded in, each with a position"
        " of its own, so that as many processes can fold one projection; every process on a"
        " store must be given the same number (serve and project refuse another), and"
        " `subledger projections rebuild` changes it",
    )
    aggregate_cache_size: int = Field(
        default=DEFAULT_AGGREGATE_CACHE_SIZE,
        ge=0,
        le=10_000_000,
        description="Aggregates (customers, subscriptions, invoices) a process keeps in memory"
        " between batches, about 2 KB each: a batch whose aggregates are held reads none of"
        " them; 0 keeps none",
    )
    read_wait_seconds: float = Field(
        default=5.0, gt=0, le=120, description="How long a read waits for the projections"
    )
    log_level: str = Field(default="info", pattern="^(debug|info|warning|error)$")
    config: Path = Field(
        default=Path("subledger.toml"),
        description="The configuration file (the chart of accounts); where the default is"
        " missing, the defaults apply",
    )

    sync_workers: int = Field(
        default=2, ge=1, le=32, description="Threads delivering outbox messages per process"
    )
    sync_lease_seconds: float = Field(
        default=120,
        gt=0,
        description="How long a claimed message is a worker's before another may take it over",
    )
    sync_backoff_seconds: float = Field(
        default=1.0, gt=0, description="The first retry's delay; each further retry doubles it"
    )
    sync_backoff_cap_seconds: float = Field(
        default=300.0, gt=0, description="The longest delay between two retries"
    )
    sync_max_unexpected_errors: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Unexpected errors in a row (a bug, not a target's answer) after which a"
        " message is failed and notified instead of retried",
    )

    def store_options(self) -> StoreOptions:
        return StoreOptions(
            lock_timeout_seconds=self.lock_timeout_seconds,
            connect_timeout_seconds=self.connect_timeout_seconds,
            pool_size=self.pool_size,
            pool_max_overflow=self.pool_max_overflow,
        )


class ConfigurationError(Exception):
    """A configuration file that cannot be used, with where and what is wrong."""


@dataclass(frozen=True)
class Configuration:
    """The configuration file's tables, as read once at start-up, and parsed (`api.config`:
    every key known, of its type and within its bounds)."""

    path: Path
    tables: dict[str, Any] = field(default_factory=dict)
    file: ConfigFile = field(default_factory=ConfigFile)

    @classmethod
    def read(cls, settings: Settings) -> Configuration:
        """The file `settings.config` names; no tables where the default file is missing, a
        `ConfigurationError` where a file named by SUBLEDGER_CONFIG is, or cannot be read."""
        path = settings.config
        if not path.exists():
            if "config" in settings.model_fields_set:
                raise ConfigurationError(f"{path}: no such file (SUBLEDGER_CONFIG)")
            return cls(path)
        try:
            tables = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise ConfigurationError(f"{path}: {error}") from None
        return cls.parse(path, tables)

    @classmethod
    def parse(cls, path: Path, tables: dict[str, Any]) -> Configuration:
        """The tables of the file at `path`, parsed (`api.config.parse_file`); a
        `ConfigurationError` naming each key that is wrong, with the file."""
        try:
            return cls(path, tables, parse_file(tables))
        except ConfigError as error:
            raise ConfigurationError(path_message(path, error)) from None
