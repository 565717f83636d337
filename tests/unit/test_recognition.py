"""Revenue recognition (docs/specification.md §3.1): the worked examples of docs/specification.md §8 and the properties of schedules."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import assume, given
from hypothesis import strategies as st

from subledger.domain.money import rhu
from subledger.projections.recognition import (
    apply_credit,
    daily_schedule,
    monthly_schedule,
    policy_of,
    schedule,
)
from tests.builders import line


def test_a_daily_line_of_600_from_15_january_earns_as_the_contract_shows() -> None:
    amounts = daily_schedule(60000, date(2026, 1, 15), date(2026, 7, 15))
    assert amounts == {
        "2026-01": 5635,
        "2026-02": 9282,
        "2026-03": 10276,
        "2026-04": 9945,
        "2026-05": 10276,
        "2026-06": 9945,
        "2026-07": 4641,
    }
    assert amounts["2026-01"] == rhu(Fraction(60000 * 17, 181))


def test_a_six_month_plan_of_600_earns_100_a_month_under_monthly_recognition() -> None:
    amounts = monthly_schedule(60000, date(2026, 1, 15), date(2026, 7, 15))
    assert amounts == {f"2026-0{m}": 10000 for m in range(1, 7)}


def test_a_period_starting_31_january_counts_months_from_its_start() -> None:
    assert monthly_schedule(10000, date(2026, 1, 31), date(2026, 4, 30)) == {
        "2026-01": 3333,
        "2026-02": 3334,
        "2026-03": 3333,
    }


def test_a_leap_year_february_has_29_days() -> None:
    assert daily_schedule(2900, date(2028, 2, 1), date(2028, 3, 1)) == {"2028-02": 2900}
    # 60 days from 15 January 2028: 17 in January, 29 in February, 14 in March.
    assert daily_schedule(6000, date(2028, 1, 15), date(2028, 3, 15)) == {
        "2028-01": 1700,
        "2028-02": 2900,
        "2028-03": 1400,
    }
    assert monthly_schedule(2900, date(2028, 1, 31), date(2028, 2, 29)) == {"2028-01": 2900}


def test_a_period_that_is_not_whole_months_falls_back_to_daily() -> None:
    assert monthly_schedule(10000, date(2026, 1, 15), date(2026, 3, 1)) is None
    monthly = line(period_start=date(2026, 1, 15), period_end=date(2026, 3, 1))
    assert schedule(monthly, date(2026, 1, 15), "monthly") == daily_schedule(
        10000, date(2026, 1, 15), date(2026, 3, 1)
    )


def test_a_credit_larger_than_what_is_left_reverses_the_excess() -> None:
    scheduled = monthly_schedule(1200, date(2026, 1, 1), date(2026, 4, 1))
    assert scheduled == {"2026-01": 400, "2026-02": 400, "2026-03": 400}
    after_first, reversal = apply_credit(scheduled, 1000, "2026-03")
    assert (after_first, reversal) == ({"2026-01": 400, "2026-02": 400, "2026-03": 0}, 600)
    after_second, second_reversal = apply_credit(after_first, 100, "2026-03")
    assert (after_second, second_reversal) == (after_first, 100)


def test_a_credit_within_what_is_left_scales_the_open_months() -> None:
    scheduled = {"2026-01": 400, "2026-02": 400, "2026-03": 400}
    after, reversal = apply_credit(scheduled, 300, "2026-02")
    assert reversal == 0
    assert after == {"2026-01": 400, "2026-02": 250, "2026-03": 250}


def test_the_default_policy_applies_to_lines_with_a_period_and_no_policy_of_their_own() -> None:
    assert policy_of(line(), "monthly") == "point_in_time"
    with_period = line(period_start=date(2026, 1, 1), period_end=date(2026, 2, 1))
    assert policy_of(with_period, "daily") == "daily"
    assert policy_of(with_period, "monthly") == "monthly"
    own = line(period_start=date(2026, 1, 1), period_end=date(2026, 2, 1), recognition="daily")
    assert policy_of(own, "monthly") == "daily"


periods = st.tuples(st.dates(date(2020, 1, 1), date(2030, 12, 31)), st.integers(1, 1000)).map(
    lambda pair: (pair[0], pair[0] + timedelta(days=pair[1]))
)
nets = st.integers(0, 10**12)


@given(nets, periods)
def test_a_daily_schedule_sums_to_the_net_and_each_month_is_within_one_of_its_share(
    net: int, period: tuple[date, date]
) -> None:
    start, end = period
    amounts = daily_schedule(net, start, end)
    assert sum(amounts.values()) == net
    days = (end - start).days
    for month, amount in amounts.items():
        year, number = map(int, month.split("-"))
        first = max(start, date(year, number, 1))
        following = date(year + number // 12, number % 12 + 1, 1)
        share = Fraction(net * ((min(following, end) - first).days), days)
        assert abs(amount - share) <= 1


@given(nets, st.dates(date(2020, 1, 1), date(2030, 12, 31)), st.integers(1, 60))
def test_a_monthly_schedule_sums_to_the_net(net: int, start: date, months: int) -> None:
    from subledger.domain.dates import add_months

    amounts = monthly_schedule(net, start, add_months(start, months))
    assert amounts is not None
    assert len(amounts) == months
    assert sum(amounts.values()) == net


@given(
    nets,
    periods,
    st.lists(st.tuples(st.integers(1, 10**12), st.integers(0, 40)), min_size=1, max_size=5),
)
def test_a_schedule_always_sums_to_the_net_minus_its_credits(
    net: int, period: tuple[date, date], credits: list[tuple[int, int]]
) -> None:
    start, end = period
    scheduled = daily_schedule(net, start, end)
    reversals = 0
    credited = 0
    for amount, months_after in credits:
        assume(credited + amount <= net)
        dated = start + timedelta(days=31 * months_after)
        credit_month = f"{dated.year:04d}-{dated.month:02d}"
        before = {m: a for m, a in scheduled.items() if m < credit_month}
        scheduled, reversal = apply_credit(scheduled, amount, credit_month)
        assert {m: a for m, a in scheduled.items() if m < credit_month} == before
        assert all(a >= 0 for a in scheduled.values())
        reversals += reversal
        credited += amount
    assert sum(scheduled.values()) - reversals == net - credited


@given(st.integers(1, 10**9), st.integers(0, 10**6), st.decimals("0.1", "10", places=3))
def test_a_point_in_time_line_is_recognized_in_its_issue_month(
    unit_amount: int, day: int, quantity: Decimal
) -> None:
    issued = date(2026, 1, 1) + timedelta(days=day % 3000)
    point = line(unit_amount=unit_amount, quantity=quantity)
    assert schedule(point, issued, "daily") == {f"{issued.year:04d}-{issued.month:02d}": point.net}
