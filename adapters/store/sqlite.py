"""The ledger's event store in an SQLite file: the embedded default (`./subledger.db`).

SQLite serialises writers itself, so positions (rowids) arrive in commit order. Beside the
library's `stored_events` table this recorder keeps `subledger_log`, `subledger_invoice_refs` and
`subledger_customer_keys` (see `adapters.store.postgres`), written in the same transaction as
the events. An erasure overwrites its key with zeros in the file (`secure_delete`) and empties
the write-ahead log once it is committed, so the destroyed key lingers in neither.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteCursor,
    SQLiteDatastore,
    SQLiteFactory,
)

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
    Resealed,
    SealingKeyChange,
)

_LOG = "subledger_log"
_REFS = "subledger_invoice_refs"
_KEYS = "subledger_customer_keys"


def _recorded_text(moment: datetime) -> str:
    """Fixed-width UTC text, so that text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


#: Aggregates checked a query (well under SQLite's limit on a statement's parameters).
_IDS_A_QUERY = 500


class SQLiteLedgerRecorder(SQLiteApplicationRecorder):
    def __init__(
        self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {_LOG} ("
            " position INTEGER PRIMARY KEY,"
            " event_id TEXT NOT NULL UNIQUE,"
            " digest BLOB NOT NULL,"
            " recorded_at TEXT NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {_LOG}_recorded_at_idx ON {_LOG} (recorded_at)",
            f"CREATE TABLE IF NOT EXISTS {_REFS} ("
            " kind TEXT NOT NULL,"
            " key TEXT NOT NULL,"
            " invoice_id TEXT NOT NULL,"
            " PRIMARY KEY (kind, key)) WITHOUT ROWID",
            f"CREATE TABLE IF NOT EXISTS {_KEYS} ("
            " customer_id TEXT PRIMARY KEY,"
            " key BLOB,"
            " erased_position INTEGER,"
            " erased_at TEXT,"
            " CHECK ((key IS NULL) = (erased_position IS NOT NULL)))",
        ]

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int]:
        positions = super().insert_events(stored_events, **kwargs)
        if any(change.key is None for change in kwargs.get(SEALING_KEYS, ())):
            # An erasure is committed: move the pages it overwrote out of the write-ahead log
            # and empty it, so that no copy of the destroyed key stays there.
            self._empty_write_ahead_log()
        assert positions is not None
        return positions

    def _empty_write_ahead_log(self, tries: int = 40) -> None:
        """Checkpoint the write-ahead log and truncate it, trying again for a while if
        readers hold it (a checkpoint waits for no one)."""
        for _ in range(tries):
            with self.datastore.transaction(commit=False) as c:
                c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                busy = c.fetchone()[0]
            if not busy:
                return
            time.sleep(0.05)

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._insert_events(c, stored_events, **kwargs)
        # The insert holds SQLite's write lock: no other writer can move anything on now.
        self._check_decided_on(c, stored_events, kwargs.get(DECIDED_ON, {}))
        log_entries: Sequence[LogEntry] = kwargs.get(LOG_ENTRIES, ())
        references: Sequence[InvoiceReference] = kwargs.get(INVOICE_REFERENCES, ())
        if not log_entries:
            return positions
        assert positions is not None
        assert len(positions) == len(log_entries)
        # The insert above holds SQLite's write lock, so this reading of the clock is ordered
        # with every other writer's: `recorded_at` never decreases along the log.
        c.execute(f"SELECT recorded_at FROM {_LOG} ORDER BY position DESC LIMIT 1")
        last = c.fetchone()
        now = _recorded_text(datetime.now(UTC))
        recorded_at = max(now, last[0]) if last is not None else now
        c.executemany(
            f"INSERT INTO {_LOG} (position, event_id, digest, recorded_at) VALUES (?, ?, ?, ?)",
            [
                (position, entry.event_id, entry.digest, recorded_at)
                for position, entry in zip(positions, log_entries, strict=True)
            ],
        )
        c.executemany(
            f"INSERT INTO {_REFS} (kind, key, invoice_id) VALUES (?, ?, ?)",
            [(ref.kind, ref.key, ref.invoice_id) for ref in references],
        )
        self._change_keys(c, stored_events, positions, recorded_at, kwargs.get(SEALING_KEYS, ()))
        return positions

    def _check_decided_on(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], decided_on: Mapping[UUID, int]
    ) -> None:
        """Refuse the write if an aggregate the batch was decided on has events of a later
        version than it saw, besides the batch's own (just inserted, from that version on)."""
        written = Counter(event.originator_id for event in stored_events)
        wanted = list(decided_on)
        for start in range(0, len(wanted), _IDS_A_QUERY):
            chunk = wanted[start : start + _IDS_A_QUERY]
            c.execute(
                f"SELECT originator_id, max(originator_version) FROM {self.events_table_name}"
                f" WHERE originator_id IN ({', '.join('?' * len(chunk))}) GROUP BY originator_id",
                [aggregate_id.hex for aggregate_id in chunk],
            )
            for hex_id, newest in c.fetchall():
                aggregate_id = UUID(hex_id)
                if newest > decided_on[aggregate_id] + written[aggregate_id]:
                    raise IntegrityError("an aggregate of the batch moved on after it was decided")

    def _change_keys(
        self,
        c: SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        positions: Sequence[int],
        recorded_at: str,
        changes: Sequence[SealingKeyChange],
    ) -> None:
        """New customers' keys, and erasures (the key overwritten with zeros in the file)."""
        if not changes:
            return
        position_of = {
            (event.originator_id, event.originator_version): position
            for event, position in zip(stored_events, positions, strict=True)
        }
        c.execute("PRAGMA secure_delete = ON")
        for change in changes:
            if change.key is not None:
                c.execute(
                    f"INSERT INTO {_KEYS} (customer_id, key) VALUES (?, ?)",
                    (change.customer_id, change.key),
                )
                continue
            c.execute(
                f"INSERT INTO {_KEYS} (customer_id, key, erased_position, erased_at)"
                " VALUES (?, NULL, ?, ?) ON CONFLICT (customer_id) DO UPDATE SET key = NULL,"
                " erased_position = excluded.erased_position, erased_at = excluded.erased_at",
                (
                    change.customer_id,
                    position_of[(change.originator_id, change.originator_version)],
                    recorded_at,
                ),
            )

    def reseal(self, events: Sequence[Resealed], keys: Mapping[str, bytes]) -> None:
        with self.datastore.transaction(commit=True) as c:
            # The plain states are overwritten with zeros in the file, not only unlinked.
            c.execute("PRAGMA secure_delete = ON")
            c.executemany(
                f"UPDATE {self.events_table_name} SET state = ?"
                " WHERE originator_id = ? AND originator_version = ?",
                [(e.state, e.originator_id.hex, e.originator_version) for e in events],
            )
            c.executemany(
                f"UPDATE {_LOG} SET digest = ? WHERE position = ?",
                [(e.digest, e.position) for e in events],
            )
            c.executemany(f"INSERT INTO {_KEYS} (customer_id, key) VALUES (?, ?)", keys.items())
        self._empty_write_ahead_log()

    def find_appended(self, event_ids: Collection[str]) -> Mapping[str, PriorAppend]:
        ids = list(event_ids)
        if not ids:
            return {}
        rows = self._fetch(
            f"SELECT event_id, digest, position FROM {_LOG}"
            f" WHERE event_id IN ({','.join('?' * len(ids))})",
            ids,
        )
        return {row["event_id"]: PriorAppend(bytes(row["digest"]), row["position"]) for row in rows}

    def read_batch_context(
        self,
        event_ids: Collection[str],
        reference_keys: Collection[tuple[str, str]],
        known_versions: Mapping[UUID, int],
        customer_ids: Collection[str] = (),
    ) -> BatchContext:
        return BatchContext(
            prior=self.find_appended(event_ids),
            references=self._find_invoice_references(reference_keys),
            stored_events=self.select_aggregates_events(known_versions),
            keys=self.sealing_keys(customer_ids),
        )

    def sealing_keys(self, customer_ids: Collection[str]) -> Mapping[str, bytes | None]:
        ids = list(customer_ids)
        if not ids:
            return {}
        wanted = ",".join("?" * len(ids))
        rows = self._fetch(
            f"SELECT customer_id, key FROM {_KEYS} WHERE customer_id IN ({wanted})", ids
        )
        return {
            row["customer_id"]: None if row["key"] is None else bytes(row["key"]) for row in rows
        }

    def _find_invoice_references(
        self, keys: Collection[tuple[str, str]]
    ) -> Mapping[tuple[str, str], str]:
        if not keys:
            return {}
        pairs = list(keys)
        rows = self._fetch(
            f"SELECT kind, key, invoice_id FROM {_REFS}"
            f" WHERE (kind, key) IN (VALUES {','.join(['(?, ?)'] * len(pairs))})",
            [value for pair in pairs for value in pair],
        )
        return {(row["kind"], row["key"]): row["invoice_id"] for row in rows}

    def select_aggregates_events(self, known_versions: Mapping[UUID, int]) -> Sequence[StoredEvent]:
        if not known_versions:
            return []
        rows = self._fetch(
            "WITH known(id, version) AS"
            f" (VALUES {','.join(['(?, ?)'] * len(known_versions))})"
            " SELECT e.originator_id, e.originator_version, e.topic, e.state"
            f" FROM known JOIN {self.events_table_name} AS e"
            "  ON e.originator_id = known.id AND e.originator_version > known.version"
            " ORDER BY e.originator_id, e.originator_version",
            [value for pair in known_versions.items() for value in (pair[0].hex, pair[1])],
        )
        return [
            StoredEvent(
                originator_id=self.convert_originator_id(row["originator_id"]),
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=row["state"],
            )
            for row in rows
        ]

    def read_log(self, after: int, limit: int) -> Sequence[LogRecord]:
        rows = self._fetch(
            "SELECT e.rowid AS position, e.originator_id, e.originator_version, e.topic, e.state,"
            " l.event_id, l.recorded_at"
            f" FROM {self.events_table_name} AS e JOIN {_LOG} AS l ON l.position = e.rowid"
            " WHERE e.rowid > ? ORDER BY e.rowid LIMIT ?",
            [after, limit],
        )
        return [
            LogRecord(
                Notification(
                    id=row["position"],
                    originator_id=self.convert_originator_id(row["originator_id"]),
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=row["state"],
                ),
                row["event_id"],
                datetime.fromisoformat(row["recorded_at"]),
            )
            for row in rows
        ]

    def read_notifications(
        self, after: int, upto: int, limit: int, topics: Collection[str]
    ) -> Sequence[Notification]:
        wanted = list(topics)
        rows = self._fetch(
            "SELECT rowid, originator_id, originator_version, topic, state"
            f" FROM {self.events_table_name} WHERE rowid > ? AND rowid <= ?"
            f" AND topic IN ({','.join('?' * len(wanted))}) ORDER BY rowid LIMIT ?",
            [after, upto, *wanted, limit],
        )
        return [
            Notification(
                id=row["rowid"],
                originator_id=self.convert_originator_id(row["originator_id"]),
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=row["state"],
            )
            for row in rows
        ]

    def read_aggregate_notifications(
        self, originator_id: UUID, upto: int
    ) -> Sequence[Notification]:
        rows = self._fetch(
            "SELECT rowid, originator_id, originator_version, topic, state"
            f" FROM {self.events_table_name} WHERE originator_id = ? AND rowid <= ?"
            " ORDER BY originator_version",
            [originator_id.hex, upto],
        )
        return [
            Notification(
                id=row["rowid"],
                originator_id=self.convert_originator_id(row["originator_id"]),
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=row["state"],
            )
            for row in rows
        ]

    def last_position(self) -> int:
        return self.max_notification_id() or 0

    def position_at(self, instant: datetime) -> int:
        rows = self._fetch(
            f"SELECT position FROM {_LOG} WHERE recorded_at <= ?"
            " ORDER BY recorded_at DESC, position DESC LIMIT 1",
            [_recorded_text(instant)],
        )
        return int(rows[0]["position"]) if rows else 0

    def _fetch(self, statement: str, params: Sequence[Any]) -> list[Any]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, params)
            rows: list[Any] = c.fetchall()
            return rows


class SQLiteStoreFactory(SQLiteFactory):
    application_recorder_class = SQLiteLedgerRecorder
