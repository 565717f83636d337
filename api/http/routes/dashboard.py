"""The dashboard at `/`: one page and its own scripts and styles, served by the API's app.

The page and its files need no key (they hold no data): the scripts call the JSON API with the
key the user types in. Everything it needs is in `api/http/static/`, so it works with no network
beyond this service. None of it is in the OpenAPI document.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from subledger.api.http.responses import OrjsonResponse
from subledger.domain.money import CURRENCY_EXPONENTS

STATIC: Final = Path(__file__).resolve().parent.parent / "static"

#: The page may load and call nothing but this service.
POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


@router.get("/")
def dashboard() -> FileResponse:
    return FileResponse(
        STATIC / "index.html",
        headers={
            "Content-Security-Policy": POLICY,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/dashboard/currencies.json")
def currency_exponents() -> OrjsonResponse:
    """How many decimals each currency's minor units have (2 for DKK, 0 for ISK), so that the
    page shows amounts in major units as the ledger means them."""
    return OrjsonResponse(CURRENCY_EXPONENTS, headers={"Cache-Control": "max-age=86400"})


def install_dashboard(app: FastAPI) -> None:
    """`/` and the files under `/dashboard/`."""
    app.include_router(router)
    app.mount("/dashboard", StaticFiles(directory=STATIC), name="dashboard")
