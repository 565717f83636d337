"""MRR and ARR (docs/specification.md §3.2, §4): metrics with movements, retention, and one
customer's drill-down."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path

from subledger.api.http.auth import ReadKey
from subledger.api.http.dependencies import LedgerDep, ReaderDep
from subledger.api.http.errors import ApiError, ErrorCode
from subledger.api.http.parameters import (
    MonthlyParameters,
    by_currency,
    pick_currency,
)
from subledger.api.http.projection_reads import AsOf, Reader
from subledger.api.http.responses import OrjsonResponse, positioned
from subledger.api.http.schemas.answers import CustomerMrr, MrrMetrics, Retention
from subledger.api.http.schemas.documents import READ_REFUSALS, refusals
from subledger.domain.customer import Customer
from subledger.domain.ledger import Ledger
from subledger.domain.subscription import Subscription
from subledger.projections import mrr

router = APIRouter(tags=["mrr"], responses=refusals(*READ_REFUSALS))


@router.get(
    "/v1/metrics/mrr",
    summary="MRR, ARR, customers, ARPA and movements by month",
    response_model=MrrMetrics,
    responses=refusals(*READ_REFUSALS, ErrorCode.CURRENCY_REQUIRED),
)
def mrr_metrics(_: ReadKey, reader: ReaderDep, query: MonthlyParameters) -> OrjsonResponse:
    return by_currency(reader, "mrr", query, mrr.currencies, mrr.monthly)


@router.get(
    "/v1/metrics/retention",
    summary="Gross and net revenue retention and customer churn rate by month",
    response_model=Retention,
    responses=refusals(*READ_REFUSALS, ErrorCode.CURRENCY_REQUIRED),
)
def retention_metrics(_: ReadKey, reader: ReaderDep, query: MonthlyParameters) -> OrjsonResponse:
    return by_currency(reader, "mrr", query, mrr.currencies, mrr.retention)


@router.get(
    "/v1/customers/{customer_id}/mrr",
    summary="One customer's MRR by month, each movement with the events behind it",
    response_model=CustomerMrr,
    responses=refusals(*READ_REFUSALS, ErrorCode.CURRENCY_REQUIRED, ErrorCode.UNKNOWN_CUSTOMER),
    description=(
        "`erased` says whether the customer's personal data was erased at this point of the "
        "log; its numbers stay."
    ),
)
def customer_mrr(
    _: ReadKey,
    reader: ReaderDep,
    ledger: LedgerDep,
    customer_id: Annotated[str, Path(min_length=1, max_length=128)],
    query: MonthlyParameters,
) -> OrjsonResponse:
    aggregates = _customers_aggregates(reader, query.point, customer_id)
    with reader.rows("mrr", query.point, aggregates, customer_id=customer_id) as (position, rows):
        present = mrr.customer_currencies(rows, customer_id)
        if present is None:
            raise ApiError(
                ErrorCode.UNKNOWN_CUSTOMER, f"no customer {customer_id!r} (as of {position})"
            )
        chosen = pick_currency(query.currency, present)
        answer = mrr.customer_monthly(rows, customer_id, chosen, query.months)
    erased = _erased(ledger, customer_id, position)
    return positioned(
        {"customer_id": customer_id, "erased": erased, "currency": chosen, "months": answer},
        position,
    )


def _erased(ledger: Ledger, customer_id: str, position: int) -> bool:
    """Whether the customer was erased at `position` of the log (its numbers stay)."""
    return any(
        isinstance(entry.event, Customer.Erased)
        for entry in ledger.iter_aggregate_entries(Customer.id_for(customer_id), position)
    )


def _customers_aggregates(reader: Reader, point: AsOf, customer_id: str) -> list[UUID] | None:
    """For an answer as of a past point: the customer's aggregate and its subscriptions', whose
    events alone are folded (the live rows, which reflect at least that point, name them)."""
    if point == AsOf():
        return None
    with reader.rows("mrr", AsOf(), customer_id=customer_id) as (_, live):
        subscriptions = mrr.customer_subscriptions(live, customer_id)
    return [Customer.id_for(customer_id), *map(Subscription.id_for, subscriptions)]
