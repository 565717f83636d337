"""What every domain event carries besides its fact, and how aggregates are named.

Aggregates have natural ids (uuid5 of the kind and the sender's business id), so a second
creation with the same business id collides on version 1 inside the write transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from functools import cache, lru_cache
from typing import Any, Final
from uuid import UUID, uuid5

from subledger.domain.facts import Fact

#: Namespace of the ledger's aggregate ids. Never change it: stored events are keyed by it.
AGGREGATE_NAMESPACE: Final = UUID("0b8f6a52-31e2-4c1e-9a57-5d0f7f3c2a10")


@lru_cache(maxsize=65536)
def aggregate_id(kind: str, business_id: str) -> UUID:
    """The id of the aggregate of `kind` (`customer`, `subscription`, ...) named `business_id`."""
    return uuid5(AGGREGATE_NAMESPACE, f"{kind}/{business_id}")


@dataclass(frozen=True, kw_only=True)
class Recorded:
    """Fields of every domain event beyond its fact.

    `event_id` is the sender's id for the event (the idempotency key); `occurred_at` is when it
    happened at the sender, if they said.
    """

    event_id: str
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class Envelope:
    """How a fact arrived: the sender's event id, its own time, and the ledger's clock reading."""

    event_id: str
    occurred_at: datetime | None
    recorded_at: datetime


@cache
def _field_names(fact_type: type) -> tuple[str, ...]:
    return tuple(field.name for field in fields(fact_type))


def event_fields(fact: Fact, envelope: Envelope, **extra: Any) -> dict[str, Any]:
    """Keyword arguments for a domain event that records `fact` as it arrived."""
    fact_type: type = type(fact)
    values = {name: getattr(fact, name) for name in _field_names(fact_type)}
    values.update(
        event_id=envelope.event_id,
        occurred_at=envelope.occurred_at,
        timestamp=envelope.recorded_at,
        **extra,
    )
    return values
