"""What every accounting target's adapter shares: a target's settings, money on the wire in
its currency's own decimals, invoice lines priced the way a person reading them expects,
payment terms, the rounding line of a credit note whose VAT a target cannot be given, and
amounts moved between currencies.

Money leaves as exact decimals in major units with the currency's ISO 4217 decimals (12345 øre
is `123.45` DKK, 1500 yen is `1500` JPY, 12345 fils is `12.345` KWD) and comes back the same
way (`domain.money.to_major` and `to_minor`); `adapters.sync.http` writes and reads them
without a float on the way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, Final, Literal, cast

import httpx

from subledger.adapters.sync.http import Budget, Explain, TargetHTTP
from subledger.adapters.sync.log_records import Message
from subledger.adapters.sync.port import RejectedError, Trace
from subledger.domain.chart import Chart
from subledger.domain.money import CURRENCY_EXPONENTS, rhu, to_major, to_minor, vat_of
from subledger.projections.messages import (
    ContactMessage,
    CreditedLine,
    CreditNoteMessage,
    InvoiceLine,
    InvoiceMessage,
    Payload,
    PaymentMessage,
    RecognitionMessage,
    RefundMessage,
)

MatchField = Literal["customer_number", "vat_number", "ean", "email"]
MATCH_FIELDS: Final = ("customer_number", "vat_number", "ean", "email")
#: The kinds of customer (`customer.created`'s `kind`) that `kinds` may set apart.
CUSTOMER_KINDS: Final = ("person", "company", "public")
#: What `kinds` may set per kind of customer, each falling back to the target's own.
KindSetting = Literal["book", "email", "e_invoice"]
KIND_SETTINGS: Final[tuple[KindSetting, ...]] = ("book", "email", "e_invoice")
#: The key of `payment_terms` that applies to a method it does not name.
DEFAULT_TERMS: Final = "default"
#: The base currency of both targets' organizations (Danish companies).
BASE_CURRENCY: Final = "DKK"
#: The kinds of message that move money on an invoice.
PaymentKind = Literal["payment", "refund"]


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
    #: `push` sends ours only; `both` also takes in the payments registered at the target on
    #: the invoices we sent it, every `poll_seconds` (docs/sync.md, "Two-way payments").
    direction: Literal["push", "both"] = "push"
    poll_seconds: float = 60.0
    #: Our product id → the target's product number (default: the same). Billy only.
    products: dict[str, str] = field(default_factory=dict)
    #: Our account number → the target's (default: the same).
    accounts: dict[str, str] = field(default_factory=dict)
    #: Days to pay by payment method (`card`, `bank_transfer`, ..., and `default` for the
    #: rest), for invoices without a due date; a new contact gets the `default` days.
    payment_terms: dict[str, int] = field(default_factory=dict)
    #: Billy: the product (VAT-free, booking to the øreafrunding account) of rounding lines.
    rounding_product: str = "rounding"
    #: Dinero: the account (VAT code none) rounding lines are booked to.
    rounding_account: str = "3670"
    #: Dinero: the organization, the integration's client and where tokens come from.
    organization_id: str = ""
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    token_url: str = ""
    #: Dinero: a VAT rate in percent ("25", "0") → the account whose VAT code has that rate,
    #: which the invoice lines of that rate are booked to (VAT follows the account there).
    vat_accounts: dict[str, str] = field(default_factory=dict)
    #: Billy: make a product it lacks on first use (booking to deferred revenue, with a sales
    #: tax ruleset of the line's VAT rate) instead of refusing the invoice.
    create_products: bool = False
    #: A kind of customer (`person`, `company`, `public`) → its own `book`, `email` or
    #: `e_invoice`; what a kind does not set is the target's.
    kinds: dict[str, dict[str, bool]] = field(default_factory=dict)
    #: When an invoice reaches the target: `on_issue`, as soon as it is issued; `on_payment`,
    #: once it is paid in full, with its credit notes and payments right after it.
    transfer: Literal["on_issue", "on_payment"] = "on_issue"
    #: Seconds between looks at an invoice that is a draft at the target, for the payments
    #: and credit notes waiting for it to be booked (`draft_recheck`, 15 minutes by default).
    draft_recheck_seconds: int = 900

    def for_kind(self, kind: str | None, setting: KindSetting) -> bool:
        """`book`, `email` or `e_invoice` for a customer of `kind`: its kind's, else ours."""
        own: bool = getattr(self, setting)
        return self.kinds.get(kind or "", {}).get(setting, own)


# Money on the wire.


def major(amount_minor: int, currency: str) -> Decimal:
    """Minor units as the exact major-unit decimal a target takes (12345 DKK → `123.45`)."""
    return to_major(amount_minor, currency)


def minor(value: Any, currency: str) -> int:
    """A target's major-unit amount (a decimal, or an integer) in minor units of `currency`,
    rounded half away from zero. A missing amount is 0."""
    if value is None:
        return 0
    if isinstance(value, float):
        value = Decimal(repr(value))
    try:
        return to_minor(Decimal(value), currency)
    except (InvalidOperation, TypeError, ValueError):
        raise RejectedError(f"the target answered {value!r} where an amount belongs") from None


def vat_percent(rate: str) -> str:
    """Our VAT rate ("0.25") in percent as the mapping spells it ("25", "12.5", "0")."""
    percent = (Decimal(rate) * 100).normalize()
    return format(percent, "f")


def converted(amount_minor: int, currency: str, rate: Fraction, into: str) -> int:
    """`amount_minor` of `currency` in minor units of `into` at `rate` (units of `into` per
    unit of `currency`), rounded half away from zero."""
    shift = CURRENCY_EXPONENTS[into] - CURRENCY_EXPONENTS[currency]
    return rhu(amount_minor * rate * Fraction(10) ** shift)


def rate_of(text: Any) -> Fraction | None:
    """An exchange rate given as a decimal string (`"7.4604"`) or read off a target, exactly;
    None when there is none."""
    if text is None:
        return None
    try:
        rate = Fraction(Decimal(str(text)))
    except (InvalidOperation, ValueError):
        return None
    return rate if rate > 0 else None


def decimal_rate(rate: Fraction) -> Decimal:
    """A rate as the decimal sent to a target (to ten places where it does not end sooner)."""
    exact = Decimal(rate.numerator) / Decimal(rate.denominator)
    return exact if exact == rate else exact.quantize(Decimal("1E-10"))


# Invoice lines.


@dataclass(frozen=True)
class PricedLine:
    """An invoice line as a target gets it: quantity × unit price where that gives the line's
    net exactly and there is no discount, else one unit at the net (the description then says
    what was bought). `unit` is in minor units of the document's currency."""

    line: InvoiceLine | CreditedLine
    quantity: Decimal
    unit: int
    description: str


def priced_lines(lines: Sequence[InvoiceLine | CreditedLine], currency: str) -> list[PricedLine]:
    """Invoice lines as `PricedLine`s; a credited line, which has no quantity, is one unit at
    its net."""
    priced = []
    for line in lines:
        description = line["description"] or line["product_id"]
        if "quantity" not in line:
            priced.append(PricedLine(line, Decimal(1), line["net"], description))
            continue
        quantity, unit = Decimal(line["quantity"]), line["unit_amount"]
        if quantity * unit != line["net"] or line["discount_amount"]:
            price = major(line["unit_amount"], currency)
            description = f"{description} ({line['quantity']} × {price})"
            quantity, unit = Decimal(1), line["net"]
        priced.append(PricedLine(line, quantity, unit, description))
    return priced


@dataclass(frozen=True)
class CreditLines:
    """A credit note's lines as a target that computes each line's VAT itself (`rhu(net ×
    rate)`) must get them so that the note's gross is ours to the minor unit (docs/specification.md
    §2: the
    credit that completes a line carries the VAT left on it, which that formula may miss by a
    few øre): `lines` are ours, a line shortened by `short` where needed, and `rounding` is a
    VAT-free line making up the difference (never negative). `net` and `vat` are the totals
    the target should then show."""

    lines: list[CreditedLine]
    rounding: int
    net: int
    vat: int


def credit_lines(lines: Sequence[CreditedLine]) -> CreditLines:
    """Our credited lines, adjusted so that a target's own per-line VAT gives our gross.

    For each line whose VAT is not `rhu(net × rate)`, its net is lowered by the fewest øre `k`
    for which `k + vat − rhu((net − k) × rate)` is not negative; that is the line's share of
    the rounding line. The target then shows net `Σ sent + rounding` and VAT `Σ rhu(sent ×
    rate)`, which add up to our net plus our VAT."""
    sent: list[CreditedLine] = []
    rounding, their_vat = 0, 0
    for line in lines:
        rate = Decimal(line["vat_rate"])
        net, vat = line["net"], line["vat"]
        short = 0
        while short < net and short + vat - vat_of(net - short, rate) < 0:
            short += 1
        share = short + vat - vat_of(net - short, rate)
        if share < 0:
            raise RejectedError(
                f"cannot give a target the VAT {vat} of a credited net {net} at {line['vat_rate']}"
            )
        kept = net - short
        sent.append({**line, "net": kept, "vat": vat_of(kept, rate)})
        rounding += share
        their_vat += vat_of(kept, rate)
    net_sent = sum(line["net"] for line in sent)
    return CreditLines(sent, rounding, net_sent + rounding, their_vat)


# Payment terms.


@dataclass(frozen=True)
class Terms:
    """An invoice's payment terms: `days` net from its date; `source` says where they came
    from (`due_date`, `method`, `default`)."""

    days: int
    source: str


def invoice_terms(payload: InvoiceMessage, by_method: Mapping[str, int]) -> Terms | None:
    """The invoice's terms: from its due date; else from the target's terms for the method it
    is to be paid by, or their `default`; None where the contact's terms must apply."""
    due = payload.get("due_date")
    if due:
        return Terms(days_between(payload["issue_date"], due), "due_date")
    method = payload.get("payment_method")
    if method and method in by_method:
        return Terms(by_method[method], "method")
    if DEFAULT_TERMS in by_method:
        return Terms(by_method[DEFAULT_TERMS], "default")
    return None


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
            self._forget(cast(Payload, message.payload))
            raise

    def _send(self, message: Message, trace: Trace) -> dict[str, Any]:
        """Send the message with the method of its kind, its payload read as that kind's type
        (`projections.messages`)."""
        payload = message.payload
        if message.kind == "contact":
            return {"contact": self._contact(trace, cast(ContactMessage, payload))}
        if message.kind == "invoice":
            return self._invoice(trace, cast(InvoiceMessage, payload))
        if message.kind == "credit_note":
            return self._credit_note(trace, cast(CreditNoteMessage, payload))
        if message.kind == "payment":
            return self._payment(trace, cast(PaymentMessage, payload), "payment")
        if message.kind == "refund":
            return self._payment(trace, cast(RefundMessage, payload), "refund")
        if message.kind == "recognition":
            return self._recognition(trace, cast(RecognitionMessage, payload), message.source)
        raise RejectedError(f"{self.name}: no message of kind {message.kind!r}")

    @abstractmethod
    def _contact(self, trace: Trace, customer: ContactMessage) -> str: ...

    @abstractmethod
    def _invoice(self, trace: Trace, payload: InvoiceMessage) -> dict[str, Any]: ...

    @abstractmethod
    def _credit_note(self, trace: Trace, payload: CreditNoteMessage) -> dict[str, Any]: ...

    @abstractmethod
    def _payment(
        self, trace: Trace, payload: PaymentMessage | RefundMessage, kind: PaymentKind
    ) -> dict[str, Any]: ...

    @abstractmethod
    def _recognition(
        self, trace: Trace, payload: RecognitionMessage, source: str
    ) -> dict[str, Any]: ...

    @abstractmethod
    def _forget(self, payload: Payload) -> None: ...
