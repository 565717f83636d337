"""What the routes take from the app, as typed dependencies: a route names `ledger: LedgerDep`
and gets the app's ledger, without reaching into `request.app.state` itself.

Each function below reads one attribute of `app.state` (set by `api.http.app` when the app is
made and when it starts), and is the only place that reads it. They are `async` so that FastAPI
calls them on the event loop rather than in a worker thread: each is an attribute read.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from subledger.api.api_keys import ApiKeyRing
from subledger.api.http.errors import ApiError, ErrorCode
from subledger.api.http.projection_reads import Reader
from subledger.api.sync import Sync
from subledger.domain.chart import Chart
from subledger.domain.ledger import Ledger


async def ledger(request: Request) -> Ledger:
    """The event log."""
    found: Ledger = request.app.state.ledger
    return found


async def reader(request: Request) -> Reader:
    """The projections, read live or as of a past point of the log."""
    found: Reader = request.app.state.reader
    return found


async def chart(request: Request) -> Chart:
    """The chart of accounts."""
    found: Chart = request.app.state.chart
    return found


async def key_ring(request: Request) -> ApiKeyRing:
    """The API keys (those of the environment, and the key store once the app has started)."""
    found: ApiKeyRing = request.app.state.keys
    return found


async def store_kind(request: Request) -> str:
    """What the event store is (`memory`, `sqlite`, `postgresql`), as `/health` names it."""
    found: str = request.app.state.store_kind
    return found


async def sync_service(request: Request) -> Sync:
    """The sync service; a refusal where there is none (a memory store cannot sync)."""
    found: Sync | None = getattr(request.app.state, "sync", None)
    if found is None:
        raise ApiError(
            ErrorCode.SYNC_UNAVAILABLE, "syncing needs a database: use sqlite:/// or postgresql://"
        )
    return found


LedgerDep = Annotated[Ledger, Depends(ledger)]
ReaderDep = Annotated[Reader, Depends(reader)]
ChartDep = Annotated[Chart, Depends(chart)]
ApiKeyRingDep = Annotated[ApiKeyRing, Depends(key_ring)]
StoreKindDep = Annotated[str, Depends(store_kind)]
#: Declared after the route's key, so that a caller without one is refused 401 first.
SyncDep = Annotated[Sync, Depends(sync_service)]
