"""What one Dinero organization holds, and the store that keeps it behind one lock.

The seeded chart and VAT types, the records (documents, payments, vouchers, the entries they
book) and the day's exchange rates; amounts are minor units, converted to DKK by `to_base`
and `in_base`. Times are written as Dinero writes them and Guids kept in canonical form.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from fractions import Fraction
from itertools import count
from typing import Final, Literal

from subledger.adapters.sandbox.accounting import seeded_rates
from subledger.adapters.sandbox.dinero.settings import DineroSandboxSettings
from subledger.adapters.sandbox.fields import Money, Record, exponent_of
from subledger.domain.money import rhu

GUID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
EMPTY_GUID: Final = "00000000-0000-0000-0000-000000000000"

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


def instant(moment: datetime) -> str:
    """Dinero's timestamp format (`2006-01-02T15:04:05.999`), in UTC."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def parse_instant(text: str) -> datetime:
    """`YYYY-MM-DDTHH:mm:ssZ` (UTC) as Dinero documents it; an offset or none (UTC) also do."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError("must be a UTC time as YYYY-MM-DDTHH:mm:ssZ") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def canonical_guid(text: str) -> str | None:
    """A Guid in its canonical form (lower case), or None when the text is not one."""
    return text.lower() if GUID.fullmatch(text) else None


def new_guid() -> str:
    return str(uuid.uuid4())


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
            "CreatedAt": instant(self.created),
            "UpdatedAt": instant(self.updated),
            "DeletedAt": instant(self.deleted) if self.deleted else None,
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


def vat_account_of(data: DineroData, code: str | None) -> int | None:
    vat_type = data.vat_type(code)
    return None if vat_type is None else vat_type["_account"]
