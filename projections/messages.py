"""What each kind of outbox message says: one type per kind, the payload the outbox projection
makes (`projections.outbox`), the dispatcher stores in the delivery log as JSON, and the target
adapters (`adapters.sync`) read back and send.

The types are `TypedDict`s: a payload is a JSON object at rest (in `outbox_messages` and in the
delivery log's `sync_messages`) and a plain dict in flight, so a type that describes the dict,
rather than a class built from it, costs nothing at either end and leaves the stored JSON as it
is. Each is `final`: a payload has exactly the keys its type names, which also lets mypy tell
the kinds apart by a key (`"refund_id" in payload`).

Keys marked `NotRequired` are missing from some stored messages, and a reader must expect that:
`payment_method` and `exchange_rate` came with outbox version 4, so messages the delivery log
took before lack them; a customer's fields are those it has (a customer number only where one
was given); the personal ones never are in a stored message at all (see `PersonalFields`).
"""

# No `from __future__ import annotations` here: with it, Python 3.11 cannot see `NotRequired`
# in a TypedDict's annotations, and the types' `__required_keys__` would claim every key.
from typing import Literal, NotRequired, TypedDict, final

from subledger.domain.values import Kind

MessageKind = Literal["contact", "invoice", "credit_note", "payment", "refund", "recognition"]


class AddressFields(TypedDict):
    """An address as a message carries it once opened (`domain.values.Address`)."""

    street: str
    zip: str
    city: str


class CustomerFields(TypedDict, total=False):
    """A customer's non-personal fields, those the outbox keeps (`outbox_customers`)."""

    country: str
    kind: Kind
    customer_number: str


class PersonalFields(TypedDict, total=False):
    """A customer's personal fields, never in the outbox's rows nor in the delivery log: the
    dispatcher opens them from the log just before a message is sent
    (`adapters.sync.personal_details`). An erased customer's are its placeholder name and
    `erased`."""

    name: str
    email: str
    address: AddressFields
    vat_number: str
    ean: str
    erased: bool


@final
class ContactMessage(CustomerFields, PersonalFields):
    """`contact`: a customer as it now is, after its creation or an update. Every document's
    message carries its customer this way too, as its latest contact message says."""

    customer_id: str


class _Line(TypedDict):
    line_id: str
    product_id: str
    description: str | None
    #: The VAT rate as a decimal string (`"0.25"`).
    vat_rate: str
    #: Net and VAT in minor units of the document's currency.
    net: int
    vat: int


@final
class InvoiceLine(_Line):
    """A line of an invoice: `quantity` as a decimal string, the amounts in minor units."""

    quantity: str
    unit_amount: int
    discount_amount: int


@final
class CreditedLine(_Line):
    """What a credit note takes from one invoice line: its net, and the VAT its event records."""


@final
class InvoiceMessage(TypedDict):
    """`invoice`: an issued invoice; dates are ISO days, amounts minor units of `currency`."""

    invoice_id: str
    number: str
    issue_date: str
    due_date: str | None
    currency: str
    lines: list[InvoiceLine]
    net: int
    vat: int
    gross: int
    payment_method: NotRequired[str | None]
    #: Base-currency units per unit of `currency`, as the decimal string the event gave.
    exchange_rate: NotRequired[str | None]
    customer: ContactMessage


@final
class CreditNoteMessage(TypedDict):
    """`credit_note`: a credit note against invoice `invoice_id` (numbered `invoice_number`)."""

    invoice_id: str
    invoice_number: str
    currency: str
    credit_note_id: str
    number: str
    issue_date: str
    lines: list[CreditedLine]
    net: int
    vat: int
    gross: int
    exchange_rate: NotRequired[str | None]
    customer: ContactMessage


@final
class PaymentMessage(TypedDict):
    """`payment`: money received on an invoice. `ordinal`: how many of the invoice's earlier
    payments have the same date and amount (targets keep no reference of ours on one)."""

    invoice_id: str
    invoice_number: str
    currency: str
    payment_id: str
    amount: int
    method: str
    date: str
    ordinal: int
    exchange_rate: NotRequired[str | None]
    customer: ContactMessage


@final
class RefundMessage(TypedDict):
    """`refund`: money paid back of payment `payment_id`, by that payment's method; `ordinal`
    as a payment's, among the invoice's refunds."""

    invoice_id: str
    invoice_number: str
    currency: str
    refund_id: str
    payment_id: str
    amount: int
    method: str
    date: str
    ordinal: int
    exchange_rate: NotRequired[str | None]
    customer: ContactMessage


class VoucherLine(TypedDict):
    account: str
    currency: str
    side: Literal["debit", "credit"]
    amount: int


@final
class RecognitionMessage(TypedDict):
    """`recognition`: the revenue recognized in `month` (`2026-02`), booked on `date`, its
    last day, out of deferred revenue; not folded by the outbox but made from the journal once
    the month has ended (`projections.outbox.recognition_voucher`)."""

    month: str
    date: str
    lines: list[VoucherLine]


#: A message about a customer, whose `customer` a target must know first.
DocumentMessage = InvoiceMessage | CreditNoteMessage | PaymentMessage | RefundMessage
#: What the outbox projection folds the log into.
OutboxMessage = ContactMessage | InvoiceMessage | CreditNoteMessage | PaymentMessage | RefundMessage
#: Any message's payload. (Each union is spelled out: mypy narrows a union made of unions less
#: well by a key, as in `"customer" in payload`.)
Payload = (
    ContactMessage
    | InvoiceMessage
    | CreditNoteMessage
    | PaymentMessage
    | RefundMessage
    | RecognitionMessage
)
