"""`/contacts`: the customers documents are made out to, and their payment conditions."""

from __future__ import annotations

import re
from typing import Final

from subledger.adapters.sandbox.dinero.envelope import (
    EXTERNAL_REFERENCE_MAX,
    Answer,
    Call,
    DineroError,
    ErrorCode,
    Fields,
    body_object,
    invalid,
    iso_currency,
    not_found,
)
from subledger.adapters.sandbox.dinero.lists import Filterable, list_page
from subledger.adapters.sandbox.dinero.state import canonical_guid, instant, new_guid
from subledger.adapters.sandbox.fields import EMAIL, THIRTEEN_DIGITS, Record

LANGUAGES: Final = ("da-DK", "en-GB")
PAYMENT_CONDITIONS: Final = ("Netto", "NettoCash", "CurrentMonthOut", "Paid")
#: The payment conditions that count days from the invoice date; the others take none.
DAYS_CONDITIONS: Final = frozenset({"Netto", "NettoCash"})
DEFAULT_CONDITION: Final = ("Netto", 8)

COUNTRY: Final = re.compile(r"[A-Za-z]{2}")

#: What `queryFilter` takes on contacts: what the reference documents (`VatNumber eq`,
#: `Name eq` and `contains`); `IsDebitor` and the rest are refused.
CONTACT_FILTERS: Final[Filterable] = {"Name": ("eq", "contains"), "VatNumber": ("eq",)}


def _read_contact(f: Fields) -> Record:
    """A contact's fields (the required ones as Dinero requires them), checked as a whole;
    without payment conditions it takes the organization's (Netto, 8 days)."""
    kind, days = read_conditions(f, DEFAULT_CONDITION)
    country = f.text("CountryKey", required=True, pattern=COUNTRY, hint="two letters (ISO 3166)")
    contact = {
        "Name": f.text("Name", required=True),
        "CountryKey": country.upper() if country else None,
        "IsPerson": f.flag("IsPerson", required=True),
        "IsMember": f.flag("IsMember", required=True),
        "UseCvr": f.flag("UseCvr", required=True),
        "ExternalReference": f.text("ExternalReference", max_length=EXTERNAL_REFERENCE_MAX),
        "Street": f.text("Street"),
        "ZipCode": f.text("ZipCode"),
        "City": f.text("City"),
        "Phone": f.text("Phone"),
        "Email": f.text("Email", pattern=EMAIL, hint="an e-mail address"),
        "AttPerson": f.text("AttPerson"),
        "VatNumber": f.text("VatNumber"),
        "EanNumber": f.text("EanNumber", pattern=THIRTEEN_DIGITS, hint="13 digits (an EAN)"),
        "SENumber": f.text("SENumber"),
        "PNumber": f.text("PNumber"),
        "PaymentConditionType": kind,
        "PaymentConditionNumberOfDays": days,
        "CompanyTypeKey": f.text("CompanyTypeKey"),
        "InvoiceMailOutOptionKey": f.text("InvoiceMailOutOptionKey"),
        "PreferredInvoiceLanguageKey": f.choice("PreferredInvoiceLanguageKey", LANGUAGES),
        "PreferredInvoiceCurrencyKey": iso_currency(f, "PreferredInvoiceCurrencyKey"),
    }
    f.check()
    return contact


def read_conditions(f: Fields, default: tuple[str, int | None]) -> tuple[str, int | None]:
    """`PaymentConditionType` and `PaymentConditionNumberOfDays`; both left out, `default`
    (the contact's) applies. Netto and NettoCash need days; CurrentMonthOut and Paid take
    none; days without a type are refused rather than guessed at."""
    kind = f.choice("PaymentConditionType", PAYMENT_CONDITIONS)
    days = f.integer("PaymentConditionNumberOfDays", minimum=0)
    named = f.get("PaymentConditionType") not in (None, "")
    if not named and not f.given("PaymentConditionNumberOfDays"):
        return default
    if not named:
        f.fail("PaymentConditionType", "is required with PaymentConditionNumberOfDays")
    elif kind in DAYS_CONDITIONS and not f.given("PaymentConditionNumberOfDays"):
        f.fail("PaymentConditionNumberOfDays", f"is required with {kind}")
    elif kind is not None and kind not in DAYS_CONDITIONS and days is not None:
        f.fail("PaymentConditionNumberOfDays", f"must be empty (null) with {kind}")
    return kind or default[0], days


def create_contact(call: Call) -> Answer:
    """A replayed `ContactGuid` is 400 `guidMustBeUnique`, not 409 (as Dinero answers it)."""
    f = body_object(call.body)
    guid = f.guid("ContactGuid")
    if guid is not None and guid in call.data.contacts:
        raise DineroError(
            400,
            ErrorCode.VALIDATION,
            f"A contact with ContactGuid {guid} already exists.",
            {"ContactGuid": "guidMustBeUnique"},
        )
    fields = _read_contact(f)
    guid = guid or new_guid()
    moment = instant(call.now)
    call.data.contacts[guid] = {
        "ContactGuid": guid,
        **fields,
        "IsDebitor": True,
        "IsCreditor": False,
        "CreatedAt": moment,
        "UpdatedAt": moment,
        "DeletedAt": None,
    }
    return Answer({"ContactGuid": guid}, 201)


def _contact(call: Call) -> Record:
    """The contact the path names; an unknown one is 404 (unlike invoices)."""
    guid = canonical_guid(call.ids[0])
    contact = None if guid is None else call.data.contacts.get(guid)
    if contact is None:
        raise not_found("contact", call.ids[0])
    return contact


def get_contact(call: Call) -> Answer:
    """A deleted contact is still read (with its `DeletedAt`), so it can be restored."""
    return Answer(_contact(call))


def update_contact(call: Call) -> Answer:
    """PUT replaces the contact's fields whole (the required ones are required again)."""
    contact = _contact(call)
    if contact["DeletedAt"] is not None:
        raise invalid({"ContactGuid": "the contact is deleted; restore it first"})
    contact.update(_read_contact(body_object(call.body)))
    contact["UpdatedAt"] = instant(call.now)
    return Answer()


def delete_contact(call: Call) -> Answer:
    contact = _contact(call)
    if contact["DeletedAt"] is None:
        contact["DeletedAt"] = contact["UpdatedAt"] = instant(call.now)
    return Answer()


def restore_contact(call: Call) -> Answer:
    contact = _contact(call)
    if contact["DeletedAt"] is not None:
        contact["DeletedAt"] = None
        contact["UpdatedAt"] = instant(call.now)
    return Answer()


def list_contacts(call: Call) -> Answer:
    return list_page(call, list(call.data.contacts.values()), CONTACT_FILTERS)


def list_contacts_v2(call: Call) -> Answer:
    """The v2 list also returns deleted contacts (check `DeletedAt`)."""
    records = list(call.data.contacts.values())
    return list_page(call, records, CONTACT_FILTERS, with_deleted=True)
