"""JSON answers rendered with orjson (instants in UTC written with a `Z`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from starlette.responses import JSONResponse


class OrjsonResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_UTC_Z)


def positioned(body: Any, position: int) -> OrjsonResponse:
    """An answer with the log position it reflects in `X-Log-Position` (docs/specification.md
    §4)."""
    return OrjsonResponse(body, headers={"X-Log-Position": str(position)})


def iso_instant(moment: datetime | None) -> str | None:
    """An instant as ISO 8601, `Z` for UTC: `2026-01-15T10:00:00Z`."""
    if moment is None:
        return None
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
