"""The one error map: every refusal becomes `{"error": {"code", "message", "details"}}`.

Codes are stable; messages are for people. A 500 never shows internals: it is logged with the
request id, and the answer names that id.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from subledger.api.http.responses import OrjsonResponse
from subledger.domain.errors import BatchRefusedError, ConcurrentAppendError

logger = logging.getLogger("subledger.api")

STATUS_OF_CODE: Final = {
    "INVALID_EVENT": 422,
    "UNKNOWN_REFERENCE": 422,
    "RULE_VIOLATED": 422,
    "ALREADY_EXISTS": 409,
    "EVENT_ID_REUSED": 409,
}


class ApiError(Exception):
    """A refusal raised by the HTTP layer itself (bad JSON, a batch too large, a missing key)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers


#: Codes of the refusals that Starlette and FastAPI raise themselves (FastAPI's 400 is a body
#: that cannot be decoded; 413 is `api.limits`' body counted past the limit).
_HTTP_CODES: Final = {
    400: "INVALID_JSON",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "BODY_TOO_LARGE",
}


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> OrjsonResponse:
    body = {"error": {"code": code, "message": message, "details": details or []}}
    return OrjsonResponse(body, status_code=status, headers=headers)


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
    """Every refusal as the contract's error body. `authenticate_first` refuses a caller without
    a key or scope before a malformed body is (a 401 or 403 before a 422)."""

    def _api_error_response(error: ApiError) -> OrjsonResponse:
        return error_response(error.status, error.code, error.message, error.details, error.headers)

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
        return error_response(STATUS_OF_CODE[error.code], error.code, message, details)

    @app.exception_handler(ConcurrentAppendError)
    async def _contended(_: Request, error: ConcurrentAppendError) -> OrjsonResponse:
        return error_response(503, "CONTENDED", str(error), headers={"Retry-After": "1"})

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _store_down(request: Request, error: Exception) -> OrjsonResponse:
        logger.warning("store unavailable (request %s): %s", _request_id(request), error)
        return error_response(
            503,
            "STORE_UNAVAILABLE",
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
        return error_response(422, "INVALID_REQUEST", "the request is malformed", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, error: StarletteHTTPException) -> OrjsonResponse:
        return error_response(
            error.status_code,
            _HTTP_CODES.get(error.status_code, "HTTP_ERROR"),
            str(error.detail),
            headers=dict(error.headers) if error.headers else None,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> OrjsonResponse:
        request_id = _request_id(request)
        logger.exception("unexpected error (request %s)", request_id, exc_info=error)
        return error_response(
            500, "INTERNAL", f"an unexpected error; it was logged as request {request_id}"
        )
