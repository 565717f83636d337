"""Projection rows in process memory (for `memory://`)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from subledger.projections.engine import Projection, Row, RowKey, Rows, RowSource, Table
from subledger.projections.runner import Move, ProjectionMovedError, Stored


class MemoryRowStore:
    def __init__(self) -> None:
        self._tables: dict[str, dict[RowKey, Row]] = {}
        self._stored: dict[str, Stored] = {}
        self._lock = threading.RLock()

    def create_tables(self, tables: Iterable[Table]) -> None:
        with self._lock:
            for table in tables:
                self._tables.setdefault(table.name, {})

    def stored(self) -> dict[str, Stored]:
        with self._lock:
            return dict(self._stored)

    def reset(self, projection: Projection) -> None:
        with self._lock:
            for table in projection.tables:
                self._tables[table.name] = {}
            self._stored[projection.name] = Stored(0, projection.fingerprint())

    def load(self, table: Table, keys: Collection[RowKey]) -> dict[RowKey, Row]:
        with self._lock:
            rows = self._tables[table.name]
            return {key: copy.deepcopy(rows[key]) for key in keys if key in rows}

    def load_all(self, table: Table) -> dict[RowKey, Row]:
        with self._lock:
            return copy.deepcopy(self._tables[table.name])

    def commit(self, changes: Mapping[Table, Mapping[RowKey, Row]], moves: Sequence[Move]) -> None:
        with self._lock:
            for move in moves:
                if self._stored[move.name].position != move.start:
                    raise ProjectionMovedError(move.name)
            for table, rows in changes.items():
                self._tables[table.name].update(copy.deepcopy(dict(rows)))
            for move in moves:
                self._stored[move.name] = Stored(move.end, move.fingerprint)

    @contextmanager
    def snapshot(self, name: str) -> Iterator[tuple[int, RowSource]]:
        with self._lock:
            yield self._stored[name].position, Rows(known=self._tables)
