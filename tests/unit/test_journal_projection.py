"""The journal folded in memory: each fact's entry with its exact lines (docs/specification.md §3.3), closed periods
(docs/specification.md §3.4), the trial balance, and the chart of accounts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from subledger.adapters.store import store_env
from subledger.domain.chart import DEFAULT_CHART, Chart, ChartError
from subledger.domain.ledger import Ledger
from subledger.projections.engine import Rows
from subledger.projections.journal import (
    ENTRIES,
    ENTRY_NAMESPACE,
    JournalProjection,
    entry_id,
    render,
    trial_balance,
)
from tests.builders import (
    append,
    closed,
    credit_note,
    customer,
    invoice,
    line,
    payment,
    refund,
    reopened,
)

TODAY = date(2026, 11, 21)
MONTHLY = line(
    unit_amount=1200,
    period_start=date(2026, 1, 1),
    period_end=date(2026, 4, 1),
    recognition="monthly",
)


def fold(ledger: Ledger, projection: JournalProjection | None = None) -> Rows:
    projection = projection or JournalProjection()
    rows = Rows()
    for entry in ledger.iter_entries(ledger.last_position(), projection.event_types):
        projection.fold(rows, entry)
    return rows


def journal(ledger: Ledger, chart: Chart = DEFAULT_CHART) -> list[dict[str, Any]]:
    return [render(chart, key, row, TODAY) for key, row in fold(ledger).scan(ENTRIES)]


def lines(entry: dict[str, Any]) -> list[tuple[str, str, int, int]]:
    return [(x["role"], x["account"], x["debit"], x["credit"]) for x in entry["lines"]]


@pytest.fixture
def books() -> Iterator[Ledger]:
    ledger = Ledger(store_env("memory://"))
    append(ledger, customer())
    yield ledger
    ledger.close()


def test_an_invoice_debits_receivable_and_credits_vat_deferral_and_revenue(books: Ledger) -> None:
    one_off = line(unit_amount=5000, product_id="setup")
    ratable = line(unit_amount=60000, period_start=date(2026, 1, 15), period_end=date(2026, 7, 15))
    event_id = append(books, invoice(lines=(ratable, one_off), issue_date=date(2026, 1, 15)))
    first = journal(books)[0]
    assert (first["kind"], first["date"], first["original_date"]) == (
        "invoice",
        "2026-01-15",
        "2026-01-15",
    )
    assert lines(first) == [
        ("receivable", "5600", 81250, 0),
        ("output_vat", "7210", 0, 16250),
        ("deferred_revenue", "7400", 0, 60000),
        ("revenue", "1000", 0, 5000),
    ]
    assert first["entry_id"] == entry_id("invoice", event_id[0].event_id)
    assert first["source_event_ids"] == [event_id[0].event_id]
    assert first["lines"][3]["product_id"] == "setup"


def test_recognition_is_one_entry_per_month_at_its_end(books: Ledger) -> None:
    daily = line(unit_amount=60000, period_start=date(2026, 1, 15), period_end=date(2026, 7, 15))
    append(books, invoice(lines=(daily,), issue_date=date(2026, 1, 15)))
    recognition = [e for e in journal(books) if e["kind"] == "recognition"]
    assert [(e["date"], e["lines"][0]["debit"]) for e in recognition] == [
        ("2026-01-31", 5635),
        ("2026-02-28", 9282),
        ("2026-03-31", 10276),
        ("2026-04-30", 9945),
        ("2026-05-31", 10276),
        ("2026-06-30", 9945),
        ("2026-07-31", 4641),
    ]
    assert lines(recognition[0]) == [
        ("deferred_revenue", "7400", 5635, 0),
        ("revenue", "1000", 0, 5635),
    ]
    assert [e["status"] for e in recognition] == ["posted"] * 7
    later = line(unit_amount=1000, period_start=date(2026, 12, 1), period_end=date(2027, 1, 1))
    append(books, invoice("i2", lines=(later,), issue_date=date(2026, 11, 1)))
    assert journal(books)[-1]["status"] == "scheduled"


def test_the_credit_beyond_what_is_left_gives_the_contracts_entries(books: Ledger) -> None:
    append(books, invoice(lines=(MONTHLY,), issue_date=date(2026, 1, 1)))
    append(books, credit_note("cn1", lines=(("1", 1000),), issue_date=date(2026, 3, 5)))
    entries = journal(books)
    credit = next(e for e in entries if e["kind"] == "credit_note")
    assert credit["date"] == "2026-03-05"
    assert lines(credit) == [
        ("output_vat", "7210", 250, 0),
        ("deferred_revenue", "7400", 400, 0),
        ("revenue", "1000", 600, 0),
        ("receivable", "5600", 0, 1250),
    ]
    adjustments = [e for e in entries if e["kind"] == "credit_adjustment"]
    assert [(e["date"], lines(e)) for e in adjustments] == [
        ("2026-03-31", [("revenue", "1000", 400, 0), ("deferred_revenue", "7400", 0, 400)])
    ]
    append(books, credit_note("cn2", lines=(("1", 100),), issue_date=date(2026, 3, 9)))
    second = [e for e in journal(books) if e["kind"] == "credit_note"][1]
    assert lines(second) == [
        ("output_vat", "7210", 25, 0),
        ("revenue", "1000", 100, 0),
        ("receivable", "5600", 0, 125),
    ]
    assert len([e for e in journal(books) if e["kind"] == "credit_adjustment"]) == 1


def test_a_credit_within_what_is_left_rescales_the_later_months(books: Ledger) -> None:
    append(books, invoice(lines=(MONTHLY,), issue_date=date(2026, 1, 1)))
    append(books, credit_note(lines=(("1", 300),), issue_date=date(2026, 2, 10)))
    entries = journal(books)
    credit = next(e for e in entries if e["kind"] == "credit_note")
    assert lines(credit) == [
        ("output_vat", "7210", 75, 0),
        ("deferred_revenue", "7400", 300, 0),
        ("receivable", "5600", 0, 375),
    ]
    # R = 800 over Feb and Mar becomes 500: Feb rhu(500 × 400 / 800) = 250, Mar 250.
    adjustments = [
        (e["date"], e["lines"][0]["debit"]) for e in entries if e["kind"] == "credit_adjustment"
    ]
    assert adjustments == [("2026-02-28", 150), ("2026-03-31", 150)]


def test_a_credit_on_a_point_in_time_line_takes_back_revenue(books: Ledger) -> None:
    append(books, invoice(lines=(line(unit_amount=2000),)))
    append(books, credit_note(lines=(("1", 800),), issue_date=date(2026, 2, 1)))
    credit = journal(books)[-1]
    assert lines(credit) == [
        ("output_vat", "7210", 200, 0),
        ("revenue", "1000", 800, 0),
        ("receivable", "5600", 0, 1000),
    ]


def test_a_line_credited_in_halves_leaves_neither_vat_nor_receivable(books: Ledger) -> None:
    # docs/specification.md §2: 100.02 at 25% has VAT 25.01; credited 50.01 + 50.01, the credits carry 12.50 and 12.51.
    append(books, invoice(lines=(line(unit_amount=10002),)))
    append(books, credit_note("cn1", lines=(("1", 5001),), issue_date=date(2026, 1, 5)))
    append(books, credit_note("cn2", lines=(("1", 5001),), issue_date=date(2026, 1, 6)))
    first, second = [lines(e) for e in journal(books) if e["kind"] == "credit_note"]
    assert first == [
        ("output_vat", "7210", 1250, 0),
        ("revenue", "1000", 5001, 0),
        ("receivable", "5600", 0, 6251),
    ]
    assert second == [
        ("output_vat", "7210", 1251, 0),
        ("revenue", "1000", 5001, 0),
        ("receivable", "5600", 0, 6252),
    ]
    balances = trial_balance(fold(books), DEFAULT_CHART, "DKK", "2026-01-31")["accounts"]
    assert {a["role"]: a["balance"] for a in balances} == {
        "revenue": 0,
        "receivable": 0,
        "output_vat": 0,
    }


def test_a_completing_credit_below_its_rounded_vat_books_what_is_left(books: Ledger) -> None:
    # 100.01 at 25%: VAT 25.00. Credits of 0.02 (VAT 0.01) and 99.99 (25.00 − 0.01 = 24.99).
    append(books, invoice(lines=(line(unit_amount=10001),)))
    append(books, credit_note("cn1", lines=(("1", 2),)), credit_note("cn2", lines=(("1", 9999),)))
    vat = [e["lines"][0] for e in journal(books) if e["kind"] == "credit_note"]
    assert [(x["role"], x["debit"]) for x in vat] == [("output_vat", 1), ("output_vat", 2499)]
    balances = trial_balance(fold(books), DEFAULT_CHART, "DKK", "2026-01-31")["accounts"]
    assert {a["role"]: a["balance"] for a in balances}["output_vat"] == 0


def test_a_payment_and_its_refund_move_money_through_the_methods_bank(books: Ledger) -> None:
    append(books, invoice())
    append(books, payment(amount=12500, method="mobilepay", received_on=date(2026, 1, 3)))
    append(books, refund(amount=2500, refunded_on=date(2026, 1, 9)))
    paid, refunded = journal(books)[-2:]
    assert (paid["kind"], paid["date"]) == ("payment", "2026-01-03")
    assert lines(paid) == [("bank", "5820", 12500, 0), ("receivable", "5600", 0, 12500)]
    assert paid["lines"][0]["method"] == "mobilepay"
    assert (refunded["kind"], refunded["date"]) == ("refund", "2026-01-09")
    assert lines(refunded) == [("receivable", "5600", 2500, 0), ("bank", "5820", 0, 2500)]


def test_a_method_without_an_account_of_its_own_goes_to_the_default_bank(books: Ledger) -> None:
    append(books, invoice(), payment(method="bank_transfer"))
    assert lines(journal(books)[-1])[0] == ("bank", "5800", 12500, 0)


def test_an_entry_dated_in_a_closed_month_moves_to_the_first_open_day(books: Ledger) -> None:
    append(books, closed("2026-01"), closed("2026-02"))
    append(books, invoice(issue_date=date(2026, 1, 20)))
    moved = journal(books)[0]
    assert (moved["date"], moved["original_date"]) == ("2026-03-01", "2026-01-20")
    append(books, reopened("2026-01"))
    append(books, invoice("i2", issue_date=date(2026, 1, 21)))
    assert journal(books)[0]["date"] == "2026-01-21", "January is open again"
    assert [e["date"] for e in journal(books)].count("2026-03-01") == 1


def test_closing_a_month_later_moves_no_entry_made_before(books: Ledger) -> None:
    append(books, invoice(lines=(MONTHLY,), issue_date=date(2026, 1, 1)))
    before = journal(books)
    append(books, closed("2026-02"))
    assert journal(books) == before
    append(books, credit_note(lines=(("1", 300),), issue_date=date(2026, 2, 10)))
    entries = journal(books)
    credit = next(e for e in entries if e["kind"] == "credit_note")
    assert (credit["date"], credit["original_date"]) == ("2026-03-01", "2026-02-10")
    adjustments = [
        (e["date"], e["original_date"]) for e in entries if e["kind"] == "credit_adjustment"
    ]
    assert adjustments == [("2026-03-01", "2026-02-28"), ("2026-03-31", "2026-03-31")]


def test_the_trial_balance_sums_what_is_booked_by_the_day_asked_about(books: Ledger) -> None:
    append(books, invoice(lines=(MONTHLY,), issue_date=date(2026, 1, 1)))
    append(books, payment(amount=1500, received_on=date(2026, 1, 10), method="card"))
    rows = fold(books)
    february = trial_balance(rows, DEFAULT_CHART, "DKK", "2026-02-28")
    assert february["accounts"] == [
        {"account": "1000", "role": "revenue", "debit": 0, "credit": 800, "balance": 800},
        {"account": "5600", "role": "receivable", "debit": 0, "credit": 0, "balance": 0},
        {"account": "5810", "role": "bank", "debit": 1500, "credit": 0, "balance": 1500},
        {"account": "7210", "role": "output_vat", "debit": 0, "credit": 300, "balance": 300},
        {
            "account": "7400",
            "role": "deferred_revenue",
            "debit": 0,
            "credit": 400,
            "balance": 400,
        },
    ]
    assert february["total_debit"] == february["total_credit"] == 1500
    before = trial_balance(rows, DEFAULT_CHART, "DKK", "2025-12-31")
    assert before["accounts"] == [] and before["total_debit"] == 0


def test_entry_ids_are_the_same_on_every_fold(books: Ledger) -> None:
    append(books, invoice(lines=(MONTHLY,)), payment(amount=1500))
    first = [e["entry_id"] for e in journal(books)]
    assert first == [e["entry_id"] for e in journal(books)]
    assert len(set(first)) == len(first)


def test_the_recognition_policy_setting_decides_what_is_deferred(books: Ledger) -> None:
    dated = line(unit_amount=600, period_start=date(2026, 1, 15), period_end=date(2026, 7, 15))
    append(books, invoice(lines=(dated,), issue_date=date(2026, 1, 15)))
    monthly = JournalProjection(default_policy="monthly")
    rows = fold(books, monthly)
    amounts = [
        row["lines"][0][2] for key, row in rows.scan(ENTRIES) if row["kind"] == "recognition"
    ]
    assert amounts == [100] * 6
    assert monthly.fingerprint() != JournalProjection().fingerprint()


def test_a_chart_maps_product_groups_and_methods_to_accounts() -> None:
    chart = Chart.from_mapping(
        {
            "receivable": 5610,
            "revenue": {"default": "1000", "plan_enterprise*": "1020", "plan_*": "1010"},
            "bank": {"default": "5800", "card": "5811"},
        }
    )
    assert chart.account("receivable") == "5610"
    assert chart.account("revenue", "plan_enterprise_2") == "1020"
    assert chart.account("revenue", "plan_pro") == "1010"
    assert chart.account("revenue", "setup") == "1000"
    assert chart.account("bank", "card") == "5811"
    assert chart.account("bank", "mobilepay") == "5800", "the table replaces the default one"
    assert chart.accounts()["1020"] == "revenue"


@pytest.mark.parametrize(
    ("mapping", "says"),
    [
        ({"recievable": "5600"}, "no role recievable"),
        ({"receivable": "56-00"}, "is not an account number"),
        ({"receivable": True}, "is not an account number"),
        ({"bank": {"card": "5810"}}, "needs a default account"),
        ({"output_vat": "5600"}, "account 5600 serves two roles"),
        ({"revenue": {"default": "1000", "x*": "5800"}}, "account 5800 serves two roles"),
    ],
)
def test_a_chart_that_cannot_be_used_is_refused_with_what_is_wrong(
    mapping: dict[str, Any], says: str
) -> None:
    with pytest.raises(ChartError, match=says):
        Chart.from_mapping(mapping)


@given(st.sampled_from(["invoice", "recognition"]), st.text(min_size=1, max_size=128))
def test_an_entry_id_is_the_uuid5_of_kind_source_and_month(kind: str, source: str) -> None:
    assert entry_id(kind, source, "2026-03") == str(
        uuid.uuid5(ENTRY_NAMESPACE, f"{kind}/{source}/2026-03")
    )
