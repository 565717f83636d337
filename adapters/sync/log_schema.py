"""The delivery log's tables (`adapters.sync.log`), the same on PostgreSQL and SQLite but for
how an instant is stored: `timestamptz` on PostgreSQL, fixed-width UTC text on SQLite."""

from __future__ import annotations

import sqlite3
from typing import Any, Final, Protocol

import orjson

from subledger.adapters.sync.log_records import document_of

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
    # A customer's messages at every target (its status, its resend), not the whole log.
    "CREATE INDEX IF NOT EXISTS sync_messages_lane ON sync_messages (lane, target, seq)",
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
#: unexpected errors, pending since it was enqueued, waiting for nothing. `document` (the
#: invoice a message belongs to, `log_records.document_of`) is filled in from the payloads of
#: the rows already there when the column is added (`_fill_documents`).
_ADDED_COLUMNS: Final = (
    ("unexpected_errors", "integer NOT NULL DEFAULT 0"),
    ("pending_since", "{instant}"),
    ("document", "text NOT NULL DEFAULT ''"),
    ("waiting_for", "text"),
)
#: Indexes on added columns, made once the columns are there. `sync_messages_claimable` is
#: the claim's walk in `seq` order (`waiting` messages are claimed again when their recheck is
#: due); `sync_messages_waiting` finds the waiting messages of a document, which hold its
#: later ones (`DeliveryLog.claim`) and are released together (`DeliveryLog.enqueue`).
_ADDED_INDEXES: Final = (
    "CREATE INDEX IF NOT EXISTS sync_messages_claimable ON sync_messages (target, seq)"
    " WHERE status IN ('pending', 'sending', 'waiting')",
    "CREATE INDEX IF NOT EXISTS sync_messages_waiting ON sync_messages"
    " (target, document, seq) WHERE status = 'waiting'",
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
    added = _add_columns(sql, postgres, instant)
    for statement in _ADDED_INDEXES:
        sql.run(statement)
    if "document" in added:
        _fill_documents(sql)


def _present(sql: Statements, postgres: bool) -> set[str]:
    """The columns `sync_messages` has."""
    if postgres:
        rows = sql.run(
            "SELECT column_name AS name FROM information_schema.columns"
            " WHERE table_name = 'sync_messages' AND table_schema = current_schema()"
        )
    else:
        rows = sql.run("PRAGMA table_info(sync_messages)")
    return {row["name"] for row in rows}


def _add_columns(sql: Statements, postgres: bool, instant: str) -> set[str]:
    """Give a `sync_messages` made before `_ADDED_COLUMNS` those columns; the names added.
    PostgreSQL guards itself (`IF NOT EXISTS`, under the schema lock); SQLite, which has no
    such clause, is asked for the table's columns first, and a process that added one
    between that question and its own `ALTER` (SQLite's transactions lock on the first
    write) leaves nothing to do."""
    present = _present(sql, postgres)
    if postgres:
        for name, definition in _ADDED_COLUMNS:
            sql.run(
                f"ALTER TABLE sync_messages ADD COLUMN IF NOT EXISTS {name}"
                f" {definition.format(instant=instant)}"
            )
        return {name for name, _ in _ADDED_COLUMNS} - present
    added = set()
    for name, definition in _ADDED_COLUMNS:
        if name in present:
            continue
        added.add(name)
        try:
            sql.run(
                f"ALTER TABLE sync_messages ADD COLUMN {name} {definition.format(instant=instant)}"
            )
        except sqlite3.OperationalError as error:
            if "duplicate column" not in str(error):
                raise
            added.discard(name)
    return added


def _fill_documents(sql: Statements) -> None:
    """The `document` of every message enqueued before the column was added (those of the
    `log_records.DOCUMENT_KINDS`), read off its payload once, in the transaction that adds
    the column, 1,000 rows at a time."""
    after = ""
    while rows := sql.run(
        "SELECT id, kind, payload FROM sync_messages WHERE kind IN"
        " ('invoice', 'credit_note', 'payment', 'refund') AND id > %(after)s"
        " ORDER BY id LIMIT 1000",
        after=after,
    ):
        for row in rows:
            document = document_of(row["kind"], orjson.loads(row["payload"]))
            if document:
                sql.run(
                    "UPDATE sync_messages SET document = %(d)s WHERE id = %(id)s",
                    d=document,
                    id=row["id"],
                )
        after = rows[-1]["id"]
