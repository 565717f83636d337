"""The journal for an accountant: one CSV row per line of each entry, amounts in major units."""

from __future__ import annotations

from collections.abc import Iterator

from subledger.domain.chart import Chart
from subledger.domain.money import to_major
from subledger.projections.engine import RowSource
from subledger.projections.journal import entries_page

COLUMNS = (
    "entry_id",
    "date",
    "original_date",
    "kind",
    "account",
    "role",
    "detail",
    "debit",
    "credit",
    "currency",
    "customer_id",
    "source_event_ids",
)


def journal_lines(
    rows: RowSource,
    chart: Chart,
    first: str,
    last: str,
    currency: str | None = None,
    page_size: int = 2000,
) -> Iterator[list[list[str]]]:
    """Each entry booked from `first` to `last` (of `currency`, or all), in booking order, as
    the CSV rows of its lines."""
    after = None
    while True:
        page, after = entries_page(rows, first, last, after, page_size)
        for (booked, _, _), row in page:
            if currency is not None and row["currency"] != currency:
                continue
            yield [
                [
                    row["entry_id"],
                    booked,
                    row["original_date"],
                    row["kind"],
                    chart.account(role, detail),
                    role,
                    detail,
                    str(to_major(debit, row["currency"])) if debit else "",
                    str(to_major(credit, row["currency"])) if credit else "",
                    row["currency"],
                    row["customer_id"],
                    row["source_event_id"],
                ]
                for role, detail, debit, credit in row["lines"]
            ]
        if after is None:
            return
