"""`/sales/creditnotes`: credit notes made, booked and sent, or generated from an invoice."""

from __future__ import annotations

from fractions import Fraction

from subledger.adapters.sandbox.accounting import BASE_CURRENCY
from subledger.adapters.sandbox.dinero.documents import (
    document_list,
    document_view,
    find_document,
    no_rate,
)
from subledger.adapters.sandbox.dinero.envelope import Answer, Call, body_object, fresh, invalid
from subledger.adapters.sandbox.dinero.invoices import (
    book_document,
    create_document,
    email_document,
)
from subledger.adapters.sandbox.dinero.state import Document, Line, new_guid


def create_credit_note(call: Call) -> Answer:
    return create_document(call, "creditNote")


def get_credit_note(call: Call) -> Answer:
    return Answer(document_view(call.data, find_document(call, "creditNote"), call.today))


def book_credit_note(call: Call) -> Answer:
    return book_document(call, "creditNote")


def email_credit_note(call: Call) -> Answer:
    return email_document(call, "creditNote")


def generate_credit_note(call: Call) -> Answer:
    """A draft credit note for the whole of a booked invoice (its lines, contact, currency),
    at the day's rate of its currency."""
    invoice = find_document(call, "invoice")
    f = body_object(call.body)
    stamp = f.text("Timestamp", required=True)
    f.check()
    fresh(invoice, stamp)
    if invoice.status != "Booked":
        raise invalid({"Status": "only a booked invoice can be credited"})
    if invoice.currency != BASE_CURRENCY and invoice.currency not in call.data.rates:
        raise invalid({"Currency": no_rate(call.data, invoice.currency)})
    note = Document(
        guid=new_guid(),
        kind="creditNote",
        fields={**invoice.fields, "ExternalReference": None},
        lines=[
            Line(dict(line.view), line.account, line.vat_code, line.net, line.vat)
            for line in invoice.lines
        ],
        contact=invoice.contact,
        day=call.today,
        currency=invoice.currency,
        due=call.today,
        stamp=call.stamp(),
        created=call.now,
        updated=call.now,
        credit_for=invoice.guid,
        rate=call.data.rates.get(invoice.currency, Fraction(1)),
    )
    call.data.documents[note.guid] = note
    return Answer({"Guid": note.guid, "TimeStamp": note.stamp}, 201)


def list_credit_notes(call: Call) -> Answer:
    return document_list(call, "creditNote")
