"""The batched runner: reads the log after each projection's position a page at a time, folds the
page in memory, and writes the page's changed rows and the projections' new positions in one
transaction. A crash therefore never applies an event twice or skips one.

It is written against two ports: where the log is read from (`LogSource`) and where rows and
positions are kept (`ProjectionStore`, in `adapters`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Final, Protocol

from subledger.domain.ledger import Entry
from subledger.projections.engine import Projection, Row, RowKey, Rows, RowSource, Table
from subledger.projections.partitions import Partition, merged_source, partition_of, unit_names

DEFAULT_PAGE_SIZE: Final = 2000
#: Positions between two checkpoints: an answer as of a past point folds at most this many
#: events of the log on from the nearest checkpoint.
DEFAULT_CHECKPOINT_EVERY: Final = 20_000

Progress = Callable[[int, int], None]
"""Called after each page with the position reached and the position aimed at."""


@dataclass(frozen=True)
class Stored:
    """What the store holds of a projection: how far it is folded, and with what."""

    position: int
    fingerprint: str


@dataclass(frozen=True)
class Move:
    """A projection's position moving from `start` to `end` with a page's rows."""

    name: str
    start: int
    end: int
    fingerprint: str


@dataclass(frozen=True)
class Checkpoint:
    """A projection's checkpointed tables as they stand at `position` (a multiple of the
    runner's `checkpoint_every`), written in the transaction of the page that reaches it."""

    name: str
    position: int
    fingerprint: str
    #: The rows of the checkpointed tables that changed since the previous checkpoint.
    changed: Mapping[Table, Mapping[RowKey, Row]]
    #: Checkpointed tables copied whole from the stored rows instead (after a start or a
    #: reload, what changed since the previous checkpoint is not known).
    whole: tuple[Table, ...] = ()
    #: For a partition of a projection folded in partitions, its number: the rows copied
    #: whole are only those whose `part` it is.
    part: int | None = None


class PastRows(Protocol):
    """A projection's checkpointed tables as they stood at one of its checkpoints."""

    position: int

    def load(self, table: Table, keys: Collection[RowKey] | None) -> dict[RowKey, Row]:
        """The rows of `keys` (every row if `None`) of a checkpointed table."""
        ...


class ProjectionMovedError(Exception):
    """A projection's stored position was not where this runner left it: another runner (or a
    rebuild) moved it. Nothing of the page was written."""


class PartitionsDifferError(Exception):
    """The store holds the projections folded in another number of partitions than the runner
    folds them in: another process folds them so (folding them here in this number would
    undo its work and it this one's), or the number was changed without a rebuild."""


class LogSource(Protocol):
    def last_position(self) -> int: ...

    def read_entries(
        self, after: int, upto: int, limit: int, event_types: Collection[type]
    ) -> list[Entry]:
        """Up to `limit` events of the given types with `after < position <= upto`, in order."""
        ...


class ProjectionStore(Protocol):
    def create_tables(self, tables: Iterable[Table]) -> None: ...

    def stored(self) -> dict[str, Stored]: ...

    def reset(
        self, projection: Projection, *more: Projection, unless_current: bool = False
    ) -> None:
        """Delete the projections' rows (the partitions of one projection: their tables);
        store each at position 0 with its fingerprint; all in one transaction. With
        `unless_current`, do nothing if each is already stored with its fingerprint (another
        process reset them first)."""
        ...

    def forget(self, name: str) -> None:
        """Delete what is stored of `name` beside its rows: its position and checkpoints (a
        projection now folded in another number of partitions)."""
        ...

    def load(self, table: Table, keys: Collection[RowKey]) -> dict[RowKey, Row]: ...

    def load_all(self, table: Table) -> dict[RowKey, Row]: ...

    def commit(
        self,
        changes: Mapping[Table, Mapping[RowKey, Row]],
        moves: Sequence[Move],
        checkpoints: Sequence[Checkpoint] = (),
    ) -> None:
        """Write the rows, the moves and the checkpoints in one transaction; raise
        `ProjectionMovedError` (and write nothing) if a projection's stored position is not its
        move's start."""
        ...

    def last_checkpoint(self, name: str, fingerprint: str, upto: int) -> int:
        """The position of the projection's last checkpoint up to `upto` folded with
        `fingerprint`; 0 if there is none."""
        ...

    def past(self, projection: Projection, upto: int) -> AbstractContextManager[PastRows | None]:
        """The projection's checkpointed tables at its last checkpoint up to `upto`, read
        consistently; `None` if it has none."""
        ...

    def snapshot(self, name: str, *more: str) -> AbstractContextManager[tuple[int, RowSource]]:
        """The projection's position and rows, read consistently with each other (with `more`
        names, the least of their positions: the partitions of one projection)."""
        ...


class ProjectionRunner:
    def __init__(
        self,
        log: LogSource,
        store: ProjectionStore,
        projections: Sequence[Projection],
        page_size: int = DEFAULT_PAGE_SIZE,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        partitions: int = 1,
    ) -> None:
        if partitions < 1:
            raise ValueError("a projection is folded in 1 partition or more")
        self.log = log
        self.store = store
        self.projections = {projection.name: projection for projection in projections}
        #: How many partitions by customer each projection is folded in
        #: (`projections.partitions`).
        self.partitions = partitions
        #: What is folded, each with a position of its own: the projections themselves, or
        #: with several partitions each one's partitions (`journal/0`, `journal/1`, ...).
        self.units: dict[str, Projection] = {
            unit.name: unit
            for projection in projections
            for unit in (
                [projection]
                if partitions == 1
                else [Partition(projection, part, partitions) for part in range(partitions)]
            )
        }
        self.page_size = page_size
        #: Positions between checkpoints; 0 for none.
        self.checkpoint_every = checkpoint_every
        #: Per projection, the checkpointed rows changed since its last checkpoint.
        self._pending: dict[str, dict[Table, dict[RowKey, Row]]] = {}
        #: The projections whose next checkpoint copies their stored rows whole.
        self._whole: set[str] = set()
        self._positions: dict[str, int] = {}
        self._kept: dict[str, dict[str, dict[RowKey, Row]]] = {}
        self._work = threading.Lock()
        self._advanced = threading.Condition()
        #: Whether the positions and kept rows in memory may differ from the stored ones (a
        #: reload failed); `prepare()` reads them first.
        self._stale = False

    # Starting.

    def prepare(
        self, names: Collection[str] | None = None, *, repartition: bool = False
    ) -> list[str]:
        """Create the tables; reset every projection (of `names`, if given) folded with another
        fingerprint (or never folded); read positions and kept tables. Returns the names that
        were reset.

        A projection the store holds folded in another number of partitions is refused
        (`PartitionsDifferError`) unless `repartition` (a rebuild) says to fold it again in this
        runner's number."""
        with self._work:
            self.store.create_tables(
                table
                for unit in self.units.values()
                for table in (*unit.tables, *unit.past_tables())
            )
            stored = self.store.stored()
            differs = self.partitions_differ(stored)
            if differs and not repartition:
                raise PartitionsDifferError(differs)
            reset = []
            for name in self._projections_of(names):
                units = self.unit_names(name)
                # The partitions share the projection's tables: they are reset together.
                if any(
                    unit not in stored or stored[unit].fingerprint != self.units[unit].fingerprint()
                    for unit in units
                ):
                    self._reset(name, stored, unless_current=True)
                    reset.append(name)
            self._reload()
            return reset

    def partitions_differ(self, stored: Mapping[str, Stored] | None = None) -> str | None:
        """What is wrong if the store holds a projection folded in another number of
        partitions than this runner's; None if it holds none so."""
        stored = self.store.stored() if stored is None else stored
        for name in self.projections:
            for found, mark in stored.items():
                if found != name and not found.startswith(f"{name}/"):
                    continue
                count = _partitions_of(found, mark)
                if count != self.partitions:
                    return (
                        f"the store's projections are folded in {count or 'another number of'}"
                        " partition(s) and"
                        f" SUBLEDGER_PROJECTION_PARTITIONS is {self.partitions}: give every"
                        " process on the store the same number, or fold them again in"
                        f" {self.partitions} with `subledger projections rebuild`"
                    )
        return None

    def _reset(self, name: str, stored: Mapping[str, Stored], *, unless_current: bool) -> None:
        """Empty projection `name`'s rows and store its partitions at position 0, forgetting
        those of another number of partitions."""
        units = self.unit_names(name)
        for other in stored:
            if other not in units and (other == name or other.startswith(f"{name}/")):
                self.store.forget(other)
        first, *rest = (self.units[unit] for unit in units)
        self.store.reset(first, *rest, unless_current=unless_current)

    def unit_names(self, name: str) -> list[str]:
        """What projection `name` is folded as: itself, or its partitions."""
        return unit_names(name, self.partitions)

    def _projections_of(self, names: Collection[str] | None) -> list[str]:
        """The projections of `names` (projections, or partitions of them); all if None."""
        if names is None:
            return list(self.projections)
        return list(dict.fromkeys(name.split("/")[0] for name in names))

    def units_of(self, names: Collection[str] | None) -> list[str]:
        """The units of `names`: a projection's partitions, or a partition itself."""
        if names is None:
            return list(self.units)
        return list(
            dict.fromkeys(
                unit
                for name in names
                for unit in ([name] if name in self.units else self.unit_names(name))
            )
        )

    def _reload(self) -> None:
        # Stale until read whole: a reload that fails (the database went away mid-page) must
        # not leave a page's unwritten changes in the kept rows for the next page to build on.
        self._stale = True
        stored = self.store.stored()
        self._positions = {name: stored[name].position for name in self.units}
        whole: dict[Table, dict[RowKey, Row]] = {}
        for unit in self.units.values():
            for table in unit.tables:
                if table.kept and table not in whole:
                    whole[table] = self.store.load_all(table)
        self._kept = {
            name: {table.name: _part_of(whole[table], unit) for table in unit.tables if table.kept}
            for name, unit in self.units.items()
        }
        # What changed since each projection's last checkpoint is known only from a position
        # that is a checkpoint (or the start) on.
        self._pending = {name: {} for name in self.units}
        self._whole = {
            name
            for name, projection in self.units.items()
            if self._positions[name] > 0
            and self.store.last_checkpoint(name, projection.fingerprint(), self._positions[name])
            != self._positions[name]
        }
        self._stale = False

    # Folding.

    def position(self, name: str) -> int:
        """How far `name` is folded: a partition's position, or a projection's (the least of
        its partitions')."""
        return min(self._positions[unit] for unit in self.units_of([name]))

    def forget(self) -> None:
        """Read the positions and kept tables from the store again before the next page: another
        process folded some of the projections meanwhile (they were its to fold)."""
        with self._work:
            self._stale = True

    def catch_up(
        self,
        progress: Progress | None = None,
        upto: int | None = None,
        names: Collection[str] | None = None,
        go_on: Callable[[], bool] | None = None,
    ) -> int:
        """Fold the projections (those of `names` only, if given) to the end of the log as it is
        now (or to position `upto`); return that position. `go_on`, asked after each page,
        stops the folding early when it answers False (the caller looks again at which
        projections are its to fold)."""
        with self._work:
            if self._stale:
                self._reload()
            end = self.log.last_position() if upto is None else upto
            folded = self.units_of(names)
            try:
                while self._page(end, folded):
                    if progress is not None:
                        progress(min(self._positions[name] for name in folded), end)
                    if go_on is not None and not go_on():
                        break
            except ProjectionMovedError:
                self._reload()  # someone else folded: continue from where they got to
                raise
            except BaseException:
                self._reload()  # the page's folds changed kept rows that were not written
                raise
            return end

    def rebuild(self, names: Collection[str], progress: Progress | None = None) -> int:
        """Drop the named projections' rows and fold them again from position 0."""
        with self._work:
            stored = self.store.stored()
            for name in self._projections_of(names):
                self._reset(name, stored, unless_current=False)
            self._reload()
        return self.catch_up(progress)

    def _page(self, end: int, names: Sequence[str]) -> bool:
        """Fold one page of the projections of `names` that are behind `end`; False if none is."""
        behind = [name for name in names if self._positions[name] < end]
        if not behind:
            return False
        start = min(self._positions[name] for name in behind)
        types = {kind for name in behind for kind in self.units[name].event_types}
        entries = self.log.read_entries(start, end, self.page_size, types)
        page_end = entries[-1].position if len(entries) == self.page_size else end
        if self.checkpoint_every:
            page_end = min(page_end, (start // self.checkpoint_every + 1) * self.checkpoint_every)
        at_checkpoint = bool(self.checkpoint_every) and page_end % self.checkpoint_every == 0
        # A projection already past this page (the others were reset or started later) waits
        # for them: moving it to `page_end` would fold its events again.
        behind = [name for name in behind if self._positions[name] < page_end]
        # Each event's partition (None: every partition's), told once for every partition.
        parts = (
            [partition_of(entry.event, self.partitions) for entry in entries]
            if self.partitions > 1
            else None
        )
        changes: dict[Table, dict[RowKey, Row]] = {}
        # Each unit's own changes (the partitions of a projection write to the same tables).
        changed_by: dict[str, dict[Table, dict[RowKey, Row]]] = {}
        moves = []
        checkpoints = []
        mine = {name: self._mine(name, entries, parts, page_end) for name in behind}
        keyed = self._keyed_rows(mine)
        for name in behind:
            projection = self.units[name]
            known = dict(self._kept[name])
            known.update((t.name, keyed[t]) for t in projection.tables if t in keyed)
            rows = Rows(known=known)
            for entry in mine[name]:
                projection.fold(rows, entry)
            tables = {table.name: table for table in projection.tables}
            own = changed_by[name] = {
                tables[table_name]: changed for table_name, changed in rows.changes().items()
            }
            for table, changed in own.items():
                changes.setdefault(table, {}).update(changed)
            moves.append(Move(name, self._positions[name], page_end, projection.fingerprint()))
            if at_checkpoint and projection.answered_as_of_the_past:
                checkpoints.append(self._checkpoint(projection, page_end, own))
        self.store.commit(changes, moves, checkpoints)
        for move in moves:
            if not self.units[move.name].answered_as_of_the_past:
                continue
            if at_checkpoint:
                self._pending[move.name] = {}
                self._whole.discard(move.name)
            elif self.checkpoint_every:
                pending = self._pending[move.name]
                own = changed_by[move.name]
                for table in self.units[move.name].checkpointed():
                    if own.get(table):
                        pending.setdefault(table, {}).update(own[table])
        with self._advanced:
            for move in moves:
                self._positions[move.name] = move.end
            self._advanced.notify_all()
        return True

    def _checkpoint(
        self, projection: Projection, position: int, changes: Mapping[Table, Mapping[RowKey, Row]]
    ) -> Checkpoint:
        """The projection's checkpoint at `position`, with this page's `changes`."""
        name = projection.name
        if name in self._whole:
            part = projection.part if isinstance(projection, Partition) else None
            return Checkpoint(
                name, position, projection.fingerprint(), {}, projection.checkpointed(), part
            )
        changed: dict[Table, dict[RowKey, Row]] = {}
        for table in projection.checkpointed():
            rows = {**self._pending[name].get(table, {}), **changes.get(table, {})}
            if rows:
                changed[table] = rows
        return Checkpoint(name, position, projection.fingerprint(), changed)

    def _mine(
        self, name: str, entries: list[Entry], parts: list[int | None] | None, page_end: int
    ) -> list[Entry]:
        """The page's entries that unit `name` folds: after its position, of its types, and
        for a partition, of its customers or of none (`parts`: each entry's partition)."""
        unit = self.units[name]
        after, kinds = self._positions[name], unit.event_types
        if parts is not None and isinstance(unit, Partition):
            number = unit.part
            return [
                entry
                for entry, part in zip(entries, parts, strict=True)
                if (part is None or part == number)
                and after < entry.position <= page_end
                and type(entry.event) in kinds
            ]
        return [
            entry
            for entry in entries
            if after < entry.position <= page_end and type(entry.event) in kinds
        ]

    def _keyed_rows(self, mine: Mapping[str, list[Entry]]) -> dict[Table, dict[RowKey, Row]]:
        """The keyed rows the units' entries name, loaded in one read a table (the partitions
        of a projection share its tables, their rows told apart by the key's `part`)."""
        wanted: dict[Table, set[RowKey]] = {}
        for name, entries in mine.items():
            unit = self.units[name]
            for entry in entries:
                for table, key in unit.keys(entry.event):
                    wanted.setdefault(table, set()).add(key)
        return {table: self.store.load(table, keys) for table, keys in wanted.items()}

    # Waiting.

    def wait_for(self, name: str, position: int, timeout: float) -> bool:
        """Wait until `name` (a projection: each of its partitions) has folded `position`;
        False if it had not within `timeout`."""
        units = self.units_of([name])
        with self._advanced:
            return self._advanced.wait_for(
                lambda: all(self._positions[unit] >= position for unit in units), timeout
            )

    # Reading.

    def snapshot(self, name: str) -> AbstractContextManager[tuple[int, RowSource]]:
        """Projection `name`'s stored position and rows, read consistently: with several
        partitions, the least of their positions and their rows read as one."""
        return merged_source(self.store, self.unit_names(name), self.partitions)


def _partitions_of(name: str, stored: Stored) -> int | None:
    """How many partitions the projection was folded in whose partition (or whole projection)
    is stored as `name` (None if its fingerprint does not say)."""
    if "/" not in name:
        return 1
    count = stored.fingerprint.rsplit(" of ", 1)[-1]
    return int(count) if count.isdigit() else None


def _part_of(rows: dict[RowKey, Row], unit: Projection) -> dict[RowKey, Row]:
    """Of a kept table's stored rows, those of `unit`: all of them, or a partition's."""
    if not isinstance(unit, Partition):
        return rows
    return {key: row for key, row in rows.items() if key[-1] == unit.part}
