"""Billy's API as the Billy adapter (`adapters.sync.billy`) reads it: its lists, a page
at a time, the records found in them, and our accounts and products mapped to Billy's (read
once for the process's life, and again on a miss)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import httpx

from subledger.adapters.sync.common import (
    BASE_CURRENCY,
    MessageSender,
    TargetSettings,
    vat_percent,
)
from subledger.adapters.sync.http import Budget
from subledger.adapters.sync.port import RejectedError, Trace
from subledger.domain.chart import Chart

PAGE_SIZE: Final = 1000
Record = dict[str, Any]


def _explain(response: httpx.Response) -> str:
    """Billy's error in its own words: `errorMessage` and every validation error."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if not isinstance(body, dict):
        return str(body)[:200]
    parts = [str(body.get("errorMessage") or body.get("errorCode") or "")]
    for record in (body.get("validationErrors") or {}).values():
        parts.append(str(record.get("message", "")))
        parts.extend(f"{name}: {text}" for name, text in (record.get("attributes") or {}).items())
    return "; ".join(part for part in parts if part)


def _text(value: Any) -> str:
    """A field as compared with what it was looked up by (Billy may answer numbers)."""
    return "" if value is None else str(value)


def _fraction(rate: Any) -> Decimal | None:
    """A tax rate's `rate` as a fraction (`0.25`). Whether Billy writes 25% as `0.25` or `25`
    is not known (docs/reference/billy.md §3), so a figure above 1 is read as a percentage."""
    try:
        value = Decimal(str(rate))
    except (InvalidOperation, ValueError):
        return None
    if not value.is_finite() or value < 0:
        return None
    return value / 100 if value > 1 else value


def _having(name: str, value: str, fold: Callable[[str], str] = str) -> Callable[[Record], bool]:
    """Whether a record's `name` is `value` (both passed through `fold`)."""
    return lambda record: fold(_text(record.get(name))) == value


class BillyClient(MessageSender):
    """Requests, lists and lookups at Billy; the kinds of message are sent by its subclasses."""

    def __init__(
        self,
        settings: TargetSettings,
        chart: Chart,
        budget: Budget | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"X-Access-Token": settings.token, "Accept": "application/json"}
        super().__init__(settings, chart, headers, _explain, budget, transport)
        self._ids: dict[tuple[str, str], str] = {}
        self._accounts: dict[str, Record] | None = None
        self._products: dict[str, Record] | None = None
        self._organization: Record | None = None
        #: Each sales tax ruleset's VAT rate as a fraction, where its tax rate is known.
        self._rulesets: dict[str, Decimal] | None = None
        #: Held while a line's product is chosen, and made: one product per number.
        self._making = threading.Lock()

    # Lists and lookups.

    def _pages(self, trace: Trace, plural: str, **filters: Any) -> Iterator[Record]:
        """Every record of a list (with documented `filters` only), a page of 1,000 at a time."""
        page = 1
        while True:
            params = {**filters, "page": page, "pageSize": PAGE_SIZE}
            body = self.http.request(trace, "GET", f"/{plural}", params=params)
            yield from body.get(plural) or []
            paging = (body.get("meta") or {}).get("paging") or {}
            if page >= int(paging.get("pageCount") or 1):
                return
            page += 1

    def _first(
        self, trace: Trace, plural: str, wanted: Callable[[Record], bool], **filters: Any
    ) -> Record | None:
        """The first record of the list that is `wanted`, paging on past those that are not."""
        return next((r for r in self._pages(trace, plural, **filters) if wanted(r)), None)

    def _base_currency(self, trace: Trace) -> str:
        return str(self._org(trace).get("baseCurrencyId") or BASE_CURRENCY)

    def _org(self, trace: Trace) -> Record:
        """The organization of the token (read once)."""
        if self._organization is None:
            found = self.http.request(trace, "GET", "/organization")["organization"]
            self._organization = dict(found)
        return self._organization

    def _account(self, trace: Trace, number: str) -> Record | None:
        """The account numbered `number` (the chart is read once, and again on a miss)."""
        if self._accounts is None or number not in self._accounts:
            self._accounts = {_text(a.get("accountNo")): a for a in self._pages(trace, "accounts")}
        return self._accounts.get(number)

    def _product(self, trace: Trace, number: str) -> Record | None:
        """The product numbered `number` (products are read once, and again on a miss)."""
        if self._products is None or number not in self._products:
            self._products = {}
            for product in self._pages(trace, "products"):
                self._products.setdefault(_text(product.get("productNo")), product)
        return self._products.get(number)

    def _account_no(self, ours: str) -> str:
        return self.settings.accounts.get(ours, ours)

    def _account_id(self, trace: Trace, ours: str) -> str:
        return str(self._bank_account(trace, ours)["id"])

    def _bank_account(self, trace: Trace, ours: str) -> Record:
        theirs = self._account_no(ours)
        found = self._account(trace, theirs)
        if found is None:
            raise RejectedError(f"Billy has no account {theirs} (our {ours}): fix the mapping")
        return found

    # Products by VAT rate.

    def _ruleset_rates(self, trace: Trace) -> dict[str, Decimal]:
        """Each sales tax ruleset's VAT rate (a fraction), by the ruleset's id, where its tax
        rate is one for sales that Billy lists (both lists read once)."""
        if self._rulesets is None:
            rates = {
                _text(rate.get("id")): _fraction(rate.get("rate"))
                for rate in self._pages(trace, "taxRates")
                if rate.get("appliesToSales", True) and rate.get("isActive", True)
            }
            rulesets = {}
            for ruleset in self._pages(trace, "salesTaxRulesets"):
                rate = rates.get(_text(ruleset.get("taxRateId")))
                if rate is not None:
                    rulesets[_text(ruleset.get("id"))] = rate
            self._rulesets = rulesets
        return self._rulesets

    def _rate_of(self, trace: Trace, product: Record) -> Decimal | None:
        """The VAT rate Billy gives the product's lines (its ruleset's, else the
        organization's default ruleset's); None where that cannot be read."""
        ruleset = _text(product.get("salesTaxRulesetId")) or _text(
            self._org(trace).get("defaultSalesTaxRulesetId")
        )
        return self._ruleset_rates(trace).get(ruleset)

    def _product_id(self, trace: Trace, product: str, vat_rate: str) -> str:
        """Billy's product for our `product` at `vat_rate`, as Billy computes a line's VAT from
        its product's sales tax ruleset: the product `products` maps `"<ours>@<percent>"` to;
        else the one numbered as ours (or as `products` maps it) when its VAT is the line's,
        else its twin numbered `"<number>@<percent>"` (`PRO@0`). With `create_products`, a
        missing one is made: the plain number at the VAT of the organization's default
        ruleset, the twin at any other."""
        rate, percent = Decimal(vat_rate), vat_percent(vat_rate)
        with self._making:
            explicit = self.settings.products.get(f"{product}@{percent}")
            if explicit is not None:
                return self._product_at(trace, explicit, product, rate, percent)
            number = self.settings.products.get(product, product)
            plain = self._product(trace, number)
            if plain is not None and self._rate_of(trace, plain) in (rate, None):
                return str(plain["id"])
            twin = f"{number}@{percent}"
            if self._product(trace, twin) is not None or plain is not None:
                return self._product_at(trace, twin, product, rate, percent, plain)
            home = self._ruleset_rates(trace).get(
                _text(self._org(trace).get("defaultSalesTaxRulesetId"))
            )
            if not self.settings.create_products:
                raise RejectedError(
                    f"Billy has no product numbered {number!r} (our {product!r}): create it or"
                    f" map it under [targets.{self.name}.products]"
                )
            chosen = number if home == rate else twin
            return str(self._make_product(trace, chosen, product, rate, percent)["id"])

    def _product_at(
        self,
        trace: Trace,
        number: str,
        product: str,
        rate: Decimal,
        percent: str,
        plain: Record | None = None,
    ) -> str:
        """The product numbered `number`, which must give `rate` (made if missing and
        `create_products` says so)."""
        found = self._product(trace, number)
        if found is None and self.settings.create_products:
            found = self._make_product(trace, number, product, rate, percent)
        if found is None:
            where = f"[targets.{self.name}.products]"
            if plain is not None:
                raise RejectedError(
                    f"Billy's product {_text(plain.get('productNo'))!r} (our {product!r}) gives"
                    f" another VAT than the line's {percent}%: make a product numbered"
                    f" {number!r} with a sales tax ruleset of {percent}%, map ours as"
                    f' "{product}@{percent}" under {where}, or set create_products = true'
                )
            raise RejectedError(
                f"Billy has no product numbered {number!r} (our {product!r} at {percent}% VAT):"
                f" create it or map it under {where}"
            )
        theirs = self._rate_of(trace, found)
        if theirs is not None and theirs != rate:
            raise RejectedError(
                f"Billy's product {number!r} (our {product!r}) gives {vat_percent(str(theirs))}%"
                f" VAT, not the line's {percent}%: give it a sales tax ruleset of {percent}%"
            )
        return str(found["id"])

    def _make_product(
        self, trace: Trace, number: str, product: str, rate: Decimal, percent: str
    ) -> Record:
        """A product numbered `number` for our `product`, booking to deferred revenue (as the
        monthly vouchers assume) with a sales tax ruleset of `rate`: the organization's
        default where it has that rate, else the first that has."""
        rulesets = self._ruleset_rates(trace)
        default = _text(self._org(trace).get("defaultSalesTaxRulesetId"))
        ruleset = default if rulesets.get(default) == rate else None
        ruleset = ruleset or next((i for i, r in sorted(rulesets.items()) if r == rate), None)
        if ruleset is None:
            raise RejectedError(
                f"Billy has no sales tax ruleset of {percent}% for a product {number!r} (our"
                f" {product!r}): make one, or make the product"
            )
        ours = self.chart.account("deferred_revenue")
        account = self._account(trace, self._account_no(ours))
        if account is None:
            raise RejectedError(
                f"Billy has no account {self._account_no(ours)} (our deferred revenue {ours})"
                f" for a product {number!r} to book to: fix the mapping"
            )
        name = product if number == self.settings.products.get(product, product) else number
        fields = {
            "name": name,
            "productNo": number,
            "accountId": account["id"],
            "salesTaxRulesetId": ruleset,
        }
        made = self.http.request(trace, "POST", "/products", json={"product": fields})
        record: Record = made["products"][0]
        if self._products is None:
            self._products = {}
        self._products[number] = record
        return record
