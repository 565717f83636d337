"""What every request must be before a route sees it (docs/events.md, "Limits").

- A body of at most `SUBLEDGER_MAX_BODY_BYTES`: refused at once when its `Content-Length` says
  more, and counted as it arrives otherwise (a chunked body has no length), so that no request
  is ever read whole past the limit.
- A body in JSON, as it is: a `Content-Type` other than JSON, or any `Content-Encoding` (a
  compressed body could unpack to any size), is refused. A body without a `Content-Type` is
  taken as JSON.
- A path and query without control characters: no id, date or cursor holds one, and
  PostgreSQL cannot even compare a text with a NUL in it.

Each refusal is the error body of docs/specification.md §1 (`api.errors`).
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import unquote

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from subledger.api.http.errors import ErrorCode, error_response

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_JSON_TYPE: Final = re.compile(r"^application/([a-z0-9.+-]+\+)?json$")


class BodyTooLargeError(HTTPException):
    """The body grew past the limit while it was read: raised from `receive`, so it reaches the
    app's error map wherever the body is read (FastAPI re-raises an `HTTPException` as is)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body is over {limit} bytes")


class RequestLimitsMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            code, message = refusal
            await error_response(code, message)(scope, receive, send)
            return
        limit = self.max_body_bytes
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        await self.app(scope, receive_within_limit, send)

    def _refusal(self, scope: Scope) -> tuple[ErrorCode, str] | None:
        """(code, message) for a request refused before anything of it is read."""
        headers = Headers(scope=scope)
        path = scope.get("path", "")
        query = unquote(scope.get("query_string", b"").decode("latin-1"))
        if _CONTROL.search(path) or _CONTROL.search(query):
            return ErrorCode.INVALID_REQUEST, "the path or the query holds a control character"
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return ErrorCode.BODY_TOO_LARGE, f"the body is over {self.max_body_bytes} bytes"
        has_body = (declared is not None and declared != "0") or "transfer-encoding" in headers
        if not has_body:
            return None
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            return ErrorCode.UNSUPPORTED_MEDIA_TYPE, "the body must not be compressed"
        media_type = headers.get("content-type", "application/json").split(";")[0].strip()
        if not _JSON_TYPE.match(media_type.lower()):
            return ErrorCode.UNSUPPORTED_MEDIA_TYPE, "the body must be JSON (application/json)"
        return None
