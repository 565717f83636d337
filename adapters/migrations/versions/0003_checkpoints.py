"""Checkpoints of the projections, for answers as of a past point of the log.

`subledger_checkpoints` lists, per projection, the positions at which the rows an answer as of
a past point refolds (the kept tables, and the keyed rows later events read again) were kept,
and the fingerprint they were folded with. The rows themselves are in a `<table>_past` table
beside each such projection table, made with the projection's tables (`projections.engine`).
"""

import sqlite3
from typing import Any

from yoyo import step  # type: ignore[import-untyped]

__depends__ = {"0002_delivery_waits"}

_CHECKPOINTS = (
    "CREATE TABLE IF NOT EXISTS subledger_checkpoints (name {text} NOT NULL,"
    " position {integer} NOT NULL, fingerprint {text} NOT NULL, PRIMARY KEY (name, position))"
)


def _make(connection: Any) -> None:
    sqlite = isinstance(connection, sqlite3.Connection)
    names = {"text": "TEXT" if sqlite else "text", "integer": "INTEGER" if sqlite else "bigint"}
    connection.cursor().execute(_CHECKPOINTS.format(**names))


step(_make)
