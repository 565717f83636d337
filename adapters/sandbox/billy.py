"""A local stand-in for Billy's API v2, which has no sandbox of its own.

It keeps what it is sent in memory, answers in Billy's envelopes with Billy's error codes, and
computes what Billy computes (line VAT, invoice totals, due dates, exchange rates, balances
after credit notes and payments, and the balance modifiers that record them), so the outbox
dispatcher can be run against it over real HTTP. It follows the shared reference's facts about
Billy to the letter and is never more lenient than Billy: it honours exactly the list filters
that are documented, requires every field marked required, and where Billy's docs are silent
it picks the strict behaviour; `docs/sandboxes.md` lists every such choice.

Money travels as floats in major units, as in Billy (`unitPrice: 200.5`), but is kept as
integer minor units of its currency (`Money`, with the currency's ISO 4217 exponent: DKK 2,
JPY 0, KWD 3) and computed exactly (integers, and fractions for quantities and rates, rounded
half away from zero once per amount), so a total never drifts by a float's error. Money that
moved (a payment's cash, a journal line) must already be whole minor units.

The app is wrapped in `adapters.sandbox.faults.FaultInjector` for `/v2`; the `/_sandbox`
routes read and reset it (and the exchange rates) and are never faulted.
"""

from __future__ import annotations

import calendar
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
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, Final

import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import URL, QueryParams
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from subledger.adapters.sandbox.faults import FaultInjector, Faults, FaultSettings, fault_routes
from subledger.adapters.sandbox.fields import (
    EMAIL,
    MALFORMED_DAY,
    THIRTEEN_DIGITS,
    Money,
    Record,
    RequestFields,
    dumps,
    exact_number,
    exponent_of,
    known,
    parse_day,
)
from subledger.domain.money import is_currency, rhu

logger = logging.getLogger("subledger.sandbox.billy")

#: Stands for a field a stored record does not have, in comparisons with what a PUT sends.
_MISSING: Final = object()

HELP_URL: Final = "https://www.billy.dk/api"
#: `secrets.token_urlsafe(16)` is 22 characters, the length of Billy's ids.
ID_BYTES: Final = 16
MAX_PAGE_SIZE: Final = 1000
DESCRIPTION_MAX_LENGTH: Final = 100
#: The organization's base currency: every exchange rate is in it, and its own rate is 1.
BASE_CURRENCY: Final = "DKK"
#: Every method reaches the `/v2` dispatcher, which answers 405 itself where one is not allowed.
V2_METHODS: Final = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

COUNTRY: Final = re.compile(r"[A-Z]{2}")
SUBJECT_REFERENCE: Final = re.compile(r"invoice:(.+)")
MONTH: Final = re.compile(r"([0-9]{4})-([0-9]{2})")
YEAR: Final = re.compile(r"[0-9]{4}")
#: A year and a part of it (`2025-2`), as `quarter:` and `halfYear:` periods name them.
YEAR_PART: Final = re.compile(r"([0-9]{4})-([0-9])")
#: `approvedTime` bounds, as Billy's filter examples write them (`2025-06-02 12:00:00`).
DATETIME: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}")

CONTACT_TYPES: Final = ("company", "person")
INVOICE_TYPES: Final = ("invoice", "creditNote")
INVOICE_STATES: Final = ("draft", "approved")
#: The states the `state` filters take (the sandbox never voids an invoice, so none is voided).
FILTER_STATES: Final = ("draft", "approved", "voided")
#: `net`: entryDate + days; `netEndOfMonth`: the last day of entryDate's month + days;
#: `date`: the fixed `dueDate` the invoice is sent with. A contact's terms cannot be `date`.
PAYMENT_TERMS_MODES: Final = ("net", "netEndOfMonth", "date")
CONTACT_PAYMENT_TERMS_MODES: Final = ("net", "netEndOfMonth")
TAX_MODES: Final = ("excl", "incl")
DISCOUNT_MODES: Final = ("cash", "percent")
CASH_SIDES: Final = ("debit", "credit")
JOURNAL_SIDES: Final = ("debit", "credit")
RECEIVER_ID_TYPES: Final = ("gln", "cvr")

#: The chart seeded at start: (accountNo, name, payment-enabled bank account, its currency;
#: None is the base currency). 3670 takes the rounding lines of credit notes (a user makes a
#: VAT-free rounding product on it); 5850 is a bank account in euros.
ACCOUNTS: Final = (
    (1000, "Salg", False, None),
    (5600, "Debitorer", False, None),
    (5800, "Bank", True, None),
    (5810, "Kortbetalinger", True, None),
    (5820, "MobilePay", True, None),
    (5850, "Bank EUR", True, "EUR"),
    (7210, "Salgsmoms", False, None),
    (7400, "Periodeafgrænsninger", False, None),
    (2750, "Kursdifferencer", False, None),
    (3670, "Øreafrunding", False, None),
)
#: (abbreviation, name, rate as a fraction).
TAX_RATES: Final = (("S25", "Salgsmoms 25%", Decimal("0.25")), ("S0", "Momsfri salg", Decimal(0)))
#: (abbreviation, name, abbreviation of its tax rate); the first is the organization's default.
RULESETS: Final = (("DK25", "Dansk salg 25%", "S25"), ("DK0", "Momsfrit salg", "S0"))
SALES_ACCOUNT_NO: Final = 1000
DAYBOOK_NAME: Final = "Kassekladde"
ORGANIZATION_NAME: Final = "Sandbox ApS"
#: "Today's" exchange rates at start and after a reset: DKK per one unit of the currency, as
#: an invoice's `exchangeRate` is. `PUT /_sandbox/rates` changes them while the sandbox runs.
DEFAULT_RATES: Final = {
    code: Fraction(Decimal(rate))
    for code, rate in (
        ("EUR", "7.4604"),
        ("GBP", "8.6"),
        ("JPY", "0.0436"),
        ("KWD", "22.6"),
        ("NOK", "0.64"),
        ("SEK", "0.65"),
        ("USD", "6.9"),
    )
}

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
    "balanceModifiers",
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

    def currency(
        self, name: str, *, required: bool = False, default: str | None = None
    ) -> str | None:
        """An active ISO 4217 currency code (`DKK`, `EUR`, `JPY`, ...)."""
        code = self.text(name, required=required, default=default)
        if code is not None and not is_currency(code):
            self.fail(name, "must be an active ISO 4217 currency code, such as DKK or EUR")
            return None
        return code

    def rate(self, name: str) -> Fraction | None:
        """An exchange rate: a number above 0, read exactly."""
        return self.number(name, above=0)


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
    #: "Today's" rates: DKK per one unit of each foreign currency the sandbox knows a rate of.
    rates: dict[str, Fraction] = field(default_factory=lambda: dict(DEFAULT_RATES))
    #: Invoice or credit note id -> the ids of the balance modifiers whose subject it is.
    modifiers_of: dict[str, list[str]] = field(default_factory=dict)
    #: A modifier's reference (`bankPayment:<id>`, `invoice:<credit note id>`) -> its id.
    modifier_by_reference: dict[str, str] = field(default_factory=dict)
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
        *(f"account:{number}" for number, _, _, _ in ACCOUNTS),
        *(f"taxRate:{abbreviation}" for abbreviation, _, _ in TAX_RATES),
        *(f"ruleset:{abbreviation}" for abbreviation, _, _ in RULESETS),
    ]
    return {key: new_id() for key in keys}


def _seeded(ids: Mapping[str, str]) -> BillyData:
    tables: dict[str, dict[str, Record]] = {plural: {} for plural in TABLES}
    for number, name, bank, currency in ACCOUNTS:
        account_id = ids[f"account:{number}"]
        _insert(tables["accounts"], _account(account_id, number, name, bank, currency))
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


def _account(account_id: str, number: int, name: str, bank: bool, currency: str | None) -> Record:
    return {
        "id": account_id,
        "accountNo": number,
        "name": name,
        "currencyId": currency,
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
    "isCustomer paymentTermsMode paymentTermsDays currencyId contactPersons createdTime"
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
    """A partial update: the given fields over the stored ones, checked as a whole (so a
    required field need not be sent again, but sent as null or "" it is refused)."""
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
        currency = price.currency("currencyId", required=True)
        exponent = exponent_of(currency)
        unit_price = price.money("unitPrice", required=True, minimum=0, exponent=exponent)
        prices.append({"unitPrice": Money(unit_price or 0, exponent), "currencyId": currency})
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
    "id type invoiceNo contactId entryDate paymentTermsMode paymentTermsDays dueDate "
    "currencyId exchangeRate taxMode state approvedTime sentState contactMessage "
    "creditedInvoiceId amount tax grossAmount balance isPaid lines externalId "
    "balanceModifiers balanceModifierIds createdTime"
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


@dataclass(frozen=True)
class PaymentTerms:
    """An invoice's terms as it keeps them: the mode, the days and the due date they give."""

    mode: str
    days: int
    due: date


def due_date(entry_date: date, mode: str, days: int) -> date:
    """`net`: `days` after the invoice date; `netEndOfMonth`: `days` after the last day of
    the invoice date's month (Danish "løbende måned + dage")."""
    start = entry_date
    if mode == "netEndOfMonth":
        last_day = calendar.monthrange(entry_date.year, entry_date.month)[1]
        start = entry_date.replace(day=last_day)
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
    _raise_if(errors, "invoice")
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
    return {**line, **_extras(f.data, LINE_FIELDS)}


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


# Balances and the balance modifiers that move them


def _modifiers_of(data: BillyData, subject_id: str) -> list[Record]:
    """The balance modifiers whose subject is an invoice or credit note, oldest first."""
    table = data.tables["balanceModifiers"]
    return [table[modifier_id] for modifier_id in data.modifiers_of.get(subject_id, [])]


def _balance(data: BillyData, invoice: Record) -> int:
    """What is still owed on an approved document: its gross (a credit note's counts as owed
    to the customer, so negative) less what its live balance modifiers took off it."""
    if invoice["state"] != "approved":
        return 0
    gross: int = invoice["grossAmount"].minor
    owed = -gross if invoice["type"] == "creditNote" else gross
    live = (m for m in _modifiers_of(data, invoice["id"]) if not m["isVoided"])
    taken: int = sum(modifier["amount"].minor for modifier in live)
    return owed - taken


def _invoice_view(data: BillyData, invoice: Record) -> Record:
    """An invoice as it is read: with its balance and whether it is paid."""
    balance = _balance(data, invoice)
    paid = invoice["state"] == "approved" and invoice["grossAmount"].minor > 0 and balance == 0
    exponent = invoice["grossAmount"].exponent
    return {**invoice, "balance": Money(balance, exponent), "isPaid": paid}


def _add_modifier(
    data: BillyData, reference: str, subject_id: str, amount: Money, entry_date: str, realized: int
) -> Record:
    """Record what a payment or a credit note did to its subject's balance.

    `amount` is in the subject's currency and positive where it lowers the balance (money
    received, a credit); `realized` is the realized currency difference in DKK minor units."""
    modifier: Record = {
        "id": new_id(),
        "modifierReference": reference,
        "subjectReference": f"invoice:{subject_id}",
        "amount": amount,
        "entryDate": entry_date,
        "realizedCurrencyDifference": Money(realized, exponent_of(BASE_CURRENCY)),
        "isVoided": False,
    }
    _insert(data.tables["balanceModifiers"], modifier)
    data.modifiers_of.setdefault(subject_id, []).append(modifier["id"])
    data.modifier_by_reference[reference] = modifier["id"]
    return modifier


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
    """Book an invoice; an approved credit note lowers the balance of the invoice it credits,
    through a balance modifier of its own (`invoice:<credit note id>`)."""
    invoice["approvedTime"] = _now()
    if invoice["type"] == "creditNote":
        credited_id = invoice["creditedInvoiceId"]
        reference = f"invoice:{invoice['id']}"
        modifier = _add_modifier(
            data, reference, credited_id, invoice["grossAmount"], invoice["entryDate"], 0
        )
        changes.touch("invoices", credited_id).touch("balanceModifiers", modifier["id"])


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


def _create_payment(data: BillyData, body: Mapping[str, Any]) -> Changes:
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
    _raise_if(errors, "bankPayment")
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
        "createdTime": _now(),
        **_extras(body, PAYMENT_FIELDS),
    }
    _insert(data.tables["bankPayments"], payment)
    sign = 1 if side == "debit" else -1
    amount = Money(sign * known(settlement).settled, exponent_of(known(subject)["currencyId"]))
    realized = _realized_difference(known(settlement), sign, known(cash_currency), known(subject))
    reference = f"bankPayment:{payment['id']}"
    modifier = _add_modifier(data, reference, subject_id, amount, known(entry_date), realized)
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


def _update_payment(data: BillyData, payment: Record, body: Mapping[str, Any]) -> Changes:
    """Only `isVoided: true` can change a payment, and it cannot be undone; voiding it voids
    its balance modifier, which gives its subject's balance back."""
    current = _wire(payment)
    errors: dict[str, str] = {}
    for name, value in body.items():
        if name == "isVoided":
            if value is not True and value != payment["isVoided"]:
                errors[name] = "a voided payment cannot be restored"
        elif current.get(name, _MISSING) != value:
            errors[name] = "cannot change; only isVoided: true can (to cancel the payment)"
    _raise_if(errors, "bankPayment")
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
    """One line: its amount is whole minor units of its currency (DKK when left out)."""
    account = _journal_account(data, accounts_by_no, f)
    currency = f.currency("currencyId", default=BASE_CURRENCY)
    exponent = exponent_of(currency)
    amount = f.money(
        "amount", required=True, minimum=0, positive=True, exponent=exponent, whole=True
    )
    line = {
        "id": new_id(),
        "accountId": account["id"] if account else None,
        "accountNo": account["accountNo"] if account else None,
        "amount": Money(amount or 0, exponent),
        "side": f.choice("side", JOURNAL_SIDES, required=True),
        "text": f.text("text"),
        "currencyId": currency,
    }
    return {**line, **_extras(f.data, JOURNAL_LINE_FIELDS)}


def _journal_account(
    data: BillyData, accounts_by_no: Mapping[int, Record], f: Fields
) -> Record | None:
    """The account a line names by `accountId` or `accountNo` (a whole number, as accounts
    carry it); both must agree if given."""
    by_id = f.record("accountId", data.tables["accounts"], "account")
    number = f.integer("accountNo")
    if not f.given("accountNo"):
        if not f.given("accountId"):
            f.fail("accountId", "an accountId or an accountNo is required")
        return by_id
    if number is None:
        return None
    by_no = accounts_by_no.get(number)
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
            debit, credit = (
                Money(sides[side], exponent_of(currency)).major for side in JOURNAL_SIDES
            )
            f.fail("lines", f"debits ({debit}) and credits ({credit}) in {currency} must be equal")


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


# Listing: filters, paging and includes

#: The records a list answers are tested by the filters its query names. A filter takes the
#: parameter's value (and the data, to look at other records) and gives the test; it raises
#: ValueError, with what to tell the client, for a value it cannot take.
Test = Callable[[Record], bool]
Filter = Callable[[BillyData, str], Test]

#: The forms of `entryDatePeriod` (Billy's examples; the sandbox's fiscal year is the calendar
#: year).
PERIOD_FORMS: Final = (
    "all, dates:YYYY-MM-DD...YYYY-MM-DD, day:YYYY-MM-DD, month:YYYY-MM, quarter:YYYY-N,"
    " halfYear:YYYY-N, year:YYYY or fiscalYear:YYYY"
)


def _query_text(value: Any) -> str:
    """A field as a query parameter writes it (`true`, `5800`, a string as it is)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _equal(name: str) -> Filter:
    """The field is exactly the value; a field that is null matches nothing."""

    def build(data: BillyData, wanted: str) -> Test:
        return lambda record: record.get(name) is not None and _query_text(record[name]) == wanted

    return build


def _exact(*names: str) -> dict[str, Filter]:
    return {name: _equal(name) for name in names}


def _flag(name: str) -> Filter:
    """A boolean field, asked for as `true` or `false`."""

    def build(data: BillyData, wanted: str) -> Test:
        if wanted not in ("true", "false"):
            raise ValueError("must be true or false")
        expected = wanted == "true"
        return lambda record: record.get(name) is expected

    return build


def _one_of(name: str, options: tuple[str, ...]) -> Filter:
    """An enumerated field, asked for by one of its values."""

    def build(data: BillyData, wanted: str) -> Test:
        if wanted not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return lambda record: record.get(name) == wanted

    return build


def _contains(*names: str) -> Filter:
    """`q`: the value is part of one of the fields, regardless of case."""

    def build(data: BillyData, wanted: str) -> Test:
        needle = wanted.casefold()
        return lambda record: any(
            needle in _query_text(record.get(name)).casefold() for name in names
        )

    return build


def _date_bound(name: str, *, latest: bool) -> Filter:
    """`min...` (or, `latest`, `max...`): the date field is on or after (on or before) the
    value; a record without the date matches neither."""

    def build(data: BillyData, wanted: str) -> Test:
        parse_day(wanted, MALFORMED_DAY)
        if latest:
            return lambda record: record.get(name) is not None and record[name] <= wanted
        return lambda record: record.get(name) is not None and record[name] >= wanted

    return build


def _time_bound(name: str, *, latest: bool) -> Filter:
    """A bound on a time field (`2025-06-02 12:00:00`, or with a `T`), as `_date_bound`."""

    def build(data: BillyData, wanted: str) -> Test:
        problem = "must be a time as YYYY-MM-DD HH:MM:SS"
        if not DATETIME.fullmatch(wanted):
            raise ValueError(problem)
        bound = wanted.replace(" ", "T")
        try:
            datetime.fromisoformat(bound)
        except ValueError:
            raise ValueError(problem) from None
        if latest:
            return lambda record: record.get(name) is not None and record[name] <= bound
        return lambda record: record.get(name) is not None and record[name] >= bound

    return build


def _entry_date_period(data: BillyData, wanted: str) -> Test:
    """`entryDatePeriod`: the entry date lies in the period."""
    first, last = _period(wanted)
    return lambda record: first <= record["entryDate"] <= last


def _period(text: str) -> tuple[str, str]:
    """The first and last day of a period written as `entryDatePeriod` takes it."""
    kind, _, value = text.partition(":")
    try:
        span = _period_span(kind, value)
    except ValueError:
        span = None
    if span is None or span[0] > span[1]:
        raise ValueError(f"must be {PERIOD_FORMS}")
    return span[0].isoformat(), span[1].isoformat()


def _period_span(kind: str, value: str) -> tuple[date, date] | None:
    """A period's days, or None for a form it does not have (ValueError for a bad date)."""
    if kind == "all" and not value:
        return date.min, date.max
    if kind == "dates":
        first, separator, last = value.partition("...")
        return (parse_day(first), parse_day(last)) if separator else None
    if kind == "day":
        return parse_day(value), parse_day(value)
    month = MONTH.fullmatch(value)
    if kind == "month" and month:
        return _months(int(month[1]), int(month[2]), 1)
    part = YEAR_PART.fullmatch(value)
    if kind in ("quarter", "halfYear") and part:
        size = 3 if kind == "quarter" else 6
        if not 1 <= int(part[2]) <= 12 // size:
            return None
        return _months(int(part[1]), (int(part[2]) - 1) * size + 1, size)
    if kind in ("year", "fiscalYear") and YEAR.fullmatch(value):
        return _months(int(value), 1, 12)
    return None


def _months(year: int, first_month: int, count: int) -> tuple[date, date]:
    """The first day of `first_month` to the last day of the `count`th month from it."""
    last_month = first_month + count - 1
    if not 1 <= first_month <= last_month <= 12:
        raise ValueError("no such months")
    last_day = calendar.monthrange(year, last_month)[1]
    return date(year, first_month, 1), date(year, last_month, last_day)


def _invoice_search(data: BillyData, wanted: str) -> Test:
    """`q` on invoices: part of the invoiceNo, of the contact's name or of a line's description
    (regardless of case); or, for a number, exactly the amount, the amount with VAT or the
    balance, in major units."""
    needle = wanted.casefold()
    figure = _query_number(wanted)

    def test(invoice: Record) -> bool:
        contact = data.tables["contacts"].get(invoice["contactId"]) or {}
        texts = [invoice["invoiceNo"], contact.get("name")]
        texts += [line["description"] for line in invoice["lines"]]
        if any(needle in _query_text(text).casefold() for text in texts):
            return True
        amounts = (invoice["amount"], invoice["grossAmount"], invoice["balance"])
        return figure is not None and any(Fraction(money.major) == figure for money in amounts)

    return test


def _query_number(text: str) -> Fraction | None:
    """A query value read as a decimal number, or None when it is not one."""
    try:
        return Fraction(Decimal(text))
    except (InvalidOperation, ValueError, OverflowError):
        return None


INVOICE_FILTERS: Final[dict[str, Filter]] = {
    **_exact("contactId", "creditedInvoiceId", "invoiceNo", "externalId", "currencyId"),
    "state": _one_of("state", FILTER_STATES),
    "isPaid": _flag("isPaid"),
    "minEntryDate": _date_bound("entryDate", latest=False),
    "maxEntryDate": _date_bound("entryDate", latest=True),
    "entryDatePeriod": _entry_date_period,
    "minApprovedTime": _time_bound("approvedTime", latest=False),
    "maxApprovedTime": _time_bound("approvedTime", latest=True),
    "minDueDate": _date_bound("dueDate", latest=False),
    "maxDueDate": _date_bound("dueDate", latest=True),
    "q": _invoice_search,
}
TRANSACTION_FILTERS: Final[dict[str, Filter]] = {
    **_exact("daybookId", "apiType"),
    "state": _one_of("state", FILTER_STATES),
    "minEntryDate": _date_bound("entryDate", latest=False),
    "maxEntryDate": _date_bound("entryDate", latest=True),
    "q": _contains("description", "extendedDescription", "voucherNo"),
}
CONTACT_FILTERS: Final[dict[str, Filter]] = {
    "q": _contains("name"),
    "contactNo": _equal("contactNo"),
    "isCustomer": _flag("isCustomer"),
}
#: Products and accounts: `q` looks in the name only.
NAME_SEARCH: Final[dict[str, Filter]] = {"q": _contains("name")}


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
    data: BillyData, params: QueryParams, singular: str, filters: Mapping[str, Filter]
) -> tuple[int, int, list[Test]]:
    """The page, the page size and the tests of the filters the query names (422 naming a
    bad one); every other parameter is ignored."""
    name = "page"
    try:
        page = _page_number(params, name, 1, None)
        name = "pageSize"
        size = _page_number(params, name, MAX_PAGE_SIZE, MAX_PAGE_SIZE)
        tests = []
        for name, value in params.items():
            if name in filters:
                tests.append(filters[name](data, value))
    except ValueError as error:
        raise _validation_failed(singular, {name: str(error)}) from None
    return page, size, tests


def _listing(
    data: BillyData,
    plural: str,
    singular: str,
    records: Iterable[Record],
    query: Query,
    filters: Mapping[str, Filter],
) -> Record:
    """One page of the records that pass every filter given, in creation order."""
    page, size, tests = _query_checks(data, query.params, singular, filters)
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


def _included(resource: Resource, params: QueryParams) -> dict[str, str]:
    """The relations of `resource` that `include` asks for (`invoice.balanceModifiers:embed`),
    each with its mode: `embed`, or `sideload` (the default). Relations the sandbox does not
    include are ignored; invoice lines are embedded whatever is asked."""
    asked: dict[str, str] = {}
    for item in (params.get("include") or "").split(","):
        path, _, mode = item.strip().partition(":")
        if not path:
            continue
        if mode not in ("", "embed", "sideload"):
            problem = {"include": f"{item.strip()}: the mode must be embed or sideload"}
            raise _validation_failed(resource.singular, problem)
        owner, _, relation = path.partition(".")
        if owner == resource.singular and relation in resource.includes:
            asked[relation] = mode or "sideload"
    return asked


def _include_modifiers(data: BillyData, invoices: list[Record], mode: str) -> list[Record]:
    """Embed each invoice's balance modifiers (`balanceModifiers`), or name them
    (`balanceModifierIds`) and answer them, to be sideloaded at the root."""
    sideloaded: list[Record] = []
    for invoice in invoices:
        modifiers = _modifiers_of(data, invoice["id"])
        if mode == "embed":
            invoice["balanceModifiers"] = modifiers
        else:
            invoice["balanceModifierIds"] = [modifier["id"] for modifier in modifiers]
            sideloaded.extend(modifiers)
    return sideloaded


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
    """One `/v2/{plural}` collection: its names, its filters, the writes it takes and the
    relations `include` may add to it."""

    plural: str
    singular: str
    filters: Mapping[str, Filter] = field(default_factory=dict)
    create: Creator | None = None
    update: Updater | None = None
    delete: Deleter | None = None
    includes: frozenset[str] = frozenset()


#: Lists honour exactly the filters Billy documents (and `q` on contacts, products and
#: accounts, which Billy's own clients use); any other query parameter is ignored.
RESOURCES: Final = {
    resource.plural: resource
    for resource in (
        Resource("accounts", "account", NAME_SEARCH),
        Resource("taxRates", "taxRate"),
        Resource("salesTaxRulesets", "salesTaxRuleset"),
        Resource("daybooks", "daybook"),
        Resource("contacts", "contact", CONTACT_FILTERS, _create_contact, _update_contact),
        Resource("contactPersons", "contactPerson", create=_create_person),
        Resource("products", "product", NAME_SEARCH, _create_product, _update_product),
        Resource(
            "invoices",
            "invoice",
            INVOICE_FILTERS,
            _create_invoice,
            _update_invoice,
            _delete_invoice,
            includes=frozenset({"balanceModifiers"}),
        ),
        Resource("invoiceDeliveries", "invoiceDelivery", create=_create_delivery),
        Resource("bankPayments", "bankPayment", create=_create_payment, update=_update_payment),
        Resource("balanceModifiers", "balanceModifier"),
        Resource(
            "daybookTransactions",
            "daybookTransaction",
            TRANSACTION_FILTERS,
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
        return _item(data, resource, parts[1], method, body, query)
    if len(parts) == 3 and parts[0] == "invoices" and parts[2] == "emails":
        return _emails(data, parts[1], method, body, query)
    raise BillyError(404, "UNKNOWN_RESOURCE", f"There is no resource at /v2/{'/'.join(parts)}.")


def _collection(
    data: BillyData, resource: Resource, method: str, body: bytes, query: Query
) -> Record:
    _allow(method, ("GET", "POST") if resource.create else ("GET",), [resource.plural])
    if method == "GET":
        included = _included(resource, query.params)
        table = data.tables[resource.plural]
        records = (_render(data, resource.plural, record) for record in table.values())
        listing = _listing(
            data, resource.plural, resource.singular, records, query, resource.filters
        )
        return _with_included(data, listing, listing[resource.plural], included)
    changes = known(resource.create)(data, _payload(body, resource.singular))
    return _written(data, changes)


def _item(
    data: BillyData, resource: Resource, record_id: str, method: str, body: bytes, query: Query
) -> Record:
    allowed = ["GET"] + ["PUT"] * bool(resource.update) + ["DELETE"] * bool(resource.delete)
    _allow(method, tuple(allowed), [resource.plural, record_id])
    if method == "DELETE":
        return _written(data, known(resource.delete)(data, record_id))
    record = data.tables[resource.plural].get(record_id)
    if record is None:
        raise _record_not_found(resource.plural, record_id)
    if method == "GET":
        included = _included(resource, query.params)
        view = _render(data, resource.plural, record)
        return _with_included(data, {resource.singular: view}, [view], included)
    changes = known(resource.update)(data, record, _payload(body, resource.singular))
    return _written(data, changes)


def _with_included(
    data: BillyData, answer: Record, records: list[Record], included: Mapping[str, str]
) -> Record:
    """`answer` with the relations asked for added to its `records` (or sideloaded)."""
    mode = included.get("balanceModifiers")
    if mode is not None:
        sideloaded = _include_modifiers(data, records, mode)
        if mode == "sideload":
            answer["balanceModifiers"] = sideloaded
    return answer


def _emails(data: BillyData, invoice_id: str, method: str, body: bytes, query: Query) -> Record:
    """`/v2/invoices/{id}/emails`: POST sends one; GET lists those sent (a sandbox extension)."""
    _allow(method, ("GET", "POST"), ["invoices", invoice_id, "emails"])
    invoice = data.tables["invoices"].get(invoice_id)
    if invoice is None:
        raise _record_not_found("invoices", invoice_id)
    if method == "GET":
        table = data.tables["emails"].values()
        emails = (email for email in table if email["invoiceId"] == invoice_id)
        return _listing(data, "emails", "email", emails, query, {})
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


def rates_view(data: BillyData) -> Record:
    """Today's rates, by currency code in alphabetical order."""
    return {code: data.rates[code] for code in sorted(data.rates)}


def change_rates(data: BillyData, changes: Mapping[str, Any]) -> dict[str, str]:
    """Set the rates named (a number above 0), or forget them (null); all or nothing.

    Answers the problems, by currency code, when any is refused (and nothing changes)."""
    problems: dict[str, str] = {}
    f = Fields(changes, problems)
    wanted: dict[str, Fraction | None] = {}
    for code in changes:
        if not is_currency(code):
            f.fail(code, "is not an active ISO 4217 currency code")
        elif code == BASE_CURRENCY:
            f.fail(code, "is the base currency: its rate is always 1")
        else:
            wanted[code] = f.rate(code)
    if problems:
        return problems
    for code, rate in wanted.items():
        if rate is None:
            data.rates.pop(code, None)
        else:
            data.rates[code] = rate
    return {}


def _sandbox_routes(store: BillyStore, faults: Faults) -> APIRouter:
    """`GET /_sandbox/summary`, `POST /_sandbox/reset` and `GET`/`PUT /_sandbox/rates` (no
    token; never faulted)."""
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

    @router.get("/rates", include_in_schema=False)
    async def read_rates() -> Response:
        with store.lock:
            return _json(dumps(rates_view(store.data)))

    @router.put("/rates", include_in_schema=False)
    async def put_rates(request: Request) -> Response:
        try:
            changes = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            changes = None
        if not isinstance(changes, dict):
            return _settings_refused("the body must be a JSON object of currency: rate", {})
        with store.lock:
            problems = change_rates(store.data, changes)
            if problems:
                return _settings_refused("invalid exchange rates", problems)
            return _json(dumps(rates_view(store.data)))

    return router


def _settings_refused(message: str, problems: Mapping[str, str]) -> Response:
    """422 in the shape `PUT /_sandbox/faults` refuses with."""
    body = {"errorCode": "VALIDATION_ERROR", "errorMessage": message, "validationErrors": problems}
    return _json(dumps(body), 422)


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
