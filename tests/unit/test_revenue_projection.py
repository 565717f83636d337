"""The revenue projection folded in memory: its answers, and the invariants of docs/specification.md §3.1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subledger.adapters.store import store_env
from subledger.domain.ledger import Ledger
from subledger.projections.engine import Rows
from subledger.projections.revenue import RevenueProjection, invoice_schedule, summary, waterfall
from tests.builders import append, credit_note, customer, invoice, line


def fold(ledger: Ledger, projection: RevenueProjection | None = None) -> Rows:
    projection = projection or RevenueProjection()
    rows = Rows()
    for entry in ledger.iter_entries(ledger.last_position(), projection.event_types):
        projection.fold(rows, entry)
    return rows


@pytest.fixture
def books() -> Iterator[Ledger]:
    ledger = Ledger(store_env("memory://"))
    append(ledger, customer())
    yield ledger
    ledger.close()


def months(first: str, count: int) -> list[str]:
    year, month = map(int, first.split("-"))
    result = []
    for _ in range(count):
        result.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return result


def test_the_credit_beyond_what_is_left_gives_the_contracts_schedule(books: Ledger) -> None:
    monthly = line(
        unit_amount=1200,
        vat_rate="0.25",
        period_start=date(2026, 1, 1),
        period_end=date(2026, 4, 1),
        recognition="monthly",
    )
    append(books, invoice(lines=(monthly,)))
    append(books, credit_note("cn1", lines=(("1", 1000),), issue_date=date(2026, 3, 5)))
    rows = fold(books)
    schedule = invoice_schedule(rows, "i1")
    assert schedule is not None
    assert schedule["lines"][0]["months"] == [
        {"month": "2026-01", "amount": 400},
        {"month": "2026-02", "amount": 400},
        {"month": "2026-03", "amount": -600},
    ]
    append(books, credit_note("cn2", lines=(("1", 100),), issue_date=date(2026, 3, 9)))
    schedule = invoice_schedule(fold(books), "i1")
    assert schedule is not None
    assert schedule["lines"][0]["months"][-1] == {"month": "2026-03", "amount": -700}


def test_the_summary_tells_billed_credited_recognized_and_deferred(books: Ledger) -> None:
    daily = line(unit_amount=60000, period_start=date(2026, 1, 15), period_end=date(2026, 7, 15))
    append(books, invoice(lines=(daily,), issue_date=date(2026, 1, 15)))
    rows = fold(books)
    answer = summary(rows, "DKK", months("2025-12", 9))
    assert [m["recognized"] for m in answer] == [0, 5635, 9282, 10276, 9945, 10276, 9945, 4641, 0]
    assert answer[1] == {
        "month": "2026-01",
        "billed": 60000,
        "credited": 0,
        "recognized": 5635,
        "deferred_end": 54365,
    }
    assert answer[-2]["deferred_end"] == 0


def test_the_default_policy_setting_changes_the_schedule_and_the_fingerprint(
    books: Ledger,
) -> None:
    daily = line(unit_amount=60000, period_start=date(2026, 1, 15), period_end=date(2026, 7, 15))
    append(books, invoice(lines=(daily,)))
    monthly = RevenueProjection(default_policy="monthly")
    schedule = invoice_schedule(fold(books, monthly), "i1")
    assert schedule is not None
    assert {m["amount"] for m in schedule["lines"][0]["months"]} == {10000}
    assert monthly.fingerprint() != RevenueProjection().fingerprint()


# Random streams of invoices and credit notes.


@st.composite
def lines(draw: st.DrawFn) -> object:
    start = date(2025, 1, 1) + timedelta(days=draw(st.integers(0, 700)))
    kind = draw(st.sampled_from(["point", "daily", "monthly", "whole"]))
    amount = draw(st.integers(0, 10**7))
    if kind == "point":
        return line(unit_amount=amount)
    if kind == "whole":
        from subledger.domain.dates import add_months

        end = add_months(start, draw(st.integers(1, 24)))
        return line(unit_amount=amount, period_start=start, period_end=end, recognition="monthly")
    end = start + timedelta(days=draw(st.integers(1, 800)))
    return line(unit_amount=amount, period_start=start, period_end=end, recognition=kind)


@st.composite
def books_with_credits(draw: st.DrawFn) -> Ledger:
    ledger = Ledger(store_env("memory://"))
    append(ledger, customer())
    for number in range(draw(st.integers(1, 6))):
        issued = date(2025, 1, 1) + timedelta(days=draw(st.integers(0, 700)))
        invoice_lines = tuple(draw(st.lists(lines(), min_size=1, max_size=3)))
        currency = draw(st.sampled_from(["DKK", "EUR"]))
        append(
            ledger, invoice(f"i{number}", issue_date=issued, lines=invoice_lines, currency=currency)
        )
        left = [item.net for item in invoice_lines]  # type: ignore[attr-defined]
        for credit in range(draw(st.integers(0, 3))):
            index = draw(st.integers(0, len(left) - 1))
            if left[index] == 0:
                continue
            amount = draw(st.integers(1, left[index]))
            left[index] -= amount
            dated = issued + timedelta(days=draw(st.integers(0, 900)))
            append(
                ledger,
                credit_note(
                    f"cn{number}-{credit}",
                    f"i{number}",
                    lines=((str(index + 1), amount),),
                    issue_date=dated,
                ),
            )
    return ledger


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(books_with_credits())
def test_every_schedule_sums_to_its_net_minus_its_credits(ledger: Ledger) -> None:
    rows = fold(ledger)
    for key, _ in rows.scan(RevenueProjection.tables[0]):
        schedule = invoice_schedule(rows, key[0])
        assert schedule is not None
        for schedule_line in schedule["lines"]:
            total = sum(month["amount"] for month in schedule_line["months"])
            assert total == schedule_line["net"] - schedule_line["credited"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(books_with_credits())
def test_deferred_end_follows_its_recurrence_and_the_waterfall_adds_up(ledger: Ledger) -> None:
    rows = fold(ledger)
    span = months("2024-12", 60)
    for currency in ("DKK", "EUR"):
        answer = summary(rows, currency, span)
        previous = 0
        for month in answer:
            expected = previous + month["billed"] - month["credited"] - month["recognized"]
            assert month["deferred_end"] == expected
            previous = month["deferred_end"]
        assert answer[-1]["deferred_end"] == 0, "everything billed is recognized in the end"
        billed_rows = waterfall(rows, currency, span)
        recognized = sum(cell["amount"] for row in billed_rows for cell in row["months"])
        assert recognized == sum(m["recognized"] for m in answer)
