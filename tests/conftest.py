"""Shared fixtures: the three stores, a ledger on each, and the HTTP app with keys.

PostgreSQL is reached through `SUBLEDGER_TEST_DATABASE_URL` when it is set, else through
testcontainers when a Docker engine answers, else PostgreSQL tests are skipped with the reason;
with `SUBLEDGER_REQUIRE_POSTGRES=1` (as `.ci/run` sets) a missing PostgreSQL fails them instead.
Each test gets its own schema in a database made for the test session.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from fastapi.testclient import TestClient

from subledger.adapters.store import store_env
from subledger.api.http.app import create_app
from subledger.api.settings import Settings
from subledger.domain.ledger import Ledger

WRITER_SECRET = "writer-secret-0123456789"
READER_SECRET = "reader-secret-0123456789"
ADMIN_SECRET = "admin-secret-01234567890"
API_KEYS = (
    f"billing:{WRITER_SECRET}:events:write,"
    f"analyst:{READER_SECRET}:read,"
    f"operator:{ADMIN_SECRET}:admin"
)
WRITE = {"Authorization": f"Bearer {WRITER_SECRET}"}
READ = {"Authorization": f"Bearer {READER_SECRET}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_SECRET}"}

STORES = [
    "memory",
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
]


def _postgres_required() -> bool:
    return os.environ.get("SUBLEDGER_REQUIRE_POSTGRES", "") not in ("", "0", "false", "no")


def _no_postgres(reason: str) -> None:
    if _postgres_required():
        pytest.fail(f"PostgreSQL is required here (SUBLEDGER_REQUIRE_POSTGRES): {reason}")
    pytest.skip(f"no PostgreSQL: {reason}")


def _docker_answers() -> bool:
    with suppress(Exception):
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
        return True
    return False


def _started_first(item: pytest.Item, default_timeout: float) -> tuple[bool, float]:
    """The sort key of `pytest_collection_modifyitems`: the slow tests before the rest, and
    among them those allowed longest (by their `timeout` mark) before the others."""
    if item.get_closest_marker("slow") is None:
        return (True, 0.0)
    timeout = item.get_closest_marker("timeout")
    allowed = float(timeout.args[0]) if timeout is not None and timeout.args else default_timeout
    return (False, -allowed)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The files with slow tests run first, the one allowed longest (by a `timeout` mark) first
    among them, and the rest in their order after them; a file's tests stay together and in
    their order, so that a file's fixtures (a server, a sandbox, a built package) are set up
    once per worker, not again each time another file's test came in between. With
    `--dist worksteal` (pyproject.toml) each worker takes its tests from the front of its queue
    and an idle worker takes the back of the other's: the long files start early, the short
    ones fill the gaps, and the workers end together instead of one of them running a file of
    long tests alone at the end."""
    default_timeout = float(config.getini("timeout") or 0)
    files: dict[str, tuple[bool, float]] = {}
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        key = _started_first(item, default_timeout)
        file = item.nodeid.split("::", 1)[0]
        files[file] = min(files.get(file, key), key)
        first.setdefault(file, index)
    order = {id(item): index for index, item in enumerate(items)}
    items.sort(
        key=lambda item: (
            files[item.nodeid.split("::", 1)[0]],
            first[item.nodeid.split("::", 1)[0]],
            order[id(item)],
        )
    )


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A URL of a PostgreSQL server whose user may create databases."""
    url = os.environ.get("SUBLEDGER_TEST_DATABASE_URL")
    if url:
        try:
            with psycopg.connect(url, connect_timeout=5):
                pass
        except psycopg.Error as error:
            _no_postgres(f"SUBLEDGER_TEST_DATABASE_URL does not answer: {error}")
        yield url
        return
    if not _docker_answers():
        _no_postgres("set SUBLEDGER_TEST_DATABASE_URL, or run a Docker engine for testcontainers")
    from testcontainers.postgres import PostgresContainer

    with PostgresContainer("postgres:16-alpine", driver=None) as container:
        yield container.get_connection_url()


@pytest.fixture(scope="session")
def postgres_database_url(postgres_server_url: str) -> Iterator[str]:
    """A database made for this test session, dropped at its end."""
    name = f"subledger_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(postgres_server_url)
    yield urlunsplit(parts._replace(path=f"/{name}", query=""))
    with psycopg.connect(postgres_server_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_database_url: str) -> str:
    """A PostgreSQL store URL with a schema of its own for this test."""
    return f"{postgres_database_url}?schema=t_{uuid.uuid4().hex[:12]}"


def _store_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'subledger.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once on memory, once on SQLite and once on PostgreSQL."""
    return _store_url(request.param, request, tmp_path)


@pytest.fixture(params=STORES[1:])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Like `store_url`, for tests that need a real database (SQLite and PostgreSQL)."""
    return _store_url(request.param, request, tmp_path)


@pytest.fixture(params=STORES)
def fresh_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """Makes a new, empty store of one kind on each call (for hypothesis examples)."""

    def make() -> str:
        if request.param == "memory":
            return "memory://"
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / uuid.uuid4().hex}.db"
        database: str = request.getfixturevalue("postgres_database_url")
        return f"{database}?schema=t_{uuid.uuid4().hex[:12]}"

    return make


@pytest.fixture
def ledger(store_url: str) -> Iterator[Ledger]:
    ledger = Ledger(env=store_env(store_url))
    yield ledger
    ledger.close()


@pytest.fixture
def memory_ledger() -> Iterator[Ledger]:
    ledger = Ledger(env=store_env("memory://"))
    yield ledger
    ledger.close()


def make_client(url: str) -> TestClient:
    return TestClient(create_app(Settings(database_url=url, api_keys=API_KEYS)))


@pytest.fixture
def client(store_url: str) -> Iterator[TestClient]:
    with make_client(store_url) as client:
        yield client
