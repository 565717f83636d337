""" "Today's" exchange rates: what `GET`/`PUT /_sandbox/rates` read and change."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from subledger.adapters.sandbox.accounting import BASE_CURRENCY
from subledger.adapters.sandbox.billy.envelope import Fields
from subledger.adapters.sandbox.billy.state import BillyData
from subledger.adapters.sandbox.fields import Record
from subledger.domain.money import is_currency


def rates_view(data: BillyData) -> Record:
    """Today's rates, by currency code in alphabetical order."""
    return {code: data.rates[code] for code in sorted(data.rates)}


def change_rates(data: BillyData, changes: Mapping[str, Any]) -> dict[str, str]:
    """Set the rates named (a number above 0), or forget them (null); all or nothing.

    Answers the problems, by currency code, when any is refused (and nothing changes)."""
    problems: dict[str, str] = {}
    f = Fields(changes, problems)
    wanted: dict[str, Fraction | None] = {}
    for code in changes:
        if not is_currency(code):
            f.fail(code, "is not an active ISO 4217 currency code")
        elif code == BASE_CURRENCY:
            f.fail(code, "is the base currency: its rate is always 1")
        else:
            wanted[code] = f.rate(code)
    if problems:
        return problems
    for code, rate in wanted.items():
        if rate is None:
            data.rates.pop(code, None)
        else:
            data.rates[code] = rate
    return {}
