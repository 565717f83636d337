"""Routing `/v2`: which resource a request is for, what it may do there, and its answer.

A request is authenticated by its `X-Access-Token`, then handled whole under the store's lock;
a write answers every record it changed, as it now reads.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from fastapi import Request, Response
from starlette.datastructures import QueryParams

from subledger.adapters.sandbox.billy.balances import invoice_view, modifiers_on
from subledger.adapters.sandbox.billy.contacts import create_contact, create_person, update_contact
from subledger.adapters.sandbox.billy.daybook import create_transaction, update_transaction
from subledger.adapters.sandbox.billy.envelope import (
    BillyError,
    error_response,
    json_response,
    record_not_found,
    validation_failed,
)
from subledger.adapters.sandbox.billy.invoices import create_invoice, delete_invoice, update_invoice
from subledger.adapters.sandbox.billy.listing import (
    CONTACT_FILTERS,
    INVOICE_FILTERS,
    NAME_SEARCH,
    TRANSACTION_FILTERS,
    Filter,
    Query,
    list_page,
)
from subledger.adapters.sandbox.billy.payments import create_payment, update_payment
from subledger.adapters.sandbox.billy.products import create_product, update_product
from subledger.adapters.sandbox.billy.sending import create_delivery, send_email
from subledger.adapters.sandbox.billy.state import BillyData, BillyStore, Changes
from subledger.adapters.sandbox.fields import Record, dumps, known

logger = logging.getLogger("subledger.sandbox.billy")


Creator = Callable[[BillyData, Mapping[str, Any]], Changes]
Updater = Callable[[BillyData, Record, Mapping[str, Any]], Changes]
Deleter = Callable[[BillyData, str], Changes]


@dataclass(frozen=True)
class Resource:
    """One `/v2/{plural}` collection: its names, its filters, the writes it takes and the
    relations `include` may add to it."""

    plural: str
    singular: str
    filters: Mapping[str, Filter] = field(default_factory=dict)
    create: Creator | None = None
    update: Updater | None = None
    delete: Deleter | None = None
    includes: frozenset[str] = frozenset()


#: Lists honour exactly the filters Billy documents (and `q` on contacts, products and
#: accounts, which Billy's own clients use); any other query parameter is ignored.
RESOURCES: Final = {
    resource.plural: resource
    for resource in (
        Resource("accounts", "account", NAME_SEARCH),
        Resource("taxRates", "taxRate"),
        Resource("salesTaxRulesets", "salesTaxRuleset"),
        Resource("daybooks", "daybook"),
        Resource("contacts", "contact", CONTACT_FILTERS, create_contact, update_contact),
        Resource("contactPersons", "contactPerson", create=create_person),
        Resource("products", "product", NAME_SEARCH, create_product, update_product),
        Resource(
            "invoices",
            "invoice",
            INVOICE_FILTERS,
            create_invoice,
            update_invoice,
            delete_invoice,
            includes=frozenset({"balanceModifiers"}),
        ),
        Resource("invoiceDeliveries", "invoiceDelivery", create=create_delivery),
        Resource("bankPayments", "bankPayment", create=create_payment, update=update_payment),
        Resource("balanceModifiers", "balanceModifier"),
        Resource(
            "daybookTransactions",
            "daybookTransaction",
            TRANSACTION_FILTERS,
            create_transaction,
            update_transaction,
        ),
    )
}


def _render(data: BillyData, plural: str, record: Record) -> Record:
    return invoice_view(data, record) if plural == "invoices" else record


def _included(resource: Resource, params: QueryParams) -> dict[str, str]:
    """The relations of `resource` that `include` asks for (`invoice.balanceModifiers:embed`),
    each with its mode: `embed`, or `sideload` (the default). Relations the sandbox does not
    include are ignored; invoice lines are embedded whatever is asked."""
    asked: dict[str, str] = {}
    for item in (params.get("include") or "").split(","):
        path, _, mode = item.strip().partition(":")
        if not path:
            continue
        if mode not in ("", "embed", "sideload"):
            problem = {"include": f"{item.strip()}: the mode must be embed or sideload"}
            raise validation_failed(resource.singular, problem)
        owner, _, relation = path.partition(".")
        if owner == resource.singular and relation in resource.includes:
            asked[relation] = mode or "sideload"
    return asked


def _include_modifiers(data: BillyData, invoices: list[Record], mode: str) -> list[Record]:
    """Embed each invoice's balance modifiers (`balanceModifiers`), or name them
    (`balanceModifierIds`) and answer them, to be sideloaded at the root."""
    sideloaded: list[Record] = []
    for invoice in invoices:
        modifiers = modifiers_on(data, invoice["id"])
        if mode == "embed":
            invoice["balanceModifiers"] = modifiers
        else:
            invoice["balanceModifierIds"] = [modifier["id"] for modifier in modifiers]
            sideloaded.extend(modifiers)
    return sideloaded


def _handle(data: BillyData, method: str, parts: list[str], body: bytes, query: Query) -> Record:
    """The answer to one authenticated `/v2/...` request (called with the lock held)."""
    resource = RESOURCES.get(parts[0]) if parts else None
    if parts == ["organization"]:
        _allow(method, ("GET",), parts)
        return {"organization": data.organization}
    if resource is not None and len(parts) == 1:
        return _collection(data, resource, method, body, query)
    if resource is not None and len(parts) == 2:
        return _item(data, resource, parts[1], method, body, query)
    if len(parts) == 3 and parts[0] == "invoices" and parts[2] == "emails":
        return _emails(data, parts[1], method, body, query)
    raise BillyError(404, "UNKNOWN_RESOURCE", f"There is no resource at /v2/{'/'.join(parts)}.")


def _collection(
    data: BillyData, resource: Resource, method: str, body: bytes, query: Query
) -> Record:
    _allow(method, ("GET", "POST") if resource.create else ("GET",), [resource.plural])
    if method == "GET":
        included = _included(resource, query.params)
        table = data.tables[resource.plural]
        records = (_render(data, resource.plural, record) for record in table.values())
        listing = list_page(
            data, resource.plural, resource.singular, records, query, resource.filters
        )
        return _with_included(data, listing, listing[resource.plural], included)
    changes = known(resource.create)(data, _payload(body, resource.singular))
    return _written(data, changes)


def _item(
    data: BillyData, resource: Resource, record_id: str, method: str, body: bytes, query: Query
) -> Record:
    allowed = ["GET"] + ["PUT"] * bool(resource.update) + ["DELETE"] * bool(resource.delete)
    _allow(method, tuple(allowed), [resource.plural, record_id])
    if method == "DELETE":
        return _written(data, known(resource.delete)(data, record_id))
    record = data.tables[resource.plural].get(record_id)
    if record is None:
        raise record_not_found(resource.plural, record_id)
    if method == "GET":
        included = _included(resource, query.params)
        view = _render(data, resource.plural, record)
        return _with_included(data, {resource.singular: view}, [view], included)
    changes = known(resource.update)(data, record, _payload(body, resource.singular))
    return _written(data, changes)


def _with_included(
    data: BillyData, answer: Record, records: list[Record], included: Mapping[str, str]
) -> Record:
    """`answer` with the relations asked for added to its `records` (or sideloaded)."""
    mode = included.get("balanceModifiers")
    if mode is not None:
        sideloaded = _include_modifiers(data, records, mode)
        if mode == "sideload":
            answer["balanceModifiers"] = sideloaded
    return answer


def _emails(data: BillyData, invoice_id: str, method: str, body: bytes, query: Query) -> Record:
    """`/v2/invoices/{id}/emails`: POST sends one; GET lists those sent (a sandbox extension)."""
    _allow(method, ("GET", "POST"), ["invoices", invoice_id, "emails"])
    invoice = data.tables["invoices"].get(invoice_id)
    if invoice is None:
        raise record_not_found("invoices", invoice_id)
    if method == "GET":
        table = data.tables["emails"].values()
        emails = (email for email in table if email["invoiceId"] == invoice_id)
        return list_page(data, "emails", "email", emails, query, {})
    return _written(data, send_email(data, invoice, _payload(body, "email")))


def _allow(method: str, allowed: tuple[str, ...], parts: list[str]) -> None:
    if method not in allowed:
        raise BillyError(
            405,
            "METHOD_NOT_ALLOWED",
            f"{method} is not allowed on /v2/{'/'.join(parts)} (only {', '.join(allowed)}).",
        )


def _payload(body: bytes, singular: str) -> Mapping[str, Any]:
    """The record a write sends, as `{"<singular>": {...}}`."""
    try:
        root = orjson.loads(body)
    except orjson.JSONDecodeError:
        root = None
    if not isinstance(root, dict):
        raise BillyError(400, "INVALID_REQUEST_BODY", "The request body must be a JSON object.")
    record = root.get(singular)
    if not isinstance(record, dict):
        raise BillyError(
            400,
            "INVALID_REQUEST_BODY",
            f'The request body must hold the record as an object: {{"{singular}": {{...}}}}.',
        )
    return record


def _written(data: BillyData, changes: Changes) -> Record:
    """A write's answer: every record it changed, as it now reads, keyed by plural."""
    meta: Record = {"statusCode": 200, "success": True}
    if changes.deleted:
        meta["deletedRecords"] = changes.deleted
    body: Record = {"meta": meta}
    for plural, ids in changes.touched.items():
        table = data.tables[plural]
        body[plural] = [_render(data, plural, table[i]) for i in ids if i in table]
    return body


def _authenticate(given: str | None, token: str) -> None:
    if not given:
        raise BillyError(
            401, "AUTHENTICATION_REQUIRED", "Authentication is required: send X-Access-Token."
        )
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise BillyError(401, "OAUTH_INVALID_ACCESS_TOKEN", "The access token is not valid.")


def answer_request(store: BillyStore, token: str, request: Request, body: bytes) -> Response:
    """Authenticate, then handle the request whole under the store's lock."""
    path = str(request.path_params.get("path", ""))
    parts = [part for part in path.split("/") if part]
    query = Query(request.query_params, request.url)
    try:
        _authenticate(request.headers.get("x-access-token"), token)
        with store.lock:
            content = dumps(_handle(store.data, request.method, parts, body, query))
    except BillyError as error:
        return error_response(error)
    except Exception:
        logger.exception("the Billy sandbox failed on %s /v2/%s", request.method, path)
        failure = BillyError(500, "INTERNAL_SERVER_ERROR", "The sandbox failed; see its log.")
        return error_response(failure)
    return json_response(content)
