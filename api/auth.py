"""Bearer keys on every route but `/health`: 401 without a known key, 403 without the scope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from api.keys import ApiKey, KeyRing

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`")

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def require(scope: str) -> Callable[..., Awaitable[ApiKey]]:
    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiKey:
        keys: KeyRing = request.app.state.keys
        if credentials is None:
            raise ApiError(
                401,
                "UNAUTHORIZED",
                "an API key is required: Authorization: Bearer <key>",
                headers=_CHALLENGE,
            )
        key = keys.identify(credentials.credentials)
        if key is None:
            raise ApiError(401, "UNAUTHORIZED", "the API key is not known", headers=_CHALLENGE)
        if scope not in key.scopes:
            raise ApiError(403, "FORBIDDEN", f"the key {key.name!r} lacks the scope {scope!r}")
        return key

    return check


WriteKey = Annotated[ApiKey, Depends(require("events:write"))]
ReadKey = Annotated[ApiKey, Depends(require("read"))]
