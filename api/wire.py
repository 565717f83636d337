"""Facts and events in their wire form: the `data` of §1.2.

One function renders a fact (as submitted) and a stored event (which inherits the fact's fields)
alike, so `GET /v1/events` returns each event's data as it was appended.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from domain.dates import Month
from domain.facts import FACT_TYPES
from domain.values import Cleared


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


def data_of(fact_or_event: Any) -> dict[str, Any]:
    """The `data` of a fact, or of the domain event that records it, as sent (nulls omitted,
    except where `null` means "remove", as in `customer.updated`)."""
    return {
        name: _render(value)
        for name in _fact_fields(type_of(fact_or_event))
        if (value := getattr(fact_or_event, name)) is not None
    }
