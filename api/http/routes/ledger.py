"""The journal (docs/specification.md §3.3, §4): entries by day, the trial balance, and an
account's ledger card."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from subledger.api.http.auth import ReadKey
from subledger.api.http.dependencies import ChartDep, ReaderDep
from subledger.api.http.errors import ApiError, ErrorCode
from subledger.api.http.parameters import (
    AsOfParameters,
    CurrencyParameter,
    CursorParameter,
    FromDayParameter,
    ToDayParameter,
    checked_currency,
    day_of,
    day_range,
    pick_currency,
)
from subledger.api.http.projection_reads import AsOf
from subledger.api.http.responses import OrjsonResponse, positioned
from subledger.api.http.schemas.answers import AccountCard, LedgerEntries, TrialBalance
from subledger.api.http.schemas.documents import READ_REFUSALS, refusals
from subledger.projections import journal
from subledger.projections.engine import Between, RowKey

router = APIRouter(prefix="/v1/ledger", tags=["ledger"], responses=refusals(*READ_REFUSALS))

EntriesLimit = Annotated[int, Query(ge=1, le=1000, description="entries a page (at most 1,000)")]
CardLimit = Annotated[int, Query(ge=1, le=5000, description="entries read a page (at most 5,000)")]


@router.get(
    "/entries",
    summary="Journal entries booked from one day to another, a page at a time",
    response_model=LedgerEntries,
)
def ledger_entries(
    _: ReadKey,
    reader: ReaderDep,
    chart: ChartDep,
    point: AsOfParameters,
    first: FromDayParameter = None,
    last: ToDayParameter = None,
    currency: CurrencyParameter = None,
    after: CursorParameter = None,
    limit: EntriesLimit = 100,
) -> OrjsonResponse:
    start, end = day_range(first, last)
    wanted = checked_currency(currency)
    key = _cursor(after, (str, int, int)) if after else None
    with reader.rows("journal", point, keep=_entries_between(start, end)) as (position, rows):
        page, next_key = journal.entries_page(rows, start, end, key, limit)
    today = _today(point)
    entries = [
        journal.render(chart, key, row, today)
        for key, row in page
        if wanted is None or row["currency"] == wanted
    ]
    body = {
        "from": start,
        "to": end,
        "entries": entries,
        "next": journal.encode_cursor(list(next_key)) if next_key else None,
    }
    return positioned(body, position)


@router.get(
    "/trial-balance",
    summary="Every account's balance at the end of a day",
    response_model=TrialBalance,
    responses=refusals(*READ_REFUSALS, ErrorCode.CURRENCY_REQUIRED),
)
def ledger_trial_balance(
    _: ReadKey,
    reader: ReaderDep,
    chart: ChartDep,
    point: AsOfParameters,
    day: Annotated[
        str | None,
        Query(
            alias="as_of",
            pattern=r"^\d{4}-\d{2}-\d{2}$",
            description="the day, YYYY-MM-DD (by default today): entries booked up to its end",
        ),
    ] = None,
    currency: CurrencyParameter = None,
) -> OrjsonResponse:
    as_of = (day_of(day, "as_of") if day else _today(point)).isoformat()
    wanted = checked_currency(currency)
    with reader.rows("journal", point) as (position, rows):
        chosen = pick_currency(wanted, journal.currencies(rows))
        body = journal.trial_balance(rows, chart, chosen, as_of)
    return positioned(body, position)


@router.get(
    "/accounts/{account}",
    summary="An account's ledger card: its lines from one day to another, with running balance",
    response_model=AccountCard,
    responses=refusals(*READ_REFUSALS, ErrorCode.CURRENCY_REQUIRED, ErrorCode.UNKNOWN_ACCOUNT),
)
def ledger_account(
    _: ReadKey,
    reader: ReaderDep,
    chart: ChartDep,
    point: AsOfParameters,
    account: Annotated[str, Path(pattern=r"^[0-9]{1,10}$")],
    first: FromDayParameter = None,
    last: ToDayParameter = None,
    currency: CurrencyParameter = None,
    after: CursorParameter = None,
    limit: CardLimit = 1000,
) -> OrjsonResponse:
    role = chart.accounts().get(account)
    if role is None:
        raise ApiError(ErrorCode.UNKNOWN_ACCOUNT, f"the chart of accounts has no account {account}")
    start, end = day_range(first, last)
    wanted = checked_currency(currency)
    carried = _cursor(after, (str, int, int, int)) if after else None
    with reader.rows("journal", point, keep=_entries_between(start, end)) as (position, rows):
        chosen = pick_currency(wanted, journal.currencies(rows))
        lines: list[dict[str, Any]] = []
        next_key: RowKey | None = None
        opening = closing = 0
        if chosen is not None:
            if carried is None:
                opening = journal.account_balance(rows, chart, account, chosen, start)
            else:
                opening = carried[3]
            page, next_key = journal.entries_page(
                rows, start, end, tuple(carried[:3]) if carried else None, limit
            )
            lines, closing = journal.account_lines(chart, account, chosen, page, opening)
    body = {
        "account": account,
        "role": role,
        "currency": chosen,
        "from": start,
        "to": end,
        "opening_balance": opening,
        "lines": lines,
        "closing_balance": closing if next_key is None else None,
        "next": journal.encode_cursor([*next_key, closing]) if next_key else None,
    }
    return positioned(body, position)


def _cursor(text: str, shape: tuple[type, ...]) -> tuple[Any, ...]:
    parts = journal.decode_cursor(text, shape)
    if parts is None:
        raise ApiError(ErrorCode.INVALID_REQUEST, "after: not a cursor this read gave")
    return tuple(parts)


def _entries_between(start: str, end: str) -> Between:
    """For a read as of a past point: keep the entries booked in the days asked about."""
    return Between(journal.ENTRIES, start, end)


def _today(point: AsOf) -> date:
    """The day a read is about: the day of `known_at`, else today (UTC)."""
    moment = point.known_at or datetime.now(UTC)
    return moment.astimezone(UTC).date()
