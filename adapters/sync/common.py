"""What every accounting target's adapter shares: a target's settings, money on the wire in
major units, and invoice lines priced the way a person reading them expects."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, Literal

import httpx

from adapters.sync.http import Budget, Explain, TargetHTTP
from adapters.sync.log import Message
from adapters.sync.port import RejectedError, Trace
from domain.chart import Chart

MatchField = Literal["customer_number", "vat_number", "ean", "email"]
MATCH_FIELDS: Final = ("customer_number", "vat_number", "ean", "email")


@dataclass(frozen=True)
class TargetSettings:
    """One configured target (`[targets.<name>]` in subledger.toml). `token` is Billy's access
    token, or the API key of a Dinero organization (its personal integration)."""

    name: str
    kind: Literal["billy", "dinero"]
    url: str
    token: str = field(repr=False)
    book: bool = True
    email: bool = False
    e_invoice: bool = False
    match: MatchField = "customer_number"
    requests_per_minute: int = 300
    timeout_seconds: float = 20.0
    #: Our product id → the target's product number (default: the same). Billy only.
    products: dict[str, str] = field(default_factory=dict)
    #: Our account number → the target's (default: the same).
    accounts: dict[str, str] = field(default_factory=dict)
    #: Dinero: the organization, the integration's client and where tokens come from.
    organization_id: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    token_url: str = ""
    #: Dinero: a VAT rate in percent ("25", "0") → the account whose VAT code has that rate,
    #: which the invoice lines of that rate are booked to (VAT follows the account there).
    vat_accounts: dict[str, str] = field(default_factory=dict)


def major(minor: int) -> float:
    """Minor units as the major-unit number targets take (12345 → 123.45)."""
    return float(Decimal(minor) / 100)


def minor(major_units: Any) -> int:
    """A target's major-unit amount in minor units, rounded half up."""
    return int((Decimal(str(major_units)) * 100).quantize(Decimal(1), ROUND_HALF_UP))


def vat_percent(rate: str) -> str:
    """Our VAT rate ("0.25") in percent as the mapping spells it ("25", "12.5", "0")."""
    percent = (Decimal(rate) * 100).normalize()
    return format(percent, "f")


@dataclass(frozen=True)
class PricedLine:
    """An invoice line as a target gets it: quantity × unit price where that gives the line's
    net exactly and there is no discount, else one unit at the net (the description then says
    what was bought)."""

    line: dict[str, Any]
    quantity: Decimal
    unit: int
    description: str


def priced_lines(lines: list[dict[str, Any]]) -> list[PricedLine]:
    priced = []
    for line in lines:
        quantity = Decimal(line["quantity"]) if "quantity" in line else Decimal(1)
        unit = line.get("unit_amount", line["net"])
        description = line.get("description") or line["product_id"]
        if quantity * unit != line["net"] or line.get("discount_amount"):
            if "quantity" in line:
                description = f"{description} ({line['quantity']} × {major(line['unit_amount'])})"
            quantity, unit = Decimal(1), line["net"]
        priced.append(PricedLine(line, quantity, unit, description))
    return priced


def days_between(first: str, last: str) -> int:
    return (date.fromisoformat(last) - date.fromisoformat(first)).days


class MessageSender(ABC):
    """What a target adapter does with each kind of message; `send` picks the method, and on
    any failure forgets what the process remembered about the message's contact and invoices,
    so that the next attempt looks them up afresh."""

    def __init__(
        self,
        settings: TargetSettings,
        chart: Chart,
        headers: dict[str, str],
        explain: Explain,
        budget: Budget | None,
        transport: httpx.BaseTransport | None,
    ) -> None:
        self.name = settings.name
        self.settings = settings
        self.chart = chart
        self.http = TargetHTTP(
            settings.url.rstrip("/"), headers, settings.timeout_seconds, budget, explain, transport
        )

    def close(self) -> None:
        self.http.close()

    def send(self, message: Message, trace: Trace) -> dict[str, Any]:
        try:
            return self._send(message, trace)
        except Exception:
            self._forget(message.payload)
            raise

    def _send(self, message: Message, trace: Trace) -> dict[str, Any]:
        payload = message.payload
        if message.kind == "contact":
            return {"contact": self._contact(trace, payload)}
        if message.kind == "invoice":
            return self._invoice(trace, payload)
        if message.kind == "credit_note":
            return self._credit_note(trace, payload)
        if message.kind in ("payment", "refund"):
            return self._payment(trace, payload, message.kind)
        if message.kind == "recognition":
            return self._recognition(trace, payload, message.source)
        raise RejectedError(f"{self.name}: no message of kind {message.kind!r}")

    @abstractmethod
    def _contact(self, trace: Trace, customer: dict[str, Any]) -> str: ...

    @abstractmethod
    def _invoice(self, trace: Trace, payload: dict[str, Any]) -> dict[str, Any]: ...

    @abstractmethod
    def _credit_note(self, trace: Trace, payload: dict[str, Any]) -> dict[str, Any]: ...

    @abstractmethod
    def _payment(self, trace: Trace, payload: dict[str, Any], kind: str) -> dict[str, Any]: ...

    @abstractmethod
    def _recognition(
        self, trace: Trace, payload: dict[str, Any], source: str
    ) -> dict[str, Any]: ...

    @abstractmethod
    def _forget(self, payload: dict[str, Any]) -> None: ...
