"""A local stand-in for Billy's API v2, which has no sandbox of its own.

It keeps what it is sent in memory, answers in Billy's envelopes with Billy's error codes, and
computes what Billy computes (line VAT, invoice totals, balances after credit notes and
payments), so the outbox dispatcher can be run against it over real HTTP. Where Billy's docs
are silent it picks one behaviour; `docs/sandboxes.md` lists every such choice.

Money travels as floats in major units, as in Billy (`unitPrice: 200.5`), but is kept as
integer minor units (`Money`) and computed exactly (integers, and fractions for quantities and
rates, rounded half up once per amount), so a total never drifts by a float's error.

The app is wrapped in `adapters.sandbox.faults.FaultInjector` for `/v2`; the `/_sandbox`
routes read and reset it and are never faulted.
"""

from __future__ import annotations

import hmac
import logging
import math
import re
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import URL, QueryParams
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from adapters.sandbox.faults import FaultInjector, Faults, FaultSettings, fault_routes
from adapters.sandbox.fields import (
    CURRENCY,
    EMAIL,
    MALFORMED_DAY,
    THIRTEEN_DIGITS,
    Money,
    Record,
    RequestFields,
    dumps,
    exact_number,
    known,
    parse_day,
)
from domain.money import rhu

logger = logging.getLogger("subledger.sandbox.billy")

#: Stands for a field a stored record does not have, in comparisons with what a PUT sends.
_MISSING: Final = object()

HELP_URL: Final = "https://www.billy.dk/api"
#: `secrets.token_urlsafe(16)` is 22 characters, the length of Billy's ids.
ID_BYTES: Final = 16
MAX_PAGE_SIZE: Final = 1000
DEFAULT_PAYMENT_TERMS_DAYS: Final = 8
DESCRIPTION_MAX_LENGTH: Final = 100
BASE_CURRENCY: Final = "DKK"
#: Every method reaches the `/v2` dispatcher, which answers 405 itself where one is not allowed.
V2_METHODS: Final = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

COUNTRY: Final = re.compile(r"[A-Z]{2}")
SUBJECT_REFERENCE: Final = re.compile(r"invoice:(.+)")

CONTACT_TYPES: Final = ("company", "person")
INVOICE_TYPES: Final = ("invoice", "creditNote")
INVOICE_STATES: Final = ("draft", "approved")
TAX_MODES: Final = ("excl", "incl")
DISCOUNT_MODES: Final = ("cash", "percent")
CASH_SIDES: Final = ("debit", "credit")
JOURNAL_SIDES: Final = ("debit", "credit")
RECEIVER_ID_TYPES: Final = ("gln", "cvr")

#: The chart seeded at start: (accountNo, name, payment-enabled bank account).
ACCOUNTS: Final = (
    (1000, "Salg", False),
    (5600, "Debitorer", False),
    (5800, "Bank", True),
    (5810, "Kortbetalinger", True),
    (5820, "MobilePay", True),
    (7210, "Salgsmoms", False),
    (7400, "Periodeafgrænsninger", False),
    (2750, "Kursdifferencer", False),
)
#: (abbreviation, name, rate as a fraction).
TAX_RATES: Final = (("S25", "Salgsmoms 25%", Decimal("0.25")), ("S0", "Momsfri salg", Decimal(0)))
#: (abbreviation, name, abbreviation of its tax rate); the first is the organization's default.
RULESETS: Final = (("DK25", "Dansk salg 25%", "S25"), ("DK0", "Momsfrit salg", "S0"))
SALES_ACCOUNT_NO: Final = 1000
DAYBOOK_NAME: Final = "Kassekladde"
ORGANIZATION_NAME: Final = "Sandbox ApS"

#: Every table, in the order the summary lists them.
TABLES: Final = (
    "accounts",
    "taxRates",
    "salesTaxRulesets",
    "daybooks",
    "contacts",
    "contactPersons",
    "products",
    "invoices",
    "emails",
    "invoiceDeliveries",
    "bankPayments",
    "daybookTransactions",
)


class BillySandboxSettings(BaseModel):
    """How one Billy sandbox runs: the access token it accepts and the faults it injects."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(default="sandbox-token", min_length=1)
    faults: FaultSettings = Field(default_factory=FaultSettings)


# Writing answers, times and ids


def _wire(body: Any) -> Any:
    """A stored record as a client would read it (money as floats)."""
    return orjson.loads(dumps(body))


def _now() -> str:
    """Billy's datetime format (`2025-11-12T04:37:46`), in UTC."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def new_id() -> str:
    return secrets.token_urlsafe(ID_BYTES)


# Errors


class BillyError(Exception):
    """A refusal, answered in Billy's error envelope."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        validation: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.validation = validation


def error_envelope(
    status: int, code: str, message: str, validation: Mapping[str, Any] | None = None
) -> Record:
    """Billy's error body: `meta`, `errorMessage`, `errorCode`, `errorTime`, `helpUrl`."""
    body: Record = {
        "meta": {"statusCode": status, "success": False},
        "errorMessage": message,
        "errorCode": code,
        "errorTime": _now(),
        "helpUrl": HELP_URL,
    }
    if validation:
        body["validationErrors"] = dict(validation)
    return body


def billy_error_body(status: int, code: str, message: str) -> bytes:
    """The envelope of the fault middleware's own answers (500, 429)."""
    return dumps(error_envelope(status, code, message))


def _error_response(error: BillyError) -> Response:
    body = error_envelope(error.status, error.code, error.message, error.validation)
    return _json(dumps(body), error.status)


def _validation_failed(resource: str, errors: Mapping[str, str]) -> BillyError:
    """422 naming every attribute that was wrong, under the singular name of the resource."""
    message = "Validation failed: " + "; ".join(f"{name}: {text}" for name, text in errors.items())
    attributes = {"message": message, "attributes": dict(errors)}
    return BillyError(422, "VALIDATION_ERROR", message, {resource: attributes})


def _raise_if(errors: Mapping[str, str], resource: str) -> None:
    if errors:
        raise _validation_failed(resource, errors)


def _record_not_found(plural: str, record_id: str) -> BillyError:
    return BillyError(404, "RECORD_NOT_FOUND", f"No {plural} record has the id {record_id}.")


def _json(content: bytes, status: int = 200) -> Response:
    return Response(content, status_code=status, media_type="application/json")


# Reading request fields


class Fields(RequestFields):
    """One request object's fields, read and checked as in `RequestFields`, by their exact names.

    A problem is noted against the field's camelCase name (such as `lines[2].unitPrice`), so
    the caller must check `errors` (through `_raise_if`) before using what it read. Billy adds
    fields that refer to other records by id (`record`, `reference`); dates are kept as the
    `YYYY-MM-DD` text they were sent as (`day_text`)."""

    #: Billy says the same of a day not on the calendar as of a malformed one.
    impossible_day = MALFORMED_DAY

    def day_text(self, name: str, *, required: bool = False) -> str | None:
        """A real calendar date, as the `YYYY-MM-DD` text it was sent as."""
        day = self.day(name, required=required)
        return None if day is None else day.isoformat()

    def record(
        self, name: str, table: Mapping[str, Record], what: str, *, required: bool = False
    ) -> Record | None:
        """The record an id field refers to, which must exist."""
        record_id = self.text(name, required=required)
        if record_id is None:
            return None
        found = table.get(record_id)
        if found is None:
            self.fail(name, f"refers to no {what} (no {what} has the id {record_id})")
        return found

    def reference(
        self, name: str, table: Mapping[str, Record], what: str, *, default: str
    ) -> str | None:
        """The id of an existing record, or `default` when the field is left out."""
        if not self.given(name):
            return default
        found = self.record(name, table, what)
        return None if found is None else str(found["id"])


def _names(words: str) -> frozenset[str]:
    """The field names a resource interprets (or computes), given as one string."""
    return frozenset(words.split())


def _extras(body: Mapping[str, Any], interpreted: frozenset[str]) -> Record:
    """The fields Billy has but the sandbox does not interpret, kept as they were given."""
    return {name: value for name, value in body.items() if name not in interpreted}


# The data


@dataclass
class BillyData:
    """Everything one sandbox holds. Only touched while `BillyStore.lock` is held."""

    organization: Record
    tables: dict[str, dict[str, Record]]
    daybook_id: str
    #: Invoice id -> Σ gross of its approved credit notes, in minor units.
    credited: Counter[str] = field(default_factory=Counter)
    #: Invoice id -> Σ debit - Σ credit of its bank payments that are not voided.
    settled: Counter[str] = field(default_factory=Counter)
    #: invoiceNo -> the id of the invoice or credit note that has it.
    numbers: dict[str, str] = field(default_factory=dict)
    #: Every whole number below this one is taken as an invoiceNo.
    number_hint: int = 1

    def accounts_by_no(self) -> dict[int, Record]:
        return {account["accountNo"]: account for account in self.tables["accounts"].values()}


class BillyStore:
    """The sandbox's state behind one lock: every request reads and writes it whole."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._seed_ids = _seed_ids()
        self.data = _seeded(self._seed_ids)

    def reset(self) -> None:
        """Back to the seeded records, with the ids they had at start."""
        with self.lock:
            self.data = _seeded(self._seed_ids)


def _seed_ids() -> dict[str, str]:
    """Random ids for the seeded records, drawn once so that a reset keeps them."""
    keys = [
        "organization",
        "daybook",
        *(f"account:{number}" for number, _, _ in ACCOUNTS),
        *(f"taxRate:{abbreviation}" for abbreviation, _, _ in TAX_RATES),
        *(f"ruleset:{abbreviation}" for abbreviation, _, _ in RULESETS),
    ]
    return {key: new_id() for key in keys}


def _seeded(ids: Mapping[str, str]) -> BillyData:
    tables: dict[str, dict[str, Record]] = {plural: {} for plural in TABLES}
    for number, name, bank in ACCOUNTS:
        _insert(tables["accounts"], _account(ids[f"account:{number}"], number, name, bank))
    for abbreviation, name, rate in TAX_RATES:
        _insert(
            tables["taxRates"], _tax_rate(ids[f"taxRate:{abbreviation}"], abbreviation, name, rate)
        )
    for abbreviation, name, rate_abbreviation in RULESETS:
        ruleset = {
            "id": ids[f"ruleset:{abbreviation}"],
            "name": name,
            "abbreviation": abbreviation,
            "taxRateId": ids[f"taxRate:{rate_abbreviation}"],
        }
        _insert(tables["salesTaxRulesets"], ruleset)
    _insert(tables["daybooks"], {"id": ids["daybook"], "name": DAYBOOK_NAME})
    organization = {
        "id": ids["organization"],
        "name": ORGANIZATION_NAME,
        "baseCurrencyId": BASE_CURRENCY,
        "defaultSalesAccountId": ids[f"account:{SALES_ACCOUNT_NO}"],
        "defaultSalesTaxRulesetId": ids[f"ruleset:{RULESETS[0][0]}"],
    }
    return BillyData(organization=organization, tables=tables, daybook_id=ids["daybook"])


def _account(account_id: str, number: int, name: str, bank: bool) -> Record:
    return {
        "id": account_id,
        "accountNo": number,
        "name": name,
        "currencyId": None,
        "isPaymentEnabled": bank,
        "isBankAccount": bank,
        "isArchived": False,
    }


def _tax_rate(rate_id: str, abbreviation: str, name: str, rate: Decimal) -> Record:
    return {
        "id": rate_id,
        "name": name,
        "abbreviation": abbreviation,
        "rate": rate,
        "appliesToSales": True,
        "appliesToPurchases": False,
        "isActive": True,
    }


def _insert(table: dict[str, Record], record: Record) -> Record:
    table[record["id"]] = record
    return record


@dataclass
class Changes:
    """What one write changed (answered in full, keyed by plural) and what it deleted."""

    touched: dict[str, list[str]] = field(default_factory=dict)
    deleted: dict[str, list[str]] = field(default_factory=dict)

    def touch(self, plural: str, record_id: str) -> Changes:
        ids = self.touched.setdefault(plural, [])
        if record_id not in ids:
            ids.append(record_id)
        return self

    def remove(self, plural: str, record_id: str) -> Changes:
        self.deleted.setdefault(plural, []).append(record_id)
        return self


# Contacts and contact persons

CONTACT_FIELDS: Final = _names(
    "id type name countryId street cityText zipcodeText contactNo registrationNo ean "
    "isCustomer paymentTermsDays contactPersons createdTime"
)
PERSON_FIELDS: Final = _names("id contactId name email isPrimary createdTime")


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
        "paymentTermsDays": f.integer(
            "paymentTermsDays", default=DEFAULT_PAYMENT_TERMS_DAYS, minimum=0
        ),
    }
    given = f.objects("contactPersons")
    persons = None
    if given is not None:
        persons = [
            _read_person(f.nested(item, f"contactPersons[{i}].")) for i, item in enumerate(given)
        ]
    _raise_if(errors, "contact")
    return {**contact, **_extras(body, CONTACT_FIELDS)}, persons


def _read_person(f: Fields) -> Record:
    name = f.text("name")
    email = f.text("email", pattern=EMAIL, hint="an e-mail address")
    if not f.given("name") and not f.given("email"):
        f.fail("name", "a name or an email is required")
    person = {"name": name, "email": email, "isPrimary": f.flag("isPrimary", default=False)}
    return {**person, **_extras(f.data, PERSON_FIELDS)}


def _create_contact(data: BillyData, body: Mapping[str, Any]) -> Changes:
    fields, persons = _read_contact(body)
    contact = _insert(data.tables["contacts"], {"id": new_id(), **fields, "createdTime": _now()})
    changes = Changes().touch("contacts", contact["id"])
    if persons is not None:
        _replace_persons(data, contact["id"], persons, changes)
    return changes


def _update_contact(data: BillyData, contact: Record, body: Mapping[str, Any]) -> Changes:
    """A partial update: the given fields over the stored ones, checked as a whole."""
    fields, persons = _read_contact({**_wire(contact), **body})
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
        stored = {"id": new_id(), "contactId": contact_id, **person, "createdTime": _now()}
        changes.touch("contactPersons", _insert(table, stored)["id"])


def _create_person(data: BillyData, body: Mapping[str, Any]) -> Changes:
    errors: dict[str, str] = {}
    f = Fields(body, errors)
    contact = f.record("contactId", data.tables["contacts"], "contact", required=True)
    person = _read_person(f)
    _raise_if(errors, "contactPerson")
    stored = {"id": new_id(), "contactId": known(contact)["id"], **person, "createdTime": _now()}
    return Changes().touch("contactPersons", _insert(data.tables["contactPersons"], stored)["id"])


# Products

PRODUCT_FIELDS: Final = _names(
    "id name description productNo accountId salesTaxRulesetId prices isArchived createdTime"
)


def _read_product(data: BillyData, body: Mapping[str, Any]) -> Record:
    errors: dict[str, str] = {}
    f = Fields(body, errors)
    organization = data.organization
    product = {
        "name": f.text("name", required=True),
        "description": f.text("description"),
        "productNo": f.text("productNo", numbers=True),
        "accountId": f.reference(
            "accountId",
            data.tables["accounts"],
            "account",
            default=organization["defaultSalesAccountId"],
        ),
        "salesTaxRulesetId": f.reference(
            "salesTaxRulesetId",
            data.tables["salesTaxRulesets"],
            "sales tax ruleset",
            default=organization["defaultSalesTaxRulesetId"],
        ),
        "prices": _read_prices(f),
        "isArchived": f.flag("isArchived", default=False),
    }
    _raise_if(errors, "product")
    return {**product, **_extras(body, PRODUCT_FIELDS)}


def _read_prices(f: Fields) -> list[Record]:
    prices = []
    for i, given in enumerate(f.objects("prices") or []):
        price = f.nested(given, f"prices[{i}].")
        unit_price = price.money("unitPrice", required=True, minimum=0)
        currency = price.text(
            "currencyId", required=True, pattern=CURRENCY, hint="three capital letters"
        )
        prices.append({"unitPrice": Money(unit_price or 0), "currencyId": currency})
    return prices


def _create_product(data: BillyData, body: Mapping[str, Any]) -> Changes:
    product = {"id": new_id(), **_read_product(data, body), "createdTime": _now()}
    return Changes().touch("products", _insert(data.tables["products"], product)["id"])


def _update_product(data: BillyData, product: Record, body: Mapping[str, Any]) -> Changes:
    fields = _read_product(data, {**_wire(product), **body})
    updated = {"id": product["id"], **fields, "createdTime": product["createdTime"]}
    data.tables["products"][product["id"]] = updated
    return Changes().touch("products", product["id"])


# Invoices and credit notes

INVOICE_FIELDS: Final = _names(
    "id type invoiceNo contactId entryDate paymentTermsDays dueDate currencyId taxMode "
    "state approvedTime sentState contactMessage creditedInvoiceId amount tax grossAmount "
    "balance isPaid lines createdTime"
)
LINE_FIELDS: Final = _names(
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
    if tax_mode == "incl":
        tax = rhu(total * rate / (1 + rate))
        return LinePrice(amount=total - tax, tax=tax)
    return LinePrice(amount=total, tax=rhu(total * rate))


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
    kind = f.choice("type", INVOICE_TYPES, default="invoice")
    contact = f.record("contactId", data.tables["contacts"], "contact", required=True)
    entry_date = f.day_text("entryDate", required=True)
    currency = f.text("currencyId", required=True, pattern=CURRENCY, hint="three capital letters")
    terms_default = contact["paymentTermsDays"] if contact else DEFAULT_PAYMENT_TERMS_DAYS
    terms = f.integer("paymentTermsDays", default=terms_default, minimum=0)
    tax_mode = f.choice("taxMode", TAX_MODES, default="excl")
    state = f.choice("state", INVOICE_STATES, default="draft")
    number = _invoice_number(data, f, None if current is None else current["id"])
    credited_id = _credited_invoice_id(data, f, kind, contact, currency)
    lines = _read_lines(data, f, tax_mode or "excl", keep_line_ids)
    contact_message = f.text("contactMessage")
    _raise_if(errors, "invoice")
    invoice_id = new_id() if current is None else current["id"]
    amount = sum(line["amount"].minor for line in lines)
    tax = sum(line["tax"].minor for line in lines)
    due = date.fromisoformat(known(entry_date)) + timedelta(days=known(terms))
    invoice = {
        "id": invoice_id,
        "type": kind,
        "invoiceNo": number,
        "contactId": known(contact)["id"],
        "entryDate": entry_date,
        "paymentTermsDays": terms,
        "dueDate": due.isoformat(),
        "currencyId": currency,
        "taxMode": tax_mode,
        "state": state,
        "approvedTime": None,
        "sentState": "unsent",
        "contactMessage": contact_message,
        "creditedInvoiceId": credited_id,
        "amount": Money(amount),
        "tax": Money(tax),
        "grossAmount": Money(amount + tax),
        "lines": [{**line, "invoiceId": invoice_id} for line in lines],
        "createdTime": _now() if current is None else current["createdTime"],
    }
    return {**invoice, **_extras(body, INVOICE_FIELDS)}


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


def _read_lines(data: BillyData, f: Fields, tax_mode: str, keep_ids: bool) -> list[Record]:
    given = f.objects("lines", required=True) or []
    return [
        _read_line(data, f.nested(line, f"lines[{i}]."), tax_mode, keep_ids)
        for i, line in enumerate(given)
    ]


def _read_line(data: BillyData, f: Fields, tax_mode: str, keep_id: bool) -> Record:
    """One invoice line, priced with the VAT of its product's sales tax ruleset."""
    product = f.record("productId", data.tables["products"], "product", required=True)
    quantity = f.number("quantity", default=Fraction(1), above=0)
    unit_price = f.money("unitPrice", required=True, minimum=0)
    mode = f.choice("discountMode", DISCOUNT_MODES)
    description = f.text("description", default=product["name"] if product else None)
    line_id = f.data.get("id") if keep_id and isinstance(f.data.get("id"), str) else new_id()
    line: Record = {
        "id": line_id,
        "invoiceId": None,
        "productId": product["id"] if product else None,
        "description": description,
        "quantity": 1 if f.data.get("quantity") is None else f.data["quantity"],
        "unitPrice": Money(unit_price or 0),
        "discountMode": mode,
        "discountValue": None,
        "amount": Money(0),
        "tax": Money(0),
        "taxRateId": None,
    }
    if product is None or quantity is None or unit_price is None:
        return line
    gross = rhu(quantity * unit_price)
    discount, shown = _read_discount(f, mode, gross)
    rate = _tax_rate_of(data, product)
    priced = price_line(quantity, unit_price, discount, Fraction(rate["rate"]), tax_mode)
    line.update(
        discountValue=shown,
        amount=Money(priced.amount),
        tax=Money(priced.tax),
        taxRateId=rate["id"],
    )
    return {**line, **_extras(f.data, LINE_FIELDS)}


def _read_discount(f: Fields, mode: str | None, gross: int) -> tuple[int, Any]:
    """The discount in minor units, and `discountValue` as it is stored (money for `cash`)."""
    if mode is None:
        if f.given("discountValue") and exact_number(f.data["discountValue"]) != 0:
            f.fail("discountMode", "is required with a discountValue (cash or percent)")
        return 0, None
    if mode == "cash":
        discount = f.money("discountValue", minimum=0) or 0
        shown: Any = Money(discount)
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


def _balance(data: BillyData, invoice: Record) -> int:
    """What is still owed on an invoice; a credit note's balance is minus its gross."""
    if invoice["state"] != "approved":
        return 0
    gross: int = invoice["grossAmount"].minor
    if invoice["type"] == "creditNote":
        return -gross
    return gross - data.credited[invoice["id"]] - data.settled[invoice["id"]]


def _invoice_view(data: BillyData, invoice: Record) -> Record:
    """An invoice as it is read: with its balance and whether it is paid."""
    balance = _balance(data, invoice)
    paid = invoice["state"] == "approved" and invoice["grossAmount"].minor > 0 and balance == 0
    return {**invoice, "balance": Money(balance), "isPaid": paid}


def _create_invoice(data: BillyData, body: Mapping[str, Any]) -> Changes:
    invoice = _read_invoice(data, body, current=None, keep_line_ids=False)
    _insert(data.tables["invoices"], invoice)
    _take_number(data, invoice)
    changes = Changes().touch("invoices", invoice["id"])
    if invoice["state"] == "approved":
        _approve(data, invoice, changes)
    return changes


def _update_invoice(data: BillyData, invoice: Record, body: Mapping[str, Any]) -> Changes:
    """A draft may change in every way (given lines replace its lines) and may be approved;
    an approved invoice may only change its `contactMessage`."""
    if invoice["state"] == "approved":
        return _amend_approved(data, invoice, body)
    merged = {**_wire(_invoice_view(data, invoice)), **body}
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
    current = _wire(_invoice_view(data, invoice))
    errors: dict[str, str] = {}
    for name, value in body.items():
        if name == "contactMessage" or current.get(name, _MISSING) == value:
            continue
        if name == "state" and value == "draft":
            errors[name] = "an approved invoice cannot go back to draft; credit it instead"
        elif name == "lines":
            errors[name] = "the lines of an approved invoice cannot change; credit it instead"
        else:
            errors[name] = "cannot change on an approved invoice (only contactMessage can)"
    message = Fields(body, errors).text("contactMessage")
    _raise_if(errors, "invoice")
    if "contactMessage" in body:
        invoice["contactMessage"] = message
    return Changes().touch("invoices", invoice["id"])


def _approve(data: BillyData, invoice: Record, changes: Changes) -> None:
    """Book an invoice; an approved credit note lowers the balance of the invoice it credits."""
    invoice["approvedTime"] = _now()
    if invoice["type"] == "creditNote":
        credited_id = invoice["creditedInvoiceId"]
        data.credited[credited_id] += invoice["grossAmount"].minor
        changes.touch("invoices", credited_id)


def _delete_invoice(data: BillyData, invoice_id: str) -> Changes:
    """Drafts can be deleted; an unknown id is answered as deleted (DELETE is idempotent)."""
    invoice = data.tables["invoices"].get(invoice_id)
    if invoice is not None:
        if invoice["state"] == "approved":
            problem = {"state": "an approved invoice cannot be deleted; credit it instead"}
            raise _validation_failed("invoice", problem)
        del data.tables["invoices"][invoice_id]
        _release_number(data, invoice["invoiceNo"])
    return Changes().remove("invoices", invoice_id)


# Sending invoices: e-mails and e-invoices

EMAIL_FIELDS: Final = _names("id invoiceId contactPersonId emailSubject emailBody")
DELIVERY_FIELDS: Final = _names(
    "id invoiceId receiverIdType receiverGln orderReference state createdTime"
)


def _send_email(data: BillyData, invoice: Record, body: Mapping[str, Any]) -> Changes:
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
    _raise_if(errors, "email")
    email = {
        "id": new_id(),
        "invoiceId": invoice["id"],
        "contactPersonId": known(person)["id"],
        "emailSubject": subject,
        "emailBody": text,
        "createdTime": _now(),
        **_extras(body, EMAIL_FIELDS),
    }
    _insert(data.tables["emails"], email)
    invoice["sentState"] = "sent"
    return Changes()


def _create_delivery(data: BillyData, body: Mapping[str, Any]) -> Changes:
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
    _raise_if(errors, "invoiceDelivery")
    delivery = {
        "id": new_id(),
        "invoiceId": known(invoice)["id"],
        "receiverIdType": id_type,
        "receiverGln": gln,
        "orderReference": reference,
        "state": "sent",
        "createdTime": _now(),
        **_extras(body, DELIVERY_FIELDS),
    }
    _insert(data.tables["invoiceDeliveries"], delivery)
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


# Bank payments

PAYMENT_FIELDS: Final = _names(
    "id contactId entryDate cashAmount cashSide cashAccountId subjectCurrencyId "
    "associations isVoided createdTime"
)


def _create_payment(data: BillyData, body: Mapping[str, Any]) -> Changes:
    """Money in (`debit`) or out (`credit`, a refund) against one approved invoice or credit
    note; more than the balance is accepted and leaves the invoice overpaid."""
    errors: dict[str, str] = {}
    f = Fields(body, errors)
    entry_date = f.day_text("entryDate", required=True)
    cash = f.money("cashAmount", required=True, minimum=0, positive=True)
    side = f.choice("cashSide", CASH_SIDES, required=True)
    account = f.record("cashAccountId", data.tables["accounts"], "account", required=True)
    if account is not None and not account["isPaymentEnabled"]:
        f.fail("cashAccountId", f"account {account['accountNo']} is not payment-enabled")
    subject = _payment_subject(data, f)
    contact_id = _default_from(f, "contactId", subject)
    currency = _default_from(f, "subjectCurrencyId", subject, source="currencyId")
    voided = f.flag("isVoided", default=False)
    _raise_if(errors, "bankPayment")
    payment = {
        "id": new_id(),
        "contactId": contact_id,
        "entryDate": entry_date,
        "cashAmount": Money(known(cash)),
        "cashSide": side,
        "cashAccountId": known(account)["id"],
        "subjectCurrencyId": currency,
        "associations": [{"subjectReference": f"invoice:{known(subject)['id']}"}],
        "isVoided": voided,
        "createdTime": _now(),
        **_extras(body, PAYMENT_FIELDS),
    }
    _insert(data.tables["bankPayments"], payment)
    if not voided:
        _settle(data, payment, +1)
    return Changes().touch("bankPayments", payment["id"]).touch("invoices", known(subject)["id"])


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


def _settle(data: BillyData, payment: Record, direction: int) -> None:
    """Apply a payment to its subject's balance (direction -1 takes it back, when voided)."""
    subject_id = payment["associations"][0]["subjectReference"].removeprefix("invoice:")
    sign = 1 if payment["cashSide"] == "debit" else -1
    data.settled[subject_id] += direction * sign * payment["cashAmount"].minor


def _update_payment(data: BillyData, payment: Record, body: Mapping[str, Any]) -> Changes:
    """Only `isVoided: true` can change a payment, and it cannot be undone."""
    current = _wire(payment)
    errors: dict[str, str] = {}
    for name, value in body.items():
        if name == "isVoided":
            if value is not True and value != payment["isVoided"]:
                errors[name] = "a voided payment cannot be restored"
        elif current.get(name, _MISSING) != value:
            errors[name] = "cannot change; only isVoided: true can (to cancel the payment)"
    _raise_if(errors, "bankPayment")
    if body.get("isVoided") is True and not payment["isVoided"]:
        payment["isVoided"] = True
        _settle(data, payment, -1)
    subject_id = payment["associations"][0]["subjectReference"].removeprefix("invoice:")
    return Changes().touch("bankPayments", payment["id"]).touch("invoices", subject_id)


# Daybook transactions

TRANSACTION_FIELDS: Final = _names(
    "id daybookId entryDate voucherNo description extendedDescription apiType state "
    "isVoided lines createdTime"
)
JOURNAL_LINE_FIELDS: Final = _names("id accountId accountNo amount side text currencyId")


def _create_transaction(data: BillyData, body: Mapping[str, Any]) -> Changes:
    """A journal entry; its debits must equal its credits in every currency."""
    errors: dict[str, str] = {}
    f = Fields(body, errors)
    transaction: Record = {
        "id": new_id(),
        "daybookId": f.reference(
            "daybookId", data.tables["daybooks"], "daybook", default=data.daybook_id
        ),
        "entryDate": f.day_text("entryDate", required=True),
        "voucherNo": f.text("voucherNo", numbers=True),
        "description": f.text("description", max_length=DESCRIPTION_MAX_LENGTH),
        "extendedDescription": f.text("extendedDescription"),
        "apiType": f.text("apiType"),
        "state": f.choice("state", INVOICE_STATES, default="draft"),
        "isVoided": False,
        "lines": _read_journal_lines(data, f),
        "createdTime": _now(),
    }
    _raise_if(errors, "daybookTransaction")
    transaction.update(_extras(body, TRANSACTION_FIELDS))
    _insert(data.tables["daybookTransactions"], transaction)
    return Changes().touch("daybookTransactions", transaction["id"])


def _read_journal_lines(data: BillyData, f: Fields) -> list[Record]:
    accounts_by_no = data.accounts_by_no()
    lines = [
        _read_journal_line(data, accounts_by_no, f.nested(line, f"lines[{i}]."))
        for i, line in enumerate(f.objects("lines", required=True) or [])
    ]
    if not any(name.startswith(f"{f.prefix}lines[") for name in f.errors):
        _check_balanced(f, lines)
    return lines


def _read_journal_line(data: BillyData, accounts_by_no: Mapping[int, Record], f: Fields) -> Record:
    account = _journal_account(data, accounts_by_no, f)
    line = {
        "id": new_id(),
        "accountId": account["id"] if account else None,
        "accountNo": account["accountNo"] if account else None,
        "amount": Money(f.money("amount", required=True, minimum=0, positive=True) or 0),
        "side": f.choice("side", JOURNAL_SIDES, required=True),
        "text": f.text("text"),
        "currencyId": f.text(
            "currencyId", pattern=CURRENCY, hint="three capital letters", default=BASE_CURRENCY
        ),
    }
    return {**line, **_extras(f.data, JOURNAL_LINE_FIELDS)}


def _journal_account(
    data: BillyData, accounts_by_no: Mapping[int, Record], f: Fields
) -> Record | None:
    """The account a line names by `accountId` or `accountNo` (both must agree if given)."""
    by_id = f.record("accountId", data.tables["accounts"], "account")
    number = f.data.get("accountNo")
    if isinstance(number, str) and number.isdigit():
        number = int(number)
    if number is None:
        if not f.given("accountId"):
            f.fail("accountId", "an accountId or an accountNo is required")
        return by_id
    by_no = accounts_by_no.get(number) if isinstance(number, int) else None
    if by_no is None:
        f.fail("accountNo", f"refers to no account (no account has the number {number})")
    elif by_id is not None and by_id is not by_no:
        f.fail("accountNo", "is not the number of the account accountId names")
    return by_no


def _check_balanced(f: Fields, lines: Iterable[Record]) -> None:
    sums: dict[str, Counter[str]] = {}
    for line in lines:
        sums.setdefault(line["currencyId"], Counter())[line["side"]] += line["amount"].minor
    for currency, sides in sums.items():
        if sides["debit"] != sides["credit"]:
            f.fail(
                "lines",
                f"debits ({sides['debit'] / 100:.2f}) and credits ({sides['credit'] / 100:.2f})"
                f" in {currency} must be equal",
            )


def _update_transaction(data: BillyData, transaction: Record, body: Mapping[str, Any]) -> Changes:
    """Only approving (draft -> approved) and voiding (`isVoided: true` or `state: voided`,
    for good) change a transaction; fields sent as they are change nothing."""
    current = _wire(transaction)
    errors: dict[str, str] = {}
    target = _transaction_target(transaction, body, errors)
    for name, value in body.items():
        if name not in ("state", "isVoided") and current.get(name, _MISSING) != value:
            errors[name] = "cannot change; only state and isVoided can"
    _raise_if(errors, "daybookTransaction")
    transaction["state"] = target
    transaction["isVoided"] = target == "voided"
    return Changes().touch("daybookTransactions", transaction["id"])


def _transaction_target(
    transaction: Record, body: Mapping[str, Any], errors: dict[str, str]
) -> str:
    """The state a PUT asks for: draft, approved or voided."""
    state = transaction["state"]
    target = state
    if body.get("isVoided") is True:
        target = "voided"
    elif body.get("isVoided") not in (None, False):
        errors["isVoided"] = "must be true or false"
    elif body.get("isVoided") is False and state == "voided":
        errors["isVoided"] = "a voided transaction cannot be restored"
    asked = body.get("state")
    if asked is not None and asked != state:
        if asked not in (*INVOICE_STATES, "voided"):
            errors["state"] = "must be one of draft, approved, voided"
        elif state == "voided" or (state == "approved" and asked == "draft"):
            errors["state"] = f"cannot go from {state} to {asked}"
        elif target != "voided":
            target = asked
    return str(target)


# Listing: filters and paging

#: A query parameter's value -> a test of a record as it is read.
Filter = Callable[[str], Callable[[Record], bool]]


def _query_text(value: Any) -> str:
    """A field as a query parameter writes it (`true`, `5800`, a string as it is)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _equal(name: str) -> Filter:
    def build(wanted: str) -> Callable[[Record], bool]:
        return lambda record: _query_text(record.get(name)) == wanted

    return build


def _exact(*names: str) -> dict[str, Filter]:
    return {name: _equal(name) for name in names}


def _name_contains(wanted: str) -> Callable[[Record], bool]:
    needle = wanted.casefold()
    return lambda record: needle in str(record.get("name") or "").casefold()


def _entry_date_from(wanted: str) -> Callable[[Record], bool]:
    bound = _query_date(wanted)
    return lambda record: record["entryDate"] >= bound


def _entry_date_until(wanted: str) -> Callable[[Record], bool]:
    bound = _query_date(wanted)
    return lambda record: record["entryDate"] <= bound


def _query_date(text: str) -> str:
    parse_day(text, MALFORMED_DAY)
    return text


def _has_subject(wanted: str) -> Callable[[Record], bool]:
    return lambda record: any(
        association.get("subjectReference") == wanted for association in record["associations"]
    )


ENTRY_DATES: Final[dict[str, Filter]] = {
    "minEntryDate": _entry_date_from,
    "maxEntryDate": _entry_date_until,
}


def _page_number(params: QueryParams, name: str, default: int, maximum: int | None) -> int:
    text = params.get(name)
    if text is None:
        return default
    value = int(text) if text.isdigit() else 0
    if value < 1:
        raise ValueError("must be a whole number from 1")
    if maximum is not None and value > maximum:
        raise ValueError(f"must be at most {maximum}")
    return value


def _query_checks(
    params: QueryParams, singular: str, filters: Mapping[str, Filter]
) -> tuple[int, int, list[Callable[[Record], bool]]]:
    """The page, the page size and the tests the query asks for (422 naming a bad one)."""
    name = "page"
    try:
        page = _page_number(params, name, 1, None)
        name = "pageSize"
        size = _page_number(params, name, MAX_PAGE_SIZE, MAX_PAGE_SIZE)
        tests = []
        for name, value in params.items():
            if name in filters:
                tests.append(filters[name](value))
    except ValueError as error:
        raise _validation_failed(singular, {name: str(error)}) from None
    return page, size, tests


def _listing(
    plural: str,
    singular: str,
    records: Iterable[Record],
    query: Query,
    filters: Mapping[str, Filter],
) -> Record:
    """One page of the records that pass every filter given, in creation order."""
    page, size, tests = _query_checks(query.params, singular, filters)
    chosen = [record for record in records if all(test(record) for test in tests)]
    page_count = max(1, math.ceil(len(chosen) / size))

    def at(number: int) -> str:
        return str(query.url.include_query_params(page=number, pageSize=size))

    paging = {
        "page": page,
        "pageCount": page_count,
        "pageSize": size,
        "total": len(chosen),
        "firstUrl": at(1),
        "previousUrl": at(page - 1) if page > 1 else None,
        "nextUrl": at(page + 1) if page < page_count else None,
        "lastUrl": at(page_count),
    }
    meta = {"statusCode": 200, "success": True, "paging": paging}
    return {"meta": meta, plural: chosen[(page - 1) * size : page * size]}


# Routing /v2


@dataclass(frozen=True)
class Query:
    """A request's query parameters and its URL (to build the paging links from)."""

    params: QueryParams
    url: URL


Creator = Callable[[BillyData, Mapping[str, Any]], Changes]
Updater = Callable[[BillyData, Record, Mapping[str, Any]], Changes]
Deleter = Callable[[BillyData, str], Changes]


@dataclass(frozen=True)
class Resource:
    """One `/v2/{plural}` collection: its names, its filters and the writes it takes."""

    plural: str
    singular: str
    filters: Mapping[str, Filter] = field(default_factory=dict)
    create: Creator | None = None
    update: Updater | None = None
    delete: Deleter | None = None


RESOURCES: Final = {
    resource.plural: resource
    for resource in (
        Resource("accounts", "account", _exact("accountNo")),
        Resource("taxRates", "taxRate"),
        Resource("salesTaxRulesets", "salesTaxRuleset"),
        Resource("daybooks", "daybook"),
        Resource(
            "contacts",
            "contact",
            {**_exact("contactNo", "registrationNo", "ean", "isCustomer"), "q": _name_contains},
            _create_contact,
            _update_contact,
        ),
        Resource("contactPersons", "contactPerson", _exact("contactId", "email"), _create_person),
        Resource("products", "product", _exact("productNo"), _create_product, _update_product),
        Resource(
            "invoices",
            "invoice",
            {
                **_exact(
                    "contactId",
                    "invoiceNo",
                    "state",
                    "type",
                    "creditedInvoiceId",
                    "currencyId",
                    "isPaid",
                ),
                **ENTRY_DATES,
            },
            _create_invoice,
            _update_invoice,
            _delete_invoice,
        ),
        Resource("invoiceDeliveries", "invoiceDelivery", _exact("invoiceId"), _create_delivery),
        Resource(
            "bankPayments",
            "bankPayment",
            {**_exact("contactId", "isVoided"), "subjectReference": _has_subject},
            _create_payment,
            _update_payment,
        ),
        Resource(
            "daybookTransactions",
            "daybookTransaction",
            {**_exact("daybookId", "apiType", "voucherNo", "state"), **ENTRY_DATES},
            _create_transaction,
            _update_transaction,
        ),
    )
}


def _render(data: BillyData, plural: str, record: Record) -> Record:
    return _invoice_view(data, record) if plural == "invoices" else record


def _handle(data: BillyData, method: str, parts: list[str], body: bytes, query: Query) -> Record:
    """The answer to one authenticated `/v2/...` request (called with the lock held)."""
    resource = RESOURCES.get(parts[0]) if parts else None
    if parts == ["organization"]:
        _allow(method, ("GET",), parts)
        return {"organization": data.organization}
    if resource is not None and len(parts) == 1:
        return _collection(data, resource, method, body, query)
    if resource is not None and len(parts) == 2:
        return _item(data, resource, parts[1], method, body)
    if len(parts) == 3 and parts[0] == "invoices" and parts[2] == "emails":
        return _emails(data, parts[1], method, body, query)
    raise BillyError(404, "UNKNOWN_RESOURCE", f"There is no resource at /v2/{'/'.join(parts)}.")


def _collection(
    data: BillyData, resource: Resource, method: str, body: bytes, query: Query
) -> Record:
    _allow(method, ("GET", "POST") if resource.create else ("GET",), [resource.plural])
    if method == "GET":
        table = data.tables[resource.plural]
        records = (_render(data, resource.plural, record) for record in table.values())
        return _listing(resource.plural, resource.singular, records, query, resource.filters)
    changes = known(resource.create)(data, _payload(body, resource.singular))
    return _written(data, changes)


def _item(data: BillyData, resource: Resource, record_id: str, method: str, body: bytes) -> Record:
    allowed = ["GET"] + ["PUT"] * bool(resource.update) + ["DELETE"] * bool(resource.delete)
    _allow(method, tuple(allowed), [resource.plural, record_id])
    if method == "DELETE":
        return _written(data, known(resource.delete)(data, record_id))
    record = data.tables[resource.plural].get(record_id)
    if record is None:
        raise _record_not_found(resource.plural, record_id)
    if method == "GET":
        return {resource.singular: _render(data, resource.plural, record)}
    changes = known(resource.update)(data, record, _payload(body, resource.singular))
    return _written(data, changes)


def _emails(data: BillyData, invoice_id: str, method: str, body: bytes, query: Query) -> Record:
    """`/v2/invoices/{id}/emails`: POST sends one; GET lists those sent (a sandbox extension)."""
    _allow(method, ("GET", "POST"), ["invoices", invoice_id, "emails"])
    invoice = data.tables["invoices"].get(invoice_id)
    if invoice is None:
        raise _record_not_found("invoices", invoice_id)
    if method == "GET":
        table = data.tables["emails"].values()
        emails = (email for email in table if email["invoiceId"] == invoice_id)
        return _listing("emails", "email", emails, query, {})
    return _written(data, _send_email(data, invoice, _payload(body, "email")))


def _allow(method: str, allowed: tuple[str, ...], parts: list[str]) -> None:
    if method not in allowed:
        raise BillyError(
            405,
            "METHOD_NOT_ALLOWED",
            f"{method} is not allowed on /v2/{'/'.join(parts)} (only {', '.join(allowed)}).",
        )


def _payload(body: bytes, singular: str) -> Mapping[str, Any]:
    """The record a write sends, as `{"<singular>": {...}}`."""
    try:
        root = orjson.loads(body)
    except orjson.JSONDecodeError:
        root = None
    if not isinstance(root, dict):
        raise BillyError(400, "INVALID_REQUEST_BODY", "The request body must be a JSON object.")
    record = root.get(singular)
    if not isinstance(record, dict):
        raise BillyError(
            400,
            "INVALID_REQUEST_BODY",
            f'The request body must hold the record as an object: {{"{singular}": {{...}}}}.',
        )
    return record


def _written(data: BillyData, changes: Changes) -> Record:
    """A write's answer: every record it changed, as it now reads, keyed by plural."""
    meta: Record = {"statusCode": 200, "success": True}
    if changes.deleted:
        meta["deletedRecords"] = changes.deleted
    body: Record = {"meta": meta}
    for plural, ids in changes.touched.items():
        table = data.tables[plural]
        body[plural] = [_render(data, plural, table[i]) for i in ids if i in table]
    return body


def _authenticate(given: str | None, token: str) -> None:
    if not given:
        raise BillyError(
            401, "AUTHENTICATION_REQUIRED", "Authentication is required: send X-Access-Token."
        )
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise BillyError(401, "OAUTH_INVALID_ACCESS_TOKEN", "The access token is not valid.")


def _answer(store: BillyStore, token: str, request: Request, body: bytes) -> Response:
    """Authenticate, then handle the request whole under the store's lock."""
    path = str(request.path_params.get("path", ""))
    parts = [part for part in path.split("/") if part]
    query = Query(request.query_params, request.url)
    try:
        _authenticate(request.headers.get("x-access-token"), token)
        with store.lock:
            content = dumps(_handle(store.data, request.method, parts, body, query))
    except BillyError as error:
        return _error_response(error)
    except Exception:
        logger.exception("the Billy sandbox failed on %s /v2/%s", request.method, path)
        failure = BillyError(500, "INTERNAL_SERVER_ERROR", "The sandbox failed; see its log.")
        return _error_response(failure)
    return _json(content)


# The app


def summary(data: BillyData) -> Record:
    """How many records of each kind there are, and invoices by type and state."""
    invoices = {kind: dict.fromkeys(INVOICE_STATES, 0) for kind in INVOICE_TYPES}
    for invoice in data.tables["invoices"].values():
        invoices[invoice["type"]][invoice["state"]] += 1
    counts = {plural: len(table) for plural, table in data.tables.items()}
    return {"counts": counts, "invoices": invoices}


def _sandbox_routes(store: BillyStore, faults: Faults) -> APIRouter:
    """`GET /_sandbox/summary` and `POST /_sandbox/reset` (no token; never faulted)."""
    router = APIRouter(prefix="/_sandbox")

    def summarized() -> Response:
        with store.lock:
            return _json(dumps(summary(store.data)))

    @router.get("/summary", include_in_schema=False)
    async def read_summary() -> Response:
        return summarized()

    @router.post("/reset", include_in_schema=False)
    async def reset() -> Response:
        store.reset()
        faults.reset()
        return summarized()

    return router


ERROR_CODES: Final = {404: "UNKNOWN_RESOURCE", 405: "METHOD_NOT_ALLOWED"}


async def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's own refusals (outside `/v2`), in Billy's envelope."""
    status = error.status_code if isinstance(error, StarletteHTTPException) else 500
    code = ERROR_CODES.get(status, "INTERNAL_SERVER_ERROR" if status >= 500 else "BAD_REQUEST")
    message = f"{request.method} {request.url.path}: {code.lower().replace('_', ' ')}."
    return _error_response(BillyError(status, code, message))


def create_billy_app(settings: BillySandboxSettings) -> FastAPI:
    """The Billy sandbox as an ASGI app, seeded, with its faults around `/v2`.

    `app.state.store` is its `BillyStore` and `app.state.faults` its `Faults` (whose `clock`
    a test may replace to move the rate limit's window)."""
    store = BillyStore()
    faults = Faults(settings.faults)
    app = FastAPI(title="Billy sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.state.faults = faults

    async def v2(request: Request) -> Response:
        return _answer(store, settings.token, request, await request.body())

    app.router.routes.append(Route("/v2/{path:path}", v2, methods=V2_METHODS))
    app.include_router(_sandbox_routes(store, faults))
    app.include_router(fault_routes(faults))
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(FaultInjector, faults=faults, error_body=billy_error_body, prefixes=("/v2",))
    return app
