"""What the ledger needs from its event store beyond the library's recorder interface.

Every backend (PostgreSQL, SQLite, memory) implements `LedgerStore` on its application recorder.
Beside each event the store keeps a log entry (the sender's event id, a digest of its body, and
the time the write was recorded) and the invoice references (payment, refund and credit-note ids
that live inside an invoice), all written in the same transaction as the events themselves, so
that a unique event id and unique business ids are enforced by the write itself.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

#: `insert_events()` keyword for the log entries, one per stored event and in the same order.
LOG_ENTRIES = "log_entries"
#: `insert_events()` keyword for the invoice references that the events create.
INVOICE_REFERENCES = "invoice_references"


@dataclass(frozen=True, slots=True)
class LogEntry:
    """Written beside a new event: the sender's id for it and the digest of its type and data."""

    event_id: str
    digest: bytes


@dataclass(frozen=True, slots=True)
class PriorAppend:
    """An event id that the log holds already: its digest and position."""

    digest: bytes
    position: int


@dataclass(frozen=True, slots=True)
class InvoiceReference:
    """A business id that lives inside an invoice (`payment`, `refund` or `credit_note`)."""

    kind: str
    key: str
    invoice_id: str


@dataclass(frozen=True, slots=True)
class BatchContext:
    """What deciding a batch needs to read: which of its event ids the log holds, the invoice
    references it names, and the stored events of the aggregates it touches that the ledger
    does not hold already."""

    prior: Mapping[str, PriorAppend]
    references: Mapping[tuple[str, str], str]
    stored_events: Sequence[StoredEvent]


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One event of the log as stored, with its position, sender's id and recorded time."""

    notification: Notification
    event_id: str
    recorded_at: datetime

    @property
    def position(self) -> int:
        return self.notification.id


@runtime_checkable
class LedgerStore(Protocol):
    def find_appended(self, event_ids: Collection[str]) -> Mapping[str, PriorAppend]:
        """The given event ids that the log holds already."""

    def read_batch_context(
        self,
        event_ids: Collection[str],
        reference_keys: Collection[tuple[str, str]],
        known_versions: Mapping[UUID, int],
    ) -> BatchContext:
        """The known event ids among `event_ids`, the invoice each known `(kind, key)` lives in,
        and the stored events of the aggregates in `known_versions` after the version given for
        each (0 for all of them): ideally in one round trip."""

    def select_aggregates_events(self, known_versions: Mapping[UUID, int]) -> Sequence[StoredEvent]:
        """The stored events of several aggregates after the versions given, each aggregate's
        in version order."""

    def read_log(self, after: int, limit: int) -> Sequence[LogRecord]:
        """Up to `limit` events after position `after`, in log order."""

    def read_notifications(
        self, after: int, upto: int, limit: int, topics: Collection[str]
    ) -> Sequence[Notification]:
        """Up to `limit` stored events of the given topics with `after < position <= upto`, in
        log order (the fast path for projections: no log row, no recorded time)."""

    def read_aggregate_notifications(
        self, originator_id: UUID, upto: int
    ) -> Sequence[Notification]:
        """One aggregate's stored events with a position up to `upto`, in order."""

    def last_position(self) -> int:
        """The highest position in the log (0 when it is empty)."""

    def position_at(self, instant: datetime) -> int:
        """The last position recorded at or before `instant` (0 if none was)."""
