"""A store written by an earlier release is read by this one as that release read it.

Each folder of tests/fixtures/stores holds a business written by an earlier commit's code (its
MADE.txt says which) into SQLite and PostgreSQL, with every projection's rows and the HTTP
answers that code gave (tests/fixtures/stores/make.py). Here today's code opens those stores:
it must upgrade them (the schema migrations they lack, `adapters/migrations`), serve the same
answers from the rows it finds, keep those rows, and fold the very same rows again when every
projection is rebuilt from the log (the rows of a projection whose version changed since are
folded anew on start, laid out as the new version lays them out, and give the same answers). Where the earlier release recorded them, its delivery log
is kept row for row, and a key it made still opens the API.
"""

from __future__ import annotations

import gzip
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient

from subledger.adapters.backends import backend_for
from subledger.api.composition import build_ledger, build_runner
from subledger.api.http.app import create_app
from subledger.api.settings import Settings
from tests.fixtures.stores.make import API_KEYS, answers_of, delivery_rows, rows_of

#: The schema migrations a database has once today's code has opened it: every file of
#: adapters/migrations/versions, by name (read here from the folder, not from yoyo).
MIGRATIONS = sorted(
    path.stem
    for path in (Path(__file__).parents[2] / "adapters" / "migrations" / "versions").glob("*.py")
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "stores"
MADE = sorted(folder.name for folder in FIXTURES.iterdir() if (folder / "MADE.txt").exists())


def restore(dump: bytes, url: str) -> None:
    """Run a plain `pg_dump` script (its psql-only `\\` lines left out) against `url`."""
    script = "\n".join(
        line for line in gzip.decompress(dump).decode().splitlines() if not line.startswith("\\")
    )
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(script.encode())


@pytest.fixture
def postgres_store(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(fixture name, URL of a database restored from its dump)."""
    server: str = request.getfixturevalue("postgres_server_url")
    name = f"subledger_earlier_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(server)._replace(path=f"/{name}", query=""))
    try:
        restore((FIXTURES / request.param / "postgres.sql.gz").read_bytes(), url)
        yield request.param, url
    finally:
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def as_json(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples as lists, days as text), as recorded."""
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


def recorded(made: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(
        gzip.decompress((FIXTURES / made / "answers.json.gz").read_bytes())
    )
    return loaded


def rebuild_everything(settings: Settings) -> None:
    ledger = build_ledger(settings)
    try:
        runner = build_runner(settings, ledger)
        runner.prepare(repartition=True)  # as `subledger projections rebuild` does
        runner.rebuild(list(runner.projections))
    finally:
        ledger.close()


def documents(url: str) -> dict[str, str]:
    """Each delivery-log message's `document`, straight from the database at `url`."""
    query = "SELECT id, document FROM sync_messages"
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            return dict(connection.execute(query).fetchall())
    with psycopg.connect(url) as connection:
        return dict(connection.execute(query).fetchall())


def fingerprints(url: str) -> dict[str, str]:
    """What each projection stored at `url` was folded with, straight from the database."""
    query = "SELECT name, fingerprint FROM subledger_projections"
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            return dict(connection.execute(query).fetchall())
    with psycopg.connect(url) as connection:
        return dict(connection.execute(query).fetchall())


def today(settings: Settings) -> dict[str, str]:
    """What today's code folds each projection with."""
    ledger = build_ledger(settings)
    try:
        return {n: p.fingerprint() for n, p in build_runner(settings, ledger).projections.items()}
    finally:
        ledger.close()


def check_upgraded(settings: Settings, made: str, store: str) -> None:
    """The database has every migration; its delivery log and stored key are as recorded."""
    then = recorded(made)
    ledger = build_ledger(settings)
    try:
        found = backend_for(settings.database_url).migrations(ledger)
    finally:
        ledger.close()
    assert [(m.id, m.applied) for m in found] == [(name, True) for name in MIGRATIONS]
    if "delivery" in then:
        assert as_json(delivery_rows(settings.database_url)) == then["delivery"][store]
        # Each message's invoice, read off the payloads the earlier release wrote.
        wanted = {
            m["id"]: orjson.loads(m["payload"]).get("invoice_id", "")
            if m["kind"] in ("invoice", "credit_note", "payment", "refund")
            else ""
            for m in then["delivery"][store]["messages"]
        }
        assert documents(settings.database_url) == wanted
    if "stored_keys" in then:
        with TestClient(create_app(settings)) as client:
            stored = {"Authorization": f"Bearer {then['stored_keys'][store]}"}
            assert client.get("/v1/events?limit=1", headers=stored).status_code == 200
            wrong = {"Authorization": f"Bearer {then['stored_keys'][store]}x"}
            assert client.get("/v1/events?limit=1", headers=wrong).status_code == 401


def check_reads_as_before(settings: Settings, made: str, store: str) -> None:
    then = recorded(made)
    answers, rows = then["answers"][store], then["rows"][store]
    assert answers, "the fixture records answers"
    earlier = fingerprints(settings.database_url)
    # A projection whose version changed since (its rows laid out anew) is folded again on
    # start and must give the same answers; the others keep their rows, and a rebuild folds
    # the very same rows.
    unchanged = {name for name, made in today(settings).items() if earlier.get(name) == made}
    assert unchanged, "some projection is as the earlier release folded it"
    check_upgraded(settings, made, store)

    kept = as_json(rows_of(settings))
    assert {n: kept[n] for n in unchanged} == {n: rows[n] for n in unchanged}, (
        "the stored rows were kept as they were"
    )
    now = answers_of(settings, list(answers))
    assert [path for path in answers if now[path] != answers[path]] == []

    rebuild_everything(settings)
    rebuilt = as_json(rows_of(settings))
    assert {n: rebuilt[n] for n in unchanged} == {n: rows[n] for n in unchanged}, (
        "a rebuild folds the very same rows"
    )
    now = answers_of(settings, list(answers))
    assert [path for path in answers if now[path] != answers[path]] == []


@pytest.mark.parametrize("made", MADE)
def test_a_sqlite_store_of_an_earlier_release_answers_and_rebuilds_the_same(
    made: str, tmp_path: Path
) -> None:
    copy = tmp_path / "store.sqlite"
    shutil.copyfile(FIXTURES / made / "store.sqlite", copy)
    settings = Settings(database_url=f"sqlite:///{copy}", api_keys=API_KEYS)
    check_reads_as_before(settings, made, "sqlite")


@pytest.mark.postgres
@pytest.mark.parametrize("postgres_store", MADE, indirect=True)
def test_a_postgresql_store_of_an_earlier_release_answers_and_rebuilds_the_same(
    postgres_store: tuple[str, str],
) -> None:
    made, url = postgres_store
    settings = Settings(database_url=url, api_keys=API_KEYS)
    check_reads_as_before(settings, made, "postgresql")


def test_the_fixtures_name_the_commit_that_made_them() -> None:
    assert MADE, "tests/fixtures/stores holds at least one earlier release's stores"
    for made in MADE:
        assert "Made by the code of commit " in (FIXTURES / made / "MADE.txt").read_text()


@pytest.mark.parametrize("made", MADE)
def test_a_store_of_an_earlier_release_folded_again_in_partitions_answers_the_same(
    made: str, tmp_path: Path
) -> None:
    """Rebuilt in three partitions, the store's projections give every answer the earlier
    release recorded (folded then whole)."""
    copy = tmp_path / "store.sqlite"
    shutil.copyfile(FIXTURES / made / "store.sqlite", copy)
    settings = Settings(
        database_url=f"sqlite:///{copy}", api_keys=API_KEYS, projection_partitions=3
    )
    rebuild_everything(settings)
    answers = recorded(made)["answers"]["sqlite"]
    now = answers_of(settings, list(answers))
    assert [path for path in answers if now[path] != answers[path]] == []
    assert set(fingerprints(settings.database_url)) == {
        f"{name}/{part}" for name in ("revenue", "mrr", "journal", "outbox") for part in range(3)
    }
