"""Choosing the row store that matches a ledger's event store.

`row_store_for(ledger)` picks the store that matches the ledger's event store, on the same
database (and, on PostgreSQL, the same connection pool and schema).
"""

from __future__ import annotations

from adapters.rows.postgres import PostgresRowStore
from adapters.rows.sqlite import SQLiteRowStore
from adapters.store.memory import MemoryLedgerRecorder
from adapters.store.postgres import PostgresLedgerRecorder
from adapters.store.sqlite import SQLiteLedgerRecorder
from domain.ledger import Ledger
from projections.runner import ProjectionStore


def row_store_for(ledger: Ledger) -> ProjectionStore:
    recorder = ledger.recorder
    if isinstance(recorder, PostgresLedgerRecorder):
        return PostgresRowStore(recorder.datastore)
    if isinstance(recorder, SQLiteLedgerRecorder):
        return SQLiteRowStore(recorder.datastore)
    if isinstance(recorder, MemoryLedgerRecorder):
        return recorder.row_store
    raise TypeError(f"no row store for {type(recorder).__name__}")
