"""Keys made and revoked, kept in each store's own database (memory, SQLite, PostgreSQL), and
the `/v1/keys` routes over the app."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from subledger.adapters.api_keys import ApiKeyStore, KeyNameTakenError, StoredApiKey
from subledger.adapters.backends import api_key_store_for
from subledger.adapters.store import store_env
from subledger.domain.ledger import Ledger
from tests.conftest import ADMIN, ADMIN_SECRET, READ, READER_SECRET, WRITER_SECRET

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


@pytest.fixture
def ledger_and_keys(store_url: str) -> Iterator[tuple[Ledger, ApiKeyStore]]:
    ledger = Ledger(env=store_env(store_url))
    yield ledger, api_key_store_for(ledger)
    ledger.close()


def stored(key_id: str, name: str, *scopes: str, at: datetime = NOW) -> StoredApiKey:
    digest = hashlib.sha256(f"sk_{key_id}_secret".encode()).hexdigest()
    return StoredApiKey(key_id, name, digest, frozenset(scopes), at)


def test_a_key_is_kept_found_by_its_id_and_listed_with_its_scopes(
    ledger_and_keys: tuple[Ledger, ApiKeyStore],
) -> None:
    _, keys = ledger_and_keys
    keys.add(stored("00000000000000a1", "billing", "events:write", "read"))
    keys.add(stored("00000000000000a2", "analyst", "read", at=NOW + timedelta(seconds=1)))
    found = keys.find("00000000000000a1")
    assert found == stored("00000000000000a1", "billing", "events:write", "read")
    assert found is not None and found.created_at.tzinfo is not None
    assert keys.find("00000000000000ff") is None
    assert [key.name for key in keys.all()] == ["billing", "analyst"]


def test_a_revoked_key_is_kept_with_when_and_its_name_is_free_again(
    ledger_and_keys: tuple[Ledger, ApiKeyStore],
) -> None:
    _, keys = ledger_and_keys
    keys.add(stored("00000000000000a1", "billing", "read"))
    with pytest.raises(KeyNameTakenError):
        keys.add(stored("00000000000000a2", "billing", "admin"))
    revoked = keys.revoke("billing", NOW + timedelta(hours=1))
    assert revoked is not None and revoked.revoked_at == NOW + timedelta(hours=1)
    assert keys.revoke("billing", NOW) is None, "nothing left to revoke"
    keys.add(stored("00000000000000a2", "billing", "admin"))
    by_id = {key.key_id: key for key in keys.all()}
    assert by_id["00000000000000a1"].revoked_at == NOW + timedelta(hours=1)
    assert by_id["00000000000000a2"].revoked_at is None


def test_the_key_table_survives_reopening_the_database(database_url: str) -> None:
    first = Ledger(env=store_env(database_url))
    api_key_store_for(first).add(stored("00000000000000a1", "billing", "read"))
    first.close()
    again = Ledger(env=store_env(database_url))
    try:
        assert [key.name for key in api_key_store_for(again).all()] == ["billing"]
    finally:
        again.close()


# Over HTTP.


def test_an_admin_makes_a_key_that_works_at_once_and_stops_when_revoked(
    client: TestClient,
) -> None:
    made = client.post("/v1/keys", json={"name": "nightly", "scopes": ["read"]}, headers=ADMIN)
    assert made.status_code == 201, made.text
    assert made.headers["Cache-Control"] == "no-store"
    secret = made.json()["secret"]
    assert secret.startswith(f"sk_{made.json()['key_id']}_")
    bearer = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/events", headers=bearer).status_code == 200
    assert client.post("/v1/events", json={}, headers=bearer).status_code == 403

    listed = client.get("/v1/keys", headers=ADMIN)
    assert listed.status_code == 200
    sources = {key["name"]: key["source"] for key in listed.json()["keys"]}
    assert sources == {
        "billing": "environment",
        "analyst": "environment",
        "operator": "environment",
        "nightly": "database",
    }
    for hidden in (secret, WRITER_SECRET, READER_SECRET, ADMIN_SECRET):
        assert hidden not in listed.text

    revoked = client.delete("/v1/keys/nightly", headers=ADMIN)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    refused = client.get("/v1/events", headers=bearer)
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "the API key was revoked"


def test_keys_are_refused_clearly_over_http(client: TestClient) -> None:
    taken = client.post("/v1/keys", json={"name": "analyst", "scopes": ["read"]}, headers=ADMIN)
    assert taken.status_code == 409 and "SUBLEDGER_API_KEYS" in taken.text
    bad = client.post("/v1/keys", json={"name": "a b", "scopes": ["write"]}, headers=ADMIN)
    assert bad.status_code == 422
    assert client.delete("/v1/keys/nobody", headers=ADMIN).status_code == 404
    environment = client.delete("/v1/keys/analyst", headers=ADMIN)
    assert environment.status_code == 409
    assert environment.json()["error"]["code"] == "KEY_IN_ENVIRONMENT"
    assert client.get("/v1/keys", headers=READ).status_code == 403
