"""A line per HTTP request in the log (logger `subledger.access`, in the JSON format only:
api/logs.py): its request id, method, route, status and how long it took.

The route is the template the request matched (`/v1/customers/{customer_id}/mrr`), never the
path: ids in paths (a customer's, an invoice's) are the business's data, and a query string may
say more. No header (the API key is one), no body goes in.

An observer of the requests' middleware (api/http/observed.py), which times each request and
resolves its route.
"""

from __future__ import annotations

import logging

from subledger.api.http.observed import Handled
from subledger.api.logs import ACCESS_LOGGER

logger = logging.getLogger(ACCESS_LOGGER)

#: The route of a request no route of the app matched (a 404): its path is not logged.
UNMATCHED = "(unmatched)"


def log_access(handled: Handled) -> None:
    """The request's line, when the access log logs at all."""
    if not logger.isEnabledFor(logging.INFO):
        return
    route = UNMATCHED if handled.route is None else handled.route
    logger.info(
        "%s %s %s",
        handled.method,
        route,
        handled.status,
        extra={
            "request_id": handled.request_id,
            "method": handled.method,
            "route": route,
            "status": handled.status,
            "duration_ms": round(handled.seconds * 1000, 1),
        },
    )
