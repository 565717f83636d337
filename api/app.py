"""The FastAPI application: routers, the error map, request ids, and the OpenAPI document."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi

from api.bootstrap import build_keys, build_ledger, describe_store
from api.errors import install_error_handlers
from api.keys import KeyRing
from api.responses import OrjsonResponse
from api.routes import events, health
from api.schemas.documents import append_request_schema
from api.settings import Settings
from domain.ledger import Ledger

logger = logging.getLogger("subledger.api")
VERSION = "0.1.0"


def create_app(
    settings: Settings | None = None,
    *,
    ledger: Ledger | None = None,
    keys: KeyRing | None = None,
) -> FastAPI:
    """The service. The ledger is built when the app starts, unless one is given."""
    settings = settings or Settings()
    keys = keys if keys is not None else build_keys(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = app.state.ledger is None
        if owned:
            app.state.ledger = build_ledger(settings)
        try:
            yield
        finally:
            if owned:
                app.state.ledger.close()
                app.state.ledger = None

    app = FastAPI(
        title="subledger",
        version=VERSION,
        summary="An event-sourced revenue ledger for subscription businesses",
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.keys = keys
    app.state.ledger = ledger
    app.state.store_kind = describe_store(settings)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(events.router)

    @app.middleware("http")
    async def request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request.state.request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        response = await call_next(request)
        response.headers["X-Request-Id"] = request.state.request_id
        return response

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the hand-parsed `POST /v1/events` body described in full."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes
    )
    body_schema, definitions = append_request_schema()
    document.setdefault("components", {}).setdefault("schemas", {}).update(definitions)
    for path_item in document["paths"].values():
        for operation in path_item.values():
            if operation.pop("x-append-body", False):
                operation["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": body_schema,
                            "examples": operation.pop("x-body-examples"),
                        }
                    },
                }
    app.openapi_schema = document
    return document
