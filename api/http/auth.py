"""Bearer keys on every route but the public ones: 401 without a known, unrevoked key, 403
without the route's scope.

A route declares its scope with one of the dependencies below (`WriteKey`, `ReadKey`,
`AdminKey`, or `Depends(require(scope))`); `route_scopes` reads them back from the app, and
`ensure_guarded` refuses to build an app with a route that declares none and is not in
`PUBLIC`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from subledger.api.api_keys import ApiKey, ApiKeyRing
from subledger.api.http.dependencies import ApiKeyRingDep, key_ring
from subledger.api.http.errors import ApiError, ErrorCode

#: What answers without a key: the health check, the dashboard's page and its files (they
#: hold no data; the page asks for a key to call the API) and the API's own documentation.
PUBLIC: Final = frozenset(
    {
        "/health",
        "/",
        "/dashboard",
        "/dashboard/currencies.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/openapi.json",
    }
)

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`")

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def require(scope: str) -> Callable[..., Awaitable[ApiKey]]:
    async def check(
        keys: ApiKeyRingDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> ApiKey:
        return await _authenticate(keys, credentials, scope)

    check.scope = scope  # type: ignore[attr-defined]  # read back by `route_scopes`
    return check


async def authenticate_first(request: Request) -> None:
    """Refuse the request as `require` would if its route needs a scope. FastAPI reads a JSON
    body before it solves the route's dependencies, so malformed JSON would otherwise be
    answered 422 to a caller without a key; the refusal of the body waits for this."""
    dependant: Dependant | None = getattr(request.scope.get("route"), "dependant", None)
    scope = _scope_of(dependant) if dependant is not None else None
    if scope is not None:
        await _authenticate(await key_ring(request), await _bearer(request), scope)


async def _authenticate(
    keys: ApiKeyRing, credentials: HTTPAuthorizationCredentials | None, scope: str
) -> ApiKey:
    if credentials is None:
        raise ApiError(
            ErrorCode.UNAUTHORIZED,
            "an API key is required: Authorization: Bearer <key>",
            headers=_CHALLENGE,
        )
    presented = credentials.credentials
    if keys.needs_lookup(presented):
        key = await run_in_threadpool(keys.identify, presented)
    else:
        key = keys.identify(presented)
    if key is None:
        raise ApiError(ErrorCode.UNAUTHORIZED, "the API key is not known", headers=_CHALLENGE)
    if key.revoked:
        raise ApiError(ErrorCode.UNAUTHORIZED, "the API key was revoked", headers=_CHALLENGE)
    if scope not in key.scopes:
        raise ApiError(ErrorCode.FORBIDDEN, f"the key {key.name!r} lacks the scope {scope!r}")
    return key


WriteKey = Annotated[ApiKey, Depends(require("events:write"))]
ReadKey = Annotated[ApiKey, Depends(require("read"))]
AdminKey = Annotated[ApiKey, Depends(require("admin"))]


def _scope_of(dependant: Dependant) -> str | None:
    for dependency in dependant.dependencies:
        scope: Any = getattr(dependency.call, "scope", None)
        if isinstance(scope, str):
            return scope
        found = _scope_of(dependency)
        if found is not None:
            return found
    return None


def route_scopes(app: FastAPI) -> dict[tuple[str, str], str | None]:
    """Every (method, path) the app answers, with the scope it needs (None: it declares none).
    A mounted app (the dashboard's files) is `("*", path)`."""
    scopes: dict[tuple[str, str], str | None] = {}
    for route in iter_route_contexts(app.routes):
        path = str(route.path)
        dependant: Dependant | None = getattr(route, "dependant", None)
        scope = _scope_of(dependant) if dependant is not None else None
        for method in sorted(route.methods or {"*"}):
            scopes[(method, path)] = scope
    return scopes


def ensure_guarded(app: FastAPI) -> None:
    """Refuse an app with a route that needs no scope and is not public."""
    open_routes = [
        f"{method} {path}"
        for (method, path), scope in route_scopes(app).items()
        if scope is None and path not in PUBLIC
    ]
    if open_routes:
        raise RuntimeError(
            f"routes without a scope: {', '.join(open_routes)} (add ReadKey, WriteKey or"
            " AdminKey, or list the path in api.auth.PUBLIC)"
        )
