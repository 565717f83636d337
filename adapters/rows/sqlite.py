"""Projection rows in the SQLite file beside the log."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore

from subledger.adapters import migrations
from subledger.adapters.rows.codec import CHECKPOINTS, TRACKING, decode, encode, table_name
from subledger.projections.engine import Projection, Row, RowKey, RowSource, Table, past_table
from subledger.projections.runner import Checkpoint, Move, ProjectionMovedError, Stored

_TYPES = {"text": "TEXT", "int": "INTEGER", "json": "BLOB"}
_VARIABLES_PER_QUERY = 30_000


def _create(table: Table) -> str:
    """The statement that makes `table` as its definition says."""
    columns = ", ".join(f"{c.name} {_TYPES[c.kind]}" for c in table.columns)
    keys = ", ".join(column.name for column in table.key)
    return f"CREATE TABLE {table_name(table)} ({columns}, PRIMARY KEY ({keys})) WITHOUT ROWID"


def _layout(table: Table) -> list[tuple[str, str, bool]]:
    """Each column of `table` as SQLite describes it: name, type, part of the key."""
    keys = {column.name for column in table.key}
    return [(c.name, _TYPES[c.kind], c.name in keys) for c in table.columns]


class SQLiteRowStore:
    def __init__(self, datastore: SQLiteDatastore) -> None:
        self.datastore = datastore

    def create_tables(self, tables: Iterable[Table]) -> None:
        """The positions' table (a migration's, `adapters.migrations`) and each projection
        table its definition makes, where missing."""
        migrations.apply(self.datastore)
        with self.datastore.transaction(commit=True) as cursor:
            for table in tables:
                cursor.execute(_create(table).replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"))

    def stored(self) -> dict[str, Stored]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(f"SELECT name, position, fingerprint FROM {TRACKING}")
            return {row[0]: Stored(row[1], row[2]) for row in cursor.fetchall()}

    def reset(
        self, projection: Projection, *more: Projection, unless_current: bool = False
    ) -> None:
        """Empty the projections' tables to be folded again; a table whose columns the
        definition changed is dropped and made anew (its rows come from the log)."""
        projections = (projection, *more)
        with self.datastore.transaction(commit=True) as cursor:
            if unless_current:
                cursor.execute(f"SELECT name, fingerprint FROM {TRACKING}")
                stored = dict(cursor.fetchall())
                if all(stored.get(one.name) == one.fingerprint() for one in projections):
                    return  # another process reset them meanwhile
            tables = {t.name: t for one in projections for t in (*one.tables, *one.past_tables())}
            for table in tables.values():
                cursor.execute(f"PRAGMA table_info({table_name(table)})")
                found = [(row[1], row[2].upper(), row[5] > 0) for row in cursor.fetchall()]
                if found == _layout(table):
                    cursor.execute(f"DELETE FROM {table_name(table)}")
                else:
                    cursor.execute(f"DROP TABLE IF EXISTS {table_name(table)}")
                    cursor.execute(_create(table))
            for one in projections:
                cursor.execute(f"DELETE FROM {CHECKPOINTS} WHERE name = ?", (one.name,))
                cursor.execute(
                    f"INSERT INTO {TRACKING} (name, position, fingerprint) VALUES (?, 0, ?)"
                    " ON CONFLICT (name)"
                    " DO UPDATE SET position = 0, fingerprint = excluded.fingerprint",
                    (one.name, one.fingerprint()),
                )

    def forget(self, name: str) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(f"DELETE FROM {CHECKPOINTS} WHERE name = ?", (name,))
            cursor.execute(f"DELETE FROM {TRACKING} WHERE name = ?", (name,))

    def load(self, table: Table, keys: Collection[RowKey]) -> dict[RowKey, Row]:
        with self.datastore.transaction(commit=False) as cursor:
            return dict(_load(cursor, table, list(keys)))

    def load_all(self, table: Table) -> dict[RowKey, Row]:
        with self.datastore.transaction(commit=False) as cursor:
            return dict(_scan(cursor, table, (), None))

    def commit(
        self,
        changes: Mapping[Table, Mapping[RowKey, Row]],
        moves: Sequence[Move],
        checkpoints: Sequence[Checkpoint] = (),
    ) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            for move in moves:
                cursor.execute(
                    f"UPDATE {TRACKING} SET position = ?, fingerprint = ?"
                    " WHERE name = ? AND position = ?",
                    (move.end, move.fingerprint, move.name, move.start),
                )
                if cursor.sqlite_cursor.rowcount != 1:
                    raise ProjectionMovedError(move.name)
            for table, rows in changes.items():
                _upsert(cursor, table, rows)
            for checkpoint in checkpoints:
                _checkpoint(cursor, checkpoint)

    def last_checkpoint(self, name: str, fingerprint: str, upto: int) -> int:
        with self.datastore.transaction(commit=False) as cursor:
            return _last_checkpoint(cursor, name, fingerprint, upto)

    @contextmanager
    def past(self, projection: Projection, upto: int) -> Iterator[_SQLitePast | None]:
        # In WAL mode a read transaction sees one state of the file from its first read on.
        with self.datastore.transaction(commit=False) as cursor:
            position = _last_checkpoint(cursor, projection.name, projection.fingerprint(), upto)
            yield _SQLitePast(cursor, position) if position else None

    @contextmanager
    def snapshot(self, name: str, *more: str) -> Iterator[tuple[int, RowSource]]:
        # In WAL mode a read transaction sees one state of the file from its first read on.
        names = (name, *more)
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                f"SELECT count(*), min(position) FROM {TRACKING}"
                f" WHERE name IN ({', '.join('?' * len(names))})",
                names,
            )
            found = cursor.fetchone()
            folded = found[1] if found and found[0] == len(names) else 0
            yield folded, _SQLiteRows(cursor)


def _upsert(cursor: SQLiteCursor, table: Table, rows: Mapping[RowKey, Row]) -> None:
    columns = ", ".join(column.name for column in table.columns)
    keys = ", ".join(column.name for column in table.key)
    updates = ", ".join(f"{c.name} = excluded.{c.name}" for c in table.values)
    # A table written once gets only new rows: a plain insert (a clash would be a bug, and
    # fails the page).
    conflict = "" if table.written_once else f" ON CONFLICT ({keys}) DO UPDATE SET {updates}"
    cursor.executemany(
        f"INSERT INTO {table_name(table)} ({columns})"
        f" VALUES ({', '.join('?' * len(table.columns))}){conflict}",
        [encode(table, key, row) for key, row in rows.items()],
    )


def _checkpoint(cursor: SQLiteCursor, checkpoint: Checkpoint) -> None:
    """Record the checkpoint and write its rows into the past tables (after the page's rows,
    so that a table copied whole is copied as it stands at the checkpoint)."""
    cursor.execute(
        f"INSERT INTO {CHECKPOINTS} (name, position, fingerprint) VALUES (?, ?, ?)",
        (checkpoint.name, checkpoint.position, checkpoint.fingerprint),
    )
    at = (checkpoint.position,)
    for table, rows in checkpoint.changed.items():
        _upsert(cursor, past_table(table), {(*key, *at): row for key, row in rows.items()})
    for table in checkpoint.whole:
        columns = ", ".join(column.name for column in table.columns)
        mine = "" if checkpoint.part is None else " WHERE part = ?"
        cursor.execute(
            f"INSERT INTO {table_name(past_table(table))} ({columns}, checkpoint)"
            f" SELECT {columns}, ? FROM {table_name(table)}{mine}",
            at if checkpoint.part is None else (*at, checkpoint.part),
        )


def _last_checkpoint(cursor: SQLiteCursor, name: str, fingerprint: str, upto: int) -> int:
    cursor.execute(
        f"SELECT coalesce(max(position), 0) FROM {CHECKPOINTS}"
        " WHERE name = ? AND fingerprint = ? AND position <= ?",
        (name, fingerprint, upto),
    )
    found = cursor.fetchone()
    return int(found[0]) if found else 0


class _SQLitePast:
    """Checkpointed tables at one checkpoint: each row as the latest checkpoint up to it
    wrote it."""

    def __init__(self, cursor: SQLiteCursor, position: int) -> None:
        self.cursor = cursor
        self.position = position

    def load(self, table: Table, keys: Collection[RowKey] | None) -> dict[RowKey, Row]:
        past = table_name(past_table(table))
        columns = ", ".join(f"p.{column.name}" for column in table.columns)
        same = " AND ".join(f"q.{c.name} = p.{c.name}" for c in table.key)
        latest = (
            f"SELECT {columns} FROM {past} p WHERE p.checkpoint = (SELECT max(q.checkpoint)"
            f" FROM {past} q WHERE {same} AND q.checkpoint <= ?)"
        )
        if keys is None:
            self.cursor.execute(latest, (self.position,))
            return dict(decode(table, tuple(row)) for row in self.cursor.fetchall())
        found: dict[RowKey, Row] = {}
        chosen = list(keys)
        width = len(table.key)
        names = ", ".join(f"p.{column.name}" for column in table.key)
        step = _VARIABLES_PER_QUERY // width
        for start in range(0, len(chosen), step):
            chunk = chosen[start : start + step]
            tuples = ", ".join(["(" + ", ".join("?" * width) + ")"] * len(chunk))
            self.cursor.execute(
                f"{latest} AND ({names}) IN (VALUES {tuples})",
                [self.position, *(value for key in chunk for value in key)],
            )
            found.update(decode(table, tuple(row)) for row in self.cursor.fetchall())
        return found


class _SQLiteRows:
    def __init__(self, cursor: SQLiteCursor) -> None:
        self.cursor = cursor

    def get(self, table: Table, key: RowKey) -> Row | None:
        return dict(_load(self.cursor, table, [key])).get(key)

    def scan(
        self,
        table: Table,
        prefix: RowKey = (),
        between: tuple[Any, Any] | None = None,
        after: RowKey | None = None,
        limit: int | None = None,
    ) -> list[tuple[RowKey, Row]]:
        return _scan(self.cursor, table, prefix, between, after, limit)


def _load(cursor: SQLiteCursor, table: Table, keys: list[RowKey]) -> list[tuple[RowKey, Row]]:
    found: list[tuple[RowKey, Row]] = []
    width = len(table.key)
    names = ", ".join(column.name for column in table.key)
    columns = ", ".join(column.name for column in table.columns)
    step = _VARIABLES_PER_QUERY // width
    for start in range(0, len(keys), step):
        chunk = keys[start : start + step]
        tuples = ", ".join(["(" + ", ".join("?" * width) + ")"] * len(chunk))
        cursor.execute(
            f"SELECT {columns} FROM {table_name(table)} WHERE ({names}) IN (VALUES {tuples})",
            [value for key in chunk for value in key],
        )
        found.extend(decode(table, tuple(row)) for row in cursor.fetchall())
    return found


def _scan(
    cursor: SQLiteCursor,
    table: Table,
    prefix: RowKey,
    between: tuple[Any, Any] | None,
    after: RowKey | None = None,
    limit: int | None = None,
) -> list[tuple[RowKey, Row]]:
    conditions = [f"{column.name} = ?" for column in table.key[: len(prefix)]]
    parameters: list[Any] = list(prefix)
    if between is not None:
        conditions.append(f"{table.key[len(prefix)].name} BETWEEN ? AND ?")
        parameters.extend(between)
    order = ", ".join(column.name for column in table.key)
    if after is not None:
        conditions.append(f"({order}) > ({', '.join('?' * len(table.key))})")
        parameters.extend(after)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    columns = ", ".join(column.name for column in table.columns)
    page = " LIMIT ?" if limit is not None else ""
    if limit is not None:
        parameters.append(limit)
    cursor.execute(
        f"SELECT {columns} FROM {table_name(table)}{where} ORDER BY {order}{page}", parameters
    )
    return [decode(table, tuple(row)) for row in cursor.fetchall()]
