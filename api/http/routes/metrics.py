"""`GET /metrics`: the service's metrics in Prometheus' text format, for a key with `read`
(docs/operating.md, "Metrics")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from subledger.api.http.auth import ReadKey
from subledger.api.http.dependencies import ReaderDep, sync_service
from subledger.api.http.errors import ApiError
from subledger.api.http.metrics import CONTENT_TYPE, exposition
from subledger.api.http.schemas.documents import READ_REFUSALS, refusals
from subledger.api.sync import Sync

router = APIRouter(tags=["metrics"])


async def _sync_if_any(request: Request) -> Sync | None:
    """The app's sync service; None where there is none (a memory store syncs nothing)."""
    try:
        return await sync_service(request)
    except ApiError:
        return None


@router.get(
    "/metrics",
    summary="The service's metrics, in Prometheus' text format",
    description="HTTP requests by route, method and status; the log's last position; each"
    " projection's position and lag; the delivery log's messages by target and status, the"
    " oldest unsent one's wait, and the requests sent to each target by status. Under"
    " `serve --workers N` the counts are those of every worker.",
    response_class=Response,
    responses={
        200: {
            "description": "The metrics",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **refusals(*READ_REFUSALS),
    },
)
def metrics(
    _: ReadKey, reader: ReaderDep, sync: Annotated[Sync | None, Depends(_sync_if_any)]
) -> Response:
    return Response(exposition(reader, sync), media_type=CONTENT_TYPE)
