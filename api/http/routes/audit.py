"""`GET /v1/audit/{kind}/{id}`: every event of one customer, subscription or invoice, with its
position and recorded time, and what each produced: recognized revenue per month, MRR and its
movements, journal entries and outbox messages.

The events are folded again, in memory, by the projections' own folds (`projections.audit`),
so what an event is said to have produced is what it did produce. A customer's audit takes in
its subscriptions and invoices. A subscription's or an invoice's lists its own events, folded
with the rest of its customer's story, on which what they produced depends. The closing of
periods is folded too (it moves entries past closed months) but not listed. As of
`position=` or `known_at=`, only the log up to that point is read.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from fastapi import APIRouter, Path

from subledger.api.http.auth import ReadKey
from subledger.api.http.dependencies import ChartDep, LedgerDep, ReaderDep
from subledger.api.http.errors import ApiError, ErrorCode
from subledger.api.http.event_data import logged_data, sealing_keys, type_of
from subledger.api.http.parameters import AsOfParameters
from subledger.api.http.projection_reads import AsOf, Reader
from subledger.api.http.responses import OrjsonResponse, iso_instant, positioned
from subledger.api.http.schemas.answers import AuditTrail
from subledger.api.http.schemas.documents import READ_REFUSALS, refusals
from subledger.domain.chart import Chart
from subledger.domain.customer import Customer
from subledger.domain.invoice import Invoice
from subledger.domain.ledger import Entry, Ledger
from subledger.domain.period import Period
from subledger.domain.subscription import Subscription
from subledger.projections import journal, mrr, outbox, revenue
from subledger.projections.audit import Audited, audit, net_additions, rows_put

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=refusals(*READ_REFUSALS))

Kind = Literal["customer", "subscription", "invoice"]
_UNKNOWN: Final = {
    "customer": ErrorCode.UNKNOWN_CUSTOMER,
    "subscription": ErrorCode.UNKNOWN_SUBSCRIPTION,
    "invoice": ErrorCode.UNKNOWN_INVOICE,
}
_PERIOD_EVENTS = (Period.FirstClosed, Period.Closed, Period.Reopened)


@router.get(
    "/{kind}/{item_id}",
    summary="Every event of a customer, subscription or invoice, and what each produced",
    response_model=AuditTrail,
    responses=refusals(*_UNKNOWN.values()),
)
def audit_trail(
    _: ReadKey,
    reader: ReaderDep,
    ledger: LedgerDep,
    chart: ChartDep,
    kind: Kind,
    item_id: Annotated[str, Path(min_length=1, max_length=128)],
    point: AsOfParameters,
) -> OrjsonResponse:
    position = reader.resolve(point)
    upto = ledger.last_position() if position is None else position
    aggregates, reported = _aggregates(reader, ledger, kind, item_id, upto)
    own = heapq.merge(
        *(ledger.iter_aggregate_entries(one, upto) for one in aggregates),
        key=lambda entry: entry.position,
    )
    periods = ledger.iter_entries(upto, _PERIOD_EVENTS)
    entries = heapq.merge(own, periods, key=lambda entry: entry.position)
    projections = list(reader.projections.values())
    audited = audit(projections, entries, lambda e: e.event.originator_id in reported)
    if not audited:
        raise ApiError(_UNKNOWN[kind], f"no {kind} {item_id!r} (as of {upto})")
    keys = sealing_keys(ledger, (one.entry.event for one in audited))
    events = [_event(one, chart, date.today(), keys) for one in audited]
    return positioned({"kind": kind, "id": item_id, "events": events}, upto)


def _aggregates(
    reader: Reader, ledger: Ledger, kind: Kind, item_id: str, upto: int
) -> tuple[list[UUID], set[UUID]]:
    """The aggregates whose events are folded, and those whose events are reported. A
    subscription's or an invoice's events are folded with the rest of its customer's story:
    what they produced depends on it (a cancellation is a churn or a contraction according to
    the customer's other subscriptions), and the MRR fold needs the customer's own row."""
    if kind == "customer":
        story = _story(reader, item_id)
        return story, set(story)
    own = (Subscription if kind == "subscription" else Invoice).id_for(item_id)
    first = next(ledger.iter_aggregate_entries(own, upto), None)
    if first is None:
        return [], set()
    customer_id: str = first.event.customer_id  # type: ignore[attr-defined]
    story = _story(reader, customer_id)
    return (story if own in story else [*story, own]), {own}


def _story(reader: Reader, customer_id: str) -> list[UUID]:
    """A customer, its subscriptions and its invoices, as the live projections name them (they
    name at least those of any past point)."""
    with reader.rows("mrr", AsOf(), customer_id=customer_id) as (_, rows):
        subscriptions = mrr.customer_subscriptions(rows, customer_id)
    with reader.rows("outbox", AsOf(), customer_id=customer_id) as (_, rows):
        invoices = outbox.customer_invoices(rows, customer_id)
    return [
        Customer.id_for(customer_id),
        *map(Subscription.id_for, subscriptions),
        *map(Invoice.id_for, invoices),
    ]


def _event(
    audited: Audited, chart: Chart, today: date, keys: Mapping[str, bytes | None]
) -> dict[str, Any]:
    entry: Entry = audited.entry
    event: Any = entry.event
    produced = audited.produced
    return {
        "position": entry.position,
        "id": event.event_id,
        "type": type_of(event),
        "occurred_at": iso_instant(event.occurred_at),
        "recorded_at": iso_instant(event.timestamp),
        "data": logged_data(event, keys),
        "produced": {
            "recognition": [
                {"currency": currency, "month": month, **amounts}
                for (currency, month), amounts in net_additions(
                    produced.get("revenue", []), revenue.MONTHS.name
                ).items()
            ],
            "mrr": [
                {"currency": currency, "month": month, **amounts}
                for (currency, month), amounts in net_additions(
                    produced.get("mrr", []), mrr.MONTHS.name
                ).items()
            ],
            "entries": [
                journal.render(chart, key, row, today)
                for key, row in rows_put(produced.get("journal", []), journal.ENTRIES.name)
            ],
            "outbox": [
                {"kind": row["kind"], "customer_id": row["lane"] or None}
                for _, row in rows_put(produced.get("outbox", []), outbox.MESSAGES.name)
            ],
        },
    }
