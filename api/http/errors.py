"""The one error map: every refusal becomes `{"error": {"code", "message", "details"}}`.

Codes are stable; messages are for people. Every code is declared once, in `ErrorCode`, with
its status: a refusal names the code and the status follows. A 500 never shows internals: it
is logged with the request id, and the answer names that id.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from enum import Enum, unique
from typing import Any, Final

from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from subledger.api.http.responses import OrjsonResponse
from subledger.domain.errors import BatchRefusedError, ConcurrentAppendError

logger = logging.getLogger("subledger.api")


@unique
class ErrorCode(Enum):
    """Every code the API answers a refusal with: its HTTP status and what it means, in one
    line. The code is the member's name. docs/api.md lists the same codes (a test holds them
    together), and the OpenAPI document describes each route's refusals from here."""

    # The value is (status, meaning); `None` for a status given by the refusal itself.
    INVALID_JSON = 400, "the body is not JSON"
    UNAUTHORIZED = 401, "no API key, or one that is not known or was revoked"
    FORBIDDEN = 403, "the key lacks the route's scope"
    NOT_FOUND = 404, "no such path, sync target or delivery message, or no unrevoked key so named"
    UNKNOWN_CUSTOMER = 404, "no customer by that id, as of the point asked about"
    UNKNOWN_SUBSCRIPTION = 404, "no subscription by that id, as of the point asked about"
    UNKNOWN_INVOICE = 404, "no invoice by that id, as of the point asked about"
    UNKNOWN_ACCOUNT = 404, "the chart of accounts has no such account"
    METHOD_NOT_ALLOWED = 405, "the path does not take this method"
    ALREADY_EXISTS = 409, "an event creates what exists already; nothing was appended"
    EVENT_ID_REUSED = 409, "an event id appended before with other data; nothing was appended"
    KEY_EXISTS = 409, "an API key has that name already"
    KEY_IN_ENVIRONMENT = 409, "the key is set in SUBLEDGER_API_KEYS, not made over HTTP"
    NOT_FAILED = 409, "only a failed message is retried"
    SYNC_UNAVAILABLE = 409, "syncing needs a database (not memory://)"
    BATCH_TOO_LARGE = 413, "a batch of over 1,000 events; nothing was appended"
    BODY_TOO_LARGE = 413, "the body is over SUBLEDGER_MAX_BODY_BYTES"
    UNSUPPORTED_MEDIA_TYPE = 415, "the body is not JSON, or it is compressed"
    INVALID_REQUEST = 422, "a malformed parameter or body, or a control character in the URL"
    INVALID_CURSOR = 422, "`after` is not a cursor of the delivery log that this service gave"
    CURRENCY_REQUIRED = 422, "the data has several currencies and none was named (currency=)"
    INVALID_EVENT = 422, "a malformed event (each one of the batch is named); nothing was appended"
    UNKNOWN_REFERENCE = 422, "an event names what does not exist; nothing was appended"
    RULE_VIOLATED = 422, "an event breaks a rule of the ledger; nothing was appended"
    INTERNAL = 500, "an unexpected failure, logged under the request id that the message names"
    TARGET_UNAVAILABLE = 502, "the sync target could not be read"
    NOT_CAUGHT_UP = 503, "the projections did not catch up with the log in time: retry"
    STORE_UNAVAILABLE = 503, "a store did not answer or is not open yet; nothing was written: retry"
    CONTENDED = 503, "other writers kept changing the same things; nothing was appended: retry"
    HTTP_ERROR = None, "another refusal of the web framework, with its own status"

    def __init__(self, status: int | None, meaning: str) -> None:
        self.status = status
        self.meaning = meaning

    def status_of(self) -> int:
        """The code's status; an error for `HTTP_ERROR`, whose status is the refusal's own."""
        if self.status is None:
            raise ValueError(f"{self.name} has no status of its own")
        return self.status


def described(codes: Iterable[ErrorCode]) -> dict[int, str]:
    """Per status, what `codes` mean: `"CODE: meaning; CODE: meaning"`, in the order given."""
    lines: dict[int, list[str]] = {}
    for code in dict.fromkeys(codes):
        lines.setdefault(code.status_of(), []).append(f"{code.name}: {code.meaning}")
    return {status: "; ".join(lines[status]) for status in sorted(lines)}


class ApiError(Exception):
    """A refusal raised by the HTTP layer itself (bad JSON, a batch too large, a missing key),
    its status that of its code."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = code.status_of()
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers


#: The codes of the refusals that Starlette and FastAPI raise themselves, by their status
#: (FastAPI's 400 is a body that cannot be decoded; 413 is `api.limits`' body counted past the
#: limit); any other status is `HTTP_ERROR`.
_HTTP_CODES: Final = {
    code.status_of(): code
    for code in (
        ErrorCode.INVALID_JSON,
        ErrorCode.NOT_FOUND,
        ErrorCode.METHOD_NOT_ALLOWED,
        ErrorCode.BODY_TOO_LARGE,
    )
}


def error_response(
    code: ErrorCode,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    *,
    status: int | None = None,
) -> OrjsonResponse:
    """The error body of docs/specification.md §1, with the code's status (or `status`, for
    `HTTP_ERROR`)."""
    body = {"error": {"code": code.name, "message": message, "details": details or []}}
    answered = status if status is not None else code.status_of()
    return OrjsonResponse(body, status_code=answered, headers=headers)


def data_field(field: str | None) -> str:
    """A domain error's field is a path inside the event's data; `id` is the event's own."""
    if field is None:
        return "data"
    return field if field == "id" else f"data.{field}"


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "-"))


def install_error_handlers(
    app: FastAPI, authenticate_first: Callable[[Request], Awaitable[None]] | None = None
) -> None:
    """Every refusal as the error body of docs/specification.md §1. `authenticate_first` refuses a
    caller without
    a key or scope before a malformed body is (a 401 or 403 before a 422)."""

    def _api_error_response(error: ApiError) -> OrjsonResponse:
        return error_response(error.code, error.message, error.details, error.headers)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError) -> OrjsonResponse:
        return _api_error_response(error)

    @app.exception_handler(BatchRefusedError)
    async def _refused(_: Request, error: BatchRefusedError) -> OrjsonResponse:
        details = [
            {
                "index": problem.index,
                "field": data_field(problem.error.field),
                "code": problem.error.code,
                "message": problem.error.message,
            }
            for problem in error.problems
        ]
        first = error.problems[0]
        message = f"event {first.index}: {first.error.message}; nothing was appended"
        return error_response(ErrorCode[error.code], message, details)

    @app.exception_handler(ConcurrentAppendError)
    async def _contended(_: Request, error: ConcurrentAppendError) -> OrjsonResponse:
        return error_response(ErrorCode.CONTENDED, str(error), headers={"Retry-After": "1"})

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _store_down(request: Request, error: Exception) -> OrjsonResponse:
        logger.warning("store unavailable (request %s): %s", _request_id(request), error)
        return error_response(
            ErrorCode.STORE_UNAVAILABLE,
            "the event store did not answer; nothing was appended, retry later",
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, error: RequestValidationError) -> OrjsonResponse:
        if authenticate_first is not None:
            try:
                await authenticate_first(request)
            except ApiError as refusal:
                return _api_error_response(refusal)
        details = [
            {"field": ".".join(str(part) for part in problem["loc"]), "message": problem["msg"]}
            for problem in error.errors()
        ]
        return error_response(ErrorCode.INVALID_REQUEST, "the request is malformed", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> OrjsonResponse:
        return error_response(
            _HTTP_CODES.get(error.status_code, ErrorCode.HTTP_ERROR),
            str(error.detail),
            headers=dict(error.headers) if error.headers else None,
            status=error.status_code,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> OrjsonResponse:
        request_id = _request_id(request)
        logger.exception("unexpected error (request %s)", request_id, exc_info=error)
        return error_response(
            ErrorCode.INTERNAL, f"an unexpected error; it was logged as request {request_id}"
        )
