"""`POST /v1/events` (billing systems append) and `GET /v1/events` (the log, for replay)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from subledger.api.http.auth import ReadKey, WriteKey
from subledger.api.http.dependencies import LedgerDep
from subledger.api.http.errors import ErrorCode
from subledger.api.http.event_data import logged_data, sealing_keys, type_of
from subledger.api.http.ingest import parse_submissions
from subledger.api.http.parameters import MAX_POSITION
from subledger.api.http.responses import OrjsonResponse, iso_instant
from subledger.api.http.schemas.documents import (
    APPEND_EXAMPLES,
    BODY_REFUSALS,
    READ_REFUSALS,
    AppendAnswer,
    LogPage,
    refusals,
)
from subledger.domain.ledger import Ledger, Outcome

router = APIRouter(prefix="/v1", tags=["events"], responses=refusals(*READ_REFUSALS))


def _append(ledger: Ledger, body: bytes) -> list[Outcome]:
    return ledger.append(parse_submissions(body))


@router.post(
    "/events",
    summary="Append events",
    description=(
        'Appends one event or a batch of 1 to 1,000 (`{"events": [...]}`), whole or not at '
        "all, in order. Idempotent on each event's `id`: an id appended before with the same "
        "`type` and `data` is reported as `duplicate` and not appended again. Answers 201 when "
        "anything was appended, 200 when every event was a duplicate."
    ),
    status_code=201,
    response_model=AppendAnswer,
    responses={
        200: {"model": AppendAnswer, "description": "Every event was a duplicate"},
        **refusals(
            *BODY_REFUSALS,
            ErrorCode.EVENT_ID_REUSED,
            ErrorCode.ALREADY_EXISTS,
            ErrorCode.BATCH_TOO_LARGE,
            ErrorCode.INVALID_EVENT,
            ErrorCode.UNKNOWN_REFERENCE,
            ErrorCode.RULE_VIOLATED,
            ErrorCode.INVALID_REQUEST,
            ErrorCode.STORE_UNAVAILABLE,
            ErrorCode.CONTENDED,
        ),
    },
    openapi_extra={"x-append-body": True, "x-body-examples": APPEND_EXAMPLES},
)
async def append_events(request: Request, _: WriteKey, ledger: LedgerDep) -> OrjsonResponse:
    body = await request.body()  # within SUBLEDGER_MAX_BODY_BYTES (api.limits)
    outcomes = await run_in_threadpool(_append, ledger, body)
    results = [
        {
            "id": outcome.event_id,
            "status": "appended" if outcome.appended else "duplicate",
            "position": outcome.position,
        }
        for outcome in outcomes
    ]
    appended = any(outcome.appended for outcome in outcomes)
    return OrjsonResponse(
        {"results": results, "last_position": max(outcome.position for outcome in outcomes)},
        status_code=201 if appended else 200,
    )


@router.get(
    "/events",
    summary="Read the log",
    description=(
        "The log in order, after a position, with each event as it was appended; an erased "
        'customer\'s events leave out its personal fields and say `"erased": true`.'
    ),
    response_model=LogPage,
)
def read_events(
    _: ReadKey,
    ledger: LedgerDep,
    after: Annotated[
        int, Query(ge=0, le=MAX_POSITION, description="return events after this position")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> OrjsonResponse:
    page = ledger.read_log(after, limit)
    keys = sealing_keys(ledger, (logged.event for logged in page))
    events = [
        {
            "position": logged.position,
            "id": logged.event.event_id,  # type: ignore[attr-defined]
            "type": type_of(logged.event),
            "occurred_at": iso_instant(logged.event.occurred_at),  # type: ignore[attr-defined]
            "recorded_at": iso_instant(logged.recorded_at),
            "data": logged_data(logged.event, keys),
        }
        for logged in page
    ]
    position = events[-1]["position"] if events else after
    return OrjsonResponse({"events": events}, headers={"X-Log-Position": str(position)})
