"""What the ledger keeps between batches, so that a batch reads and replays only what is new,
or nothing at all.

An aggregate is taken out while a batch uses it and put back only once the batch is saved, so
two batches never share one, and one that a refused batch half-changed is dropped. A cached
aggregate may be behind the store (another process appended since): either the ledger asks the
store for the events after the cached version and replays them, or it decides the batch on
what it holds and the write refuses it if any of those aggregates moved on. The cache is never
trusted blindly.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from threading import Lock
from typing import Generic, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

K = TypeVar("K")
V = TypeVar("V")


class Remembered(Generic[K, V]):
    """Recently used values, the least recently used beyond `capacity` forgotten. The ledger
    keeps in them what never changes once stored (an invoice reference, a live customer's
    key), so that a batch can be decided without reading it again; and its aggregates."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._values: OrderedDict[K, V] = OrderedDict()
        self._lock = Lock()

    def get_many(self, keys: Iterable[K]) -> dict[K, V]:
        """The remembered values among `keys`."""
        found: dict[K, V] = {}
        with self._lock:
            for key in keys:
                value = self._values.get(key)
                if value is not None:
                    found[key] = value
                    self._values.move_to_end(key)
        return found

    def put_many(self, items: Iterable[tuple[K, V]]) -> None:
        if self.capacity <= 0:
            return
        values = self._values
        with self._lock:
            for key, value in items:
                if key in values:
                    values.move_to_end(key)
                values[key] = value  # a new key goes to the end as it is
            while len(values) > self.capacity:
                values.popitem(last=False)

    def forget(self, keys: Iterable[K]) -> None:
        with self._lock:
            for key in keys:
                self._values.pop(key, None)


class AggregateCache(Remembered[UUID, Aggregate]):
    """Aggregates as last saved, each taken out while a batch uses it."""

    def take(self, ids: Iterable[UUID]) -> dict[UUID, Aggregate]:
        """Remove and return the cached aggregates among `ids`."""
        taken: dict[UUID, Aggregate] = {}
        with self._lock:
            for aggregate_id in ids:
                aggregate = self._values.pop(aggregate_id, None)
                if aggregate is not None:
                    taken[aggregate_id] = aggregate
        return taken

    def put(self, aggregates: Iterable[Aggregate]) -> None:
        """Keep these aggregates (as saved), forgetting the least recently used beyond capacity."""
        self.put_many((aggregate.id, aggregate) for aggregate in aggregates)


class Hunch:
    """Whether deciding batches on what this process holds pays: it does while few of the
    recent tries had to be decided again on a read (another process writing the same
    aggregates makes most of them miss). When it does not, one batch in `probe_every` tries
    anyway, so that the hunch comes back once the other writer is gone."""

    def __init__(self, *, give_up_above: float = 0.25, probe_every: int = 32) -> None:
        self.give_up_above = give_up_above
        self.probe_every = probe_every
        self._misses = 0.0
        self._skipped = 0

    def worth_trying(self) -> bool:
        if self._misses <= self.give_up_above:
            return True
        self._skipped += 1
        if self._skipped >= self.probe_every:
            self._skipped = 0
            return True
        return False

    def record(self, *, missed: bool) -> None:
        """Move the share of misses a sixteenth of the way towards this try's outcome."""
        self._misses += ((1.0 if missed else 0.0) - self._misses) / 16
