"""Projection rows in PostgreSQL, in the log's schema and through its connection pool.

Rows go in and out as binary arrays (`unnest` in, `= ANY` out), a page of changes in one
`INSERT ... ON CONFLICT DO UPDATE` a table, in the same transaction as the positions.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing.postgres import PostgresDatastore
from psycopg import Cursor
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composable, Composed, Identifier

from subledger.adapters import migrations
from subledger.adapters.rows.codec import CHECKPOINTS, TRACKING, decode, encode, table_name
from subledger.projections.engine import Projection, Row, RowKey, RowSource, Table, past_table
from subledger.projections.runner import Checkpoint, Move, ProjectionMovedError, Stored

_TYPES = {"text": "text", "int": "bigint", "json": "bytea"}
_COPY_TYPES = {"text": "text", "int": "int8", "json": "bytea"}


class PostgresRowStore:
    def __init__(self, datastore: PostgresDatastore) -> None:
        self.datastore = datastore

    def _name(self, name: str) -> Composed:
        return Composed([Identifier(self.datastore.schema), SQL("."), Identifier(name)])

    def create_tables(self, tables: Iterable[Table]) -> None:
        """The positions' table (a migration's, `adapters.migrations`) and each projection
        table its definition makes, where missing."""
        migrations.apply(self.datastore)
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('subledger schema'))")
            for table in tables:
                cursor.execute(self._create(table, SQL("CREATE TABLE IF NOT EXISTS")))

    def _create(self, table: Table, verb: SQL) -> Composed:
        """The statement that makes `table` as its definition says."""
        columns = SQL(", ").join(
            SQL("{0} {1}").format(Identifier(c.name), SQL(_TYPES[c.kind])) for c in table.columns
        )
        keys = SQL(", ").join(Identifier(c.name) for c in table.key)
        return SQL("{0} {1} ({2}, PRIMARY KEY ({3}))").format(
            verb, self._name(table_name(table)), columns, keys
        )

    def stored(self) -> dict[str, Stored]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                SQL("SELECT name, position, fingerprint FROM {0}").format(self._name(TRACKING))
            )
            return {r["name"]: Stored(r["position"], r["fingerprint"]) for r in cursor.fetchall()}

    def reset(
        self, projection: Projection, *more: Projection, unless_current: bool = False
    ) -> None:
        """Empty the projection's tables to be folded again; a table whose columns the
        definition changed is dropped and made anew (its rows come from the log).

        One process at a time resets (several starting at once on a new store each find the
        projections to fold from the start), and each takes the projections' positions
        before their tables, in the order a page's commit does: a reset beside a process
        folding took the tables first and the commit the position first, and each waited for
        the other."""
        projections = sorted((projection, *more), key=lambda one: one.name)
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self._reset_lock(),))
            if unless_current and self._current(cursor, projections):
                return  # another process reset them while this one waited
            for one in projections:
                cursor.execute(
                    SQL(
                        "INSERT INTO {0} (name, position, fingerprint) VALUES (%s, 0, %s)"
                        " ON CONFLICT (name) DO UPDATE"
                        " SET position = 0, fingerprint = EXCLUDED.fingerprint"
                    ).format(self._name(TRACKING)),
                    (one.name, one.fingerprint()),
                )
                cursor.execute(
                    SQL("DELETE FROM {0} WHERE name = %s").format(self._name(CHECKPOINTS)),
                    (one.name,),
                )
            tables = {
                table.name: table
                for one in projections
                for table in (*one.tables, *one.past_tables())
            }
            for table in tables.values():
                cursor.execute(
                    "SELECT c.column_name, c.data_type, EXISTS (SELECT 1"
                    "  FROM information_schema.key_column_usage k"
                    "  JOIN information_schema.table_constraints t"
                    "   ON t.constraint_name = k.constraint_name"
                    "   AND t.table_schema = k.table_schema"
                    "  WHERE t.constraint_type = 'PRIMARY KEY' AND k.table_schema = c.table_schema"
                    "   AND k.table_name = c.table_name AND k.column_name = c.column_name)"
                    " FROM information_schema.columns c"
                    " WHERE c.table_schema = %s AND c.table_name = %s ORDER BY c.ordinal_position",
                    (self.datastore.schema, table_name(table)),
                )
                found = [(r["column_name"], r["data_type"], r["exists"]) for r in cursor.fetchall()]
                keys = {column.name for column in table.key}
                wanted = [(c.name, _TYPES[c.kind], c.name in keys) for c in table.columns]
                if found == wanted:
                    cursor.execute(SQL("TRUNCATE {0}").format(self._name(table_name(table))))
                else:
                    name = self._name(table_name(table))
                    cursor.execute(SQL("DROP TABLE IF EXISTS {0}").format(name))
                    cursor.execute(self._create(table, SQL("CREATE TABLE")))

    def _reset_lock(self) -> str:
        return f"{self.datastore.schema} reset"

    def _current(self, cursor: Cursor[Any], projections: Sequence[Projection]) -> bool:
        """Whether each of `projections` is stored folded with its fingerprint."""
        cursor.execute(
            SQL(
                "SELECT count(*) AS n FROM {0} WHERE (name, fingerprint) IN (SELECT * FROM"
                " unnest(%s::text[], %s::text[]))"
            ).format(self._name(TRACKING)),
            ([one.name for one in projections], [one.fingerprint() for one in projections]),
        )
        found = cursor.fetchone()
        return found is not None and found["n"] == len(projections)

    def forget(self, name: str) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            for stored in (CHECKPOINTS, TRACKING):
                cursor.execute(
                    SQL("DELETE FROM {0} WHERE name = %s").format(self._name(stored)), (name,)
                )

    def load(self, table: Table, keys: Collection[RowKey]) -> dict[RowKey, Row]:
        if not keys:
            return {}
        with (
            self.datastore.get_connection() as connection,
            connection.cursor(row_factory=tuple_row, binary=True) as cursor,
        ):
            return dict(self._load(cursor, table, list(keys)))

    def load_all(self, table: Table) -> dict[RowKey, Row]:
        with (
            self.datastore.get_connection() as connection,
            connection.cursor(row_factory=tuple_row, binary=True) as cursor,
        ):
            return dict(self._scan(cursor, table, (), None))

    def commit(
        self,
        changes: Mapping[Table, Mapping[RowKey, Row]],
        moves: Sequence[Move],
        checkpoints: Sequence[Checkpoint] = (),
    ) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            for move in moves:
                cursor.execute(
                    SQL(
                        "UPDATE {0} SET position = %s, fingerprint = %s"
                        " WHERE name = %s AND position = %s"
                    ).format(self._name(TRACKING)),
                    (move.end, move.fingerprint, move.name, move.start),
                )
                if cursor.rowcount != 1:
                    raise ProjectionMovedError(move.name)
            for table, rows in changes.items():
                if rows:
                    self._upsert(cursor, table, rows)
            for checkpoint in checkpoints:
                self._checkpoint(cursor, checkpoint)

    def _checkpoint(self, cursor: Cursor[Any], checkpoint: Checkpoint) -> None:
        """Record the checkpoint and write its rows into the past tables (after the page's
        rows, so that a table copied whole is copied as it stands at the checkpoint)."""
        cursor.execute(
            SQL("INSERT INTO {0} (name, position, fingerprint) VALUES (%s, %s, %s)").format(
                self._name(CHECKPOINTS)
            ),
            (checkpoint.name, checkpoint.position, checkpoint.fingerprint),
        )
        at = (checkpoint.position,)
        for table, rows in checkpoint.changed.items():
            self._upsert(cursor, past_table(table), {(*key, *at): row for key, row in rows.items()})
        for table in checkpoint.whole:
            past = past_table(table)
            columns = SQL(", ").join(Identifier(c.name) for c in table.columns)
            mine = SQL("") if checkpoint.part is None else SQL(" WHERE part = %s")
            cursor.execute(
                SQL("INSERT INTO {0} ({1}, checkpoint) SELECT {1}, %s FROM {2}{3}").format(
                    self._name(table_name(past)), columns, self._name(table_name(table)), mine
                ),
                at if checkpoint.part is None else (*at, checkpoint.part),
            )

    def last_checkpoint(self, name: str, fingerprint: str, upto: int) -> int:
        with (
            self.datastore.get_connection() as connection,
            connection.cursor(row_factory=tuple_row) as cursor,
        ):
            return self._last_checkpoint(cursor, name, fingerprint, upto)

    def _last_checkpoint(
        self, cursor: Cursor[tuple[Any, ...]], name: str, fingerprint: str, upto: int
    ) -> int:
        cursor.execute(
            SQL(
                "SELECT coalesce(max(position), 0) FROM {0}"
                " WHERE name = %s AND fingerprint = %s AND position <= %s"
            ).format(self._name(CHECKPOINTS)),
            (name, fingerprint, upto),
        )
        found = cursor.fetchone()
        return int(found[0]) if found else 0

    @contextmanager
    def past(self, projection: Projection, upto: int) -> Iterator[_PostgresPast | None]:
        with (
            self.datastore.get_connection() as connection,
            connection.transaction(),
            connection.cursor(row_factory=tuple_row, binary=True) as cursor,
        ):
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            position = self._last_checkpoint(
                cursor, projection.name, projection.fingerprint(), upto
            )
            yield _PostgresPast(self, cursor, position) if position else None

    def _upsert(self, cursor: Cursor[Any], table: Table, rows: Mapping[RowKey, Row]) -> None:
        if table.written_once:
            self._copy(cursor, table, rows)
            return
        encoded = [encode(table, key, row) for key, row in rows.items()]
        columns = SQL(", ").join(Identifier(c.name) for c in table.columns)
        arrays = SQL(", ").join(SQL("%b::{0}[]").format(SQL(_TYPES[c.kind])) for c in table.columns)
        updates = SQL(", ").join(
            SQL("{0} = EXCLUDED.{0}").format(Identifier(c.name)) for c in table.values
        )
        keys = SQL(", ").join(Identifier(c.name) for c in table.key)
        cursor.execute(
            SQL(
                "INSERT INTO {0} ({1}) SELECT * FROM unnest({2})"
                " ON CONFLICT ({3}) DO UPDATE SET {4}"
            ).format(self._name(table_name(table)), columns, arrays, keys, updates),
            [[values[i] for values in encoded] for i in range(len(table.columns))],
        )

    def _copy(self, cursor: Cursor[Any], table: Table, rows: Mapping[RowKey, Row]) -> None:
        """New rows in by binary `COPY`: about twice as fast as `INSERT ... ON CONFLICT` from
        arrays, which a table written once needs not."""
        columns = SQL(", ").join(Identifier(c.name) for c in table.columns)
        with cursor.copy(
            SQL("COPY {0} ({1}) FROM STDIN (FORMAT BINARY)").format(
                self._name(table_name(table)), columns
            )
        ) as copy:
            copy.set_types([_COPY_TYPES[c.kind] for c in table.columns])
            for key, row in rows.items():
                copy.write_row(encode(table, key, row))

    @contextmanager
    def snapshot(self, name: str, *more: str) -> Iterator[tuple[int, RowSource]]:
        with (
            self.datastore.get_connection() as connection,
            connection.transaction(),
            connection.cursor(row_factory=tuple_row, binary=True) as cursor,
        ):
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            # A reader may work between its queries for longer than the pool's idle limit (an
            # export, a check holding two projections' snapshots): this transaction only reads.
            cursor.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
            names = [name, *more]
            cursor.execute(
                SQL("SELECT count(*), min(position) FROM {0} WHERE name = ANY(%s)").format(
                    self._name(TRACKING)
                ),
                (names,),
            )
            found = cursor.fetchone()
            folded = found[1] if found and found[0] == len(names) else 0
            yield folded, _PostgresRows(self, cursor)

    def _load(
        self, cursor: Cursor[Any], table: Table, keys: list[RowKey]
    ) -> list[tuple[RowKey, Row]]:
        columns = SQL(", ").join(Identifier(c.name) for c in table.columns)
        wanted = SQL(", ").join(SQL("%b::{0}[]").format(SQL(_TYPES[c.kind])) for c in table.key)
        names = SQL(", ").join(Identifier(c.name) for c in table.key)
        cursor.execute(
            SQL("SELECT {0} FROM {1} JOIN unnest({2}) AS wanted({3}) USING ({3})").format(
                columns, self._name(table_name(table)), wanted, names
            ),
            [[key[i] for key in keys] for i in range(len(table.key))],
        )
        return [decode(table, row) for row in cursor.fetchall()]

    def _scan(
        self,
        cursor: Cursor[Any],
        table: Table,
        prefix: RowKey,
        between: tuple[Any, Any] | None,
        after: RowKey | None = None,
        limit: int | None = None,
    ) -> list[tuple[RowKey, Row]]:
        conditions = [SQL("{0} = %s").format(Identifier(c.name)) for c in table.key[: len(prefix)]]
        parameters: list[Any] = list(prefix)
        if between is not None:
            conditions.append(
                SQL("{0} BETWEEN %s AND %s").format(Identifier(table.key[len(prefix)].name))
            )
            parameters.extend(between)
        order = SQL(", ").join(Identifier(c.name) for c in table.key)
        if after is not None:
            placeholders = SQL(", ").join(SQL("%s") for _ in table.key)
            conditions.append(SQL("({0}) > ({1})").format(order, placeholders))
            parameters.extend(after)
        where = SQL(" WHERE ") + SQL(" AND ").join(conditions) if conditions else SQL("")
        columns = SQL(", ").join(Identifier(c.name) for c in table.columns)
        page = SQL(" LIMIT %s") if limit is not None else SQL("")
        if limit is not None:
            parameters.append(limit)
        cursor.execute(
            SQL("SELECT {0} FROM {1}{2} ORDER BY {3}{4}").format(
                columns, self._name(table_name(table)), where, order, page
            ),
            parameters,
        )
        return [decode(table, row) for row in cursor.fetchall()]


class _PostgresPast:
    """Checkpointed tables at one checkpoint: each row as the latest checkpoint up to it
    wrote it."""

    def __init__(self, store: PostgresRowStore, cursor: Cursor[Any], position: int) -> None:
        self.store = store
        self.cursor = cursor
        self.position = position

    def load(self, table: Table, keys: Collection[RowKey] | None) -> dict[RowKey, Row]:
        if keys is not None and not keys:
            return {}
        columns = SQL(", ").join(Identifier(c.name) for c in table.columns)
        names = SQL(", ").join(Identifier(c.name) for c in table.key)
        past = self.store._name(table_name(past_table(table)))
        parameters: list[Any] = []
        wanted: Composable = SQL("")
        if keys is not None:
            arrays = SQL(", ").join(SQL("%b::{0}[]").format(SQL(_TYPES[c.kind])) for c in table.key)
            wanted = SQL(" JOIN unnest({0}) AS wanted({1}) USING ({1})").format(arrays, names)
            chosen = list(keys)
            parameters.extend([key[i] for key in chosen] for i in range(len(table.key)))
        parameters.append(self.position)
        self.cursor.execute(
            SQL(
                "SELECT DISTINCT ON ({0}) {1} FROM {2}{3} WHERE checkpoint <= %b"
                " ORDER BY {0}, checkpoint DESC"
            ).format(names, columns, past, wanted),
            parameters,
        )
        return dict(decode(table, row) for row in self.cursor.fetchall())


class _PostgresRows:
    def __init__(self, store: PostgresRowStore, cursor: Cursor[Any]) -> None:
        self.store = store
        self.cursor = cursor

    def get(self, table: Table, key: RowKey) -> Row | None:
        return dict(self.store._load(self.cursor, table, [key])).get(key)

    def scan(
        self,
        table: Table,
        prefix: RowKey = (),
        between: tuple[Any, Any] | None = None,
        after: RowKey | None = None,
        limit: int | None = None,
    ) -> list[tuple[RowKey, Row]]:
        return self.store._scan(self.cursor, table, prefix, between, after, limit)
