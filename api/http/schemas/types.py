"""Field types of the wire format: strict JSON in, typed values out, documented in OpenAPI.

Every wire model is strict: money is a JSON integer of minor units (a string or a float is
refused); dates are exactly `YYYY-MM-DD` strings; instants carry a zone; quantities and rates
are decimal strings, turned into `Decimal`s when a model becomes a fact. Validation runs in
pydantic's core, on the request's JSON bytes.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)
from pydantic import BaseModel as _BaseModel

from subledger.domain.dates import Month
from subledger.domain.fields import MAX_ID_LENGTH
from subledger.domain.money import MAX_AMOUNT_MINOR

DECIMAL_PATTERN = r"^\d{1,15}(\.\d{1,12})?$"


class WireModel(_BaseModel):
    """Every wire model refuses fields it does not know, and coerces nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _calendar_month(value: str) -> str:
    Month.parse(value)  # raises ValueError for 2026-13
    return value


IsoDate = Annotated[date, Field(description="YYYY-MM-DD", examples=["2026-01-15"])]
Instant = Annotated[
    AwareDatetime,
    Field(description="ISO 8601 with a zone", examples=["2026-01-15T10:00:00Z"]),
]
DecimalString = Annotated[
    str,
    StringConstraints(pattern=DECIMAL_PATTERN),
    Field(description="a decimal string", examples=["1", "0.25"]),
]
MonthString = Annotated[
    str,
    StringConstraints(pattern=r"^\d{4}-\d{2}$"),
    AfterValidator(_calendar_month),
    Field(description="YYYY-MM", examples=["2026-01"]),
]
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def _no_control_characters(value: str) -> str:
    if _CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain control characters")
    return value


#: No control characters (NUL and the C0 set): an id is compared and stored as text everywhere,
#: and PostgreSQL's text holds no NUL.
Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_LENGTH),
    AfterValidator(_no_control_characters),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_ID_LENGTH,
            "pattern": r"^[^\x00-\x1f\x7f]+$",
        }
    ),
]
Text = Annotated[str, StringConstraints(min_length=1, max_length=255)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
Currency = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    Field(description="ISO 4217 code", examples=["DKK"]),
]
Amount = Annotated[int, Field(ge=0, le=MAX_AMOUNT_MINOR, description="minor units (øre, cents)")]
PositiveAmount = Annotated[
    int, Field(ge=1, le=MAX_AMOUNT_MINOR, description="minor units (øre, cents), > 0")
]
Count = Annotated[int, Field(ge=1)]
