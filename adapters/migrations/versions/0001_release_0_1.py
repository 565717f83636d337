"""The tables release 0.1 kept beside the log: the delivery log, the API keys and the
projections' positions.

Written to adopt a database that release (or an earlier one) made without migrations: tables
and indexes are made only where missing, and the delivery log's two columns added after its
first release are added where missing too.
"""

import sqlite3
from typing import Any

from yoyo import step  # type: ignore[import-untyped]

__depends__: set[str] = set()

_SYNC = (
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
_SYNC_INDEXES = (
    "CREATE INDEX IF NOT EXISTS sync_messages_unsent ON sync_messages (target, lane, seq)"
    " WHERE status <> 'sent'",
    "CREATE INDEX IF NOT EXISTS sync_messages_due ON sync_messages (target, seq)"
    " WHERE status IN ('pending', 'sending')",
    "CREATE INDEX IF NOT EXISTS sync_messages_status ON sync_messages (status, target, seq)",
    "CREATE INDEX IF NOT EXISTS sync_messages_recognition ON sync_messages (target, dated)"
    " WHERE kind = 'recognition'",
)
#: Added to sync_messages after its first release.
_LATER_COLUMNS = (
    ("unexpected_errors", "integer NOT NULL DEFAULT 0"),
    ("pending_since", "{instant}"),
)
_KEYS = (
    "CREATE TABLE IF NOT EXISTS subledger_api_keys (key_id text PRIMARY KEY,"
    " name text NOT NULL, secret_sha256 text NOT NULL, scopes text NOT NULL,"
    " created_at {instant} NOT NULL, revoked_at {instant})",
    "CREATE UNIQUE INDEX IF NOT EXISTS subledger_api_keys_name ON subledger_api_keys (name)"
    " WHERE revoked_at IS NULL",
)
_POSITIONS = (
    "CREATE TABLE IF NOT EXISTS subledger_projections (name {text} PRIMARY KEY,"
    " position {integer} NOT NULL, fingerprint {text} NOT NULL)",
)


def _make(connection: Any) -> None:
    sqlite = isinstance(connection, sqlite3.Connection)
    names = {
        "instant": "text" if sqlite else "timestamptz",
        "text": "TEXT" if sqlite else "text",
        "integer": "INTEGER" if sqlite else "bigint",
    }
    cursor = connection.cursor()
    for statement in _SYNC:
        cursor.execute(statement.format(**names))
    if sqlite:
        cursor.execute("PRAGMA table_info(sync_messages)")
        present = {row[1] for row in cursor.fetchall()}
        for name, definition in _LATER_COLUMNS:
            if name not in present:
                cursor.execute(
                    f"ALTER TABLE sync_messages ADD COLUMN {name} {definition.format(**names)}"
                )
    else:
        for name, definition in _LATER_COLUMNS:
            cursor.execute(
                f"ALTER TABLE sync_messages ADD COLUMN IF NOT EXISTS {name}"
                f" {definition.format(**names)}"
            )
    for statement in (*_SYNC_INDEXES, *_KEYS, *_POSITIONS):
        cursor.execute(statement.format(**names))


step(_make)
