"""Billy's envelopes and refusals, and how a request object's fields are read.

A refusal is a `BillyError`, answered in Billy's error envelope; `Fields` reads one request
object (by its exact camelCase names) and notes every problem, which `raise_if` turns into a
422 naming them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any, Final

from fastapi import Response

from subledger.adapters.sandbox.billy.state import now_text
from subledger.adapters.sandbox.fields import MALFORMED_DAY, Record, RequestFields, dumps
from subledger.domain.money import is_currency

#: Stands for a field a stored record does not have, in comparisons with what a PUT sends.
MISSING: Final = object()

HELP_URL: Final = "https://www.billy.dk/api"


class BillyError(Exception):
    """A refusal, answered in Billy's error envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        validation: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.validation = validation


def error_envelope(
    status: int, code: str, message: str, validation: Mapping[str, Any] | None = None
) -> Record:
    """Billy's error body: `meta`, `errorMessage`, `errorCode`, `errorTime`, `helpUrl`."""
    body: Record = {
        "meta": {"statusCode": status, "success": False},
        "errorMessage": message,
        "errorCode": code,
        "errorTime": now_text(),
        "helpUrl": HELP_URL,
    }
    if validation:
        body["validationErrors"] = dict(validation)
    return body


def billy_error_body(status: int, code: str, message: str) -> bytes:
    """The envelope of the fault middleware's own answers (500, 429)."""
    return dumps(error_envelope(status, code, message))


def error_response(error: BillyError) -> Response:
    body = error_envelope(error.status, error.code, error.message, error.validation)
    return json_response(dumps(body), error.status)


def validation_failed(resource: str, errors: Mapping[str, str]) -> BillyError:
    """422 naming every attribute that was wrong, under the singular name of the resource."""
    message = "Validation failed: " + "; ".join(f"{name}: {text}" for name, text in errors.items())
    attributes = {"message": message, "attributes": dict(errors)}
    return BillyError(422, "VALIDATION_ERROR", message, {resource: attributes})


def raise_if(errors: Mapping[str, str], resource: str) -> None:
    if errors:
        raise validation_failed(resource, errors)


def record_not_found(plural: str, record_id: str) -> BillyError:
    return BillyError(404, "RECORD_NOT_FOUND", f"No {plural} record has the id {record_id}.")


def json_response(content: bytes, status: int = 200) -> Response:
    return Response(content, status_code=status, media_type="application/json")


class Fields(RequestFields):
    """One request object's fields, read and checked as in `RequestFields`, by their exact names.

    A problem is noted against the field's camelCase name (such as `lines[2].unitPrice`), so
    the caller must check `errors` (through `raise_if`) before using what it read. Billy adds
    fields that refer to other records by id (`record`, `reference`); dates are kept as the
    `YYYY-MM-DD` text they were sent as (`day_text`)."""

    #: Billy says the same of a day not on the calendar as of a malformed one.
    impossible_day = MALFORMED_DAY

    def day_text(self, name: str, *, required: bool = False) -> str | None:
        """A real calendar date, as the `YYYY-MM-DD` text it was sent as."""
        day = self.day(name, required=required)
        return None if day is None else day.isoformat()

    def record(
        self, name: str, table: Mapping[str, Record], what: str, *, required: bool = False
    ) -> Record | None:
        """The record an id field refers to, which must exist."""
        record_id = self.text(name, required=required)
        if record_id is None:
            return None
        found = table.get(record_id)
        if found is None:
            self.fail(name, f"refers to no {what} (no {what} has the id {record_id})")
        return found

    def reference(
        self, name: str, table: Mapping[str, Record], what: str, *, default: str
    ) -> str | None:
        """The id of an existing record, or `default` when the field is left out."""
        if not self.given(name):
            return default
        found = self.record(name, table, what)
        return None if found is None else str(found["id"])

    def currency(
        self, name: str, *, required: bool = False, default: str | None = None
    ) -> str | None:
        """An active ISO 4217 currency code (`DKK`, `EUR`, `JPY`, ...)."""
        code = self.text(name, required=required, default=default)
        if code is not None and not is_currency(code):
            self.fail(name, "must be an active ISO 4217 currency code, such as DKK or EUR")
            return None
        return code

    def rate(self, name: str) -> Fraction | None:
        """An exchange rate: a number above 0, read exactly."""
        return self.number(name, above=0)


def field_names(words: str) -> frozenset[str]:
    """The field names a resource interprets (or computes), given as one string."""
    return frozenset(words.split())


def extras(body: Mapping[str, Any], interpreted: frozenset[str]) -> Record:
    """The fields Billy has but the sandbox does not interpret, kept as they were given."""
    return {name: value for name, value in body.items() if name not in interpreted}
