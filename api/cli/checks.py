"""Checks of the stored journal against itself, the revenue projection and the log
(docs/specification.md §3.3).

What an auditor would ask before trusting the books: every entry balances; the trial balance
balances on every day; `deferred_revenue` at each month end is the revenue projection's
`deferred_end` (except across an entry that closed periods moved from before that month end to
after it); and each customer's receivable is what the log says they were invoiced, less what
was credited and paid, plus what was refunded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from subledger.domain.chart import Chart
from subledger.domain.dates import Month
from subledger.domain.invoice import Invoice
from subledger.domain.ledger import Ledger
from subledger.domain.values import line_ids
from subledger.projections import journal, revenue
from subledger.projections.engine import RowSource


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str


_MONEY = (
    Invoice.Issued,
    Invoice.CreditNoteIssued,
    Invoice.PaymentReceived,
    Invoice.PaymentRefunded,
)


def check_journal(
    ledger: Ledger,
    position: int,
    books: RowSource,
    recognized: RowSource,
    chart: Chart,
    progress: Callable[[int], None] | None = None,
) -> list[Finding]:
    """The findings of every check, the journal's rows (`books`) and the revenue projection's
    (`recognized`) both as of `position`."""
    scan = _EntryScan(books, progress)
    return [
        scan.balance_finding(),
        _daily_trial_balances(books),
        _deferred_revenue(books, recognized, chart, scan.straddled),
        _receivables(ledger, position, scan.receivable),
    ]


class _EntryScan:
    """One pass over every entry: whether each balances, each customer's receivable, and the
    month ends that an entry moved past a closed period straddles."""

    def __init__(self, books: RowSource, progress: Callable[[int], None] | None) -> None:
        self.count = 0
        self.unbalanced: list[str] = []
        self.receivable: dict[str, int] = {}
        self.straddled: set[str] = set()
        for key, row in self._entries(books):
            self._read(key[0], row)
            self.count += 1
            if progress is not None and self.count % 10_000 == 0:
                progress(self.count)

    @staticmethod
    def _entries(books: RowSource) -> Iterator[tuple[Any, Any]]:
        after = None
        while True:
            page, after = journal.entries_page(books, "0000-01-01", "9999-12-31", after, 5000)
            yield from page
            if after is None:
                return

    def _read(self, booked: str, row: dict[str, Any]) -> None:
        debits = sum(line[2] for line in row["lines"])
        if debits != sum(line[3] for line in row["lines"]) or debits == 0:
            self.unbalanced.append(journal.entry_id_of(row))
        for role, _, debit, credit in row["lines"]:
            if role == "receivable":
                owner = row["customer_id"]
                self.receivable[owner] = self.receivable.get(owner, 0) + debit - credit
            if role == "deferred_revenue" and row["original_date"] != booked:
                self.straddled |= _month_ends_between(row["original_date"], booked)

    def balance_finding(self) -> Finding:
        if self.unbalanced:
            shown = ", ".join(self.unbalanced[:5])
            return Finding("entries balance", False, f"{len(self.unbalanced)} do not: {shown}")
        return Finding("entries balance", True, f"all {self.count:,} entries")


def _month_ends_between(original: str, booked: str) -> set[str]:
    """The months whose last day is on or after `original` and before `booked`."""
    months = set()
    month = Month.of(date.fromisoformat(original))
    while month.last_day.isoformat() < booked:
        months.add(str(month))
        month = month.next()
    return months


def _daily_trial_balances(books: RowSource) -> Finding:
    net: dict[tuple[str, str], int] = {}
    for (currency, booked, _, _), row in books.scan(journal.TOTALS):
        net[currency, booked] = net.get((currency, booked), 0) + row["debit"] - row["credit"]
    off = sorted(day for day, amount in net.items() if amount)
    if off:
        currency, booked = off[0]
        return Finding("trial balance balances every day", False, f"not on {booked} ({currency})")
    return Finding("trial balance balances every day", True, f"{len(net):,} days with postings")


def _deferred_revenue(
    books: RowSource, recognized: RowSource, chart: Chart, straddled: set[str]
) -> Finding:
    checked = 0
    for currency in revenue.currencies(recognized):
        months = sorted({key[1] for key, _ in recognized.scan(revenue.MONTHS, (currency,))})
        if not months:
            continue
        span = _months(months[0], months[-1])
        for month in revenue.summary(recognized, currency, span):
            if month["month"] in straddled:
                continue
            last_day = Month.parse(month["month"]).last_day.isoformat()
            accounts = journal.trial_balance(books, chart, currency, last_day)["accounts"]
            deferred = sum(a["balance"] for a in accounts if a["role"] == "deferred_revenue")
            if deferred != month["deferred_end"]:
                return Finding(
                    "deferred revenue is deferred_end",
                    False,
                    f"{currency} {month['month']}: the journal has {deferred},"
                    f" recognition {month['deferred_end']}",
                )
            checked += 1
    skipped = f" ({len(straddled)} straddled by moved entries skipped)" if straddled else ""
    return Finding("deferred revenue is deferred_end", True, f"{checked} month ends{skipped}")


def _months(first: str, last: str) -> list[str]:
    months, month, end = [], Month.parse(first), Month.parse(last)
    while month <= end:
        months.append(str(month))
        month = month.next()
    return months


def _receivables(ledger: Ledger, position: int, booked: dict[str, int]) -> Finding:
    owed: dict[str, int] = {}
    rates: dict[tuple[str, str], Decimal] = {}
    for entry in ledger.iter_entries(position, _MONEY):
        event: Any = entry.event
        if isinstance(event, Invoice.Issued):
            amount = 0
            for line_id, line in zip(line_ids(event.lines), event.lines, strict=True):
                rates[event.invoice_id, line_id] = line.vat_rate
                amount += line.net + line.vat
        elif isinstance(event, Invoice.CreditNoteIssued):
            amount = -sum(
                c.amount + c.vat_at(rates[event.invoice_id, c.line_id]) for c in event.credited
            )
        elif isinstance(event, Invoice.PaymentReceived):
            amount = -event.amount
        else:
            amount = event.amount
        owed[event.customer_id] = owed.get(event.customer_id, 0) + amount
    wrong = sorted(
        customer
        for customer in owed.keys() | booked.keys()
        if owed.get(customer, 0) != booked.get(customer, 0)
    )
    if wrong:
        customer = wrong[0]
        return Finding(
            "receivables match the facts",
            False,
            f"{len(wrong)} customers differ, e.g. {customer}: the journal has"
            f" {booked.get(customer, 0)}, the facts {owed.get(customer, 0)}",
        )
    return Finding("receivables match the facts", True, f"{len(owed):,} customers")
