"""Personal data (docs/specification.md §6): which fields are personal, each customer's key, and how
the log's digests of customer events avoid tracing them.

A customer's name, e-mail, address, VAT number and EAN are personal; its id, country, kind and
customer number are not (the id and the number are what billing systems and accounting targets
match on). The personal fields of `customer.created` and `customer.updated` are stored sealed
with a key of the customer's own (`new_key()`), kept beside the log; `customer.erased` destroys
that key in the same transaction as it is appended, so what was sealed can never be read again.
The domain only carries keys as bytes: sealing itself is the store's business
(`SealingMapper`, in `domain.ports`).

The log keeps a digest of every event's type and data to tell a retry from another event under
the same id. A plain hash of personal data is a trace (anyone can hash a guess and compare), so
the digest of a customer event is its public part (a hash of the type and the non-personal
fields) followed by an HMAC of the whole body's hash under the customer's key. Once the key is
destroyed only the public part can be compared: a retry whose type and non-personal fields
match is a duplicate.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import fields
from typing import Any, Final

from subledger.domain.facts import CustomerCreated, CustomerUpdated, Fact
from subledger.domain.values import CLEARED

#: The personal fields of `customer.created` and `customer.updated`.
PERSONAL_FIELDS: Final = ("name", "email", "vat_number", "ean", "address")
#: Bytes of a customer's key (AES-256).
KEY_BYTES: Final = 32
#: Bytes of a personal event's digest: the public part, then the keyed part.
PERSONAL_DIGEST_BYTES: Final = 64

PersonalFact = CustomerCreated | CustomerUpdated


def new_key() -> bytes:
    """A new customer's key: 256 random bits."""
    return secrets.token_bytes(KEY_BYTES)


def is_personal(fact_or_event: Any) -> bool:
    """Whether a fact (or the event recording it) carries personal fields."""
    return isinstance(fact_or_event, CustomerCreated | CustomerUpdated)


def public_digest(fact: PersonalFact) -> bytes:
    """A hash of the fact's type and non-personal fields, and of which personal fields it
    gives or removes (that tells nothing of their values)."""
    parts: list[str] = [fact.TYPE]
    for field in fields(fact):
        value = getattr(fact, field.name)
        if field.name in PERSONAL_FIELDS:
            shown = "absent" if value is None else "cleared" if value is CLEARED else "given"
            parts.append(f"{field.name}={shown}")
        else:
            parts.append(f"{field.name}={value!r}")
    return hashlib.sha256("\n".join(parts).encode()).digest()


def logged_digest(fact: Fact, digest: bytes, key: bytes | None) -> bytes:
    """What the log keeps for a fact whose body hashes to `digest`: the digest itself, or, for a
    customer event with a key, its public part and the HMAC of `digest` under the key."""
    if key is None or not isinstance(fact, CustomerCreated | CustomerUpdated):
        return digest
    return public_digest(fact) + hmac.new(key, digest, hashlib.sha256).digest()


def same_body(fact: Fact, digest: bytes, logged: bytes, key: bytes | None) -> bool:
    """Whether a fact whose body hashes to `digest` repeats the event logged with `logged`,
    given its customer's key (None when destroyed). A digest logged before personal data was
    sealed is the plain one; after erasure only the public part can be compared."""
    if len(logged) != PERSONAL_DIGEST_BYTES or not isinstance(
        fact, CustomerCreated | CustomerUpdated
    ):
        return hmac.compare_digest(logged, digest)
    if not hmac.compare_digest(logged[: len(logged) // 2], public_digest(fact)):
        return False
    if key is None:
        return True
    return hmac.compare_digest(logged, logged_digest(fact, digest, key))
