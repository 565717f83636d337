"""What each event produced: the rows every projection put or added to while folding it.

An audit folds the events of one customer (its subscriptions and invoices with it), one
subscription or one invoice, in log order, through the same folds the projections use, into
rows that record every change: a row put (a journal entry, an outbox message, a schedule) or
an amount added to a total (a month's recognized revenue, MRR and its movements). The changes
made while folding an event are what that event produced. Events folded only for their effect
on others (the closing of periods, which moves entries past closed months) are folded but not
reported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from subledger.domain.ledger import Entry
from subledger.projections.engine import Projection, Row, RowKey, Rows, Table


@dataclass(frozen=True)
class Put:
    """A row written whole."""

    table: str
    key: RowKey
    row: Row


@dataclass(frozen=True)
class Added:
    """An amount added to a column of a total."""

    table: str
    key: RowKey
    column: str
    amount: int


Change = Put | Added


@dataclass
class _RecordingRows(Rows):
    """Rows that also keep a list of every change, in the order made."""

    record: list[Change] = field(default_factory=list)

    def put(self, table: Table, key: RowKey, row: Row) -> None:
        super().put(table, key, row)
        self.record.append(Put(table.name, key, dict(row)))

    def add(self, table: Table, key: RowKey, column: str, amount: int) -> None:
        super().add(table, key, column, amount)
        if amount:
            self.record.append(Added(table.name, key, column, amount))


@dataclass(frozen=True)
class Audited:
    """One reported event and, by projection name, the changes folding it made."""

    entry: Entry
    produced: dict[str, list[Change]]


def audit(
    projections: Sequence[Projection],
    entries: Iterable[Entry],
    reported: Callable[[Entry], bool],
) -> list[Audited]:
    """Fold `entries` (in log order) through every projection; for each entry `reported`
    accepts, the changes each projection made while folding it."""
    rows = {projection.name: _RecordingRows() for projection in projections}
    answer = []
    for entry in entries:
        produced: dict[str, list[Change]] = {}
        for projection in projections:
            if type(entry.event) not in projection.event_types:
                continue
            recording = rows[projection.name]
            recording.record = []
            projection.fold(recording, entry)
            if recording.record:
                produced[projection.name] = recording.record
        if reported(entry):
            answer.append(Audited(entry, produced))
    return answer


def net_additions(changes: Iterable[Change], table: str) -> dict[RowKey, dict[str, Any]]:
    """The amounts added to `table`'s rows, summed per row and column (zeros left out)."""
    totals: dict[RowKey, dict[str, Any]] = {}
    for change in changes:
        if isinstance(change, Added) and change.table == table:
            row = totals.setdefault(change.key, {})
            row[change.column] = row.get(change.column, 0) + change.amount
    return {
        key: {column: amount for column, amount in row.items() if amount}
        for key, row in totals.items()
        if any(row.values())
    }


def rows_put(changes: Iterable[Change], table: str) -> list[tuple[RowKey, Row]]:
    """The rows written to `table`, the last write of each key, in the order first written."""
    found: dict[RowKey, Row] = {}
    for change in changes:
        if isinstance(change, Put) and change.table == table:
            found[change.key] = change.row
    return list(found.items())
