"""The event catalogue (§1.2 of the contract): one fact per event type, as billing systems send it.

A fact is the `data` of a submitted event, typed. Optional fields hold `None` when the sender left
them out (defaults such as `interval_count = 1` are applied where they are used), so that a fact
reads back exactly as it was sent. The domain events of the aggregates inherit these fields, so
the catalogue is declared once.

`check()` refuses a malformed fact with `InvalidEventError` naming the field; rules that depend on
what the ledger already holds are the aggregates' business (`RuleViolatedError` and friends).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import ClassVar, Final

from subledger.domain.countries import is_country
from subledger.domain.dates import Month
from subledger.domain.errors import InvalidEventError
from subledger.domain.money import MAX_AMOUNT_MINOR, is_currency
from subledger.domain.values import (
    CANCELLATION_REASONS,
    DISCOUNT_DURATIONS,
    INTERVALS,
    KINDS,
    RECOGNITIONS,
    Address,
    CancellationReason,
    Cleared,
    CreditLine,
    Discount,
    Interval,
    InvoiceLine,
    Kind,
    SubscriptionItem,
    line_ids,
)

MAX_ID_LENGTH: Final = 128
MAX_NAME_LENGTH: Final = 255
MAX_DESCRIPTION_LENGTH: Final = 1000
MAX_LINES: Final = 500
MAX_INTERVAL_COUNT: Final = 36
MAX_QUANTITY: Final = Decimal(10) ** 9
MAX_DECIMAL_PLACES: Final = 6
MAX_PERIOD_DAYS: Final = 3660
MAX_DISCOUNT_MONTHS: Final = 120
#: An exchange rate is above 0 and below this (units of the target's base currency per unit of
#: the document's currency: 1 KWD is about 22 DKK, 1 JPY about 0.04), with at most
#: `MAX_EXCHANGE_RATE_PLACES` decimals, enough for the base-currency worth of a dong or a rupiah.
MAX_EXCHANGE_RATE: Final = Decimal(10) ** 6
MAX_EXCHANGE_RATE_PLACES: Final = 10
EARLIEST_DATE: Final = date(1970, 1, 1)
LATEST_DATE: Final = date(2199, 12, 31)

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
_VAT_NUMBER = re.compile(r"^(\d{8}|[A-Z]{2}[0-9A-Z+*.]{2,13})$")
_EAN = re.compile(r"^\d{13}$")
_METHOD = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _fail(field: str, message: str) -> InvalidEventError:
    return InvalidEventError(message, field)


def check_id(value: str, field: str) -> None:
    """A sender's id: 1 to 128 characters, no control characters."""
    if not 1 <= len(value) <= MAX_ID_LENGTH:
        raise _fail(field, f"must be 1 to {MAX_ID_LENGTH} characters")
    if _CONTROL_CHARACTERS.search(value):
        raise _fail(field, "must not contain control characters")


def check_text(value: str | None, field: str, max_length: int = MAX_NAME_LENGTH) -> None:
    if value is None:
        return
    if not value.strip():
        raise _fail(field, "must not be empty")
    if len(value) > max_length:
        raise _fail(field, f"must be at most {max_length} characters")
    if _CONTROL_CHARACTERS.search(value.replace("\n", "").replace("\t", "")):
        raise _fail(field, "must not contain control characters")


def check_amount(value: int | None, field: str, *, positive: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(field, "must be an integer number of minor units")
    low = 1 if positive else 0
    if not low <= value <= MAX_AMOUNT_MINOR:
        raise _fail(field, f"must be between {low} and {MAX_AMOUNT_MINOR} minor units")


def check_currency(value: str, field: str) -> None:
    if not is_currency(value):
        raise _fail(field, f"{value!r} is not an ISO 4217 currency code")


def check_date(value: date | None, field: str) -> None:
    if value is not None and not EARLIEST_DATE <= value <= LATEST_DATE:
        raise _fail(field, f"must be between {EARLIEST_DATE} and {LATEST_DATE}")


def _decimal_places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def check_quantity(value: Decimal, field: str) -> None:
    if not value.is_finite() or not Decimal(0) < value <= MAX_QUANTITY:
        raise _fail(field, f"must be a decimal greater than 0 and at most {MAX_QUANTITY}")
    if _decimal_places(value) > MAX_DECIMAL_PLACES:
        raise _fail(field, f"must have at most {MAX_DECIMAL_PLACES} decimal places")


def check_rate(value: Decimal, field: str) -> None:
    if not value.is_finite() or not Decimal(0) <= value < Decimal(1):
        raise _fail(field, "must be a decimal in [0, 1)")
    if _decimal_places(value) > MAX_DECIMAL_PLACES:
        raise _fail(field, f"must have at most {MAX_DECIMAL_PLACES} decimal places")


def check_exchange_rate(value: Decimal | None, field: str) -> None:
    if value is None:
        return
    if not value.is_finite() or not Decimal(0) < value < MAX_EXCHANGE_RATE:
        raise _fail(field, f"must be a decimal greater than 0 and below {MAX_EXCHANGE_RATE}")
    if _decimal_places(value) > MAX_EXCHANGE_RATE_PLACES:
        raise _fail(field, f"must have at most {MAX_EXCHANGE_RATE_PLACES} decimal places")


def check_method(value: str | None, field: str) -> None:
    if value is not None and not _METHOD.match(value):
        raise _fail(field, "must be a lower-case name such as card or bank_transfer")


def _check_address(value: Address | Cleared | None, field: str) -> None:
    if isinstance(value, Address):
        check_text(value.street, f"{field}.street")
        check_text(value.zip, f"{field}.zip", 20)
        check_text(value.city, f"{field}.city", 100)


def _check_profile(fact: CustomerCreated | CustomerUpdated) -> None:
    """The customer fields shared by `customer.created` and `customer.updated`."""
    if isinstance(fact.name, str):
        check_text(fact.name, "name")
    if isinstance(fact.country, str) and not is_country(fact.country):
        raise _fail("country", f"{fact.country!r} is not an ISO 3166 alpha-2 country code")
    if isinstance(fact.kind, str) and fact.kind not in KINDS:
        raise _fail("kind", f"must be one of {', '.join(KINDS)}")
    if isinstance(fact.email, str) and (len(fact.email) > 254 or not _EMAIL.match(fact.email)):
        raise _fail("email", "is not an e-mail address")
    if isinstance(fact.vat_number, str) and not _VAT_NUMBER.match(fact.vat_number):
        raise _fail("vat_number", "must be a CVR number (8 digits) or an EU VAT number")
    if isinstance(fact.ean, str) and not _EAN.match(fact.ean):
        raise _fail("ean", "must be 13 digits")
    if isinstance(fact.customer_number, str):
        check_text(fact.customer_number, "customer_number", 64)
    _check_address(fact.address, "address")


def _check_items(items: tuple[SubscriptionItem, ...]) -> None:
    if not 1 <= len(items) <= MAX_LINES:
        raise _fail("items", f"must hold 1 to {MAX_LINES} items")
    for index, item in enumerate(items):
        field = f"items[{index}]"
        check_id(item.product_id, f"{field}.product_id")
        check_quantity(item.quantity, f"{field}.quantity")
        check_amount(item.unit_amount, f"{field}.unit_amount")
        check_text(item.description, f"{field}.description", MAX_DESCRIPTION_LENGTH)


def _check_discount(discount: Discount | Cleared | None) -> None:
    if not isinstance(discount, Discount):
        return
    if (discount.percent is None) == (discount.amount_off is None):
        raise _fail("discount", "must have exactly one of percent and amount_off")
    if discount.percent is not None and not (
        discount.percent.is_finite() and Decimal(0) < discount.percent <= Decimal(1)
    ):
        raise _fail("discount.percent", "must be a decimal in (0, 1]")
    check_amount(discount.amount_off, "discount.amount_off", positive=True)
    if discount.duration is not None and discount.duration not in DISCOUNT_DURATIONS:
        raise _fail("discount.duration", f"must be one of {', '.join(DISCOUNT_DURATIONS)}")
    if discount.duration == "repeating":
        months = discount.duration_in_months
        if months is None or not 1 <= months <= MAX_DISCOUNT_MONTHS:
            raise _fail(
                "discount.duration_in_months",
                f"a repeating discount needs 1 to {MAX_DISCOUNT_MONTHS} months",
            )
    elif discount.duration_in_months is not None:
        raise _fail("discount.duration_in_months", "only a repeating discount has a duration")


def _check_line(line: InvoiceLine, field: str) -> None:
    if line.line_id is not None:
        check_id(line.line_id, f"{field}.line_id")
    check_id(line.product_id, f"{field}.product_id")
    check_text(line.description, f"{field}.description", MAX_DESCRIPTION_LENGTH)
    check_quantity(line.quantity, f"{field}.quantity")
    check_amount(line.unit_amount, f"{field}.unit_amount")
    check_amount(line.discount_amount, f"{field}.discount_amount")
    check_rate(line.vat_rate, f"{field}.vat_rate")
    if line.recognition is not None and line.recognition not in RECOGNITIONS:
        raise _fail(f"{field}.recognition", f"must be one of {', '.join(RECOGNITIONS)}")
    if (line.period_start is None) != (line.period_end is None):
        raise _fail(f"{field}.period_end", "period_start and period_end come together")
    if line.period_start is not None and line.period_end is not None:
        check_date(line.period_start, f"{field}.period_start")
        check_date(line.period_end, f"{field}.period_end")
        days = (line.period_end - line.period_start).days
        if days <= 0:
            raise _fail(f"{field}.period_end", "must be after period_start")
        if days > MAX_PERIOD_DAYS:
            raise _fail(f"{field}.period_end", f"a period is at most {MAX_PERIOD_DAYS} days")
    elif line.recognition in ("daily", "monthly"):
        raise _fail(f"{field}.recognition", f"{line.recognition} recognition needs a period")


def _check_unique(values: tuple[str, ...], field: str, what: str) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise _fail(f"{field}[{index}].line_id", f"{what} {value!r} appears twice")
        seen.add(value)


@dataclass(frozen=True, kw_only=True)
class CustomerCreated:
    TYPE: ClassVar[str] = "customer.created"
    customer_id: str
    name: str
    country: str
    kind: Kind
    email: str | None = None
    vat_number: str | None = None
    ean: str | None = None
    customer_number: str | None = None
    address: Address | None = None

    def check(self) -> None:
        check_id(self.customer_id, "customer_id")
        _check_profile(self)
        if self.kind == "public" and self.ean is None:
            raise _fail("ean", "a public customer needs an EAN")


@dataclass(frozen=True, kw_only=True)
class CustomerUpdated:
    """Only the fields to change are set; `CLEARED` removes an optional one."""

    TYPE: ClassVar[str] = "customer.updated"
    customer_id: str
    name: str | None = None
    country: str | None = None
    kind: Kind | None = None
    email: str | Cleared | None = None
    vat_number: str | Cleared | None = None
    ean: str | Cleared | None = None
    customer_number: str | Cleared | None = None
    address: Address | Cleared | None = None

    def check(self) -> None:
        check_id(self.customer_id, "customer_id")
        _check_profile(self)


@dataclass(frozen=True, kw_only=True)
class CustomerErased:
    TYPE: ClassVar[str] = "customer.erased"
    customer_id: str

    def check(self) -> None:
        check_id(self.customer_id, "customer_id")


@dataclass(frozen=True, kw_only=True)
class SubscriptionStarted:
    TYPE: ClassVar[str] = "subscription.started"
    subscription_id: str
    customer_id: str
    start_date: date
    currency: str
    interval: Interval
    items: tuple[SubscriptionItem, ...]
    interval_count: int | None = None
    discount: Discount | None = None
    trial_end: date | None = None

    def check(self) -> None:
        check_id(self.subscription_id, "subscription_id")
        check_id(self.customer_id, "customer_id")
        check_date(self.start_date, "start_date")
        check_currency(self.currency, "currency")
        if self.interval not in INTERVALS:
            raise _fail("interval", f"must be one of {', '.join(INTERVALS)}")
        if self.interval_count is not None and not (1 <= self.interval_count <= MAX_INTERVAL_COUNT):
            raise _fail("interval_count", f"must be between 1 and {MAX_INTERVAL_COUNT}")
        _check_items(self.items)
        _check_discount(self.discount)
        check_date(self.trial_end, "trial_end")
        if self.trial_end is not None and self.trial_end < self.start_date:
            raise _fail("trial_end", "must not be before start_date")


@dataclass(frozen=True, kw_only=True)
class SubscriptionChanged:
    """`discount`: `None` keeps the current one, a `Discount` replaces it, `CLEARED` removes it."""

    TYPE: ClassVar[str] = "subscription.changed"
    subscription_id: str
    effective_date: date
    items: tuple[SubscriptionItem, ...]
    discount: Discount | Cleared | None = None

    def check(self) -> None:
        check_id(self.subscription_id, "subscription_id")
        check_date(self.effective_date, "effective_date")
        _check_items(self.items)
        _check_discount(self.discount)


@dataclass(frozen=True, kw_only=True)
class SubscriptionPaused:
    TYPE: ClassVar[str] = "subscription.paused"
    subscription_id: str
    effective_date: date

    def check(self) -> None:
        check_id(self.subscription_id, "subscription_id")
        check_date(self.effective_date, "effective_date")


@dataclass(frozen=True, kw_only=True)
class SubscriptionResumed:
    TYPE: ClassVar[str] = "subscription.resumed"
    subscription_id: str
    effective_date: date

    def check(self) -> None:
        check_id(self.subscription_id, "subscription_id")
        check_date(self.effective_date, "effective_date")


@dataclass(frozen=True, kw_only=True)
class SubscriptionCancelled:
    TYPE: ClassVar[str] = "subscription.cancelled"
    subscription_id: str
    effective_date: date
    requested_on: date | None = None
    reason: CancellationReason | None = None

    def check(self) -> None:
        check_id(self.subscription_id, "subscription_id")
        check_date(self.effective_date, "effective_date")
        check_date(self.requested_on, "requested_on")
        if self.reason is not None and self.reason not in CANCELLATION_REASONS:
            raise _fail("reason", f"must be one of {', '.join(CANCELLATION_REASONS)}")


@dataclass(frozen=True, kw_only=True)
class InvoiceIssued:
    """`payment_method` (beyond the contract's catalogue): how the invoice is expected to be
    paid, which picks the target's payment terms where there is no `due_date` (§7)."""

    TYPE: ClassVar[str] = "invoice.issued"
    invoice_id: str
    customer_id: str
    issue_date: date
    currency: str
    lines: tuple[InvoiceLine, ...]
    subscription_id: str | None = None
    due_date: date | None = None
    number: str | None = None
    payment_method: str | None = None
    exchange_rate: Decimal | None = None

    @property
    def line_ids(self) -> tuple[str, ...]:
        return line_ids(self.lines)

    def check(self) -> None:
        check_id(self.invoice_id, "invoice_id")
        check_id(self.customer_id, "customer_id")
        if self.subscription_id is not None:
            check_id(self.subscription_id, "subscription_id")
        check_date(self.issue_date, "issue_date")
        check_date(self.due_date, "due_date")
        if self.due_date is not None and self.due_date < self.issue_date:
            raise _fail("due_date", "must not be before issue_date")
        check_text(self.number, "number", 64)
        check_currency(self.currency, "currency")
        check_method(self.payment_method, "payment_method")
        check_exchange_rate(self.exchange_rate, "exchange_rate")
        if not 1 <= len(self.lines) <= MAX_LINES:
            raise _fail("lines", f"must hold 1 to {MAX_LINES} lines")
        for index, line in enumerate(self.lines):
            _check_line(line, f"lines[{index}]")
        _check_unique(self.line_ids, "lines", "line_id")


@dataclass(frozen=True, kw_only=True)
class PaymentReceived:
    TYPE: ClassVar[str] = "payment.received"
    payment_id: str
    invoice_id: str
    amount: int
    currency: str
    method: str
    received_on: date
    exchange_rate: Decimal | None = None

    def check(self) -> None:
        check_id(self.payment_id, "payment_id")
        check_id(self.invoice_id, "invoice_id")
        check_amount(self.amount, "amount", positive=True)
        check_currency(self.currency, "currency")
        check_method(self.method, "method")
        check_date(self.received_on, "received_on")
        check_exchange_rate(self.exchange_rate, "exchange_rate")


@dataclass(frozen=True, kw_only=True)
class PaymentFailed:
    TYPE: ClassVar[str] = "payment.failed"
    payment_id: str
    invoice_id: str
    amount: int
    currency: str
    failed_on: date
    reason: str | None = None

    def check(self) -> None:
        check_id(self.payment_id, "payment_id")
        check_id(self.invoice_id, "invoice_id")
        check_amount(self.amount, "amount", positive=True)
        check_currency(self.currency, "currency")
        check_date(self.failed_on, "failed_on")
        check_text(self.reason, "reason", MAX_DESCRIPTION_LENGTH)


@dataclass(frozen=True, kw_only=True)
class PaymentRefunded:
    TYPE: ClassVar[str] = "payment.refunded"
    refund_id: str
    payment_id: str
    amount: int
    refunded_on: date
    exchange_rate: Decimal | None = None

    def check(self) -> None:
        check_id(self.refund_id, "refund_id")
        check_id(self.payment_id, "payment_id")
        check_amount(self.amount, "amount", positive=True)
        check_date(self.refunded_on, "refunded_on")
        check_exchange_rate(self.exchange_rate, "exchange_rate")


@dataclass(frozen=True, kw_only=True)
class CreditNoteIssued:
    """`lines` absent credits every line's whole creditable net."""

    TYPE: ClassVar[str] = "credit_note.issued"
    credit_note_id: str
    invoice_id: str
    issue_date: date
    number: str | None = None
    lines: tuple[CreditLine, ...] | None = None
    exchange_rate: Decimal | None = None

    def check(self) -> None:
        check_id(self.credit_note_id, "credit_note_id")
        check_id(self.invoice_id, "invoice_id")
        check_date(self.issue_date, "issue_date")
        check_text(self.number, "number", 64)
        check_exchange_rate(self.exchange_rate, "exchange_rate")
        if self.lines is None:
            return
        if not 1 <= len(self.lines) <= MAX_LINES:
            raise _fail("lines", f"must hold 1 to {MAX_LINES} lines")
        for index, line in enumerate(self.lines):
            check_id(line.line_id, f"lines[{index}].line_id")
            check_amount(line.amount, f"lines[{index}].amount", positive=True)
        _check_unique(tuple(line.line_id for line in self.lines), "lines", "line_id")


@dataclass(frozen=True, kw_only=True)
class PeriodClosed:
    TYPE: ClassVar[str] = "period.closed"
    period: Month

    def check(self) -> None:
        check_date(self.period.first_day, "period")


@dataclass(frozen=True, kw_only=True)
class PeriodReopened:
    TYPE: ClassVar[str] = "period.reopened"
    period: Month

    def check(self) -> None:
        check_date(self.period.first_day, "period")


Fact = (
    CustomerCreated
    | CustomerUpdated
    | CustomerErased
    | SubscriptionStarted
    | SubscriptionChanged
    | SubscriptionPaused
    | SubscriptionResumed
    | SubscriptionCancelled
    | InvoiceIssued
    | PaymentReceived
    | PaymentFailed
    | PaymentRefunded
    | CreditNoteIssued
    | PeriodClosed
    | PeriodReopened
)

FACT_TYPES: Final[dict[str, type[Fact]]] = {
    cls.TYPE: cls
    for cls in (
        CustomerCreated,
        CustomerUpdated,
        CustomerErased,
        SubscriptionStarted,
        SubscriptionChanged,
        SubscriptionPaused,
        SubscriptionResumed,
        SubscriptionCancelled,
        InvoiceIssued,
        PaymentReceived,
        PaymentFailed,
        PaymentRefunded,
        CreditNoteIssued,
        PeriodClosed,
        PeriodReopened,
    )
}
