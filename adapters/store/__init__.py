"""Choosing the event store from `SUBLEDGER_DATABASE_URL`.

- `postgresql://user:password@host:port/dbname[?schema=name]`: PostgreSQL, pooled, tables created
  on start, a lock timeout on every write;
- `sqlite:///relative/path.db` or `sqlite:////absolute/path.db`: an SQLite file (the default is
  `sqlite:///subledger.db`);
- `memory://`: process memory, gone when the process ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from eventsourcing.utils import get_topic

from subledger.adapters.store.mapper import PlainJSONMapper
from subledger.adapters.store.memory import MemoryStoreFactory
from subledger.adapters.store.postgres import PostgresStoreFactory
from subledger.adapters.store.sqlite import SQLiteStoreFactory


class StoreURLError(ValueError):
    """`SUBLEDGER_DATABASE_URL` names no store this service can use."""


@dataclass(frozen=True)
class StoreOptions:
    """Tuning of the database stores; the defaults suit a small deployment."""

    lock_timeout_seconds: int = 5
    connect_timeout_seconds: int = 5
    pool_size: int = 5
    pool_max_overflow: int = 10


def store_kind(url: str) -> str:
    """`postgresql`, `sqlite` or `memory`."""
    scheme = urlsplit(url).scheme
    if scheme in ("postgresql", "postgres"):
        return "postgresql"
    if scheme in ("sqlite", "memory"):
        return scheme
    raise StoreURLError(
        f"unsupported database URL scheme {scheme!r}: use postgresql://, sqlite:/// or memory://"
    )


def store_env(url: str, options: StoreOptions | None = None) -> dict[str, str]:
    """The `eventsourcing` environment for the ledger application stored at `url`."""
    options = options or StoreOptions()
    env = {"MAPPER_TOPIC": get_topic(PlainJSONMapper)}
    kind = store_kind(url)
    if kind == "memory":
        env["PERSISTENCE_MODULE"] = get_topic(MemoryStoreFactory)
        return env
    if kind == "sqlite":
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise StoreURLError("an SQLite URL names a file: sqlite:///subledger.db")
        env.update(
            PERSISTENCE_MODULE=get_topic(SQLiteStoreFactory),
            SQLITE_DBNAME=path,
            SQLITE_LOCK_TIMEOUT=str(options.lock_timeout_seconds),
        )
        return env
    parts = urlsplit(url)
    dbname = unquote(parts.path.lstrip("/"))
    if not parts.hostname or not dbname:
        raise StoreURLError("a PostgreSQL URL names a host and a database: postgresql://host/db")
    query = parse_qs(parts.query)
    env.update(
        PERSISTENCE_MODULE=get_topic(PostgresStoreFactory),
        POSTGRES_HOST=parts.hostname,
        POSTGRES_PORT=str(parts.port or 5432),
        POSTGRES_DBNAME=dbname,
        POSTGRES_USER=unquote(parts.username or "postgres"),
        POSTGRES_PASSWORD=unquote(parts.password or ""),
        POSTGRES_SCHEMA=query.get("schema", ["public"])[0],
        POSTGRES_LOCK_TIMEOUT=str(options.lock_timeout_seconds),
        POSTGRES_CONNECT_TIMEOUT=str(options.connect_timeout_seconds),
        POSTGRES_POOL_SIZE=str(options.pool_size),
        POSTGRES_MAX_OVERFLOW=str(options.pool_max_overflow),
    )
    return env
