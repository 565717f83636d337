"""What invoices and credit notes share: how they are read, priced, shown and listed.

A line's VAT follows its account's VAT code; a document in a foreign currency takes the day's
rate, and its totals are shown in DKK at that rate as well. What is still owed on an invoice
is its total less its payments and booked credit notes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from typing import Final

from subledger.adapters.sandbox.accounting import BASE_CURRENCY, month_end, split_vat
from subledger.adapters.sandbox.dinero.contacts import (
    DAYS_CONDITIONS,
    DEFAULT_CONDITION,
    LANGUAGES,
    read_conditions,
)
from subledger.adapters.sandbox.dinero.envelope import (
    EXTERNAL_REFERENCE_MAX,
    Answer,
    Call,
    Fields,
    Query,
    invalid,
    iso_currency,
    optional_amount,
    read_account,
    unknown_document,
)
from subledger.adapters.sandbox.dinero.lists import Filterable, Test, list_page
from subledger.adapters.sandbox.dinero.products import UNITS
from subledger.adapters.sandbox.dinero.state import (
    NO_VAT,
    DineroData,
    Document,
    Line,
    canonical_guid,
    instant,
)
from subledger.adapters.sandbox.fields import (
    Money,
    Record,
    exponent_of,
    known,
    parse_day,
    query_text,
)
from subledger.domain.money import rhu

LINE_TYPES: Final = ("Product", "Text")

INVOICE_STATUSES: Final = ("Draft", "Booked", "Paid", "OverPaid", "Overdue")
DOCUMENT_STATUSES: Final = ("Draft", "Booked")

#: What `queryFilter` takes on credit notes (their three fields), and on invoices the same
#: three (the reference names none for them).
DOCUMENT_FILTERS: Final[Filterable] = {
    "ExternalReference": ("eq", "contains"),
    "ContactGuid": ("eq",),
    "Description": ("eq", "contains"),
}

FREE_TEXT_FIELDS: Final = ("Number", "ContactName", "Description", "ExternalReference", "Comment")


def _due(day: date, kind: str | None, days: int | None) -> date:
    """The due date (`PaymentDate`): days after the date, the month's end, or the date itself."""
    if kind in DAYS_CONDITIONS:
        return day + timedelta(days=days or 0)
    if kind == "CurrentMonthOut":
        return month_end(day)
    return day


def price_line(
    quantity: Fraction, base: int, discount: Fraction, rate: Fraction, incl: bool
) -> tuple[int, int]:
    """A line's net and VAT in minor units: `rhu(quantity × base)` less the discount share,
    then VAT on the net (`rhu(net × rate)`), or, when prices include VAT, taken out of the
    total (`rhu(total × rate / (1 + rate))`)."""
    total = rhu(quantity * base)
    total -= rhu(total * discount / 100)
    return split_vat(total, rate, incl=incl)


def _read_line(data: DineroData, f: Fields, incl: bool, exponent: int) -> Line:
    """One of `ProductLines`, priced with the VAT code of its account in the document's
    currency (`exponent` decimals). `BaseAmountValue`, `Quantity` and `AccountNumber` are
    required on every line, a Text line's too, though a Text line carries no amount."""
    kind = f.choice("LineType", LINE_TYPES, default="Product")
    description = f.text("Description")
    view: Record = {
        "ProductGuid": _line_product(data, f),
        "Description": description,
        "Comments": f.text("Comments"),
        "LineType": kind,
    }
    base = f.money("BaseAmountValue", required=True, exponent=exponent)
    quantity = f.number("Quantity", required=True, nonzero=True)
    account = read_account(f, data, "AccountNumber", required=True)
    discount = f.number("Discount", default=Fraction(0), minimum=0, maximum=100)
    unit = f.choice("Unit", UNITS, default=UNITS[0])
    if kind == "Text":
        if description is None:
            f.fail("Description", "is required on a Text line")
        return Line(view, None, NO_VAT, 0, 0)
    if base is None or quantity is None or account is None or discount is None:
        return Line(view, None, NO_VAT, 0, 0)
    code = str(account["VatCode"])
    rate = data.vat_rate(code)
    net, vat = price_line(quantity, base, discount, rate, incl)
    base_incl = base if incl else rhu(base * (1 + rate))
    view.update(
        Quantity=f.get("Quantity"),
        AccountNumber=account["AccountNumber"],
        AccountName=account["Name"],
        Unit=unit,
        Discount=f.get("Discount") or 0,
        BaseAmountValue=Money(base, exponent),
        BaseAmountValueInclVat=Money(base_incl, exponent),
        TotalAmount=Money(net, exponent),
        TotalAmountInclVat=Money(net + vat, exponent),
    )
    return Line(view, account["AccountNumber"], code, net, vat)


def _line_product(data: DineroData, f: Fields) -> str | None:
    """A line's `ProductGuid`: a product the sandbox holds that is not deleted. It names the
    product only; the line's price, quantity and account are the line's own (required)."""
    guid = f.guid("ProductGuid")
    if guid is None:
        return None
    product = data.products.get(guid)
    if product is None:
        f.fail("ProductGuid", f"refers to no product (no product has the Guid {guid})")
        return None
    if product.deleted is not None:
        f.fail("ProductGuid", "refers to a deleted product")
        return None
    return guid


@dataclass(frozen=True)
class Draft:
    """A document's fields as a create or an update gives them, checked and priced."""

    guid: str | None
    fields: Record
    lines: list[Line]
    contact: str | None
    day: date
    currency: str
    rate: Fraction
    due: date
    credit_for: str | None


def read_document(call: Call, f: Fields, kind: str) -> Draft:
    """An invoice or credit note from its create model, checked as a whole and priced in its
    currency, which takes the day's rate (a credit note needs `CreditNoteFor`)."""
    data = call.data
    guid = f.guid("Guid")
    credited = _credited_invoice(data, f) if kind == "creditNote" else None
    contact = _document_contact(data, f, credited)
    day = f.day("Date", default=call.today)
    currency = _document_currency(data, f, credited)
    exponent = exponent_of(currency)
    default_terms = (
        (contact["PaymentConditionType"], contact["PaymentConditionNumberOfDays"])
        if contact
        else DEFAULT_CONDITION
    )
    terms = read_conditions(f, default_terms)
    incl = f.flag("ShowLinesInclVat", default=False)
    lines = [
        _read_line(data, f.nested(line, f"ProductLines[{i}]."), incl, exponent)
        for i, line in enumerate(f.objects("ProductLines", required=True))
    ]
    fields = {
        "ExternalReference": f.text("ExternalReference", max_length=EXTERNAL_REFERENCE_MAX),
        "Description": f.text("Description"),
        "Comment": f.text("Comment"),
        "Address": f.text("Address"),
        "Language": f.choice("Language", LANGUAGES, default="da-DK"),
        "ShowLinesInclVat": incl,
        "InvoiceTemplateId": f.text("InvoiceTemplateId"),
        "PaymentConditionType": terms[0],
        "PaymentConditionNumberOfDays": terms[1],
        "ReminderFee": optional_amount(f.money("ReminderFee", minimum=0), exponent),
        "ReminderInterestRate": f.number("ReminderInterestRate", minimum=0),
        "IsMobilePayInvoiceEnabled": f.flag("IsMobilePayInvoiceEnabled"),
        "IsPensoPayEnabled": f.flag("IsPensoPayEnabled"),
    }
    if not f.errors and sum(line.net + line.vat for line in lines) < 0:
        f.fail("ProductLines", "the total is below 0; credit an invoice with a credit note")
    f.check()
    return Draft(
        guid=guid,
        fields=fields,
        lines=lines,
        contact=contact["ContactGuid"] if contact else None,
        day=known(day),
        currency=currency,
        rate=data.rates.get(currency, Fraction(1)),
        due=_due(known(day), terms[0], terms[1]),
        credit_for=credited.guid if credited else None,
    )


def _document_currency(data: DineroData, f: Fields, credited: Document | None) -> str:
    """`Currency`: an active ISO 4217 code with a rate in the day's table (DKK needs none);
    DKK when left out, or a credit note's invoice's, which it must be if given. (When it is
    wrong the problem is noted and DKK is answered, so that reading can go on.)"""
    code = iso_currency(f, "Currency")
    if f.prefix + "Currency" in f.errors:
        return BASE_CURRENCY
    code = code or (credited.currency if credited else BASE_CURRENCY)
    if credited is not None and code != credited.currency:
        f.fail("Currency", f"must be the credited invoice's, {credited.currency}")
    elif code != BASE_CURRENCY and code not in data.rates:
        f.fail("Currency", no_rate(data, code))
    return code


def no_rate(data: DineroData, code: str) -> str:
    known_codes = ", ".join(sorted(data.rates)) or "none"
    return f"has no exchange rate today ({code}; the rates are for {known_codes})"


def _credited_invoice(data: DineroData, f: Fields) -> Document | None:
    """A credit note's `CreditNoteFor` (required): a booked invoice."""
    guid = f.guid("CreditNoteFor", required=True)
    if guid is None:
        return None
    invoice = data.documents.get(guid)
    if invoice is None or invoice.deleted is not None or invoice.kind != "invoice":
        f.fail("CreditNoteFor", f"refers to no invoice (no invoice has the Guid {guid})")
        return None
    if invoice.status != "Booked":
        f.fail("CreditNoteFor", "must be a booked invoice (it is a draft)")
        return None
    return invoice


def _document_contact(data: DineroData, f: Fields, credited: Document | None) -> Record | None:
    """The contact a document names: an existing one that is not deleted. A credit note
    without one takes its invoice's; with one, it must be the invoice's."""
    guid = f.guid("ContactGuid")
    if guid is None:
        if credited is not None and credited.contact is not None:
            return data.contacts[credited.contact]
        return None
    contact = data.contacts.get(guid)
    if contact is None:
        f.fail("ContactGuid", f"refers to no contact (no contact has the Guid {guid})")
    elif contact["DeletedAt"] is not None:
        f.fail("ContactGuid", "refers to a deleted contact")
    elif credited is not None and credited.contact != guid:
        f.fail("ContactGuid", "must be the credited invoice's contact")
    else:
        return contact
    return None


def remaining_on(data: DineroData, invoice: Document) -> int:
    """What is still owed: the total less payments, fees taken as paid and booked credit notes."""
    return invoice.total - taken_off(data).get(invoice.guid, 0)


def taken_off(data: DineroData) -> Counter[str]:
    """By invoice, what its payments (with fees taken as paid) and booked credit notes took off
    it: one pass over each, for a list that shows every invoice's status."""
    taken: Counter[str] = Counter()
    for payment in data.payments.values():
        taken[payment.invoice] += payment.settled + payment.fee
    for note in data.documents.values():
        if note.credit_for and note.status == "Booked" and note.deleted is None:
            taken[note.credit_for] += note.total
    return taken


def payment_status(
    data: DineroData, invoice: Document, today: date, taken: Counter[str] | None = None
) -> str:
    if invoice.status != "Booked":
        return "Draft"
    remaining = invoice.total - (taken if taken is not None else taken_off(data))[invoice.guid]
    if remaining < 0:
        return "OverPaid"
    if remaining == 0:
        return "Paid"
    return "Overdue" if today > invoice.due else "Booked"


def _total_lines(document: Document, data: DineroData) -> list[Record]:
    """The totals as the invoice prints them: the subtotal, the VAT of each rate, the total."""
    vat_by_code: Counter[str] = Counter()
    for line in document.lines:
        if line.vat:
            vat_by_code[line.vat_code] += line.vat
    rows: list[Record] = [
        {"Type": "Subtotal", "Label": "Subtotal", "TotalAmount": document.money(document.net)}
    ]
    for code, vat in sorted(vat_by_code.items()):
        vat_type = data.vat_type(code)
        label = vat_type["Name"] if vat_type else code
        rows.append({"Type": "Vat", "Label": label, "TotalAmount": document.money(vat)})
    rows.append(
        {
            "Type": "Total",
            "Label": f"Total {document.currency}",
            "TotalAmount": document.money(document.total),
        }
    )
    return [{**row, "Position": position} for position, row in enumerate(rows)]


def document_view(
    data: DineroData, document: Document, today: date, taken: Counter[str] | None = None
) -> Record:
    """An invoice or credit note as it is read (`TimeStamp` spelled as Dinero spells it), its
    amounts in its currency's major units, and its totals in DKK at its rate as well."""
    contact = data.contacts.get(document.contact) if document.contact else None
    view: Record = {
        "Guid": document.guid,
        "Number": document.number,
        "ContactGuid": document.contact,
        "ContactName": contact["Name"] if contact else None,
        "Date": document.day.isoformat(),
        "PaymentDate": document.due.isoformat(),
        "Currency": document.currency,
        **document.fields,
        "Status": document.status,
    }
    if document.kind == "invoice":
        view["PaymentStatus"] = payment_status(data, document, today, taken)
    else:
        view["CreditNoteFor"] = document.credit_for
    view.update(
        MailOutStatus=document.mail_out,
        TotalExclVat=document.money(document.net),
        TotalVat=document.money(document.vat),
        TotalInclVat=document.money(document.total),
        TotalExclVatInDkk=Money(document.in_base(document.net)),
        TotalInclVatInDkk=Money(document.in_base(document.total)),
        TotalLines=_total_lines(document, data),
        ProductLines=[line.view for line in document.lines],
        TimeStamp=document.stamp,
        CreatedAt=instant(document.created),
        UpdatedAt=instant(document.updated),
        DeletedAt=instant(document.deleted) if document.deleted else None,
    )
    return view


def find_document(call: Call, kind: str) -> Document:
    """The invoice or credit note the path names; unknown (or deleted) is 400 with code 63."""
    what = "invoice" if kind == "invoice" else "credit note"
    guid = canonical_guid(call.ids[0])
    document = None if guid is None else call.data.documents.get(guid)
    if document is None or document.kind != kind or document.deleted is not None:
        raise unknown_document(what, call.ids[0])
    return document


def document_list(call: Call, kind: str) -> Answer:
    """Invoices or credit notes, with the lists' filters plus `startDate`/`endDate` (both or
    neither), `freeTextSearch`, `statusFilter` and `sort`/`sortOrder`."""
    taken = taken_off(call.data)
    views = [
        document_view(call.data, document, call.today, taken)
        for document in call.data.documents.values()
        if document.kind == kind
    ]
    status_field = "PaymentStatus" if kind == "invoice" else "Status"
    statuses = INVOICE_STATUSES if kind == "invoice" else DOCUMENT_STATUSES
    more = _document_tests(call.query, status_field, statuses)
    return list_page(call, views, DOCUMENT_FILTERS, more=more, sortable=True)


def _document_tests(query: Query, status_field: str, statuses: Sequence[str]) -> list[Test]:
    tests: list[Test] = []
    start, end = query.get("startDate"), query.get("endDate")
    if (start is None) != (end is None):
        raise invalid({"startDate": "startDate and endDate go together (both or neither)"})
    if start is not None and end is not None:
        try:
            first, last = parse_day(start).isoformat(), parse_day(end).isoformat()
        except ValueError as error:
            raise invalid({"startDate": str(error)}) from None
        tests.append(lambda record: first <= str(record["Date"]) <= last)
    search = query.get("freeTextSearch")
    if search is not None:
        needle = search.casefold()
        tests.append(
            lambda record: any(
                needle in query_text(record.get(name)).casefold() for name in FREE_TEXT_FIELDS
            )
        )
    wanted = query.get("statusFilter")
    if wanted is not None:
        spelled = {status.lower(): status for status in statuses}
        chosen = {spelled.get(part.strip().lower()) for part in wanted.split(",")}
        if None in chosen:
            raise invalid({"statusFilter": f"must be among {', '.join(statuses)}"})
        tests.append(lambda record: record[status_field] in chosen)
    return tests
