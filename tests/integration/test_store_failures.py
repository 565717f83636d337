"""A store that stops answering: the service says so, refuses cleanly, and appends nothing."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from fastapi.testclient import TestClient

from subledger.api.http.app import create_app
from subledger.api.settings import Settings
from tests.builders import customer, wire_event
from tests.conftest import API_KEYS, WRITE


@pytest.mark.postgres
def test_a_database_that_goes_away_is_reported_unhealthy_and_appends_answer_503(
    postgres_server_url: str,
) -> None:
    name = f"subledger_gone_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(postgres_server_url)._replace(path=f"/{name}", query=""))
    settings = Settings(database_url=url, api_keys=API_KEYS, connect_timeout_seconds=1)
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").json()["status"] == "ok"
        with psycopg.connect(postgres_server_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        health = client.get("/health")
        assert health.status_code == 503
        assert health.json() == {"status": "unavailable", "store": "postgresql"}
        answer = client.post("/v1/events", json=wire_event(customer()), headers=WRITE)
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "STORE_UNAVAILABLE"
        assert "Retry-After" in answer.headers
