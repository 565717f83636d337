"""What Billy's and Dinero's sandboxes compute alike, so that both compute it one way.

Both organizations keep their books in Danish kroner and start from the same "today's"
exchange rates; both take VAT off a line's total the same way (added on top of a net price, or
taken out of a price that includes it); and both count payment terms from the end of a month.
Amounts are integer minor units, rounded half away from zero once (`domain.money.rhu`).
"""

from __future__ import annotations

import calendar
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Final

from subledger.domain.money import rhu

#: The organization's base currency: every exchange rate is in it, and its own rate is 1.
BASE_CURRENCY: Final = "DKK"

#: "Today's" exchange rates at start and after a reset: DKK per one unit of each currency, as
#: decimals. Fixed, so that tests can compute with them; `PUT /_sandbox/rates` changes them
#: while a sandbox runs.
RATES: Final = {
    "EUR": "7.4604",
    "GBP": "8.6",
    "JPY": "0.0436",
    "KWD": "22.6",
    "NOK": "0.64",
    "SEK": "0.65",
    "USD": "6.9",
}


def seeded_rates() -> dict[str, Fraction]:
    """The exchange rates a sandbox starts with (and goes back to on a reset), exactly."""
    return {code: Fraction(Decimal(rate)) for code, rate in RATES.items()}


def included_vat(total: int, rate: Fraction) -> int:
    """The VAT inside a total that includes it: `rhu(total × rate / (1 + rate))`."""
    return rhu(total * rate / (1 + rate))


def split_vat(total: int, rate: Fraction, *, incl: bool) -> tuple[int, int]:
    """A line's net and VAT from its total: with `incl` the total includes VAT, which is taken
    out of it; otherwise the total is the net and the VAT is added on top (`rhu(net × rate)`)."""
    if incl:
        vat = included_vat(total, rate)
        return total - vat, vat
    return total, rhu(total * rate)


def month_end(day: date) -> date:
    """The last day of `day`'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])
