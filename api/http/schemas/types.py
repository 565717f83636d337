"""Field types of the wire format: strict JSON in, typed values out, documented in OpenAPI.

Every wire model is strict: money is a JSON integer of minor units (a string or a float is
refused); dates are exactly `YYYY-MM-DD` strings; instants carry a zone; quantities and rates
are decimal strings, turned into `Decimal`s when a model becomes a fact. Validation runs in
pydantic's core, on the request's JSON bytes.

These are the wire's own forms. What a value must be beyond its form (an id's length, an
amount's bounds, a currency being ISO 4217's) is the domain's rule (`domain.fields`), checked
there; the document still shows it, with `Shown`.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
)
from pydantic import BaseModel as _BaseModel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from subledger.domain.dates import Month

DECIMAL_PATTERN = r"^\d{1,15}(\.\d{1,12})?$"


class WireModel(_BaseModel):
    """Every wire model refuses fields it does not know, and coerces nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Shown:
    """JSON Schema keywords that the document shows for a value, and that are not checked
    here: the domain checks what they say (`Annotated[str, Shown(maxLength=128)]`)."""

    def __init__(self, **keywords: Any) -> None:
        self.keywords = keywords

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {**handler(core_schema), **self.keywords}


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
