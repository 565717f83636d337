"""Revenue recognition (docs/specification.md §3.1): an invoice line's net spread over calendar
months.

Months are `YYYY-MM` strings here (they sort in time order and are what the rows store). Every
division is exact integer arithmetic, rounded only by `rhu`; a schedule always adds up to the
line's net exactly.
"""

from __future__ import annotations

from datetime import date
from typing import Final, Literal

from subledger.domain.dates import add_months
from subledger.domain.values import InvoiceLine

Policy = Literal["daily", "monthly", "point_in_time"]
POLICIES: Final = ("daily", "monthly")


def rhu_div(numerator: int, denominator: int) -> int:
    """`rhu(numerator / denominator)` for a positive denominator, in integers."""
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def policy_of(line: InvoiceLine, default_policy: Policy) -> Policy:
    """The line's own recognition, else point-in-time without a period, else the default."""
    if line.recognition is not None:
        return line.recognition
    return "point_in_time" if line.period_start is None else default_policy


def schedule(
    line: InvoiceLine, issue_date: date, policy: Policy, net: int | None = None
) -> dict[str, int]:
    """The line's net (given, if known) by calendar month under `policy` (as `policy_of`
    gives it)."""
    net = line.net if net is None else net
    if policy == "point_in_time" or line.period_start is None or line.period_end is None:
        return {month_of(issue_date): net}
    if policy == "monthly":
        monthly = monthly_schedule(net, line.period_start, line.period_end)
        if monthly is not None:
            return monthly
    return daily_schedule(net, line.period_start, line.period_end)


def daily_schedule(net: int, start: date, end: date) -> dict[str, int]:
    """`cum(M) = rhu(net × d(M) / N)`, each month earning `cum(M) − cum(M − 1)`."""
    first, last = start.toordinal(), end.toordinal()
    days = last - first
    amounts: dict[str, int] = {}
    year, month = start.year, start.month
    previous = 0
    while True:
        year_after, month_after = (year + 1, 1) if month == 12 else (year, month + 1)
        month_end = date(year_after, month_after, 1).toordinal()
        cumulative = rhu_div(net * (min(month_end, last) - first), days)
        amounts[f"{year:04d}-{month:02d}"] = cumulative - previous
        if month_end >= last:
            return amounts
        previous = cumulative
        year, month = year_after, month_after


def monthly_schedule(net: int, start: date, end: date) -> dict[str, int] | None:
    """Service month `i` of `k` earns `rhu(net·i/k) − rhu(net·(i−1)/k)`, booked in the month it
    starts; `None` when the period is not a whole number of months from its start."""
    months = (end.year - start.year) * 12 + (end.month - start.month)
    if months < 1 or add_months(start, months) != end:
        return None
    amounts: dict[str, int] = {}
    for i in range(1, months + 1):
        starts = add_months(start, i - 1)
        amounts[month_of(starts)] = rhu_div(net * i, months) - rhu_div(net * (i - 1), months)
    return amounts


def apply_credit(
    scheduled: dict[str, int], credit: int, credit_month: str
) -> tuple[dict[str, int], int]:
    """A credit of `credit` dated in `credit_month` on a line's scheduled amounts (reversals not
    included): months before `credit_month` stay; the rest (`R`) are scaled to `R − C`, or, if
    `C > R`, set to 0 with the excess returned as a reversal (to book, negative, in
    `credit_month`). Returns the new scheduled amounts and the reversal (0 if none)."""
    later = sorted(month for month in scheduled if month >= credit_month)
    remaining = sum(scheduled[month] for month in later)
    changed = dict(scheduled)
    if credit > remaining:
        for month in later:
            changed[month] = 0
        return changed, credit - remaining
    left = remaining - credit
    cumulative = 0
    previous = 0
    for month in later:
        cumulative += scheduled[month]
        scaled = rhu_div(left * cumulative, remaining)
        changed[month] = scaled - previous
        previous = scaled
    return changed, 0
