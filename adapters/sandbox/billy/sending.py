"""Sending approved invoices: e-mails (`/v2/invoices/{id}/emails`) and e-invoices
(`/v2/invoiceDeliveries`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from subledger.adapters.sandbox.billy.envelope import Fields, extras, field_names, raise_if
from subledger.adapters.sandbox.billy.state import BillyData, Changes, insert, new_id, now_text
from subledger.adapters.sandbox.fields import THIRTEEN_DIGITS, Record, known

RECEIVER_ID_TYPES: Final = ("gln", "cvr")

EMAIL_FIELDS: Final = field_names("id invoiceId contactPersonId emailSubject emailBody")
DELIVERY_FIELDS: Final = field_names(
    "id invoiceId receiverIdType receiverGln orderReference state createdTime"
)


def send_email(data: BillyData, invoice: Record, body: Mapping[str, Any]) -> Changes:
    """Record an e-mail of an approved invoice to one of its contact's persons."""
    errors: dict[str, str] = {}
    f = Fields(body, errors)
    person = f.record(
        "contactPersonId", data.tables["contactPersons"], "contact person", required=True
    )
    subject = f.text("emailSubject", required=True)
    text = f.text("emailBody", required=True)
    if invoice["state"] != "approved":
        f.fail("invoiceId", "the invoice must be approved before it is e-mailed")
    if person is not None and person["contactId"] != invoice["contactId"]:
        f.fail("contactPersonId", "is a person of another contact than the invoice's")
    raise_if(errors, "email")
    email = {
        "id": new_id(),
        "invoiceId": invoice["id"],
        "contactPersonId": known(person)["id"],
        "emailSubject": subject,
        "emailBody": text,
        "createdTime": now_text(),
        **extras(body, EMAIL_FIELDS),
    }
    insert(data.tables["emails"], email)
    invoice["sentState"] = "sent"
    return Changes()


def create_delivery(data: BillyData, body: Mapping[str, Any]) -> Changes:
    """An e-invoice of an approved invoice to its contact's EAN (gln) or CVR."""
    errors: dict[str, str] = {}
    f = Fields(body, errors)
    invoice = f.record("invoiceId", data.tables["invoices"], "invoice", required=True)
    id_type = f.choice("receiverIdType", RECEIVER_ID_TYPES, required=True)
    gln = f.text(
        "receiverGln", required=id_type == "gln", pattern=THIRTEEN_DIGITS, hint="13 digits"
    )
    reference = f.text("orderReference")
    if invoice is not None:
        _check_receiver(data, f, invoice, id_type, gln)
    raise_if(errors, "invoiceDelivery")
    delivery = {
        "id": new_id(),
        "invoiceId": known(invoice)["id"],
        "receiverIdType": id_type,
        "receiverGln": gln,
        "orderReference": reference,
        "state": "sent",
        "createdTime": now_text(),
        **extras(body, DELIVERY_FIELDS),
    }
    insert(data.tables["invoiceDeliveries"], delivery)
    known(invoice)["sentState"] = "sent"
    return (
        Changes()
        .touch("invoiceDeliveries", delivery["id"])
        .touch("invoices", delivery["invoiceId"])
    )


def _check_receiver(
    data: BillyData, f: Fields, invoice: Record, id_type: str | None, gln: str | None
) -> None:
    if invoice["state"] != "approved":
        f.fail("invoiceId", "the invoice must be approved before it is delivered")
    contact = data.tables["contacts"][invoice["contactId"]]
    if id_type == "gln" and gln is not None and contact["ean"] != gln:
        problem = "is not the contact's EAN" if contact["ean"] else "the contact has no EAN"
        f.fail("receiverGln", problem)
    if id_type == "cvr" and not contact["registrationNo"]:
        f.fail("receiverIdType", "the contact has no registrationNo (CVR) to deliver to")
