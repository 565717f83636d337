"""What one Billy sandbox holds: the seeded organization, its tables and the lock around them.

Every request reads and writes `BillyData` whole while `BillyStore.lock` is held; a write
notes what it changed in `Changes`, which the answer lists in full.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

import orjson

from subledger.adapters.sandbox.accounting import BASE_CURRENCY, seeded_rates
from subledger.adapters.sandbox.fields import Record, dumps

#: `secrets.token_urlsafe(16)` is 22 characters, the length of Billy's ids.
ID_BYTES: Final = 16

INVOICE_TYPES: Final = ("invoice", "creditNote")
INVOICE_STATES: Final = ("draft", "approved")

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


def wire(body: Any) -> Any:
    """A stored record as a client would read it (money as floats)."""
    return orjson.loads(dumps(body))


def now_text() -> str:
    """Billy's datetime format (`2025-11-12T04:37:46`), in UTC."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def new_id() -> str:
    return secrets.token_urlsafe(ID_BYTES)


@dataclass
class BillyData:
    """Everything one sandbox holds. Only touched while `BillyStore.lock` is held."""

    organization: Record
    tables: dict[str, dict[str, Record]]
    daybook_id: str
    #: "Today's" rates: DKK per one unit of each foreign currency the sandbox knows a rate of,
    #: as an invoice's `exchangeRate` is.
    rates: dict[str, Fraction] = field(default_factory=seeded_rates)
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
        insert(tables["accounts"], _account(account_id, number, name, bank, currency))
    for abbreviation, name, rate in TAX_RATES:
        insert(
            tables["taxRates"], _tax_rate(ids[f"taxRate:{abbreviation}"], abbreviation, name, rate)
        )
    for abbreviation, name, rate_abbreviation in RULESETS:
        ruleset = {
            "id": ids[f"ruleset:{abbreviation}"],
            "name": name,
            "abbreviation": abbreviation,
            "taxRateId": ids[f"taxRate:{rate_abbreviation}"],
        }
        insert(tables["salesTaxRulesets"], ruleset)
    insert(tables["daybooks"], {"id": ids["daybook"], "name": DAYBOOK_NAME})
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
        "isPredefined": True,
        "isActive": True,
    }


def insert(table: dict[str, Record], record: Record) -> Record:
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
