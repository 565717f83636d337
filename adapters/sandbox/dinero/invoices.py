"""`/invoices`: drafts made, changed, deleted, booked (with the entries they book) and sent."""

from __future__ import annotations

from collections import Counter
from typing import Literal

from subledger.adapters.sandbox.dinero.documents import (
    document_list,
    document_view,
    find_document,
    read_document,
)
from subledger.adapters.sandbox.dinero.envelope import (
    Answer,
    Call,
    body_object,
    duplicate,
    fresh,
    invalid,
    touch,
)
from subledger.adapters.sandbox.dinero.state import (
    EMPTY_GUID,
    RECEIVABLE_ACCOUNT,
    DineroData,
    Document,
    Entry,
    in_base,
    instant,
    new_guid,
    vat_account_of,
)
from subledger.adapters.sandbox.fields import EMAIL, THIRTEEN_DIGITS, Record


def create_document(call: Call, kind: Literal["invoice", "creditNote"]) -> Answer:
    """A draft, with the client's `Guid` when it gives one: a replay is 409 with code 72,
    checked before anything else so that a retry learns at once that its first try arrived."""
    f = body_object(call.body)
    guid = f.guid("Guid")
    if guid is not None and guid in call.data.documents:
        raise duplicate("an invoice or credit note", "Guid", guid)
    draft = read_document(call, f, kind)
    document = Document(
        guid=draft.guid or new_guid(),
        kind=kind,
        fields=draft.fields,
        lines=draft.lines,
        contact=draft.contact,
        day=draft.day,
        currency=draft.currency,
        due=draft.due,
        stamp=call.stamp(),
        created=call.now,
        updated=call.now,
        credit_for=draft.credit_for,
        rate=draft.rate,
    )
    call.data.documents[document.guid] = document
    return Answer({"Guid": document.guid, "TimeStamp": document.stamp}, 201)


def create_invoice(call: Call) -> Answer:
    return create_document(call, "invoice")


def fetch_invoice(call: Call) -> Answer:
    """`invoices/fetch`: the invoice a create model would make, priced, and nothing stored."""
    draft = read_document(call, body_object(call.body), "invoice")
    preview = Document(
        guid=draft.guid or EMPTY_GUID,
        kind="invoice",
        fields=draft.fields,
        lines=draft.lines,
        contact=draft.contact,
        day=draft.day,
        currency=draft.currency,
        due=draft.due,
        stamp="",
        created=call.now,
        updated=call.now,
        rate=draft.rate,
    )
    view = document_view(call.data, preview, call.today)
    for name in ("Guid", "TimeStamp", "CreatedAt", "UpdatedAt", "DeletedAt"):
        view.pop(name)
    return Answer(view)


def get_invoice(call: Call) -> Answer:
    return Answer(document_view(call.data, find_document(call, "invoice"), call.today))


def update_invoice(call: Call) -> Answer:
    """`PUT /v1.2/.../invoices/{guid}`: a draft's whole create model again, with its latest
    `Timestamp`; its Guid stays (a `Guid` in the body is ignored)."""
    document = find_document(call, "invoice")
    f = body_object(call.body)
    stamp = f.text("Timestamp", required=True)
    draft = read_document(call, f, "invoice")
    fresh(document, stamp)
    if document.status != "Draft":
        raise invalid({"Status": "only a draft can be changed; credit a booked invoice"})
    document.fields, document.lines, document.contact = draft.fields, draft.lines, draft.contact
    document.day, document.currency, document.due = draft.day, draft.currency, draft.due
    document.rate = draft.rate
    return Answer({"Guid": document.guid, "TimeStamp": touch(call, document)})


def delete_invoice(call: Call) -> Answer:
    """A draft is deleted with its latest `Timestamp` (a booked invoice is credited instead).
    It is kept as deleted: `deletedOnly=true` lists it and its Guid stays taken."""
    document = find_document(call, "invoice")
    f = body_object(call.body)
    stamp = f.text("Timestamp", required=True)
    f.check()
    fresh(document, stamp)
    if document.status != "Draft":
        raise invalid({"Status": "a booked invoice cannot be deleted; credit it instead"})
    touch(call, document)
    document.deleted = call.now
    return Answer()


def book_document(call: Call, kind: str) -> Answer:
    """Book a draft with its latest `Timestamp`: it gets its number (the next free one, or the
    `Number` given), its entries and a new `TimeStamp`; the answer is the document."""
    document = find_document(call, kind)
    f = body_object(call.body)
    stamp = f.text("Timestamp", required=True)
    number = f.integer("Number", minimum=1)
    f.check()
    fresh(document, stamp)
    data = call.data
    problems: dict[str, str] = {}
    if document.status != "Draft":
        problems["Status"] = (
            f"the {'invoice' if kind == 'invoice' else 'credit note'} is already booked"
        )
    if document.contact is None:
        problems["ContactGuid"] = "a document without a contact cannot be booked"
    elif data.contacts[document.contact]["DeletedAt"] is not None:
        problems["ContactGuid"] = "the contact is deleted; restore it first"
    taken = {other.number for other in data.documents.values() if other.number is not None}
    if number is not None and number in taken:
        problems["Number"] = f"{number} is already the number of another invoice or credit note"
    if problems:
        raise invalid(problems)
    document.number = number if number is not None else data.last_number + 1
    data.last_number = max(data.last_number, document.number)
    document.status = "Booked"
    touch(call, document)
    data.entries.extend(_document_entries(data, document))
    return Answer(document_view(data, document, call.today))


def book_invoice(call: Call) -> Answer:
    return book_document(call, "invoice")


def _document_entries(data: DineroData, document: Document) -> list[Entry]:
    """What booking a document books, in DKK at its rate: the receivable, each line's net on
    its account and the VAT on the VAT code's account (a credit note the other way round).
    The parts are converted together (`in_base`), so the nets add up to `TotalExclVatInDkk`
    and the receivable is `TotalInclVatInDkk`."""
    sign = 1 if document.kind == "invoice" else -1
    label = "Faktura" if document.kind == "invoice" else "Kreditnota"
    voucher_type = "Invoice" if document.kind == "invoice" else "CreditNote"
    text = f"{label} {document.number}"
    parts: list[tuple[int, int, str | None]] = []
    vat_by_account: Counter[int] = Counter()
    for line in document.lines:
        if line.account is None:
            continue
        parts.append((line.account, line.net, line.vat_code))
        vat_account = vat_account_of(data, line.vat_code)
        if vat_account is not None and line.vat:
            vat_by_account[vat_account] += line.vat
    parts.extend((account, vat, None) for account, vat in sorted(vat_by_account.items()))
    converted = in_base([amount for _, amount, _ in parts], document.currency, document.rate)
    amounts: list[tuple[int, int, str | None]] = [(RECEIVABLE_ACCOUNT, sign * sum(converted), None)]
    amounts += [
        (account, -sign * amount, code)
        for (account, _, code), amount in zip(parts, converted, strict=True)
    ]
    return [
        Entry(
            new_guid(),
            document.guid,
            account,
            amount,
            code,
            document.day,
            document.number,
            voucher_type,
            text,
        )
        for account, amount, code in amounts
        if amount
    ]


def email_document(call: Call, kind: str) -> Answer:
    """E-mail a booked document (to `Receiver`, else its contact's `Email`); the mail is kept
    for `GET /_sandbox/sent` and the document gets `MailOutStatus: Sent` and a new stamp."""
    document = find_document(call, kind)
    f = body_object(call.body)
    f.flag("ShouldAddTrustPilotEmailAsBcc", required=True)
    stamp = f.text("Timestamp", required=True)
    mail = {
        "Sender": f.text("Sender", pattern=EMAIL, hint="an e-mail address"),
        "CcToSender": f.flag("CcToSender"),
        "Receiver": f.text("Receiver", pattern=EMAIL, hint="an e-mail address"),
        "Subject": f.text("Subject"),
        "Message": f.text("Message"),
        "AddVoucherAsPdfAttachment": f.flag("AddVoucherAsPdfAttachment", default=True),
    }
    f.check()
    fresh(document, stamp)
    if document.status != "Booked":
        raise invalid({"Status": "only a booked document can be e-mailed"})
    contact = call.data.contacts[document.contact] if document.contact else {}
    mail["Receiver"] = mail["Receiver"] or contact.get("Email")
    if not mail["Receiver"]:
        raise invalid({"Receiver": "is required: the contact has no Email"})
    _sent(call, document, "Email", mail)
    return Answer()


def email_invoice(call: Call) -> Answer:
    return email_document(call, "invoice")


def send_with_ean(call: Call) -> Answer:
    """`POST /v2/.../invoices/{guid}/with-ean`: an e-invoice of a booked invoice to
    `ReceiverEanNumber`, else the contact's `EanNumber` (13 digits either way)."""
    document = find_document(call, "invoice")
    f = body_object(call.body)
    stamp = f.text("Timestamp", required=True)
    delivery = {
        "ReceiverEanNumber": f.text(
            "ReceiverEanNumber", pattern=THIRTEEN_DIGITS, hint="13 digits (an EAN)"
        ),
        "OrderReference": f.text("OrderReference"),
        "AttPerson": f.text("AttPerson"),
    }
    f.check()
    fresh(document, stamp)
    if document.status != "Booked":
        raise invalid({"Status": "only a booked invoice can be sent as an e-invoice"})
    contact = call.data.contacts[document.contact] if document.contact else {}
    delivery["ReceiverEanNumber"] = delivery["ReceiverEanNumber"] or contact.get("EanNumber")
    if not delivery["ReceiverEanNumber"]:
        raise invalid({"ReceiverEanNumber": "is required: the contact has no EanNumber"})
    _sent(call, document, "EInvoice", delivery)
    return Answer()


def _sent(call: Call, document: Document, kind: str, details: Record) -> None:
    document.mail_out = "Sent"
    touch(call, document)
    record = {"Kind": kind, "Guid": document.guid, "Number": document.number, **details}
    call.data.sent.append({**record, "SentAt": instant(call.now)})


def list_invoices(call: Call) -> Answer:
    return document_list(call, "invoice")
