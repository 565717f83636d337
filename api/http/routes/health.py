"""`GET /health`: whether the store answers. Needs no key."""

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
        last_position = ledger.last_position()
    except Exception as error:  # any failure to answer is "unavailable", never a 500
        logger.warning("health check: the store did not answer: %s", error)
        return OrjsonResponse({"status": "unavailable", "store": store}, status_code=503)
    return OrjsonResponse({"status": "ok", "store": store, "last_position": last_position})
