"""The outbox as a projection (docs/specification.md §7): what each accounting target must be told,
derived from the
log, one message per fact that an accounting system keeps.

A message names its *lane* (the customer it belongs to) and carries everything a target adapter
needs to send it but the customer's personal data: the customer's id and its non-personal fields
(country, kind, customer number), an invoice's lines with their amounts, a payment's method,
each document's `exchange_rate` where its event gave one. Personal fields (name, e-mail,
address, VAT number, EAN) are never copied into rows: they stay sealed in the log, and the
dispatcher opens them as of the message's position just before it sends the message
(`adapters.sync.personal_details`), so an erasure reaches every unsent message. Messages are
target-independent; the delivery log (`adapters.sync`) pairs each with every
configured target, under an id fixed by the target, the message's kind and its source event
(`message_id`), so rebuilding the outbox or replaying any range of it never makes a second
message for the same thing.

Kinds, each from one event: `contact` (a customer created or updated: its current non-personal
fields), `invoice`, `credit_note` (with the lines it credits, their products and the VAT its
event records), `payment` and `refund`. Messages of one lane are sent in log order, which is
dependency order: a customer's contact precedes its invoices, an invoice its payments and
credit notes, a payment its refunds. Each kind's payload has its type in `projections.messages`.

Monthly recognition is not folded here: it is the journal's revenue lines of the month (see
`recognition_voucher`), sent once the month has ended.

Rows:
- `outbox_messages` (keyed by the position of the source event): kind, lane, source event id,
  payload.
- `outbox_customers` (keyed by customer): the customer's current non-personal fields.
- `outbox_invoices` (keyed by the invoice's aggregate id): its id, number, customer, currency,
  lines (product, VAT rate), payments and refunds, and the amounts that make its open balance
  (gross, credited, paid, refunded), which reconciliation compares with the target's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final, NotRequired, TypedDict, cast
from uuid import UUID

from subledger.domain.chart import Chart
from subledger.domain.customer import Customer
from subledger.domain.dates import Month
from subledger.domain.invoice import Invoice
from subledger.domain.ledger import Entry
from subledger.domain.money import vat_of
from subledger.domain.values import Cleared, line_ids
from subledger.projections.engine import Column, Projection, Row, RowKey, Rows, RowSource, Table
from subledger.projections.journal import TOTALS
from subledger.projections.messages import (
    ContactMessage,
    CreditedLine,
    CreditNoteMessage,
    CustomerFields,
    DocumentMessage,
    InvoiceLine,
    InvoiceMessage,
    MessageKind,
    OutboxMessage,
    PaymentMessage,
    RecognitionMessage,
    RefundMessage,
    VoucherLine,
)

MESSAGES = Table(
    "outbox_messages",
    key=(Column("position", "int"),),
    values=(
        Column("kind", "text"),
        Column("lane", "text"),
        Column("source_event_id", "text"),
        Column("payload", "json"),
    ),
    written_once=True,
)
CUSTOMERS = Table(
    "outbox_customers", key=(Column("customer_id", "text"),), values=(Column("fields", "json"),)
)
INVOICES = Table(
    "outbox_invoices", key=(Column("invoice_id", "text"),), values=(Column("invoice", "json"),)
)

#: The lane of the monthly recognition vouchers, which belong to no customer.
BOOKS_LANE: Final = ""

#: Message ids are uuid5 of this namespace and `target/kind/source`.
MESSAGE_NAMESPACE: Final = UUID("2c4b8e61-0d7f-4a3e-b5c9-8f1e6a2d4b70")


class _InvoiceLine(TypedDict):
    """An invoice's line as `outbox_invoices` keeps it, for the credit notes that take from it."""

    line_id: str
    product_id: str
    description: str | None
    vat_rate: str


class _Movement(TypedDict):
    """A refund as `outbox_invoices` keeps it (and, with its method, a payment)."""

    amount: int
    date: str


class _Payment(_Movement):
    method: str


class _Invoice(TypedDict):
    """An invoice as `outbox_invoices` keeps it; `refunds` only once it has one."""

    invoice_id: str
    customer_id: str
    number: str
    currency: str
    lines: list[_InvoiceLine]
    payments: dict[str, _Payment]
    gross: int
    credited: int
    paid: int
    refunded: int
    refunds: NotRequired[dict[str, _Movement]]


def message_id(target: str, kind: str, source: str) -> str:
    """The message's id at `target`: uuid5 of `target/kind/source`, the same on every rebuild.
    `source` is the source event's id, or a recognition voucher's month (and revision)."""
    name = f"{target}/{kind}/{source}".encode()
    digest = bytearray(hashlib.sha1(MESSAGE_NAMESPACE.bytes + name, usedforsecurity=False).digest())
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    return str(UUID(bytes=bytes(digest[:16])))


class OutboxProjection(Projection):
    name = "outbox"
    #: 2: personal fields are no longer copied into rows. 3: a credit note's VAT as its event
    #: records it. 4: the invoice's payment method, and every document's exchange rate.
    version = 4
    tables = (MESSAGES, CUSTOMERS, INVOICES)
    event_types = (
        Customer.Created,
        Customer.Updated,
        Invoice.Issued,
        Invoice.CreditNoteIssued,
        Invoice.PaymentReceived,
        Invoice.PaymentRefunded,
    )
    referencing_types = (
        Customer.Updated,
        Invoice.Issued,
        Invoice.CreditNoteIssued,
        Invoice.PaymentReceived,
        Invoice.PaymentRefunded,
    )
    referenced_tables = (CUSTOMERS, INVOICES)
    fold_cost = 163  # µs per event of the log, rebuilt alone (2026-12-07)
    #: The sync and the customer audit read the outbox as it stands, never as of a past point.
    answered_as_of_the_past = False

    def keys(self, event: Any) -> Iterable[tuple[Table, RowKey]]:
        yield CUSTOMERS, (event.customer_id,)
        if not isinstance(event, Customer.Created | Customer.Updated):
            yield INVOICES, (str(event.originator_id),)

    def fold(self, rows: Rows, entry: Entry) -> None:
        event: Any = entry.event
        if isinstance(event, Customer.Created | Customer.Updated):
            fields = _customer_after(rows.get(CUSTOMERS, (event.customer_id,)), event)
            rows.put(CUSTOMERS, (event.customer_id,), {"fields": fields})
            _emit(rows, entry, "contact", _contact(event.customer_id, fields))
            return
        row = rows.get(CUSTOMERS, (event.customer_id,))
        customer = _contact(event.customer_id, row["fields"] if row else {})
        key = (str(event.originator_id),)
        invoice: _Invoice
        kind: MessageKind
        payload: DocumentMessage
        if isinstance(event, Invoice.Issued):
            invoice, payload = _issued(event, customer)
            kind = "invoice"
        else:
            stored = rows.get(INVOICES, key)
            assert stored is not None, "an invoice precedes what refers to it in the log"
            invoice = stored["invoice"]
            kind, payload = _follow_up(invoice, event, customer)
        rows.put(INVOICES, key, {"invoice": invoice})
        _emit(rows, entry, kind, payload)


def _emit(rows: Rows, entry: Entry, kind: MessageKind, payload: OutboxMessage) -> None:
    event: Any = entry.event
    rows.put(
        MESSAGES,
        (entry.position,),
        {
            "kind": kind,
            "lane": event.customer_id,
            "source_event_id": event.event_id,
            "payload": payload,
        },
    )


def _contact(customer_id: str, fields: CustomerFields) -> ContactMessage:
    """The customer as a message carries it: its id, then its non-personal fields (in the
    order they were stored). mypy cannot follow `**` into a type with optional keys that the
    unpacked one does not name (the personal ones), hence the cast."""
    return cast(ContactMessage, {"customer_id": customer_id, **fields})


def _customer_after(
    before: Row | None, event: Customer.Created | Customer.Updated
) -> CustomerFields:
    """The customer's non-personal fields (see `domain.personal`) after `event`: a
    creation's, or the earlier ones changed by an update (a cleared field removed)."""
    fields: CustomerFields = {}
    if before:
        fields.update(before["fields"])
    if event.country is not None:
        fields["country"] = event.country
    if event.kind is not None:
        fields["kind"] = event.kind
    if isinstance(event.customer_number, Cleared):
        fields.pop("customer_number", None)
    elif event.customer_number is not None:
        fields["customer_number"] = event.customer_number
    return fields


def _issued(event: Invoice.Issued, customer: ContactMessage) -> tuple[_Invoice, InvoiceMessage]:
    """The invoice as `outbox_invoices` keeps it, and its message."""
    lines: list[InvoiceLine] = []
    net = vat = 0
    for line_id, line in zip(line_ids(event.lines), event.lines, strict=True):
        line_net = line.net
        line_vat = vat_of(line_net, line.vat_rate)  # `line.vat`, without working out the net again
        net += line_net
        vat += line_vat
        lines.append(
            {
                "line_id": line_id,
                "product_id": line.product_id,
                "description": line.description,
                "quantity": str(line.quantity),
                "unit_amount": line.unit_amount,
                "discount_amount": line.discount_amount or 0,
                "vat_rate": str(line.vat_rate),
                "net": line_net,
                "vat": line_vat,
            }
        )
    invoice: _Invoice = {
        "invoice_id": event.invoice_id,
        "customer_id": event.customer_id,
        "number": event.number or event.invoice_id,
        "currency": event.currency,
        "lines": [
            {
                "line_id": line["line_id"],
                "product_id": line["product_id"],
                "description": line["description"],
                "vat_rate": line["vat_rate"],
            }
            for line in lines
        ],
        "payments": {},
        "gross": net + vat,
        "credited": 0,
        "paid": 0,
        "refunded": 0,
    }
    payload: InvoiceMessage = {
        "invoice_id": event.invoice_id,
        "number": invoice["number"],
        "issue_date": event.issue_date.isoformat(),
        "due_date": event.due_date.isoformat() if event.due_date else None,
        "currency": event.currency,
        "lines": lines,
        "net": net,
        "vat": vat,
        "gross": net + vat,
        "payment_method": event.payment_method,
        "exchange_rate": _rate(event),
        "customer": customer,
    }
    return invoice, payload


def _rate(event: Any) -> str | None:
    """The event's own `exchange_rate` as the decimal string it was sent as, or None (events
    recorded before the field existed read back without it)."""
    rate: Decimal | None = event.exchange_rate
    return None if rate is None else str(rate)


def _follow_up(
    invoice: _Invoice, event: Any, customer: ContactMessage
) -> tuple[MessageKind, DocumentMessage]:
    """The kind and message of a credit note, payment or refund, and its effect on the stored
    invoice."""
    if isinstance(event, Invoice.CreditNoteIssued):
        lines = {line["line_id"]: line for line in invoice["lines"]}
        credited: list[CreditedLine] = []
        for credit in event.credited:
            line = lines[credit.line_id]
            vat = credit.vat_at(Decimal(line["vat_rate"]))
            credited.append({**line, "net": credit.amount, "vat": vat})
        net = sum(line["net"] for line in credited)
        vat = sum(line["vat"] for line in credited)
        invoice["credited"] += net + vat
        credit_note: CreditNoteMessage = {
            "invoice_id": invoice["invoice_id"],
            "invoice_number": invoice["number"],
            "currency": invoice["currency"],
            "credit_note_id": event.credit_note_id,
            "number": event.number or event.credit_note_id,
            "issue_date": event.issue_date.isoformat(),
            "lines": credited,
            "net": net,
            "vat": vat,
            "gross": net + vat,
            "exchange_rate": _rate(event),
            "customer": customer,
        }
        return "credit_note", credit_note
    if isinstance(event, Invoice.PaymentReceived):
        received_on = event.received_on.isoformat()
        same = _alike(invoice["payments"], event.amount, received_on)
        invoice["payments"][event.payment_id] = {
            "amount": event.amount,
            "date": received_on,
            "method": event.method,
        }
        invoice["paid"] += event.amount
        payment: PaymentMessage = {
            "invoice_id": invoice["invoice_id"],
            "invoice_number": invoice["number"],
            "currency": invoice["currency"],
            "payment_id": event.payment_id,
            "amount": event.amount,
            "method": event.method,
            "date": received_on,
            # Targets keep no reference of ours on a payment: the n-th payment of this invoice
            # with this date and amount is this one.
            "ordinal": same,
            "exchange_rate": _rate(event),
            "customer": customer,
        }
        return "payment", payment
    refunds = invoice.setdefault("refunds", {})
    refunded_on = event.refunded_on.isoformat()
    same = _alike(refunds, event.amount, refunded_on)
    refunds[event.refund_id] = {"amount": event.amount, "date": refunded_on}
    invoice["refunded"] += event.amount
    refund: RefundMessage = {
        "invoice_id": invoice["invoice_id"],
        "invoice_number": invoice["number"],
        "currency": invoice["currency"],
        "refund_id": event.refund_id,
        "payment_id": event.payment_id,
        "amount": event.amount,
        "method": event.method,
        "date": refunded_on,
        "ordinal": same,
        "exchange_rate": _rate(event),
        "customer": customer,
    }
    return "refund", refund


def _alike(earlier: Mapping[str, _Movement], amount: int, day: str) -> int:
    """How many of the invoice's earlier payments (or refunds) have this amount and date."""
    return sum(1 for p in earlier.values() if p["amount"] == amount and p["date"] == day)


# Answers, read from stored rows or rows folded in memory alike.


def messages_after(rows: RowSource, position: int, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` messages whose source event comes after `position`, in log order."""
    return [
        {"position": key[0], **row}
        for key, row in rows.scan(MESSAGES, after=(position,), limit=limit)
    ]


def customer_invoices(rows: RowSource, customer_id: str) -> list[str]:
    """The ids of a customer's invoices."""
    return [
        row["invoice"]["invoice_id"]
        for _, row in rows.scan(INVOICES)
        if row["invoice"]["customer_id"] == customer_id
    ]


def invoice_balances(rows: RowSource) -> dict[str, dict[str, Any]]:
    """Each invoice's number, currency, customer, gross and open balance
    (gross − credited − paid + refunded), by invoice id."""
    answer = {}
    for _, row in rows.scan(INVOICES):
        invoice = row["invoice"]
        answer[invoice["invoice_id"]] = {
            "number": invoice["number"],
            "customer_id": invoice["customer_id"],
            "currency": invoice["currency"],
            "gross": invoice["gross"],
            "credited": invoice["credited"],
            "paid": invoice["paid"],
            "refunded": invoice["refunded"],
            "balance": invoice["gross"]
            - invoice["credited"]
            - invoice["paid"]
            + invoice["refunded"],
        }
    return answer


def recognition_voucher(
    books: RowSource, chart: Chart, month: Month, currencies: Iterable[str] | None = None
) -> RecognitionMessage:
    """The voucher that books `month`'s recognized revenue at a target whose products post to
    the deferred-revenue account: per currency, every revenue line the journal booked in the
    month (moved past closed periods like every entry), credited to its revenue account and
    debited to deferred revenue. Amounts net per account; a negative net (credited revenue) is
    a debit. `lines` is empty when the month booked no revenue.

    `currencies` are those the journal books in; without them, they are read from `books`,
    which scans every day's totals: a caller making every month's voucher reads them once."""
    first, last = month.first_day.isoformat(), month.last_day.isoformat()
    lines: list[VoucherLine] = []
    if currencies is None:
        currencies = {key[0] for key, _ in books.scan(TOTALS)}
    for currency in sorted(currencies):
        by_account: dict[str, int] = {}
        for (_, _, role, detail), row in books.scan(TOTALS, (currency,), (first, last)):
            if role == "revenue":
                account = chart.account("revenue", detail)
                by_account[account] = by_account.get(account, 0) + row["credit"] - row["debit"]
        deferred = chart.account("deferred_revenue", "")
        total = sum(by_account.values())
        if total:
            lines.append(_voucher_line(deferred, currency, total))
        for account, amount in sorted(by_account.items()):
            if amount:
                lines.append(_voucher_line(account, currency, -amount))
    return {"month": str(month), "date": month.last_day.isoformat(), "lines": lines}


def _voucher_line(account: str, currency: str, debit: int) -> VoucherLine:
    return {
        "account": account,
        "currency": currency,
        "side": "debit" if debit > 0 else "credit",
        "amount": abs(debit),
    }
