"""The event catalogue on the wire (§1.2): one `data` model per event type, and the envelopes.

Each `data` model checks the JSON shape (types, required fields, no unknown fields) and turns
itself into the domain's fact with `to_fact()`; the domain then checks the values and the rules.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

import orjson
from pydantic import Field, model_validator

from subledger.api.http.schemas.types import (
    Amount,
    Count,
    Currency,
    DecimalString,
    Identifier,
    IsoDate,
    LongText,
    MonthString,
    PositiveAmount,
    Text,
    WireModel,
)
from subledger.domain import facts, values
from subledger.domain.dates import Month
from subledger.domain.fields import MAX_LINES
from subledger.domain.values import CLEARED

Kind = Literal["person", "company", "public"]
Interval = Literal["week", "month", "quarter", "year"]
Recognition = Literal["daily", "monthly", "point_in_time"]
Method = Annotated[
    str,
    Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", examples=["card", "bank_transfer", "mobilepay"]),
]
ExchangeRate = Annotated[
    DecimalString,
    Field(
        description="units of the accounting target's base currency per unit of the document's"
        ' currency, a decimal string > 0 (e.g. "7.4604" for EUR in DKK)',
        examples=["7.4604"],
    ),
]


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


class DataModel(WireModel):
    """The `data` of one event type."""

    def to_fact(self) -> facts.Fact:
        raise NotImplementedError

    def canonical_json(self) -> bytes:
        """The data as canonical JSON, for telling a retry from another event under the same
        id: fields in the model's order, optional fields that are null or left out omitted."""
        return self.__pydantic_serializer__.to_json(self, exclude_none=True)


class DataWithRemovals(DataModel):
    """Data in which `null` means "remove" for some fields, so it differs from leaving them out."""

    REMOVABLE: ClassVar[tuple[str, ...]] = ()

    def canonical_json(self) -> bytes:
        data = self.model_dump(mode="json", exclude_none=True)
        data.update(
            (name, None)
            for name in self.REMOVABLE
            if name in self.model_fields_set and getattr(self, name) is None
        )
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


class AddressIn(WireModel):
    street: Text
    zip: Annotated[str, Field(min_length=1, max_length=20)]
    city: Annotated[str, Field(min_length=1, max_length=100)]

    def to_value(self) -> values.Address:
        return values.Address(street=self.street, zip=self.zip, city=self.city)


class ItemIn(WireModel):
    product_id: Identifier
    quantity: DecimalString = Field(description="decimal string, > 0")
    unit_amount: Amount = Field(description="per interval, excluding VAT, in minor units")
    description: LongText | None = None

    def to_value(self) -> values.SubscriptionItem:
        return values.SubscriptionItem(
            product_id=self.product_id,
            quantity=Decimal(self.quantity),
            unit_amount=self.unit_amount,
            description=self.description,
        )


class DiscountIn(WireModel):
    """Exactly one of `percent` and `amount_off`. `duration` defaults to `forever`."""

    percent: DecimalString | None = Field(default=None, description='a fraction: "0.20" is 20%')
    amount_off: PositiveAmount | None = None
    duration: Literal["forever", "repeating", "once"] | None = None
    duration_in_months: Count | None = Field(default=None, description="for `repeating`")

    def to_value(self) -> values.Discount:
        return values.Discount(
            percent=None if self.percent is None else Decimal(self.percent),
            amount_off=self.amount_off,
            duration=self.duration,
            duration_in_months=self.duration_in_months,
        )


class LineIn(WireModel):
    line_id: Identifier | None = Field(default=None, description='defaults to "1", "2", ...')
    product_id: Identifier
    description: LongText | None = None
    quantity: DecimalString
    unit_amount: Amount = Field(description="excluding VAT, in minor units")
    discount_amount: Amount | None = Field(default=None, description="defaults to 0")
    vat_rate: DecimalString = Field(description='in [0, 1), e.g. "0.25"')
    period_start: IsoDate | None = None
    period_end: IsoDate | None = Field(default=None, description="exclusive")
    recognition: Recognition | None = None

    def to_value(self) -> values.InvoiceLine:
        return values.InvoiceLine(
            line_id=self.line_id,
            product_id=self.product_id,
            description=self.description,
            quantity=Decimal(self.quantity),
            unit_amount=self.unit_amount,
            discount_amount=self.discount_amount,
            vat_rate=Decimal(self.vat_rate),
            period_start=self.period_start,
            period_end=self.period_end,
            recognition=self.recognition,
        )


class CreditLineIn(WireModel):
    line_id: Identifier
    amount: PositiveAmount = Field(description="net, excluding VAT, in minor units")

    def to_value(self) -> values.CreditLine:
        return values.CreditLine(line_id=self.line_id, amount=self.amount)


class CustomerCreatedData(DataModel):
    customer_id: Identifier
    name: Text
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166 alpha-2")]
    kind: Kind
    email: Annotated[str, Field(max_length=254)] | None = None
    vat_number: Annotated[str, Field(max_length=20, description="CVR or EU VAT")] | None = None
    ean: Annotated[str, Field(pattern=r"^\d{13}$", description="required for public")] | None = None
    customer_number: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    address: AddressIn | None = None

    def to_fact(self) -> facts.CustomerCreated:
        return facts.CustomerCreated(
            customer_id=self.customer_id,
            name=self.name,
            country=self.country,
            kind=self.kind,
            email=self.email,
            vat_number=self.vat_number,
            ean=self.ean,
            customer_number=self.customer_number,
            address=None if self.address is None else self.address.to_value(),
        )


class CustomerUpdatedData(DataWithRemovals):
    """Only the fields to change; `null` removes an optional field (email, vat_number, ...)."""

    REQUIRED_ELSEWHERE: ClassVar[tuple[str, ...]] = ("name", "country", "kind")
    REMOVABLE = ("email", "vat_number", "ean", "customer_number", "address")

    customer_id: Identifier
    name: Text | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    kind: Kind | None = None
    email: Annotated[str, Field(max_length=254)] | None = None
    vat_number: Annotated[str, Field(max_length=20)] | None = None
    ean: Annotated[str, Field(pattern=r"^\d{13}$")] | None = None
    customer_number: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    address: AddressIn | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> CustomerUpdatedData:
        if self.model_fields_set <= {"customer_id"}:
            raise ValueError("name at least one field to change")
        for name in self.REQUIRED_ELSEWHERE:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} can be changed but not removed")
        return self

    def _change(self, name: str) -> Any:
        value = getattr(self, name)
        if value is None:
            return CLEARED if name in self.model_fields_set else None
        return value.to_value() if isinstance(value, AddressIn) else value

    def to_fact(self) -> facts.CustomerUpdated:
        return facts.CustomerUpdated(
            customer_id=self.customer_id,
            name=self.name,
            country=self.country,
            kind=self.kind,
            email=self._change("email"),
            vat_number=self._change("vat_number"),
            ean=self._change("ean"),
            customer_number=self._change("customer_number"),
            address=self._change("address"),
        )


class CustomerErasedData(DataModel):
    customer_id: Identifier

    def to_fact(self) -> facts.CustomerErased:
        return facts.CustomerErased(customer_id=self.customer_id)


Items = Annotated[list[ItemIn], Field(min_length=1, max_length=MAX_LINES)]


class SubscriptionStartedData(DataModel):
    subscription_id: Identifier
    customer_id: Identifier
    start_date: IsoDate
    currency: Currency
    interval: Interval
    interval_count: Count | None = Field(default=None, description="defaults to 1")
    items: Items
    discount: DiscountIn | None = None
    trial_end: IsoDate | None = None

    def to_fact(self) -> facts.SubscriptionStarted:
        return facts.SubscriptionStarted(
            subscription_id=self.subscription_id,
            customer_id=self.customer_id,
            start_date=self.start_date,
            currency=self.currency,
            interval=self.interval,
            interval_count=self.interval_count,
            items=tuple(item.to_value() for item in self.items),
            discount=None if self.discount is None else self.discount.to_value(),
            trial_end=self.trial_end,
        )


class SubscriptionChangedData(DataWithRemovals):
    """`discount`: left out keeps the current one, `null` removes it, an object replaces it."""

    REMOVABLE = ("discount",)

    subscription_id: Identifier
    effective_date: IsoDate
    items: Items = Field(description="the full new list of items")
    discount: DiscountIn | None = None

    def to_fact(self) -> facts.SubscriptionChanged:
        discount: values.Discount | values.Cleared | None
        if self.discount is not None:
            discount = self.discount.to_value()
        else:
            discount = CLEARED if "discount" in self.model_fields_set else None
        return facts.SubscriptionChanged(
            subscription_id=self.subscription_id,
            effective_date=self.effective_date,
            items=tuple(item.to_value() for item in self.items),
            discount=discount,
        )


class SubscriptionPausedData(DataModel):
    subscription_id: Identifier
    effective_date: IsoDate

    def to_fact(self) -> facts.SubscriptionPaused:
        return facts.SubscriptionPaused(
            subscription_id=self.subscription_id, effective_date=self.effective_date
        )


class SubscriptionResumedData(DataModel):
    subscription_id: Identifier
    effective_date: IsoDate

    def to_fact(self) -> facts.SubscriptionResumed:
        return facts.SubscriptionResumed(
            subscription_id=self.subscription_id, effective_date=self.effective_date
        )


class SubscriptionCancelledData(DataModel):
    subscription_id: Identifier
    effective_date: IsoDate = Field(description="the first day without service")
    requested_on: IsoDate | None = None
    reason: Literal["voluntary", "involuntary"] | None = None

    def to_fact(self) -> facts.SubscriptionCancelled:
        return facts.SubscriptionCancelled(
            subscription_id=self.subscription_id,
            effective_date=self.effective_date,
            requested_on=self.requested_on,
            reason=self.reason,
        )


class InvoiceIssuedData(DataModel):
    invoice_id: Identifier
    customer_id: Identifier
    subscription_id: Identifier | None = None
    issue_date: IsoDate
    due_date: IsoDate | None = None
    number: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    currency: Currency
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=MAX_LINES)]
    payment_method: Method | None = Field(
        default=None,
        description="how the invoice is expected to be paid; picks the target's payment terms"
        " where there is no due_date",
    )
    exchange_rate: ExchangeRate | None = None

    def to_fact(self) -> facts.InvoiceIssued:
        return facts.InvoiceIssued(
            invoice_id=self.invoice_id,
            customer_id=self.customer_id,
            subscription_id=self.subscription_id,
            issue_date=self.issue_date,
            due_date=self.due_date,
            number=self.number,
            currency=self.currency,
            lines=tuple(line.to_value() for line in self.lines),
            payment_method=self.payment_method,
            exchange_rate=_decimal(self.exchange_rate),
        )


class PaymentReceivedData(DataModel):
    payment_id: Identifier
    invoice_id: Identifier
    amount: PositiveAmount
    currency: Currency
    method: Method
    received_on: IsoDate
    exchange_rate: ExchangeRate | None = None

    def to_fact(self) -> facts.PaymentReceived:
        return facts.PaymentReceived(
            payment_id=self.payment_id,
            invoice_id=self.invoice_id,
            amount=self.amount,
            currency=self.currency,
            method=self.method,
            received_on=self.received_on,
            exchange_rate=_decimal(self.exchange_rate),
        )


class PaymentFailedData(DataModel):
    payment_id: Identifier
    invoice_id: Identifier
    amount: PositiveAmount
    currency: Currency
    failed_on: IsoDate
    reason: LongText | None = None

    def to_fact(self) -> facts.PaymentFailed:
        return facts.PaymentFailed(
            payment_id=self.payment_id,
            invoice_id=self.invoice_id,
            amount=self.amount,
            currency=self.currency,
            failed_on=self.failed_on,
            reason=self.reason,
        )


class PaymentRefundedData(DataModel):
    refund_id: Identifier
    payment_id: Identifier
    amount: PositiveAmount
    refunded_on: IsoDate
    exchange_rate: ExchangeRate | None = None

    def to_fact(self) -> facts.PaymentRefunded:
        return facts.PaymentRefunded(
            refund_id=self.refund_id,
            payment_id=self.payment_id,
            amount=self.amount,
            refunded_on=self.refunded_on,
            exchange_rate=_decimal(self.exchange_rate),
        )


class CreditNoteIssuedData(DataModel):
    """Without `lines`, the credit note credits every line's whole creditable net."""

    credit_note_id: Identifier
    invoice_id: Identifier
    issue_date: IsoDate
    number: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    lines: Annotated[list[CreditLineIn], Field(min_length=1, max_length=MAX_LINES)] | None = (
        None
    )
    exchange_rate: ExchangeRate | None = None

    def to_fact(self) -> facts.CreditNoteIssued:
        return facts.CreditNoteIssued(
            credit_note_id=self.credit_note_id,
            invoice_id=self.invoice_id,
            issue_date=self.issue_date,
            number=self.number,
            lines=None if self.lines is None else tuple(line.to_value() for line in self.lines),
            exchange_rate=_decimal(self.exchange_rate),
        )


class PeriodClosedData(DataModel):
    period: MonthString

    def to_fact(self) -> facts.PeriodClosed:
        return facts.PeriodClosed(period=Month.parse(self.period))


class PeriodReopenedData(DataModel):
    period: MonthString

    def to_fact(self) -> facts.PeriodReopened:
        return facts.PeriodReopened(period=Month.parse(self.period))


DATA_MODELS: dict[str, type[DataModel]] = {
    "customer.created": CustomerCreatedData,
    "customer.updated": CustomerUpdatedData,
    "customer.erased": CustomerErasedData,
    "subscription.started": SubscriptionStartedData,
    "subscription.changed": SubscriptionChangedData,
    "subscription.paused": SubscriptionPausedData,
    "subscription.resumed": SubscriptionResumedData,
    "subscription.cancelled": SubscriptionCancelledData,
    "invoice.issued": InvoiceIssuedData,
    "payment.received": PaymentReceivedData,
    "payment.failed": PaymentFailedData,
    "payment.refunded": PaymentRefundedData,
    "credit_note.issued": CreditNoteIssuedData,
    "period.closed": PeriodClosedData,
    "period.reopened": PeriodReopenedData,
}
assert set(DATA_MODELS) == set(facts.FACT_TYPES), "the wire catalogue follows the domain's"
