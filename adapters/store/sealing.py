"""Sealing a customer's personal fields with its key, and opening them again (docs/specification.md
§6).

A sealed event keeps, in place of its personal fields, `{"sealed": {"fields": [...], "box":
"..."}}`: the names of the personal fields it gave (not their values), and the box: base64 of a
random 96-bit nonce followed by the AES-256-GCM encryption of the fields as JSON, with the
customer's id as associated data (a box moved to another customer does not open). Fields that an
update removes stay in the clear as removals: they hold no value.

Read back, a sealed event holds `SEALED` in each personal field it gave and its box in
`sealed`; `opened()` gives the fields' values with the customer's key, or `ERASED` once the key is
destroyed. Events written before sealing keep their plain fields and are read as they are.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from typing import Any, Final

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from subledger.domain.personal import KEY_BYTES, PERSONAL_FIELDS, is_personal
from subledger.domain.values import CLEARED, SEALED, Address

#: The key of a stored event's sealed part, and the attribute of an event read back that holds
#: its box.
SEALED_KEY: Final = "sealed"
_NONCE_BYTES: Final = 12


class SealingError(Exception):
    """A box that does not open with the key given (damaged, or another customer's)."""


class _Erased:
    def __repr__(self) -> str:
        return "ERASED"


#: What `opened()` answers for an event of a customer whose key is destroyed.
ERASED: Final = _Erased()


def seal(fields: dict[str, Any], customer_id: str, key: bytes) -> str:
    """The box of `fields` (JSON-able) under `key`, bound to `customer_id`."""
    if len(key) != KEY_BYTES:
        raise ValueError(f"a customer's key is {KEY_BYTES} bytes")
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, orjson.dumps(fields), customer_id.encode())
    return base64.b64encode(nonce + sealed).decode()


def open_box(box: str, customer_id: str, key: bytes) -> dict[str, Any]:
    """The fields sealed in `box`; raises `SealingError` if it does not open with `key`."""
    raw = base64.b64decode(box)
    try:
        plain = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], customer_id.encode())
    except (InvalidTag, ValueError) as error:
        raise SealingError(f"a box of customer {customer_id!r} does not open") from error
    fields: dict[str, Any] = orjson.loads(plain)
    return fields


def seal_state(state: dict[str, Any], key: bytes) -> None:
    """Replace the personal fields that `state` (a customer event's, as JSON-able values) gives
    by their box."""
    given = {
        name: state.pop(name)
        for name in PERSONAL_FIELDS
        if state.get(name) is not None and state[name] is not CLEARED
    }
    if any(value is SEALED for value in given.values()):
        raise ValueError("a field read back sealed cannot be sealed again")
    state[SEALED_KEY] = {"fields": sorted(given), "box": seal(given, state["customer_id"], key)}


def has_personal_fields(state: dict[str, Any]) -> bool:
    """Whether a customer event's state gives any personal field in the clear."""
    return any(
        state.get(name) is not None and state[name] is not CLEARED for name in PERSONAL_FIELDS
    )


def reseal_state(state: dict[str, Any]) -> None:
    """The stored form again of a state read back sealed (`unseal_state`), box as it was."""
    box = state.pop(SEALED_KEY)
    names = sorted(name for name in PERSONAL_FIELDS if state.get(name) is SEALED)
    for name in names:
        del state[name]
    state[SEALED_KEY] = {"fields": names, "box": box}


def unseal_state(state: dict[str, Any]) -> None:
    """Mark the personal fields of a sealed state (as read from the store, after its other
    fields were converted) `SEALED`, and keep its box under `sealed`."""
    sealed = state.pop(SEALED_KEY, None)
    if sealed is None:
        return
    for name in sealed["fields"]:
        state[name] = SEALED
    state[SEALED_KEY] = sealed["box"]


def opened(event: Any, keys: Mapping[str, bytes | None]) -> dict[str, Any] | _Erased:
    """The personal fields an event read back gives (an address as an `Address`; fields it
    leaves out or removes are not there), given its customer's key in `keys`; `ERASED` once
    that key is destroyed. A customer with no key row at all wrote its events before sealing:
    they are read as they are. An event without personal fields gives `{}`."""
    if not is_personal(event):
        return {}
    customer_id: str = event.customer_id
    box = getattr(event, SEALED_KEY, None)
    key = keys.get(customer_id)
    if key is None and (customer_id in keys or box is not None):
        return ERASED
    if box is None:
        return {
            name: value
            for name in PERSONAL_FIELDS
            if (value := getattr(event, name)) is not None and value is not CLEARED
        }
    assert key is not None
    fields = open_box(box, customer_id, key)
    if "address" in fields:
        fields["address"] = Address(**fields["address"])
    return fields
