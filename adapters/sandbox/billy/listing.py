"""Listing a collection: the filters each list honours, paging and the list envelope.

Lists honour exactly the filters Billy documents; a filter reads its query parameter (422
for a value it cannot take) and gives the test records must pass.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Final

from starlette.datastructures import URL, QueryParams

from subledger.adapters.sandbox.accounting import month_end
from subledger.adapters.sandbox.billy.envelope import validation_failed
from subledger.adapters.sandbox.billy.state import BillyData
from subledger.adapters.sandbox.fields import MALFORMED_DAY, Record, parse_day, query_text

MAX_PAGE_SIZE: Final = 1000

MONTH: Final = re.compile(r"([0-9]{4})-([0-9]{2})")
YEAR: Final = re.compile(r"[0-9]{4}")
#: A year and a part of it (`2025-2`), as `quarter:` and `halfYear:` periods name them.
YEAR_PART: Final = re.compile(r"([0-9]{4})-([0-9])")
#: `approvedTime` bounds, as Billy's filter examples write them (`2025-06-02 12:00:00`).
DATETIME: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}")

#: The states the `state` filters take (the sandbox never voids an invoice, so none is voided).
FILTER_STATES: Final = ("draft", "approved", "voided")


@dataclass(frozen=True)
class Query:
    """A request's query parameters and its URL (to build the paging links from)."""

    params: QueryParams
    url: URL


#: The records a list answers are tested by the filters its query names. A filter takes the
#: parameter's value (and the data, to look at other records) and gives the test; it raises
#: ValueError, with what to tell the client, for a value it cannot take.
Test = Callable[[Record], bool]
Filter = Callable[[BillyData, str], Test]

#: The forms of `entryDatePeriod` (Billy's examples; the sandbox's fiscal year is the calendar
#: year).
PERIOD_FORMS: Final = (
    "all, dates:YYYY-MM-DD...YYYY-MM-DD, day:YYYY-MM-DD, month:YYYY-MM, quarter:YYYY-N,"
    " halfYear:YYYY-N, year:YYYY or fiscalYear:YYYY"
)


def _equal(name: str) -> Filter:
    """The field is exactly the value; a field that is null matches nothing."""

    def build(data: BillyData, wanted: str) -> Test:
        return lambda record: record.get(name) is not None and query_text(record[name]) == wanted

    return build


def _exact(*names: str) -> dict[str, Filter]:
    return {name: _equal(name) for name in names}


def _flag(name: str) -> Filter:
    """A boolean field, asked for as `true` or `false`."""

    def build(data: BillyData, wanted: str) -> Test:
        if wanted not in ("true", "false"):
            raise ValueError("must be true or false")
        expected = wanted == "true"
        return lambda record: record.get(name) is expected

    return build


def _one_of(name: str, options: tuple[str, ...]) -> Filter:
    """An enumerated field, asked for by one of its values."""

    def build(data: BillyData, wanted: str) -> Test:
        if wanted not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return lambda record: record.get(name) == wanted

    return build


def _contains(*names: str) -> Filter:
    """`q`: the value is part of one of the fields, regardless of case."""

    def build(data: BillyData, wanted: str) -> Test:
        needle = wanted.casefold()
        return lambda record: any(
            needle in query_text(record.get(name)).casefold() for name in names
        )

    return build


def _date_bound(name: str, *, latest: bool) -> Filter:
    """`min...` (or, `latest`, `max...`): the date field is on or after (on or before) the
    value; a record without the date matches neither."""

    def build(data: BillyData, wanted: str) -> Test:
        parse_day(wanted, MALFORMED_DAY)
        if latest:
            return lambda record: record.get(name) is not None and record[name] <= wanted
        return lambda record: record.get(name) is not None and record[name] >= wanted

    return build


def _time_bound(name: str, *, latest: bool) -> Filter:
    """A bound on a time field (`2025-06-02 12:00:00`, or with a `T`), as `_date_bound`."""

    def build(data: BillyData, wanted: str) -> Test:
        problem = "must be a time as YYYY-MM-DD HH:MM:SS"
        if not DATETIME.fullmatch(wanted):
            raise ValueError(problem)
        bound = wanted.replace(" ", "T")
        try:
            datetime.fromisoformat(bound)
        except ValueError:
            raise ValueError(problem) from None
        if latest:
            return lambda record: record.get(name) is not None and record[name] <= bound
        return lambda record: record.get(name) is not None and record[name] >= bound

    return build


def _entry_date_period(data: BillyData, wanted: str) -> Test:
    """`entryDatePeriod`: the entry date lies in the period."""
    first, last = _period(wanted)
    return lambda record: first <= record["entryDate"] <= last


def _period(text: str) -> tuple[str, str]:
    """The first and last day of a period written as `entryDatePeriod` takes it."""
    kind, _, value = text.partition(":")
    try:
        span = _period_span(kind, value)
    except ValueError:
        span = None
    if span is None or span[0] > span[1]:
        raise ValueError(f"must be {PERIOD_FORMS}")
    return span[0].isoformat(), span[1].isoformat()


def _period_span(kind: str, value: str) -> tuple[date, date] | None:
    """A period's days, or None for a form it does not have (ValueError for a bad date)."""
    if kind == "all" and not value:
        return date.min, date.max
    if kind == "dates":
        first, separator, last = value.partition("...")
        return (parse_day(first), parse_day(last)) if separator else None
    if kind == "day":
        return parse_day(value), parse_day(value)
    month = MONTH.fullmatch(value)
    if kind == "month" and month:
        return _months(int(month[1]), int(month[2]), 1)
    part = YEAR_PART.fullmatch(value)
    if kind in ("quarter", "halfYear") and part:
        size = 3 if kind == "quarter" else 6
        if not 1 <= int(part[2]) <= 12 // size:
            return None
        return _months(int(part[1]), (int(part[2]) - 1) * size + 1, size)
    if kind in ("year", "fiscalYear") and YEAR.fullmatch(value):
        return _months(int(value), 1, 12)
    return None


def _months(year: int, first_month: int, count: int) -> tuple[date, date]:
    """The first day of `first_month` to the last day of the `count`th month from it."""
    last_month = first_month + count - 1
    if not 1 <= first_month <= last_month <= 12:
        raise ValueError("no such months")
    return date(year, first_month, 1), month_end(date(year, last_month, 1))


def _invoice_search(data: BillyData, wanted: str) -> Test:
    """`q` on invoices: part of the invoiceNo, of the contact's name or of a line's description
    (regardless of case); or, for a number, exactly the amount, the amount with VAT or the
    balance, in major units."""
    needle = wanted.casefold()
    figure = _query_number(wanted)

    def test(invoice: Record) -> bool:
        contact = data.tables["contacts"].get(invoice["contactId"]) or {}
        texts = [invoice["invoiceNo"], contact.get("name")]
        texts += [line["description"] for line in invoice["lines"]]
        if any(needle in query_text(text).casefold() for text in texts):
            return True
        amounts = (invoice["amount"], invoice["grossAmount"], invoice["balance"])
        return figure is not None and any(Fraction(money.major) == figure for money in amounts)

    return test


def _query_number(text: str) -> Fraction | None:
    """A query value read as a decimal number, or None when it is not one."""
    try:
        return Fraction(Decimal(text))
    except (InvalidOperation, ValueError, OverflowError):
        return None


INVOICE_FILTERS: Final[dict[str, Filter]] = {
    **_exact("contactId", "creditedInvoiceId", "invoiceNo", "externalId", "currencyId"),
    "state": _one_of("state", FILTER_STATES),
    "isPaid": _flag("isPaid"),
    "minEntryDate": _date_bound("entryDate", latest=False),
    "maxEntryDate": _date_bound("entryDate", latest=True),
    "entryDatePeriod": _entry_date_period,
    "minApprovedTime": _time_bound("approvedTime", latest=False),
    "maxApprovedTime": _time_bound("approvedTime", latest=True),
    "minDueDate": _date_bound("dueDate", latest=False),
    "maxDueDate": _date_bound("dueDate", latest=True),
    "q": _invoice_search,
}
TRANSACTION_FILTERS: Final[dict[str, Filter]] = {
    **_exact("daybookId", "apiType"),
    "state": _one_of("state", FILTER_STATES),
    "minEntryDate": _date_bound("entryDate", latest=False),
    "maxEntryDate": _date_bound("entryDate", latest=True),
    "q": _contains("description", "extendedDescription", "voucherNo"),
}
CONTACT_FILTERS: Final[dict[str, Filter]] = {
    "q": _contains("name"),
    "contactNo": _equal("contactNo"),
    "isCustomer": _flag("isCustomer"),
}
#: Products and accounts: `q` looks in the name only.
NAME_SEARCH: Final[dict[str, Filter]] = {"q": _contains("name")}


def _page_number(params: QueryParams, name: str, default: int, maximum: int | None) -> int:
    text = params.get(name)
    if text is None:
        return default
    value = int(text) if text.isdigit() else 0
    if value < 1:
        raise ValueError("must be a whole number from 1")
    if maximum is not None and value > maximum:
        raise ValueError(f"must be at most {maximum}")
    return value


def _query_checks(
    data: BillyData, params: QueryParams, singular: str, filters: Mapping[str, Filter]
) -> tuple[int, int, list[Test]]:
    """The page, the page size and the tests of the filters the query names (422 naming a
    bad one); every other parameter is ignored."""
    name = "page"
    try:
        page = _page_number(params, name, 1, None)
        name = "pageSize"
        size = _page_number(params, name, MAX_PAGE_SIZE, MAX_PAGE_SIZE)
        tests = []
        for name, value in params.items():
            if name in filters:
                tests.append(filters[name](data, value))
    except ValueError as error:
        raise validation_failed(singular, {name: str(error)}) from None
    return page, size, tests


def list_page(
    data: BillyData,
    plural: str,
    singular: str,
    records: Iterable[Record],
    query: Query,
    filters: Mapping[str, Filter],
) -> Record:
    """One page of the records that pass every filter given, in creation order."""
    page, size, tests = _query_checks(data, query.params, singular, filters)
    chosen = [record for record in records if all(test(record) for test in tests)]
    page_count = max(1, math.ceil(len(chosen) / size))

    def at(number: int) -> str:
        return str(query.url.include_query_params(page=number, pageSize=size))

    paging = {
        "page": page,
        "pageCount": page_count,
        "pageSize": size,
        "total": len(chosen),
        "firstUrl": at(1),
        "previousUrl": at(page - 1) if page > 1 else None,
        "nextUrl": at(page + 1) if page < page_count else None,
        "lastUrl": at(page_count),
    }
    meta = {"statusCode": 200, "success": True, "paging": paging}
    return {"meta": meta, plural: chosen[(page - 1) * size : page * size]}
