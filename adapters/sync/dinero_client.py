"""Dinero's API as the Dinero adapter (`adapters.sync.dinero`) calls it: requests under the
organization with a bearer token, things created under Guids of ours, changes retried while
a `TimeStamp` is stale, lists a page at a time; and our accounts mapped to Dinero's."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from fractions import Fraction
from typing import Any, Final

import httpx

from subledger.adapters.sync.common import BASE_CURRENCY, MessageSender, TargetSettings, vat_percent
from subledger.adapters.sync.dinero_token import DineroToken
from subledger.adapters.sync.http import Budget
from subledger.adapters.sync.port import RejectedError, RetryableError, Trace
from subledger.domain.chart import Chart
from subledger.domain.money import CURRENCY_EXPONENTS
from subledger.projections.messages import CreditedLine, InvoiceLine

DEFAULT_URL: Final = "https://api.dinero.dk"
#: The namespace of the Guids derived from our ids.
GUIDS: Final = uuid.UUID("7f1f5c0e-5b0a-4c1e-9d3e-2a7c0b7e9d41")
#: How often a change is tried again after Dinero says its `TimeStamp` is stale (code 58).
STALE_RETRIES: Final = 3
PAGE_SIZE: Final = 1000
STALE: Final = 58
DUPLICATE: Final = 72
NO_VAT: Final = "none"


def guid(kind: str, ours: str) -> str:
    """The Guid Dinero keeps for our `kind` of thing with id `ours`."""
    return str(uuid.uuid5(GUIDS, f"{kind}:{ours}"))


def _code(error: RejectedError) -> Any:
    return error.body.get("code") if isinstance(error.body, dict) else None


def _explain(response: httpx.Response) -> str:
    """Dinero's error in its own words: the code, the message and each field's problem."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if not isinstance(body, dict):
        return str(body)[:200]
    parts = []
    if body.get("code") is not None:
        parts.append(f"code {body['code']}")
    if body.get("message"):
        parts.append(str(body["message"]))
    problems = body.get("validationErrors") or {}
    if isinstance(problems, dict):
        parts.extend(f"{name}: {text}" for name, text in problems.items())
    return "; ".join(parts) or str(body)[:200]


class DineroClient(MessageSender):
    """Requests and the mapping at Dinero; the kinds of message are sent by its subclasses."""

    def __init__(
        self,
        settings: TargetSettings,
        chart: Chart,
        budget: Budget | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/json"}
        super().__init__(settings, chart, headers, _explain, budget, transport)
        self.token = DineroToken(settings, self.http.client)
        self.organization = settings.organization_id
        #: Contact Guids by customer, and invoices' latest `TimeStamp` once booked.
        self._contacts: dict[str, str] = {}
        self._stamps: dict[str, str] = {}
        #: Our contacts found deleted at Dinero, to be restored before they are updated.
        self._deleted: set[str] = set()

    # Requests.

    def _call(
        self,
        trace: Trace,
        method: str,
        path: str,
        version: str = "v1",
        params: dict[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """A request under the organization, with a bearer token (asked for again, once, if
        Dinero refuses the one held before its time)."""
        url = f"/{version}/{self.organization}/{path}"
        for attempt in (1, 2):
            bearer = self.token.bearer(trace)
            try:
                return self.http.request(
                    trace, method, url, params, json, headers={"Authorization": f"Bearer {bearer}"}
                )
            except RejectedError as error:
                if error.status != 401 or attempt == 2:
                    raise
                self.token.forget(bearer)
        raise AssertionError("unreachable")

    def _create(self, trace: Trace, path: str, body: Any, version: str = "v1") -> bool:
        """Create what `body` describes with our own Guid: True if made now, False if Dinero
        holds it already (a 409, code 72, or `guidMustBeUnique`)."""
        try:
            self._call(trace, "POST", path, version, json=body)
            return True
        except RejectedError as error:
            if error.status == 409 or _code(error) == DUPLICATE or "guidMustBeUnique" in str(error):
                return False
            raise

    def _while_stale(
        self, stamp: str, reread: Callable[[], str], change: Callable[[str], Any]
    ) -> Any:
        """`change(stamp)`; after each code 58 (another change came first), again with the
        `TimeStamp` read anew."""
        for _ in range(STALE_RETRIES):
            try:
                return change(stamp)
            except RejectedError as error:
                if _code(error) != STALE:
                    raise
            stamp = reread()
        raise RetryableError("Dinero's TimeStamp kept changing under us (code 58): later")

    def _everything(self, trace: Trace, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every record of a list, a page of 1,000 at a time (pages count from 0)."""
        found: list[dict[str, Any]] = []
        page = 0
        while True:
            query = {**params, "page": page, "pageSize": PAGE_SIZE}
            body = self._call(trace, "GET", path, params=query)
            records = body.get("Collection") or []
            found += records
            if len(records) < PAGE_SIZE:
                return found
            page += 1

    # Mapping.

    def _account_no(self, ours: str) -> str:
        return self.settings.accounts.get(ours, ours)

    def _vat_accounts(self) -> dict[str, str]:
        """VAT rate in percent → the account lines of that rate are booked to: by default,
        25% to deferred revenue (as products at Billy book to it)."""
        deferred = self._account_no(self.chart.account("deferred_revenue"))
        return {"25": deferred, **self.settings.vat_accounts}

    def _line_account(self, line: InvoiceLine | CreditedLine) -> int:
        percent = vat_percent(line["vat_rate"])
        account = self._vat_accounts().get(percent)
        if account is None:
            raise RejectedError(
                f"no Dinero account for lines at {percent}% VAT: map one (an account whose VAT"
                f" code is {percent}%) under [targets.{self.name}.vat_accounts]"
            )
        return int(account)


def _field(record: dict[str, Any], name: str) -> Any:
    """A field of a Dinero record, whatever the casing it is answered in."""
    if name in record:
        return record[name]
    lowered = name.lower()
    return next((value for key, value in record.items() if key.lower() == lowered), None)


def _currency(document: dict[str, Any]) -> str:
    return str(document.get("Currency") or BASE_CURRENCY)


def _per_unit(kroner: int, total: int, currency: str) -> Fraction:
    """The rate (kroner per unit of `currency`) that makes `total` (minor units of
    `currency`) into `kroner` øre."""
    shift = CURRENCY_EXPONENTS[currency] - CURRENCY_EXPONENTS[BASE_CURRENCY]
    return Fraction(kroner, total) * Fraction(10) ** shift
