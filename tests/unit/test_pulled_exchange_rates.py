"""The exchange rate a payment taken in from a target carries: the rate the target recorded,
as an event's `exchange_rate` can hold it (docs/sync.md, "Two-way payments")."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from subledger.adapters.sync.pulled import recorded_rate


def test_a_rate_that_ends_is_kept_exactly() -> None:
    assert recorded_rate(Fraction("7.4604")) == Decimal("7.4604")
    assert str(recorded_rate(Fraction("7.4550"))) == "7.455", "no trailing zeros"
    assert str(recorded_rate(Fraction(100))) == "100"
    # Dinero's 931.88 kr. for 125.00 EUR: 931.88 / 125 = 7.45504.
    assert recorded_rate(Fraction(93188, 100) / Fraction(125)) == Decimal("7.45504")


def test_a_rate_that_does_not_end_is_given_to_ten_places_and_gives_back_the_kroner() -> None:
    # 317.07 kr. for 42.50 EUR: 7.460470588235294...
    rate = recorded_rate(Fraction(31707, 100) / Fraction(4250, 100))
    assert rate == Decimal("7.4604705882")
    # 42.50 × 7.4604705882 = 317.069999999 kr., 317.07 to the øre.
    assert round(Decimal("42.50") * Decimal(str(rate)), 2) == Decimal("317.07")


def test_no_rate_or_one_an_event_cannot_hold_is_none() -> None:
    assert recorded_rate(None) is None
    assert recorded_rate(Fraction(0)) is None
    assert recorded_rate(Fraction(-7)) is None
    assert recorded_rate(Fraction(10**6)) is None, "an event's rate is below a million"
    assert recorded_rate(Fraction(1, 10**11)) is None, "nothing left at ten places"
