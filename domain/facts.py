"""The event catalogue (docs/specification.md §1.2): one fact per event type, as billing systems
send it.

A fact is the `data` of a submitted event, typed. Each field is declared once, here (or on the
value it holds, `domain.values`), with its kind (`domain.fields`: `customer_id: Id`), in the
order the catalogue lists the fields; the HTTP layer derives the wire format from these
declarations (`declared_fields`). Optional fields hold `None` when the sender left them out
(defaults such as `interval_count = 1` are applied where they are used), so that a fact reads
back exactly as it was sent. The domain events of the aggregates inherit these fields.

`check()` refuses a malformed fact with `InvalidEventError` naming the field: each field by the
rule of its kind, the values inside it field by field, then the rules that tie fields together.
Rules that depend on what the ledger already holds are the aggregates' business
(`RuleViolatedError` and friends).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, ClassVar, Final, Literal

from subledger.domain.fields import (
    MAX_DISCOUNT_MONTHS,
    MAX_PERIOD_DAYS,
    Country,
    Currency,
    Day,
    Description,
    Ean,
    Email,
    ExchangeRate,
    Id,
    IntervalCount,
    ManyRule,
    Method,
    Name,
    Number,
    Period,
    PositiveAmount,
    Rule,
    VatNumber,
    refusal,
)
from subledger.domain.values import (
    CLEARED,
    Address,
    CancellationReason,
    Cleared,
    CreditLine,
    Discount,
    Interval,
    InvoiceLine,
    Kind,
    PaymentSource,
    SubscriptionItem,
    line_ids,
)


@dataclass(frozen=True)
class FieldKind:
    """What a declared field holds: `base` is `str`, `int`, `Decimal`, `date`, `Month`, a value's
    class (`Address`), or `tuple` of `item`s; `rule` is its kind's rule, `choices` those of a
    `Literal`. An `optional` field may be `None` (left out), a `removable` one `CLEARED`."""

    base: Any
    rule: Rule | None = None
    choices: tuple[str, ...] = ()
    item: FieldKind | None = None
    optional: bool = False
    removable: bool = False

    @property
    def holds_fields(self) -> bool:
        """Whether the field holds a value whose own fields are declared (an `Address`), not
        a value with a form of its own (a `Month`: its kind has a rule)."""
        return self.rule is None and dataclasses.is_dataclass(self.base)


def _kind_of(annotation: Any) -> FieldKind:
    optional = removable = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = typing.get_args(annotation)
        optional, removable = type(None) in members, Cleared in members
        others = [member for member in members if member not in (type(None), Cleared)]
        if len(others) != 1:
            raise TypeError(f"a field holds one kind of value, not {annotation!r}")
        annotation = others[0]
    rule = None
    if typing.get_origin(annotation) is Annotated:
        annotation, *metadata = typing.get_args(annotation)
        rule = next((item for item in metadata if isinstance(item, Rule)), None)
    origin = typing.get_origin(annotation)
    if origin is Literal:
        kind = FieldKind(str, choices=typing.get_args(annotation))
    elif origin is tuple:
        kind = FieldKind(tuple, item=_kind_of(typing.get_args(annotation)[0]))
    else:
        kind = FieldKind(annotation)
    return dataclasses.replace(kind, rule=rule, optional=optional, removable=removable)


@cache
def declared_fields(cls: type) -> tuple[tuple[str, FieldKind], ...]:
    """The fields of a fact or of a value, in their order, each with its kind."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return tuple((field.name, _kind_of(hints[field.name])) for field in dataclasses.fields(cls))


def _within(field: str, name: str) -> str:
    return f"{field}.{name}" if field else name


def _check_value(kind: FieldKind, value: Any, field: str) -> None:
    if value is None or value is CLEARED:
        return
    if kind.rule is not None:
        kind.rule.check(value, field)
    if kind.choices and value not in kind.choices:
        raise refusal(field, f"must be one of {', '.join(kind.choices)}")
    if kind.item is not None:
        for index, item in enumerate(value):
            _check_value(kind.item, item, f"{field}[{index}]")
    elif kind.holds_fields:
        _check_fields(value, field)


def _check_fields(value: object, field: str) -> None:
    """Each declared field of a fact or value (`field`: where the value is, "" for a fact), then
    the rules of a value's fields together."""
    cls: type = type(value)
    for name, kind in declared_fields(cls):
        _check_value(kind, getattr(value, name), _within(field, name))
    value_rules = _VALUE_RULES.get(cls)
    if value_rules is not None:
        value_rules(value, field)


def _check_discount(discount: Discount, field: str) -> None:
    if (discount.percent is None) == (discount.amount_off is None):
        raise refusal(field, "must have exactly one of percent and amount_off")
    months = discount.duration_in_months
    if discount.duration == "repeating":
        if months is None or not 1 <= months <= MAX_DISCOUNT_MONTHS:
            raise refusal(
                f"{field}.duration_in_months",
                f"a repeating discount needs 1 to {MAX_DISCOUNT_MONTHS} months",
            )
    elif months is not None:
        raise refusal(f"{field}.duration_in_months", "only a repeating discount has a duration")


def _check_line(line: InvoiceLine, field: str) -> None:
    if (line.period_start is None) != (line.period_end is None):
        raise refusal(f"{field}.period_end", "period_start and period_end come together")
    if line.period_start is not None and line.period_end is not None:
        days = (line.period_end - line.period_start).days
        if days <= 0:
            raise refusal(f"{field}.period_end", "must be after period_start")
        if days > MAX_PERIOD_DAYS:
            raise refusal(f"{field}.period_end", f"a period is at most {MAX_PERIOD_DAYS} days")
    elif line.recognition in ("daily", "monthly"):
        raise refusal(f"{field}.recognition", f"{line.recognition} recognition needs a period")


#: The rules that tie a value's fields together, checked after each of its fields.
_VALUE_RULES: Final[dict[type, Callable[[Any, str], None]]] = {
    Discount: _check_discount,
    InvoiceLine: _check_line,
}


def _check_unique(values: tuple[str, ...], field: str, what: str) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise refusal(f"{field}[{index}].line_id", f"{what} {value!r} appears twice")
        seen.add(value)


class _Declared:
    """A fact checked by its declarations: each field by its kind, then `_rules`."""

    def check(self) -> None:
        _check_fields(self, "")
        self._rules()

    def _rules(self) -> None:
        """The fact's rules across its fields (none but its fields' own, here)."""


Items = Annotated[tuple[SubscriptionItem, ...], ManyRule("items")]
InvoiceLines = Annotated[tuple[InvoiceLine, ...], ManyRule("lines")]
CreditLines = Annotated[tuple[CreditLine, ...], ManyRule("lines")]


@dataclass(frozen=True, kw_only=True)
class CustomerCreated(_Declared):
    TYPE: ClassVar[str] = "customer.created"
    customer_id: Id
    name: Name
    country: Country
    kind: Kind
    email: Email | None = None
    vat_number: VatNumber | None = None
    ean: Ean | None = None
    customer_number: Number | None = None
    address: Address | None = None

    def _rules(self) -> None:
        if self.kind == "public" and self.ean is None:
            raise refusal("ean", "a public customer needs an EAN")


@dataclass(frozen=True, kw_only=True)
class CustomerUpdated(_Declared):
    """Only the fields to change are set; `CLEARED` removes an optional one."""

    TYPE: ClassVar[str] = "customer.updated"
    customer_id: Id
    name: Name | None = None
    country: Country | None = None
    kind: Kind | None = None
    email: Email | Cleared | None = None
    vat_number: VatNumber | Cleared | None = None
    ean: Ean | Cleared | None = None
    customer_number: Number | Cleared | None = None
    address: Address | Cleared | None = None

    def _rules(self) -> None:
        changes = [name for name, _ in declared_fields(CustomerUpdated) if name != "customer_id"]
        if all(getattr(self, name) is None for name in changes):
            raise refusal(None, "name at least one field to change")


@dataclass(frozen=True, kw_only=True)
class CustomerErased(_Declared):
    TYPE: ClassVar[str] = "customer.erased"
    customer_id: Id


@dataclass(frozen=True, kw_only=True)
class SubscriptionStarted(_Declared):
    TYPE: ClassVar[str] = "subscription.started"
    subscription_id: Id
    customer_id: Id
    start_date: Day
    currency: Currency
    interval: Interval
    interval_count: IntervalCount | None = None
    items: Items
    discount: Discount | None = None
    trial_end: Day | None = None

    def _rules(self) -> None:
        if self.trial_end is not None and self.trial_end < self.start_date:
            raise refusal("trial_end", "must not be before start_date")


@dataclass(frozen=True, kw_only=True)
class SubscriptionChanged(_Declared):
    """`discount`: `None` keeps the current one, a `Discount` replaces it, `CLEARED` removes it."""

    TYPE: ClassVar[str] = "subscription.changed"
    subscription_id: Id
    effective_date: Day
    items: Items
    discount: Discount | Cleared | None = None


@dataclass(frozen=True, kw_only=True)
class SubscriptionPaused(_Declared):
    TYPE: ClassVar[str] = "subscription.paused"
    subscription_id: Id
    effective_date: Day


@dataclass(frozen=True, kw_only=True)
class SubscriptionResumed(_Declared):
    TYPE: ClassVar[str] = "subscription.resumed"
    subscription_id: Id
    effective_date: Day


@dataclass(frozen=True, kw_only=True)
class SubscriptionCancelled(_Declared):
    TYPE: ClassVar[str] = "subscription.cancelled"
    subscription_id: Id
    effective_date: Day
    requested_on: Day | None = None
    reason: CancellationReason | None = None


@dataclass(frozen=True, kw_only=True)
class InvoiceIssued(_Declared):
    """`payment_method` (docs/specification.md §1.2): how the invoice is expected to be
    paid, which picks the target's payment terms where there is no `due_date`
    (docs/specification.md §7)."""

    TYPE: ClassVar[str] = "invoice.issued"
    invoice_id: Id
    customer_id: Id
    subscription_id: Id | None = None
    issue_date: Day
    due_date: Day | None = None
    number: Number | None = None
    currency: Currency
    lines: InvoiceLines
    payment_method: Method | None = None
    exchange_rate: ExchangeRate | None = None

    @property
    def line_ids(self) -> tuple[str, ...]:
        return line_ids(self.lines)

    def _rules(self) -> None:
        if self.due_date is not None and self.due_date < self.issue_date:
            raise refusal("due_date", "must not be before issue_date")
        _check_unique(self.line_ids, "lines", "line_id")


@dataclass(frozen=True, kw_only=True)
class PaymentReceived(_Declared):
    TYPE: ClassVar[str] = "payment.received"
    payment_id: Id
    invoice_id: Id
    amount: PositiveAmount
    currency: Currency
    method: Method
    received_on: Day
    exchange_rate: ExchangeRate | None = None
    source: PaymentSource | None = None


@dataclass(frozen=True, kw_only=True)
class PaymentFailed(_Declared):
    TYPE: ClassVar[str] = "payment.failed"
    payment_id: Id
    invoice_id: Id
    amount: PositiveAmount
    currency: Currency
    failed_on: Day
    reason: Description | None = None


@dataclass(frozen=True, kw_only=True)
class PaymentRefunded(_Declared):
    TYPE: ClassVar[str] = "payment.refunded"
    refund_id: Id
    payment_id: Id
    amount: PositiveAmount
    refunded_on: Day
    exchange_rate: ExchangeRate | None = None
    source: PaymentSource | None = None


@dataclass(frozen=True, kw_only=True)
class CreditNoteIssued(_Declared):
    """`lines` absent credits every line's whole creditable net."""

    TYPE: ClassVar[str] = "credit_note.issued"
    credit_note_id: Id
    invoice_id: Id
    issue_date: Day
    number: Number | None = None
    lines: CreditLines | None = None
    exchange_rate: ExchangeRate | None = None

    def _rules(self) -> None:
        if self.lines is not None:
            _check_unique(tuple(line.line_id for line in self.lines), "lines", "line_id")


@dataclass(frozen=True, kw_only=True)
class PeriodClosed(_Declared):
    TYPE: ClassVar[str] = "period.closed"
    period: Period


@dataclass(frozen=True, kw_only=True)
class PeriodReopened(_Declared):
    TYPE: ClassVar[str] = "period.reopened"
    period: Period


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
