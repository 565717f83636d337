"""The three backends the service stands on (PostgreSQL, SQLite, memory), each as one bundle of
what must match the ledger's event store: where the projections keep their rows, where the API
keys are kept, the database the delivery log is written to, and how a follower of the log
learns that it grew.

The composition root picks a bundle once, from the database URL (`backend_for`), and takes
every piece from it. Code handed a ledger built elsewhere (tests, benchmarks) asks `backend_of`,
which knows each backend by the class of the ledger's event store.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Final, cast

from eventsourcing.postgres import PostgresDatastore

from subledger.adapters import migrations
from subledger.adapters.api_keys import (
    ApiKeyStore,
    MemoryApiKeyStore,
    PostgresApiKeyStore,
    SQLiteApiKeyStore,
)
from subledger.adapters.rows.postgres import PostgresRowStore
from subledger.adapters.rows.sqlite import SQLiteRowStore
from subledger.adapters.store import store_kind
from subledger.adapters.store.memory import MemoryLedgerRecorder
from subledger.adapters.store.postgres import PostgresLedgerRecorder
from subledger.adapters.store.sqlite import SQLiteLedgerRecorder
from subledger.adapters.sync.log_database import (
    DeliveryDatabase,
    PostgresDeliveryDatabase,
    SQLiteDeliveryDatabase,
)
from subledger.domain.ledger import Ledger
from subledger.projections.runner import ProjectionStore


@dataclass(frozen=True)
class Notifications:
    """How a PostgreSQL log tells its followers that it grew: every append notifies `channel`,
    which a connection of `datastore` can LISTEN on (and hold the locks of the projections a
    process folds)."""

    datastore: PostgresDatastore
    channel: str


class Backend:
    """One kind of store, and the pieces that go with it. Each method takes a ledger on this
    kind of store (the one the composition root opened on the same URL)."""

    #: `postgresql`, `sqlite` or `memory`, as `/health` and `subledger serve` name it.
    kind: str = ""
    #: Whether the store outlives the process (so another process, a `subledger project`
    #: worker or a command, can open it too).
    shared: bool = True
    #: Whether a server folds in a process of its own beside it (the appends and the folds
    #: then run on two cores, not in turns for one interpreter): where both write at once.
    folds_beside: bool = False

    def migrate(self, ledger: Ledger) -> list[str]:
        """Apply the schema migrations the ledger's database lacks (`adapters.migrations`);
        their ids."""
        raise NotImplementedError

    def migrations(self, ledger: Ledger) -> list[migrations.Migration]:
        """Every schema migration, and whether (and when) the ledger's database has it."""
        raise NotImplementedError

    def row_store(self, ledger: Ledger) -> ProjectionStore:
        """Where the projections keep their rows and positions, beside the log."""
        raise NotImplementedError

    def key_store(self, ledger: Ledger) -> ApiKeyStore:
        """Where the keys of `subledger keys create` are kept, their table created if missing."""
        raise NotImplementedError

    def delivery_database(self, ledger: Ledger) -> DeliveryDatabase | None:
        """The database the delivery log is written to; None where there is none to write to
        (a memory store cannot sync)."""
        raise NotImplementedError

    def notifications(self, ledger: Ledger) -> Notifications | None:
        """Where the log announces appends to other processes; None where it does not (appends
        made in this process wake a follower at once, others are polled for), and where one
        process folds without taking turns."""
        raise NotImplementedError


class PostgresBackend(Backend):
    kind = "postgresql"
    folds_beside = True

    def migrate(self, ledger: Ledger) -> list[str]:
        return migrations.apply(_postgres(ledger).datastore)

    def migrations(self, ledger: Ledger) -> list[migrations.Migration]:
        return migrations.status(_postgres(ledger).datastore)

    def row_store(self, ledger: Ledger) -> ProjectionStore:
        return PostgresRowStore(_postgres(ledger).datastore)

    def key_store(self, ledger: Ledger) -> ApiKeyStore:
        store = PostgresApiKeyStore(_postgres(ledger).datastore)
        store.create_table()
        return store

    def delivery_database(self, ledger: Ledger) -> PostgresDeliveryDatabase:
        return PostgresDeliveryDatabase(_postgres(ledger).datastore)

    def notifications(self, ledger: Ledger) -> Notifications:
        recorder = _postgres(ledger)
        return Notifications(recorder.datastore, recorder.channel_name)


class SQLiteBackend(Backend):
    kind = "sqlite"

    def migrate(self, ledger: Ledger) -> list[str]:
        return migrations.apply(_sqlite(ledger).datastore)

    def migrations(self, ledger: Ledger) -> list[migrations.Migration]:
        return migrations.status(_sqlite(ledger).datastore)

    def row_store(self, ledger: Ledger) -> ProjectionStore:
        return SQLiteRowStore(_sqlite(ledger).datastore)

    def key_store(self, ledger: Ledger) -> ApiKeyStore:
        store = SQLiteApiKeyStore(_sqlite(ledger).datastore)
        store.create_table()
        return store

    def delivery_database(self, ledger: Ledger) -> SQLiteDeliveryDatabase:
        return SQLiteDeliveryDatabase(_sqlite(ledger).datastore)

    def notifications(self, ledger: Ledger) -> None:
        return None


class MemoryBackend(Backend):
    """Process memory: the rows live on the recorder, the keys as long as it does."""

    kind = "memory"
    shared = False

    def __init__(self) -> None:
        self._keys: weakref.WeakKeyDictionary[MemoryLedgerRecorder, MemoryApiKeyStore] = (
            weakref.WeakKeyDictionary()
        )

    def migrate(self, ledger: Ledger) -> list[str]:
        return []  # nothing outlives the process

    def migrations(self, ledger: Ledger) -> list[migrations.Migration]:
        return []

    def row_store(self, ledger: Ledger) -> ProjectionStore:
        return _memory(ledger).row_store

    def key_store(self, ledger: Ledger) -> ApiKeyStore:
        return self._keys.setdefault(_memory(ledger), MemoryApiKeyStore())

    def delivery_database(self, ledger: Ledger) -> None:
        return None

    def notifications(self, ledger: Ledger) -> None:
        return None


# The recorder under a ledger of a backend, as that backend's own class: the composition root
# opened the ledger on the URL it chose the backend by, so the two match.


def _postgres(ledger: Ledger) -> PostgresLedgerRecorder:
    return cast(PostgresLedgerRecorder, ledger.recorder)


def _sqlite(ledger: Ledger) -> SQLiteLedgerRecorder:
    return cast(SQLiteLedgerRecorder, ledger.recorder)


def _memory(ledger: Ledger) -> MemoryLedgerRecorder:
    return cast(MemoryLedgerRecorder, ledger.recorder)


POSTGRESQL: Final = PostgresBackend()
SQLITE: Final = SQLiteBackend()
MEMORY: Final = MemoryBackend()
BACKENDS: Final[dict[str, Backend]] = {b.kind: b for b in (POSTGRESQL, SQLITE, MEMORY)}
_BY_RECORDER: Final[dict[type, Backend]] = {
    PostgresLedgerRecorder: POSTGRESQL,
    SQLiteLedgerRecorder: SQLITE,
    MemoryLedgerRecorder: MEMORY,
}


def backend_for(url: str) -> Backend:
    """The backend of a database URL (`StoreURLError` for one that names none)."""
    return BACKENDS[store_kind(url)]


def backend_of(ledger: Ledger) -> Backend:
    """The backend of a ledger opened elsewhere, known by its event store's class."""
    kind = type(ledger.recorder)
    found = next((_BY_RECORDER[c] for c in kind.__mro__ if c in _BY_RECORDER), None)
    if found is None:
        raise TypeError(f"no backend for {kind.__name__}")
    return found


def row_store_for(ledger: Ledger) -> ProjectionStore:
    """The row store beside a ledger's log (on PostgreSQL, its pool and schema)."""
    return backend_of(ledger).row_store(ledger)


def api_key_store_for(ledger: Ledger) -> ApiKeyStore:
    """The key store in a ledger's own database, its table created if missing."""
    return backend_of(ledger).key_store(ledger)
