"""The FastAPI application: routers, the error map, request ids, and the OpenAPI document."""

from __future__ import annotations

import logging
import os
import re
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from subledger.api.composition import Composition, tune_garbage_collector
from subledger.api.folding import start_folder_beside
from subledger.api.http.access_log import log_access
from subledger.api.http.auth import authenticate_first, ensure_guarded
from subledger.api.http.errors import install_error_handlers
from subledger.api.http.limits import RequestLimitsMiddleware
from subledger.api.http.metrics import time_request
from subledger.api.http.observed import ObservedRequests
from subledger.api.http.responses import OrjsonResponse
from subledger.api.http.routes import audit, events, health, mrr, revenue
from subledger.api.http.routes import keys as key_routes
from subledger.api.http.routes import ledger as ledger_routes
from subledger.api.http.routes import metrics as metrics_routes
from subledger.api.http.routes import sync as sync_routes
from subledger.api.http.routes.dashboard import install_dashboard
from subledger.api.http.schemas.documents import append_request_schema, document_global_refusals
from subledger.api.settings import Settings
from subledger.api.sync import Sync
from subledger.domain.ledger import Ledger
from subledger.projections.runner import ProjectionRunner

logger = logging.getLogger("subledger.api")
VERSION = "0.1.0"


def create_app(
    settings: Settings | None = None,
    *,
    composition: Composition | None = None,
    ledger: Ledger | None = None,
    run_projections: bool = True,
    server_process: bool = False,
    fold_beside: bool = False,
) -> FastAPI:
    """The service, wired by `composition` (else by one made from `settings`, else from the
    environment). The ledger is opened when the app starts, unless one is given.

    `run_projections` folds the log into the projections in this process (else a separate
    `subledger project` worker does, and reads wait for it through the store).
    `server_process` says the app owns its process (`subledger serve`), so it may tune the
    process's garbage collector once started. `fold_beside` folds in a process of its own
    beside this one, where the store allows it (`_start_folding`).
    """
    if composition is None:
        composition = Composition(settings or Settings())
    elif settings is not None and settings is not composition.settings:
        raise ValueError("create_app takes settings or a composition made from them, not both")
    wiring = composition
    keys = composition.keys

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = app.state.ledger is None
        if owned:
            app.state.ledger = wiring.open_ledger()
        app.state.keys.attach(wiring.key_store(app.state.ledger))
        runner = wiring.runner(app.state.ledger)
        rebuilt = runner.prepare()
        if rebuilt:
            logger.info("projections to fold from the start: %s", ", ".join(rebuilt))
        beside = fold_beside and wiring.backend.folds_beside
        folding_here, stop_folding = _start_folding(
            wiring, app.state.ledger, runner, run_projections, beside
        )
        app.state.reader = wiring.reader(app.state.ledger, runner, following=folding_here)
        app.state.sync, stop_sync = _start_sync(wiring, app.state.ledger, runner, server_process)
        if server_process:
            tune_garbage_collector()
        try:
            yield
        finally:
            stop_sync()
            stop_folding()
            app.state.keys.attach(None)
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
    app.state.settings = composition.settings
    app.state.chart = composition.chart
    app.state.keys = keys
    app.state.ledger = ledger
    app.state.store_kind = composition.backend.kind
    install_error_handlers(app, authenticate_first)
    app.include_router(health.router)
    app.include_router(events.router)
    app.include_router(revenue.router)
    app.include_router(mrr.router)
    app.include_router(ledger_routes.router)
    app.include_router(sync_routes.router)
    app.include_router(audit.router)
    app.include_router(key_routes.router)
    app.include_router(metrics_routes.router)
    install_dashboard(app)
    ensure_guarded(app)

    app.add_middleware(RequestLimitsMiddleware, max_body_bytes=composition.settings.max_body_bytes)
    # Inside the request ids' (to note them), outside the limits' (to note their refusals too).
    app.add_middleware(
        ObservedRequests, routes=lambda: app.routes, observers=(log_access, time_request)
    )
    app.add_middleware(RequestIdMiddleware)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _start_folding(
    composition: Composition,
    ledger: Ledger,
    runner: ProjectionRunner,
    run_projections: bool,
    beside: bool,
) -> tuple[bool, Callable[[], None]]:
    """Fold the log into the projections as it is appended (unless `run_projections` is off:
    another process does), here or, if `beside`, in a process of its own beside this one
    (`subledger project`, started again if it exits, stopping with this one); whether this
    process folds them (its reads then wake as it folds, not as they look at the store
    again), and how to stop."""
    if not run_projections:
        return False, lambda: None
    if beside:
        return False, start_folder_beside()
    follower = composition.follower(ledger, runner)
    follower.start()
    return True, follower.stop


def _start_sync(
    composition: Composition, ledger: Ledger, runner: ProjectionRunner, deliver: bool
) -> tuple[Sync | None, Callable[[], None]]:
    """The process's sync service (None on a memory store), delivering in a thread of its own
    when this is the server's process and targets are configured; and how to stop it."""
    if not composition.backend.shared:
        return None, lambda: None
    service = composition.sync(ledger, runner)
    if not deliver or not service.targets:
        return service, service.close
    stop = threading.Event()
    workers = composition.settings.sync_workers
    thread = threading.Thread(target=service.run, args=(stop, workers), name="sync", daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(30)
        service.close()

    return service, halt


#: A caller's `X-Request-Id` that is kept: a token (a UUID, `checkout-4711`), nothing that could
#: carry spaces, quotes, an e-mail address or a log line's worth of text.
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


class RequestIdMiddleware:
    """Gives every request an id (the caller's `X-Request-Id` if it is a token, else a new one),
    kept in
    `request.state.request_id` for logs and 500 answers and echoed in the answer's headers.

    Plain ASGI: Starlette's `BaseHTTPMiddleware` costs a task and a stream per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


def server_app() -> FastAPI:
    """The app of one `subledger serve` process, settings from the environment (the factory
    that uvicorn calls in each worker process)."""
    return create_app(
        Settings(),
        run_projections=os.environ.get(NO_PROJECTIONS) != "1",
        server_process=True,
    )


#: Set by `serve --no-projections` for its worker processes.
NO_PROJECTIONS = "SUBLEDGER_SERVE_WITHOUT_PROJECTIONS"


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with the hand-parsed `POST /v1/events` body described in full."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes
    )
    document_global_refusals(document)
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
