"""The MRR projection folded in memory: one test per rule of docs/specification.md §3.2, and the worked example."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from subledger.adapters.store import store_env
from subledger.domain.ledger import Ledger
from subledger.domain.values import CLEARED
from subledger.projections.engine import Rows
from subledger.projections.mrr import MrrProjection, customer_monthly, monthly, retention
from tests.builders import (
    append,
    cancelled,
    changed,
    customer,
    discount,
    item,
    paused,
    resumed,
    subscription,
)


def fold(ledger: Ledger) -> Rows:
    projection = MrrProjection()
    rows = Rows()
    for entry in ledger.iter_entries(ledger.last_position(), projection.event_types):
        projection.fold(rows, entry)
    return rows


def months(first: str, count: int) -> list[str]:
    year, month = map(int, first.split("-"))
    result = []
    for _ in range(count):
        result.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return result


@pytest.fixture
def books() -> Iterator[Ledger]:
    ledger = Ledger(store_env("memory://"))
    append(ledger, customer("c1"), customer("c2"))
    yield ledger
    ledger.close()


def mrr(ledger: Ledger, first: str, count: int, currency: str = "DKK") -> list[int]:
    return [m["mrr"] for m in monthly(fold(ledger), currency, months(first, count))]


def moves(ledger: Ledger, first: str, count: int) -> list[dict[str, int]]:
    answer = monthly(fold(ledger), "DKK", months(first, count))
    return [{k: v for k, v in m["movements"].items() if v} for m in answer]


def test_the_worked_example_gives_the_contracts_month_ends(books: Ledger) -> None:
    append(books, subscription("a1", "c1", date(2026, 1, 10), items=(item(10000),)))
    append(
        books,
        subscription(
            "b1",
            "c2",
            date(2026, 2, 1),
            interval="week",
            items=(item(5000, quantity="2"),),
            trial_end=date(2026, 2, 15),
            discount=discount("0.20", duration="repeating", duration_in_months=2),
        ),
    )
    append(books, changed("a1", date(2026, 3, 1), items=(item(15000),)))
    append(books, cancelled("a1", date(2026, 5, 1)))
    append(
        books,
        subscription("a2", "c1", date(2026, 7, 5), interval="year", items=(item(120000),)),
    )
    answer = monthly(fold(books), "DKK", months("2026-01", 7))
    assert [m["mrr"] for m in answer] == [10000, 44667, 49667, 58333, 43333, 43333, 53333]
    assert [{k: v for k, v in m["movements"].items() if v} for m in answer] == [
        {"new": 10000},
        {"new": 34667},
        {"expansion": 5000},
        {"expansion": 8666},
        {"churn": -15000},
        {},
        {"reactivation": 10000},
    ]
    assert [m["customers"] for m in answer] == [1, 2, 2, 2, 1, 1, 2]
    assert [m["arr"] for m in answer][:2] == [120000, 536004]
    assert answer[1]["arpa"] == 22334  # rhu(44667 / 2)


def test_a_trial_earns_nothing_until_it_ends(books: Ledger) -> None:
    append(books, subscription(trial_end=date(2026, 3, 1), start_date=date(2026, 1, 15)))
    assert mrr(books, "2026-01", 3) == [0, 0, 10000]
    assert moves(books, "2026-03", 1) == [{"new": 10000}]


def test_a_trial_ending_on_the_last_day_counts_that_month(books: Ledger) -> None:
    append(books, subscription(trial_end=date(2026, 1, 31)))
    assert mrr(books, "2026-01", 1) == [10000]


def test_a_percent_discount_forever_is_taken_off_the_base(books: Ledger) -> None:
    append(books, subscription(items=(item(3333),), discount=discount("0.15")))
    assert mrr(books, "2026-01", 24)[-1] == 3333 - 500  # rhu(3333 × 0.15) = rhu(499.95)


def test_an_amount_off_never_takes_mrr_below_zero(books: Ledger) -> None:
    append(
        books, subscription("s1", "c1", items=(item(10000),), discount=discount(amount_off=2500))
    )
    append(books, subscription("s2", "c2", items=(item(2000),), discount=discount(amount_off=2500)))
    assert mrr(books, "2026-01", 1) == [7500]
    assert monthly(fold(books), "DKK", ["2026-01"])[0]["customers"] == 1


def test_a_repeating_discount_ends_after_its_months(books: Ledger) -> None:
    append(
        books,
        subscription(
            start_date=date(2026, 1, 31),
            discount=discount("0.50", duration="repeating", duration_in_months=1),
        ),
    )
    # add_months(31 Jan, 1) = 28 Feb: the discount is gone on February's last day.
    assert mrr(books, "2026-01", 3) == [5000, 10000, 10000]
    assert moves(books, "2026-02", 1) == [{"expansion": 5000}]


def test_a_once_discount_never_changes_mrr(books: Ledger) -> None:
    append(books, subscription(discount=discount(amount_off=5000, duration="once")))
    assert mrr(books, "2026-01", 2) == [10000, 10000]


def test_a_discount_set_by_a_change_repeats_from_the_change(books: Ledger) -> None:
    append(books, subscription())
    off = discount("0.10", duration="repeating", duration_in_months=2)
    append(books, changed(effective_date=date(2026, 3, 10), items=(item(10000),), discount=off))
    assert mrr(books, "2026-02", 5) == [10000, 9000, 9000, 10000, 10000]


def test_a_change_naming_no_discount_keeps_the_old_one_and_its_clock(books: Ledger) -> None:
    off = discount("0.10", duration="repeating", duration_in_months=3)
    append(books, subscription(discount=off))
    append(books, changed(effective_date=date(2026, 2, 1), items=(item(20000),)))
    assert mrr(books, "2026-01", 4) == [9000, 18000, 18000, 20000]


def test_a_change_with_a_null_discount_removes_it(books: Ledger) -> None:
    append(books, subscription(discount=discount("0.10")))
    append(books, changed(effective_date=date(2026, 2, 1), items=(item(10000),), discount=CLEARED))
    assert mrr(books, "2026-01", 2) == [9000, 10000]


def test_a_pause_earns_nothing_until_the_resumption(books: Ledger) -> None:
    append(books, subscription())
    append(books, paused(on=date(2026, 2, 10)))
    append(books, resumed(on=date(2026, 4, 1)))
    assert mrr(books, "2026-01", 4) == [10000, 0, 0, 10000]
    assert moves(books, "2026-01", 4) == [
        {"new": 10000},
        {"churn": -10000},
        {},
        {"reactivation": 10000},
    ]


def test_a_pause_and_resumption_inside_one_month_move_nothing(books: Ledger) -> None:
    append(books, subscription())
    append(books, paused(on=date(2026, 2, 3)), resumed(on=date(2026, 2, 20)))
    assert mrr(books, "2026-01", 3) == [10000, 10000, 10000]


@pytest.mark.parametrize(
    ("interval", "unit_amount", "expected"),
    [
        ("week", 1000, 4333),  # rhu(1000 × 52 / 12) = rhu(4333.33)
        ("week", 1500, 6500),
        ("month", 1000, 1000),
        ("quarter", 3000, 1000),
        ("quarter", 1000, 333),  # rhu(1000 × 4 / 12)
        ("year", 12001, 1000),  # rhu(1000.08)
        ("year", 18, 2),  # rhu(1.5) rounds half up
    ],
)
def test_each_interval_is_normalised_to_a_month(
    books: Ledger, interval: str, unit_amount: int, expected: int
) -> None:
    append(books, subscription(interval=interval, items=(item(unit_amount),)))
    assert mrr(books, "2026-01", 1) == [expected]


@pytest.mark.parametrize(
    ("interval", "count", "unit_amount", "expected"),
    [
        ("month", 3, 10000, 3333),
        ("month", 6, 60000, 10000),
        ("week", 2, 1000, 2167),  # rhu(1000 × 52 / 24) = rhu(2166.67)
        ("year", 2, 240000, 10000),
    ],
)
def test_an_interval_count_divides_the_price(
    books: Ledger, interval: str, count: int, unit_amount: int, expected: int
) -> None:
    append(
        books,
        subscription(interval=interval, interval_count=count, items=(item(unit_amount),)),
    )
    assert mrr(books, "2026-01", 1) == [expected]


def test_items_add_up_each_rounded(books: Ledger) -> None:
    append(books, subscription(items=(item(333, quantity="1.5"), item(1000, quantity="2"))))
    assert mrr(books, "2026-01", 1) == [500 + 2000]  # rhu(499.5) = 500


def test_one_of_two_subscriptions_cancelling_is_a_contraction(books: Ledger) -> None:
    append(books, subscription("s1", items=(item(10000),)))
    append(books, subscription("s2", items=(item(4000),)))
    append(books, cancelled("s2", date(2026, 3, 15)))
    assert mrr(books, "2026-01", 3) == [14000, 14000, 10000]
    assert moves(books, "2026-03", 1) == [{"contraction": -4000}]


def test_a_return_after_churn_is_a_reactivation(books: Ledger) -> None:
    append(books, subscription("s1"))
    append(books, cancelled("s1", date(2026, 2, 1)))
    append(books, subscription("s2", start_date=date(2026, 4, 1), items=(item(7000),)))
    assert moves(books, "2026-01", 4) == [
        {"new": 10000},
        {"churn": -10000},
        {},
        {"reactivation": 7000},
    ]


def test_a_start_and_cancel_in_the_same_month_moves_nothing(books: Ledger) -> None:
    append(books, subscription(start_date=date(2026, 2, 3)))
    append(books, cancelled(on=date(2026, 2, 20)))
    assert mrr(books, "2026-01", 3) == [0, 0, 0]
    assert moves(books, "2026-01", 3) == [{}, {}, {}]
    append(books, subscription("s2", start_date=date(2026, 3, 1)))
    assert moves(books, "2026-03", 1) == [{"new": 10000}]


def test_a_cancellation_on_the_first_of_a_month_ends_mrr_the_month_before(books: Ledger) -> None:
    append(books, subscription())
    append(books, cancelled(on=date(2026, 3, 1)))
    assert mrr(books, "2026-01", 3) == [10000, 10000, 0]


def test_a_backdated_cancellation_rewrites_only_the_months_from_its_date(books: Ledger) -> None:
    append(books, subscription())
    append(books, changed(effective_date=date(2026, 5, 1), items=(item(20000),)))
    append(books, cancelled(on=date(2026, 3, 10)))
    assert mrr(books, "2026-01", 6) == [10000, 10000, 0, 0, 0, 0]
    assert moves(books, "2026-01", 6) == [{"new": 10000}, {}, {"churn": -10000}, {}, {}, {}]


def test_a_later_change_on_the_same_day_wins(books: Ledger) -> None:
    append(books, subscription())
    append(books, changed(effective_date=date(2026, 2, 1), items=(item(20000),)))
    append(books, changed(effective_date=date(2026, 2, 1), items=(item(15000),)))
    assert mrr(books, "2026-02", 1) == [15000]


def test_currencies_are_kept_apart(books: Ledger) -> None:
    append(books, subscription("s1"))
    append(books, subscription("s2", currency="EUR", items=(item(2000),)))
    assert mrr(books, "2026-01", 1) == [10000]
    assert mrr(books, "2026-01", 1, "EUR") == [2000]
    eur = monthly(fold(books), "EUR", ["2026-01"])[0]
    assert eur["movements"]["new"] == 2000


def test_a_customers_drill_down_names_the_events_behind_each_movement(books: Ledger) -> None:
    started = append(books, subscription("s1"))[0].event_id
    append(books, subscription("s2", customer_id="c2"))
    change = append(books, changed("s1", date(2026, 2, 14), items=(item(12000),)))[0].event_id
    cancel = append(books, cancelled("s1", date(2026, 4, 1)))[0].event_id
    answer = customer_monthly(fold(books), "c1", "DKK", months("2026-01", 4))
    assert [(m["mrr"], m["event_ids"]) for m in answer] == [
        (10000, [started]),
        (12000, [change]),
        (12000, []),
        (0, [cancel]),
    ]
    assert answer[1]["movements"]["expansion"] == 2000
    assert answer[3]["movements"]["churn"] == -12000


def test_retention_compares_a_month_with_the_month_before(books: Ledger) -> None:
    append(books, subscription("s1", items=(item(10000),)))
    append(books, subscription("s2", customer_id="c2", items=(item(30000),)))
    append(books, changed("s1", date(2026, 2, 1), items=(item(15000),)))
    append(books, cancelled("s2", date(2026, 2, 1)))
    january, february = retention(fold(books), "DKK", ["2026-01", "2026-02"])
    assert january["gross_revenue_retention"] is None
    assert january["customer_churn_rate"] is None
    assert february == {
        "month": "2026-02",
        "starting_mrr": 40000,
        "starting_customers": 2,
        "expansion": 5000,
        "contraction": 0,
        "churn": -30000,
        "churned_customers": 1,
        "gross_revenue_retention": "0.2500",
        "net_revenue_retention": "0.3750",
        "customer_churn_rate": "0.5000",
    }


def test_the_movement_identity_holds_month_by_month(books: Ledger) -> None:
    append(books, subscription("s1"), subscription("s2", customer_id="c2", interval="week"))
    append(books, changed("s1", date(2026, 3, 1), items=(item(5000),)))
    append(books, paused("s2", date(2026, 4, 1)), resumed("s2", date(2026, 6, 1)))
    answer = monthly(fold(books), "DKK", months("2025-12", 10))
    previous: dict[str, Any] | None = None
    for month in answer:
        before = previous["mrr"] if previous else 0
        assert month["mrr"] == before + sum(month["movements"].values())
        previous = month


def test_a_backdated_event_changes_no_month_before_its_date(books: Ledger) -> None:
    append(books, subscription("s1"), subscription("s2", customer_id="c2"))
    append(books, changed("s1", date(2026, 6, 1), items=(item(30000),)))
    append(books, paused("s2", date(2026, 3, 1)), resumed("s2", date(2026, 8, 1)))
    projection, rows = MrrProjection(), fold(books)
    rows.changes()
    append(books, cancelled("s1", date(2026, 4, 20)))
    end = books.last_position()
    for entry in books.read_entries(end - 1, end, 10, projection.event_types):
        projection.fold(rows, entry)
    touched = sorted(key[1] for key in rows.changes()["mrr_months"])
    assert touched == ["2026-04", "2026-06"]  # the churn moves in; June's expansion goes
    assert mrr(books, "2026-01", 8) == [20000, 20000, 10000, 0, 0, 0, 0, 10000]
