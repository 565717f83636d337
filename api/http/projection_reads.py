"""Reading a projection for an answer: live (read your writes) or as of a past point of the log.

Live: the answer reflects at least every event appended before the read began. The read looks
at the log's last position, waits (up to `SUBLEDGER_READ_WAIT_SECONDS`) for the projection to
have folded it, and answers from the stored rows and position read together.

As of `position=` or `known_at=`: the log up to that point is folded in memory by the same fold,
so a past answer is never computed by other code than today's. The fold starts from the
projection's last checkpoint up to that point (its kept tables, and the keyed rows later events
read again, as they stood there; `projections.runner`), or from position 0 if it has none.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from subledger.api.http.errors import ApiError, ErrorCode
from subledger.domain.ledger import Entry, Ledger
from subledger.projections.engine import Between, Projection, Row, RowKey, Rows, RowSource, Table
from subledger.projections.partitions import MergedPast, Partition, merged_source, unit_names
from subledger.projections.runner import PastRows, ProjectionRunner, ProjectionStore

#: Between two looks at a projection's position while waiting for it, in seconds.
_WAIT_STEP_SECONDS = 0.02


@dataclass(frozen=True)
class AsOf:
    """A point of the log to answer as of, or `None` for now."""

    position: int | None = None
    known_at: datetime | None = None


class Reader:
    def __init__(
        self,
        ledger: Ledger,
        store: ProjectionStore,
        projections: dict[str, Projection],
        wait_seconds: float,
        runner: ProjectionRunner | None = None,
        partitions: int = 1,
    ) -> None:
        self.ledger = ledger
        self.store = store
        self.projections = projections
        self.wait_seconds = wait_seconds
        self.runner = runner
        #: How many partitions each projection is folded in (`projections.partitions`).
        self.partitions = partitions

    def snapshot(
        self, name: str, customer_id: str | None = None
    ) -> AbstractContextManager[tuple[int, RowSource]]:
        """Projection `name`'s stored position and rows, read consistently (its partitions'
        read as one; for `customer_id`'s rows, the position of its partition)."""
        units = unit_names(name, self.partitions, customer_id)
        return merged_source(self.store, units, self.partitions)

    @contextmanager
    def past(self, projection: Projection, upto: int) -> Iterator[PastRows | None]:
        """The projection's checkpointed tables at its last checkpoint up to `upto` (one that
        each of its partitions made), read as one; None if it has none."""
        count = self.partitions
        if count == 1:
            with self.store.past(projection, upto) as past:
                yield past
            return
        parts = [Partition(projection, part, count) for part in range(count)]
        common = min(
            self.store.last_checkpoint(part.name, part.fingerprint(), upto) for part in parts
        )
        if not common:
            yield None
            return
        with self.store.past(parts[0], common) as past:
            yield None if past is None else MergedPast(past, count)

    @contextmanager
    def rows(
        self,
        name: str,
        as_of: AsOf,
        aggregates: Sequence[UUID] | None = None,
        keep: Between | None = None,
        customer_id: str | None = None,
    ) -> Iterator[tuple[int, RowSource]]:
        """The rows of projection `name`, and the position they reflect.

        Live, for an answer about one customer (`customer_id`), only the partition its rows
        are in is waited for; the position is that partition's.

        As of a past point, the whole log up to it is folded, keeping only the kept tables,
        the keyed rows that later events read and those the answer needs (`keep`: the entries
        of a range of days, say); or, if the answer concerns only some `aggregates` (one
        invoice, one customer and its subscriptions), only their events.
        """
        position = self.resolve(as_of)
        if position is None:
            with self._live(name, customer_id) as live:
                yield live
        elif aggregates is not None:
            entries = heapq.merge(
                *(self.ledger.iter_aggregate_entries(one, position) for one in aggregates),
                key=lambda entry: entry.position,
            )
            yield position, self._fold(self.projections[name], entries)
        else:
            yield position, self.fold(name, position, keep)

    def resolve(self, as_of: AsOf) -> int | None:
        """The position to answer as of, checked against the log; `None` for now."""
        if as_of.position is not None and as_of.known_at is not None:
            raise ApiError(ErrorCode.INVALID_REQUEST, "give position or known_at, not both")
        if as_of.position is not None:
            last = self.ledger.last_position()
            if as_of.position > last:
                raise ApiError(
                    ErrorCode.INVALID_REQUEST,
                    f"position {as_of.position} is beyond the end of the log ({last})",
                )
            return as_of.position
        if as_of.known_at is not None:
            if as_of.known_at > datetime.now(UTC):
                raise ApiError(ErrorCode.INVALID_REQUEST, "known_at is in the future")
            return self.ledger.position_at(as_of.known_at)
        return None

    def fold(self, name: str, position: int, keep: Between | None = None) -> Rows:
        """The projection's kept rows as of `position`, folded in memory, with only the keyed
        rows that some event up to `position` reads again, or that `keep` asks for.

        The fold starts from the last checkpoint up to `position` where there is one. The rows
        `keep` asks for are not in a checkpoint: those of a table whose rows are written once
        (journal entries) are read, up to the checkpoint, from the stored table, which holds
        them as they were put; for any other table the fold starts from position 0."""
        projection = self.projections[name]
        if keep is None or keep.table.written_once:
            with self.past(projection, position) as past:
                if past is not None:
                    rows = self._fold_from(projection, past, position, keep)
                    if keep is None or self._add_stored(name, keep, past.position, rows):
                        return rows
        read_again = {
            (table.name, key)
            for entry in self.ledger.iter_entries(position, projection.referencing_types)
            for table, key in projection.keys(entry.event)
        }

        def retain(table: Table, key: RowKey) -> bool:
            return (table.name, key) in read_again or (keep is not None and keep(table, key))

        entries = self.ledger.iter_entries(position, projection.event_types)
        return self._fold(projection, entries, retain)

    def _add_stored(self, name: str, keep: Between, upto: int, rows: Rows) -> bool:
        """Add to `rows` the stored rows `keep` asks for that events up to position `upto` put
        (a table of rows written once, each keyed by its event's position); False if the
        stored projection has not folded that far."""
        table = keep.table
        at = [column.name for column in table.key].index("position")
        with self.snapshot(name) as (folded, stored):
            if folded < upto:
                return False
            found = stored.scan(table, (), (keep.first, keep.last))
        known = rows.known.setdefault(table.name, {})
        known.update((key, row) for key, row in found if key[at] <= upto)
        return True

    def _fold_from(
        self, projection: Projection, past: PastRows, position: int, keep: Between | None
    ) -> Rows:
        """Fold the log after the checkpoint `past` up to `position` onto its rows: the kept
        tables whole, and the keyed rows that the events after it read again or that `keep`
        asks for."""
        read_again: dict[Table, set[RowKey]] = {}
        for entry in self.ledger.iter_entries(
            position, projection.referencing_types, after=past.position
        ):
            for table, key in projection.keys(entry.event):
                read_again.setdefault(table, set()).add(key)
        known = {table.name: past.load(table, None) for table in projection.tables if table.kept}
        for table, keys in read_again.items():
            known[table.name] = past.load(table, keys)

        def retain(table: Table, key: RowKey) -> bool:
            return key in read_again.get(table, ()) or (keep is not None and keep(table, key))

        entries = self.ledger.iter_entries(position, projection.event_types, after=past.position)
        return self._fold(projection, entries, retain, known)

    @staticmethod
    def _fold(
        projection: Projection,
        entries: Iterable[Entry],
        retain: Callable[[Table, RowKey], bool] | None = None,
        known: dict[str, dict[RowKey, Row]] | None = None,
    ) -> Rows:
        rows = Rows(known={} if known is None else known, retain=retain)
        for entry in entries:
            if type(entry.event) in projection.event_types:
                projection.fold(rows, entry)
        return rows

    @contextmanager
    def _live(self, name: str, customer_id: str | None) -> Iterator[tuple[int, RowSource]]:
        wanted = self.ledger.last_position()
        deadline = time.monotonic() + self.wait_seconds
        while True:
            with self.snapshot(name, customer_id) as (position, rows):
                if position >= wanted:
                    yield position, rows
                    return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ApiError(
                    ErrorCode.NOT_CAUGHT_UP,
                    f"the {name} projection is at position {position}, the log at {wanted}; "
                    "retry shortly",
                    headers={"Retry-After": "1"},
                )
            if self.runner is not None:
                # Woken as soon as this process folds it; another process may fold it instead
                # (the projections are shared out among them), so look at the store again soon.
                waited = unit_names(name, self.partitions, customer_id)
                self.runner.wait_for(
                    waited[0] if len(waited) == 1 else name,
                    wanted,
                    min(remaining, _WAIT_STEP_SECONDS),
                )
            else:
                time.sleep(min(remaining, _WAIT_STEP_SECONDS))
