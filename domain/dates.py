"""Calendar arithmetic for business dates: months, month ends and `add_months`.

Business effect is a `date` (when service starts, when a payment was received); the log's own
time is a timezone-aware instant. Service periods are half-open: `[start, end)`.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

_MONTH_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")


def days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def add_months(start: date, months: int) -> date:
    """`start` moved by whole months, clamped to the month's last day (31 Jan + 1 = 28 Feb)."""
    index = start.year * 12 + (start.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(start.day, days_in_month(year, month)))


@dataclass(frozen=True, order=True, slots=True)
class Month:
    """A calendar month, written `YYYY-MM`."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1 <= self.year <= 9999:
            raise ValueError(f"not a month: {self.year:04d}-{self.month:02d}")

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    @classmethod
    def parse(cls, text: str) -> Month:
        """Parse `YYYY-MM`; raises `ValueError` on anything else."""
        match = _MONTH_PATTERN.match(text)
        if match is None:
            raise ValueError(f"not a month (YYYY-MM): {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return date(self.year, self.month, days_in_month(self.year, self.month))

    @property
    def end(self) -> date:
        """The first day after the month: the exclusive end of `[first_day, end)`."""
        return self.last_day + timedelta(days=1)

    def next(self) -> Month:
        return Month.of(self.end)

    def previous(self) -> Month:
        return Month.of(self.first_day - timedelta(days=1))

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"
