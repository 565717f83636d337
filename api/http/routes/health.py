"""`GET /health`: whether the store answers, and which kind of store it is. Needs no key, so it
says nothing of what the store holds: no counts, no log position (a read with a key says which
position it reflects in `X-Log-Position`)."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from subledger.api.http.dependencies import LedgerDep, StoreKindDep
from subledger.api.http.responses import OrjsonResponse
from subledger.api.http.schemas.documents import HealthAnswer

router = APIRouter(tags=["health"])
logger = logging.getLogger("subledger.api")


@router.get(
    "/health",
    response_model=HealthAnswer,
    responses={503: {"model": HealthAnswer, "description": "The store does not answer"}},
)
def health(ledger: LedgerDep, store: StoreKindDep) -> OrjsonResponse:
    try:
        ledger.last_position()  # the cheapest question the store must answer
    except Exception as error:  # any failure to answer is "unavailable", never a 500
        logger.warning("health check: the store did not answer: %s", error)
        return OrjsonResponse({"status": "unavailable", "store": store}, status_code=503)
    return OrjsonResponse({"status": "ok", "store": store})
