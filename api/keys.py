"""API keys and their scopes (§6 of the contract).

Keys come from `SUBLEDGER_API_KEYS`: comma-separated `name:secret:scope+scope`, where the scopes
are everything after the second colon (`billing:s3cret-and-long:events:write`). Only a SHA-256 of
each secret is kept in memory; a presented key is hashed and compared with every known key in
constant time, and no secret ever appears in a log line or an error message.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

SCOPES: Final = ("events:write", "read", "admin")
MIN_SECRET_LENGTH: Final = 16
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_PLACEHOLDERS: Final = frozenset({"changeme", "change-me", "secret", "password", "s3cret"})


class KeyConfigurationError(ValueError):
    """`SUBLEDGER_API_KEYS` is malformed. The message never contains a secret."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    secret_hash: bytes
    scopes: frozenset[str]


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse_keys(text: str) -> list[ApiKey]:
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


class KeyRing:
    """The keys the service accepts."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._keys = tuple(keys)

    def __len__(self) -> int:
        return len(self._keys)

    def identify(self, presented: str) -> ApiKey | None:
        """The key whose secret is `presented`, if any. Every key is compared, in constant time."""
        presented_hash = _hash(presented)
        found: ApiKey | None = None
        for key in self._keys:
            if hmac.compare_digest(key.secret_hash, presented_hash):
                found = key
        return found
