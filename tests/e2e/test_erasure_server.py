"""Erasure over real HTTP (docs/specification.md §6): `subledger serve` on SQLite and PostgreSQL, a customer with
personal data appended and erased; the log, the audit and the drill-down show it erased, the
numbers stay, `subledger projections rebuild` gives them again, and the database holds none of
its personal data."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_server import SUBLEDGER, serving
from tests.integration.test_personal_data import (
    CUSTOMER,
    ERASE,
    NUMBERS,
    STORY,
    assert_nowhere,
    dump,
)

KEY = "erasure-over-http-key-0123"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'subledger.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "SUBLEDGER_DATABASE_URL": database_url,
        "SUBLEDGER_API_KEYS": f"local:{KEY}:events:write+read",
    }


@pytest.fixture
def client(env: dict[str, str], tmp_path: Path) -> Iterator[httpx.Client]:
    with (
        serving(tmp_path, env) as base,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}) as client,
    ):
        yield client


def read(client: httpx.Client, path: str, **params: Any) -> Any:
    answer = client.get(path, params=params, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def numbers(client: httpx.Client) -> list[Any]:
    answers = [read(client, path, **params) for path, params in NUMBERS]
    answers[-1].pop("erased")
    return answers


def test_an_erased_customer_reads_as_erased_over_http_and_its_numbers_survive_a_rebuild(
    client: httpx.Client, env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    appended = client.post("/v1/events", json={"events": STORY}, timeout=30)
    assert appended.status_code == 201, appended.text
    assert read(client, "/v1/events")["events"][0]["data"] == CUSTOMER["data"]
    before = numbers(client)

    assert client.post("/v1/events", json=ERASE, timeout=30).status_code == 201
    assert numbers(client) == before
    created = read(client, "/v1/events", limit=1)["events"][0]
    assert created["data"]["erased"] is True and "name" not in created["data"]
    audit = read(client, "/v1/audit/customer/cus_pd")["events"]
    assert audit[0]["data"]["erased"] is True and audit[-1]["type"] == "customer.erased"
    assert read(client, "/v1/customers/cus_pd/mrr")["erased"] is True

    rebuilt = subprocess.run(
        [SUBLEDGER, "projections", "rebuild"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert numbers(client) == before, "the rebuilt projections give the same numbers"
    assert_nowhere(dump(database_url))
