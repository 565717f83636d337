"""`/products`: the price list entries a document line may name."""

from __future__ import annotations

from typing import Final

from subledger.adapters.sandbox.dinero.envelope import (
    EXTERNAL_REFERENCE_MAX,
    Answer,
    Call,
    Fields,
    body_object,
    invalid,
    not_found,
    optional_amount,
    read_account,
)
from subledger.adapters.sandbox.dinero.lists import Filterable, list_page
from subledger.adapters.sandbox.dinero.state import DineroData, Product, canonical_guid, new_guid
from subledger.adapters.sandbox.fields import Record

#: The units of products and lines: the two the reference names (it did not find the full list).
UNITS: Final = ("parts", "hours")

#: Products take no `queryFilter`.
PRODUCT_FILTERS: Final[Filterable] = {}


def _read_product(data: DineroData, f: Fields) -> Record:
    """A product's fields, checked as a whole: `AccountNumber`, `BaseAmountValue` (DKK, the
    products' currency), `Quantity` (not 0) and `Unit` are required."""
    account = read_account(f, data, "AccountNumber", required=True)
    quantity = f.number("Quantity", required=True, nonzero=True)
    product = {
        "ProductNumber": f.text("ProductNumber"),
        "Name": f.text("Name"),
        "BaseAmountValue": optional_amount(f.money("BaseAmountValue", required=True)),
        "Quantity": None if quantity is None else f.get("Quantity"),
        "AccountNumber": account["AccountNumber"] if account else None,
        "Unit": f.choice("Unit", UNITS, required=True),
        "ExternalReference": f.text("ExternalReference", max_length=EXTERNAL_REFERENCE_MAX),
        "Comment": f.text("Comment"),
    }
    f.check()
    return product


def create_product(call: Call) -> Answer:
    """201 `{ProductGuid}`; the Guid is the sandbox's (the create model has none)."""
    fields = _read_product(call.data, body_object(call.body))
    product = Product(new_guid(), fields, call.now, call.now)
    call.data.products[product.guid] = product
    return Answer({"ProductGuid": product.guid}, 201)


def _product(call: Call) -> Product:
    """The product the path names; an unknown one is 404 (as for contacts)."""
    guid = canonical_guid(call.ids[0])
    product = None if guid is None else call.data.products.get(guid)
    if product is None:
        raise not_found("product", call.ids[0])
    return product


def get_product(call: Call) -> Answer:
    """A deleted product is still read, with its `DeletedAt`."""
    return Answer(_product(call).view())


def update_product(call: Call) -> Answer:
    """PUT replaces the product's fields whole (the required ones are required again)."""
    product = _product(call)
    if product.deleted is not None:
        raise invalid({"ProductGuid": "the product is deleted"})
    product.fields = _read_product(call.data, body_object(call.body))
    product.updated = call.now
    return Answer()


def delete_product(call: Call) -> Answer:
    """DELETE takes no body; the product is kept as deleted, and no line may name it."""
    product = _product(call)
    if product.deleted is None:
        product.deleted = product.updated = call.now
    return Answer()


def list_products(call: Call) -> Answer:
    records = [product.view() for product in call.data.products.values()]
    return list_page(call, records, PRODUCT_FILTERS)
