"""Rounding, currencies and calendar arithmetic."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from subledger.domain.dates import Month, add_months
from subledger.domain.money import extended_amount, is_currency, rhu, to_major, vat_of


def test_rhu_rounds_half_away_from_zero() -> None:
    assert [rhu(Fraction(5, 2)), rhu(Fraction(-5, 2)), rhu(Fraction(12, 5))] == [3, -3, 2]
    assert [rhu(Fraction(-12, 5)), rhu(Fraction(7, 2)), rhu(0), rhu(-7)] == [-2, 4, 0, -7]


@given(st.integers(-(10**12), 10**12), st.integers(1, 10**6))
def test_rhu_agrees_with_decimal_half_up(numerator: int, denominator: int) -> None:
    exact = Decimal(numerator) / Decimal(denominator)
    expected = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert rhu(Fraction(numerator, denominator)) == expected


def test_extended_amount_and_vat_are_exact() -> None:
    assert extended_amount(Decimal("1.5"), 999) == 1499  # 1498.5 rounds up
    assert extended_amount(Decimal("0.333333"), 3) == 1
    assert vat_of(10001, Decimal("0.25")) == 2500  # 2500.25
    assert vat_of(10002, Decimal("0.25")) == 2501  # 2500.5 rounds up


def test_currencies_are_iso_4217_codes_with_their_exponents() -> None:
    assert is_currency("DKK") and is_currency("JPY") and not is_currency("DKR")
    assert to_major(12345, "DKK") == Decimal("123.45")
    assert to_major(500, "JPY") == Decimal(500)
    assert to_major(1234, "KWD") == Decimal("1.234")


def test_add_months_clamps_to_the_last_day_from_the_start() -> None:
    start = date(2026, 1, 31)
    assert [add_months(start, k) for k in (1, 2, 3)] == [
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
    ]
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 11, 15), 2) == date(2027, 1, 15)
    assert add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)


def test_months_parse_step_and_bound() -> None:
    month = Month.parse("2028-02")
    assert (str(month), month.last_day, month.end) == (
        "2028-02",
        date(2028, 2, 29),
        date(2028, 3, 1),
    )
    assert (str(month.next()), str(month.previous())) == ("2028-03", "2028-01")
    assert str(Month(2026, 12).next()) == "2027-01"
