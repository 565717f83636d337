"""The ledger's event store in process memory (`memory://`), for tests and trying things out.

Same contract as the database stores: the log entries and invoice references are checked and
written under the recorder's lock together with the events, or not at all.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder, POPOFactory

from subledger.adapters.rows.memory import MemoryRowStore
from subledger.domain.ports import (
    DECIDED_ON,
    INVOICE_REFERENCES,
    LOG_ENTRIES,
    SEALING_KEYS,
    BatchContext,
    InvoiceReference,
    LogEntry,
    LogRecord,
    PriorAppend,
    SealingKeyChange,
)


class MemoryLedgerRecorder(POPOApplicationRecorder):
    def __init__(self) -> None:
        super().__init__()
        self._appended: dict[str, PriorAppend] = {}
        self._log: dict[int, tuple[str, datetime]] = {}
        self._references: dict[tuple[str, str], str] = {}
        #: Each customer's key; None once erased.
        self._keys: dict[str, bytes | None] = {}
        #: The projections' rows live beside this log, in memory too.
        self.row_store = MemoryRowStore()

    def _assert_uniqueness(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        decided_on: Mapping[UUID, int] = kwargs.get(DECIDED_ON, {})
        for aggregate_id, version in decided_on.items():
            if max(self._stored_events_index.get(str(aggregate_id), ()), default=0) > version:
                raise IntegrityError("an aggregate of the batch moved on after it was decided")
        super()._assert_uniqueness(stored_events, **kwargs)
        log_entries: Sequence[LogEntry] = kwargs.get(LOG_ENTRIES, ())
        event_ids = [entry.event_id for entry in log_entries]
        if len(set(event_ids)) < len(event_ids) or any(i in self._appended for i in event_ids):
            raise IntegrityError("an event id was appended already")
        references: Sequence[InvoiceReference] = kwargs.get(INVOICE_REFERENCES, ())
        keys = [(reference.kind, reference.key) for reference in references]
        if len(set(keys)) < len(keys) or any(key in self._references for key in keys):
            raise IntegrityError("an invoice reference exists already")
        changes: Sequence[SealingKeyChange] = kwargs.get(SEALING_KEYS, ())
        if any(c.key is not None and c.customer_id in self._keys for c in changes):
            raise IntegrityError("a customer's key exists already")

    def _update_table(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._update_table(stored_events, **kwargs)
        assert positions is not None
        log_entries: Sequence[LogEntry] = kwargs.get(LOG_ENTRIES, ())
        if log_entries:
            last = self._log[len(self._log)][1] if self._log else None
            now = datetime.now(UTC)
            recorded_at = max(now, last) if last is not None else now
            for position, entry in zip(positions, log_entries, strict=True):
                self._appended[entry.event_id] = PriorAppend(entry.digest, position)
                self._log[position] = (entry.event_id, recorded_at)
        for reference in kwargs.get(INVOICE_REFERENCES, ()):
            self._references[(reference.kind, reference.key)] = reference.invoice_id
        for change in kwargs.get(SEALING_KEYS, ()):
            self._keys[change.customer_id] = change.key
        return positions

    def find_appended(self, event_ids: Collection[str]) -> Mapping[str, PriorAppend]:
        with self._database_lock:
            return {i: self._appended[i] for i in event_ids if i in self._appended}

    def read_batch_context(
        self,
        event_ids: Collection[str],
        reference_keys: Collection[tuple[str, str]],
        known_versions: Mapping[UUID, int],
        customer_ids: Collection[str] = (),
    ) -> BatchContext:
        with self._database_lock:
            return BatchContext(
                prior=self.find_appended(event_ids),
                references={
                    key: self._references[key] for key in reference_keys if key in self._references
                },
                stored_events=self.select_aggregates_events(known_versions),
                keys=self.sealing_keys(customer_ids),
            )

    def sealing_keys(self, customer_ids: Collection[str]) -> Mapping[str, bytes | None]:
        with self._database_lock:
            return {i: self._keys[i] for i in customer_ids if i in self._keys}

    def select_aggregates_events(self, known_versions: Mapping[UUID, int]) -> Sequence[StoredEvent]:
        with self._database_lock:
            return [
                event
                for originator_id, version in sorted(known_versions.items())
                for event in self.select_events(originator_id, gt=version)
            ]

    def read_log(self, after: int, limit: int) -> Sequence[LogRecord]:
        with self._database_lock:
            notifications: Sequence[Notification] = self.select_notifications(
                after, limit, inclusive_of_start=False
            )
            return [LogRecord(n, *self._log[n.id]) for n in notifications]

    def read_notifications(
        self, after: int, upto: int, limit: int, topics: Collection[str]
    ) -> Sequence[Notification]:
        return self.select_notifications(
            after, limit, stop=upto, topics=list(topics), inclusive_of_start=False
        )

    def read_aggregate_notifications(
        self, originator_id: UUID, upto: int
    ) -> Sequence[Notification]:
        with self._database_lock:
            index = self._stored_events_index[str(originator_id)]
            found = []
            for version in sorted(index):
                position = index[version] + 1
                if position <= upto:
                    stored = self._stored_events[index[version]]
                    found.append(
                        Notification(
                            id=position,
                            originator_id=stored.originator_id,
                            originator_version=stored.originator_version,
                            topic=stored.topic,
                            state=stored.state,
                        )
                    )
            return found

    def last_position(self) -> int:
        return self.max_notification_id() or 0

    def position_at(self, instant: datetime) -> int:
        with self._database_lock:
            recorded = [p for p, (_, moment) in self._log.items() if moment <= instant]
            return max(recorded, default=0)


class MemoryStoreFactory(POPOFactory):
    def application_recorder(self) -> MemoryLedgerRecorder:
        return MemoryLedgerRecorder()
