"""Facts and events in their wire form: the `data` of docs/specification.md §1.2.

One function renders a fact (as submitted) and a stored event (which inherits the fact's fields)
alike, so `GET /v1/events` returns each event's data as it was appended. A customer event read
back holds its personal fields sealed: `logged_data` opens them with the customer's key, or,
once the customer is erased, leaves them out and marks the data `"erased": true`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from subledger.adapters.store.sealing import ERASED, opened
from subledger.domain.dates import Month
from subledger.domain.facts import FACT_TYPES
from subledger.domain.ledger import Ledger
from subledger.domain.personal import PERSONAL_FIELDS, is_personal
from subledger.domain.values import CLEARED, Cleared


def _render(value: Any) -> Any:
    kind: type = type(value)
    if kind is str or kind is int:
        return value
    if kind is tuple or kind is list:
        return [_render(item) for item in value]
    if kind is Decimal or kind is Month:
        return str(value)
    if kind is date or kind is datetime:
        return value.isoformat()
    if kind is Cleared:
        return None
    return {
        name: _render(item)
        for name in _value_fields(kind)
        if (item := getattr(value, name)) is not None
    }


@cache
def _value_fields(kind: type) -> tuple[str, ...]:
    if not dataclasses.is_dataclass(kind):
        raise TypeError(f"no wire form for {kind.__name__}")
    return tuple(field.name for field in dataclasses.fields(kind))


@cache
def _fact_fields(type_name: str) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(FACT_TYPES[type_name]))


def type_of(fact_or_event: Any) -> str:
    """The event type (`invoice.issued`) of a fact or of a domain event recording one."""
    type_name: str = fact_or_event.TYPE
    return type_name


def data_of(fact_or_event: Any, personal: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The `data` of a fact, or of the domain event that records it, as sent (nulls omitted,
    except where `null` means "remove", as in `customer.updated`); with `personal`, the
    personal fields given are those (the event's own being sealed)."""
    data = {}
    for name in _fact_fields(type_of(fact_or_event)):
        value = getattr(fact_or_event, name)
        if personal is not None and name in PERSONAL_FIELDS and value is not CLEARED:
            value = personal.get(name)
        if value is not None:
            data[name] = _render(value)
    return data


def sealing_keys(ledger: Ledger, events: Iterable[Any]) -> Mapping[str, bytes | None]:
    """The keys of the customers whose personal data `events` hold, in one read."""
    return ledger.sealing_keys({event.customer_id for event in events if is_personal(event)})


def logged_data(event: Any, keys: Mapping[str, bytes | None]) -> dict[str, Any]:
    """The `data` of an event read from the log, its personal fields opened with `keys`
    (`sealing_keys`); an erased customer's are left out, and the data says `"erased": true`."""
    if not is_personal(event):
        return data_of(event)
    personal = opened(event, keys)
    if personal is ERASED:
        return {**data_of(event, {}), "erased": True}
    assert isinstance(personal, dict)
    return data_of(event, personal)
