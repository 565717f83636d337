"""The ledger's event store on PostgreSQL (psycopg 3, binary, pooled).

Beside the library's `<app>_events` table (whose `notification_id` is the position), it keeps:
- `<app>_log`: one row per event (position, the sender's event id under a unique constraint, the
  digest of its body, and `recorded_at`, taken under the lock so it never decreases);
- `<app>_invoice_refs`: payment, refund and credit-note ids and the invoice each lives in;
- `<app>_customer_keys`: each customer's key, which seals its personal data, made with its first
  event and destroyed by its erasure (the row stays, key NULL, with the erasure's position and
  time).
All four are written by one call of `<app>_append`, which takes the library's
`LOCK TABLE ... IN EXCLUSIVE MODE` first, so positions arrive in commit order as with the
library's own insert, and the whole batch is one transaction and one round trip.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import suppress
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore, PostgresFactory
from eventsourcing.utils import Environment, EnvType
from psycopg import Connection, Cursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composed, Identifier, Literal

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


class PostgresLedgerRecorder(PostgresApplicationRecorder):
    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        prefix = events_table_name.removesuffix("_events")
        self.log_table_name = f"{prefix}_log"
        self.refs_table_name = f"{prefix}_invoice_refs"
        self.keys_table_name = f"{prefix}_customer_keys"
        for name in (self.log_table_name, self.refs_table_name, self.keys_table_name):
            self.check_identifier_length(name)
        self.append_function_name = f"{prefix}_append"
        self.check_identifier_length(self.append_function_name)
        self._statements: dict[str, Composed] = {}
        self._statement_bytes: dict[str, bytes] = {}
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
                self._sql(
                    "CREATE TABLE IF NOT EXISTS {keys} ("
                    " customer_id text PRIMARY KEY,"
                    " key bytea,"
                    " erased_position bigint,"
                    " erased_at timestamptz,"
                    " CHECK ((key IS NULL) = (erased_position IS NOT NULL)))"
                ),
                # The function of releases before the write checked the versions a batch was
                # decided on (its arguments without the two arrays of them).
                self._sql(
                    "DROP FUNCTION IF EXISTS {append}(uuid[], bigint[], text[], bytea[],"
                    " text[], bytea[], text[], text[], text[], text[], uuid[], bigint[],"
                    " bytea[], text)"
                ),
                self._sql(self._CREATE_APPEND_FUNCTION),
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
            keys=Composed([schema, SQL("."), Identifier(self.keys_table_name)]),
            log_recorded_at_idx=Identifier(f"{self.log_table_name}_recorded_at_idx"),
            append=Composed([schema, SQL("."), Identifier(self.append_function_name)]),
            channel=Literal(self.channel_name),
        )
        self._statements[template] = statement
        return statement

    def _bytes(self, template: str, connection: Connection[Any]) -> bytes:
        """`_sql(template)` as the bytes sent: psycopg would render the identifiers again at
        every execution (a tenth of a single event's time in Python)."""
        cached = self._statement_bytes.get(template)
        if cached is None:
            cached = self._statement_bytes[template] = self._sql(template).as_bytes(connection)
        return cached

    def _create_table(self, curs: Cursor[DictRow]) -> None:
        # Several processes may start at once; CREATE OR REPLACE FUNCTION is not safe to race.
        curs.execute("SELECT pg_advisory_xact_lock(hashtext('subledger schema'))")
        super()._create_table(curs)

    def create_table(self) -> None:
        # Two processes creating the same schema at once: one of them is told it exists.
        with suppress(IntegrityError), self.datastore.transaction(commit=True) as curs:
            curs.execute(
                SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(Identifier(self.datastore.schema))
            )
        super().create_table()

    # Writing: beside the events, in the same transaction and under the same lock.

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int]:
        """The events, their log rows and their invoice references, in one transaction under the
        library's table lock: one statement, one round trip (see `_CREATE_APPEND_FUNCTION`)."""
        log_entries: Sequence[LogEntry] = kwargs.get(LOG_ENTRIES, ())
        references: Sequence[InvoiceReference] = kwargs.get(INVOICE_REFERENCES, ())
        keys: Sequence[SealingKeyChange] = kwargs.get(SEALING_KEYS, ())
        decided_on: Mapping[UUID, int] = kwargs.get(DECIDED_ON, {})
        if len(log_entries) != len(stored_events):
            raise ValueError("every event is written with its log entry")
        parameters = (
            [event.originator_id for event in stored_events],
            [event.originator_version for event in stored_events],
            [event.topic for event in stored_events],
            [event.state for event in stored_events],
            [entry.event_id for entry in log_entries],
            [entry.digest for entry in log_entries],
            [reference.kind for reference in references],
            [reference.key for reference in references],
            [reference.invoice_id for reference in references],
            [change.customer_id for change in keys],
            [change.originator_id for change in keys],
            [change.originator_version for change in keys],
            [change.key for change in keys],
            list(decided_on),
            list(decided_on.values()),
            f"{self.datastore.lock_timeout}s",
        )
        with (
            self.datastore.get_connection() as connection,
            connection.cursor(row_factory=tuple_row) as cursor,
        ):
            cursor.execute(self._bytes(self._APPEND, connection), parameters, prepare=True)
            return [position for (position,) in cursor.fetchall()]

    _APPEND = (
        "SELECT * FROM {append}(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[],"
        " %b::text[], %b::bytea[], %b::text[], %b::text[], %b::text[],"
        " %b::text[], %b::uuid[], %b::bigint[], %b::bytea[], %b::uuid[], %b::bigint[],"
        " %b::text)"
    )

    # Called on a connection in autocommit mode, the statement is its own transaction: the
    # library's table lock is taken before any position is drawn and held until the commit, so
    # positions arrive in commit order, as the library's own insert guarantees. The events, as
    # binary arrays (the library's composite-type array makes psycopg escape each `bytea` as
    # text), their log rows (taking their positions from the events' RETURNING), the
    # invoice references and the customers' new keys and erasures go in one statement, so an
    # event is never written without its key, nor an erasure with its key alive. (One
    # statement does not touch a row twice: a batch changes each customer's key once.)
    # Positions are drawn in the order the rows are given, so sorted they follow it. Under the
    # lock, before anything is written, the aggregates the batch was decided on are checked
    # to be at the versions it saw (an index probe each): if any moved on, the batch is
    # refused as an integrity violation and decided again.
    _CREATE_APPEND_FUNCTION = (
        "CREATE OR REPLACE FUNCTION {append}("
        " ids uuid[], versions bigint[], topics text[], states bytea[],"
        " event_ids text[], digests bytea[],"
        " ref_kinds text[], ref_keys text[], ref_invoices text[],"
        " key_customers text[], key_ids uuid[], key_versions bigint[], key_values bytea[],"
        " decided_ids uuid[], decided_versions bigint[], lock_timeout text)"
        " RETURNS SETOF bigint LANGUAGE plpgsql AS $body$"
        " BEGIN"
        "  PERFORM set_config('lock_timeout', lock_timeout, true);"
        "  LOCK TABLE {events} IN EXCLUSIVE MODE;"
        "  IF EXISTS (SELECT FROM unnest(decided_ids, decided_versions) AS seen(id, version)"
        "   CROSS JOIN LATERAL (SELECT FROM {events} WHERE originator_id = seen.id"
        "    AND originator_version > seen.version LIMIT 1) AS newer) THEN"
        "   RAISE EXCEPTION 'an aggregate of the batch moved on after it was decided'"
        "    USING ERRCODE = 'integrity_constraint_violation';"
        "  END IF;"
        "  PERFORM pg_notify({channel}, '');"
        "  RETURN QUERY"
        "  WITH new_events AS ("
        "   INSERT INTO {events} (originator_id, originator_version, topic, state)"
        "   SELECT * FROM unnest(ids, versions, topics, states)"
        "   RETURNING notification_id, originator_id, originator_version"
        "  ), clock AS ("
        "   SELECT greatest(clock_timestamp(), coalesce("
        "    (SELECT recorded_at FROM {log} ORDER BY position DESC LIMIT 1),"
        "    '-infinity')) AS now"
        "  ), new_log AS ("
        "   INSERT INTO {log} (position, event_id, digest, recorded_at)"
        "   SELECT new_events.notification_id, entry.event_id, entry.digest, clock.now"
        "   FROM new_events"
        "   JOIN unnest(ids, versions, event_ids, digests)"
        "    AS entry(originator_id, originator_version, event_id, digest)"
        "    USING (originator_id, originator_version)"
        "   CROSS JOIN clock"
        "  ), new_references AS ("
        "   INSERT INTO {refs} (kind, key, invoice_id)"
        "   SELECT * FROM unnest(ref_kinds, ref_keys, ref_invoices)"
        "  ), changed_keys AS ("
        "   SELECT change.customer_id, change.key, new_events.notification_id"
        "   FROM unnest(key_customers, key_ids, key_versions, key_values)"
        "    AS change(customer_id, originator_id, originator_version, key)"
        "   JOIN new_events USING (originator_id, originator_version)"
        "  ), new_keys AS ("
        "   INSERT INTO {keys} (customer_id, key)"
        "   SELECT customer_id, key FROM changed_keys WHERE key IS NOT NULL"
        "  ), erased_keys AS ("
        "   INSERT INTO {keys} (customer_id, key, erased_position, erased_at)"
        "   SELECT customer_id, NULL, notification_id, clock.now"
        "   FROM changed_keys CROSS JOIN clock WHERE key IS NULL"
        "   ON CONFLICT (customer_id) DO UPDATE SET key = NULL,"
        "    erased_position = excluded.erased_position, erased_at = excluded.erased_at"
        "  )"
        "  SELECT new_events.notification_id FROM new_events"
        "  ORDER BY new_events.notification_id;"
        " END"
        " $body$"
    )

    def reseal(self, events: Sequence[Resealed], keys: Mapping[str, bytes]) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.executemany(
                self._sql(
                    "UPDATE {events} SET state = %s"
                    " WHERE originator_id = %s AND originator_version = %s"
                ),
                [(e.state, e.originator_id, e.originator_version) for e in events],
            )
            cursor.executemany(
                self._sql("UPDATE {log} SET digest = %s WHERE position = %s"),
                [(e.digest, e.position) for e in events],
            )
            cursor.executemany(
                self._sql("INSERT INTO {keys} (customer_id, key) VALUES (%s, %s)"),
                list(keys.items()),
            )

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
        customer_ids: Collection[str] = (),
    ) -> BatchContext:
        """The four reads as one prepared statement, parameters and results in binary (a
        `bytea` in text would be hex: twice the bytes, decoded in Python). Measured on a batch
        of 1,000, this takes a third of the time of three separate queries.

        Each wanted key is looked up by its own index probe (a `LATERAL` subquery that the
        planner cannot turn into a join: `LIMIT 1` on the unique keys, `OFFSET 0` on the
        events), whatever the planner believes of the tables' sizes. As plain joins and
        `= ANY(...)`, a table never analyzed (autovacuum off, or not yet run) was read whole
        for every batch, so appending slowed down as the tables grew (docs/benchmarks.md)."""
        _, parameters = self.read_batch_statement(
            event_ids, reference_keys, known_versions, customer_ids
        )
        with (
            self.datastore.get_connection() as connection,
            connection.cursor(row_factory=tuple_row, binary=True) as cursor,
        ):
            cursor.execute(self._bytes(self._READ_BATCH, connection), parameters, prepare=True)
            rows = cursor.fetchall()
        prior: dict[str, PriorAppend] = {}
        references: dict[tuple[str, str], str] = {}
        stored_events: list[StoredEvent] = []
        keys: dict[str, bytes | None] = {}
        for what, originator_id, number, text, invoice_id, data in rows:
            if what == 1:
                prior[text] = PriorAppend(data, number)
            elif what == 2:
                kind, key = text.split(" ", 1)
                references[(kind, key)] = invoice_id
            elif what == 3:
                stored_events.append(StoredEvent(originator_id, number, text, data))
            else:
                keys[text] = data
        return BatchContext(prior, references, stored_events, keys)

    def read_batch_statement(
        self,
        event_ids: Collection[str],
        reference_keys: Collection[tuple[str, str]],
        known_versions: Mapping[UUID, int],
        customer_ids: Collection[str] = (),
    ) -> tuple[Composed, tuple[list[Any], ...]]:
        """`read_batch_context`'s statement and its parameters (bench/append_growth.py
        explains it)."""
        wanted = list(reference_keys)
        statement = self._sql(self._READ_BATCH)
        return statement, (
            list(event_ids),
            [kind for kind, _ in wanted],
            [key for _, key in wanted],
            list(known_versions),
            list(known_versions.values()),
            list(customer_ids),
        )

    _READ_BATCH = (
        "SELECT 1 AS what, NULL::uuid, log.position, wanted.event_id, NULL,"
        " log.digest"
        " FROM unnest(%b::text[]) AS wanted(event_id)"
        " CROSS JOIN LATERAL (SELECT position, digest FROM {log}"
        "  WHERE event_id = wanted.event_id LIMIT 1) AS log"
        " UNION ALL"
        " SELECT 2, NULL, NULL, wanted.kind || ' ' || wanted.key, refs.invoice_id, NULL"
        " FROM unnest(%b::text[], %b::text[]) AS wanted(kind, key)"
        " CROSS JOIN LATERAL (SELECT invoice_id FROM {refs}"
        "  WHERE kind = wanted.kind AND key = wanted.key LIMIT 1) AS refs"
        " UNION ALL"
        " SELECT 3, e.originator_id, e.originator_version, e.topic, NULL, e.state"
        " FROM unnest(%b::uuid[], %b::bigint[]) AS known(id, version)"
        " CROSS JOIN LATERAL (SELECT originator_id, originator_version, topic, state"
        "  FROM {events} WHERE originator_id = known.id"
        "  AND originator_version > known.version OFFSET 0) AS e"
        " UNION ALL"
        " SELECT 4, NULL, NULL, wanted.customer_id, NULL, keys.key"
        " FROM unnest(%b::text[]) AS wanted(customer_id)"
        " CROSS JOIN LATERAL (SELECT key FROM {keys}"
        "  WHERE customer_id = wanted.customer_id LIMIT 1) AS keys"
        " ORDER BY 1, 2, 3"
    )

    def sealing_keys(self, customer_ids: Collection[str]) -> Mapping[str, bytes | None]:
        rows = self._fetch(
            "SELECT customer_id, key FROM {keys} WHERE customer_id = ANY(%s)", (list(customer_ids),)
        )
        return {
            row["customer_id"]: None if row["key"] is None else bytes(row["key"]) for row in rows
        }

    def select_aggregates_events(self, known_versions: Mapping[UUID, int]) -> Sequence[StoredEvent]:
        with (
            self.datastore.get_connection() as connection,
            connection.cursor(row_factory=tuple_row, binary=True) as cursor,
        ):
            cursor.execute(
                self._sql(
                    "SELECT e.originator_id, e.originator_version, e.topic, e.state"
                    " FROM unnest(%b::uuid[], %b::bigint[]) AS known(id, version)"
                    " CROSS JOIN LATERAL (SELECT originator_id, originator_version, topic, state"
                    "  FROM {events} WHERE originator_id = known.id"
                    "  AND originator_version > known.version OFFSET 0) AS e"
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

    def read_notifications(
        self, after: int, upto: int, limit: int, topics: Collection[str]
    ) -> Sequence[Notification]:
        with (
            self.datastore.get_connection() as connection,
            connection.cursor(row_factory=tuple_row, binary=True) as cursor,
        ):
            cursor.execute(
                self._sql(
                    "SELECT notification_id, originator_id, originator_version, topic, state"
                    " FROM {events} WHERE notification_id > %b AND notification_id <= %b"
                    " AND topic = ANY(%b::text[]) ORDER BY notification_id LIMIT %b"
                ),
                (after, upto, list(topics), limit),
                prepare=True,
            )
            return [
                Notification(
                    id=position,
                    originator_id=originator_id,
                    originator_version=version,
                    topic=topic,
                    state=state,
                )
                for position, originator_id, version, topic, state in cursor.fetchall()
            ]

    def read_aggregate_notifications(
        self, originator_id: UUID, upto: int
    ) -> Sequence[Notification]:
        rows = self._fetch(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {events}"
            " WHERE originator_id = %s AND notification_id <= %s ORDER BY originator_version",
            (originator_id, upto),
        )
        return [
            Notification(
                id=row["notification_id"],
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            for row in rows
        ]

    def last_position(self) -> int:
        # Not the library's `max_notification_id()`: it tries ten times, each time waiting for a
        # connection up to the connect timeout, so with the database down `/health` and every
        # read took ten times that to say so.
        rows = self._fetch("SELECT max(notification_id) AS last FROM {events}", ())
        return int(rows[0]["last"] or 0)

    def position_at(self, instant: datetime) -> int:
        rows = self._fetch(
            "SELECT position FROM {log} WHERE recorded_at <= %s"
            " ORDER BY recorded_at DESC, position DESC LIMIT 1",
            (instant,),
        )
        return int(rows[0]["position"]) if rows else 0

    def _fetch(self, template: str, params: Sequence[Any]) -> list[DictRow]:
        with self.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(self._sql(template), params, prepare=True)
            return cursor.fetchall()


#: How long the connection pool retries a lost connection before it gives the attempt up, in
#: seconds (see `PostgresStoreFactory`).
RECONNECT_SECONDS = 2.0


class PostgresStoreFactory(PostgresFactory):
    application_recorder_class = PostgresLedgerRecorder

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        # psycopg_pool retries a lost connection with a delay that doubles after each failure
        # (1, 2, 4 ... s) for five minutes, so after an outage of a minute the service waited up
        # to another minute before it noticed the database was back. Giving each attempt up
        # after a few seconds lets the next request that needs a connection make one at once.
        self.datastore.pool.reconnect_timeout = RECONNECT_SECONDS
        # The ledger's statements each touch a few index entries a key. PostgreSQL's JIT
        # compiles any statement whose estimate passes `jit_above_cost`, as a batch's read did
        # on tables never analyzed: 0.2 to 1 s of compiling for a read of 20 ms. And a
        # prepared statement is planned again at every execution while its generic plan is
        # estimated dearer than the plans for the values given, which for a single event's
        # read was always: half its time. Their generic plans are the index probes they are
        # written for.
        kwargs = self.datastore.pool.kwargs
        if isinstance(kwargs, dict):
            options = (
                f"{kwargs.get('options', '')} -c jit=off -c plan_cache_mode=force_generic_plan"
            )
            kwargs["options"] = options.strip()
