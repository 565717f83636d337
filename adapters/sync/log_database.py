"""The database the delivery log is written to, PostgreSQL or SQLite, behind one SQL text:
`%(name)s` parameters, rows as dicts, instants as timezone-aware datetimes on PostgreSQL
(`timestamptz`) and as fixed-width UTC text on SQLite. The backend bundle
(`adapters.backends`) picks which one a ledger's delivery log gets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from psycopg.sql import SQL, Identifier

from subledger.adapters import migrations

_INSTANT_COLUMNS: Final = (
    "next_attempt_at",
    "claimed_until",
    "created_at",
    "updated_at",
    "sent_at",
    "started_at",
    "pending_since",
    "oldest_pending_at",
)


class DeliveryDatabase(Protocol):
    """The database the delivery log is written to: one SQL text for both kinds (`%(name)s`
    parameters, rows as dicts). The backend bundle (`adapters.backends`) picks the kind."""

    postgres: bool

    def transaction(self, durable: bool = True) -> AbstractContextManager[_Statements]:
        """A transaction; one that is not `durable` commits without waiting for PostgreSQL's
        write-ahead log to reach the disk (it may be lost in a crash, never half-applied)."""
        ...

    def migrate(self) -> None:
        """Apply the schema migrations the database lacks (`adapters.migrations`)."""
        ...


class PostgresDeliveryDatabase:
    postgres = True

    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore

    def migrate(self) -> None:
        migrations.apply(self.datastore)

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[_Statements]:
        with self.datastore.transaction(commit=True) as cursor:
            path = SQL("SET LOCAL search_path TO {0}").format(Identifier(self.datastore.schema))
            cursor.execute(path)
            if not durable:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
            yield _Statements(cursor, postgres=True)


class SQLiteDeliveryDatabase:
    postgres = False

    def __init__(self, datastore: SQLiteDatastore) -> None:
        self.datastore = datastore

    def migrate(self) -> None:
        migrations.apply(self.datastore)

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[_Statements]:
        with self.datastore.transaction(commit=True) as cursor:
            yield _Statements(cursor.sqlite_cursor, postgres=False)


class _Statements:
    def __init__(self, cursor: Any, postgres: bool) -> None:
        self.cursor, self.postgres = cursor, postgres

    def run(self, sql: str, **parameters: Any) -> list[dict[str, Any]]:
        if self.postgres:
            self.cursor.execute(sql, parameters)
        else:
            sql = re.sub(r"%\((\w+)\)s", r":\1", sql).replace(" FOR UPDATE SKIP LOCKED", "")
            sql = sql.replace(" FOR UPDATE", "")
            self.cursor.execute(sql, {k: _to_sqlite(v) for k, v in parameters.items()})
        if self.cursor.description is None:
            return []
        names = [column[0] for column in self.cursor.description]
        return [_from_row(names, row) for row in self.cursor.fetchall()]


def _to_sqlite(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def _from_row(names: list[str], row: Any) -> dict[str, Any]:
    values = (
        {name: row[name] for name in names}
        if hasattr(row, "keys")
        else dict(zip(names, row, strict=True))
    )
    for name in _INSTANT_COLUMNS:
        value = values.get(name)
        if isinstance(value, str):
            values[name] = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return values
