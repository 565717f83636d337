"""API keys made with `subledger keys create`, kept in the service's own database
(docs/specification.md §6).

A key is stored as its id (the part of the secret after `sk_`, so that a presented secret is
looked up by it), a name, its scopes, a SHA-256 of the whole secret, when it was made and when
it was revoked: never the secret. Revoked keys stay, so that `subledger keys list` still shows
them; a name belongs to one unrevoked key at a time (a partial unique index).

The table, `subledger_api_keys`, is made by a migration (`adapters.migrations`) beside the log:
on PostgreSQL in the log's schema, read through its connection pool; in the SQLite file; and,
on a memory store, it is a dictionary that lives as long as the ledger's recorder
(`adapters.backends` picks the store for a ledger).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from psycopg.sql import SQL, Identifier

from subledger.adapters import migrations

TABLE: Final = "subledger_api_keys"
_SQLITE_INSTANT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"

# One text per statement for both databases: `{table}` is the table (schema-qualified on
# PostgreSQL), `%s` a parameter (`?` on SQLite).
_ADD: Final = (
    "INSERT INTO {table} (key_id, name, secret_sha256, scopes, created_at, revoked_at)"
    " VALUES (%s, %s, %s, %s, %s, NULL) ON CONFLICT DO NOTHING"
    " RETURNING key_id, name, secret_sha256, scopes, created_at, revoked_at"
)
_FIND: Final = (
    "SELECT key_id, name, secret_sha256, scopes, created_at, revoked_at FROM {table}"
    " WHERE key_id = %s"
)
_ALL: Final = (
    "SELECT key_id, name, secret_sha256, scopes, created_at, revoked_at FROM {table}"
    " ORDER BY created_at, name"
)
_REVOKE: Final = (
    "UPDATE {table} SET revoked_at = %s WHERE name = %s AND revoked_at IS NULL"
    " RETURNING key_id, name, secret_sha256, scopes, created_at, revoked_at"
)


@dataclass(frozen=True)
class StoredApiKey:
    key_id: str
    name: str
    secret_sha256: str
    """The hexadecimal SHA-256 of the whole secret."""
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None = None


class KeyNameTakenError(Exception):
    """An unrevoked key already has this name."""


class ApiKeyStore(Protocol):
    def create_table(self) -> None: ...

    def add(self, key: StoredApiKey) -> None:
        """Keep a new key; `KeyNameTakenError` if an unrevoked key has its name."""
        ...

    def find(self, key_id: str) -> StoredApiKey | None: ...

    def all(self) -> list[StoredApiKey]:
        """Every key, revoked or not, oldest first."""
        ...

    def revoke(self, name: str, at: datetime) -> StoredApiKey | None:
        """Revoke the unrevoked key named `name`: the key as revoked, or None if there is none."""
        ...


def _key(values: Sequence[Any]) -> StoredApiKey:
    key_id, name, digest, scopes, created_at, revoked_at = values
    return StoredApiKey(
        key_id=key_id,
        name=name,
        secret_sha256=digest,
        scopes=frozenset(scopes.split()),
        created_at=_instant(created_at),
        revoked_at=_instant(revoked_at) if revoked_at is not None else None,
    )


def _instant(value: datetime | str) -> datetime:
    if isinstance(value, str):
        return datetime.strptime(value, _SQLITE_INSTANT).replace(tzinfo=UTC)
    return value


def _values(row: Any) -> Sequence[Any]:
    return tuple(row.values()) if isinstance(row, dict) else tuple(row)


class _SQLApiKeyStore:
    """The statements above, run the same way on either database."""

    def _run(self, statement: str, parameters: Sequence[Any] = ()) -> list[StoredApiKey]:
        raise NotImplementedError

    def add(self, key: StoredApiKey) -> None:
        scopes = " ".join(sorted(key.scopes))
        added = self._run(_ADD, (key.key_id, key.name, key.secret_sha256, scopes, key.created_at))
        if not added:
            raise KeyNameTakenError(key.name)

    def find(self, key_id: str) -> StoredApiKey | None:
        found = self._run(_FIND, (key_id,))
        return found[0] if found else None

    def all(self) -> list[StoredApiKey]:
        return self._run(_ALL)

    def revoke(self, name: str, at: datetime) -> StoredApiKey | None:
        revoked = self._run(_REVOKE, (at, name))
        return revoked[0] if revoked else None


class PostgresApiKeyStore(_SQLApiKeyStore):
    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore
        self.table = SQL("{0}.{1}").format(Identifier(datastore.schema), Identifier(TABLE))

    def create_table(self) -> None:
        """The table is a migration's (`adapters.migrations`)."""
        migrations.apply(self.datastore)

    def _run(self, statement: str, parameters: Sequence[Any] = ()) -> list[StoredApiKey]:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(SQL(statement).format(table=self.table), parameters)
            return [_key(_values(row)) for row in cursor.fetchall()]


class SQLiteApiKeyStore(_SQLApiKeyStore):
    def __init__(self, datastore: SQLiteDatastore) -> None:
        self.datastore = datastore

    def create_table(self) -> None:
        """The table is a migration's (`adapters.migrations`)."""
        migrations.apply(self.datastore)

    def _run(self, statement: str, parameters: Sequence[Any] = ()) -> list[StoredApiKey]:
        bound = [
            value.astimezone(UTC).strftime(_SQLITE_INSTANT)
            if isinstance(value, datetime)
            else value
            for value in parameters
        ]
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(statement.replace("%s", "?").format(table=TABLE), bound)
            return [_key(_values(row)) for row in cursor.fetchall()]


class MemoryApiKeyStore:
    """Keys of a memory store: gone with the process, like its log."""

    def __init__(self) -> None:
        self._keys: dict[str, StoredApiKey] = {}
        self._lock = threading.Lock()

    def create_table(self) -> None:
        pass

    def add(self, key: StoredApiKey) -> None:
        with self._lock:
            if key.key_id in self._keys or self._active(key.name) is not None:
                raise KeyNameTakenError(key.name)
            self._keys[key.key_id] = key

    def find(self, key_id: str) -> StoredApiKey | None:
        return self._keys.get(key_id)

    def all(self) -> list[StoredApiKey]:
        return sorted(self._keys.values(), key=lambda key: (key.created_at, key.name))

    def revoke(self, name: str, at: datetime) -> StoredApiKey | None:
        with self._lock:
            active = self._active(name)
            if active is None:
                return None
            revoked = self._keys[active.key_id] = replace(active, revoked_at=at)
            return revoked

    def _active(self, name: str) -> StoredApiKey | None:
        found: Iterable[StoredApiKey] = self._keys.values()
        return next((k for k in found if k.name == name and k.revoked_at is None), None)
