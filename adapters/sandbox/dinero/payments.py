"""`/invoices/{guid}/payments`: payments on booked invoices, and the entries they book."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from subledger.adapters.sandbox.accounting import BASE_CURRENCY
from subledger.adapters.sandbox.dinero.documents import find_document, remaining_on
from subledger.adapters.sandbox.dinero.envelope import (
    EXTERNAL_REFERENCE_MAX,
    Answer,
    Call,
    body_object,
    fresh,
    invalid,
    not_found,
    read_account,
    touch,
)
from subledger.adapters.sandbox.dinero.state import (
    EXCHANGE_ACCOUNT,
    FEE_ACCOUNT,
    RECEIVABLE_ACCOUNT,
    Document,
    Entry,
    Payment,
    canonical_guid,
    in_base,
    new_guid,
)
from subledger.adapters.sandbox.fields import Money, Record, known


@dataclass(frozen=True)
class PaymentFields:
    """A payment's body, checked: `amount` in øre, `settled` in the invoice's currency."""

    stamp: str
    account: int
    amount: int
    settled: int
    description: str
    remainder_is_fee: bool
    day: date
    external: str | None


def _read_payment(call: Call, invoice: Document) -> PaymentFields:
    """`Amount` is the DKK paid into the deposit account and must be whole øre. On a foreign
    invoice `AmountInForeignCurrency` (whole minor units of the invoice's currency, the sign
    of `Amount`) is required and settles the invoice; on a DKK invoice `Amount` settles it and
    `AmountInForeignCurrency`, if given, must be the same amount."""
    f = body_object(call.body)
    stamp = f.text("Timestamp", required=True)
    account = read_account(f, call.data, "DepositAccountNumber", required=True)
    if account is not None and not account["IsDepositAccount"]:
        f.fail(
            "DepositAccountNumber", f"account {account['AccountNumber']} is not a deposit account"
        )
    amount = f.money("Amount", required=True, nonzero=True, whole=True)
    description = f.text("Description", required=True)
    remainder_is_fee = f.flag("RemainderIsFee", required=True)
    day = f.day("PaymentDate", default=call.today)
    external = f.text("ExternalReference", max_length=EXTERNAL_REFERENCE_MAX)
    foreign_invoice = invoice.currency != BASE_CURRENCY
    foreign = f.money(
        "AmountInForeignCurrency",
        required=foreign_invoice,
        nonzero=True,
        exponent=invoice.exponent,
        whole=True,
    )
    if amount is not None and foreign is not None:
        if not foreign_invoice and foreign != amount:
            f.fail("AmountInForeignCurrency", "must be Amount on a DKK invoice (or be left out)")
        elif (foreign > 0) != (amount > 0):
            f.fail("AmountInForeignCurrency", "must have the sign of Amount")
    f.check()
    return PaymentFields(
        stamp=known(stamp),
        account=known(account)["AccountNumber"],
        amount=known(amount),
        settled=known(foreign if foreign_invoice else amount),
        description=known(description),
        remainder_is_fee=remainder_is_fee,
        day=known(day),
        external=external,
    )


def create_payment(call: Call) -> Answer:
    """A payment on a booked invoice, into a deposit account. A negative `Amount` pays money
    back. With `RemainderIsFee: true`, a payment short of what is owed settles the invoice and
    the shortfall is booked as a fee. What it settles leaves the receivable at the invoice's
    rate; what the DKK paid differs from that is an exchange difference."""
    invoice = find_document(call, "invoice")
    given = _read_payment(call, invoice)
    fresh(invoice, given.stamp)
    if invoice.status != "Booked":
        raise invalid({"Status": "only a booked invoice can be paid"})
    settled = given.settled
    remaining = remaining_on(call.data, invoice)
    fee = remaining - settled if given.remainder_is_fee and 0 < settled < remaining else 0
    before = sum(
        p.settled + p.fee for p in call.data.payments.values() if p.invoice == invoice.guid
    )
    cleared, fee_cleared = in_base([settled, fee], invoice.currency, invoice.rate, before)
    payment = Payment(
        id=new_guid(),
        invoice=invoice.guid,
        day=given.day,
        description=given.description,
        account=given.account,
        amount=given.amount,
        settled=settled,
        fee=fee,
        cleared=cleared,
        fee_cleared=fee_cleared,
        external=given.external,
        remainder_is_fee=given.remainder_is_fee,
    )
    call.data.payments[payment.id] = payment
    call.data.entries.extend(_payment_entries(invoice, payment))
    touch(call, invoice)
    return Answer(status=201)


def _payment_entries(invoice: Document, payment: Payment) -> list[Entry]:
    """The DKK paid into the deposit account, what it settles off the receivable (at the
    invoice's rate), the difference to exchange differences, and a fee taken as paid."""
    text = f"Betaling faktura {invoice.number}: {payment.description}"
    amounts = [
        (payment.account, payment.amount),
        (RECEIVABLE_ACCOUNT, -payment.cleared),
        (EXCHANGE_ACCOUNT, payment.cleared - payment.amount),
        (FEE_ACCOUNT, payment.fee_cleared),
        (RECEIVABLE_ACCOUNT, -payment.fee_cleared),
    ]
    return [
        Entry(
            new_guid(),
            payment.id,
            account,
            amount,
            None,
            payment.day,
            invoice.number,
            "InvoicePayment",
            text,
        )
        for account, amount in amounts
        if amount
    ]


def _payment_view(invoice: Document, payment: Payment) -> Record:
    """`Amount` in DKK; `AmountInForeignCurrency` what it settled in the invoice's currency
    (on a DKK invoice, the same amount)."""
    return {
        "Id": payment.id,
        "PaymentDate": payment.day.isoformat(),
        "Description": payment.description,
        "DepositAccountNumber": payment.account,
        "Amount": Money(payment.amount),
        "AmountInForeignCurrency": invoice.money(payment.settled),
        "ExternalReference": payment.external,
        "RemainderIsFee": payment.remainder_is_fee,
    }


def list_payments(call: Call) -> Answer:
    """`GET /v2/.../invoices/{guid}/payments`: the payments and what is paid and still owed,
    in the invoice's currency."""
    invoice = find_document(call, "invoice")
    payments = [p for p in call.data.payments.values() if p.invoice == invoice.guid]
    remaining = remaining_on(call.data, invoice) if invoice.status == "Booked" else invoice.total
    return Answer(
        {
            "Payments": [_payment_view(invoice, payment) for payment in payments],
            "RemainingAmount": invoice.money(remaining),
            "PaidAmount": invoice.money(sum(payment.settled for payment in payments)),
            "InvoiceTotalIncludingReminderExpenses": invoice.money(invoice.total),
        }
    )


def delete_payment(call: Call) -> Answer:
    """Take a payment back (with the invoice's latest `Timestamp`), and its entries."""
    invoice = find_document(call, "invoice")
    f = body_object(call.body)
    stamp = f.text("Timestamp", required=True)
    f.check()
    payment_id = canonical_guid(call.ids[1])
    payment = None if payment_id is None else call.data.payments.get(payment_id)
    if payment is None or payment.invoice != invoice.guid:
        raise not_found("payment of this invoice", call.ids[1])
    fresh(invoice, stamp)
    del call.data.payments[payment.id]
    call.data.entries = [entry for entry in call.data.entries if entry.source != payment.id]
    touch(call, invoice)
    return Answer()
