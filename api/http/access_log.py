"""A line per HTTP request in the log (logger `subledger.access`, in the JSON format only:
api/logs.py): its request id, method, route, status and how long it took.

The route is the template the request matched (`/v1/customers/{customer_id}/mrr`), never the
path: ids in paths (a customer's, an invoice's) are the business's data, and a query string may
say more. No header (the API key is one), no body goes in.

Plain ASGI, like the request ids' middleware, which runs outside this one and so has set the
request's id by the time this one reads it.
"""

from __future__ import annotations

import logging
import time

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from subledger.api.logs import ACCESS_LOGGER

logger = logging.getLogger(ACCESS_LOGGER)

#: The route of a request no route of the app matched (a 404): its path is not logged.
UNMATCHED = "(unmatched)"


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        as_received = {"path": scope["path"], "root_path": scope.get("root_path", "")}
        status = 500  # what the server answers if the app fails before answering

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = route_template({**scope, **as_received})
            logger.info(
                "%s %s %s",
                scope["method"],
                route,
                status,
                extra={
                    "request_id": scope.get("state", {}).get("request_id"),
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )


def route_template(scope: Scope) -> str:
    """The path template of the route `scope` matched (FastAPI's routes say so in the scope;
    the others, such as the documentation's or the dashboard's files, are matched again: a
    mount's as `/dashboard/{path}`), else `UNMATCHED`. `scope` has the path as received."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    router = getattr(scope.get("app"), "router", None)
    found = UNMATCHED
    for candidate in getattr(router, "routes", ()):
        match, _ = candidate.matches(scope)
        template = getattr(candidate, "path", None)
        if match is Match.NONE or not isinstance(template, str):
            continue
        if hasattr(candidate, "routes"):  # a mount
            template += "/{path}"
        if match is Match.FULL:
            return template
        if found == UNMATCHED:  # the path's, with another method: a 405
            found = template
    return found
