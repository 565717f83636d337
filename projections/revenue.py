"""Revenue recognition as a projection (docs/specification.md §3.1): schedules per invoice line,
monthly totals per
currency, and the waterfall; and the answers read from them.

Rows:
- `revenue_invoices` (keyed by invoice): each line as `[line id, net, policy, scheduled amounts
  by month, reversals by month, credited total]`. A credit note reads it to rescale what is
  left.
- `revenue_months` (kept): per currency and month, `billed` (net of invoices issued), `credited`
  (net of credit notes issued) and `recognized` (schedule amounts, reversals included).
- `revenue_waterfall` (kept): per currency, billing month (the invoice's issue month) and
  recognition month, the amount recognized.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from subledger.domain.invoice import Invoice
from subledger.domain.ledger import Entry
from subledger.domain.values import line_ids
from subledger.projections.engine import Column, Projection, Row, RowKey, Rows, RowSource, Table
from subledger.projections.recognition import Policy, apply_credit, month_of, policy_of, schedule

INVOICES = Table(
    "revenue_invoices",
    key=(Column("invoice_id", "text"),),
    values=(Column("currency", "text"), Column("billing_month", "text"), Column("lines", "json")),
)
MONTHS = Table(
    "revenue_months",
    key=(Column("currency", "text"), Column("month", "text")),
    values=(Column("billed", "int"), Column("credited", "int"), Column("recognized", "int")),
    kept=True,
)
WATERFALL = Table(
    "revenue_waterfall",
    key=(Column("currency", "text"), Column("billing_month", "text"), Column("month", "text")),
    values=(Column("amount", "int"),),
    kept=True,
)


class RevenueProjection(Projection):
    name = "revenue"
    #: 2: `revenue_invoices` keeps each line as a list.
    version = 2
    tables = (INVOICES, MONTHS, WATERFALL)
    event_types = (Invoice.Issued, Invoice.CreditNoteIssued)
    referencing_types = (Invoice.CreditNoteIssued,)
    referenced_tables = (INVOICES,)
    fold_cost = 70  # µs per event of the log, rebuilt alone (2026-12-07)

    def __init__(self, default_policy: Policy = "daily") -> None:
        self.default_policy = default_policy

    def fingerprint(self) -> str:
        return f"{super().fingerprint()}:{self.default_policy}"

    def keys(self, event: Any) -> Iterable[tuple[Table, RowKey]]:
        return ((INVOICES, (event.invoice_id,)),)

    def fold(self, rows: Rows, entry: Entry) -> None:
        event: Any = entry.event
        if isinstance(event, Invoice.Issued):
            self._issued(rows, event)
        else:
            _credited(rows, event)

    def _issued(self, rows: Rows, event: Invoice.Issued) -> None:
        currency, issue_date = event.currency, event.issue_date
        billed_in = month_of(issue_date)
        lines: list[StoredLine] = []
        billed = 0
        for line_id, line in zip(line_ids(event.lines), event.lines, strict=True):
            policy = policy_of(line, self.default_policy)
            net = line.net
            billed += net
            scheduled = schedule(line, issue_date, policy, net)
            for month, amount in scheduled.items():
                rows.add(MONTHS, (currency, month), "recognized", amount)
                rows.add(WATERFALL, (currency, billed_in, month), "amount", amount)
            lines.append([line_id, net, policy, scheduled, {}, 0])
        rows.add(MONTHS, (currency, billed_in), "billed", billed)
        rows.put(
            INVOICES,
            (event.invoice_id,),
            {"currency": currency, "billing_month": billed_in, "lines": lines},
        )


StoredLine = list[Any]
"""A line as `revenue_invoices` keeps it: `[line id, net, policy, scheduled, reversals,
credited]`, the scheduled amounts and reversals by month."""
_LINE_ID, _NET, _POLICY, _SCHEDULED, _REVERSALS, _CREDITED = range(6)


def _recognize(rows: Rows, currency: str, billed_in: str, month: str, amount: int) -> None:
    rows.add(MONTHS, (currency, month), "recognized", amount)
    rows.add(WATERFALL, (currency, billed_in, month), "amount", amount)


def _credited(rows: Rows, event: Invoice.CreditNoteIssued) -> None:
    invoice = rows.get(INVOICES, (event.invoice_id,))
    assert invoice is not None, "a credit note follows its invoice in the log"
    currency, billed_in = invoice["currency"], invoice["billing_month"]
    credited_in = month_of(event.issue_date)
    lines: dict[str, StoredLine] = {line[_LINE_ID]: line for line in invoice["lines"]}
    for credit in event.credited:
        line = lines[credit.line_id]
        before = line[_SCHEDULED]
        scheduled, reversal = apply_credit(before, credit.amount, credited_in)
        for month, amount in scheduled.items():
            if amount != before[month]:
                _recognize(rows, currency, billed_in, month, amount - before[month])
        if reversal:
            reversals = line[_REVERSALS]
            reversals[credited_in] = reversals.get(credited_in, 0) - reversal
            _recognize(rows, currency, billed_in, credited_in, -reversal)
        line[_SCHEDULED] = scheduled
        line[_CREDITED] += credit.amount
    rows.add(MONTHS, (currency, credited_in), "credited", sum(c.amount for c in event.credited))
    rows.put(INVOICES, (event.invoice_id,), invoice)


# Answers, read from stored rows or rows folded in memory alike.


def invoice_schedule(rows: RowSource, invoice_id: str) -> dict[str, Any] | None:
    """`{"invoice_id", "currency", "lines": [{"line_id", "net", ..., "months": [...]}]}`."""
    invoice = rows.get(INVOICES, (invoice_id,))
    if invoice is None:
        return None
    lines = []
    for line_id, net, policy, scheduled, reversals, credited in invoice["lines"]:
        months = sorted(set(scheduled) | set(reversals))
        lines.append(
            {
                "line_id": line_id,
                "net": net,
                "recognition": policy,
                "credited": credited,
                "months": [
                    {"month": m, "amount": scheduled.get(m, 0) + reversals.get(m, 0)}
                    for m in months
                ],
            }
        )
    return {"invoice_id": invoice_id, "currency": invoice["currency"], "lines": lines}


def currencies(rows: RowSource) -> list[str]:
    return sorted({key[0] for key, _ in rows.scan(MONTHS)})


def summary(rows: RowSource, currency: str | None, months: list[str]) -> list[dict[str, Any]]:
    """Each of `months` (consecutive, in order): billed, credited, recognized and
    `deferred_end`, the running `Σ billed − Σ credited − Σ recognized` to the month's end; all
    zeros for no currency (where the data has no invoice yet)."""
    scanned = rows.scan(MONTHS, (currency,)) if currency else []
    totals = {key[1]: row for key, row in scanned}
    deferred = sum(
        row["billed"] - row["credited"] - row["recognized"]
        for month, row in totals.items()
        if month < months[0]
    )
    answer = []
    for month in months:
        row: Row = totals.get(month) or {"billed": 0, "credited": 0, "recognized": 0}
        deferred += row["billed"] - row["credited"] - row["recognized"]
        answer.append(
            {
                "month": month,
                "billed": row["billed"],
                "credited": row["credited"],
                "recognized": row["recognized"],
                "deferred_end": deferred,
            }
        )
    return answer


def waterfall(rows: RowSource, currency: str | None, months: list[str]) -> list[dict[str, Any]]:
    """For each billing month of `months`: what was billed then, and when it was recognized;
    no rows for no currency (where the data has no invoice yet)."""
    if currency is None:
        return []
    cells = rows.scan(WATERFALL, (currency,), (months[0], months[-1]))
    totals = {key[1]: row for key, row in rows.scan(MONTHS, (currency,), (months[0], months[-1]))}
    by_billing_month: dict[str, list[dict[str, Any]]] = {}
    for (_, billed_in, month), row in cells:
        by_billing_month.setdefault(billed_in, []).append({"month": month, "amount": row["amount"]})
    return [
        {
            "billing_month": month,
            "billed": totals[month]["billed"] if month in totals else 0,
            "months": by_billing_month.get(month, []),
        }
        for month in months
    ]
