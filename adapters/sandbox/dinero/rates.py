"""The day's exchange rates: what `GET`/`PUT /_sandbox/rates` read and change."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

from subledger.adapters.sandbox.accounting import BASE_CURRENCY
from subledger.adapters.sandbox.fields import Record, exact_number
from subledger.domain.money import CURRENCY_EXPONENTS

#: The largest rate `PUT /_sandbox/rates` takes (DKK per unit).
LARGEST_RATE: Final = 10_000


def rates_view(rates: Mapping[str, Fraction]) -> Record:
    """The day's rates by currency, DKK per unit, as exact decimals (`{"EUR": 7.4604}`)."""
    return {code: _decimal(rate) for code, rate in sorted(rates.items())}


def _decimal(rate: Fraction) -> Decimal:
    """A rate that came from a decimal, as that decimal (a terminating fraction)."""
    return Decimal(rate.numerator) / Decimal(rate.denominator)


def rate_problems(changes: Mapping[str, Any]) -> dict[str, str]:
    """What is wrong with a `PUT /_sandbox/rates` body: each key an active ISO 4217 code
    other than DKK, each value a number above 0 (at most `LARGEST_RATE`), or null to take the
    currency's rate away."""
    problems: dict[str, str] = {}
    for code, rate in changes.items():
        if code not in CURRENCY_EXPONENTS or code == BASE_CURRENCY:
            problems[code] = "must be an active ISO 4217 code other than DKK"
        elif rate is not None:
            number = exact_number(rate)
            if number is None or not 0 < number <= LARGEST_RATE:
                problems[code] = f"must be a number above 0 and at most {LARGEST_RATE}, or null"
    return problems
