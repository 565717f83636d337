"""The delivery log's tables (`adapters.sync.log`), the same on PostgreSQL and SQLite but for
how an instant is stored: `timestamptz` on PostgreSQL, fixed-width UTC text on SQLite."""

from __future__ import annotations

import sqlite3
from typing import Any, Final, Protocol

_TABLES: Final = (
    """CREATE TABLE IF NOT EXISTS sync_messages (
        id text PRIMARY KEY,
        target text NOT NULL,
        lane text NOT NULL,
        seq bigint NOT NULL,
        kind text NOT NULL,
        source text NOT NULL,
        dated text NOT NULL,
        payload text NOT NULL,
        status text NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at {instant} NOT NULL,
        claimed_until {instant},
        target_ids text,
        last_error text,
        created_at {instant} NOT NULL,
        updated_at {instant} NOT NULL,
        sent_at {instant},
        unexpected_errors integer NOT NULL DEFAULT 0,
        pending_since {instant})""",
    "CREATE INDEX IF NOT EXISTS sync_messages_unsent ON sync_messages (target, lane, seq)"
    " WHERE status <> 'sent'",
    "CREATE INDEX IF NOT EXISTS sync_messages_due ON sync_messages (target, seq)"
    " WHERE status IN ('pending', 'sending')",
    "CREATE INDEX IF NOT EXISTS sync_messages_status ON sync_messages (status, target, seq)",
    # The vouchers already enqueued for a month, read for every ended month on each enqueue.
    "CREATE INDEX IF NOT EXISTS sync_messages_recognition ON sync_messages (target, dated)"
    " WHERE kind = 'recognition'",
    """CREATE TABLE IF NOT EXISTS sync_attempts (
        message_id text NOT NULL,
        number integer NOT NULL,
        started_at {instant} NOT NULL,
        duration_ms integer NOT NULL,
        requests text NOT NULL,
        http_status integer,
        target_ids text,
        error text,
        outcome text NOT NULL,
        PRIMARY KEY (message_id, number))""",
    """CREATE TABLE IF NOT EXISTS sync_cursors (
        target text PRIMARY KEY,
        position bigint NOT NULL,
        outbox text NOT NULL DEFAULT '')""",
    """CREATE TABLE IF NOT EXISTS sync_budgets (
        target text PRIMARY KEY,
        next_at double precision NOT NULL)""",
)
#: Columns added to `sync_messages` after its first release: a database made before them gets
#: them on start-up (`DeliveryLog.create_tables`), and a row made before them reads as 0
#: unexpected errors, pending since it was enqueued.
_ADDED_COLUMNS: Final = (
    ("unexpected_errors", "integer NOT NULL DEFAULT 0"),
    ("pending_since", "{instant}"),
)


class Statements(Protocol):
    """A transaction's statements (`adapters.sync.log_database`'s `_Statements`)."""

    def run(self, sql: str, **parameters: Any) -> list[dict[str, Any]]: ...


def create_tables(sql: Statements, postgres: bool) -> None:
    """Create the tables in the transaction `sql` (under a lock on PostgreSQL, so that
    processes starting together do not race), and add the columns an older database lacks."""
    instant = "timestamptz" if postgres else "text"
    if postgres:
        sql.run("SELECT pg_advisory_xact_lock(hashtext('subledger sync schema'))")
    for statement in _TABLES:
        sql.run(statement.format(instant=instant))
    _add_columns(sql, postgres, instant)


def _add_columns(sql: Statements, postgres: bool, instant: str) -> None:
    """Give a `sync_messages` made before `_ADDED_COLUMNS` those columns. PostgreSQL
    guards itself (`IF NOT EXISTS`, under the schema lock); SQLite, which has no such
    clause, is asked for the table's columns first, and a process that added one between
    that question and its own `ALTER` (SQLite's transactions lock on the first write)
    leaves nothing to do."""
    if postgres:
        for name, definition in _ADDED_COLUMNS:
            sql.run(
                f"ALTER TABLE sync_messages ADD COLUMN IF NOT EXISTS {name}"
                f" {definition.format(instant=instant)}"
            )
        return
    present = {row["name"] for row in sql.run("PRAGMA table_info(sync_messages)")}
    for name, definition in _ADDED_COLUMNS:
        if name in present:
            continue
        try:
            sql.run(
                f"ALTER TABLE sync_messages ADD COLUMN {name} {definition.format(instant=instant)}"
            )
        except sqlite3.OperationalError as error:
            if "duplicate column" not in str(error):
                raise
