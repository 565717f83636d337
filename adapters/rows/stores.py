"""Choosing the row store that matches a ledger's event store.

`row_store_for(ledger)` picks the store that matches the ledger's event store, on the same
database (and, on PostgreSQL, the same connection pool and schema).
"""

from __future__ import annotations

from subledger.adapters.rows.postgres import PostgresRowStore
from subledger.adapters.rows.sqlite import SQLiteRowStore
from subledger.adapters.store.memory import MemoryLedgerRecorder
from subledger.adapters.store.postgres import PostgresLedgerRecorder
from subledger.adapters.store.sqlite import SQLiteLedgerRecorder
from subledger.domain.ledger import Ledger
from subledger.projections.runner import ProjectionStore


def row_store_for(ledger: Ledger) -> ProjectionStore:
    recorder = ledger.recorder
    if isinstance(recorder, PostgresLedgerRecorder):
        return PostgresRowStore(recorder.datastore)
    if isinstance(recorder, SQLiteLedgerRecorder):
        return SQLiteRowStore(recorder.datastore)
    if isinstance(recorder, MemoryLedgerRecorder):
        return recorder.row_store
    raise TypeError(f"no row store for {type(recorder).__name__}")
