"""A customer's sync status and resend (`GET /v1/sync/customers/{id}`,
`POST /v1/sync/customers/{id}/resend`: `DeliveryLog.of_lane`, `health(lane)`, `resend_lane`)
find the customer's messages through an index on the lane, at every target, rather than by
reading the whole delivery log: on SQLite and on PostgreSQL, each statement these run that
picks messages by lane is explained, in its own transaction and with its own parameters,
just before it runs, and its plan must name the index (or, for a statement of the waiting
messages only, their own partial index, which holds no others). PostgreSQL's planner may
prefer to read a small table whole, so sequential scans are turned off in those
transactions: the question is whether the index can serve the statement. A delivery log of
release 0.1 (tests/fixtures/stores) gets the index when the service starts on it."""

from __future__ import annotations

import gzip
import re
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient

from subledger.adapters.store import store_env
from subledger.adapters.sync.log import DeliveryLog, NewMessage
from subledger.adapters.sync.log_database import DeliveryDatabase
from subledger.api.http.app import create_app
from subledger.api.settings import Settings
from subledger.api.sync import delivery_log_for
from subledger.domain.ledger import Ledger
from tests.conftest import API_KEYS

INDEX = "sync_messages_lane"
#: The partial index of the waiting messages (a migration's), which a statement of those may use.
WAITING = "sync_messages_waiting"
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
#: A statement that picks messages by lane (the log's SQL, `%(lane)s` its parameter).
BY_LANE = re.compile(r"\blane = %\(lane\)s")


class Explained:
    """A statement and its plan, as the database explained it."""

    def __init__(self, sql: str, plan: str) -> None:
        self.sql, self.plan = sql, plan


class _ExplainingStatements:
    """A transaction's statements, each one that picks messages by lane explained first, with
    the same parameters, in the same transaction; then run as it is."""

    def __init__(self, statements: Any, postgres: bool, explained: list[Explained]) -> None:
        self.statements, self.postgres, self.explained = statements, postgres, explained

    def run(self, sql: str, **parameters: Any) -> list[dict[str, Any]]:
        if BY_LANE.search(sql):
            if self.postgres:
                [row] = self.statements.run(f"EXPLAIN (FORMAT JSON) {sql}", **parameters)
                plan = orjson.dumps(next(iter(row.values()))).decode()
            else:
                rows = self.statements.run(f"EXPLAIN QUERY PLAN {sql}", **parameters)
                plan = "\n".join(str(row["detail"]) for row in rows)
            self.explained.append(Explained(sql, plan))
        return self.statements.run(sql, **parameters)


class ExplainingDatabase:
    """The delivery log's own database, its statements by lane explained as they run."""

    def __init__(self, database: DeliveryDatabase) -> None:
        self.database = database
        self.postgres = database.postgres
        self.explained: list[Explained] = []

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[_ExplainingStatements]:
        with self.database.transaction(durable) as statements:
            if self.postgres:
                statements.run("SET LOCAL enable_seqscan = off")
            yield _ExplainingStatements(statements, self.postgres, self.explained)


@pytest.fixture
def delivery(database_url: str) -> Iterator[DeliveryLog]:
    """A delivery log holding two customers' messages (a contact and an invoice) at two
    targets."""
    ledger = Ledger(store_env(database_url))
    made = delivery_log_for(ledger)  # the tables and their indexes, as on start-up
    messages = [
        NewMessage(
            id=f"{target}-{lane}-{seq}",
            target=target,
            lane=lane,
            seq=seq,
            kind="contact" if seq == 1 else "invoice",
            source=f"evt_{lane}_{seq}",
            dated="2026-01-05",
            payload={"customer": {"customer_id": lane}},
        )
        for target in ("billy", "dinero")
        for lane in ("cus_1", "cus_2")
        for seq in (1, 2)
    ]
    assert made.enqueue(messages, T0) == 8
    yield DeliveryLog(ExplainingDatabase(made.db))  # type: ignore[arg-type]
    ledger.close()


def test_a_customers_status_and_resend_find_its_messages_through_the_lane_index(
    delivery: DeliveryLog,
) -> None:
    database: ExplainingDatabase = delivery.db  # type: ignore[assignment]

    of_lane = delivery.of_lane("cus_1")
    assert [(m.target, m.id) for m in of_lane] == [
        ("billy", "billy-cus_1-1"),
        ("billy", "billy-cus_1-2"),
        ("dinero", "dinero-cus_1-1"),
        ("dinero", "dinero-cus_1-2"),
    ]
    health = delivery.health("cus_1")
    assert {name: found.counts["pending"] for name, found in health.items()} == {
        "billy": 2,
        "dinero": 2,
    }
    assert delivery.resend_lane("cus_1", T0 + timedelta(minutes=1)) == {"billy": 2, "dinero": 2}
    assert delivery.resend_lane("cus_1", T0, target="billy") == {"billy": 2}

    explained = database.explained
    # of_lane 1; health: the counts, the last success, the last error at each target (2);
    # each resend: the update, the waiting ones rechecked, the count (3 each).
    assert len(explained) >= 10, [e.sql for e in explained]
    without = [f"{e.sql}\n  {e.plan}" for e in explained if not served(e)]
    assert without == [], f"statements by lane not served by {INDEX}"


def served(statement: Explained) -> bool:
    """Its plan reads the lane's messages through the lane index; or, for a statement of the
    waiting messages only, through the index of those (which holds no others)."""
    if INDEX in statement.plan:
        return True
    return "status = 'waiting'" in statement.sql and WAITING in statement.plan


#: A store written by release 0.1, the last before the lane index (its delivery log included).
RELEASE_0_1 = Path(__file__).parents[1] / "fixtures" / "stores" / "before-migrations"
INDEXES = "SELECT name FROM sqlite_master WHERE type = 'index'"
PG_INDEXES = "SELECT indexname FROM pg_indexes WHERE tablename = 'sync_messages'"


def test_a_sqlite_delivery_log_of_release_0_1_gets_the_index_on_start_up(tmp_path: Path) -> None:
    copy = tmp_path / "store.sqlite"
    shutil.copyfile(RELEASE_0_1 / "store.sqlite", copy)
    with closing(sqlite3.connect(copy)) as connection:
        assert INDEX not in {row[0] for row in connection.execute(INDEXES)}
    settings = Settings(database_url=f"sqlite:///{copy}", api_keys=API_KEYS)
    with TestClient(create_app(settings)):
        pass  # the service started, and stopped
    with closing(sqlite3.connect(copy)) as connection:
        assert INDEX in {row[0] for row in connection.execute(INDEXES)}


@pytest.mark.postgres
def test_a_postgresql_delivery_log_of_release_0_1_gets_the_index_on_start_up(
    postgres_server_url: str,
) -> None:
    name = f"subledger_lane_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(postgres_server_url)._replace(path=f"/{name}", query=""))
    try:
        dump = gzip.decompress((RELEASE_0_1 / "postgres.sql.gz").read_bytes()).decode()
        script = "\n".join(line for line in dump.splitlines() if not line.startswith("\\"))
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(script.encode())
            assert INDEX not in {row[0] for row in connection.execute(PG_INDEXES)}
        with TestClient(create_app(Settings(database_url=url, api_keys=API_KEYS))):
            pass  # the service started, and stopped
        with psycopg.connect(url, autocommit=True) as connection:
            assert INDEX in {row[0] for row in connection.execute(PG_INDEXES)}
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
