"""Rows in and out of SQL columns: `json` columns are stored as orjson bytes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from subledger.projections.engine import Row, RowKey, Table

TRACKING = "subledger_projections"
CHECKPOINTS = "subledger_checkpoints"


def table_name(table: Table) -> str:
    return f"subledger_{table.name}"


def encode(table: Table, key: RowKey, row: Row) -> tuple[Any, ...]:
    """The key and the row as one tuple of column values, in the table's column order."""
    return (
        *key,
        *(
            orjson.dumps(row[column.name]) if column.kind == "json" else row[column.name]
            for column in table.values
        ),
    )


def decode(table: Table, values: Sequence[Any]) -> tuple[RowKey, Row]:
    """A stored tuple of column values back into a key and a row."""
    width = len(table.key)
    row = {
        column.name: orjson.loads(value) if column.kind == "json" else value
        for column, value in zip(table.values, values[width:], strict=True)
    }
    return tuple(values[:width]), row
