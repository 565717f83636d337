"""The ledger's event store on PostgreSQL (psycopg 3, binary, pooled).

The library's recorder writes each batch under `LOCK TABLE ... IN EXCLUSIVE MODE`, so positions
arrive in commit order. This recorder adds, inside that same locked transaction:
- `<app>_log`: one row per event (position, the sender's event id under a unique constraint, the
  digest of its body, and `recorded_at`, taken under the lock so it never decreases);
- `<app>_invoice_refs`: payment, refund and credit-note ids and the invoice each lives in.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore, PostgresFactory
from psycopg import Cursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composed, Identifier

from domain.ports import (
    INVOICE_REFERENCES,
    LOG_ENTRIES,
    BatchContext,
    InvoiceReference,
    LogEntry,
    LogRecord,
    PriorAppend,
)


class PostgresLedgerRecorder(PostgresApplicationRecorder):
    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        prefix = events_table_name.removesuffix("_events")
        self.log_table_name = f"{prefix}_log"
        self.refs_table_name = f"{prefix}_invoice_refs"
        for name in (self.log_table_name, self.refs_table_name):
            self.check_identifier_length(name)
        self._statements: dict[str, Composed] = {}
        # One simple-protocol round trip: open the transaction and take the library's lock.
        self._begin_and_lock = Composed(
            [
                SQL("BEGIN; SET LOCAL lock_timeout = '{0}s'; ").format(datastore.lock_timeout),
                SQL("LOCK TABLE {0} IN EXCLUSIVE MODE; ").format(self._sql("{events}")),
                SQL("NOTIFY {0}").format(Identifier(self.channel_name)),
            ]
        )
        self.sql_create_statements.extend(
            [
                self._sql(
                    "CREATE TABLE IF NOT EXISTS {log} ("
                    " position bigint PRIMARY KEY,"
                    " event_id text NOT NULL UNIQUE,"
                    " digest bytea NOT NULL,"
                    " recorded_at timestamptz NOT NULL)"
                ),
                self._sql(
                    "CREATE INDEX IF NOT EXISTS {log_recorded_at_idx} ON {log} (recorded_at)"
                ),
                self._sql(
                    "CREATE TABLE IF NOT EXISTS {refs} ("
                    " kind text NOT NULL,"
                    " key text NOT NULL,"
                    " invoice_id text NOT NULL,"
                    " PRIMARY KEY (kind, key))"
                ),
            ]
        )

    def _sql(self, template: str) -> Composed:
        """`template` with `{events}`, `{log}` and `{refs}` naming this store's tables."""
        cached = self._statements.get(template)
        if cached is not None:
            return cached
        schema = Identifier(self.datastore.schema)
        statement = SQL(template).format(
            events=Composed([schema, SQL("."), Identifier(self.events_table_name)]),
            log=Composed([schema, SQL("."), Identifier(self.log_table_name)]),
            refs=Composed([schema, SQL("."), Identifier(self.refs_table_name)]),
            log_recorded_at_idx=Identifier(f"{self.log_table_name}_recorded_at_idx"),
        )
        self._statements[template] = statement
        return statement

    def create_table(self) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(Identifier(self.datastore.schema))
            )
        super().create_table()

    # Writing: beside the events, in the same transaction and under the same lock.

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int]:
        """The events, their log rows and their invoice references, in one transaction under the
        library's table lock, in three round trips (begin and lock; insert; commit).

        The library's own insert sends a composite-type array (psycopg escapes each `bytea` of
        it as text) through pipeline mode; one statement with binary arrays, in which the log
        rows take their positions from the events' RETURNING, costs a fraction of that.
        """
        log_entries: Sequence[LogEntry] = kwargs.get(LOG_ENTRIES, ())
        references: Sequence[InvoiceReference] = kwargs.get(INVOICE_REFERENCES, ())
        if len(log_entries) != len(stored_events):
            raise ValueError("every event is written with its log entry")
        originator_ids = [event.originator_id for event in stored_events]
        versions = [event.originator_version for event in stored_events]
        parameters = (
            originator_ids,
            versions,
            [event.topic for event in stored_events],
            [event.state for event in stored_events],
            originator_ids,
            versions,
            [entry.event_id for entry in log_entries],
            [entry.digest for entry in log_entries],
            [reference.kind for reference in references],
            [reference.key for reference in references],
            [reference.invoice_id for reference in references],
        )
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            try:
                cursor.execute(self._begin_and_lock)
                cursor.execute(self._sql(self._INSERT), parameters, prepare=True)
                positions = [row["notification_id"] for row in cursor.fetchall()]
                cursor.execute("COMMIT")
            except BaseException:
                if not connection.broken:
                    connection.rollback()
                raise
        return positions

    # Positions are assigned in the order the rows are given, so sorted they follow it.
    _INSERT = (
        "WITH new_events AS ("
        "  INSERT INTO {events} (originator_id, originator_version, topic, state)"
        "  SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[])"
        "  RETURNING notification_id, originator_id, originator_version"
        "), clock AS ("
        "  SELECT greatest(clock_timestamp(), coalesce("
        "   (SELECT recorded_at FROM {log} ORDER BY position DESC LIMIT 1),"
        "   '-infinity')) AS now"
        "), new_log AS ("
        "  INSERT INTO {log} (position, event_id, digest, recorded_at)"
        "  SELECT new_events.notification_id, entry.event_id, entry.digest, clock.now"
        "  FROM new_events"
        "  JOIN unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[])"
        "   AS entry(originator_id, originator_version, event_id, digest)"
        "   USING (originator_id, originator_version)"
        "  CROSS JOIN clock"
        "), new_references AS ("
        "  INSERT INTO {refs} (kind, key, invoice_id)"
        "  SELECT * FROM unnest(%b::text[], %b::text[], %b::text[])"
        ")"
        " SELECT notification_id FROM new_events ORDER BY notification_id"
    )

    # Reading.

    def find_appended(self, event_ids: Collection[str]) -> Mapping[str, PriorAppend]:
        rows = self._fetch(
            "SELECT event_id, digest, position FROM {log} WHERE event_id = ANY(%s)",
            (list(event_ids),),
        )
        return {row["event_id"]: PriorAppend(bytes(row["digest"]), row["position"]) for row in rows}

    def read_batch_context(
        self,
        event_ids: Collection[str],
        reference_keys: Collection[tuple[str, str]],
        known_versions: Mapping[UUID, int],
    ) -> BatchContext:
        """Up to three reads on one connection, results in binary (a `bytea` in text would be
        hex: twice the bytes, and decoded in Python)."""
        keys = list(reference_keys)
        with (
            self.datastore.get_connection() as connection,
            connection.cursor(row_factory=tuple_row, binary=True) as cursor,
        ):
            cursor.execute(
                self._sql("SELECT event_id, digest, position FROM {log} WHERE event_id = ANY(%s)"),
                (list(event_ids),),
            )
            prior = {
                event_id: PriorAppend(digest, position)
                for event_id, digest, position in cursor.fetchall()
            }
            references: dict[tuple[str, str], str] = {}
            if keys:
                cursor.execute(
                    self._sql(
                        "SELECT refs.kind, refs.key, refs.invoice_id FROM {refs} AS refs"
                        " JOIN unnest(%s::text[], %s::text[]) AS wanted(kind, key)"
                        " ON refs.kind = wanted.kind AND refs.key = wanted.key"
                    ),
                    ([kind for kind, _ in keys], [key for _, key in keys]),
                )
                references = {(kind, key): invoice for kind, key, invoice in cursor.fetchall()}
            stored_events = self._select_aggregates_events(cursor, known_versions)
        return BatchContext(prior, references, stored_events)

    def select_aggregates_events(self, known_versions: Mapping[UUID, int]) -> Sequence[StoredEvent]:
        with (
            self.datastore.get_connection() as connection,
            connection.cursor(row_factory=tuple_row, binary=True) as cursor,
        ):
            return self._select_aggregates_events(cursor, known_versions)

    def _select_aggregates_events(
        self, cursor: Cursor[tuple[Any, ...]], known_versions: Mapping[UUID, int]
    ) -> list[StoredEvent]:
        if not known_versions:
            return []
        cursor.execute(
            self._sql(
                "SELECT e.originator_id, e.originator_version, e.topic, e.state"
                " FROM unnest(%b::uuid[], %b::bigint[]) AS known(id, version)"
                " JOIN {events} AS e"
                "  ON e.originator_id = known.id AND e.originator_version > known.version"
                " ORDER BY e.originator_id, e.originator_version"
            ),
            (list(known_versions), list(known_versions.values())),
        )
        return [StoredEvent(*row) for row in cursor.fetchall()]

    def read_log(self, after: int, limit: int) -> Sequence[LogRecord]:
        rows = self._fetch(
            "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state,"
            " l.event_id, l.recorded_at"
            " FROM {events} AS e JOIN {log} AS l ON l.position = e.notification_id"
            " WHERE e.notification_id > %s ORDER BY e.notification_id LIMIT %s",
            (after, limit),
        )
        return [
            LogRecord(
                Notification(
                    id=row["notification_id"],
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                ),
                row["event_id"],
                row["recorded_at"],
            )
            for row in rows
        ]

    def last_position(self) -> int:
        return self.max_notification_id() or 0

    def ping(self) -> None:
        self._fetch("SELECT 1", ())

    def _fetch(self, template: str, params: Sequence[Any]) -> list[DictRow]:
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(self._sql(template), params, prepare=True)
            return cursor.fetchall()


class PostgresStoreFactory(PostgresFactory):
    application_recorder_class = PostgresLedgerRecorder
