"""Versioned migrations of the tables the service keeps beside its log, with yoyo-migrations.

The tables whose layout is ours and whose rows cannot be made again from the log (the delivery
log's `sync_*`, the API keys, the projections' positions) change only through the numbered
migrations in `versions/`, each applied once per database and recorded in yoyo's own table
(`_yoyo_migration`, in the log's schema on PostgreSQL). A migration is never edited once
released: a change is a new one. The first, `0001`, is the layout of release 0.1, written so
that it also adopts a database that release (or an earlier one) made without migrations.

Left out on purpose: the log's own tables (the event store's, made with the `eventsourcing`
library's recorder and versioned with it), and each projection's tables, which are made from
its definition and, when the definition changes, dropped, made again and refolded from the log
(`adapters.rows`): their rows are derived, so rebuilding is their migration.

`apply` runs what a database lacks, under a lock that dies with its process (an advisory lock
on PostgreSQL, `flock` on the SQLite file), so that processes starting together, or
one killed while migrating, neither race nor leave the next start waiting. Why yoyo: plain
SQL steps (or a function of the connection, where PostgreSQL and SQLite differ), no ORM, both
databases and psycopg 3 supported, a record of what ran and when; Alembic would bring
SQLAlchemy in for nothing else (docs/operating.md, "Upgrading").
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote, urlencode

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from psycopg import sql
from yoyo import read_migrations  # type: ignore[import-untyped]
from yoyo.backends.core.postgresql import (  # type: ignore[import-untyped]
    PostgresqlPsycopgBackend,
)
from yoyo.backends.core.sqlite3 import SQLiteBackend  # type: ignore[import-untyped]
from yoyo.connections import parse_uri  # type: ignore[import-untyped]

VERSIONS = Path(__file__).parent / "versions"
#: yoyo's record of the migrations applied, beside the tables it migrates.
MIGRATION_TABLE = "_yoyo_migration"
#: How long a start waits for another process's migrations, in seconds.
LOCK_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class Migration:
    """A migration of `versions/` and whether the database has it (when, if so)."""

    id: str
    applied: bool
    applied_at: str | None = None


class _Postgres(PostgresqlPsycopgBackend):  # type: ignore[misc]
    """yoyo's psycopg 3 backend, setting the log's schema as a quoted identifier and locking
    with a session advisory lock (released by PostgreSQL if the process dies)."""

    _is_locked: bool

    def init_connection(self, connection: Any) -> None:
        if self.schema:
            path = sql.SQL("SET search_path TO {0}").format(sql.Identifier(self.schema))
            connection.execute(path)

    @contextlib.contextmanager
    def lock(self, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
        if self._is_locked:
            yield
            return
        self.execute(f"SET lock_timeout = '{int(timeout * 1000)}ms'")
        self.execute("SELECT pg_advisory_lock(hashtext('subledger migrations'))")
        self._is_locked = True
        try:
            yield
        finally:
            self._is_locked = False
            self.execute("SELECT pg_advisory_unlock(hashtext('subledger migrations'))")


class _SQLite(SQLiteBackend):  # type: ignore[misc]
    """yoyo's SQLite backend on a plain connection to the file (waiting for the store's
    writers), locking the file with `flock` (which SQLite's own locks do not touch, and
    which is released if the process dies)."""

    _is_locked: bool

    def connect(self, dburi: Any) -> sqlite3.Connection:
        return sqlite3.connect(dburi.database, timeout=LOCK_TIMEOUT_SECONDS, isolation_level=None)

    @contextlib.contextmanager
    def lock(self, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
        if self._is_locked:
            yield
            return
        with open(self.uri.database, "rb") as held:  # flock: apart from SQLite's own locks
            fcntl.flock(held, fcntl.LOCK_EX)
            self._is_locked = True
            try:
                yield
            finally:
                self._is_locked = False
                fcntl.flock(held, fcntl.LOCK_UN)


class _Quick:
    """Both databases have transactional DDL, and the lock is ours: yoyo need not try a
    table to find out, nor make its lock table (`init_database` did both on every start)."""

    def init_database(self) -> None:
        self.has_transactional_ddl = True


class _QuickPostgres(_Quick, _Postgres):
    pass


class _QuickSQLite(_Quick, _SQLite):
    pass


def _backend(datastore: PostgresDatastore | SQLiteDatastore) -> Any:
    """A yoyo backend on the database of `datastore` (its own connection)."""
    if isinstance(datastore, PostgresDatastore):
        given = _connection_arguments(datastore)
        arguments = {
            key: str(given[key]) for key in ("host", "port", "user", "password") if given.get(key)
        }
        arguments["schema"] = datastore.schema
        uri = f"postgresql+psycopg:///{quote(str(given['dbname']), safe='')}"
        backend = _QuickPostgres(parse_uri(f"{uri}?{urlencode(arguments)}"), MIGRATION_TABLE)
    else:
        backend = _QuickSQLite(parse_uri(f"sqlite:///{datastore.pool.db_name}"), MIGRATION_TABLE)
    backend.init_database()
    return backend


def _connection_arguments(datastore: PostgresDatastore) -> dict[str, Any]:
    """What the datastore's pool connects with (database, host, port, user, password)."""
    return dict(cast(dict[str, Any], datastore.pool.kwargs))


def _where(datastore: PostgresDatastore | SQLiteDatastore) -> tuple[str, ...]:
    """What tells databases apart, for remembering which this process has migrated."""
    if isinstance(datastore, PostgresDatastore):
        given = _connection_arguments(datastore)
        server = (str(given.get(key)) for key in ("host", "port", "dbname"))
        return ("postgresql", *server, datastore.schema)
    return ("sqlite", str(Path(datastore.pool.db_name).resolve()))


_migrated: set[tuple[str, ...]] = set()
_migrating = threading.Lock()


def apply(datastore: PostgresDatastore | SQLiteDatastore) -> list[str]:
    """Apply the migrations the database of `datastore` lacks, in order; their ids. Done
    once per database and process: later calls return at once."""
    where = _where(datastore)
    if where in _migrated:
        return []
    with _migrating:
        if where in _migrated:
            return []
        backend = _backend(datastore)
        try:
            migrations = read_migrations(str(VERSIONS))
            # Under the lock from the first question on: yoyo makes its own tables on the
            # first, and two processes starting on a new database must not both make them.
            with backend.lock():
                missing = backend.to_apply(migrations)
                backend.apply_migrations(missing)
                applied = [migration.id for migration in missing]
        finally:
            backend.connection.close()
        _migrated.add(where)
        return applied


def status(datastore: PostgresDatastore | SQLiteDatastore) -> list[Migration]:
    """Every migration of `versions/`, in order, and whether the database has it."""
    backend = _backend(datastore)
    try:
        migrations = read_migrations(str(VERSIONS))
        with backend.lock():
            backend.ensure_internal_schema_updated()
        when = dict(
            backend.execute(
                f"SELECT migration_id, applied_at_utc FROM {MIGRATION_TABLE}"  # noqa: S608
            ).fetchall()
        )
        return [Migration(m.id, m.id in when, _utc(when.get(m.id))) for m in migrations]
    finally:
        backend.connection.close()


def _utc(moment: Any) -> str | None:
    """yoyo's record of when a migration ran (UTC, without a zone) as an ISO 8601 instant
    (`2026-12-07T02:49:43Z`)."""
    if moment is None:
        return None
    return datetime.fromisoformat(str(moment)).strftime("%Y-%m-%dT%H:%M:%SZ")


def forget(datastore: PostgresDatastore | SQLiteDatastore) -> None:
    """Forget that this process migrated the database of `datastore` (for tests that drop
    and make again a database of the same name)."""
    _migrated.discard(_where(datastore))
