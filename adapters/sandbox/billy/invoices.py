"""`/v2/invoices`: invoices and credit notes, read, priced, approved and deleted.

Line VAT follows the line's product's sales tax ruleset; totals, due dates and exchange rates
are computed as Billy computes them. An approved credit note lowers the balance of the invoice
it credits through a balance modifier (`balances`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from typing import Any, Final

from subledger.adapters.sandbox.accounting import BASE_CURRENCY, month_end, split_vat
from subledger.adapters.sandbox.billy.balances import add_modifier, invoice_view
from subledger.adapters.sandbox.billy.envelope import (
    MISSING,
    Fields,
    extras,
    field_names,
    raise_if,
    validation_failed,
)
from subledger.adapters.sandbox.billy.state import (
    INVOICE_STATES,
    INVOICE_TYPES,
    BillyData,
    Changes,
    insert,
    new_id,
    now_text,
    wire,
)
from subledger.adapters.sandbox.fields import Money, Record, exact_number, exponent_of, known
from subledger.domain.money import rhu

#: `net`: entryDate + days; `netEndOfMonth`: the last day of entryDate's month + days;
#: `date`: the fixed `dueDate` the invoice is sent with. A contact's terms cannot be `date`.
PAYMENT_TERMS_MODES: Final = ("net", "netEndOfMonth", "date")

TAX_MODES: Final = ("excl", "incl")
DISCOUNT_MODES: Final = ("cash", "percent")

INVOICE_FIELDS: Final = field_names(
    "id type invoiceNo contactId entryDate paymentTermsMode paymentTermsDays dueDate "
    "currencyId exchangeRate taxMode state approvedTime sentState contactMessage "
    "creditedInvoiceId amount tax grossAmount balance isPaid lines externalId "
    "balanceModifiers balanceModifierIds createdTime"
)
LINE_FIELDS: Final = field_names(
    "id invoiceId productId description quantity unitPrice discountMode discountValue "
    "amount tax taxRateId"
)
#: What a draft's PUT may not change either.
IMMUTABLE_INVOICE_FIELDS: Final = ("type", "creditedInvoiceId")


@dataclass(frozen=True)
class LinePrice:
    """A priced line: its net amount and its VAT, in minor units."""

    amount: int
    tax: int


def price_line(
    quantity: Fraction, unit_price: int, discount: int, rate: Fraction, tax_mode: str
) -> LinePrice:
    """A line's net amount and VAT from its quantity, unit price (minor units) and discount.

    With `excl` the unit price is net and the VAT is added on top; with `incl` it includes
    VAT and the VAT is taken out of the line's total."""
    total = rhu(quantity * unit_price) - discount
    amount, tax = split_vat(total, rate, incl=tax_mode == "incl")
    return LinePrice(amount=amount, tax=tax)


@dataclass(frozen=True)
class PaymentTerms:
    """An invoice's terms as it keeps them: the mode, the days and the due date they give."""

    mode: str
    days: int
    due: date


def due_date(entry_date: date, mode: str, days: int) -> date:
    """`net`: `days` after the invoice date; `netEndOfMonth`: `days` after the last day of
    the invoice date's month (Danish "løbende måned + dage")."""
    start = month_end(entry_date) if mode == "netEndOfMonth" else entry_date
    return start + timedelta(days=days)


def _payment_terms(f: Fields, entry_date: date | None) -> PaymentTerms | None:
    """`paymentTermsDays` (required) in `paymentTermsMode` (default `net`).

    With `date`, the due date is the `dueDate` sent (otherwise read-only), and the days must
    be those from `entryDate` to it, so a client cannot be wrong about one of the two."""
    mode = f.choice("paymentTermsMode", PAYMENT_TERMS_MODES, default="net")
    days = f.integer("paymentTermsDays", required=True, minimum=0)
    fixed = f.day("dueDate", required=True) if mode == "date" else None
    if mode is None or days is None or entry_date is None:
        return None
    if mode != "date":
        return PaymentTerms(mode, days, due_date(entry_date, mode, days))
    if fixed is None:
        return None
    if fixed < entry_date:
        f.fail("dueDate", "must not be before entryDate")
        return None
    if (fixed - entry_date).days != days:
        f.fail(
            "paymentTermsDays",
            f"must be {(fixed - entry_date).days}, the days from entryDate to dueDate,"
            " when paymentTermsMode is date",
        )
        return None
    return PaymentTerms(mode, days, fixed)


def _exchange_rate(data: BillyData, f: Fields, currency: str | None) -> Fraction | None:
    """DKK per one unit of the invoice's currency: 1 for DKK (whatever was sent), else the
    `exchangeRate` given, else today's rate from the sandbox's table."""
    given = f.rate("exchangeRate")
    if currency is None:
        return None
    if currency == BASE_CURRENCY:
        return Fraction(1)
    if given is not None or f.given("exchangeRate"):
        return given
    today = data.rates.get(currency)
    if today is None:
        f.fail(
            "exchangeRate",
            f"is required for {currency}: the sandbox has no rate for it today"
            " (PUT /_sandbox/rates sets one)",
        )
    return today


def _read_invoice(
    data: BillyData, body: Mapping[str, Any], current: Record | None, keep_line_ids: bool
) -> Record:
    """An invoice or credit note from its fields, checked as a whole and priced.

    `current` is the stored draft a PUT changes (None on create): its id, number and creation
    time are kept, and its type and credited invoice may not change."""
    errors: dict[str, str] = {}
    f = Fields(body, errors)
    if current is not None:
        for name in IMMUTABLE_INVOICE_FIELDS:
            if name in body and body[name] != current[name]:
                f.fail(name, "cannot be changed")
    if f.given("externalId"):
        f.fail(
            "externalId",
            "cannot be written: Billy documents it only as a list filter"
            " (set your own invoiceNo to make a create safe to repeat)",
        )
    kind = f.choice("type", INVOICE_TYPES, default="invoice")
    contact = f.record("contactId", data.tables["contacts"], "contact", required=True)
    entry_date = f.day("entryDate", required=True)
    currency = f.currency("currencyId", required=True)
    exchange_rate = _exchange_rate(data, f, currency)
    terms = _payment_terms(f, entry_date)
    tax_mode = f.choice("taxMode", TAX_MODES, default="excl")
    state = f.choice("state", INVOICE_STATES, default="draft")
    number = _invoice_number(data, f, None if current is None else current["id"])
    credited_id = _credited_invoice_id(data, f, kind, contact, currency)
    exponent = exponent_of(currency)
    lines = _read_lines(data, f, tax_mode or "excl", exponent, keep_line_ids)
    contact_message = f.text("contactMessage")
    raise_if(errors, "invoice")
    invoice_id = new_id() if current is None else current["id"]
    amount = sum(line["amount"].minor for line in lines)
    tax = sum(line["tax"].minor for line in lines)
    invoice = {
        "id": invoice_id,
        "type": kind,
        "invoiceNo": number,
        "contactId": known(contact)["id"],
        "entryDate": known(entry_date).isoformat(),
        "paymentTermsMode": known(terms).mode,
        "paymentTermsDays": known(terms).days,
        "dueDate": known(terms).due.isoformat(),
        "currencyId": currency,
        "exchangeRate": exchange_rate,
        "taxMode": tax_mode,
        "state": state,
        "approvedTime": None,
        "sentState": "unsent",
        "contactMessage": contact_message,
        "creditedInvoiceId": credited_id,
        "amount": Money(amount, exponent),
        "tax": Money(tax, exponent),
        "grossAmount": Money(amount + tax, exponent),
        "lines": [{**line, "invoiceId": invoice_id} for line in lines],
        "createdTime": now_text() if current is None else current["createdTime"],
    }
    return {**invoice, **extras(body, INVOICE_FIELDS)}


def _invoice_number(data: BillyData, f: Fields, own_id: str | None) -> str | None:
    """The given invoiceNo, unique across invoices and credit notes, or the lowest free one."""
    number = f.text("invoiceNo", numbers=True)
    if number is None:
        return _free_number(data)
    owner = data.numbers.get(number)
    if owner is not None and owner != own_id:
        f.fail("invoiceNo", f"{number} is already the number of another invoice or credit note")
    return number


def _free_number(data: BillyData) -> str:
    """The lowest whole number not yet an invoiceNo ("1", "2", …, skipping taken ones)."""
    candidate = data.number_hint
    while str(candidate) in data.numbers:
        candidate += 1
    data.number_hint = candidate
    return str(candidate)


def _take_number(data: BillyData, invoice: Record) -> None:
    data.numbers[invoice["invoiceNo"]] = invoice["id"]


def _release_number(data: BillyData, number: str) -> None:
    """Free a number (a deleted or renumbered draft), so auto-numbering may use it again."""
    data.numbers.pop(number, None)
    if number.isdigit() and str(int(number)) == number and int(number) >= 1:
        data.number_hint = min(data.number_hint, int(number))


def _credited_invoice_id(
    data: BillyData, f: Fields, kind: str | None, contact: Record | None, currency: str | None
) -> str | None:
    """A credit note's `creditedInvoiceId`: an approved invoice of its contact and currency."""
    credited_id = f.text("creditedInvoiceId")
    if kind == "invoice" and credited_id is not None:
        f.fail("creditedInvoiceId", "is only allowed on a credit note")
        return None
    if kind != "creditNote":
        return None
    if credited_id is None:
        f.fail("creditedInvoiceId", "is required for a credit note")
        return None
    problem = _credit_problem(data.tables["invoices"].get(credited_id), contact, currency)
    if problem:
        f.fail("creditedInvoiceId", problem)
    return credited_id


def _credit_problem(credited: Record | None, contact: Record | None, currency: str | None) -> str:
    if credited is None:
        return "refers to no invoice"
    if credited["type"] != "invoice":
        return "must be an invoice, not a credit note"
    if credited["state"] != "approved":
        return "must be an approved invoice (it is a draft)"
    if contact is not None and credited["contactId"] != contact["id"]:
        return "is an invoice of another contact"
    if currency is not None and credited["currencyId"] != currency:
        return f"is an invoice in {credited['currencyId']}, not {currency}"
    return ""


def _read_lines(
    data: BillyData, f: Fields, tax_mode: str, exponent: int, keep_ids: bool
) -> list[Record]:
    given = f.objects("lines", required=True) or []
    return [
        _read_line(data, f.nested(line, f"lines[{i}]."), tax_mode, exponent, keep_ids)
        for i, line in enumerate(given)
    ]


def _read_line(data: BillyData, f: Fields, tax_mode: str, exponent: int, keep_id: bool) -> Record:
    """One invoice line in a currency with `exponent` decimals, priced with the VAT of its
    product's sales tax ruleset."""
    product = f.record("productId", data.tables["products"], "product", required=True)
    quantity = f.number("quantity", default=Fraction(1), above=0)
    unit_price = f.money("unitPrice", required=True, minimum=0, exponent=exponent)
    mode = f.choice("discountMode", DISCOUNT_MODES)
    description = f.text("description", default=product["name"] if product else None)
    line_id = f.data.get("id") if keep_id and isinstance(f.data.get("id"), str) else new_id()
    line: Record = {
        "id": line_id,
        "invoiceId": None,
        "productId": product["id"] if product else None,
        "description": description,
        "quantity": 1 if f.data.get("quantity") is None else f.data["quantity"],
        "unitPrice": Money(unit_price or 0, exponent),
        "discountMode": mode,
        "discountValue": None,
        "amount": Money(0, exponent),
        "tax": Money(0, exponent),
        "taxRateId": None,
    }
    if product is None or quantity is None or unit_price is None:
        return line
    gross = rhu(quantity * unit_price)
    discount, shown = _read_discount(f, mode, gross, exponent)
    rate = _tax_rate_of(data, product)
    priced = price_line(quantity, unit_price, discount, Fraction(rate["rate"]), tax_mode)
    line.update(
        discountValue=shown,
        amount=Money(priced.amount, exponent),
        tax=Money(priced.tax, exponent),
        taxRateId=rate["id"],
    )
    return {**line, **extras(f.data, LINE_FIELDS)}


def _read_discount(f: Fields, mode: str | None, gross: int, exponent: int) -> tuple[int, Any]:
    """The discount in minor units, and `discountValue` as it is stored (money for `cash`)."""
    if mode is None:
        if f.given("discountValue") and exact_number(f.data["discountValue"]) != 0:
            f.fail("discountMode", "is required with a discountValue (cash or percent)")
        return 0, None
    if mode == "cash":
        discount = f.money("discountValue", minimum=0, exponent=exponent) or 0
        shown: Any = Money(discount, exponent)
    else:
        percent = f.number("discountValue", default=Fraction(0), minimum=0, maximum=100)
        discount = rhu(gross * (percent or Fraction(0)) / 100)
        shown = f.data.get("discountValue") or 0
    if discount > gross:
        f.fail("discountValue", "is more than the line's amount before discount")
    return discount, shown


def _tax_rate_of(data: BillyData, product: Record) -> Record:
    ruleset = data.tables["salesTaxRulesets"][product["salesTaxRulesetId"]]
    return data.tables["taxRates"][ruleset["taxRateId"]]


def create_invoice(data: BillyData, body: Mapping[str, Any]) -> Changes:
    invoice = _read_invoice(data, body, current=None, keep_line_ids=False)
    insert(data.tables["invoices"], invoice)
    _take_number(data, invoice)
    changes = Changes().touch("invoices", invoice["id"])
    if invoice["state"] == "approved":
        _approve(data, invoice, changes)
    return changes


def update_invoice(data: BillyData, invoice: Record, body: Mapping[str, Any]) -> Changes:
    """A draft may change in every way (given lines replace its lines) and may be approved;
    an approved invoice may only change its `contactMessage`."""
    if invoice["state"] == "approved":
        return _amend_approved(data, invoice, body)
    merged = {**wire(invoice_view(data, invoice)), **body}
    if body.get("currencyId", invoice["currencyId"]) != invoice["currencyId"]:
        # The old currency's rate means nothing in the new one: today's applies unless given.
        merged["exchangeRate"] = body.get("exchangeRate")
    updated = _read_invoice(data, merged, current=invoice, keep_line_ids="lines" not in body)
    _release_number(data, invoice["invoiceNo"])
    _take_number(data, updated)
    data.tables["invoices"][invoice["id"]] = updated
    changes = Changes().touch("invoices", invoice["id"])
    if updated["state"] == "approved":
        _approve(data, updated, changes)
    return changes


def _amend_approved(data: BillyData, invoice: Record, body: Mapping[str, Any]) -> Changes:
    """Fields sent with the value they already have are accepted and change nothing."""
    current = wire(invoice_view(data, invoice))
    errors: dict[str, str] = {}
    for name, value in body.items():
        if name == "contactMessage" or current.get(name, MISSING) == value:
            continue
        if name == "state" and value == "draft":
            errors[name] = "an approved invoice cannot go back to draft; credit it instead"
        elif name == "lines":
            errors[name] = "the lines of an approved invoice cannot change; credit it instead"
        else:
            errors[name] = "cannot change on an approved invoice (only contactMessage can)"
    message = Fields(body, errors).text("contactMessage")
    raise_if(errors, "invoice")
    if "contactMessage" in body:
        invoice["contactMessage"] = message
    return Changes().touch("invoices", invoice["id"])


def _approve(data: BillyData, invoice: Record, changes: Changes) -> None:
    """Book an invoice; an approved credit note lowers the balance of the invoice it credits,
    through a balance modifier of its own (`invoice:<credit note id>`)."""
    invoice["approvedTime"] = now_text()
    if invoice["type"] == "creditNote":
        credited_id = invoice["creditedInvoiceId"]
        reference = f"invoice:{invoice['id']}"
        modifier = add_modifier(
            data, reference, credited_id, invoice["grossAmount"], invoice["entryDate"], 0
        )
        changes.touch("invoices", credited_id).touch("balanceModifiers", modifier["id"])


def delete_invoice(data: BillyData, invoice_id: str) -> Changes:
    """Drafts can be deleted; an unknown id is answered as deleted (DELETE is idempotent)."""
    invoice = data.tables["invoices"].get(invoice_id)
    if invoice is not None:
        if invoice["state"] == "approved":
            problem = {"state": "an approved invoice cannot be deleted; credit it instead"}
            raise validation_failed("invoice", problem)
        del data.tables["invoices"][invoice_id]
        _release_number(data, invoice["invoiceNo"])
    return Changes().remove("invoices", invoice_id)
