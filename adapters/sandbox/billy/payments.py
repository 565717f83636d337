"""`/v2/bankPayments`: money in or out against one approved invoice or credit note.

A payment is counted in its cash account's currency and settles its subject in the subject's
currency, at `cashExchangeRate` when the two differ; voiding it gives the balance back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

from subledger.adapters.sandbox.accountant import accountant_problems as shared_accountant_problems
from subledger.adapters.sandbox.accounting import BASE_CURRENCY
from subledger.adapters.sandbox.billy.balances import add_modifier
from subledger.adapters.sandbox.billy.envelope import (
    MISSING,
    Fields,
    extras,
    field_names,
    raise_if,
    record_not_found,
)
from subledger.adapters.sandbox.billy.state import (
    BillyData,
    Changes,
    insert,
    new_id,
    now_text,
    wire,
)
from subledger.adapters.sandbox.fields import Money, Record, exponent_of, known
from subledger.domain.money import rhu

SUBJECT_REFERENCE: Final = re.compile(r"invoice:(.+)")

CASH_SIDES: Final = ("debit", "credit")

PAYMENT_FIELDS: Final = field_names(
    "id contactId entryDate cashAmount cashSide cashAccountId cashExchangeRate "
    "subjectCurrencyId feeAmount feeAccountId associations isVoided createdTime"
)


@dataclass(frozen=True)
class Settlement:
    """What a payment moves: `moved` in its cash account's currency (the cash, with the fee
    added on a deposit and taken off on a withdrawal) and `settled`, the same converted to its
    subject's currency, both in minor units; `rate` is the cashExchangeRate applied."""

    moved: int
    settled: int
    rate: Fraction


def create_payment(data: BillyData, body: Mapping[str, Any]) -> Changes:
    """Money in (`debit`) or out (`credit`, a refund) against one approved invoice or credit
    note, counted in the cash account's currency; more than the balance is accepted and leaves
    the invoice overpaid. Its balance modifier records what it settled in the subject's
    currency."""
    errors: dict[str, str] = {}
    f = Fields(body, errors)
    entry_date = f.day_text("entryDate", required=True)
    account = f.record("cashAccountId", data.tables["accounts"], "account", required=True)
    if account is not None and not account["isPaymentEnabled"]:
        f.fail("cashAccountId", f"account {account['accountNo']} is not payment-enabled")
    cash_currency = None if account is None else account["currencyId"] or BASE_CURRENCY
    exponent = exponent_of(cash_currency)
    cash = f.money(
        "cashAmount", required=True, minimum=0, positive=True, exponent=exponent, whole=True
    )
    side = f.choice("cashSide", CASH_SIDES, required=True)
    subject = _payment_subject(data, f)
    contact_id = _default_from(f, "contactId", subject)
    currency = _default_from(f, "subjectCurrencyId", subject, source="currencyId")
    fee, fee_account_id = _read_fee(data, f, exponent)
    if f.flag("isVoided"):
        f.fail("isVoided", "must be false or left out on a new payment (void it with a PUT)")
    settlement = _settlement(f, cash, fee, side, cash_currency, subject)
    raise_if(errors, "bankPayment")
    subject_id = known(subject)["id"]
    payment = {
        "id": new_id(),
        "contactId": contact_id,
        "entryDate": entry_date,
        "cashAmount": Money(known(cash), exponent),
        "cashSide": side,
        "cashAccountId": known(account)["id"],
        "cashExchangeRate": known(settlement).rate,
        "subjectCurrencyId": currency,
        "feeAmount": Money(fee, exponent) if fee else None,
        "feeAccountId": fee_account_id,
        "associations": [{"subjectReference": f"invoice:{subject_id}"}],
        "isVoided": False,
        "createdTime": now_text(),
        **extras(body, PAYMENT_FIELDS),
    }
    insert(data.tables["bankPayments"], payment)
    sign = 1 if side == "debit" else -1
    amount = Money(sign * known(settlement).settled, exponent_of(known(subject)["currencyId"]))
    realized = _realized_difference(known(settlement), sign, known(cash_currency), known(subject))
    reference = f"bankPayment:{payment['id']}"
    modifier = add_modifier(data, reference, subject_id, amount, known(entry_date), realized)
    return (
        Changes()
        .touch("bankPayments", payment["id"])
        .touch("invoices", subject_id)
        .touch("balanceModifiers", modifier["id"])
    )


def _payment_subject(data: BillyData, f: Fields) -> Record | None:
    """The one approved invoice or credit note the payment's association names."""
    associations = f.objects("associations", required=True)
    if associations is None:
        return None
    if len(associations) != 1:
        f.fail("associations", "must hold exactly one association in this sandbox")
        return None
    reference = associations[0].get("subjectReference")
    match = SUBJECT_REFERENCE.fullmatch(reference) if isinstance(reference, str) else None
    subject = data.tables["invoices"].get(match.group(1)) if match else None
    if subject is None:
        f.fail("associations", "subjectReference must be invoice:<id> of an existing invoice")
    elif subject["state"] != "approved":
        f.fail("associations", "the invoice must be approved before it is paid")
    else:
        return subject
    return None


def _default_from(
    f: Fields, name: str, subject: Record | None, source: str | None = None
) -> str | None:
    """A field that defaults from the payment's subject and, when given, must agree with it."""
    given = f.text(name)
    expected = None if subject is None else subject[source or name]
    if given is not None and expected is not None and given != expected:
        f.fail(name, f"is {given} but the invoice's is {expected}")
    return expected if given is None else given


def _read_fee(data: BillyData, f: Fields, exponent: int) -> tuple[int, str | None]:
    """`feeAmount` (whole minor units of the cash account's currency) and `feeAccountId`,
    which Billy requires with a fee; the fee is booked as the organization's expense."""
    fee = f.money("feeAmount", minimum=0, positive=True, exponent=exponent, whole=True)
    account = f.record(
        "feeAccountId", data.tables["accounts"], "account", required=f.given("feeAmount")
    )
    if account is None:
        return fee or 0, None
    if not f.given("feeAmount"):
        f.fail("feeAccountId", "is only taken with a feeAmount")
    elif account["isPaymentEnabled"]:
        f.fail(
            "feeAccountId", f"account {account['accountNo']} is a payment account, not an expense"
        )
    return fee or 0, str(account["id"])


def _settlement(
    f: Fields,
    cash: int | None,
    fee: int,
    side: str | None,
    cash_currency: str | None,
    subject: Record | None,
) -> Settlement | None:
    """What the payment moves in the subject's currency: the cash as it is when the currencies
    are the same (any cashExchangeRate is then ignored, 1), else `rhu(cash / cashExchangeRate)`
    in the subject's minor units, where 1 subject unit = cashExchangeRate cash units."""
    given_rate = f.rate("cashExchangeRate")
    if cash is None or side is None or cash_currency is None or subject is None:
        return None
    if side == "credit" and fee >= cash:
        f.fail("feeAmount", "must be less than cashAmount on a withdrawal")
        return None
    moved = cash + fee if side == "debit" else cash - fee
    subject_currency = subject["currencyId"]
    if subject_currency == cash_currency:
        return Settlement(moved=moved, settled=moved, rate=Fraction(1))
    if given_rate is None:
        if not f.given("cashExchangeRate"):
            f.fail(
                "cashExchangeRate",
                f"is required: the cash account is in {cash_currency}"
                f" and the invoice in {subject_currency}",
            )
        return None
    cash_major = Fraction(moved, 10 ** exponent_of(cash_currency))
    settled = rhu(cash_major / given_rate * 10 ** exponent_of(subject_currency))
    if settled == 0:
        f.fail(
            "cashAmount",
            f"settles less than one minor unit of {subject_currency} at this cashExchangeRate",
        )
        return None
    return Settlement(moved=moved, settled=settled, rate=given_rate)


def _realized_difference(
    settlement: Settlement, sign: int, cash_currency: str, subject: Record
) -> int:
    """The DKK gained (positive) or lost when a subject in a foreign currency is settled from a
    DKK account: the cash moved less what the settled amount was booked at (the invoice's
    exchangeRate), in øre; 0 in every other case."""
    if subject["currencyId"] == BASE_CURRENCY or cash_currency != BASE_CURRENCY:
        return 0
    settled_major = Fraction(settlement.settled, 10 ** exponent_of(subject["currencyId"]))
    booked = settled_major * subject["exchangeRate"] * 10 ** exponent_of(BASE_CURRENCY)
    return rhu(sign * (settlement.moved - booked))


def update_payment(data: BillyData, payment: Record, body: Mapping[str, Any]) -> Changes:
    """Only `isVoided: true` can change a payment, and it cannot be undone; voiding it voids
    its balance modifier, which gives its subject's balance back."""
    current = wire(payment)
    errors: dict[str, str] = {}
    for name, value in body.items():
        if name == "isVoided":
            if value is not True and value != payment["isVoided"]:
                errors[name] = "a voided payment cannot be restored"
        elif current.get(name, MISSING) != value:
            errors[name] = "cannot change; only isVoided: true can (to cancel the payment)"
    raise_if(errors, "bankPayment")
    modifier_id = data.modifier_by_reference[f"bankPayment:{payment['id']}"]
    if body.get("isVoided") is True and not payment["isVoided"]:
        payment["isVoided"] = True
        data.tables["balanceModifiers"][modifier_id]["isVoided"] = True
    subject_id = payment["associations"][0]["subjectReference"].removeprefix("invoice:")
    return (
        Changes()
        .touch("bankPayments", payment["id"])
        .touch("invoices", subject_id)
        .touch("balanceModifiers", modifier_id)
    )


# The accountant's side (`POST` and `DELETE /_sandbox/payments`): what a person does in Billy's
# bank reconciliation, which reaches no sender's log.


#: The fields of `POST /_sandbox/payments`, and those it requires.
def accountant_problems(body: Any) -> dict[str, str]:
    """What is wrong with the shape of a `POST /_sandbox/payments` body; the values' own rules
    are Billy's, checked as `POST /v2/bankPayments` checks them."""
    return shared_accountant_problems(body, "the invoice's number")


def register_payment(data: BillyData, body: Mapping[str, Any]) -> Record:
    """A bank payment on the approved invoice numbered `invoice` (its `invoiceNo`), of
    `amount` (major units of the account's currency) into the account numbered `account` on
    `date`, or out of it with `refund`, at `exchange_rate` (its `cashExchangeRate`) where
    given; answers `{"id", "invoiceId"}`. Billy's own rules
    apply, as to `POST /v2/bankPayments` (an unknown invoice or account, a draft, an account
    that takes no payments are refused with Billy's 422)."""
    number = str(body["invoice"])
    invoice = next(
        (
            record
            for record in data.tables["invoices"].values()
            if record["invoiceNo"] == number and record["type"] == "invoice"
        ),
        None,
    )
    account_no = str(body["account"])
    account = next(
        (a for a in data.tables["accounts"].values() if str(a["accountNo"]) == account_no), None
    )
    errors = {}
    if invoice is None:
        errors["invoice"] = f"no invoice is numbered {number}"
    if account is None:
        errors["account"] = f"no account is numbered {account_no}"
    raise_if(errors, "bankPayment")
    payment = {
        "entryDate": body["date"],
        "cashAmount": body["amount"],
        "cashSide": "credit" if body.get("refund") else "debit",
        "cashAccountId": known(account)["id"],
        "associations": [{"subjectReference": f"invoice:{known(invoice)['id']}"}],
    }
    if "exchange_rate" in body:
        payment["cashExchangeRate"] = body["exchange_rate"]
    changes = create_payment(data, payment)
    payment_id = changes.touched["bankPayments"][0]
    return {"id": payment_id, "invoiceId": known(invoice)["id"]}


def cancel_payment(data: BillyData, payment_id: str) -> Record:
    """What a person does to take a payment back in Billy: void it (a payment cannot be
    deleted there); answers `{"id", "isVoided": true}`. An unknown id is Billy's 404."""
    payment = data.tables["bankPayments"].get(payment_id)
    if payment is None:
        raise record_not_found("bankPayments", payment_id)
    update_payment(data, payment, {"isVoided": True})
    return {"id": payment_id, "isVoided": True}
