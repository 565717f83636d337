"""`/invoices/{guid}/payments`: payments on booked invoices, and the entries they book."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from subledger.adapters.sandbox.accountant import accountant_problems as shared_accountant_problems
from subledger.adapters.sandbox.accounting import BASE_CURRENCY
from subledger.adapters.sandbox.dinero.documents import find_document, remaining_on
from subledger.adapters.sandbox.dinero.envelope import (
    EXTERNAL_REFERENCE_MAX,
    Answer,
    Call,
    Query,
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
    DineroData,
    Document,
    Entry,
    Payment,
    canonical_guid,
    in_base,
    new_guid,
)
from subledger.adapters.sandbox.fields import (
    Money,
    Record,
    dumps,
    exact_number,
    exponent_of,
    known,
)
from subledger.domain.money import rhu


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


# The accountant's side (`POST` and `DELETE /_sandbox/payments`): what a person does in
# Dinero's bank reconciliation, which reaches no sender's log.


#: The fields of `POST /_sandbox/payments`, and those it requires.
def accountant_problems(body: Any) -> dict[str, str]:
    """What is wrong with the shape of a `POST /_sandbox/payments` body; the values' own rules
    are Dinero's, checked as `POST /v1/{org}/invoices/{guid}/payments` checks them."""
    problems = shared_accountant_problems(body, "the invoice's number or ExternalReference")
    if isinstance(body, dict):
        amount = exact_number(body.get("amount", 1))
        if amount is None or amount <= 0:
            problems["amount"] = "must be a number above 0 (a refund is `refund: true`)"
    return problems


def register_payment(
    data: DineroData, body: Mapping[str, Any], now: datetime, stamp: Callable[[], str]
) -> Record:
    """A payment on the booked invoice whose `ExternalReference` (else whose `Number`) is
    `invoice`, of `amount` (major units of the invoice's currency; in kroner at `exchange_rate`
    where given, else at the invoice's rate) into the deposit account numbered `account` on
    `date`, or paid back with `refund` (a negative payment); answers `{"Id", "InvoiceGuid"}`.
    Dinero's own rules apply, as to `POST .../invoices/{guid}/payments`."""
    wanted = str(body["invoice"])
    invoices = [d for d in data.documents.values() if d.kind == "invoice" and d.deleted is None]
    invoice = next(
        (d for d in invoices if d.fields.get("ExternalReference") == wanted),
        next((d for d in invoices if d.number is not None and str(d.number) == wanted), None),
    )
    if invoice is None:
        raise invalid({"invoice": f"no invoice has the ExternalReference or number {wanted}"})
    account = body["account"]
    sign = -1 if body.get("refund") else 1
    given = known(exact_number(body["amount"]))
    settled = given * 10**invoice.exponent
    given_rate = body.get("exchange_rate")
    rate = invoice.rate if given_rate is None else known(exact_number(given_rate))
    if invoice.currency == BASE_CURRENCY and rate != 1:
        raise invalid({"exchange_rate": "a kroner invoice is paid in kroner, at no rate"})
    kroner = given * rate * 10 ** exponent_of(BASE_CURRENCY)
    payment: dict[str, Any] = {
        "Timestamp": invoice.stamp,
        "DepositAccountNumber": int(account) if str(account).isdigit() else account,
        "Amount": Money(sign * rhu(kroner)),
        "Description": "Bank reconciliation",
        "RemainderIsFee": False,
        "PaymentDate": body["date"],
    }
    if invoice.currency != BASE_CURRENCY:
        if settled.denominator != 1:
            raise invalid({"amount": f"must have at most {invoice.exponent} decimals"})
        payment["AmountInForeignCurrency"] = Money(sign * int(settled), invoice.exponent)
    elif settled.denominator != 1:
        raise invalid({"amount": "must be whole øre"})
    before = set(data.payments)
    create_payment(Call(data, (invoice.guid,), dumps(payment), Query({}), now, stamp))
    (made,) = set(data.payments) - before
    return {"Id": made, "InvoiceGuid": invoice.guid}


def remove_payment(
    data: DineroData, payment_id: str, now: datetime, stamp: Callable[[], str]
) -> Record:
    """What a person does to take a payment back in Dinero: delete it (with its invoice's
    latest `TimeStamp`), and its entries; answers `{"Id", "Deleted": true}`."""
    key = canonical_guid(payment_id)
    payment = None if key is None else data.payments.get(key)
    if payment is None:
        raise not_found("payment", payment_id)
    invoice = data.documents[payment.invoice]
    body = dumps({"Timestamp": invoice.stamp})
    delete_payment(Call(data, (invoice.guid, payment.id), body, Query({}), now, stamp))
    return {"Id": payment.id, "Deleted": True}
