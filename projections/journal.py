"""The journal as a projection (docs/specification.md §3.3, §3.4): balanced double-entry postings
for every fact that
moves money, dated as booked; and the answers read from them.

Each entry is produced once, when its fact is folded, and never changes: an invoice produces its
own entry and one recognition entry per month of its ratable lines' schedules (future months
included: they are *scheduled* until their date); a credit note produces its own entry and one
adjustment per month whose scheduled amount it reduced; a payment and a refund one entry each.
An entry dated in a month that was closed when it was produced (in log order) is booked on the
first day of the first open month after it and keeps its `original_date`.

Lines name a *role* and a *detail* (the product of a revenue line, the method of a bank line),
not an account: `domain.chart` maps them to account numbers when the journal is read, so the
chart can change without touching an entry.

Rows:
- `journal_entries` (keyed by booked date, position of the source event, sequence): the entries.
- `journal_invoices` (keyed by invoice): its currency, and each line as
  `[line id, product, VAT rate, ratable, scheduled amounts by month]`, which a credit note reads
  and rescales.
- `journal_totals` (kept): per currency, booked date, role and detail, the debits and credits,
  which balances as of any day sum.
- `journal_periods` (kept): the months closed to postings.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any, Final
from uuid import UUID

import orjson

from subledger.domain.chart import DEBIT_ROLES, Chart
from subledger.domain.dates import Month
from subledger.domain.invoice import Invoice
from subledger.domain.ledger import Entry
from subledger.domain.money import vat_of
from subledger.domain.period import Period
from subledger.domain.values import line_ids
from subledger.projections.engine import Column, Projection, Row, RowKey, Rows, RowSource, Table
from subledger.projections.recognition import Policy, apply_credit, month_of, policy_of, schedule

ENTRIES = Table(
    "journal_entries",
    key=(Column("date", "text"), Column("position", "int"), Column("seq", "int")),
    values=(
        Column("original_date", "text"),
        Column("kind", "text"),
        Column("currency", "text"),
        Column("customer_id", "text"),
        Column("source_event_id", "text"),
        Column("lines", "json"),
    ),
    written_once=True,
)
INVOICES = Table(
    "journal_invoices",
    key=(Column("invoice", "text"),),
    values=(Column("currency", "text"), Column("lines", "json")),
)
TOTALS = Table(
    "journal_totals",
    key=(
        Column("currency", "text"),
        Column("date", "text"),
        Column("role", "text"),
        Column("detail", "text"),
    ),
    values=(Column("debit", "int"), Column("credit", "int")),
    kept=True,
)
PERIODS = Table(
    "journal_periods",
    key=(Column("month", "text"),),
    values=(Column("closed", "int"),),
    kept=True,
    shared=True,
)

#: Entry ids are uuid5 of this namespace and `kind/source event id/month`: the same on every
#: rebuild and in every database, and unique, since the log's event ids are.
ENTRY_NAMESPACE: Final = UUID("6f1d2b0e-5c3a-4f7e-9a51-3d2c8e4b7a90")

Line = list[Any]
"""`[role, detail, debit, credit]`."""


def entry_id(kind: str, source_event_id: str, month: str = "") -> str:
    """`uuid5(ENTRY_NAMESPACE, "kind/source_event_id/month")`, written out directly: a rebuild
    makes one for every entry, and this is several times quicker than `uuid.uuid5`."""
    name = f"{kind}/{source_event_id}/{month}".encode()
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_NAMESPACE_BYTES: Final = ENTRY_NAMESPACE.bytes

#: The kinds of entry made once a month of a schedule: their ids name the month, which is that
#: of the month end they are dated on (`original_date`).
_MONTHLY_KINDS: Final = frozenset({"recognition", "credit_adjustment"})


def entry_id_of(row: Row) -> str:
    """The id of the entry stored as `row`: worked out from its kind, source event and month
    when it is read, rather than made and stored for each of the rebuild's entries (an eighth
    of the journal's fold)."""
    kind = row["kind"]
    month = row["original_date"][:7] if kind in _MONTHLY_KINDS else ""
    return entry_id(kind, row["source_event_id"], month)


class _Posting:
    """The lines of one entry being made: an amount per role and detail, debit positive."""

    def __init__(self) -> None:
        self._amounts: dict[tuple[str, str], int] = {}

    def debit(self, role: str, amount: int, detail: str = "") -> None:
        self._amounts[role, detail] = self._amounts.get((role, detail), 0) + amount

    def credit(self, role: str, amount: int, detail: str = "") -> None:
        self.debit(role, -amount, detail)

    def lines(self) -> list[Line]:
        """Debits, then credits, each in the order first posted; lines that net to 0 left out."""
        amounts = self._amounts.items()
        lines: list[Line] = [[role, detail, net, 0] for (role, detail), net in amounts if net > 0]
        lines += [[role, detail, 0, -net] for (role, detail), net in amounts if net < 0]
        assert sum(self._amounts.values()) == 0, "an entry balances"
        return lines


class JournalProjection(Projection):
    name = "journal"
    #: 2: a credit note's VAT is the one its event records (docs/specification.md §2's remainders).
    #: 3: `journal_invoices` keeps each line as a list.
    #: 4: an entry's id is worked out when it is read (`entry_id_of`), not stored.
    version = 4
    tables = (ENTRIES, INVOICES, TOTALS, PERIODS)
    event_types = (
        Invoice.Issued,
        Invoice.CreditNoteIssued,
        Invoice.PaymentReceived,
        Invoice.PaymentRefunded,
        Period.FirstClosed,
        Period.Closed,
        Period.Reopened,
    )
    referencing_types = (Invoice.CreditNoteIssued,)
    referenced_tables = (INVOICES,)
    fold_cost = 215  # µs per event of the log, rebuilt alone (2026-12-07)

    def __init__(self, default_policy: Policy = "daily") -> None:
        self.default_policy = default_policy

    def fingerprint(self) -> str:
        return f"{super().fingerprint()}:{self.default_policy}"

    def keys(self, event: Any) -> Iterable[tuple[Table, RowKey]]:
        if isinstance(event, Invoice.CreditNoteIssued):
            yield INVOICES, (str(event.originator_id),)

    def fold(self, rows: Rows, entry: Entry) -> None:
        event: Any = entry.event
        if isinstance(event, Period.FirstClosed | Period.Closed | Period.Reopened):
            closed = int(not isinstance(event, Period.Reopened))
            rows.put(PERIODS, (str(event.period),), {"closed": closed})
        elif isinstance(event, Invoice.Issued):
            self._issued(rows, entry, event)
        elif isinstance(event, Invoice.CreditNoteIssued):
            _credited(rows, entry, event)
        elif isinstance(event, Invoice.PaymentReceived):
            posting = _Posting()
            posting.debit("bank", event.amount, event.method)
            posting.credit("receivable", event.amount)
            _Book(rows, entry, event.currency, event.customer_id).post(
                "payment", event.received_on.isoformat(), posting.lines()
            )
        else:
            posting = _Posting()
            posting.debit("receivable", event.amount)
            posting.credit("bank", event.amount, event.method)
            _Book(rows, entry, event.currency, event.customer_id).post(
                "refund", event.refunded_on.isoformat(), posting.lines()
            )

    def _issued(self, rows: Rows, entry: Entry, event: Invoice.Issued) -> None:
        posting = _Posting()
        recognition: dict[str, dict[str, int]] = {}
        lines: list[StoredLine] = []
        issue_date = event.issue_date
        for line_id, line in zip(line_ids(event.lines), event.lines, strict=True):
            policy = policy_of(line, self.default_policy)
            product_id = line.product_id
            net = line.net
            vat = vat_of(net, line.vat_rate)
            posting.debit("receivable", net + vat)
            posting.credit("output_vat", vat)
            scheduled: dict[str, int] = {}
            if policy == "point_in_time":
                posting.credit("revenue", net, product_id)
            else:
                posting.credit("deferred_revenue", net)
                scheduled = schedule(line, issue_date, policy, net)
                for month, amount in scheduled.items():
                    by_product = recognition.get(month)
                    if by_product is None:
                        recognition[month] = {product_id: amount}
                    else:
                        by_product[product_id] = by_product.get(product_id, 0) + amount
            lines.append(
                [line_id, product_id, str(line.vat_rate), policy != "point_in_time", scheduled]
            )
        book = _Book(rows, entry, event.currency, event.customer_id)
        book.post("invoice", issue_date.isoformat(), posting.lines())
        for month in sorted(recognition):
            book.post(
                "recognition", _last_day(month), _recognition_lines(recognition[month]), month
            )
        rows.put(
            INVOICES, (str(event.originator_id),), {"currency": event.currency, "lines": lines}
        )


StoredLine = list[Any]
"""A line as `journal_invoices` keeps it: `[line id, product, VAT rate, ratable, scheduled]`."""


def _recognition_lines(by_product: Mapping[str, int]) -> list[Line]:
    """The lines of a month's recognition: deferred revenue debited by the month's total,
    each product's revenue credited; as `_Posting` orders them (debits, then credits, each in
    the order posted: deferred revenue first), a line that nets to 0 left out."""
    total = sum(by_product.values())
    debits: list[Line] = [["deferred_revenue", "", total, 0]] if total > 0 else []
    credits: list[Line] = [["deferred_revenue", "", 0, -total]] if total < 0 else []
    for product_id, amount in by_product.items():
        if amount > 0:
            credits.append(["revenue", product_id, 0, amount])
        elif amount < 0:
            debits.append(["revenue", product_id, -amount, 0])
    return debits + credits


@cache
def _last_day(month: str) -> str:
    """The ISO last day of a `YYYY-MM` month."""
    return Month.parse(month).last_day.isoformat()


def _credited(rows: Rows, entry: Entry, event: Invoice.CreditNoteIssued) -> None:
    invoice = rows.get(INVOICES, (str(event.originator_id),))
    assert invoice is not None, "a credit note follows its invoice in the log"
    lines: dict[str, StoredLine] = {line[0]: line for line in invoice["lines"]}
    credited_in = month_of(event.issue_date)
    posting = _Posting()
    reductions: dict[str, dict[str, int]] = {}
    for credit in event.credited:
        line, amount = lines[credit.line_id], credit.amount
        _, product_id, vat_rate, ratable, before = line
        # As the invoice worked it out and the event records it: the credit that completes a
        # line carries what is left of its VAT (docs/specification.md §2), so nothing of it stays
        # on the books.
        vat = credit.vat_at(Decimal(vat_rate))
        posting.debit("output_vat", vat)
        posting.credit("receivable", amount + vat)
        if not ratable:
            posting.debit("revenue", amount, product_id)
            continue
        scheduled, reversal = apply_credit(before, amount, credited_in)
        posting.debit("deferred_revenue", amount - reversal)
        posting.debit("revenue", reversal, product_id)
        for month, was in before.items():
            if scheduled[month] != was:
                by_product = reductions.setdefault(month, {})
                by_product[product_id] = by_product.get(product_id, 0) + was - scheduled[month]
        line[4] = scheduled
    book = _Book(rows, entry, invoice["currency"], event.customer_id)
    book.post("credit_note", event.issue_date.isoformat(), posting.lines())
    for month in sorted(reductions):
        posting = _Posting()
        for product_id, reduction in reductions[month].items():
            posting.debit("revenue", reduction, product_id)
            posting.credit("deferred_revenue", reduction)
        book.post("credit_adjustment", _last_day(month), posting.lines(), month)
    rows.put(INVOICES, (str(event.originator_id),), invoice)


class _Book:
    """Posts the entries of one event: each dated (or moved past closed months), keyed after
    the ones before it, and added to the totals."""

    def __init__(self, rows: Rows, entry: Entry, currency: str, customer_id: str) -> None:
        self.rows, self.position = rows, entry.position
        self.source: str = entry.event.event_id  # type: ignore[attr-defined]
        self.currency, self.customer_id = currency, customer_id
        self.seq = 0

    def post(self, kind: str, dated: str, lines: list[Line], month: str = "") -> None:
        """Post `lines` (as `_Posting.lines` gives them) dated on the ISO day `dated`."""
        if not lines:
            return
        rows = self.rows
        booked = _booked_on(rows, dated)
        source = self.source
        rows.put(
            ENTRIES,
            (booked, self.position, self.seq),
            {
                "original_date": dated,
                "kind": kind,
                "currency": self.currency,
                "customer_id": self.customer_id,
                "source_event_id": source,
                "lines": lines,
            },
        )
        self.seq += 1
        currency = self.currency
        for role, detail, debit, credit in lines:
            if debit:
                rows.add(TOTALS, (currency, booked, role, detail), "debit", debit)
            else:
                rows.add(TOTALS, (currency, booked, role, detail), "credit", credit)


def _booked_on(rows: Rows, day: str) -> str:
    """The ISO day `day`, or if its month is closed, the first day of the first open month
    after it."""
    if not _closed(rows, day[:7]):
        return day
    month = Month.parse(day[:7]).next()
    while _closed(rows, str(month)):
        month = month.next()
    return month.first_day.isoformat()


def _closed(rows: Rows, month: str) -> bool:
    row = rows.get(PERIODS, (month,))
    return row is not None and bool(row["closed"])


# Answers, read from stored rows or rows folded in memory alike.


def currencies(rows: RowSource) -> list[str]:
    return sorted({key[0] for key, _ in rows.scan(TOTALS)})


def closed_months(rows: RowSource) -> list[str]:
    return [key[0] for key, row in rows.scan(PERIODS) if row["closed"]]


def render(chart: Chart, key: RowKey, row: Row, today: date) -> dict[str, Any]:
    """An entry as docs/specification.md §4 shows it, each line with its account; `status` is
    `scheduled` for an
    entry dated after `today`, else `posted`."""
    booked = key[0]
    lines = []
    for role, detail, debit, credit in row["lines"]:
        line = {
            "account": chart.account(role, detail),
            "role": role,
            "debit": debit,
            "credit": credit,
            "currency": row["currency"],
        }
        if role == "revenue":
            line["product_id"] = detail
        elif role == "bank":
            line["method"] = detail
        lines.append(line)
    return {
        "entry_id": entry_id_of(row),
        "date": booked,
        "original_date": row["original_date"],
        "status": "scheduled" if booked > today.isoformat() else "posted",
        "kind": row["kind"],
        "currency": row["currency"],
        "customer_id": row["customer_id"],
        "source_event_ids": [row["source_event_id"]],
        "lines": lines,
    }


def entries_page(
    rows: RowSource, first: str, last: str, after: RowKey | None, limit: int
) -> tuple[list[tuple[RowKey, Row]], RowKey | None]:
    """Up to `limit` entries booked from `first` to `last` (ISO dates), after the key `after`,
    and the key to go on after (`None` on the last page)."""
    page = rows.scan(ENTRIES, (), (first, last), after, limit)
    return page, (page[-1][0] if len(page) == limit else None)


def trial_balance(
    rows: RowSource, chart: Chart, currency: str | None, as_of: str
) -> dict[str, Any]:
    """Every account's balance on `as_of` (entries booked up to and including that day): in
    the debit or the credit column, and as `balance`, positive on the account's usual side
    (debit for receivable and bank, credit for the others)."""
    sums: dict[str, int] = {}
    roles: dict[str, str] = {}
    scanned = rows.scan(TOTALS, (currency,), ("", as_of)) if currency else []
    for (_, _, role, detail), row in scanned:
        account = chart.account(role, detail)
        sums[account] = sums.get(account, 0) + row["debit"] - row["credit"]
        roles[account] = role
    accounts = []
    for account in sorted(sums):
        net, role = sums[account], roles[account]
        accounts.append(
            {
                "account": account,
                "role": role,
                "debit": max(net, 0),
                "credit": max(-net, 0),
                "balance": net if role in DEBIT_ROLES else -net,
            }
        )
    return {
        "currency": currency,
        "as_of": as_of,
        "accounts": accounts,
        "total_debit": sum(a["debit"] for a in accounts),
        "total_credit": sum(a["credit"] for a in accounts),
    }


def account_balance(rows: RowSource, chart: Chart, account: str, currency: str, before: str) -> int:
    """The account's balance (on its usual side) from entries booked before the day `before`."""
    net = 0
    role = chart.accounts()[account]
    for (_, booked, line_role, detail), row in rows.scan(TOTALS, (currency,)):
        if booked < before and chart.account(line_role, detail) == account:
            net += row["debit"] - row["credit"]
    return net if role in DEBIT_ROLES else -net


def account_lines(
    chart: Chart, account: str, currency: str, page: list[tuple[RowKey, Row]], balance: int
) -> tuple[list[dict[str, Any]], int]:
    """The lines of `page`'s entries on `account` in `currency`, each with the running balance
    from `balance`; and the balance after them."""
    debit_side = chart.accounts()[account] in DEBIT_ROLES
    lines = []
    for key, row in page:
        if row["currency"] != currency:
            continue
        for role, detail, debit, credit in row["lines"]:
            if chart.account(role, detail) != account:
                continue
            balance += (debit - credit) if debit_side else (credit - debit)
            lines.append(
                {
                    "date": key[0],
                    "original_date": row["original_date"],
                    "entry_id": entry_id_of(row),
                    "kind": row["kind"],
                    "customer_id": row["customer_id"],
                    "debit": debit,
                    "credit": credit,
                    "balance": balance,
                }
            )
    return lines, balance


def encode_cursor(parts: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(parts)).decode().rstrip("=")


def decode_cursor(text: str, shape: tuple[type, ...]) -> list[Any] | None:
    """The parts of a cursor made by `encode_cursor`, if they have the types of `shape`."""
    try:
        parts = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(parts, list) or len(parts) != len(shape):
        return None
    if not all(type(part) is kind for part, kind in zip(parts, shape, strict=True)):
        return None
    return parts
