"""The Billy sandbox as an app: `/v2`, the `/_sandbox` routes and the faults around them."""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from subledger.adapters.sandbox.billy.envelope import (
    BillyError,
    billy_error_body,
    error_response,
    json_response,
)
from subledger.adapters.sandbox.billy.payments import (
    accountant_problems,
    cancel_payment,
    register_payment,
)
from subledger.adapters.sandbox.billy.rates import change_rates, rates_view
from subledger.adapters.sandbox.billy.routing import answer_request
from subledger.adapters.sandbox.billy.state import (
    INVOICE_STATES,
    INVOICE_TYPES,
    BillyData,
    BillyStore,
)
from subledger.adapters.sandbox.faults import FaultInjector, Faults, FaultSettings, fault_routes
from subledger.adapters.sandbox.fields import Record, dumps
from subledger.adapters.sandbox.routes import ALL_METHODS, json_object, settings_refused


class BillySandboxSettings(BaseModel):
    """How one Billy sandbox runs: the access token it accepts and the faults it injects."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(default="sandbox-token", min_length=1)
    faults: FaultSettings = Field(default_factory=FaultSettings)


def summary(data: BillyData) -> Record:
    """How many records of each kind there are, and invoices by type and state."""
    invoices = {kind: dict.fromkeys(INVOICE_STATES, 0) for kind in INVOICE_TYPES}
    for invoice in data.tables["invoices"].values():
        invoices[invoice["type"]][invoice["state"]] += 1
    counts = {plural: len(table) for plural, table in data.tables.items()}
    return {"counts": counts, "invoices": invoices}


def _sandbox_routes(store: BillyStore, faults: Faults) -> APIRouter:
    """`GET /_sandbox/summary`, `POST /_sandbox/reset`, `GET`/`PUT /_sandbox/rates` and the
    accountant's `POST /_sandbox/payments` and `DELETE /_sandbox/payments/{id}` (no token;
    never faulted)."""
    router = APIRouter(prefix="/_sandbox")

    def summarized() -> Response:
        with store.lock:
            return json_response(dumps(summary(store.data)))

    @router.get("/summary", include_in_schema=False)
    async def read_summary() -> Response:
        return summarized()

    @router.post("/reset", include_in_schema=False)
    async def reset() -> Response:
        store.reset()
        faults.reset()
        return summarized()

    @router.get("/rates", include_in_schema=False)
    async def read_rates() -> Response:
        with store.lock:
            return json_response(dumps(rates_view(store.data)))

    @router.put("/rates", include_in_schema=False)
    async def put_rates(request: Request) -> Response:
        changes = await json_object(request)
        if changes is None:
            return settings_refused("the body must be a JSON object of currency: rate", {})
        with store.lock:
            problems = change_rates(store.data, changes)
            if problems:
                return settings_refused("invalid exchange rates", problems)
            return json_response(dumps(rates_view(store.data)))

    @router.post("/payments", include_in_schema=False)
    async def post_payment(request: Request) -> Response:
        body = await json_object(request)
        problems = accountant_problems(body)
        if body is None or problems:
            return settings_refused("invalid payment", problems)
        try:
            with store.lock:
                return json_response(dumps(register_payment(store.data, body)), 201)
        except BillyError as error:
            return error_response(error)

    @router.delete("/payments/{payment_id}", include_in_schema=False)
    async def delete_payment(payment_id: str) -> Response:
        try:
            with store.lock:
                return json_response(dumps(cancel_payment(store.data, payment_id)))
        except BillyError as error:
            return error_response(error)

    return router


ERROR_CODES: Final = {404: "UNKNOWN_RESOURCE", 405: "METHOD_NOT_ALLOWED"}


async def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's own refusals (outside `/v2`), in Billy's envelope."""
    status = error.status_code if isinstance(error, StarletteHTTPException) else 500
    code = ERROR_CODES.get(status, "INTERNAL_SERVER_ERROR" if status >= 500 else "BAD_REQUEST")
    message = f"{request.method} {request.url.path}: {code.lower().replace('_', ' ')}."
    return error_response(BillyError(status, code, message))


def create_billy_app(settings: BillySandboxSettings) -> FastAPI:
    """The Billy sandbox as an ASGI app, seeded, with its faults around `/v2`.

    `app.state.store` is its `BillyStore` and `app.state.faults` its `Faults` (whose `clock`
    a test may replace to move the rate limit's window)."""
    store = BillyStore()
    faults = Faults(settings.faults)
    app = FastAPI(title="Billy sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.state.faults = faults

    async def v2(request: Request) -> Response:
        return answer_request(store, settings.token, request, await request.body())

    app.router.routes.append(Route("/v2/{path:path}", v2, methods=ALL_METHODS))
    app.include_router(_sandbox_routes(store, faults))
    app.include_router(fault_routes(faults))
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(FaultInjector, faults=faults, error_body=billy_error_body, prefixes=("/v2",))
    return app
