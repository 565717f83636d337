"""Dinero's refusals, how a request's fields are read, and what a handler gets and answers.

A refusal is a `DineroError`, answered in Dinero's error body. `Fields` binds a request
object's fields case-insensitively and notes every problem, which `check` turns into a 400
(code 42) naming them all. A handler takes a `Call` and gives an `Answer`; a change to a
document or voucher must carry its latest concurrency token (`fresh`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

import orjson
from fastapi import Response
from starlette.datastructures import QueryParams

from subledger.adapters.sandbox.dinero.state import (
    EMPTY_GUID,
    DineroData,
    Document,
    Voucher,
    canonical_guid,
)
from subledger.adapters.sandbox.fields import CURRENCY, Money, Record, RequestFields, dumps
from subledger.domain.money import CURRENCY_EXPONENTS

EXTERNAL_REFERENCE_MAX: Final = 128


class ErrorCode:
    """Dinero's error codes: the official ones (40-43, 90) and those clients have seen."""

    NOT_FOUND: Final = 40
    UNAUTHORIZED: Final = 41
    VALIDATION: Final = 42
    LIMIT_EXCEEDED: Final = 43
    STALE_TIMESTAMP: Final = 58
    UNKNOWN_DOCUMENT: Final = 63
    DUPLICATE: Final = 72
    NOT_PRO: Final = 90


QUOTA_EXCEEDED: Final = "API calls quota exceeded!"


class DineroError(Exception):
    """A refusal, answered in Dinero's error body."""

    def __init__(
        self,
        status: int,
        code: int | None,
        message: str,
        validation: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.validation = dict(validation or {})
        self.headers = dict(headers or {})


def error_envelope(
    code: int | None, message: str, validation: Mapping[str, str] | None = None
) -> Record:
    """Dinero's error body, always with every part its clients read: `code`, `message`,
    `validationErrors` (field -> problem), `errorMessageList` and `languageSpecificMessages`."""
    problems = dict(validation or {})
    messages = [{"Code": code, "Message": f"{name}: {text}"} for name, text in problems.items()]
    return {
        "code": code,
        "message": message,
        "validationErrors": problems,
        "errorMessageList": messages or [{"Code": code, "Message": message}],
        "languageSpecificMessages": [
            {"property": name, "message": text} for name, text in problems.items()
        ],
    }


#: The codes of the fault middleware's own refusals, by HTTP status.
FAULT_CODES: Final = {429: ErrorCode.LIMIT_EXCEEDED}


def dinero_error_body(status: int, code: str, message: str) -> bytes:
    """The body of the fault middleware's answers: a 429 (rate limit or throttle) says what
    Dinero says, "API calls quota exceeded!", with code 43; a 500 carries no code."""
    text = QUOTA_EXCEEDED if status == 429 else message
    return dumps(error_envelope(FAULT_CODES.get(status), text))


def error_response(error: DineroError) -> Response:
    body = dumps(error_envelope(error.code, error.message, error.validation))
    return Response(body, error.status, error.headers, media_type="application/json")


def invalid(problems: Mapping[str, str]) -> DineroError:
    """400 with code 42, naming every field that was wrong."""
    message = "Validation failed: " + "; ".join(f"{k}: {v}" for k, v in problems.items())
    return DineroError(400, ErrorCode.VALIDATION, message, problems)


def not_found(what: str, key: object) -> DineroError:
    return DineroError(404, ErrorCode.NOT_FOUND, f"No {what} has the id {key}.")


def unknown_document(what: str, key: str) -> DineroError:
    """Dinero answers a GET of an unknown invoice or credit note with 400 and code 63."""
    return DineroError(400, ErrorCode.UNKNOWN_DOCUMENT, f"No {what} has the Guid {key}.")


def duplicate(what: str, name: str, key: str) -> DineroError:
    return DineroError(
        409, ErrorCode.DUPLICATE, f"Duplicated entity: {what} with {name} {key} already exists."
    )


class Fields(RequestFields):
    """One request object's fields, bound case-insensitively and checked as in `RequestFields`.

    Dinero binds JSON without regard to case, so `ContactGuid`, `contactGuid` and
    `contactguid` are one field (when a body names it twice, the last one counts). A problem is
    noted against the field's PascalCase name (such as `ProductLines[2].Quantity`), so `check`
    must be called before what was read is used. Choices are matched without regard to case
    too, Guids are read in canonical form, and a list of objects that is missing or wrong reads
    as empty."""

    def __init__(self, data: Mapping[str, Any], errors: dict[str, str], prefix: str = "") -> None:
        super().__init__(data, errors, prefix)
        self.values = {str(name).lower(): value for name, value in data.items()}

    def get(self, name: str) -> Any:
        """The value sent for `name`, in whatever case it was named."""
        return self.values.get(name.lower())

    def check(self) -> None:
        """Refuse the request (400, code 42) if any field was wrong."""
        if self.errors:
            raise invalid(self.errors)

    def choice(
        self,
        name: str,
        options: Sequence[str],
        *,
        default: str | None = None,
        required: bool = False,
    ) -> str | None:
        """One of `options`, matched without regard to case and answered as it is spelled there;
        an empty string counts as not given."""
        value = self.get(name)
        if value is None or value == "":
            if required:
                self.fail(name, "is required")
            return default
        spelled = {option.lower(): option for option in options}
        if not isinstance(value, str) or value.lower() not in spelled:
            self.fail(name, f"must be one of {', '.join(options)}")
            return None
        return spelled[value.lower()]

    def guid(self, name: str, *, required: bool = False) -> str | None:
        """A Guid in canonical form; the empty Guid counts as not given (as .NET sends it)."""
        value = self.text(name, required=required)
        if value is None or value == EMPTY_GUID:
            if value == EMPTY_GUID and required:
                self.fail(name, "is required")
            return None
        canonical = canonical_guid(value)
        if canonical is None:
            self.fail(name, "must be a Guid (8-4-4-4-12 hexadecimal digits)")
        return canonical

    def objects(self, name: str, *, required: bool = False) -> list[Mapping[str, Any]]:
        """A list of JSON objects (non-empty when required); empty when it is not one."""
        return super().objects(name, required=required) or []


def _json_body(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError:
        raise DineroError(400, ErrorCode.VALIDATION, "The request body is not JSON.") from None


def body_object(body: bytes) -> Fields:
    root = _json_body(body)
    if not isinstance(root, dict):
        raise DineroError(400, ErrorCode.VALIDATION, "The request body must be a JSON object.")
    return Fields.of(root)


def body_objects(body: bytes) -> list[Mapping[str, Any]]:
    root = _json_body(body)
    if not isinstance(root, list) or not all(isinstance(item, dict) for item in root):
        raise DineroError(
            400, ErrorCode.VALIDATION, "The request body must be a JSON array of objects."
        )
    return root


@dataclass(frozen=True)
class Query:
    """A request's query parameters, by lower-cased name (the last of a repeated one counts)."""

    values: Mapping[str, str]

    @classmethod
    def of(cls, params: QueryParams) -> Query:
        return cls({name.lower(): value for name, value in params.multi_items()})

    def get(self, name: str) -> str | None:
        value = self.values.get(name.lower())
        return None if value is None or value == "" else value


@dataclass(frozen=True)
class Call:
    """What a handler needs: the data, the ids in the path, the body, the query and the time."""

    data: DineroData
    ids: tuple[str, ...]
    body: bytes
    query: Query
    now: datetime
    stamp: Callable[[], str]

    @property
    def today(self) -> date:
        return self.now.date()


@dataclass(frozen=True)
class Answer:
    """A handler's answer: a body to write as JSON (None: an empty body) and a status."""

    body: Any = None
    status: int = 200


def touch(call: Call, thing: Document | Voucher) -> str:
    """Mark a document or voucher changed: a new concurrency token and `UpdatedAt`."""
    thing.stamp = call.stamp()
    thing.updated = call.now
    return thing.stamp


def fresh(thing: Document | Voucher, given: str | None, name: str = "Timestamp") -> None:
    """Refuse a change made with anything but the latest concurrency token (code 58)."""
    if given is not None and given != thing.stamp:
        raise DineroError(
            400,
            ErrorCode.STALE_TIMESTAMP,
            f"The {name} {given} is not the latest: the record has changed since it was read. "
            "Read it again and retry with its current one.",
            {name: "is not the latest"},
        )


def iso_currency(f: Fields, name: str) -> str | None:
    """An active ISO 4217 currency code, in capitals."""
    code = f.text(name, pattern=CURRENCY, hint="an ISO 4217 currency code in capitals")
    if code is not None and code not in CURRENCY_EXPONENTS:
        f.fail(name, f"must be an active ISO 4217 currency code ({code} is none)")
        return None
    return code


def read_account(
    f: Fields, data: DineroData, name: str, *, required: bool = False
) -> Record | None:
    number = f.integer(name, required=required)
    if number is None:
        return None
    account = data.accounts.get(number)
    if account is None:
        f.fail(name, f"refers to no account (there is no account {number})")
    return account


def optional_amount(minor: int | None, exponent: int = 2) -> Money | None:
    return None if minor is None else Money(minor, exponent)
