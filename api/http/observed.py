"""Every HTTP request, once answered, as one record for those that watch: the access log
(api/http/access_log.py) and the request histogram (api/http/metrics.py).

One plain ASGI middleware times the request, notes its answer's status and resolves the
template of its route (`/v1/customers/{customer_id}/mrr`, never the path: ids in paths are the
business's data, and the number of a histogram's series should stay that of the routes). It
runs inside the request ids' middleware, which has set the request's id by then, and outside
the limits', so that a request refused before routing (a body that is not JSON, say) is
recorded under the route its path and method match.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True, slots=True)
class Handled:
    """A request as answered."""

    request_id: str | None
    method: str
    #: The template of the route the request matched; None when it matched none (a 404).
    route: str | None
    status: int
    seconds: float


Observer = Callable[[Handled], None]


class ObservedRequests:
    """Tells each observer of every HTTP request, once it is answered (or has failed: a 500)."""

    def __init__(
        self,
        app: ASGIApp,
        routes: Callable[[], Iterable[BaseRoute]],
        observers: Sequence[Observer],
    ) -> None:
        self.app = app
        self.routes = routes
        self.observers = tuple(observers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        arrived = dict(scope)  # as it came: routing and mounts change the scope
        status = 500  # what the server answers if the app fails before answering

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            handled = Handled(
                request_id=scope.get("state", {}).get("request_id"),
                method=scope["method"],
                route=route_template(scope, arrived, self.routes()),
                status=status,
                seconds=time.perf_counter() - started,
            )
            for observer in self.observers:
                observer(handled)


def route_template(scope: Scope, arrived: Scope, routes: Iterable[BaseRoute]) -> str | None:
    """The path template of the route the request took (FastAPI's routes say so in `scope`),
    else of the one its path as it `arrived` matches (a mount's, as `/dashboard/{path}`, or a
    route's whose request was refused before routing): the first that matches its path and
    method, else the first that matches its path alone (a 405). None when none matches."""
    route = scope.get("route")
    if route is None:
        partial = None
        for context in iter_route_contexts(list(routes)):
            match, _ = context.matches(arrived)
            if match is Match.FULL:
                route = context
                break
            if match is Match.PARTIAL and partial is None:
                partial = context
        else:
            route = partial
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else None
