"""Field types of the wire format: strict JSON in, typed values out, documented in OpenAPI.

Money is a JSON integer of minor units (a string or a float is refused); quantities and rates are
decimal strings; dates are exactly `YYYY-MM-DD` (no times, no numbers); instants carry a zone.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BaseModel as _BaseModel
from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema

from domain.dates import Month
from domain.facts import MAX_ID_LENGTH
from domain.money import MAX_AMOUNT_MINOR

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DECIMAL = re.compile(r"^\d{1,15}(\.\d{1,12})?$")


class WireModel(_BaseModel):
    """Every wire model refuses fields it does not know."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _iso_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE.match(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value} is not a day of the calendar") from None


def _instant(value: Any) -> datetime:
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("must be an ISO 8601 instant with a zone, e.g. 2026-01-15T10:00:00Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            "must be an ISO 8601 instant with a zone, e.g. 2026-01-15T10:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError("must carry a zone (Z or an offset such as +01:00)")
    return parsed


def _decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str) or not _DECIMAL.match(value):
        raise ValueError('must be a decimal string such as "1" or "0.25"')
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError('must be a decimal string such as "1" or "0.25"') from None


def _month(value: Any) -> Month:
    if isinstance(value, Month):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a month written YYYY-MM")
    return Month.parse(value)


IsoDate = Annotated[
    date,
    BeforeValidator(_iso_date),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["2026-01-15"]}),
]
Instant = Annotated[
    datetime,
    BeforeValidator(_instant),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-01-15T10:00:00Z"]}),
]
DecimalString = Annotated[
    Decimal,
    BeforeValidator(_decimal),
    WithJsonSchema({"type": "string", "pattern": _DECIMAL.pattern, "examples": ["1", "0.25"]}),
]
MonthString = Annotated[
    Month,
    BeforeValidator(_month),
    WithJsonSchema({"type": "string", "pattern": r"^\d{4}-\d{2}$", "examples": ["2026-01"]}),
]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=255)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
Currency = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    Field(description="ISO 4217 code", examples=["DKK"]),
]
Amount = Annotated[
    int,
    Field(strict=True, ge=0, le=MAX_AMOUNT_MINOR, description="minor units (øre, cents)"),
]
PositiveAmount = Annotated[
    int,
    Field(strict=True, ge=1, le=MAX_AMOUNT_MINOR, description="minor units (øre, cents), > 0"),
]
Count = Annotated[int, Field(strict=True, ge=1)]
