"""Invariants of the journal (docs/specification.md §3.3) on generated businesses: every entry balances, the trial
balance balances on every day, `deferred_revenue` is the revenue projection's `deferred_end` at
every month end where no period is closed, and each customer's receivable is what they were
invoiced less what was credited and paid, plus what was refunded."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from subledger.adapters.store import store_env
from subledger.api.demo.generator import Business
from subledger.api.http.ingest import parse_submissions
from subledger.domain.chart import DEFAULT_CHART
from subledger.domain.dates import Month
from subledger.domain.invoice import Invoice
from subledger.domain.ledger import Ledger
from subledger.domain.values import line_ids
from subledger.projections.engine import Rows
from subledger.projections.journal import ENTRIES, JournalProjection, trial_balance
from subledger.projections.revenue import RevenueProjection, summary
from tests.builders import append, credit_note


def ledger_of(business: Business) -> Ledger:
    ledger = Ledger(store_env("memory://"))
    events = list(business.events())
    for start in range(0, len(events), 500):
        ledger.append(parse_submissions(orjson.dumps({"events": events[start : start + 500]})))
    return ledger


def fold(ledger: Ledger, *projections: Any) -> list[Rows]:
    folded = []
    for projection in projections:
        rows = Rows()
        for entry in ledger.iter_entries(ledger.last_position(), projection.event_types):
            projection.fold(rows, entry)
        folded.append(rows)
    return folded


CURRENCIES = ("DKK", "EUR", "JPY", "KWD")
businesses = st.builds(
    Business,
    customers=st.integers(1, 25),
    start=st.just(date(2025, 1, 1)),
    months=st.integers(3, 18),
    seed=st.integers(0, 10_000),
    eur_percent=st.sampled_from([0, 30]),
    close_periods=st.booleans(),
    currencies=st.sampled_from([None, {"EUR": 20, "JPY": 20, "KWD": 20}]),
    due_dates=st.booleans(),
    exchange_rates=st.booleans(),
    split_credits=st.booleans(),
)


@settings(max_examples=25, deadline=None)
@given(businesses)
def test_every_entry_and_every_days_trial_balance_balance(business: Business) -> None:
    ledger = ledger_of(business)
    (rows,) = fold(ledger, JournalProjection())
    days = set()
    for (booked, _, _), row in rows.scan(ENTRIES):
        assert sum(line[2] for line in row["lines"]) == sum(line[3] for line in row["lines"])
        assert all(line[2] >= 0 and line[3] >= 0 for line in row["lines"])
        days.add(booked)
    for currency in CURRENCIES:
        for day in sorted(days):
            balance = trial_balance(rows, DEFAULT_CHART, currency, day)
            assert balance["total_debit"] == balance["total_credit"], (currency, day)


@settings(max_examples=25, deadline=None)
@given(businesses.map(lambda b: Business(**{**_fields(b), "close_periods": False})))
def test_deferred_revenue_is_deferred_end_at_every_month_end(business: Business) -> None:
    ledger = ledger_of(business)
    journal, revenue = fold(ledger, JournalProjection(), RevenueProjection())
    months = [str(Month(2024 + (12 + i) // 12, 1 + i % 12)) for i in range(40)]
    for currency in CURRENCIES:
        expected = summary(revenue, currency, months)
        for month in expected:
            last_day = Month.parse(month["month"]).last_day.isoformat()
            accounts = trial_balance(journal, DEFAULT_CHART, currency, last_day)["accounts"]
            deferred = sum(a["balance"] for a in accounts if a["role"] == "deferred_revenue")
            assert deferred == month["deferred_end"], (currency, month["month"])


def _fields(business: Business) -> dict[str, Any]:
    names = (
        "customers",
        "start",
        "months",
        "seed",
        "eur_percent",
        "close_periods",
        "currencies",
        "due_dates",
        "exchange_rates",
        "split_credits",
    )
    return {name: getattr(business, name) for name in names}


@settings(max_examples=25, deadline=None)
@given(businesses)
def test_a_customers_receivable_is_invoiced_less_credited_and_paid_plus_refunded(
    business: Business,
) -> None:
    ledger = ledger_of(business)
    (rows,) = fold(ledger, JournalProjection())
    assert receivable_by_customer(rows) == owed_by_the_facts(ledger)


def receivable_by_customer(rows: Rows) -> dict[str, int]:
    booked: dict[str, int] = {}
    for _, row in rows.scan(ENTRIES):
        for role, _, debit, credit in row["lines"]:
            if role == "receivable":
                owner = row["customer_id"]
                booked[owner] = booked.get(owner, 0) + debit - credit
    return {customer: amount for customer, amount in booked.items() if amount}


def half_up(amount: int, rate: Decimal) -> int:
    """`rhu(amount × rate)` for amounts and rates >= 0, in plain integer arithmetic."""
    exact = Fraction(amount) * Fraction(rate)
    return (2 * exact.numerator + exact.denominator) // (2 * exact.denominator)


def owed_by_the_facts(ledger: Ledger) -> dict[str, int]:
    """What each customer owes by the facts alone, a credit's VAT worked out here by docs/specification.md §2: the
    credit that completes a line carries what is left of the line's VAT."""
    owed: dict[str, int] = {}
    lines: dict[tuple[str, str], list[Any]] = {}  # rate, net, VAT, credited net, credited VAT
    for entry in ledger.iter_entries(ledger.last_position(), _MONEY):
        event: Any = entry.event
        amount = 0
        if isinstance(event, Invoice.Issued):
            for line_id, line in zip(line_ids(event.lines), event.lines, strict=True):
                vat = half_up(line.net, line.vat_rate)
                lines[event.invoice_id, line_id] = [line.vat_rate, line.net, vat, 0, 0]
                amount += line.net + vat
        elif isinstance(event, Invoice.CreditNoteIssued):
            for credit in event.credited:
                kept = lines[event.invoice_id, credit.line_id]
                kept[3] += credit.amount
                vat = kept[2] - kept[4] if kept[3] == kept[1] else half_up(credit.amount, kept[0])
                kept[4] += vat
                amount -= credit.amount + vat
        elif isinstance(event, Invoice.PaymentReceived):
            amount = -event.amount
        else:
            amount = event.amount
        owed[event.customer_id] = owed.get(event.customer_id, 0) + amount
    return {customer: amount for customer, amount in owed.items() if amount}


_MONEY = (
    Invoice.Issued,
    Invoice.CreditNoteIssued,
    Invoice.PaymentReceived,
    Invoice.PaymentRefunded,
)


def test_the_invariants_hold_where_entries_move_out_of_closed_months() -> None:
    business = Business(customers=40, start=date(2025, 1, 1), months=14, seed=3)
    ledger = ledger_of(business)
    issued = next(
        entry.event
        for entry in ledger.iter_entries(ledger.last_position(), (Invoice.Issued,))
        if entry.event.issue_date.month == 2  # type: ignore[attr-defined]
    )
    late = credit_note("late", issued.invoice_id, issue_date=issued.issue_date)  # type: ignore[attr-defined]
    append(ledger, late)
    (rows,) = fold(ledger, JournalProjection())
    moved = [row for key, row in rows.scan(ENTRIES) if key[0] != row["original_date"]]
    assert {row["kind"] for row in moved} >= {"credit_note"}
    assert all(row["original_date"] < key for key, row in _keyed(rows, moved))
    day = date(2025, 1, 1)
    while day < date(2026, 6, 1):
        balance = trial_balance(rows, DEFAULT_CHART, "DKK", day.isoformat())
        assert balance["total_debit"] == balance["total_credit"]
        day += timedelta(days=13)
    assert receivable_by_customer(rows) == owed_by_the_facts(ledger)


def _keyed(rows: Rows, chosen: list[Any]) -> list[tuple[str, Any]]:
    return [(key[0], row) for key, row in rows.scan(ENTRIES) if row in chosen]
