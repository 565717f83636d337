"""The Dinero sandbox as an app: the token endpoint, the API's versions, the `/_sandbox`
routes and the faults around them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Any, Final

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from subledger.adapters.sandbox.dinero.auth import OAUTH_PATH, grant_token
from subledger.adapters.sandbox.dinero.brownouts import Brownouts
from subledger.adapters.sandbox.dinero.documents import (
    DOCUMENT_STATUSES,
    INVOICE_STATUSES,
    payment_status,
    taken_off,
)
from subledger.adapters.sandbox.dinero.envelope import (
    DineroError,
    ErrorCode,
    dinero_error_body,
    error_response,
)
from subledger.adapters.sandbox.dinero.payments import (
    accountant_problems,
    register_payment,
    remove_payment,
)
from subledger.adapters.sandbox.dinero.rates import rate_problems, rates_view
from subledger.adapters.sandbox.dinero.routing import Sandbox, answer_request
from subledger.adapters.sandbox.dinero.settings import DineroSandboxSettings
from subledger.adapters.sandbox.dinero.state import DineroData, DineroStore
from subledger.adapters.sandbox.faults import FaultInjector, Faults, fault_routes
from subledger.adapters.sandbox.fields import Money, Record, exact_number, known
from subledger.adapters.sandbox.routes import (
    ALL_METHODS,
    json_answer,
    json_object,
    settings_refused,
    validation_problems,
)

#: The version prefixes the API is served under; each endpoint answers under one of them.
VERSIONS: Final = ("v1", "v1.1", "v1.2", "v2")


def summary(data: DineroData, today: date) -> Record:
    """How many records of each kind there are, documents by status, and every account's
    balance (debit positive, in major units) from the entries booked."""
    invoices = dict.fromkeys(INVOICE_STATUSES, 0)
    credit_notes = dict.fromkeys(DOCUMENT_STATUSES, 0)
    taken = taken_off(data)
    for document in data.documents.values():
        if document.deleted is not None:
            continue
        if document.kind == "invoice":
            invoices[payment_status(data, document, today, taken)] += 1
        else:
            credit_notes[document.status] += 1
    vouchers = dict.fromkeys(DOCUMENT_STATUSES, 0)
    for voucher in [*data.vouchers.values(), *data.ledger_items.values()]:
        if voucher.deleted is None:
            vouchers[voucher.status] += 1
    balances: Counter[int] = Counter()
    for entry in data.entries:
        balances[entry.account] += entry.amount
    live = [contact for contact in data.contacts.values() if contact["DeletedAt"] is None]
    counts = {
        "accounts": len(data.accounts),
        "vatTypes": len(data.vat_types),
        "contacts": len(live),
        "deletedContacts": len(data.contacts) - len(live),
        "products": sum(1 for product in data.products.values() if product.deleted is None),
        "invoices": sum(invoices.values()),
        "creditNotes": sum(credit_notes.values()),
        "payments": len(data.payments),
        "manualVouchers": sum(1 for v in data.vouchers.values() if v.deleted is None),
        "ledgerItems": len(data.ledger_items),
        "entries": len(data.entries),
        "sent": len(data.sent),
    }
    return {
        "organization": data.organization,
        "counts": counts,
        "invoices": invoices,
        "creditNotes": credit_notes,
        "vouchers": vouchers,
        "balances": {
            str(account): Money(amount) for account, amount in sorted(balances.items()) if amount
        },
    }


def _sandbox_routes(sandbox: Sandbox) -> APIRouter:
    """`GET /_sandbox/summary`, `POST /_sandbox/reset`, `GET /_sandbox/sent`,
    `GET`/`PUT /_sandbox/brownout`, `GET`/`PUT /_sandbox/rates` and the accountant's
    `POST /_sandbox/payments` and `DELETE /_sandbox/payments/{id}` (no token; never
    faulted)."""
    router = APIRouter(prefix="/_sandbox")
    store = sandbox.store

    def summarized() -> Response:
        with store.lock:
            body = summary(store.data, store.clock().date())
            now = store.clock()
            body["tokens"] = {
                "issued": store.tokens_issued,
                "active": sum(1 for grant in store.tokens.values() if grant.expires > now),
            }
            return json_answer(body)

    @router.get("/summary", include_in_schema=False)
    async def read_summary() -> Response:
        return summarized()

    @router.post("/reset", include_in_schema=False)
    async def reset() -> Response:
        store.reset()
        sandbox.faults.reset()
        sandbox.brownouts.reset()
        return summarized()

    @router.get("/sent", include_in_schema=False)
    async def read_sent() -> Response:
        with store.lock:
            return json_answer(list(store.data.sent))

    @router.get("/rates", include_in_schema=False)
    async def read_rates() -> Response:
        with store.lock:
            return json_answer(rates_view(store.data.rates))

    @router.put("/rates", include_in_schema=False)
    async def change_rates(request: Request) -> Response:
        changes = await json_object(request)
        if changes is None:
            return settings_refused("the body must be a JSON object of rates by currency", {})
        problems = rate_problems(changes)
        if problems:
            return settings_refused("invalid rates", problems)
        with store.lock:
            for code, rate in changes.items():
                if rate is None:
                    store.data.rates.pop(code, None)
                else:
                    store.data.rates[code] = known(exact_number(rate))
            return json_answer(rates_view(store.data.rates))

    @router.get("/brownout", include_in_schema=False)
    async def read_brownout() -> Response:
        return json_answer(sandbox.brownouts.view())

    @router.put("/brownout", include_in_schema=False)
    async def change_brownout(request: Request) -> Response:
        changes = await json_object(request)
        if changes is None:
            return settings_refused("the body must be a JSON object of brownout settings", {})
        try:
            sandbox.brownouts.update(changes)
        except ValidationError as error:
            return settings_refused("invalid brownout settings", validation_problems(error))
        return json_answer(sandbox.brownouts.view())

    @router.post("/payments", include_in_schema=False)
    async def post_payment(request: Request) -> Response:
        body = await json_object(request)
        problems = accountant_problems(body)
        if body is None or problems:
            return settings_refused("invalid payment", problems)
        try:
            with store.lock:
                made = register_payment(store.data, body, store.clock(), store.stamp)
            return json_answer(made, 201)
        except DineroError as error:
            return error_response(error)

    @router.delete("/payments/{payment_id}", include_in_schema=False)
    async def delete_payment(payment_id: str) -> Response:
        try:
            with store.lock:
                removed = remove_payment(store.data, payment_id, store.clock(), store.stamp)
            return json_answer(removed)
        except DineroError as error:
            return error_response(error)

    return router


async def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's own refusals (outside the API's prefixes), in Dinero's error body."""
    status = error.status_code if isinstance(error, StarletteHTTPException) else 500
    code = ErrorCode.NOT_FOUND if status == 404 else None
    message = f"{request.method} {request.url.path}: {'not found' if status == 404 else 'refused'}."
    return error_response(DineroError(status, code, message))


def create_dinero_app(settings: DineroSandboxSettings) -> FastAPI:
    """The Dinero sandbox as an ASGI app, seeded, with its faults around the API's prefixes.

    `app.state.store` is its `DineroStore` (whose `clock` a test may replace to expire tokens
    or make invoices overdue), `app.state.faults` its `Faults` (whose `clock` moves the rate
    limit's window) and `app.state.brownouts` its `Brownouts`."""
    store = DineroStore(settings)
    faults = Faults(settings.faults)
    sandbox = Sandbox(settings, store, faults, Brownouts(settings.brownout))
    app = FastAPI(title="Dinero sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.state.faults = faults
    app.state.brownouts = sandbox.brownouts

    async def token(request: Request) -> Response:
        return grant_token(store, request.headers.get("authorization"), await request.body())

    def api(version: str) -> Callable[[Request], Any]:
        async def serve(request: Request) -> Response:
            return answer_request(sandbox, version, request, await request.body())

        return serve

    app.router.routes.append(Route(OAUTH_PATH, token, methods=["POST"]))
    for version in VERSIONS:
        app.router.routes.append(
            Route(f"/{version}/{{path:path}}", api(version), methods=ALL_METHODS)
        )
    app.include_router(_sandbox_routes(sandbox))
    app.include_router(fault_routes(faults))
    app.add_exception_handler(StarletteHTTPException, _http_error)
    prefixes = tuple(f"/{version}" for version in VERSIONS)
    app.add_middleware(
        FaultInjector, faults=faults, error_body=dinero_error_body, prefixes=prefixes
    )
    return app
