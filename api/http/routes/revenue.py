"""Revenue recognition (docs/specification.md §4): the monthly summary, an invoice's schedule, and
the waterfall."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from subledger.api.http.auth import ReadKey
from subledger.api.http.dependencies import ReaderDep
from subledger.api.http.errors import ApiError, ErrorCode
from subledger.api.http.parameters import AsOfParameters, MonthlyParameters, by_currency
from subledger.api.http.responses import OrjsonResponse, positioned
from subledger.api.http.schemas.answers import RevenueSchedule, RevenueSummary, RevenueWaterfall
from subledger.api.http.schemas.documents import READ_REFUSALS, refusals
from subledger.domain.invoice import Invoice
from subledger.projections import revenue

router = APIRouter(prefix="/v1/revenue", tags=["revenue"], responses=refusals(*READ_REFUSALS))


@router.get(
    "/summary",
    summary="Billed, credited, recognized and deferred revenue by month",
    response_model=RevenueSummary,
    responses=refusals(*READ_REFUSALS, ErrorCode.CURRENCY_REQUIRED),
)
def revenue_summary(_: ReadKey, reader: ReaderDep, query: MonthlyParameters) -> OrjsonResponse:
    return by_currency(reader, "revenue", query, revenue.currencies, revenue.summary)


@router.get(
    "/schedules/{invoice_id}",
    summary="An invoice's recognition schedule by line",
    response_model=RevenueSchedule,
    responses=refusals(ErrorCode.UNKNOWN_INVOICE),
)
def revenue_schedule(
    _: ReadKey,
    reader: ReaderDep,
    point: AsOfParameters,
    invoice_id: Annotated[str, Path(min_length=1, max_length=128)],
) -> OrjsonResponse:
    with reader.rows("revenue", point, [Invoice.id_for(invoice_id)]) as (position, rows):
        schedule = revenue.invoice_schedule(rows, invoice_id)
    if schedule is None:
        raise ApiError(ErrorCode.UNKNOWN_INVOICE, f"no invoice {invoice_id!r} (as of {position})")
    return positioned(schedule, position)


@router.get(
    "/waterfall",
    summary="Each billing month's revenue by the month it is recognized",
    response_model=RevenueWaterfall,
    responses=refusals(*READ_REFUSALS, ErrorCode.CURRENCY_REQUIRED),
)
def revenue_waterfall(_: ReadKey, reader: ReaderDep, query: MonthlyParameters) -> OrjsonResponse:
    return by_currency(reader, "revenue", query, revenue.currencies, revenue.waterfall, "rows")
