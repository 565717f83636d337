"""The projection engine's pure half: what a projection is, and the rows it folds into.

A projection is a fold: `fold(rows, entry)` reads and changes rows for one event of the log, and
does nothing else (no I/O, no clock). Its rows live in tables it declares. The runner
(`projections.runner`) feeds it the log a page at a time and writes the page's changed rows and
the new position in one transaction; time travel feeds the same fold, in memory, the log up to a
position. Both are the same code, so an answer as of a past position is never computed twice.

A table is either *kept*: small, read whole by the runner when it starts and kept in memory
(monthly totals, say), or *keyed*: large, its rows loaded a page at a time by the keys the
page's events name (one invoice's schedule, say).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol

from subledger.domain.ledger import Entry

RowKey = tuple[Any, ...]
Row = dict[str, Any]
ColumnKind = Literal["text", "int", "json"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind


@dataclass(frozen=True)
class Table:
    """A table of a projection: its key columns, its value columns, and whether it is kept."""

    name: str
    key: tuple[Column, ...]
    values: tuple[Column, ...]
    kept: bool = False
    #: Each row is put by the one event whose position its key holds, and never changed
    #: after: the rows a page writes are all new, and a store may insert them without looking
    #: for rows of the same key (journal entries, outbox messages).
    written_once: bool = False
    #: A kept table every partition of a projection folded in partitions folds alike, from
    #: the events of no customer (the closed months): read as one, it is any partition's, not
    #: their sum (`projections.partitions`).
    shared: bool = False

    @property
    def columns(self) -> tuple[Column, ...]:
        return self.key + self.values


@dataclass(frozen=True)
class Between:
    """The rows of `table` whose first key column lies from `first` to `last` (both included):
    what an answer as of a past point needs besides the state its fold reaches (a range of
    days' journal entries, say)."""

    table: Table
    first: Any
    last: Any

    def __call__(self, table: Table, key: RowKey) -> bool:
        return table is self.table and self.first <= key[0] <= self.last


#: The column a past table adds to its table's key: the checkpoint's position.
CHECKPOINT = Column("checkpoint", "int")


def past_table(table: Table) -> Table:
    """Where `table`'s rows are kept as they stood at each checkpoint: a row is written at a
    checkpoint when it changed since the one before, so its state at a checkpoint is its row
    at the latest checkpoint up to it."""
    return Table(
        f"{table.name}_past", key=(*table.key, CHECKPOINT), values=table.values, written_once=True
    )


class RowSource(Protocol):
    """Where answers read rows from: the stored rows, or rows folded in memory."""

    def get(self, table: Table, key: RowKey) -> Row | None: ...

    def scan(
        self,
        table: Table,
        prefix: RowKey = (),
        between: tuple[Any, Any] | None = None,
        after: RowKey | None = None,
        limit: int | None = None,
    ) -> list[tuple[RowKey, Row]]:
        """Rows whose key starts with `prefix` (and whose next key column lies in `between`,
        both ends included), in key order; only those whose whole key comes after `after`,
        and at most `limit` of them (a page)."""
        ...


class Projection(ABC):
    """A pure fold of the log into rows."""

    name: ClassVar[str]
    #: Bump when the fold changes: a stored projection of another version is rebuilt.
    version: ClassVar[int]
    tables: ClassVar[tuple[Table, ...]]
    #: The event classes the fold reads; the others only advance the position.
    event_types: ClassVar[tuple[type, ...]]
    #: The event classes whose `keys()` name rows that earlier events made (a credit note names
    #: its invoice): a fold in memory keeps only the keyed rows that these will read.
    referencing_types: ClassVar[tuple[type, ...]] = ()
    #: The keyed tables whose rows `referencing_types` read (through `keys()`).
    referenced_tables: ClassVar[tuple[Table, ...]] = ()
    #: What folding it costs, in µs of a rebuild alone per event of the log as measured
    #: (docs/benchmarks.md): only the order of the projections' costs is used, to share the
    #: projections out evenly among the processes that fold them.
    fold_cost: ClassVar[int] = 100
    #: Whether some answer reads the projection as of a past point (and so from its
    #: checkpoints). One that none does keeps no checkpoints, which would only be written; if
    #: it were ever read as of a past point, the fold would start from position 0.
    answered_as_of_the_past: ClassVar[bool] = True

    def fingerprint(self) -> str:
        """What the stored rows were folded with; rows of another fingerprint are rebuilt."""
        return f"{self.name}:v{self.version}"

    def checkpointed(self) -> tuple[Table, ...]:
        """The tables an answer as of a past point folds on from a checkpoint: the kept ones,
        and the keyed ones whose rows later events read again."""
        return tuple(t for t in self.tables if t.kept or t in self.referenced_tables)

    def past_tables(self) -> tuple[Table, ...]:
        """Where the checkpointed tables' rows are kept at each checkpoint."""
        return tuple(past_table(table) for table in self.checkpointed())

    def keys(self, event: DomainEventProtocol[UUID]) -> Iterable[tuple[Table, RowKey]]:
        """The rows of keyed tables that folding `event` reads (loaded before the fold)."""
        return ()

    @abstractmethod
    def fold(self, rows: Rows, entry: Entry) -> None:
        """Apply one event to the rows."""


@dataclass
class Rows:
    """The rows a fold reads and changes, tracking what changed.

    `known` holds kept tables whole and the keyed rows loaded for a page; a key absent from a
    table's dict has no row.
    """

    known: dict[str, dict[RowKey, Row]] = field(default_factory=dict)
    changed: dict[str, set[RowKey]] = field(default_factory=dict)
    #: If given, the only keyed rows worth keeping (rows of kept tables are always kept).
    retain: Callable[[Table, RowKey], bool] | None = None

    def get(self, table: Table, key: RowKey) -> Row | None:
        return self.known.get(table.name, {}).get(key)

    def put(self, table: Table, key: RowKey, row: Row) -> None:
        if self.retain is not None and not table.kept and not self.retain(table, key):
            return
        self.known.setdefault(table.name, {})[key] = row
        self.changed.setdefault(table.name, set()).add(key)

    def add(self, table: Table, key: RowKey, column: str, amount: int) -> None:
        """Add `amount` to an integer column, the row starting at zeros."""
        rows = self.known.get(table.name)
        if rows is None:
            rows = self.known[table.name] = {}
        row = rows.get(key)
        if row is None:
            row = rows[key] = dict.fromkeys((column.name for column in table.values), 0)
        row[column] += amount
        changed = self.changed.get(table.name)
        if changed is None:
            changed = self.changed[table.name] = set()
        changed.add(key)

    def changes(self) -> dict[str, dict[RowKey, Row]]:
        """The changed rows by table name, and forget that they changed."""
        result = {
            name: {key: self.known[name][key] for key in keys}
            for name, keys in self.changed.items()
        }
        self.changed = {}
        return result

    def scan(
        self,
        table: Table,
        prefix: RowKey = (),
        between: tuple[Any, Any] | None = None,
        after: RowKey | None = None,
        limit: int | None = None,
    ) -> list[tuple[RowKey, Row]]:
        rows = self.known.get(table.name, {})
        found = [
            (key, rows[key])
            for key in sorted(rows)
            if key[: len(prefix)] == prefix
            and (between is None or between[0] <= key[len(prefix)] <= between[1])
            and (after is None or key > after)
        ]
        return found if limit is None else found[:limit]


def fold_all(
    projections: Iterable[Projection], entries: Iterable[Entry], rows: Mapping[str, Rows]
) -> None:
    """Fold `entries` into each projection's rows, skipping the events it does not read."""
    chosen = [(projection, rows[projection.name]) for projection in projections]
    for entry in entries:
        kind = type(entry.event)
        for projection, projection_rows in chosen:
            if kind in projection.event_types:
                projection.fold(projection_rows, entry)
