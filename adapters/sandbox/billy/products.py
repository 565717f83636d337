"""`/v2/products`: what invoice lines sell, with a price per currency."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from subledger.adapters.sandbox.billy.envelope import Fields, extras, field_names, raise_if
from subledger.adapters.sandbox.billy.state import (
    BillyData,
    Changes,
    insert,
    new_id,
    now_text,
    wire,
)
from subledger.adapters.sandbox.fields import Money, Record, exponent_of

PRODUCT_FIELDS: Final = field_names(
    "id name description productNo accountId salesTaxRulesetId prices isArchived createdTime"
)


def _read_product(data: BillyData, body: Mapping[str, Any]) -> Record:
    errors: dict[str, str] = {}
    f = Fields(body, errors)
    organization = data.organization
    product = {
        "name": f.text("name", required=True),
        "description": f.text("description"),
        "productNo": f.text("productNo", numbers=True),
        "accountId": f.reference(
            "accountId",
            data.tables["accounts"],
            "account",
            default=organization["defaultSalesAccountId"],
        ),
        "salesTaxRulesetId": f.reference(
            "salesTaxRulesetId",
            data.tables["salesTaxRulesets"],
            "sales tax ruleset",
            default=organization["defaultSalesTaxRulesetId"],
        ),
        "prices": _read_prices(f),
        "isArchived": f.flag("isArchived", default=False),
    }
    raise_if(errors, "product")
    return {**product, **extras(body, PRODUCT_FIELDS)}


def _read_prices(f: Fields) -> list[Record]:
    prices = []
    for i, given in enumerate(f.objects("prices") or []):
        price = f.nested(given, f"prices[{i}].")
        currency = price.currency("currencyId", required=True)
        exponent = exponent_of(currency)
        unit_price = price.money("unitPrice", required=True, minimum=0, exponent=exponent)
        prices.append({"unitPrice": Money(unit_price or 0, exponent), "currencyId": currency})
    return prices


def create_product(data: BillyData, body: Mapping[str, Any]) -> Changes:
    product = {"id": new_id(), **_read_product(data, body), "createdTime": now_text()}
    return Changes().touch("products", insert(data.tables["products"], product)["id"])


def update_product(data: BillyData, product: Record, body: Mapping[str, Any]) -> Changes:
    fields = _read_product(data, {**wire(product), **body})
    updated = {"id": product["id"], **fields, "createdTime": product["createdTime"]}
    data.tables["products"][product["id"]] = updated
    return Changes().touch("products", product["id"])
