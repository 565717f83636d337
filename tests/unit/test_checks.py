"""`subledger projections check` reads credit notes' VAT as their events record it (docs/specification.md §2), so a
line credited in parts, whose last part carries what is left of its VAT, checks out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from subledger.adapters.store import store_env
from subledger.api.cli.checks import check_journal
from subledger.domain.chart import DEFAULT_CHART
from subledger.domain.ledger import Ledger
from subledger.projections.engine import Rows
from subledger.projections.journal import ENTRIES, JournalProjection
from subledger.projections.revenue import RevenueProjection
from tests.builders import append, credit_note, customer, invoice, line, payment


def fold(ledger: Ledger, projection: Any) -> Rows:
    rows = Rows()
    for entry in ledger.iter_entries(ledger.last_position(), projection.event_types):
        projection.fold(rows, entry)
    return rows


def findings(ledger: Ledger, books: Rows) -> dict[str, tuple[bool, str]]:
    recognized = fold(ledger, RevenueProjection())
    answer = check_journal(ledger, ledger.last_position(), books, recognized, DEFAULT_CHART)
    return {finding.check: (finding.ok, finding.detail) for finding in answer}


@pytest.fixture
def books() -> Iterator[Ledger]:
    ledger = Ledger(store_env("memory://"))
    # 100.02 at 25% (VAT 25.01) and a ratable 12.00, half credited twice and paid what is left.
    ratable = line(unit_amount=1200, period_start=date(2026, 1, 1), period_end=date(2026, 4, 1))
    append(
        ledger,
        customer(),
        invoice(lines=(line(unit_amount=10002), ratable)),
        credit_note("cn1", lines=(("1", 5001), ("2", 600))),
        credit_note("cn2", lines=(("1", 5001),)),
        # What is left: 12.00 + 3.00 − 6.00 − 1.50 on the ratable line.
        payment(amount=1200 + 300 - 600 - 150),
    )
    yield ledger
    ledger.close()


def test_receivables_check_out_where_a_credit_carries_a_vat_remainder(books: Ledger) -> None:
    result = findings(books, fold(books, JournalProjection()))
    assert result["receivables match the facts"] == (True, "1 customers")
    assert all(ok for ok, _ in result.values()), result


def test_a_receivable_off_by_the_remainder_is_found(books: Ledger) -> None:
    rows = fold(books, JournalProjection())
    # Book the second credit note as the old rule would have: its VAT 12.50, not 12.51.
    for key, row in rows.scan(ENTRIES):
        if row["kind"] == "credit_note" and row["source_event_id"] == second_credit(rows):
            row["lines"] = [
                [role, detail, debit - (role == "output_vat"), credit - (role == "receivable")]
                for role, detail, debit, credit in row["lines"]
            ]
            rows.put(ENTRIES, key, row)
    ok, detail = findings(books, rows)["receivables match the facts"]
    assert not ok
    assert "the journal has 1, the facts 0" in detail


def second_credit(rows: Rows) -> str:
    credit_notes = [row for _, row in rows.scan(ENTRIES) if row["kind"] == "credit_note"]
    source: str = credit_notes[1]["source_event_id"]
    return source
