"""`/v2/contacts` and `/v2/contactPersons`: customers, and the persons invoices are sent to."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from subledger.adapters.sandbox.billy.envelope import Fields, extras, field_names, raise_if
from subledger.adapters.sandbox.billy.state import (
    BillyData,
    Changes,
    insert,
    new_id,
    now_text,
    wire,
)
from subledger.adapters.sandbox.fields import EMAIL, THIRTEEN_DIGITS, Record, known

COUNTRY: Final = re.compile(r"[A-Z]{2}")

CONTACT_TYPES: Final = ("company", "person")

CONTACT_PAYMENT_TERMS_MODES: Final = ("net", "netEndOfMonth")

CONTACT_FIELDS: Final = field_names(
    "id type name countryId street cityText zipcodeText contactNo registrationNo ean "
    "isCustomer paymentTermsMode paymentTermsDays currencyId contactPersons createdTime"
)
PERSON_FIELDS: Final = field_names("id contactId name email isPrimary createdTime")


def _read_contact(body: Mapping[str, Any]) -> tuple[Record, list[Record] | None]:
    """A contact's fields, and its persons when the body names them (else None)."""
    errors: dict[str, str] = {}
    f = Fields(body, errors)
    contact = {
        "type": f.choice("type", CONTACT_TYPES, default="company"),
        "name": f.text("name", required=True),
        "countryId": f.text(
            "countryId", required=True, pattern=COUNTRY, hint="two capital letters (ISO 3166)"
        ),
        "street": f.text("street"),
        "cityText": f.text("cityText"),
        "zipcodeText": f.text("zipcodeText", numbers=True),
        "contactNo": f.text("contactNo", numbers=True),
        "registrationNo": f.text("registrationNo", numbers=True),
        "ean": f.text("ean", pattern=THIRTEEN_DIGITS, hint="13 digits (an EAN/GLN)"),
        "isCustomer": f.flag("isCustomer", default=True),
        "paymentTermsMode": f.choice(
            "paymentTermsMode", CONTACT_PAYMENT_TERMS_MODES, default="net"
        ),
        "paymentTermsDays": f.integer("paymentTermsDays", required=True, minimum=0),
        # Billy: the contact's default currency "has no effect in the API"; it is kept.
        "currencyId": f.currency("currencyId"),
    }
    given = f.objects("contactPersons")
    persons = None
    if given is not None:
        persons = [
            _read_person(f.nested(item, f"contactPersons[{i}].")) for i, item in enumerate(given)
        ]
    raise_if(errors, "contact")
    return {**contact, **extras(body, CONTACT_FIELDS)}, persons


def _read_person(f: Fields) -> Record:
    name = f.text("name")
    email = f.text("email", pattern=EMAIL, hint="an e-mail address")
    if not f.given("name") and not f.given("email"):
        f.fail("name", "a name or an email is required")
    person = {"name": name, "email": email, "isPrimary": f.flag("isPrimary", default=False)}
    return {**person, **extras(f.data, PERSON_FIELDS)}


def create_contact(data: BillyData, body: Mapping[str, Any]) -> Changes:
    fields, persons = _read_contact(body)
    contact = insert(data.tables["contacts"], {"id": new_id(), **fields, "createdTime": now_text()})
    changes = Changes().touch("contacts", contact["id"])
    if persons is not None:
        _replace_persons(data, contact["id"], persons, changes)
    return changes


def update_contact(data: BillyData, contact: Record, body: Mapping[str, Any]) -> Changes:
    """A partial update: the given fields over the stored ones, checked as a whole (so a
    required field need not be sent again, but sent as null or "" it is refused)."""
    fields, persons = _read_contact({**wire(contact), **body})
    updated = {"id": contact["id"], **fields, "createdTime": contact["createdTime"]}
    data.tables["contacts"][contact["id"]] = updated
    changes = Changes().touch("contacts", contact["id"])
    if persons is not None:
        _replace_persons(data, contact["id"], persons, changes)
    return changes


def _replace_persons(
    data: BillyData, contact_id: str, persons: list[Record], changes: Changes
) -> None:
    """Embedded persons replace the contact's persons, as Billy saves has-many relations."""
    table = data.tables["contactPersons"]
    for person_id in [pid for pid, person in table.items() if person["contactId"] == contact_id]:
        del table[person_id]
        changes.remove("contactPersons", person_id)
    for person in persons:
        stored = {"id": new_id(), "contactId": contact_id, **person, "createdTime": now_text()}
        changes.touch("contactPersons", insert(table, stored)["id"])


def create_person(data: BillyData, body: Mapping[str, Any]) -> Changes:
    errors: dict[str, str] = {}
    f = Fields(body, errors)
    contact = f.record("contactId", data.tables["contacts"], "contact", required=True)
    person = _read_person(f)
    raise_if(errors, "contactPerson")
    stored = {
        "id": new_id(),
        "contactId": known(contact)["id"],
        **person,
        "createdTime": now_text(),
    }
    return Changes().touch("contactPersons", insert(data.tables["contactPersons"], stored)["id"])
