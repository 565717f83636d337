"""From a request to its handler: brownouts, the token, the organization and the endpoint.

`ENDPOINTS` names every endpoint with the version it is served under; a handler runs whole
under the store's lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from fastapi import Request, Response

from subledger.adapters.sandbox.dinero.accounts import (
    deposit_accounts,
    entry_accounts,
    list_entries,
    list_vat_types,
    sales_settings,
)
from subledger.adapters.sandbox.dinero.auth import authenticate
from subledger.adapters.sandbox.dinero.brownouts import Brownouts, brownout_error
from subledger.adapters.sandbox.dinero.contacts import (
    create_contact,
    delete_contact,
    get_contact,
    list_contacts,
    list_contacts_v2,
    restore_contact,
    update_contact,
)
from subledger.adapters.sandbox.dinero.credit_notes import (
    book_credit_note,
    create_credit_note,
    email_credit_note,
    generate_credit_note,
    get_credit_note,
    list_credit_notes,
)
from subledger.adapters.sandbox.dinero.envelope import (
    Answer,
    Call,
    DineroError,
    ErrorCode,
    Query,
    error_response,
)
from subledger.adapters.sandbox.dinero.invoices import (
    book_invoice,
    create_invoice,
    delete_invoice,
    email_invoice,
    fetch_invoice,
    get_invoice,
    list_invoices,
    send_with_ean,
    update_invoice,
)
from subledger.adapters.sandbox.dinero.ledger import (
    book_ledger_items,
    book_voucher,
    create_ledger_items,
    create_voucher,
    delete_voucher,
    get_voucher,
    ledger_items_status,
)
from subledger.adapters.sandbox.dinero.lists import project_fields
from subledger.adapters.sandbox.dinero.payments import create_payment, delete_payment, list_payments
from subledger.adapters.sandbox.dinero.products import (
    create_product,
    delete_product,
    get_product,
    list_products,
    update_product,
)
from subledger.adapters.sandbox.dinero.settings import DineroSandboxSettings
from subledger.adapters.sandbox.dinero.state import DineroStore
from subledger.adapters.sandbox.faults import Faults
from subledger.adapters.sandbox.fields import dumps

logger = logging.getLogger("subledger.sandbox.dinero")

Handler = Callable[[Call], Answer]
#: Stands for an id in a path pattern.
ID: Final = "{id}"


def _matches(pattern: Sequence[str], parts: Sequence[str]) -> bool:
    """Whether a path (after the organization) fits a pattern; literal parts in any case."""
    return len(parts) == len(pattern) and all(
        want == ID or want.lower() == part.lower()
        for want, part in zip(pattern, parts, strict=True)
    )


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: its method, the version it is served under, its path after the
    organization (literal parts matched without regard to case) and whether it writes."""

    method: str
    version: str
    pattern: tuple[str, ...]
    handler: Handler
    writes: bool | None = None

    @property
    def is_write(self) -> bool:
        return self.method != "GET" if self.writes is None else self.writes

    def matches(self, parts: Sequence[str]) -> bool:
        return _matches(self.pattern, parts)

    def ids(self, parts: Sequence[str]) -> tuple[str, ...]:
        return tuple(part for want, part in zip(self.pattern, parts, strict=True) if want == ID)


ENDPOINTS: Final = (
    Endpoint("GET", "v1", ("contacts",), list_contacts),
    Endpoint("POST", "v1", ("contacts",), create_contact),
    Endpoint("GET", "v2", ("contacts",), list_contacts_v2),
    Endpoint("GET", "v1", ("contacts", ID), get_contact),
    Endpoint("PUT", "v1", ("contacts", ID), update_contact),
    Endpoint("DELETE", "v1", ("contacts", ID), delete_contact),
    Endpoint("POST", "v1", ("contacts", ID, "restore"), restore_contact),
    Endpoint("GET", "v1", ("products",), list_products),
    Endpoint("POST", "v1", ("products",), create_product),
    Endpoint("GET", "v1", ("products", ID), get_product),
    Endpoint("PUT", "v1", ("products", ID), update_product),
    Endpoint("DELETE", "v1", ("products", ID), delete_product),
    Endpoint("GET", "v1", ("invoices",), list_invoices),
    Endpoint("POST", "v1", ("invoices",), create_invoice),
    Endpoint("POST", "v1", ("invoices", "fetch"), fetch_invoice, writes=False),
    Endpoint("GET", "v1", ("invoices", ID), get_invoice),
    Endpoint("PUT", "v1.2", ("invoices", ID), update_invoice),
    Endpoint("DELETE", "v1", ("invoices", ID), delete_invoice),
    Endpoint("POST", "v1", ("invoices", ID, "book"), book_invoice),
    Endpoint("POST", "v1", ("invoices", ID, "email"), email_invoice),
    Endpoint("POST", "v2", ("invoices", ID, "with-ean"), send_with_ean),
    Endpoint("POST", "v1", ("invoices", ID, "generate-creditnote"), generate_credit_note),
    Endpoint("POST", "v1", ("invoices", ID, "payments"), create_payment),
    Endpoint("GET", "v2", ("invoices", ID, "payments"), list_payments),
    Endpoint("DELETE", "v1", ("invoices", ID, "payments", ID), delete_payment),
    Endpoint("GET", "v1", ("sales", "creditnotes"), list_credit_notes),
    Endpoint("POST", "v1", ("sales", "creditnotes"), create_credit_note),
    Endpoint("GET", "v1", ("sales", "creditnotes", ID), get_credit_note),
    Endpoint("POST", "v1", ("sales", "creditnotes", ID, "book"), book_credit_note),
    Endpoint("POST", "v1", ("sales", "creditnotes", ID, "email"), email_credit_note),
    Endpoint("GET", "v1", ("sales", "settings"), sales_settings),
    Endpoint("GET", "v1", ("accounts", "entry"), entry_accounts),
    Endpoint("GET", "v1", ("accounts", "deposit"), deposit_accounts),
    Endpoint("GET", "v1", ("vatTypes",), list_vat_types),
    Endpoint("POST", "v1", ("vouchers", "manuel"), create_voucher),
    Endpoint("GET", "v1", ("vouchers", "manuel", ID), get_voucher),
    Endpoint("DELETE", "v1", ("vouchers", "manuel", ID), delete_voucher),
    Endpoint("POST", "v1", ("vouchers", "manuel", ID, "book"), book_voucher),
    Endpoint("POST", "v1.2", ("ledgeritems",), create_ledger_items),
    Endpoint("POST", "v1", ("ledgeritems", "status"), ledger_items_status, writes=False),
    Endpoint("POST", "v1", ("ledgeritems", "book"), book_ledger_items),
    Endpoint("GET", "v1", ("entries",), list_entries),
)

#: Endpoints Dinero is retiring: always answered 480, naming the version to use instead.
RETIRED: Final = (
    (
        "GET",
        "v1",
        ("invoices", ID, "payments"),
        "GET /v2/{organizationId}/invoices/{guid}/payments",
    ),
    (
        "POST",
        "v1",
        ("invoices", ID, "with-ean"),
        "POST /v2/{organizationId}/invoices/{guid}/with-ean",
    ),
    ("POST", "v1", ("ledgeritems",), "POST /v1.2/{organizationId}/ledgeritems"),
    ("POST", "v1.1", ("ledgeritems",), "POST /v1.2/{organizationId}/ledgeritems"),
)


def _retired(method: str, version: str, parts: Sequence[str]) -> str | None:
    """What to use instead of a retiring endpoint, or None when the request is not for one."""
    for retired_method, retired_version, pattern, instead in RETIRED:
        if (method, version) == (retired_method, retired_version) and _matches(pattern, parts):
            return instead
    return None


def _route(method: str, version: str, parts: Sequence[str]) -> Endpoint:
    """The endpoint a request is for: 404 when no path matches (or only under another
    version), 405 when the path takes other methods."""
    same_path = [endpoint for endpoint in ENDPOINTS if endpoint.matches(parts)]
    here = [endpoint for endpoint in same_path if endpoint.version == version]
    for endpoint in here:
        if endpoint.method == method:
            return endpoint
    path = "/".join(parts)
    elsewhere = [e for e in same_path if e.method == method and e.version != version]
    if elsewhere:
        raise DineroError(
            404,
            ErrorCode.NOT_FOUND,
            f"{method} {path} is served under /{elsewhere[0].version}, not /{version}.",
        )
    if here:
        allowed = ", ".join(sorted({endpoint.method for endpoint in here}))
        raise DineroError(
            405,
            None,
            f"{method} is not allowed on /{version}/{{organizationId}}/{path} (only {allowed}).",
        )
    raise DineroError(
        404, ErrorCode.NOT_FOUND, f"There is no resource at /{version}/{{organizationId}}/{path}."
    )


@dataclass
class Sandbox:
    """One running sandbox: its settings, store, faults and brownouts."""

    settings: DineroSandboxSettings
    store: DineroStore
    faults: Faults
    brownouts: Brownouts


def answer_request(sandbox: Sandbox, version: str, request: Request, body: bytes) -> Response:
    """Brownouts first, then the token, the organization and the route; the handler runs whole
    under the store's lock."""
    method = request.method
    parts = [part for part in str(request.path_params.get("path", "")).split("/") if part]
    try:
        content, status = _dispatch(sandbox, version, method, parts, request, body)
    except DineroError as error:
        return error_response(error)
    except Exception:
        logger.exception("the Dinero sandbox failed on %s %s", method, request.url.path)
        return error_response(DineroError(500, None, "The sandbox failed; see its log."))
    if content is None:
        return Response(b"", status)
    return Response(content, status, media_type="application/json")


def _dispatch(
    sandbox: Sandbox, version: str, method: str, parts: list[str], request: Request, body: bytes
) -> tuple[bytes | None, int]:
    """The answer's body and status: brownouts, the token, the organization, the route, the
    scope, and then the handler."""
    _brown_out(sandbox.brownouts, method, version, parts[1:])
    store = sandbox.store
    with store.lock:
        grant = authenticate(store, request.headers.get("authorization"), store.clock())
    query = Query.of(request.query_params)
    if version == "v1" and [part.lower() for part in parts] == ["organizations"]:
        if method != "GET":
            raise DineroError(405, None, f"{method} is not allowed on /v1/organizations.")
        with store.lock:
            return dumps(project_fields([store.data.organization], query.get("fields"))), 200
    _check_organization(sandbox.settings, version, parts)
    endpoint = _route(method, version, parts[1:])
    if endpoint.is_write and "write" not in grant.scopes:
        raise DineroError(403, ErrorCode.UNAUTHORIZED, "The token's scope does not include write.")
    with store.lock:
        call = Call(store.data, endpoint.ids(parts[1:]), body, query, store.clock(), store.stamp)
        answer = endpoint.handler(call)
        content = None if answer.body is None else dumps(answer.body)
    return content, answer.status


def _brown_out(brownouts: Brownouts, method: str, version: str, rest: Sequence[str]) -> None:
    """480 at the brownout rate, and always for an endpoint Dinero is retiring."""
    if brownouts.draw():
        raise brownout_error("Brownout: this endpoint is being retired and fails now and then.")
    instead = _retired(method, version, rest)
    if instead is not None:
        path = "/".join(rest)
        raise brownout_error(f"Brownout: {method} /{version}/.../{path} is retired; use {instead}.")


def _check_organization(
    settings: DineroSandboxSettings, version: str, parts: Sequence[str]
) -> None:
    """The path's organization must be the token's (403, code 41) and have Pro (403, code
    90); a path without a number there is no resource at all (404)."""
    if not parts or not parts[0].isdigit():
        raise DineroError(
            404, ErrorCode.NOT_FOUND, f"There is no resource at /{version}/{'/'.join(parts)}."
        )
    if int(parts[0]) != settings.organization_id:
        raise DineroError(
            403,
            ErrorCode.UNAUTHORIZED,
            f"The token gives no access to organization {parts[0]}: "
            f"it is for {settings.organization_id}.",
        )
    if not settings.is_pro:
        raise DineroError(
            403, ErrorCode.NOT_PRO, "The organization needs Dinero Pro to use the API."
        )
