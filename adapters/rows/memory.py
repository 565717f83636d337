"""Projection rows in process memory (for `memory://`)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

from subledger.projections.engine import (
    Projection,
    Row,
    RowKey,
    Rows,
    RowSource,
    Table,
    past_table,
)
from subledger.projections.runner import Checkpoint, Move, ProjectionMovedError, Stored


class MemoryRowStore:
    def __init__(self) -> None:
        self._tables: dict[str, dict[RowKey, Row]] = {}
        self._stored: dict[str, Stored] = {}
        #: Per projection, its checkpoints' positions and fingerprints.
        self._checkpoints: dict[str, dict[int, str]] = {}
        self._lock = threading.RLock()

    def create_tables(self, tables: Iterable[Table]) -> None:
        with self._lock:
            for table in tables:
                self._tables.setdefault(table.name, {})

    def stored(self) -> dict[str, Stored]:
        with self._lock:
            return dict(self._stored)

    def reset(
        self, projection: Projection, *more: Projection, unless_current: bool = False
    ) -> None:
        projections = (projection, *more)
        with self._lock:
            if unless_current and all(
                one.name in self._stored and self._stored[one.name].fingerprint == one.fingerprint()
                for one in projections
            ):
                return
            for one in projections:
                for table in (*one.tables, *one.past_tables()):
                    self._tables[table.name] = {}
                self._checkpoints[one.name] = {}
                self._stored[one.name] = Stored(0, one.fingerprint())

    def forget(self, name: str) -> None:
        with self._lock:
            self._checkpoints.pop(name, None)
            self._stored.pop(name, None)

    def load(self, table: Table, keys: Collection[RowKey]) -> dict[RowKey, Row]:
        with self._lock:
            rows = self._tables[table.name]
            return {key: copy.deepcopy(rows[key]) for key in keys if key in rows}

    def load_all(self, table: Table) -> dict[RowKey, Row]:
        with self._lock:
            return copy.deepcopy(self._tables[table.name])

    def commit(
        self,
        changes: Mapping[Table, Mapping[RowKey, Row]],
        moves: Sequence[Move],
        checkpoints: Sequence[Checkpoint] = (),
    ) -> None:
        with self._lock:
            for move in moves:
                if self._stored[move.name].position != move.start:
                    raise ProjectionMovedError(move.name)
            for table, rows in changes.items():
                stored = self._tables[table.name]
                if table.written_once and not stored.keys().isdisjoint(rows):
                    raise ValueError(f"{table.name}: a row written once is written again")
                stored.update(copy.deepcopy(dict(rows)))
            for checkpoint in checkpoints:
                at = (checkpoint.position,)
                self._checkpoints.setdefault(checkpoint.name, {})[at[0]] = checkpoint.fingerprint
                for table, rows in checkpoint.changed.items():
                    past = self._tables[past_table(table).name]
                    past.update({(*key, *at): copy.deepcopy(row) for key, row in rows.items()})
                for table in checkpoint.whole:
                    past = self._tables[past_table(table).name]
                    past.update(
                        {
                            (*key, *at): copy.deepcopy(row)
                            for key, row in self._tables[table.name].items()
                            if checkpoint.part is None or key[-1] == checkpoint.part
                        }
                    )
            for move in moves:
                self._stored[move.name] = Stored(move.end, move.fingerprint)

    def last_checkpoint(self, name: str, fingerprint: str, upto: int) -> int:
        with self._lock:
            found = self._checkpoints.get(name, {}).items()
            return max((at for at, made in found if made == fingerprint and at <= upto), default=0)

    @contextmanager
    def past(self, projection: Projection, upto: int) -> Iterator[_MemoryPast | None]:
        with self._lock:
            position = self.last_checkpoint(projection.name, projection.fingerprint(), upto)
            yield _MemoryPast(self._tables, position) if position else None

    @contextmanager
    def snapshot(self, name: str, *more: str) -> Iterator[tuple[int, RowSource]]:
        with self._lock:
            found = [self._stored.get(one) for one in (name, *more)]
            folded = min(stored.position if stored else 0 for stored in found)
            yield folded, Rows(known=self._tables)


class _MemoryPast:
    """Checkpointed tables at one checkpoint: each row as the latest checkpoint up to it
    wrote it."""

    def __init__(self, tables: dict[str, dict[RowKey, Row]], position: int) -> None:
        self.tables = tables
        self.position = position

    def load(self, table: Table, keys: Collection[RowKey] | None) -> dict[RowKey, Row]:
        latest: dict[RowKey, tuple[int, Row]] = {}
        wanted = None if keys is None else set(keys)
        for stored_key, row in self.tables[past_table(table).name].items():
            key, at = stored_key[:-1], stored_key[-1]
            chosen = at <= self.position and (wanted is None or key in wanted)
            if chosen and (key not in latest or latest[key][0] < at):
                latest[key] = (at, row)
        return {key: copy.deepcopy(row) for key, (_, row) in latest.items()}
