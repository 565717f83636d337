"""Small value objects carried inside facts and events: addresses, items, discounts, lines.

They hold state only. Their rules are checked when a fact is submitted (`domain.facts`), never
when an event is read back: a stored event stays readable even if the rules tighten later.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Final, Literal

from subledger.domain.fields import (
    Amount,
    Day,
    Description,
    Fraction,
    Id,
    Name,
    PositiveAmount,
    Quantity,
    TextRule,
    VatRate,
)
from subledger.domain.money import extended_amount, vat_of

Kind = Literal["person", "company", "public"]
Interval = Literal["week", "month", "quarter", "year"]
DiscountDuration = Literal["forever", "repeating", "once"]
Recognition = Literal["daily", "monthly", "point_in_time"]
CancellationReason = Literal["voluntary", "involuntary"]

KINDS: Final = ("person", "company", "public")
INTERVALS: Final = ("week", "month", "quarter", "year")
DISCOUNT_DURATIONS: Final = ("forever", "repeating", "once")
RECOGNITIONS: Final = ("daily", "monthly", "point_in_time")
CANCELLATION_REASONS: Final = ("voluntary", "involuntary")


class Cleared:
    """Marks an optional field that an update removes (`"email": null` in `customer.updated`)."""

    _instance: Cleared | None = None

    def __new__(cls) -> Cleared:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "CLEARED"

    def __reduce__(self) -> str:
        return "CLEARED"


CLEARED: Final = Cleared()


class Sealed:
    """Marks a personal field that a stored event holds sealed (encrypted with its customer's
    key): present, but readable only where it is opened (see `domain.personal`)."""

    _instance: Sealed | None = None

    def __new__(cls) -> Sealed:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "SEALED"

    def __reduce__(self) -> str:
        return "SEALED"


SEALED: Final = Sealed()


@dataclass(frozen=True, kw_only=True)
class Address:
    street: Name
    zip: Annotated[str, TextRule(20)]
    city: Annotated[str, TextRule(100)]


@dataclass(frozen=True, kw_only=True)
class PaymentSource:
    """Where a payment or refund was registered, when an accounting target's books hold it
    first (docs/sync.md, "Two-way payments"): the `target` (`billy`, `dinero`, or the target's
    name in the configuration) and the target's own id of it (`reference`)."""

    target: Id
    reference: Id


@dataclass(frozen=True, kw_only=True)
class SubscriptionItem:
    product_id: Id
    quantity: Quantity
    unit_amount: Amount
    description: Description | None = None

    @property
    def amount(self) -> int:
        """`rhu(quantity × unit_amount)`, per interval, excluding VAT."""
        return extended_amount(self.quantity, self.unit_amount)


@dataclass(frozen=True, kw_only=True)
class Discount:
    """Exactly one of `percent` (a fraction, `0.20`) and `amount_off` (minor units) is set."""

    percent: Fraction | None = None
    amount_off: PositiveAmount | None = None
    duration: DiscountDuration | None = None
    duration_in_months: int | None = None

    @property
    def effective_duration(self) -> DiscountDuration:
        return self.duration or "forever"


@dataclass(frozen=True, kw_only=True)
class InvoiceLine:
    line_id: Id | None = None
    product_id: Id
    description: Description | None = None
    quantity: Quantity
    unit_amount: Amount
    discount_amount: Amount | None = None
    vat_rate: VatRate
    period_start: Day | None = None
    period_end: Day | None = None
    recognition: Recognition | None = None

    @property
    def gross_before_discount(self) -> int:
        """`rhu(quantity × unit_amount)`."""
        return extended_amount(self.quantity, self.unit_amount)

    @property
    def net(self) -> int:
        """`rhu(quantity × unit_amount) − discount_amount` (docs/specification.md §2)."""
        return self.gross_before_discount - (self.discount_amount or 0)

    @property
    def vat(self) -> int:
        return vat_of(self.net, self.vat_rate)


def line_ids(lines: tuple[InvoiceLine, ...]) -> tuple[str, ...]:
    """Each line's id: its own, or `"1"`, `"2"`, ... by position where it gave none."""
    return tuple(line.line_id or str(position) for position, line in enumerate(lines, start=1))


@dataclass(frozen=True, kw_only=True)
class CreditLine:
    line_id: Id
    amount: PositiveAmount


@dataclass(frozen=True, kw_only=True)
class CreditedLine:
    """What a credit note took from one invoice line, as its event records it: the net `amount`
    and its `vat`, worked out once by the invoice (`domain.money.credit_vat`) so that every
    reader books the same figure.

    Events recorded before the VAT was recorded read back with `vat` None; `vat_at` then gives
    `rhu(amount × vat_rate)`, the rule those events were booked by.
    """

    line_id: str
    amount: int
    vat: int | None = None

    def vat_at(self, vat_rate: Decimal) -> int:
        """The credit's VAT: as recorded, else `rhu(amount × vat_rate)` of the line's rate."""
        return self.vat if self.vat is not None else vat_of(self.amount, vat_rate)
