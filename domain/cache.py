"""Recently used aggregates, kept between batches so a batch reads and replays only what is new.

An aggregate is taken out while a batch uses it and put back only once the batch is saved, so
two batches never share one, and one that a refused batch half-changed is dropped. A cached
aggregate may be behind the store (another process appended since): the ledger asks the store
for the events after the cached version and replays them, so the cache is never trusted blindly.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from threading import Lock
from uuid import UUID

from eventsourcing.domain import Aggregate


class AggregateCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._aggregates: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._lock = Lock()

    def take(self, ids: Iterable[UUID]) -> dict[UUID, Aggregate]:
        """Remove and return the cached aggregates among `ids`."""
        taken: dict[UUID, Aggregate] = {}
        with self._lock:
            for aggregate_id in ids:
                aggregate = self._aggregates.pop(aggregate_id, None)
                if aggregate is not None:
                    taken[aggregate_id] = aggregate
        return taken

    def put(self, aggregates: Iterable[Aggregate]) -> None:
        """Keep these aggregates (as saved), forgetting the least recently used beyond capacity."""
        if self.capacity <= 0:
            return
        with self._lock:
            for aggregate in aggregates:
                self._aggregates[aggregate.id] = aggregate
                self._aggregates.move_to_end(aggregate.id)
            while len(self._aggregates) > self.capacity:
                self._aggregates.popitem(last=False)

    def __len__(self) -> int:
        return len(self._aggregates)
