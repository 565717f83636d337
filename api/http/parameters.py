"""Query parameters shared by the read endpoints (months, currency, the point of the log), and
the answer per currency that the monthly reads share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import Depends, Query

from subledger.api.http.errors import ApiError, ErrorCode
from subledger.api.http.projection_reads import AsOf, Reader
from subledger.api.http.responses import OrjsonResponse, positioned
from subledger.domain.dates import Month
from subledger.domain.money import is_currency
from subledger.projections.engine import RowSource

#: The most months one answer covers.
MAX_MONTHS = 600

FromParameter = Annotated[
    str | None,
    Query(
        alias="from",
        pattern=r"^\d{4}-\d{2}$",
        description="the first month, YYYY-MM (by default 11 months before `to`)",
    ),
]
ToParameter = Annotated[
    str | None,
    Query(
        alias="to",
        pattern=r"^\d{4}-\d{2}$",
        description="the last month, YYYY-MM (by default this one)",
    ),
]
CurrencyParameter = Annotated[
    str | None,
    Query(
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217; may be left out where the data has one currency",
    ),
]


#: The largest position a query may name (PostgreSQL's bigint).
MAX_POSITION = 2**63 - 1

#: An instant as ISO 8601 with a zone, to the microsecond at most: `2026-01-31T23:59:59Z`.
INSTANT_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$"


def instant_of(text: str, name: str) -> datetime:
    """An instant from `YYYY-MM-DDTHH:MM[:SS[.ffffff]]` and a zone, in UTC; a refusal for
    anything else (a date that does not exist, a number of seconds, no zone)."""
    try:
        instant = datetime.fromisoformat(text)
        if instant.tzinfo is None:
            raise ValueError(text)
        return instant.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ApiError(
            ErrorCode.INVALID_REQUEST, f"{name}: {text} is not an instant like 2026-01-31T23:59:59Z"
        ) from None


def as_of(
    position: Annotated[
        int | None,
        Query(ge=0, le=MAX_POSITION, description="answer as of this position of the log"),
    ] = None,
    known_at: Annotated[
        str | None,
        Query(
            pattern=INSTANT_PATTERN,
            description="answer as the log stood at this instant (ISO 8601 with a zone)",
            examples=["2026-01-31T23:59:59Z"],
        ),
    ] = None,
) -> AsOf:
    return AsOf(position, None if known_at is None else instant_of(known_at, "known_at"))


AsOfParameters = Annotated[AsOf, Depends(as_of)]

_DAY = r"^\d{4}-\d{2}-\d{2}$"
FromDayParameter = Annotated[
    str | None,
    Query(
        alias="from",
        pattern=_DAY,
        description="the first day, YYYY-MM-DD (by default the first of this month)",
    ),
]
ToDayParameter = Annotated[
    str | None,
    Query(
        alias="to",
        pattern=_DAY,
        description="the last day, YYYY-MM-DD (by default the last of this month)",
    ),
]
CursorParameter = Annotated[
    str | None,
    Query(max_length=200, description="the `next` of the page before, to read on from there"),
]


def day_of(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ApiError(ErrorCode.INVALID_REQUEST, f"{name}: {text} is not a day") from None


def day_range(first: str | None, last: str | None) -> tuple[str, str]:
    """The days `first` to `last` as ISO dates; by default this month's."""
    month = Month.of(datetime.now(UTC).date())
    start = day_of(first, "from") if first else month.first_day
    end = day_of(last, "to") if last else month.last_day
    if start > end:
        raise ApiError(ErrorCode.INVALID_REQUEST, f"from ({start}) is after to ({end})")
    return start.isoformat(), end.isoformat()


@dataclass(frozen=True)
class MonthlyQuery:
    """A read over a range of months: the months, the currency asked for, the point of the log."""

    months: list[str]
    currency: str | None
    point: AsOf


def monthly_query(
    point: AsOfParameters,
    first: FromParameter = None,
    last: ToParameter = None,
    currency: CurrencyParameter = None,
) -> MonthlyQuery:
    return MonthlyQuery(month_range(first, last), checked_currency(currency), point)


MonthlyParameters = Annotated[MonthlyQuery, Depends(monthly_query)]


def month_range(first: str | None, last: str | None) -> list[str]:
    """The months `first` to `last`; by default the twelve months up to the current one."""
    try:
        end = Month.parse(last) if last else Month.of(datetime.now(UTC).date())
        start = Month.parse(first) if first else _back(end, 11)
    except ValueError as error:
        raise ApiError(ErrorCode.INVALID_REQUEST, str(error)) from None
    if start > end:
        raise ApiError(ErrorCode.INVALID_REQUEST, f"from ({start}) is after to ({end})")
    months = [start]
    while months[-1] < end:
        months.append(months[-1].next())
        if len(months) > MAX_MONTHS:
            raise ApiError(ErrorCode.INVALID_REQUEST, f"at most {MAX_MONTHS} months at once")
    return [str(month) for month in months]


def _back(month: Month, count: int) -> Month:
    for _ in range(count):
        month = month.previous()
    return month


def checked_currency(currency: str | None) -> str | None:
    if currency is not None and not is_currency(currency):
        raise ApiError(ErrorCode.INVALID_REQUEST, f"{currency} is not an ISO 4217 currency code")
    return currency


def pick_currency(currency: str | None, present: list[str]) -> str | None:
    """The currency asked for; else the data's only one; else a refusal naming them."""
    if currency is not None:
        return currency
    if len(present) > 1:
        raise ApiError(
            ErrorCode.CURRENCY_REQUIRED,
            f"the data has several currencies ({', '.join(present)}): name one with currency=",
        )
    return present[0] if present else None


def by_currency(
    reader: Reader,
    projection: str,
    query: MonthlyQuery,
    currencies: Callable[[RowSource], list[str]],
    answer: Callable[[RowSource, str | None, list[str]], Any],
    key: str = "months",
) -> OrjsonResponse:
    """`{"currency": ..., key: answer}` from one projection's rows: the currency asked for, or
    the data's only one (`None` where there is none yet), answered as of the query's point."""
    with reader.rows(projection, query.point) as (position, rows):
        chosen = pick_currency(query.currency, currencies(rows))
        body = {"currency": chosen, key: answer(rows, chosen, query.months)}
    return positioned(body, position)
