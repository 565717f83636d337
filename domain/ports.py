"""What the ledger needs from its event store beyond the library's recorder interface.

Every backend (PostgreSQL, SQLite, memory) implements `LedgerStore` on its application recorder.
Beside each event the store keeps a log entry (the sender's event id, a digest of its body, and
the time the write was recorded) and the invoice references (payment, refund and credit-note ids
that live inside an invoice), all written in the same transaction as the events themselves, so
that a unique event id and unique business ids are enforced by the write itself; and the write
checks that the aggregates a batch was decided on are still at the versions it saw.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

#: `insert_events()` keyword for the log entries, one per stored event and in the same order.
LOG_ENTRIES = "log_entries"
#: `insert_events()` keyword for the invoice references that the events create.
INVOICE_REFERENCES = "invoice_references"
#: `insert_events()` keyword for the customers' keys that the events create or destroy.
SEALING_KEYS = "sealing_key_changes"
#: `insert_events()` keyword for the version of each aggregate the events were decided on
#: (0: it did not exist). The write is refused with an `IntegrityError` if any of them has a
#: stored event of a later version than that, other than the events being written: another
#: writer moved it on after the batch was decided, so the decision may not hold.
DECIDED_ON = "decided_on"


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
class SealingKeyChange:
    """Written beside the event at (`originator_id`, `originator_version`): a customer's new
    key, or (`key` None) the destruction of its key by that event, an erasure."""

    customer_id: str
    originator_id: UUID
    originator_version: int
    key: bytes | None


@dataclass(frozen=True, slots=True)
class Resealed:
    """An event written before personal data was sealed, rewritten sealed: its new state and
    its log row's new digest."""

    originator_id: UUID
    originator_version: int
    position: int
    state: bytes
    digest: bytes


@dataclass(frozen=True, slots=True)
class BatchContext:
    """What deciding a batch needs to read: which of its event ids the log holds, the invoice
    references it names, the stored events of the aggregates it touches that the ledger does
    not hold already, and the keys of the customers it names (None: destroyed; absent: none)."""

    prior: Mapping[str, PriorAppend]
    references: Mapping[tuple[str, str], str]
    stored_events: Sequence[StoredEvent]
    keys: Mapping[str, bytes | None] = field(default_factory=dict)


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
        customer_ids: Collection[str] = (),
    ) -> BatchContext:
        """The known event ids among `event_ids`, the invoice each known `(kind, key)` lives in,
        the stored events of the aggregates in `known_versions` after the version given for
        each (0 for all of them), and the keys of `customer_ids`: ideally in one round trip."""

    def sealing_keys(self, customer_ids: Collection[str]) -> Mapping[str, bytes | None]:
        """The keys of the given customers that have a key row: the key, or None once erased."""

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


@runtime_checkable
class ResealingStore(Protocol):
    """A store that can rewrite events written before personal data was sealed (a database:
    a memory store never holds such events)."""

    def reseal(self, events: Sequence[Resealed], keys: Mapping[str, bytes]) -> None:
        """In one transaction: the events' new states and digests, and the customers' new
        keys; `IntegrityError` if one of those customers got a key meanwhile."""


@runtime_checkable
class SealingMapper(Protocol):
    """Turns a customer event into its stored form with its personal fields sealed under the
    customer's key (the store's mapper does; see `domain.personal`)."""

    def to_sealed_stored_event(self, domain_event: Any, key: bytes) -> StoredEvent:
        """The stored event, its personal fields sealed with `key`."""
