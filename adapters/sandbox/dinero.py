"""A local stand-in for Dinero's API (Visma), which has no sandbox of its own.

It grants tokens the way Dinero's personal integrations get them (the API-key password grant),
serves the organization's resources under `/v1/{organizationId}/...` (and the few `/v1.2` and
`/v2` endpoints Dinero versions apart), keeps what it is sent in memory and computes what
Dinero computes: line VAT from each line's account, invoice totals, numbers on booking, the
remaining amount after payments and credit notes, and the entries booked documents make. The
facts it follows are in `accounting-apis.md` §2, to the letter: every field the reference marks
required is required here, and where it is silent the sandbox picks the stricter behaviour;
`docs/sandboxes.md` lists every such choice.

Requests bind their fields case-insensitively (PascalCase and camelCase both work) and answers
are PascalCase. Money travels as numbers in major units of its currency (JPY 0 decimals, DKK 2,
KWD 3) but is kept as integer minor units and computed exactly (fractions for quantities and
rates, rounded half away from zero once per amount, by `domain.money.rhu`). A document in a
foreign currency takes the day's rate from the sandbox's table (`PUT /_sandbox/rates`), and
everything it books is booked in DKK at that rate. The concurrency token
(`TimeStamp`/`Timestamp`) is a counter that every change of a document moves, so a client
holding an older one gets code 58 and must re-read.

The app is wrapped in `adapters.sandbox.faults.FaultInjector` for the API's version prefixes,
with Dinero's rate limit (100 requests a minute) on by default; the token endpoint and the
`/_sandbox` routes are never faulted nor counted.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hmac
import logging
import random
import re
import secrets
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import count
from typing import Any, Final, Literal, TypeVar
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from subledger.adapters.sandbox.faults import FaultInjector, Faults, FaultSettings, fault_routes
from subledger.adapters.sandbox.fields import (
    CURRENCY,
    EMAIL,
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
from subledger.domain.money import CURRENCY_EXPONENTS, rhu

logger = logging.getLogger("subledger.sandbox.dinero")

T = TypeVar("T")

#: Dinero's documented limit: requests a minute per organization (and client id).
RATE_LIMIT: Final = 100
#: How long a token lives, in seconds ("≈1 h").
TOKEN_SECONDS: Final = 3600
OAUTH_PATH: Final = "/dineroapi/oauth/token"
#: The version prefixes the API is served under; each endpoint answers under one of them.
VERSIONS: Final = ("v1", "v1.1", "v1.2", "v2")
API_METHODS: Final = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
SCOPES: Final = ("read", "write")

DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000
EXTERNAL_REFERENCE_MAX: Final = 128
BASE_CURRENCY: Final = "DKK"
LANGUAGES: Final = ("da-DK", "en-GB")
PAYMENT_CONDITIONS: Final = ("Netto", "NettoCash", "CurrentMonthOut", "Paid")
#: The payment conditions that count days from the invoice date; the others take none.
DAYS_CONDITIONS: Final = frozenset({"Netto", "NettoCash"})
DEFAULT_CONDITION: Final = ("Netto", 8)
LINE_TYPES: Final = ("Product", "Text")
#: The units of products and lines: the two the reference names (it did not find the full list).
UNITS: Final = ("parts", "hours")
INVOICE_STATUSES: Final = ("Draft", "Booked", "Paid", "OverPaid", "Overdue")
DOCUMENT_STATUSES: Final = ("Draft", "Booked")
SORT_ORDERS: Final = {"ascending": False, "asc": False, "descending": True, "desc": True}

GUID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
EMPTY_GUID: Final = "00000000-0000-0000-0000-000000000000"
COUNTRY: Final = re.compile(r"[A-Za-z]{2}")

#: The VAT types seeded: (code, name, rate, the account its VAT is booked to).
VAT_TYPES: Final = (
    ("U25", "Salgsmoms 25%", Fraction(1, 4), 7210),
    ("I25", "Købsmoms 25%", Fraction(1, 4), 7220),
    ("none", "Ingen moms", Fraction(0), None),
)
NO_VAT: Final = "none"

#: The chart seeded at start: (number, name, VAT code, category, kind). The numbers are those
#: of our default chart (`domain.chart.DEFAULT_ACCOUNTS`), so that its mapping works as it is.
#: Deferred revenue carries the sales VAT code so that an invoice line booked to it (as our
#: journal books lines recognized over time) gets 25% VAT; 7410 is its VAT-free twin.
ACCOUNTS: Final = (
    (1000, "Salg af ydelser", "U25", "Revenue", "entry"),
    (1010, "Salg af ydelser, momsfrit", NO_VAT, "Revenue", "entry"),
    (3620, "Gebyrer og kassedifferencer", NO_VAT, "Expenses", "entry"),
    # Without VAT, for the øre a document cannot carry otherwise: the VAT remainder of a
    # credit note that no VAT amount can express goes to it as a line of its own.
    (3670, "Øreafrunding", NO_VAT, "Expenses", "entry"),
    (3680, "Kursdifferencer", NO_VAT, "Expenses", "entry"),
    (5600, "Debitorer", NO_VAT, "Assets", "entry"),
    (5800, "Bank", NO_VAT, "Assets", "deposit"),
    (5810, "Kortindløser", NO_VAT, "Assets", "deposit"),
    (5820, "MobilePay", NO_VAT, "Assets", "deposit"),
    (7210, "Salgsmoms", NO_VAT, "Liabilities", "entry"),
    (7220, "Købsmoms", NO_VAT, "Liabilities", "entry"),
    (7400, "Forudfaktureret omsætning", "U25", "Liabilities", "entry"),
    (7410, "Forudfaktureret omsætning, momsfri", NO_VAT, "Liabilities", "entry"),
)
SALES_ACCOUNT: Final = 1000
RECEIVABLE_ACCOUNT: Final = 5600
#: Where a shortfall paid with `RemainderIsFee: true` is booked.
FEE_ACCOUNT: Final = 3620
#: Where a foreign-currency payment's difference from its invoice's rate is booked.
EXCHANGE_ACCOUNT: Final = 3680

#: The day's exchange rates the sandbox starts with: DKK per unit of each currency. Fixed, so
#: that tests can compute with them; `PUT /_sandbox/rates` changes them.
RATES: Final = {
    "EUR": "7.4604",
    "GBP": "8.6",
    "JPY": "0.0436",
    "KWD": "22.6",
    "NOK": "0.64",
    "SEK": "0.65",
    "USD": "6.9",
}
#: The largest rate `PUT /_sandbox/rates` takes (DKK per unit).
LARGEST_RATE: Final = 10_000


class ErrorCode:
    """Dinero's error codes: the official ones (40-43, 90) and those clients have seen."""

    NOT_FOUND: Final = 40
    UNAUTHORIZED: Final = 41
    VALIDATION: Final = 42
    LIMIT_EXCEEDED: Final = 43
    STALE_TIMESTAMP: Final = 58
    UNKNOWN_DOCUMENT: Final = 63
    DUPLICATE: Final = 72
    NOT_PRO: Final = 90


QUOTA_EXCEEDED: Final = "API calls quota exceeded!"


class BrownoutSettings(BaseModel):
    """Dinero answers 480 "Brownout" at random while it retires an endpoint; this does so on
    purpose, for every API request, so a client can be tested against it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate: float = Field(default=0.0, ge=0.0, le=1.0, description="Share of requests answered 480.")
    seed: int | None = Field(default=None, description="Seed of the draws, for repeatable runs.")


class DineroSandboxSettings(BaseModel):
    """How one Dinero sandbox runs: the credentials its token endpoint accepts, the one
    organization it holds and the faults it injects (Dinero's rate limit is on by default)."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(default="sandbox-client", min_length=1)
    client_secret: str = Field(default="sandbox-secret", min_length=1)
    api_key: str = Field(default="sandbox-api-key", min_length=1)
    organization_id: int = Field(default=123456, ge=1)
    organization_name: str = Field(default="Sandbox ApS", min_length=1)
    is_pro: bool = True
    token_seconds: int = Field(default=TOKEN_SECONDS, ge=1)
    faults: FaultSettings = Field(default_factory=lambda: FaultSettings(rate_limit=RATE_LIMIT))
    brownout: BrownoutSettings = Field(default_factory=BrownoutSettings)


# Times and Guids


def _instant(moment: datetime) -> str:
    """Dinero's timestamp format (`2006-01-02T15:04:05.999`), in UTC."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _parse_instant(text: str) -> datetime:
    """`YYYY-MM-DDTHH:mm:ssZ` (UTC) as Dinero documents it; an offset or none (UTC) also do."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError("must be a UTC time as YYYY-MM-DDTHH:mm:ssZ") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _guid(text: str) -> str | None:
    """A Guid in its canonical form (lower case), or None when the text is not one."""
    return text.lower() if GUID.fullmatch(text) else None


def new_guid() -> str:
    return str(uuid.uuid4())


# Errors


class DineroError(Exception):
    """A refusal, answered in Dinero's error body."""

    def __init__(
        self,
        status: int,
        code: int | None,
        message: str,
        validation: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.validation = dict(validation or {})
        self.headers = dict(headers or {})


def error_envelope(
    code: int | None, message: str, validation: Mapping[str, str] | None = None
) -> Record:
    """Dinero's error body, always with every part its clients read: `code`, `message`,
    `validationErrors` (field -> problem), `errorMessageList` and `languageSpecificMessages`."""
    problems = dict(validation or {})
    messages = [{"Code": code, "Message": f"{name}: {text}"} for name, text in problems.items()]
    return {
        "code": code,
        "message": message,
        "validationErrors": problems,
        "errorMessageList": messages or [{"Code": code, "Message": message}],
        "languageSpecificMessages": [
            {"property": name, "message": text} for name, text in problems.items()
        ],
    }


#: The codes of the fault middleware's own refusals, by HTTP status.
FAULT_CODES: Final = {429: ErrorCode.LIMIT_EXCEEDED}


def dinero_error_body(status: int, code: str, message: str) -> bytes:
    """The body of the fault middleware's answers: a 429 (rate limit or throttle) says what
    Dinero says, "API calls quota exceeded!", with code 43; a 500 carries no code."""
    text = QUOTA_EXCEEDED if status == 429 else message
    return dumps(error_envelope(FAULT_CODES.get(status), text))


def _error_response(error: DineroError) -> Response:
    body = dumps(error_envelope(error.code, error.message, error.validation))
    return Response(body, error.status, error.headers, media_type="application/json")


def _invalid(problems: Mapping[str, str]) -> DineroError:
    """400 with code 42, naming every field that was wrong."""
    message = "Validation failed: " + "; ".join(f"{k}: {v}" for k, v in problems.items())
    return DineroError(400, ErrorCode.VALIDATION, message, problems)


def _not_found(what: str, key: object) -> DineroError:
    return DineroError(404, ErrorCode.NOT_FOUND, f"No {what} has the id {key}.")


def _unknown_document(what: str, key: str) -> DineroError:
    """Dinero answers a GET of an unknown invoice or credit note with 400 and code 63."""
    return DineroError(400, ErrorCode.UNKNOWN_DOCUMENT, f"No {what} has the Guid {key}.")


def _duplicate(what: str, name: str, key: str) -> DineroError:
    return DineroError(
        409, ErrorCode.DUPLICATE, f"Duplicated entity: {what} with {name} {key} already exists."
    )


# Reading request fields


class Fields(RequestFields):
    """One request object's fields, bound case-insensitively and checked as in `RequestFields`.

    Dinero binds JSON without regard to case, so `ContactGuid`, `contactGuid` and
    `contactguid` are one field (when a body names it twice, the last one counts). A problem is
    noted against the field's PascalCase name (such as `ProductLines[2].Quantity`), so `check`
    must be called before what was read is used. Choices are matched without regard to case
    too, Guids are read in canonical form, and a list of objects that is missing or wrong reads
    as empty."""

    def __init__(self, data: Mapping[str, Any], errors: dict[str, str], prefix: str = "") -> None:
        super().__init__(data, errors, prefix)
        self.values = {str(name).lower(): value for name, value in data.items()}

    def get(self, name: str) -> Any:
        """The value sent for `name`, in whatever case it was named."""
        return self.values.get(name.lower())

    def check(self) -> None:
        """Refuse the request (400, code 42) if any field was wrong."""
        if self.errors:
            raise _invalid(self.errors)

    def choice(
        self,
        name: str,
        options: Sequence[str],
        *,
        default: str | None = None,
        required: bool = False,
    ) -> str | None:
        """One of `options`, matched without regard to case and answered as it is spelled there;
        an empty string counts as not given."""
        value = self.get(name)
        if value is None or value == "":
            if required:
                self.fail(name, "is required")
            return default
        spelled = {option.lower(): option for option in options}
        if not isinstance(value, str) or value.lower() not in spelled:
            self.fail(name, f"must be one of {', '.join(options)}")
            return None
        return spelled[value.lower()]

    def guid(self, name: str, *, required: bool = False) -> str | None:
        """A Guid in canonical form; the empty Guid counts as not given (as .NET sends it)."""
        value = self.text(name, required=required)
        if value is None or value == EMPTY_GUID:
            if value == EMPTY_GUID and required:
                self.fail(name, "is required")
            return None
        canonical = _guid(value)
        if canonical is None:
            self.fail(name, "must be a Guid (8-4-4-4-12 hexadecimal digits)")
        return canonical

    def objects(self, name: str, *, required: bool = False) -> list[Mapping[str, Any]]:
        """A list of JSON objects (non-empty when required); empty when it is not one."""
        return super().objects(name, required=required) or []


def _json_body(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError:
        raise DineroError(400, ErrorCode.VALIDATION, "The request body is not JSON.") from None


def _object(body: bytes) -> Fields:
    root = _json_body(body)
    if not isinstance(root, dict):
        raise DineroError(400, ErrorCode.VALIDATION, "The request body must be a JSON object.")
    return Fields.of(root)


def _objects(body: bytes) -> list[Mapping[str, Any]]:
    root = _json_body(body)
    if not isinstance(root, list) or not all(isinstance(item, dict) for item in root):
        raise DineroError(
            400, ErrorCode.VALIDATION, "The request body must be a JSON array of objects."
        )
    return root


# The data


@dataclass
class Line:
    """A priced product line (or a text line, which carries no amount)."""

    view: Record
    account: int | None
    vat_code: str
    net: int
    vat: int


@dataclass
class Document:
    """An invoice or a credit note (they share one space of Guids and one number series)."""

    guid: str
    kind: Literal["invoice", "creditNote"]
    fields: Record
    lines: list[Line]
    contact: str | None
    day: date
    currency: str
    due: date
    stamp: str
    created: datetime
    updated: datetime
    credit_for: str | None = None
    #: DKK per unit of `currency`, taken from the day's rates when the draft was last saved.
    rate: Fraction = Fraction(1)
    status: str = "Draft"
    number: int | None = None
    mail_out: str = "NotSent"
    deleted: datetime | None = None

    @property
    def net(self) -> int:
        return sum(line.net for line in self.lines)

    @property
    def vat(self) -> int:
        return sum(line.vat for line in self.lines)

    @property
    def total(self) -> int:
        return self.net + self.vat

    @property
    def exponent(self) -> int:
        """How many decimals the document's currency has."""
        return exponent_of(self.currency)

    def money(self, minor: int) -> Money:
        """An amount of the document's currency, to be written in its major units."""
        return Money(minor, self.exponent)

    def in_base(self, minor: int) -> int:
        """An amount of the document's currency in øre, at the document's rate."""
        return to_base(minor, self.currency, self.rate)


@dataclass
class Payment:
    """A payment on a booked invoice: `amount` is the DKK paid into the deposit account,
    `settled` and `fee` are what it settles in the invoice's currency, and `cleared` and
    `fee_cleared` the øre they take off the receivable at the invoice's rate."""

    id: str
    invoice: str
    day: date
    description: str
    account: int
    amount: int
    settled: int
    fee: int
    cleared: int
    fee_cleared: int
    external: str | None
    remainder_is_fee: bool


@dataclass
class Product:
    """A product: a price list entry a line may name (its fields are the line's to give)."""

    guid: str
    fields: Record
    created: datetime
    updated: datetime
    deleted: datetime | None = None

    def view(self) -> Record:
        return {
            "ProductGuid": self.guid,
            **self.fields,
            "CreatedAt": _instant(self.created),
            "UpdatedAt": _instant(self.updated),
            "DeletedAt": _instant(self.deleted) if self.deleted else None,
        }


@dataclass
class VoucherLine:
    description: str
    account: int
    balancing: int
    amount: int
    account_vat: str | None
    balancing_vat: str | None


@dataclass
class Voucher:
    """A manual voucher (server Guid) or a ledger item (client Id): journal lines to book."""

    key: str
    kind: Literal["ManualVoucher", "LedgerItem"]
    day: date
    external: str | None
    file_guid: str | None
    lines: list[VoucherLine]
    stamp: str
    created: datetime
    updated: datetime
    status: str = "Draft"
    number: int | None = None
    deleted: datetime | None = None


@dataclass(frozen=True)
class Entry:
    """One booked amount on one account (debit positive); what `GET /entries` lists."""

    guid: str
    source: str
    account: int
    amount: int
    vat_code: str | None
    day: date
    voucher_number: int | None
    voucher_type: str
    description: str


@dataclass
class DineroData:
    """Everything one organization holds. Only touched while `DineroStore.lock` is held."""

    organization: Record
    accounts: dict[int, Record]
    vat_types: dict[str, Record]
    rates: dict[str, Fraction]
    contacts: dict[str, Record] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    documents: dict[str, Document] = field(default_factory=dict)
    payments: dict[str, Payment] = field(default_factory=dict)
    vouchers: dict[str, Voucher] = field(default_factory=dict)
    ledger_items: dict[str, Voucher] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)
    sent: list[Record] = field(default_factory=list)
    last_number: int = 0
    last_voucher_number: int = 0

    def vat_type(self, code: str | None) -> Record | None:
        return None if code is None else self.vat_types.get(code.lower())

    def vat_rate(self, code: str) -> Fraction:
        found = self.vat_type(code)
        return Fraction(0) if found is None else Fraction(found["VatRate"])


@dataclass(frozen=True)
class Grant:
    expires: datetime
    scopes: frozenset[str]


class DineroStore:
    """The sandbox's state behind one lock, with the clock it reads the time from (replaceable,
    so a test can move time to expire a token or make an invoice overdue) and the tokens it has
    granted (kept across resets: they are credentials, not records)."""

    def __init__(self, settings: DineroSandboxSettings) -> None:
        self.lock = threading.Lock()
        self.settings = settings
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.tokens: dict[str, Grant] = {}
        self.tokens_issued = 0
        self._stamps = count(1)
        self.data = _seeded(settings)

    def reset(self) -> None:
        """Back to the seeded organization (tokens stay valid; timestamps keep counting up)."""
        with self.lock:
            self.data = _seeded(self.settings)

    def stamp(self) -> str:
        """A new concurrency token: 16 hexadecimal digits, never issued before."""
        return f"{next(self._stamps):016X}"


def _seeded(settings: DineroSandboxSettings) -> DineroData:
    organization = {
        "Id": settings.organization_id,
        "Name": settings.organization_name,
        "IsPro": settings.is_pro,
    }
    accounts = {
        number: {
            "AccountNumber": number,
            "Name": name,
            "VatCode": vat_code,
            "Category": category,
            "IsHidden": False,
            "IsDefaultSalesAccount": number == SALES_ACCOUNT,
            "IsDepositAccount": kind == "deposit",
        }
        for number, name, vat_code, category, kind in ACCOUNTS
    }
    vat_types = {
        code.lower(): {"VatCode": code, "Name": name, "VatRate": rate, "_account": account}
        for code, name, rate, account in VAT_TYPES
    }
    return DineroData(
        organization=organization, accounts=accounts, vat_types=vat_types, rates=seeded_rates()
    )


def seeded_rates() -> dict[str, Fraction]:
    """The exchange rates the sandbox starts with (and goes back to on a reset)."""
    return {code: Fraction(Decimal(rate)) for code, rate in RATES.items()}


# Currencies and rates


def to_base(minor: int, currency: str, rate: Fraction) -> int:
    """`minor` units of `currency` in øre at `rate` DKK per unit, rounded half away from
    zero: 1000 JPY (exponent 0) at 0.0436 is 4360 øre."""
    return rhu(minor * rate * Fraction(10) ** (2 - exponent_of(currency)))


def in_base(amounts: Iterable[int], currency: str, rate: Fraction, start: int = 0) -> list[int]:
    """Each amount in øre, rounded so that every running total is the running total converted
    at once: the parts of a document add up to its total in DKK, øre for øre. `start` is what
    came before (earlier payments of the same invoice), so a series of payments does too."""
    parts = []
    total = start
    done = to_base(start, currency, rate)
    for amount in amounts:
        total += amount
        converted = to_base(total, currency, rate)
        parts.append(converted - done)
        done = converted
    return parts


# One request


@dataclass(frozen=True)
class Query:
    """A request's query parameters, by lower-cased name (the last of a repeated one counts)."""

    values: Mapping[str, str]

    @classmethod
    def of(cls, params: QueryParams) -> Query:
        return cls({name.lower(): value for name, value in params.multi_items()})

    def get(self, name: str) -> str | None:
        value = self.values.get(name.lower())
        return None if value is None or value == "" else value


@dataclass(frozen=True)
class Call:
    """What a handler needs: the data, the ids in the path, the body, the query and the time."""

    data: DineroData
    ids: tuple[str, ...]
    body: bytes
    query: Query
    now: datetime
    stamp: Callable[[], str]

    @property
    def today(self) -> date:
        return self.now.date()


@dataclass(frozen=True)
class Answer:
    """A handler's answer: a body to write as JSON (None: an empty body) and a status."""

    body: Any = None
    status: int = 200


def _touch(call: Call, thing: Document | Voucher) -> str:
    """Mark a document or voucher changed: a new concurrency token and `UpdatedAt`."""
    thing.stamp = call.stamp()
    thing.updated = call.now
    return thing.stamp


def _fresh(thing: Document | Voucher, given: str | None, name: str = "Timestamp") -> None:
    """Refuse a change made with anything but the latest concurrency token (code 58)."""
    if given is not None and given != thing.stamp:
        raise DineroError(
            400,
            ErrorCode.STALE_TIMESTAMP,
            f"The {name} {given} is not the latest: the record has changed since it was read. "
            "Read it again and retry with its current one.",
            {name: "is not the latest"},
        )


# Contacts


def _read_contact(f: Fields) -> Record:
    """A contact's fields (the required ones as Dinero requires them), checked as a whole;
    without payment conditions it takes the organization's (Netto, 8 days)."""
    kind, days = _conditions(f, DEFAULT_CONDITION)
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
        "PreferredInvoiceCurrencyKey": _iso_currency(f, "PreferredInvoiceCurrencyKey"),
    }
    f.check()
    return contact


def _create_contact(call: Call) -> Answer:
    """A replayed `ContactGuid` is 400 `guidMustBeUnique`, not 409 (as Dinero answers it)."""
    f = _object(call.body)
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
    moment = _instant(call.now)
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
    guid = _guid(call.ids[0])
    contact = None if guid is None else call.data.contacts.get(guid)
    if contact is None:
        raise _not_found("contact", call.ids[0])
    return contact


def _get_contact(call: Call) -> Answer:
    """A deleted contact is still read (with its `DeletedAt`), so it can be restored."""
    return Answer(_contact(call))


def _update_contact(call: Call) -> Answer:
    """PUT replaces the contact's fields whole (the required ones are required again)."""
    contact = _contact(call)
    if contact["DeletedAt"] is not None:
        raise _invalid({"ContactGuid": "the contact is deleted; restore it first"})
    contact.update(_read_contact(_object(call.body)))
    contact["UpdatedAt"] = _instant(call.now)
    return Answer()


def _delete_contact(call: Call) -> Answer:
    contact = _contact(call)
    if contact["DeletedAt"] is None:
        contact["DeletedAt"] = contact["UpdatedAt"] = _instant(call.now)
    return Answer()


def _restore_contact(call: Call) -> Answer:
    contact = _contact(call)
    if contact["DeletedAt"] is not None:
        contact["DeletedAt"] = None
        contact["UpdatedAt"] = _instant(call.now)
    return Answer()


def _list_contacts(call: Call) -> Answer:
    return _listing(call, list(call.data.contacts.values()), CONTACT_FILTERS)


def _list_contacts_v2(call: Call) -> Answer:
    """The v2 list also returns deleted contacts (check `DeletedAt`)."""
    records = list(call.data.contacts.values())
    return _listing(call, records, CONTACT_FILTERS, with_deleted=True)


# Products


def _read_product(data: DineroData, f: Fields) -> Record:
    """A product's fields, checked as a whole: `AccountNumber`, `BaseAmountValue` (DKK, the
    products' currency), `Quantity` (not 0) and `Unit` are required."""
    account = _account(f, data, "AccountNumber", required=True)
    quantity = f.number("Quantity", required=True, nonzero=True)
    product = {
        "ProductNumber": f.text("ProductNumber"),
        "Name": f.text("Name"),
        "BaseAmountValue": _optional_amount(f.money("BaseAmountValue", required=True)),
        "Quantity": None if quantity is None else f.get("Quantity"),
        "AccountNumber": account["AccountNumber"] if account else None,
        "Unit": f.choice("Unit", UNITS, required=True),
        "ExternalReference": f.text("ExternalReference", max_length=EXTERNAL_REFERENCE_MAX),
        "Comment": f.text("Comment"),
    }
    f.check()
    return product


def _create_product(call: Call) -> Answer:
    """201 `{ProductGuid}`; the Guid is the sandbox's (the create model has none)."""
    fields = _read_product(call.data, _object(call.body))
    product = Product(new_guid(), fields, call.now, call.now)
    call.data.products[product.guid] = product
    return Answer({"ProductGuid": product.guid}, 201)


def _product(call: Call) -> Product:
    """The product the path names; an unknown one is 404 (as for contacts)."""
    guid = _guid(call.ids[0])
    product = None if guid is None else call.data.products.get(guid)
    if product is None:
        raise _not_found("product", call.ids[0])
    return product


def _get_product(call: Call) -> Answer:
    """A deleted product is still read, with its `DeletedAt`."""
    return Answer(_product(call).view())


def _update_product(call: Call) -> Answer:
    """PUT replaces the product's fields whole (the required ones are required again)."""
    product = _product(call)
    if product.deleted is not None:
        raise _invalid({"ProductGuid": "the product is deleted"})
    product.fields = _read_product(call.data, _object(call.body))
    product.updated = call.now
    return Answer()


def _delete_product(call: Call) -> Answer:
    """DELETE takes no body; the product is kept as deleted, and no line may name it."""
    product = _product(call)
    if product.deleted is None:
        product.deleted = product.updated = call.now
    return Answer()


def _list_products(call: Call) -> Answer:
    records = [product.view() for product in call.data.products.values()]
    return _listing(call, records, PRODUCT_FILTERS)


# Invoices and credit notes: reading and pricing


def _conditions(f: Fields, default: tuple[str, int | None]) -> tuple[str, int | None]:
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


def _iso_currency(f: Fields, name: str) -> str | None:
    """An active ISO 4217 currency code, in capitals."""
    code = f.text(name, pattern=CURRENCY, hint="an ISO 4217 currency code in capitals")
    if code is not None and code not in CURRENCY_EXPONENTS:
        f.fail(name, f"must be an active ISO 4217 currency code ({code} is none)")
        return None
    return code


def _due(day: date, kind: str | None, days: int | None) -> date:
    """The due date (`PaymentDate`): days after the date, the month's end, or the date itself."""
    if kind in DAYS_CONDITIONS:
        return day + timedelta(days=days or 0)
    if kind == "CurrentMonthOut":
        return day.replace(day=calendar.monthrange(day.year, day.month)[1])
    return day


def price_line(
    quantity: Fraction, base: int, discount: Fraction, rate: Fraction, incl: bool
) -> tuple[int, int]:
    """A line's net and VAT in minor units: `rhu(quantity × base)` less the discount share,
    then VAT on the net (`rhu(net × rate)`), or, when prices include VAT, taken out of the
    total (`rhu(total × rate / (1 + rate))`)."""
    total = rhu(quantity * base)
    total -= rhu(total * discount / 100)
    if incl:
        vat = rhu(total * rate / (1 + rate))
        return total - vat, vat
    return total, rhu(total * rate)


def _account(f: Fields, data: DineroData, name: str, *, required: bool = False) -> Record | None:
    number = f.integer(name, required=required)
    if number is None:
        return None
    account = data.accounts.get(number)
    if account is None:
        f.fail(name, f"refers to no account (there is no account {number})")
    return account


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
    account = _account(f, data, "AccountNumber", required=True)
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


def _read_document(call: Call, f: Fields, kind: str) -> Draft:
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
    terms = _conditions(f, default_terms)
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
        "ReminderFee": _optional_amount(f.money("ReminderFee", minimum=0), exponent),
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
    code = _iso_currency(f, "Currency")
    if f.prefix + "Currency" in f.errors:
        return BASE_CURRENCY
    code = code or (credited.currency if credited else BASE_CURRENCY)
    if credited is not None and code != credited.currency:
        f.fail("Currency", f"must be the credited invoice's, {credited.currency}")
    elif code != BASE_CURRENCY and code not in data.rates:
        f.fail("Currency", _no_rate(data, code))
    return code


def _no_rate(data: DineroData, code: str) -> str:
    known_codes = ", ".join(sorted(data.rates)) or "none"
    return f"has no exchange rate today ({code}; the rates are for {known_codes})"


def _optional_amount(minor: int | None, exponent: int = 2) -> Money | None:
    return None if minor is None else Money(minor, exponent)


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


def _remaining(data: DineroData, invoice: Document) -> int:
    """What is still owed: the total less payments, fees taken as paid and booked credit notes."""
    return invoice.total - _taken_off(data).get(invoice.guid, 0)


def _taken_off(data: DineroData) -> Counter[str]:
    """By invoice, what its payments (with fees taken as paid) and booked credit notes took off
    it: one pass over each, for a list that shows every invoice's status."""
    taken: Counter[str] = Counter()
    for payment in data.payments.values():
        taken[payment.invoice] += payment.settled + payment.fee
    for note in data.documents.values():
        if note.credit_for and note.status == "Booked" and note.deleted is None:
            taken[note.credit_for] += note.total
    return taken


def _payment_status(
    data: DineroData, invoice: Document, today: date, taken: Counter[str] | None = None
) -> str:
    if invoice.status != "Booked":
        return "Draft"
    remaining = invoice.total - (taken if taken is not None else _taken_off(data))[invoice.guid]
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


def _document_view(
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
        view["PaymentStatus"] = _payment_status(data, document, today, taken)
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
        CreatedAt=_instant(document.created),
        UpdatedAt=_instant(document.updated),
        DeletedAt=_instant(document.deleted) if document.deleted else None,
    )
    return view


# Invoices and credit notes: the endpoints


def _document(call: Call, kind: str) -> Document:
    """The invoice or credit note the path names; unknown (or deleted) is 400 with code 63."""
    what = "invoice" if kind == "invoice" else "credit note"
    guid = _guid(call.ids[0])
    document = None if guid is None else call.data.documents.get(guid)
    if document is None or document.kind != kind or document.deleted is not None:
        raise _unknown_document(what, call.ids[0])
    return document


def _create(call: Call, kind: Literal["invoice", "creditNote"]) -> Answer:
    """A draft, with the client's `Guid` when it gives one: a replay is 409 with code 72,
    checked before anything else so that a retry learns at once that its first try arrived."""
    f = _object(call.body)
    guid = f.guid("Guid")
    if guid is not None and guid in call.data.documents:
        raise _duplicate("an invoice or credit note", "Guid", guid)
    draft = _read_document(call, f, kind)
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


def _create_invoice(call: Call) -> Answer:
    return _create(call, "invoice")


def _create_credit_note(call: Call) -> Answer:
    return _create(call, "creditNote")


def _fetch_invoice(call: Call) -> Answer:
    """`invoices/fetch`: the invoice a create model would make, priced, and nothing stored."""
    draft = _read_document(call, _object(call.body), "invoice")
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
    view = _document_view(call.data, preview, call.today)
    for name in ("Guid", "TimeStamp", "CreatedAt", "UpdatedAt", "DeletedAt"):
        view.pop(name)
    return Answer(view)


def _get_invoice(call: Call) -> Answer:
    return Answer(_document_view(call.data, _document(call, "invoice"), call.today))


def _get_credit_note(call: Call) -> Answer:
    return Answer(_document_view(call.data, _document(call, "creditNote"), call.today))


def _update_invoice(call: Call) -> Answer:
    """`PUT /v1.2/.../invoices/{guid}`: a draft's whole create model again, with its latest
    `Timestamp`; its Guid stays (a `Guid` in the body is ignored)."""
    document = _document(call, "invoice")
    f = _object(call.body)
    stamp = f.text("Timestamp", required=True)
    draft = _read_document(call, f, "invoice")
    _fresh(document, stamp)
    if document.status != "Draft":
        raise _invalid({"Status": "only a draft can be changed; credit a booked invoice"})
    document.fields, document.lines, document.contact = draft.fields, draft.lines, draft.contact
    document.day, document.currency, document.due = draft.day, draft.currency, draft.due
    document.rate = draft.rate
    return Answer({"Guid": document.guid, "TimeStamp": _touch(call, document)})


def _delete_invoice(call: Call) -> Answer:
    """A draft is deleted with its latest `Timestamp` (a booked invoice is credited instead).
    It is kept as deleted: `deletedOnly=true` lists it and its Guid stays taken."""
    document = _document(call, "invoice")
    f = _object(call.body)
    stamp = f.text("Timestamp", required=True)
    f.check()
    _fresh(document, stamp)
    if document.status != "Draft":
        raise _invalid({"Status": "a booked invoice cannot be deleted; credit it instead"})
    _touch(call, document)
    document.deleted = call.now
    return Answer()


def _book(call: Call, kind: str) -> Answer:
    """Book a draft with its latest `Timestamp`: it gets its number (the next free one, or the
    `Number` given), its entries and a new `TimeStamp`; the answer is the document."""
    document = _document(call, kind)
    f = _object(call.body)
    stamp = f.text("Timestamp", required=True)
    number = f.integer("Number", minimum=1)
    f.check()
    _fresh(document, stamp)
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
        raise _invalid(problems)
    document.number = number if number is not None else data.last_number + 1
    data.last_number = max(data.last_number, document.number)
    document.status = "Booked"
    _touch(call, document)
    data.entries.extend(_document_entries(data, document))
    return Answer(_document_view(data, document, call.today))


def _book_invoice(call: Call) -> Answer:
    return _book(call, "invoice")


def _book_credit_note(call: Call) -> Answer:
    return _book(call, "creditNote")


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
        vat_account = _vat_account(data, line.vat_code)
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


def _vat_account(data: DineroData, code: str | None) -> int | None:
    vat_type = data.vat_type(code)
    return None if vat_type is None else vat_type["_account"]


def _email(call: Call, kind: str) -> Answer:
    """E-mail a booked document (to `Receiver`, else its contact's `Email`); the mail is kept
    for `GET /_sandbox/sent` and the document gets `MailOutStatus: Sent` and a new stamp."""
    document = _document(call, kind)
    f = _object(call.body)
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
    _fresh(document, stamp)
    if document.status != "Booked":
        raise _invalid({"Status": "only a booked document can be e-mailed"})
    contact = call.data.contacts[document.contact] if document.contact else {}
    mail["Receiver"] = mail["Receiver"] or contact.get("Email")
    if not mail["Receiver"]:
        raise _invalid({"Receiver": "is required: the contact has no Email"})
    _sent(call, document, "Email", mail)
    return Answer()


def _email_invoice(call: Call) -> Answer:
    return _email(call, "invoice")


def _email_credit_note(call: Call) -> Answer:
    return _email(call, "creditNote")


def _send_with_ean(call: Call) -> Answer:
    """`POST /v2/.../invoices/{guid}/with-ean`: an e-invoice of a booked invoice to
    `ReceiverEanNumber`, else the contact's `EanNumber` (13 digits either way)."""
    document = _document(call, "invoice")
    f = _object(call.body)
    stamp = f.text("Timestamp", required=True)
    delivery = {
        "ReceiverEanNumber": f.text(
            "ReceiverEanNumber", pattern=THIRTEEN_DIGITS, hint="13 digits (an EAN)"
        ),
        "OrderReference": f.text("OrderReference"),
        "AttPerson": f.text("AttPerson"),
    }
    f.check()
    _fresh(document, stamp)
    if document.status != "Booked":
        raise _invalid({"Status": "only a booked invoice can be sent as an e-invoice"})
    contact = call.data.contacts[document.contact] if document.contact else {}
    delivery["ReceiverEanNumber"] = delivery["ReceiverEanNumber"] or contact.get("EanNumber")
    if not delivery["ReceiverEanNumber"]:
        raise _invalid({"ReceiverEanNumber": "is required: the contact has no EanNumber"})
    _sent(call, document, "EInvoice", delivery)
    return Answer()


def _sent(call: Call, document: Document, kind: str, details: Record) -> None:
    document.mail_out = "Sent"
    _touch(call, document)
    record = {"Kind": kind, "Guid": document.guid, "Number": document.number, **details}
    call.data.sent.append({**record, "SentAt": _instant(call.now)})


def _generate_credit_note(call: Call) -> Answer:
    """A draft credit note for the whole of a booked invoice (its lines, contact, currency),
    at the day's rate of its currency."""
    invoice = _document(call, "invoice")
    f = _object(call.body)
    stamp = f.text("Timestamp", required=True)
    f.check()
    _fresh(invoice, stamp)
    if invoice.status != "Booked":
        raise _invalid({"Status": "only a booked invoice can be credited"})
    if invoice.currency != BASE_CURRENCY and invoice.currency not in call.data.rates:
        raise _invalid({"Currency": _no_rate(call.data, invoice.currency)})
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


# Payments


@dataclass(frozen=True)
class PaymentFields:
    """A payment's body, checked: `amount` in øre, `settled` in the invoice's currency."""

    stamp: str
    account: int
    amount: int
    settled: int
    description: str
    remainder_is_fee: bool
    day: date
    external: str | None


def _read_payment(call: Call, invoice: Document) -> PaymentFields:
    """`Amount` is the DKK paid into the deposit account and must be whole øre. On a foreign
    invoice `AmountInForeignCurrency` (whole minor units of the invoice's currency, the sign
    of `Amount`) is required and settles the invoice; on a DKK invoice `Amount` settles it and
    `AmountInForeignCurrency`, if given, must be the same amount."""
    f = _object(call.body)
    stamp = f.text("Timestamp", required=True)
    account = _account(f, call.data, "DepositAccountNumber", required=True)
    if account is not None and not account["IsDepositAccount"]:
        f.fail(
            "DepositAccountNumber", f"account {account['AccountNumber']} is not a deposit account"
        )
    amount = f.money("Amount", required=True, nonzero=True, whole=True)
    description = f.text("Description", required=True)
    remainder_is_fee = f.flag("RemainderIsFee", required=True)
    day = f.day("PaymentDate", default=call.today)
    external = f.text("ExternalReference", max_length=EXTERNAL_REFERENCE_MAX)
    foreign_invoice = invoice.currency != BASE_CURRENCY
    foreign = f.money(
        "AmountInForeignCurrency",
        required=foreign_invoice,
        nonzero=True,
        exponent=invoice.exponent,
        whole=True,
    )
    if amount is not None and foreign is not None:
        if not foreign_invoice and foreign != amount:
            f.fail("AmountInForeignCurrency", "must be Amount on a DKK invoice (or be left out)")
        elif (foreign > 0) != (amount > 0):
            f.fail("AmountInForeignCurrency", "must have the sign of Amount")
    f.check()
    return PaymentFields(
        stamp=known(stamp),
        account=known(account)["AccountNumber"],
        amount=known(amount),
        settled=known(foreign if foreign_invoice else amount),
        description=known(description),
        remainder_is_fee=remainder_is_fee,
        day=known(day),
        external=external,
    )


def _create_payment(call: Call) -> Answer:
    """A payment on a booked invoice, into a deposit account. A negative `Amount` pays money
    back. With `RemainderIsFee: true`, a payment short of what is owed settles the invoice and
    the shortfall is booked as a fee. What it settles leaves the receivable at the invoice's
    rate; what the DKK paid differs from that is an exchange difference."""
    invoice = _document(call, "invoice")
    given = _read_payment(call, invoice)
    _fresh(invoice, given.stamp)
    if invoice.status != "Booked":
        raise _invalid({"Status": "only a booked invoice can be paid"})
    settled = given.settled
    remaining = _remaining(call.data, invoice)
    fee = remaining - settled if given.remainder_is_fee and 0 < settled < remaining else 0
    before = sum(
        p.settled + p.fee for p in call.data.payments.values() if p.invoice == invoice.guid
    )
    cleared, fee_cleared = in_base([settled, fee], invoice.currency, invoice.rate, before)
    payment = Payment(
        id=new_guid(),
        invoice=invoice.guid,
        day=given.day,
        description=given.description,
        account=given.account,
        amount=given.amount,
        settled=settled,
        fee=fee,
        cleared=cleared,
        fee_cleared=fee_cleared,
        external=given.external,
        remainder_is_fee=given.remainder_is_fee,
    )
    call.data.payments[payment.id] = payment
    call.data.entries.extend(_payment_entries(invoice, payment))
    _touch(call, invoice)
    return Answer(status=201)


def _payment_entries(invoice: Document, payment: Payment) -> list[Entry]:
    """The DKK paid into the deposit account, what it settles off the receivable (at the
    invoice's rate), the difference to exchange differences, and a fee taken as paid."""
    text = f"Betaling faktura {invoice.number}: {payment.description}"
    amounts = [
        (payment.account, payment.amount),
        (RECEIVABLE_ACCOUNT, -payment.cleared),
        (EXCHANGE_ACCOUNT, payment.cleared - payment.amount),
        (FEE_ACCOUNT, payment.fee_cleared),
        (RECEIVABLE_ACCOUNT, -payment.fee_cleared),
    ]
    return [
        Entry(
            new_guid(),
            payment.id,
            account,
            amount,
            None,
            payment.day,
            invoice.number,
            "InvoicePayment",
            text,
        )
        for account, amount in amounts
        if amount
    ]


def _payment_view(invoice: Document, payment: Payment) -> Record:
    """`Amount` in DKK; `AmountInForeignCurrency` what it settled in the invoice's currency
    (on a DKK invoice, the same amount)."""
    return {
        "Id": payment.id,
        "PaymentDate": payment.day.isoformat(),
        "Description": payment.description,
        "DepositAccountNumber": payment.account,
        "Amount": Money(payment.amount),
        "AmountInForeignCurrency": invoice.money(payment.settled),
        "ExternalReference": payment.external,
        "RemainderIsFee": payment.remainder_is_fee,
    }


def _list_payments(call: Call) -> Answer:
    """`GET /v2/.../invoices/{guid}/payments`: the payments and what is paid and still owed,
    in the invoice's currency."""
    invoice = _document(call, "invoice")
    payments = [p for p in call.data.payments.values() if p.invoice == invoice.guid]
    remaining = _remaining(call.data, invoice) if invoice.status == "Booked" else invoice.total
    return Answer(
        {
            "Payments": [_payment_view(invoice, payment) for payment in payments],
            "RemainingAmount": invoice.money(remaining),
            "PaidAmount": invoice.money(sum(payment.settled for payment in payments)),
            "InvoiceTotalIncludingReminderExpenses": invoice.money(invoice.total),
        }
    )


def _delete_payment(call: Call) -> Answer:
    """Take a payment back (with the invoice's latest `Timestamp`), and its entries."""
    invoice = _document(call, "invoice")
    f = _object(call.body)
    stamp = f.text("Timestamp", required=True)
    f.check()
    payment_id = _guid(call.ids[1])
    payment = None if payment_id is None else call.data.payments.get(payment_id)
    if payment is None or payment.invoice != invoice.guid:
        raise _not_found("payment of this invoice", call.ids[1])
    _fresh(invoice, stamp)
    del call.data.payments[payment.id]
    call.data.entries = [entry for entry in call.data.entries if entry.source != payment.id]
    _touch(call, invoice)
    return Answer()


# Manual vouchers and ledger items


def _read_voucher_lines(data: DineroData, f: Fields) -> list[VoucherLine]:
    """`Lines`, each with the fields the reference gives it: `Description`, `AccountNumber`,
    `BalancingAccountNumber` (another account) and `Amount` (whole øre, not 0) are required;
    the VAT codes may be null or empty, which means the account's own (as the reference says)."""
    lines = []
    for i, given in enumerate(f.objects("Lines", required=True)):
        line = f.nested(given, f"Lines[{i}].")
        description = line.text("Description", required=True)
        account = _account(line, data, "AccountNumber", required=True)
        balancing = _account(line, data, "BalancingAccountNumber", required=True)
        if account is not None and account is balancing:
            line.fail("BalancingAccountNumber", "must be another account than AccountNumber")
        amount = line.money("Amount", required=True, nonzero=True, whole=True)
        lines.append(
            VoucherLine(
                description=description or "",
                account=account["AccountNumber"] if account else 0,
                balancing=balancing["AccountNumber"] if balancing else 0,
                amount=amount or 0,
                account_vat=_vat_code(data, line, "AccountVatCode"),
                balancing_vat=_vat_code(data, line, "BalancingAccountVatCode"),
            )
        )
    return lines


def _vat_code(data: DineroData, f: Fields, name: str) -> str | None:
    """A VAT code as the seeded VAT types spell it; null or empty falls back to the account's."""
    code = f.text(name)
    if code is None or code == "":
        return None
    vat_type = data.vat_type(code)
    if vat_type is None:
        f.fail(name, f"is no VAT code (the codes are {', '.join(c for c, *_ in VAT_TYPES)})")
        return None
    return str(vat_type["VatCode"])


def _read_voucher(
    call: Call, f: Fields, key: str, kind: Literal["ManualVoucher", "LedgerItem"]
) -> Voucher:
    """A manual voucher: `VoucherDate`, `ExternalReference` and `Lines` are required (the
    reference marks only `FileGuid` optional)."""
    day = f.day("VoucherDate", required=True)
    external = f.text("ExternalReference", required=True, max_length=EXTERNAL_REFERENCE_MAX)
    file_guid = f.guid("FileGuid")
    lines = _read_voucher_lines(call.data, f)
    f.check()
    return Voucher(
        key=key,
        kind=kind,
        day=known(day),
        external=external,
        file_guid=file_guid,
        lines=lines,
        stamp=call.stamp(),
        created=call.now,
        updated=call.now,
    )


def _create_voucher(call: Call) -> Answer:
    """`POST .../vouchers/manuel`: a draft voucher (Dinero makes its Guid). Every line has
    its balancing account, so a voucher balances by construction."""
    voucher = _read_voucher(call, _object(call.body), new_guid(), "ManualVoucher")
    call.data.vouchers[voucher.key] = voucher
    return Answer({"Guid": voucher.key, "Timestamp": voucher.stamp}, 201)


def _voucher(call: Call) -> Voucher:
    guid = _guid(call.ids[0])
    voucher = None if guid is None else call.data.vouchers.get(guid)
    if voucher is None or voucher.deleted is not None:
        raise _not_found("manual voucher", call.ids[0])
    return voucher


def _voucher_view(voucher: Voucher) -> Record:
    return {
        "Guid": voucher.key,
        "VoucherNumber": voucher.number,
        "VoucherDate": voucher.day.isoformat(),
        "ExternalReference": voucher.external,
        "FileGuid": voucher.file_guid,
        "Status": voucher.status,
        "Lines": [
            {
                "Description": line.description,
                "AccountNumber": line.account,
                "BalancingAccountNumber": line.balancing,
                "Amount": Money(line.amount),
                "AccountVatCode": line.account_vat,
                "BalancingAccountVatCode": line.balancing_vat,
            }
            for line in voucher.lines
        ],
        "Timestamp": voucher.stamp,
        "CreatedAt": _instant(voucher.created),
        "UpdatedAt": _instant(voucher.updated),
    }


def _get_voucher(call: Call) -> Answer:
    return Answer(_voucher_view(_voucher(call)))


def _delete_voucher(call: Call) -> Answer:
    voucher = _voucher(call)
    f = _object(call.body)
    stamp = f.text("Timestamp", required=True)
    f.check()
    _fresh(voucher, stamp)
    if voucher.status != "Draft":
        raise _invalid({"Status": "a booked voucher cannot be deleted"})
    voucher.deleted = call.now
    return Answer()


def _book_voucher(call: Call) -> Answer:
    voucher = _voucher(call)
    f = _object(call.body)
    stamp = f.text("Timestamp", required=True)
    f.check()
    _fresh(voucher, stamp)
    _post_voucher(call, voucher)
    return Answer(_voucher_view(voucher))


def _booking_problems(voucher: Voucher, prefix: str = "") -> dict[str, str]:
    """Why a voucher cannot be booked: it is booked already."""
    if voucher.status != "Draft":
        return {f"{prefix}Status": "the voucher is already booked"}
    return {}


def _post_voucher(call: Call, voucher: Voucher) -> None:
    """Book a draft voucher: its number, its entries and a new stamp."""
    problems = _booking_problems(voucher)
    if problems:
        raise _invalid(problems)
    data = call.data
    data.last_voucher_number += 1
    voucher.number = data.last_voucher_number
    voucher.status = "Booked"
    _touch(call, voucher)
    data.entries.extend(_voucher_entries(data, voucher))


def _voucher_entries(data: DineroData, voucher: Voucher) -> list[Entry]:
    """Each line debits `Amount` to its account and credits it to its balancing account (a
    negative amount the other way). A side's VAT code (given, else its account's) takes the
    VAT out of its amount to the code's VAT account: journal amounts include VAT."""
    entries: list[Entry] = []
    for line in voucher.lines:
        sides = [
            (line.account, line.amount, line.account_vat),
            (line.balancing, -line.amount, line.balancing_vat),
        ]
        for account, amount, given_code in sides:
            code = given_code or str(data.accounts[account]["VatCode"])
            rate = data.vat_rate(code)
            vat = rhu(amount * rate / (1 + rate))
            text = line.description
            parts = [(account, amount - vat, code), (_vat_account(data, code), vat, None)]
            entries.extend(
                Entry(
                    new_guid(),
                    voucher.key,
                    number,
                    part,
                    vat_code,
                    voucher.day,
                    voucher.number,
                    voucher.kind,
                    text,
                )
                for number, part, vat_code in parts
                if number is not None and part
            )
    return entries


def _create_ledger_items(call: Call) -> Answer:
    """`POST /v1.2/.../ledgeritems`: drafts with the client's `Id`s, all or none; an `Id` the
    sandbox already holds (or given twice) is 409 with code 72. `Id`, `VoucherDate` and
    `Lines` are required (the reference marks only `FileGuid` optional)."""
    items = _objects(call.body)
    errors: dict[str, str] = {}
    made: list[Voucher] = []
    seen: set[str] = set()
    for i, given in enumerate(items):
        f = Fields(given, errors, f"[{i}].")
        key = f.guid("Id", required=True)
        if key is not None and (key in call.data.ledger_items or key in seen):
            raise _duplicate("a ledger item", "Id", key)
        seen.add(key or "")
        day = f.day("VoucherDate", required=True)
        file_guid = f.guid("FileGuid")
        lines = _read_voucher_lines(call.data, f)
        if key is not None and day is not None:
            made.append(
                Voucher(
                    key, "LedgerItem", day, None, file_guid, lines, call.stamp(), call.now, call.now
                )
            )
    if not items:
        errors["body"] = "must hold at least one ledger item"
    if errors:
        raise _invalid(errors)
    for item in made:
        call.data.ledger_items[item.key] = item
    return Answer(status=201)


def _ledger_item_status(item: Voucher) -> Record:
    return {
        "Id": item.key,
        "Status": item.status,
        "VoucherNumber": item.number,
        "Version": item.stamp,
    }


def _ledger_items_status(call: Call) -> Answer:
    """The status of each `Id` asked about that the sandbox holds (unknown ones are left out)."""
    answers = []
    for i, given in enumerate(_objects(call.body)):
        f = Fields(given, {}, f"[{i}].")
        key = f.guid("Id", required=True)
        f.check()
        item = call.data.ledger_items.get(key or "")
        if item is not None:
            answers.append(_ledger_item_status(item))
    return Answer(answers)


def _book_ledger_items(call: Call) -> Answer:
    """Book ledger items by `Id` and their latest `Version`, all or none (a stale Version is
    code 58). Booking is immediate here: `PendingBooking` is never seen."""
    chosen: list[Voucher] = []
    for i, given in enumerate(_objects(call.body)):
        f = Fields(given, {}, f"[{i}].")
        key = f.guid("Id", required=True)
        version = f.text("Version", required=True)
        f.check()
        item = call.data.ledger_items.get(key or "")
        if item is None:
            raise _not_found("ledger item", key)
        if any(other.key == item.key for other in chosen):
            raise _invalid({f"[{i}].Id": "is given twice"})
        _fresh(item, version, "Version")
        chosen.append(item)
    problems: dict[str, str] = {}
    for i, item in enumerate(chosen):
        problems.update(_booking_problems(item, f"[{i}]."))
    if problems:
        raise _invalid(problems)
    for item in chosen:
        _post_voucher(call, item)
    return Answer([_ledger_item_status(item) for item in chosen])


# Accounts, VAT, settings, entries


def _entry_accounts(call: Call) -> Answer:
    """Every account (deposit accounts too: journal lines may use them), filtered by
    `categoryFilter` (categories, comma-separated)."""
    accounts = [_account_view(account) for account in call.data.accounts.values()]
    wanted = call.query.get("categoryFilter")
    if wanted is not None:
        categories = {category.strip().lower() for category in wanted.split(",")}
        accounts = [a for a in accounts if str(a["Category"]).lower() in categories]
    return Answer(_project(accounts, call.query.get("fields")))


def _account_view(account: Record) -> Record:
    return {name: value for name, value in account.items() if name != "IsDepositAccount"}


def _deposit_accounts(call: Call) -> Answer:
    accounts = [
        {"AccountNumber": account["AccountNumber"], "Name": account["Name"]}
        for account in call.data.accounts.values()
        if account["IsDepositAccount"]
    ]
    return Answer(_project(accounts, call.query.get("fields")))


def _vat_types(call: Call) -> Answer:
    types = [
        {name: value for name, value in vat_type.items() if not name.startswith("_")}
        for vat_type in call.data.vat_types.values()
    ]
    return Answer(_project(types, call.query.get("fields")))


def _sales_settings(call: Call) -> Answer:
    return Answer(
        {
            "DefaultAccountNumber": SALES_ACCOUNT,
            "LinesInclVat": False,
            "DefaultPaymentConditionType": DEFAULT_CONDITION[0],
            "DefaultPaymentConditionNumberOfDays": DEFAULT_CONDITION[1],
        }
    )


def _entries(call: Call) -> Answer:
    """`GET /entries?fromDate&toDate&includePrimo`: the booked entries of the range, which must
    lie in one accounting year (a calendar year here); with `includePrimo` (the default), each
    account's balance before the year comes first, dated the year's first day."""
    first = _checked(call.query, "fromDate", parse_day)
    last = _checked(call.query, "toDate", parse_day)
    primo = _checked(call.query, "includePrimo", _true_or_false)
    if first is None or last is None:
        raise _invalid({"fromDate": "fromDate and toDate are required"})
    if first > last or first.year != last.year:
        raise _invalid({"toDate": "the range must lie in one accounting year, fromDate first"})
    data = call.data
    rows = []
    if primo is not False:
        before: Counter[int] = Counter()
        for entry in data.entries:
            if entry.day < date(first.year, 1, 1):
                before[entry.account] += entry.amount
        rows = [
            _entry_view(
                data,
                Entry(
                    "", "", account, amount, None, date(first.year, 1, 1), None, "Primo", "Primo"
                ),
            )
            for account, amount in sorted(before.items())
            if amount
        ]
    rows += [_entry_view(data, e) for e in data.entries if first <= e.day <= last]
    return Answer(rows)


def _entry_view(data: DineroData, entry: Entry) -> Record:
    return {
        "EntryGuid": entry.guid or None,
        "AccountNumber": entry.account,
        "AccountName": data.accounts[entry.account]["Name"],
        "Date": entry.day.isoformat(),
        "VoucherNumber": entry.voucher_number,
        "VoucherType": entry.voucher_type,
        "Description": entry.description,
        "VatCode": entry.vat_code,
        "Amount": Money(entry.amount),
    }


# Lists: paging, filters, projection

Test = Callable[[Record], bool]

#: The fields `queryFilter` may name, by list, each with the operators it takes: on contacts
#: what the reference documents (`VatNumber eq`, `Name eq` and `contains`; `IsDebitor` and
#: the rest are refused), on credit notes its three fields, on invoices the same three (the
#: reference names none for them), on products none.
Filterable = Mapping[str, tuple[str, ...]]
CONTACT_FILTERS: Final[Filterable] = {"Name": ("eq", "contains"), "VatNumber": ("eq",)}
DOCUMENT_FILTERS: Final[Filterable] = {
    "ExternalReference": ("eq", "contains"),
    "ContactGuid": ("eq",),
    "Description": ("eq", "contains"),
}
PRODUCT_FILTERS: Final[Filterable] = {}
FREE_TEXT_FIELDS: Final = ("Number", "ContactName", "Description", "ExternalReference", "Comment")

CLAUSE: Final = re.compile(
    r"\s*(?P<field>[A-Za-z]+)\s+(?P<op>[A-Za-z]+)\s+(?P<value>'(?:[^']|'')*'|[^\s']+)\s*"
)
JOINER: Final = re.compile(r"and\s+", re.IGNORECASE)


def _as_text(value: Any) -> str:
    """A field as a filter compares it: booleans as true/false, numbers as digits."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _query_filter(text: str, allowed: Filterable) -> list[Test]:
    """`queryFilter`: clauses `Field eq 'value'` or `Field contains 'value'` joined by `and`,
    compared without regard to case (a quote inside a value is doubled: `'O''Brien'`); each
    field only with the operators `allowed` gives it."""
    spelled = {name.lower(): name for name in allowed}
    tests: list[Test] = []
    position = 0
    while True:
        clause = CLAUSE.match(text, position)
        if clause is None:
            raise ValueError(f"cannot read {text[position:]!r}: use Field eq 'value'")
        name = spelled.get(clause["field"].lower())
        if name is None:
            raise ValueError(f"{clause['field']} cannot be filtered on ({_filterable(allowed)})")
        op = clause["op"].lower()
        if op not in allowed[name]:
            raise ValueError(f"{name} takes {' or '.join(allowed[name])}, not {clause['op']}")
        value = clause["value"]
        if value.startswith("'"):
            value = value[1:-1].replace("''", "'")
        tests.append(_clause_test(name, op, value.casefold()))
        position = clause.end()
        if position == len(text):
            return tests
        joiner = JOINER.match(text, position)
        if joiner is None:
            raise ValueError(f"expected 'and' at {text[position:]!r}")
        position = joiner.end()


def _filterable(allowed: Filterable) -> str:
    if not allowed:
        return "this list takes no queryFilter"
    fields = ", ".join(f"{name} {'/'.join(ops)}" for name, ops in allowed.items())
    return f"only {fields}"


def _clause_test(name: str, op: str, wanted: str) -> Test:
    if op == "eq":
        return lambda record: _as_text(record.get(name)).casefold() == wanted
    return lambda record: wanted in _as_text(record.get(name)).casefold()


def _paging(query: Query) -> tuple[int, int]:
    page = _whole(query, "page", default=0, minimum=0)
    size = _whole(query, "pageSize", default=DEFAULT_PAGE_SIZE, minimum=1)
    if size > MAX_PAGE_SIZE:
        raise _invalid({"pageSize": f"must be at most {MAX_PAGE_SIZE}"})
    return page, size


def _whole(query: Query, name: str, *, default: int, minimum: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) < minimum:
        raise _invalid({name: f"must be a whole number from {minimum}"})
    return int(text)


def _common_tests(query: Query, filterable: Filterable, with_deleted: bool) -> list[Test]:
    """`changesSince`, `deletedOnly` and `queryFilter`, which every list takes."""
    tests: list[Test] = []
    since = _checked(query, "changesSince", _parse_instant)
    if since is not None:
        bound = _instant(since.replace(microsecond=0))
        tests.append(lambda record: str(record["UpdatedAt"]) >= bound)
    if _checked(query, "deletedOnly", _true_or_false):
        tests.append(lambda record: record["DeletedAt"] is not None)
    elif not with_deleted:
        tests.append(lambda record: record["DeletedAt"] is None)
    tests.extend(_checked(query, "queryFilter", lambda text: _query_filter(text, filterable)) or [])
    return tests


def _checked(query: Query, name: str, read: Callable[[str], T]) -> T | None:
    """A query parameter read by `read`, None when it is absent; 400 naming it when it is bad."""
    text = query.get(name)
    if text is None:
        return None
    try:
        return read(text)
    except ValueError as error:
        raise _invalid({name: str(error)}) from None


def _true_or_false(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError("must be true or false")
    return text.lower() == "true"


def _listing(
    call: Call,
    records: list[Record],
    filterable: Filterable,
    *,
    with_deleted: bool = False,
    more: Sequence[Test] = (),
    sortable: bool = False,
) -> Answer:
    """One page (from 0) of the records that pass every test, in creation order unless sorted,
    in Dinero's `{Collection, Pagination}`; `Result` counts the records on the page and
    `ResultWithoutFilter` every record of the list (deleted ones aside)."""
    page, size = _paging(call.query)
    tests = [*_common_tests(call.query, filterable, with_deleted), *more]
    chosen = [record for record in records if all(test(record) for test in tests)]
    if sortable:
        chosen = _sorted(chosen, call.query)
    shown = chosen[page * size : (page + 1) * size]
    pagination = {
        "MaxPageSizeAllowed": MAX_PAGE_SIZE,
        "PageSize": size,
        "Result": len(shown),
        "ResultWithoutFilter": sum(1 for record in records if record["DeletedAt"] is None),
        "Page": page,
    }
    return Answer(
        {"Collection": _project(shown, call.query.get("fields")), "Pagination": pagination}
    )


def _sorted(records: list[Record], query: Query) -> list[Record]:
    """`sort` (a field of the records, any case) and `sortOrder` (ascending or descending)."""
    name = query.get("sort")
    order = (query.get("sortOrder") or "ascending").lower()
    if order not in SORT_ORDERS:
        raise _invalid({"sortOrder": "must be ascending or descending"})
    if name is None:
        return records[::-1] if SORT_ORDERS[order] else records
    keys = {key.lower(): key for record in records[:1] for key in record}
    key = keys.get(name.lower())
    if key is None and records:
        raise _invalid({"sort": f"{name} is no field of the list"})

    def order_key(record: Record) -> tuple[bool, Any]:
        value = record.get(key or "")
        if isinstance(value, Money):
            value = value.minor
        return value is not None, value if value is not None else 0

    return sorted(records, key=order_key, reverse=SORT_ORDERS[order])


def _project(records: Iterable[Record], fields: str | None) -> list[Record]:
    """`fields`: each record cut to the fields named, under the names as the caller spelled
    them (`fields=guid,Number` answers `guid` and `Number`); unknown names are left out."""
    if fields is None:
        return list(records)
    names = [name.strip() for name in fields.split(",") if name.strip()]
    projected = []
    for record in records:
        by_lower = {key.lower(): key for key in record}
        projected.append(
            {name: record[by_lower[name.lower()]] for name in names if name.lower() in by_lower}
        )
    return projected


def _document_list(call: Call, kind: str) -> Answer:
    """Invoices or credit notes, with the lists' filters plus `startDate`/`endDate` (both or
    neither), `freeTextSearch`, `statusFilter` and `sort`/`sortOrder`."""
    taken = _taken_off(call.data)
    views = [
        _document_view(call.data, document, call.today, taken)
        for document in call.data.documents.values()
        if document.kind == kind
    ]
    status_field = "PaymentStatus" if kind == "invoice" else "Status"
    statuses = INVOICE_STATUSES if kind == "invoice" else DOCUMENT_STATUSES
    more = _document_tests(call.query, status_field, statuses)
    return _listing(call, views, DOCUMENT_FILTERS, more=more, sortable=True)


def _document_tests(query: Query, status_field: str, statuses: Sequence[str]) -> list[Test]:
    tests: list[Test] = []
    start, end = query.get("startDate"), query.get("endDate")
    if (start is None) != (end is None):
        raise _invalid({"startDate": "startDate and endDate go together (both or neither)"})
    if start is not None and end is not None:
        try:
            first, last = parse_day(start).isoformat(), parse_day(end).isoformat()
        except ValueError as error:
            raise _invalid({"startDate": str(error)}) from None
        tests.append(lambda record: first <= str(record["Date"]) <= last)
    search = query.get("freeTextSearch")
    if search is not None:
        needle = search.casefold()
        tests.append(
            lambda record: any(
                needle in _as_text(record.get(name)).casefold() for name in FREE_TEXT_FIELDS
            )
        )
    wanted = query.get("statusFilter")
    if wanted is not None:
        spelled = {status.lower(): status for status in statuses}
        chosen = {spelled.get(part.strip().lower()) for part in wanted.split(",")}
        if None in chosen:
            raise _invalid({"statusFilter": f"must be among {', '.join(statuses)}"})
        tests.append(lambda record: record[status_field] in chosen)
    return tests


def _list_invoices(call: Call) -> Answer:
    return _document_list(call, "invoice")


def _list_credit_notes(call: Call) -> Answer:
    return _document_list(call, "creditNote")


# Routing

Handler = Callable[[Call], Answer]
#: Stands for an id in a path pattern.
ID: Final = "{id}"


def _matches(pattern: Sequence[str], parts: Sequence[str]) -> bool:
    """Whether a path (after the organization) fits a pattern; literal parts in any case."""
    return len(parts) == len(pattern) and all(
        want == ID or want.lower() == part.lower()
        for want, part in zip(pattern, parts, strict=True)
    )


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: its method, the version it is served under, its path after the
    organization (literal parts matched without regard to case) and whether it writes."""

    method: str
    version: str
    pattern: tuple[str, ...]
    handler: Handler
    writes: bool | None = None

    @property
    def is_write(self) -> bool:
        return self.method != "GET" if self.writes is None else self.writes

    def matches(self, parts: Sequence[str]) -> bool:
        return _matches(self.pattern, parts)

    def ids(self, parts: Sequence[str]) -> tuple[str, ...]:
        return tuple(part for want, part in zip(self.pattern, parts, strict=True) if want == ID)


ENDPOINTS: Final = (
    Endpoint("GET", "v1", ("contacts",), _list_contacts),
    Endpoint("POST", "v1", ("contacts",), _create_contact),
    Endpoint("GET", "v2", ("contacts",), _list_contacts_v2),
    Endpoint("GET", "v1", ("contacts", ID), _get_contact),
    Endpoint("PUT", "v1", ("contacts", ID), _update_contact),
    Endpoint("DELETE", "v1", ("contacts", ID), _delete_contact),
    Endpoint("POST", "v1", ("contacts", ID, "restore"), _restore_contact),
    Endpoint("GET", "v1", ("products",), _list_products),
    Endpoint("POST", "v1", ("products",), _create_product),
    Endpoint("GET", "v1", ("products", ID), _get_product),
    Endpoint("PUT", "v1", ("products", ID), _update_product),
    Endpoint("DELETE", "v1", ("products", ID), _delete_product),
    Endpoint("GET", "v1", ("invoices",), _list_invoices),
    Endpoint("POST", "v1", ("invoices",), _create_invoice),
    Endpoint("POST", "v1", ("invoices", "fetch"), _fetch_invoice, writes=False),
    Endpoint("GET", "v1", ("invoices", ID), _get_invoice),
    Endpoint("PUT", "v1.2", ("invoices", ID), _update_invoice),
    Endpoint("DELETE", "v1", ("invoices", ID), _delete_invoice),
    Endpoint("POST", "v1", ("invoices", ID, "book"), _book_invoice),
    Endpoint("POST", "v1", ("invoices", ID, "email"), _email_invoice),
    Endpoint("POST", "v2", ("invoices", ID, "with-ean"), _send_with_ean),
    Endpoint("POST", "v1", ("invoices", ID, "generate-creditnote"), _generate_credit_note),
    Endpoint("POST", "v1", ("invoices", ID, "payments"), _create_payment),
    Endpoint("GET", "v2", ("invoices", ID, "payments"), _list_payments),
    Endpoint("DELETE", "v1", ("invoices", ID, "payments", ID), _delete_payment),
    Endpoint("GET", "v1", ("sales", "creditnotes"), _list_credit_notes),
    Endpoint("POST", "v1", ("sales", "creditnotes"), _create_credit_note),
    Endpoint("GET", "v1", ("sales", "creditnotes", ID), _get_credit_note),
    Endpoint("POST", "v1", ("sales", "creditnotes", ID, "book"), _book_credit_note),
    Endpoint("POST", "v1", ("sales", "creditnotes", ID, "email"), _email_credit_note),
    Endpoint("GET", "v1", ("sales", "settings"), _sales_settings),
    Endpoint("GET", "v1", ("accounts", "entry"), _entry_accounts),
    Endpoint("GET", "v1", ("accounts", "deposit"), _deposit_accounts),
    Endpoint("GET", "v1", ("vatTypes",), _vat_types),
    Endpoint("POST", "v1", ("vouchers", "manuel"), _create_voucher),
    Endpoint("GET", "v1", ("vouchers", "manuel", ID), _get_voucher),
    Endpoint("DELETE", "v1", ("vouchers", "manuel", ID), _delete_voucher),
    Endpoint("POST", "v1", ("vouchers", "manuel", ID, "book"), _book_voucher),
    Endpoint("POST", "v1.2", ("ledgeritems",), _create_ledger_items),
    Endpoint("POST", "v1", ("ledgeritems", "status"), _ledger_items_status, writes=False),
    Endpoint("POST", "v1", ("ledgeritems", "book"), _book_ledger_items),
    Endpoint("GET", "v1", ("entries",), _entries),
)

#: Endpoints Dinero is retiring: always answered 480, naming the version to use instead.
RETIRED: Final = (
    (
        "GET",
        "v1",
        ("invoices", ID, "payments"),
        "GET /v2/{organizationId}/invoices/{guid}/payments",
    ),
    (
        "POST",
        "v1",
        ("invoices", ID, "with-ean"),
        "POST /v2/{organizationId}/invoices/{guid}/with-ean",
    ),
    ("POST", "v1", ("ledgeritems",), "POST /v1.2/{organizationId}/ledgeritems"),
    ("POST", "v1.1", ("ledgeritems",), "POST /v1.2/{organizationId}/ledgeritems"),
)


def _retired(method: str, version: str, parts: Sequence[str]) -> str | None:
    """What to use instead of a retiring endpoint, or None when the request is not for one."""
    for retired_method, retired_version, pattern, instead in RETIRED:
        if (method, version) == (retired_method, retired_version) and _matches(pattern, parts):
            return instead
    return None


def _route(method: str, version: str, parts: Sequence[str]) -> Endpoint:
    """The endpoint a request is for: 404 when no path matches (or only under another
    version), 405 when the path takes other methods."""
    same_path = [endpoint for endpoint in ENDPOINTS if endpoint.matches(parts)]
    here = [endpoint for endpoint in same_path if endpoint.version == version]
    for endpoint in here:
        if endpoint.method == method:
            return endpoint
    path = "/".join(parts)
    elsewhere = [e for e in same_path if e.method == method and e.version != version]
    if elsewhere:
        raise DineroError(
            404,
            ErrorCode.NOT_FOUND,
            f"{method} {path} is served under /{elsewhere[0].version}, not /{version}.",
        )
    if here:
        allowed = ", ".join(sorted({endpoint.method for endpoint in here}))
        raise DineroError(
            405,
            None,
            f"{method} is not allowed on /{version}/{{organizationId}}/{path} (only {allowed}).",
        )
    raise DineroError(
        404, ErrorCode.NOT_FOUND, f"There is no resource at /{version}/{{organizationId}}/{path}."
    )


# Tokens


def _oauth_error(status: int, error: str, description: str, **headers: str) -> Response:
    body = dumps({"error": error, "error_description": description})
    return Response(
        body, status, {"Cache-Control": "no-store", **headers}, media_type="application/json"
    )


def _client_of(authorization: str | None) -> tuple[str, str] | None:
    """The client id and secret of an `Authorization: Basic` header, or None."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, colon, secret = (
            base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (client_id, secret) if colon else None


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def grant_token(store: DineroStore, authorization: str | None, body: bytes) -> Response:
    """`POST /dineroapi/oauth/token`: the password grant of Dinero's personal integrations.

    The client authenticates with `Authorization: Basic b64(client_id:client_secret)`; the
    form body is `grant_type=password&scope=read write&username=<API key>&password=<API key>`.
    Refusals are OAuth's (RFC 6749 §5.2): 401 `invalid_client`, 400 `unsupported_grant_type`,
    `invalid_grant` (a wrong API key) or `invalid_scope`. No refresh token is issued: the API
    key is the lasting credential, so a client asks again when its token expires."""
    settings = store.settings
    client = _client_of(authorization)
    if client is None or not (
        _same(client[0], settings.client_id) and _same(client[1], settings.client_secret)
    ):
        return _oauth_error(
            401,
            "invalid_client",
            "Authenticate the client with Authorization: Basic b64(client_id:client_secret).",
            **{"WWW-Authenticate": 'Basic realm="dinero"'},
        )
    form = {
        name: values[-1]
        for name, values in parse_qs(body.decode(errors="replace"), keep_blank_values=True).items()
    }
    if "grant_type" not in form:
        return _oauth_error(400, "invalid_request", "grant_type is required.")
    if form["grant_type"] != "password":
        return _oauth_error(400, "unsupported_grant_type", "Only the password grant is served.")
    if not (
        _same(form.get("username", ""), settings.api_key)
        and _same(form.get("password", ""), settings.api_key)
    ):
        return _oauth_error(400, "invalid_grant", "username and password must both be the API key.")
    scopes = (form.get("scope") or " ".join(SCOPES)).split()
    if not scopes or any(scope not in SCOPES for scope in scopes):
        return _oauth_error(400, "invalid_scope", "The scope is read, write or both.")
    token = secrets.token_urlsafe(32)
    with store.lock:
        now = store.clock()
        store.tokens = {key: grant for key, grant in store.tokens.items() if grant.expires > now}
        store.tokens[token] = Grant(
            now + timedelta(seconds=settings.token_seconds), frozenset(scopes)
        )
        store.tokens_issued += 1
    answer = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": settings.token_seconds,
        "scope": " ".join(sorted(set(scopes), key=SCOPES.index)),
    }
    return Response(
        dumps(answer), 200, {"Cache-Control": "no-store"}, media_type="application/json"
    )


def _authenticate(store: DineroStore, authorization: str | None, now: datetime) -> Grant:
    """The grant of a request's `Authorization: Bearer` token; 401 with code 41 without one,
    with an unknown one or with an expired one."""
    challenge = {"WWW-Authenticate": 'Bearer realm="dinero"'}
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise DineroError(
            401,
            ErrorCode.UNAUTHORIZED,
            "Send Authorization: Bearer <access token>.",
            headers=challenge,
        )
    grant = store.tokens.get(token.strip())
    if grant is None:
        raise DineroError(
            401, ErrorCode.UNAUTHORIZED, "The access token is not valid.", headers=challenge
        )
    if grant.expires <= now:
        raise DineroError(
            401,
            ErrorCode.UNAUTHORIZED,
            "The access token has expired; ask for a new one.",
            headers=challenge,
        )
    return grant


# Brownouts


class Brownouts:
    """The brownout switch: its settings, its draws and how many it has injected."""

    def __init__(self, settings: BrownoutSettings) -> None:
        self._lock = threading.Lock()
        self._settings = settings
        self._random = _generator(settings.seed)
        self.injected = 0

    @property
    def settings(self) -> BrownoutSettings:
        return self._settings

    def update(self, changes: Mapping[str, Any]) -> BrownoutSettings:
        with self._lock:
            settings = BrownoutSettings.model_validate({**self._settings.model_dump(), **changes})
            self._settings = settings
            if "seed" in changes:
                self._random = _generator(settings.seed)
        return settings

    def reset(self) -> None:
        with self._lock:
            self._random = _generator(self._settings.seed)
            self.injected = 0

    def draw(self) -> bool:
        """True when this request browns out (a switch that is off draws nothing)."""
        with self._lock:
            rate = self._settings.rate
            if rate > 0 and self._random.random() < rate:
                self.injected += 1
                return True
            return False

    def view(self) -> Record:
        with self._lock:
            return {**self._settings.model_dump(), "injected": self.injected}


def _generator(seed: int | None) -> random.Random:
    """Brownout draws are not security-relevant; a seed makes a run repeatable."""
    return random.Random(seed)  # noqa: S311


def _brownout(message: str) -> DineroError:
    return DineroError(480, None, message)


# Answering


@dataclass
class Sandbox:
    """One running sandbox: its settings, store, faults and brownouts."""

    settings: DineroSandboxSettings
    store: DineroStore
    faults: Faults
    brownouts: Brownouts


def _answer(sandbox: Sandbox, version: str, request: Request, body: bytes) -> Response:
    """Brownouts first, then the token, the organization and the route; the handler runs whole
    under the store's lock."""
    method = request.method
    parts = [part for part in str(request.path_params.get("path", "")).split("/") if part]
    try:
        content, status = _dispatch(sandbox, version, method, parts, request, body)
    except DineroError as error:
        return _error_response(error)
    except Exception:
        logger.exception("the Dinero sandbox failed on %s %s", method, request.url.path)
        return _error_response(DineroError(500, None, "The sandbox failed; see its log."))
    if content is None:
        return Response(b"", status)
    return Response(content, status, media_type="application/json")


def _dispatch(
    sandbox: Sandbox, version: str, method: str, parts: list[str], request: Request, body: bytes
) -> tuple[bytes | None, int]:
    """The answer's body and status: brownouts, the token, the organization, the route, the
    scope, and then the handler."""
    _brown_out(sandbox.brownouts, method, version, parts[1:])
    store = sandbox.store
    with store.lock:
        grant = _authenticate(store, request.headers.get("authorization"), store.clock())
    query = Query.of(request.query_params)
    if version == "v1" and [part.lower() for part in parts] == ["organizations"]:
        if method != "GET":
            raise DineroError(405, None, f"{method} is not allowed on /v1/organizations.")
        with store.lock:
            return dumps(_project([store.data.organization], query.get("fields"))), 200
    _check_organization(sandbox.settings, version, parts)
    endpoint = _route(method, version, parts[1:])
    if endpoint.is_write and "write" not in grant.scopes:
        raise DineroError(403, ErrorCode.UNAUTHORIZED, "The token's scope does not include write.")
    with store.lock:
        call = Call(store.data, endpoint.ids(parts[1:]), body, query, store.clock(), store.stamp)
        answer = endpoint.handler(call)
        content = None if answer.body is None else dumps(answer.body)
    return content, answer.status


def _brown_out(brownouts: Brownouts, method: str, version: str, rest: Sequence[str]) -> None:
    """480 at the brownout rate, and always for an endpoint Dinero is retiring."""
    if brownouts.draw():
        raise _brownout("Brownout: this endpoint is being retired and fails now and then.")
    instead = _retired(method, version, rest)
    if instead is not None:
        path = "/".join(rest)
        raise _brownout(f"Brownout: {method} /{version}/.../{path} is retired; use {instead}.")


def _check_organization(
    settings: DineroSandboxSettings, version: str, parts: Sequence[str]
) -> None:
    """The path's organization must be the token's (403, code 41) and have Pro (403, code
    90); a path without a number there is no resource at all (404)."""
    if not parts or not parts[0].isdigit():
        raise DineroError(
            404, ErrorCode.NOT_FOUND, f"There is no resource at /{version}/{'/'.join(parts)}."
        )
    if int(parts[0]) != settings.organization_id:
        raise DineroError(
            403,
            ErrorCode.UNAUTHORIZED,
            f"The token gives no access to organization {parts[0]}: "
            f"it is for {settings.organization_id}.",
        )
    if not settings.is_pro:
        raise DineroError(
            403, ErrorCode.NOT_PRO, "The organization needs Dinero Pro to use the API."
        )


# The sandbox's own routes


def summary(data: DineroData, today: date) -> Record:
    """How many records of each kind there are, documents by status, and every account's
    balance (debit positive, in major units) from the entries booked."""
    invoices = dict.fromkeys(INVOICE_STATUSES, 0)
    credit_notes = dict.fromkeys(DOCUMENT_STATUSES, 0)
    taken = _taken_off(data)
    for document in data.documents.values():
        if document.deleted is not None:
            continue
        if document.kind == "invoice":
            invoices[_payment_status(data, document, today, taken)] += 1
        else:
            credit_notes[document.status] += 1
    vouchers = dict.fromkeys(DOCUMENT_STATUSES, 0)
    for voucher in [*data.vouchers.values(), *data.ledger_items.values()]:
        if voucher.deleted is None:
            vouchers[voucher.status] += 1
    balances: Counter[int] = Counter()
    for entry in data.entries:
        balances[entry.account] += entry.amount
    live = [contact for contact in data.contacts.values() if contact["DeletedAt"] is None]
    counts = {
        "accounts": len(data.accounts),
        "vatTypes": len(data.vat_types),
        "contacts": len(live),
        "deletedContacts": len(data.contacts) - len(live),
        "products": sum(1 for product in data.products.values() if product.deleted is None),
        "invoices": sum(invoices.values()),
        "creditNotes": sum(credit_notes.values()),
        "payments": len(data.payments),
        "manualVouchers": sum(1 for v in data.vouchers.values() if v.deleted is None),
        "ledgerItems": len(data.ledger_items),
        "entries": len(data.entries),
        "sent": len(data.sent),
    }
    return {
        "organization": data.organization,
        "counts": counts,
        "invoices": invoices,
        "creditNotes": credit_notes,
        "vouchers": vouchers,
        "balances": {
            str(account): Money(amount) for account, amount in sorted(balances.items()) if amount
        },
    }


def _json(body: Any, status: int = 200) -> Response:
    return Response(dumps(body), status, media_type="application/json")


def _sandbox_routes(sandbox: Sandbox) -> APIRouter:
    """`GET /_sandbox/summary`, `POST /_sandbox/reset`, `GET /_sandbox/sent`,
    `GET`/`PUT /_sandbox/brownout` and `GET`/`PUT /_sandbox/rates` (no token; never
    faulted)."""
    router = APIRouter(prefix="/_sandbox")
    store = sandbox.store

    def summarized() -> Response:
        with store.lock:
            body = summary(store.data, store.clock().date())
            now = store.clock()
            body["tokens"] = {
                "issued": store.tokens_issued,
                "active": sum(1 for grant in store.tokens.values() if grant.expires > now),
            }
            return _json(body)

    @router.get("/summary", include_in_schema=False)
    async def read_summary() -> Response:
        return summarized()

    @router.post("/reset", include_in_schema=False)
    async def reset() -> Response:
        store.reset()
        sandbox.faults.reset()
        sandbox.brownouts.reset()
        return summarized()

    @router.get("/sent", include_in_schema=False)
    async def read_sent() -> Response:
        with store.lock:
            return _json(list(store.data.sent))

    @router.get("/rates", include_in_schema=False)
    async def read_rates() -> Response:
        with store.lock:
            return _json(rates_view(store.data.rates))

    @router.put("/rates", include_in_schema=False)
    async def change_rates(request: Request) -> Response:
        try:
            changes = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            changes = None
        if not isinstance(changes, dict):
            return _settings_refused("the body must be a JSON object of rates by currency", {})
        problems = _rate_problems(changes)
        if problems:
            return _settings_refused("invalid rates", problems)
        with store.lock:
            for code, rate in changes.items():
                if rate is None:
                    store.data.rates.pop(code, None)
                else:
                    store.data.rates[code] = known(exact_number(rate))
            return _json(rates_view(store.data.rates))

    @router.get("/brownout", include_in_schema=False)
    async def read_brownout() -> Response:
        return _json(sandbox.brownouts.view())

    @router.put("/brownout", include_in_schema=False)
    async def change_brownout(request: Request) -> Response:
        try:
            changes = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            changes = None
        if not isinstance(changes, dict):
            return _settings_refused("the body must be a JSON object of brownout settings", {})
        try:
            sandbox.brownouts.update(changes)
        except ValidationError as error:
            problems = {
                ".".join(str(part) for part in problem["loc"]) or "body": problem["msg"]
                for problem in error.errors()
            }
            return _settings_refused("invalid brownout settings", problems)
        return _json(sandbox.brownouts.view())

    return router


def rates_view(rates: Mapping[str, Fraction]) -> Record:
    """The day's rates by currency, DKK per unit, as exact decimals (`{"EUR": 7.4604}`)."""
    return {code: _decimal(rate) for code, rate in sorted(rates.items())}


def _decimal(rate: Fraction) -> Decimal:
    """A rate that came from a decimal, as that decimal (a terminating fraction)."""
    return Decimal(rate.numerator) / Decimal(rate.denominator)


def _rate_problems(changes: Mapping[str, Any]) -> dict[str, str]:
    """What is wrong with a `PUT /_sandbox/rates` body: each key an active ISO 4217 code
    other than DKK, each value a number above 0 (at most `LARGEST_RATE`), or null to take the
    currency's rate away."""
    problems: dict[str, str] = {}
    for code, rate in changes.items():
        if code not in CURRENCY_EXPONENTS or code == BASE_CURRENCY:
            problems[code] = "must be an active ISO 4217 code other than DKK"
        elif rate is not None:
            number = exact_number(rate)
            if number is None or not 0 < number <= LARGEST_RATE:
                problems[code] = f"must be a number above 0 and at most {LARGEST_RATE}, or null"
    return problems


def _settings_refused(message: str, problems: Mapping[str, str]) -> Response:
    """The refusal of `/_sandbox/faults`, in the same shape, for `/_sandbox/brownout`."""
    body = {"errorCode": "VALIDATION_ERROR", "errorMessage": message, "validationErrors": problems}
    return _json(body, 422)


async def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's own refusals (outside the API's prefixes), in Dinero's error body."""
    status = error.status_code if isinstance(error, StarletteHTTPException) else 500
    code = ErrorCode.NOT_FOUND if status == 404 else None
    message = f"{request.method} {request.url.path}: {'not found' if status == 404 else 'refused'}."
    return _error_response(DineroError(status, code, message))


def create_dinero_app(settings: DineroSandboxSettings) -> FastAPI:
    """The Dinero sandbox as an ASGI app, seeded, with its faults around the API's prefixes.

    `app.state.store` is its `DineroStore` (whose `clock` a test may replace to expire tokens
    or make invoices overdue), `app.state.faults` its `Faults` (whose `clock` moves the rate
    limit's window) and `app.state.brownouts` its `Brownouts`."""
    store = DineroStore(settings)
    faults = Faults(settings.faults)
    sandbox = Sandbox(settings, store, faults, Brownouts(settings.brownout))
    app = FastAPI(title="Dinero sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.state.faults = faults
    app.state.brownouts = sandbox.brownouts

    async def token(request: Request) -> Response:
        return grant_token(store, request.headers.get("authorization"), await request.body())

    def api(version: str) -> Callable[[Request], Any]:
        async def serve(request: Request) -> Response:
            return _answer(sandbox, version, request, await request.body())

        return serve

    app.router.routes.append(Route(OAUTH_PATH, token, methods=["POST"]))
    for version in VERSIONS:
        app.router.routes.append(
            Route(f"/{version}/{{path:path}}", api(version), methods=API_METHODS)
        )
    app.include_router(_sandbox_routes(sandbox))
    app.include_router(fault_routes(faults))
    app.add_exception_handler(StarletteHTTPException, _http_error)
    prefixes = tuple(f"/{version}" for version in VERSIONS)
    app.add_middleware(
        FaultInjector, faults=faults, error_body=dinero_error_body, prefixes=prefixes
    )
    return app
