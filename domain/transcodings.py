"""How the domain's own types are written into stored events: dates, months, value objects.

The library registers `UUID`, `Decimal` and `datetime`; these add the rest. Names are part of the
stored format: never rename one.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import date
from typing import Any

from eventsourcing.persistence import Transcoding

from domain.dates import Month
from domain.values import (
    CLEARED,
    Address,
    Cleared,
    CreditLine,
    Discount,
    InvoiceLine,
    SubscriptionItem,
)


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class MonthAsText(Transcoding):
    type = Month
    name = "month"

    def encode(self, obj: Month) -> str:
        return str(obj)

    def decode(self, data: str) -> Month:
        return Month.parse(data)


class ClearedAsMarker(Transcoding):
    type = Cleared
    name = "cleared"

    def encode(self, obj: Cleared) -> int:
        return 1

    def decode(self, data: Any) -> Cleared:
        return CLEARED


class ValueObjectAsDict(Transcoding):
    """A frozen dataclass as a dict of its fields, leaving out those that are `None`."""

    def __init__(self, cls: type[Any], name: str) -> None:
        self.type = cls
        self.name = name
        self._fields = tuple(field.name for field in fields(cls))

    def encode(self, obj: Any) -> dict[str, Any]:
        return {name: value for name in self._fields if (value := getattr(obj, name)) is not None}

    def decode(self, data: dict[str, Any]) -> Any:
        return self.type(**data)


def domain_transcodings() -> list[Transcoding]:
    return [
        DateAsISO(),
        MonthAsText(),
        ClearedAsMarker(),
        ValueObjectAsDict(Address, "address"),
        ValueObjectAsDict(SubscriptionItem, "subscription_item"),
        ValueObjectAsDict(Discount, "discount"),
        ValueObjectAsDict(InvoiceLine, "invoice_line"),
        ValueObjectAsDict(CreditLine, "credit_line"),
    ]
