"""Billy's API as the Billy adapter (`adapters.sync.billy`) reads it: its lists, a page
at a time, the records found in them, and our accounts and products mapped to Billy's (read
once for the process's life, and again on a miss)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

import httpx

from subledger.adapters.sync.common import BASE_CURRENCY, MessageSender, TargetSettings
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
        self._base: str | None = None

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
        if self._base is None:
            organization = self.http.request(trace, "GET", "/organization")["organization"]
            self._base = str(organization.get("baseCurrencyId") or BASE_CURRENCY)
        return self._base

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

    def _product_id(self, trace: Trace, product: str) -> str:
        number = self.settings.products.get(product, product)
        found = self._product(trace, number)
        if found is None:
            raise RejectedError(
                f"Billy has no product numbered {number!r} (our {product!r}): create it or map"
                f" it under [targets.{self.name}.products]"
            )
        return str(found["id"])
