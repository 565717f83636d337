"""API keys and their scopes (docs/specification.md §6).

Keys come from two places, both accepted side by side:

- `SUBLEDGER_API_KEYS`: comma-separated `name:secret:scope+scope`, where the scopes are
  everything after the second colon (`billing:s3cret-and-long:events:write`). Only a SHA-256
  of each secret is kept in memory; a presented key is hashed and compared with every one of
  them in constant time.
- `subledger keys create` (or `POST /v1/keys`): a secret `sk_<key id>_<random>` made with
  `secrets` (256 random bits), shown once; the database keeps its key id, a SHA-256 of the
  whole secret, the name, the scopes, and when it was made and revoked. A presented secret of
  that form is looked up by its key id, and what the lookup found is kept for
  `cache_seconds` (5 by default) in each process: a key revoked elsewhere stops working in
  every server process within that time. A plain SHA-256 is enough here: the secret is random
  and long, so there is nothing to guess by trying passwords against the hash.

A name belongs to one key: a stored key may not take the name of an environment key. No
secret ever appears in a log line or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from subledger.adapters.api_keys import ApiKeyStore, KeyNameTakenError, StoredApiKey

SCOPES: Final = ("events:write", "read", "admin")
MIN_SECRET_LENGTH: Final = 16
#: A key id: 16 hexadecimal digits (64 random bits), unique among the stored keys.
KEY_ID_DIGITS: Final = 16
#: Random bytes after the key id (`secrets.token_urlsafe`: 43 characters).
SECRET_BYTES: Final = 32
#: The most key ids a process remembers lookups of; past it, it forgets them all.
CACHE_ENTRIES: Final = 10_000
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_STORED_SECRET = re.compile(rf"^sk_([0-9a-f]{{{KEY_ID_DIGITS}}})_[A-Za-z0-9_-]{{40,64}}$")
_PLACEHOLDERS: Final = frozenset({"changeme", "change-me", "secret", "password", "s3cret"})

logger = logging.getLogger("subledger.api")


class KeyConfigurationError(ValueError):
    """`SUBLEDGER_API_KEYS` is malformed. The message never contains a secret."""


class InvalidKeyError(ValueError):
    """A key asked for with a name or scopes that cannot be."""


class KeyConflictError(ValueError):
    """A key asked for, or to revoke, whose name is taken or belongs to the environment."""


class KeyNotFoundError(LookupError):
    """No unrevoked stored key has the name."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    secret_hash: bytes
    scopes: frozenset[str]
    #: `environment` (SUBLEDGER_API_KEYS) or `database` (`subledger keys create`).
    source: str = "environment"
    revoked: bool = False


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse_api_keys(text: str) -> list[ApiKey]:
    keys: list[ApiKey] = []
    for position, raw in enumerate(part.strip() for part in text.split(",")):
        if not raw:
            continue
        pieces = raw.split(":", 2)
        if len(pieces) != 3:
            raise KeyConfigurationError(f"API key #{position + 1} is not name:secret:scope+scope")
        name, secret, scope_text = pieces
        if not _NAME.match(name):
            raise KeyConfigurationError(f"API key #{position + 1} has an invalid name")
        if len(secret) < MIN_SECRET_LENGTH or secret.lower() in _PLACEHOLDERS:
            raise KeyConfigurationError(
                f"API key {name!r}: the secret must be at least {MIN_SECRET_LENGTH} characters"
                " and not a placeholder"
            )
        scopes = frozenset(scope_text.split("+"))
        unknown = scopes - set(SCOPES)
        if unknown or not scopes:
            raise KeyConfigurationError(
                f"API key {name!r}: unknown scope(s) {sorted(unknown)}; use {', '.join(SCOPES)}"
            )
        if any(key.name == name for key in keys):
            raise KeyConfigurationError(f"API key {name!r} is defined twice")
        keys.append(ApiKey(name, _hash(secret), scopes))
    return keys


def new_secret() -> tuple[str, str]:
    """A new key id and its secret, `sk_<key id>_<random>`."""
    key_id = secrets.token_hex(KEY_ID_DIGITS // 2)
    return key_id, f"sk_{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"


def key_id_of(presented: str) -> str | None:
    """The key id of a secret made by `new_secret`, or None for any other string."""
    found = _STORED_SECRET.match(presented)
    return found.group(1) if found else None


class ApiKeyRing:
    """The keys the service accepts: those of the environment, and those of the key store once
    one is attached (when the app starts and its ledger exists)."""

    def __init__(
        self,
        keys: Iterable[ApiKey],
        store: ApiKeyStore | None = None,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = tuple(keys)
        self.names = frozenset(key.name for key in self._keys)
        self.store = store
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cache: dict[str, tuple[float, StoredApiKey | None]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """The number of environment keys."""
        return len(self._keys)

    def environment_keys(self) -> tuple[ApiKey, ...]:
        return self._keys

    def attach(self, store: ApiKeyStore | None) -> None:
        """Accept the keys of `store` too (None: no longer)."""
        self.store = store
        with self._lock:
            self._cache.clear()

    def forget(self, key_id: str) -> None:
        """Drop what this process remembers of a key (it was just revoked here)."""
        with self._lock:
            self._cache.pop(key_id, None)

    def needs_lookup(self, presented: str) -> bool:
        """Whether identifying `presented` would read the key store (it is a stored key's
        secret whose lookup this process does not remember)."""
        key_id = key_id_of(presented)
        if key_id is None or self.store is None:
            return False
        with self._lock:
            hit = self._cache.get(key_id)
        return hit is None or hit[0] <= self.clock()

    def identify(self, presented: str) -> ApiKey | None:
        """The key whose secret is `presented`, if any (revoked or not: see `ApiKey.revoked`).
        Every environment key is compared, in constant time; a stored key is found by its id."""
        presented_hash = _hash(presented)
        found: ApiKey | None = None
        for key in self._keys:
            if hmac.compare_digest(key.secret_hash, presented_hash):
                found = key
        if found is not None:
            return found
        key_id = key_id_of(presented)
        stored = self._stored(key_id) if key_id is not None else None
        if stored is None or not hmac.compare_digest(
            bytes.fromhex(stored.secret_sha256), presented_hash
        ):
            return None
        if stored.name in self.names:
            logger.warning(
                "the stored API key %r has the name of a key of SUBLEDGER_API_KEYS: it is refused"
                " until one of them is revoked or renamed",
                stored.name,
            )
            return None
        return ApiKey(
            stored.name,
            presented_hash,
            stored.scopes,
            source="database",
            revoked=stored.revoked_at is not None,
        )

    def _stored(self, key_id: str) -> StoredApiKey | None:
        store = self.store
        if store is None:
            return None
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        found = store.find(key_id)
        with self._lock:
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
            self._cache[key_id] = (now + self.cache_seconds, found)
        return found


# Making, listing and revoking stored keys (`subledger keys`, `/v1/keys`).


def create_key(
    store: ApiKeyStore, ring: ApiKeyRing, name: str, scopes: Iterable[str], now: datetime
) -> tuple[StoredApiKey, str]:
    """A new stored key and its secret, which is nowhere else: show it once."""
    wanted = frozenset(scopes)
    if not _NAME.match(name):
        raise InvalidKeyError(
            f"a key's name is 1 to 64 letters, digits, '.', '_' or '-' (got {name!r})"
        )
    unknown = wanted - set(SCOPES)
    if unknown or not wanted:
        raise InvalidKeyError(
            f"unknown scope(s) {sorted(unknown)}; give one or more of {', '.join(SCOPES)}"
        )
    if name in ring.names:
        raise KeyConflictError(
            f"{name!r} is the name of a key in SUBLEDGER_API_KEYS: choose another name"
        )
    key_id, secret = new_secret()
    key = StoredApiKey(key_id, name, hashlib.sha256(secret.encode()).hexdigest(), wanted, now)
    try:
        store.add(key)
    except KeyNameTakenError:
        raise KeyConflictError(
            f"a key named {name!r} exists: revoke it first, or choose another name"
        ) from None
    return key, secret


def revoke_key(store: ApiKeyStore, ring: ApiKeyRing, name: str, now: datetime) -> StoredApiKey:
    """Revoke the stored key named `name`; it stops working in this process at once, and in
    others within the ring's `cache_seconds`."""
    revoked = store.revoke(name, now)
    if revoked is None:
        if name in ring.names:
            raise KeyConflictError(
                f"{name!r} is a key of SUBLEDGER_API_KEYS: remove it there and restart"
            )
        raise KeyNotFoundError(f"no unrevoked key named {name!r} was made with subledger keys")
    ring.forget(revoked.key_id)
    return revoked


def describe_keys(ring: ApiKeyRing, stored: Iterable[StoredApiKey]) -> list[dict[str, Any]]:
    """Every key as `subledger keys list` and `GET /v1/keys` show it: never a secret or a hash."""
    described: list[dict[str, Any]] = [
        {
            "name": key.name,
            "source": "environment",
            "key_id": None,
            "scopes": sorted(key.scopes),
            "created_at": None,
            "revoked_at": None,
        }
        for key in ring.environment_keys()
    ]
    described += [
        {
            "name": key.name,
            "source": "database",
            "key_id": key.key_id,
            "scopes": sorted(key.scopes),
            "created_at": key.created_at,
            "revoked_at": key.revoked_at,
        }
        for key in stored
    ]
    return described
