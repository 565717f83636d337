"""Projections folded in partitions by customer, and their rows read as one.

A projection folded in `count` partitions is folded as `count` projections of its own (a
`Partition` each, named `revenue/0`, `revenue/1`, ...), each with its own position, folding
the events of its customers and every event that belongs to no customer (a period's closing).
Each can be folded by another process, the `count` of them by as many processes as there are.

Their rows share the projection's tables, each table with one more key column, `part`, last:
- a keyed table's rows (an invoice's schedule, a journal entry) belong to one customer, so to
  one partition: read as one, the table is the union of the partitions' rows;
- a kept table's rows are totals across customers (a month's revenue, a day's journal
  totals): each partition keeps its own, and read as one, each row is their sum. A fold only
  ever adds to them, so the sum is what one fold of the whole log makes;
- a kept table marked `shared` (the closed months) is folded alike by every partition, from
  the events that belong to no customer: read as one, it is the first partition's.

`count` 1 is the projection itself, its tables without `part`.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from eventsourcing.domain import DomainEventProtocol

from subledger.domain.ledger import Entry
from subledger.domain.period import Period
from subledger.projections.engine import (
    Column,
    Projection,
    Row,
    RowKey,
    Rows,
    RowSource,
    Table,
)

#: The key column a partitioned projection's tables end with.
PART = Column("part", "int")

#: The events that belong to no customer: every partition folds them.
_EVERY_PARTITION = (Period.FirstClosed, Period.Closed, Period.Reopened)


def partition_of(event: DomainEventProtocol[Any], count: int) -> int | None:
    """The partition (of `count`) whose customer `event` concerns; None for an event every
    partition folds. A customer's partition is the same in every process and on every host (a
    CRC-32 of its id, not Python's salted `hash`)."""
    customer_id = getattr(event, "customer_id", None)
    if customer_id is None:
        if isinstance(event, _EVERY_PARTITION):
            return None
        raise TypeError(f"{type(event).__qualname__} names no customer to partition it by")
    return customer_partition(customer_id, count)


def customer_partition(customer_id: str, count: int) -> int:
    """The partition (of `count`) a customer's events are folded in."""
    return zlib.crc32(customer_id.encode()) % count


def partitioned(table: Table) -> Table:
    """`table` as a partitioned projection keeps it: `part` last in its key."""
    return Table(
        table.name,
        key=(*table.key, PART),
        values=table.values,
        kept=table.kept,
        written_once=table.written_once,
        shared=table.shared,
    )


def summed(table: Table) -> bool:
    """Whether read as one, a table's rows are the partitions' rows summed (else one
    partition's: the one that has it, or for a shared table the first)."""
    return table.kept and not table.shared


def unit_names(name: str, count: int, customer_id: str | None = None) -> list[str]:
    """The names the partitions of projection `name` are folded and stored under (only the
    one a customer's rows are in, if `customer_id` is given)."""
    if count == 1:
        return [name]
    if customer_id is not None:
        return [f"{name}/{customer_partition(customer_id, count)}"]
    return [f"{name}/{part}" for part in range(count)]


class Partition(Projection):
    """Partition `part` of `count` of a projection: the events of its customers (and those of
    no customer), folded by the projection's own fold into its rows of the projection's
    tables.

    It is given only its own events: the runner tells each event's partition (`partition_of`)
    once for all the partitions it folds, where asking each partition of each projection
    would ask sixteen times for four projections in four."""

    def __init__(self, inner: Projection, part: int, count: int) -> None:
        self.inner, self.part, self.count = inner, part, count
        # Instance attributes in place of the class-level ones a projection declares.
        self.name = f"{inner.name}/{part}"  # type: ignore[misc]
        self.version = inner.version  # type: ignore[misc]
        self.tables = tuple(partitioned(table) for table in inner.tables)  # type: ignore[misc]
        self.event_types = inner.event_types  # type: ignore[misc]
        self.referencing_types = inner.referencing_types  # type: ignore[misc]
        self.referenced_tables = tuple(  # type: ignore[misc]
            partitioned(table) for table in inner.referenced_tables
        )
        self.fold_cost = max(1, inner.fold_cost // count)  # type: ignore[misc]
        self.answered_as_of_the_past = inner.answered_as_of_the_past  # type: ignore[misc]
        self._stored = {
            table.name: stored for table, stored in zip(inner.tables, self.tables, strict=True)
        }

    def fingerprint(self) -> str:
        return f"{self.inner.fingerprint()}:part {self.part} of {self.count}"

    def keys(self, event: DomainEventProtocol[Any]) -> Iterable[tuple[Table, RowKey]]:
        for table, key in self.inner.keys(event):
            yield self._stored[table.name], (*key, self.part)

    def fold(self, rows: Rows, entry: Entry) -> None:
        self.inner.fold(_PartRows(rows, self.part, self._stored), entry)


class _PartRows(Rows):
    """A partition's rows as its projection's fold sees them: keyed without `part`."""

    def __init__(self, rows: Rows, part: int, stored: dict[str, Table]) -> None:
        # Not Rows' own fields: everything goes through to `rows`, the key lengthened.
        self._rows, self._part, self._tables = rows, part, stored

    def get(self, table: Table, key: RowKey) -> Row | None:
        return self._rows.get(self._tables[table.name], (*key, self._part))

    def put(self, table: Table, key: RowKey, row: Row) -> None:
        self._rows.put(self._tables[table.name], (*key, self._part), row)

    def add(self, table: Table, key: RowKey, column: str, amount: int) -> None:
        self._rows.add(self._tables[table.name], (*key, self._part), column, amount)

    def changes(self) -> dict[str, dict[RowKey, Row]]:
        raise TypeError("a partition's changes are its rows' own")

    def scan(
        self,
        table: Table,
        prefix: RowKey = (),
        between: tuple[Any, Any] | None = None,
        after: RowKey | None = None,
        limit: int | None = None,
    ) -> list[tuple[RowKey, Row]]:
        raise TypeError("a fold reads rows by their keys")


class Merged:
    """The rows of a projection folded in `count` partitions, read as the projection's own:
    keys without `part`, a kept table's rows summed over the partitions (a shared one's taken
    from the first)."""

    def __init__(self, rows: RowSource, count: int) -> None:
        self.rows, self.count = rows, count

    def get(self, table: Table, key: RowKey) -> Row | None:
        found = self.rows.scan(partitioned(table), key)
        merged = merge(table, found)
        return merged[0][1] if merged else None

    def scan(
        self,
        table: Table,
        prefix: RowKey = (),
        between: tuple[Any, Any] | None = None,
        after: RowKey | None = None,
        limit: int | None = None,
    ) -> list[tuple[RowKey, Row]]:
        stored = partitioned(table)
        # After every partition's row of the key `after` (their `part` is below `count`).
        past = None if after is None else (*after, self.count)
        if not table.kept:
            # One partition's row a key: the union, in key order, with no more to merge.
            found = self.rows.scan(stored, prefix, between, past, limit)
            return [(key[:-1], row) for key, row in found]
        # Kept tables are read whole by the runner anyway: small enough to merge here.
        merged = merge(table, self.rows.scan(stored, prefix, between, past))
        return merged if limit is None else merged[:limit]


def merge(table: Table, rows: Iterable[tuple[RowKey, Row]]) -> list[tuple[RowKey, Row]]:
    """Rows of `partitioned(table)` in key order, as `table`'s: each key's rows summed (a kept
    table), or its first partition's row."""
    merged: list[tuple[RowKey, Row]] = []
    add = summed(table)
    last: RowKey | None = None
    for stored_key, row in rows:
        key = stored_key[:-1]
        if key != last:
            merged.append((key, dict(row)))
            last = key
        elif add:
            total = merged[-1][1]
            for column in table.values:
                total[column.name] += row[column.name]
    return merged


class _Snapshots(Protocol):
    def snapshot(self, name: str, *more: str) -> AbstractContextManager[tuple[int, RowSource]]: ...


@contextmanager
def merged_source(
    store: _Snapshots, units: list[str], count: int
) -> Iterator[tuple[int, RowSource]]:
    """The stored position and rows of a projection folded as `units` (`count` partitions),
    read consistently: the least of their positions, and their rows read as one."""
    with store.snapshot(*units) as (position, rows):
        yield position, (rows if count == 1 else Merged(rows, count))


class _PastSource(Protocol):
    position: int

    def load(self, table: Table, keys: Collection[RowKey] | None) -> dict[RowKey, Row]: ...


class MergedPast:
    """A projection's checkpointed tables at a checkpoint every one of its `count`
    partitions made, read as one (as `Merged` reads its rows)."""

    def __init__(self, past: _PastSource, count: int) -> None:
        self.past, self.count, self.position = past, count, past.position

    def load(self, table: Table, keys: Collection[RowKey] | None) -> dict[RowKey, Row]:
        wanted = None if keys is None else [(*key, p) for key in keys for p in range(self.count)]
        found = self.past.load(partitioned(table), wanted)
        return dict(merge(table, sorted(found.items(), key=lambda item: item[0])))
