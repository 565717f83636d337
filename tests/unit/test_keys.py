"""API keys: SUBLEDGER_API_KEYS parsed, keys made and revoked, the ring that accepts both, and\nevery route declaring its scope."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from fastapi import APIRouter

from subledger.adapters.api_keys import MemoryApiKeyStore
from subledger.api.api_keys import (
    ApiKeyRing,
    InvalidKeyError,
    KeyConfigurationError,
    KeyConflictError,
    KeyNotFoundError,
    create_key,
    describe_keys,
    key_id_of,
    new_secret,
    parse_api_keys,
    revoke_key,
)
from subledger.api.http.app import create_app
from subledger.api.http.auth import PUBLIC, ensure_guarded, route_scopes
from subledger.api.settings import Settings

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
READ_SECRET = "reader-secret-0123456789"


def test_scopes_are_everything_after_the_second_colon() -> None:
    keys = parse_api_keys(
        "billing:s3cret-and-long-enough:events:write, ops:another-long-secret:read+admin"
    )
    assert [(key.name, sorted(key.scopes)) for key in keys] == [
        ("billing", ["events:write"]),
        ("ops", ["admin", "read"]),
    ]


def test_a_presented_secret_identifies_its_key_and_nothing_else_does() -> None:
    ring = ApiKeyRing(parse_api_keys("a:first-secret-0123456:read,b:second-secret-012345:admin"))
    identified = ring.identify("second-secret-012345")
    assert identified is not None
    assert identified.name == "b"
    assert ring.identify("second-secret-01234") is None
    assert ring.identify("") is None


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("nocolons", "name:secret:scope"),
        ("a:short:read", "at least 16 characters"),
        ("a:changeme:read", "at least 16 characters"),
        ("a:long-enough-secret-1:write", "unknown scope"),
        ("a:long-enough-secret-1:read,a:long-enough-secret-2:read", "twice"),
        ("bad name:long-enough-secret-1:read", "invalid name"),
    ],
)
def test_a_malformed_key_setting_is_refused_without_echoing_the_secret(
    text: str, complaint: str
) -> None:
    with pytest.raises(KeyConfigurationError) as raised:
        parse_api_keys(text)
    assert complaint in str(raised.value)
    for secret in ("short", "changeme", "long-enough-secret"):
        assert secret not in str(raised.value)


def test_no_setting_means_no_keys() -> None:
    assert parse_api_keys("") == []
    assert parse_api_keys(" , ") == []


# Keys made with `subledger keys create`, and the ring that accepts them.


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ring_with_store(
    env: str = "", cache_seconds: float = 5.0
) -> tuple[ApiKeyRing, MemoryApiKeyStore, Clock]:
    store, clock = MemoryApiKeyStore(), Clock()
    ring = ApiKeyRing(parse_api_keys(env), store, cache_seconds=cache_seconds, clock=clock)
    return ring, store, clock


def test_a_made_secret_names_its_key_id_and_is_long_and_random() -> None:
    made = [new_secret() for _ in range(100)]
    for key_id, secret in made:
        assert secret.startswith(f"sk_{key_id}_") and len(secret) >= 60
        assert key_id_of(secret) == key_id
    assert len({secret for _, secret in made}) == 100
    assert key_id_of("writer-secret-0123456789") is None
    assert key_id_of("sk_short_x") is None


def test_a_made_key_is_kept_as_a_hash_and_identifies_with_its_scopes() -> None:
    ring, store, _ = ring_with_store()
    key, secret = create_key(store, ring, "billing", ["events:write", "read"], NOW)
    assert secret not in repr(store.all())
    assert key.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    identified = ring.identify(secret)
    assert identified is not None
    assert (identified.name, identified.scopes) == ("billing", {"events:write", "read"})
    assert identified.source == "database" and not identified.revoked
    assert ring.identify(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None


def test_a_key_revoked_by_another_process_works_here_until_the_cache_time_passes() -> None:
    ring, store, clock = ring_with_store(cache_seconds=5)
    _, secret = create_key(store, ring, "billing", ["read"], NOW)
    assert not ring.identify(secret).revoked  # type: ignore[union-attr]
    store.revoke("billing", NOW)  # as another process would: this ring is not told
    clock.now = 4.9
    assert not ring.identify(secret).revoked  # type: ignore[union-attr]
    clock.now = 5.1
    assert ring.needs_lookup(secret)
    assert ring.identify(secret).revoked  # type: ignore[union-attr]


def test_a_key_revoked_in_this_process_stops_at_once() -> None:
    ring, store, _ = ring_with_store(cache_seconds=60)
    _, secret = create_key(store, ring, "billing", ["read"], NOW)
    assert not ring.identify(secret).revoked  # type: ignore[union-attr]
    revoke_key(store, ring, "billing", NOW)
    assert ring.identify(secret).revoked  # type: ignore[union-attr]


def test_a_lookup_is_remembered_so_that_a_known_key_costs_no_read() -> None:
    ring, store, clock = ring_with_store(cache_seconds=5)
    _, secret = create_key(store, ring, "billing", ["read"], NOW)
    assert ring.needs_lookup(secret)
    ring.identify(secret)
    assert not ring.needs_lookup(secret)
    clock.now = 6
    assert ring.needs_lookup(secret)
    assert not ring.needs_lookup(READ_SECRET), "an environment key is never looked up"


def test_a_name_of_the_environment_is_refused_for_a_made_key() -> None:
    ring, store, _ = ring_with_store(f"billing:{READ_SECRET}:read")
    with pytest.raises(KeyConflictError, match="SUBLEDGER_API_KEYS"):
        create_key(store, ring, "billing", ["read"], NOW)
    with pytest.raises(KeyConflictError, match="SUBLEDGER_API_KEYS"):
        revoke_key(store, ring, "billing", NOW)
    assert store.all() == []


def test_a_stored_key_named_like_an_environment_key_is_not_accepted() -> None:
    """Made from another environment, where the name was free."""
    elsewhere = ApiKeyRing((), MemoryApiKeyStore())
    store = elsewhere.store
    assert store is not None
    _, secret = create_key(store, elsewhere, "billing", ["admin"], NOW)
    here = ApiKeyRing(parse_api_keys(f"billing:{READ_SECRET}:read"), store)
    assert here.identify(secret) is None
    assert here.identify(READ_SECRET) is not None


def test_a_name_is_taken_until_its_key_is_revoked() -> None:
    ring, store, _ = ring_with_store()
    create_key(store, ring, "billing", ["read"], NOW)
    with pytest.raises(KeyConflictError, match="exists"):
        create_key(store, ring, "billing", ["admin"], NOW)
    revoke_key(store, ring, "billing", NOW)
    create_key(store, ring, "billing", ["admin"], NOW)
    kept = sorted((k.name, k.revoked_at is None) for k in store.all())
    assert kept == [("billing", False), ("billing", True)], "the revoked key stays, listed"
    with pytest.raises(KeyNotFoundError):
        revoke_key(store, ring, "nobody", NOW)


@pytest.mark.parametrize(
    ("name", "scopes", "complaint"),
    [
        ("bad name", ["read"], "name"),
        ("", ["read"], "name"),
        ("billing", [], "scope"),
        ("billing", ["write"], "scope"),
    ],
)
def test_a_key_with_a_bad_name_or_scope_is_refused(
    name: str, scopes: list[str], complaint: str
) -> None:
    ring, store, _ = ring_with_store()
    with pytest.raises(InvalidKeyError, match=complaint):
        create_key(store, ring, name, scopes, NOW)


def test_listing_keys_shows_no_secret_and_no_hash() -> None:
    ring, store, _ = ring_with_store(f"ops:{READ_SECRET}:admin")
    key, secret = create_key(store, ring, "billing", ["read"], NOW)
    shown = repr(describe_keys(ring, store.all()))
    assert "ops" in shown and "billing" in shown
    for hidden in (secret, READ_SECRET, key.secret_sha256):
        assert hidden not in shown


# Every route declares its scope.


def test_every_route_of_the_app_declares_a_scope_or_is_public() -> None:
    app = create_app(Settings(database_url="memory://", api_keys=f"ops:{READ_SECRET}:read"))
    scopes = route_scopes(app)
    assert scopes[("POST", "/v1/events")] == "events:write"
    assert scopes[("GET", "/v1/events")] == "read"
    assert scopes[("POST", "/v1/sync/replay")] == "admin"
    assert scopes[("DELETE", "/v1/keys/{name}")] == "admin"
    assert {path for (_, path), scope in scopes.items() if scope is None} <= PUBLIC


def test_a_route_without_a_scope_is_refused() -> None:
    app = create_app(Settings(database_url="memory://", api_keys=f"ops:{READ_SECRET}:read"))
    ensure_guarded(app)
    router = APIRouter()

    @router.get("/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    app.include_router(router)
    with pytest.raises(RuntimeError, match="GET /v1/forgotten"):
        ensure_guarded(app)
