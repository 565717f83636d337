"""Where projections keep their rows and positions: PostgreSQL, SQLite or memory, beside the log
(`adapters.backends.row_store_for` picks the one that matches a ledger's event store)."""
