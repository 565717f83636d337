"""Fault injection for the sandboxes: make a local API fail the way a real one does.

The dispatcher that talks to an accounting system must survive 500s, 429s, rate limits,
connections that break after the work was done and answers that come too late to wait for.
A real system does all of that rarely and never on demand, so each sandbox wraps its app in
`FaultInjector`, a plain ASGI middleware that does it on purpose, at rates set in
`FaultSettings` and changeable while it runs (`fault_routes`).

Nothing here knows about Billy: the paths it covers and the shape of its error bodies are
given by the sandbox that uses it, so a Dinero sandbox reuses it unchanged.

The order, for every request under one of the covered path prefixes:

1. `latency_ms`: sleep before anything else, so every answer (faults too) is that much later;
2. the rate limit: beyond `rate_limit` admitted requests in the last 60 s, 429 with
   `Retry-After` the whole seconds until a slot frees (the app is not called);
3. `throttle_rate`: 429 with `Retry-After: 1` (the app is not called);
4. `fail_rate`: 500 (the app is not called);
5. the app runs and its whole answer is held back;
6. `slow_rate`: sleep `slow_ms` after the work was done, so a client that gives up first does
   not know the outcome;
7. `drop_rate` (POST, PUT, PATCH and DELETE only): send the status line and headers with the
   real `Content-Length`, then break the connection, so the work is committed but the client
   gets an incomplete answer.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from math import ceil
from typing import Any, Final

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from subledger.adapters.sandbox.routes import (
    json_answer,
    json_object,
    settings_refused,
    validation_problems,
)

#: The length of the sliding window of the rate limit and of the peak in the stats, in seconds.
WINDOW_SECONDS: Final = 60.0
#: The methods whose answers `drop_rate` may break: those that change something.
WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Every kind of fault the stats count.
FAULT_KINDS: Final = ("latency", "rate_limit", "throttle", "fail", "slow", "drop")

logger = logging.getLogger("subledger.sandbox.faults")

#: Renders an error answer in the sandbox's own envelope: (status, error code, message) -> body.
ErrorBody = Callable[[int, str, str], bytes]


class FaultSettings(BaseModel):
    """What to break and how often; everything is off by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fail_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Share of requests answered 500 without work."
    )
    throttle_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of requests answered 429 (Retry-After: 1) without work.",
    )
    rate_limit: int = Field(
        default=0, ge=0, description="Requests admitted per sliding 60 s; 0 is no limit."
    )
    drop_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of writes whose connection breaks after the work was committed.",
    )
    latency_ms: int = Field(default=0, ge=0, le=600_000, description="Delay added to every answer.")
    slow_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of answers held back slow_ms after the work was done.",
    )
    slow_ms: int = Field(
        default=5000, ge=0, le=600_000, description="How long a slow answer waits."
    )
    seed: int | None = Field(
        default=None, description="Seed of the random draws, for a run that can be repeated."
    )


@dataclass(frozen=True)
class Refusal:
    """An answer given instead of calling the app."""

    kind: str
    status: int
    code: str
    message: str
    retry_after: int | None = None


@dataclass(frozen=True)
class Aftermath:
    """What happens to an answer the app has already produced."""

    slow_seconds: float
    drop: bool


class Faults:
    """The fault settings in force, their random draws, the rate limit's window and the stats.

    One object per sandbox, shared by the middleware (which asks it what to do) and the
    `/_sandbox` routes (which change it and read it). A lock makes every decision atomic, as
    requests may be decided from more than one thread. `clock` is a monotonic clock in seconds,
    replaceable so that tests can move time without waiting for it.
    """

    def __init__(
        self, settings: FaultSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._settings = settings
        self._random = random_draws(settings.seed)
        self._admitted: deque[float] = deque()
        self._arrivals: deque[float] = deque()
        self._peak = 0
        self._statuses: Counter[int] = Counter()
        self._injected: Counter[str] = Counter()

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def update(self, changes: Mapping[str, Any]) -> FaultSettings:
        """Apply the given settings over the current ones (the others stay as they are).

        Raises pydantic's `ValidationError` and changes nothing when the result is invalid.
        A new `seed` restarts the random draws from it.
        """
        with self._lock:
            settings = FaultSettings.model_validate({**self._settings.model_dump(), **changes})
            self._settings = settings
            if "seed" in changes:
                self._random = random_draws(settings.seed)
        return settings

    def reset(self) -> None:
        """Zero the stats, forget the rate limit's window and restart the draws from the seed.

        The settings themselves stay: they are how the sandbox was asked to behave."""
        with self._lock:
            self._random = random_draws(self._settings.seed)
            self._admitted.clear()
            self._arrivals.clear()
            self._peak = 0
            self._statuses.clear()
            self._injected.clear()

    def arrive(self) -> Refusal | None:
        """Note a request's arrival and decide whether it is refused before any work."""
        with self._lock:
            settings = self._settings
            now = self.clock()
            self._note_arrival(now)
            _forget_before(self._admitted, now - WINDOW_SECONDS)
            if settings.rate_limit:
                wait = self._seconds_until_a_slot(now, settings.rate_limit)
                if wait is not None:
                    return self._refuse(
                        "rate_limit",
                        429,
                        "TOO_MANY_REQUESTS",
                        f"Rate limit of {settings.rate_limit} requests a minute exceeded.",
                        wait,
                    )
            self._admitted.append(now)
            if self._draw(settings.throttle_rate):
                return self._refuse("throttle", 429, "TOO_MANY_REQUESTS", "Too many requests.", 1)
            if self._draw(settings.fail_rate):
                return self._refuse(
                    "fail", 500, "INTERNAL_SERVER_ERROR", "Internal server error (injected)."
                )
            return None

    def after_work(self, method: str) -> Aftermath:
        """Decide what happens to an answer once the app has done the work."""
        with self._lock:
            settings = self._settings
            slow = self._draw(settings.slow_rate)
            drop = method in WRITE_METHODS and self._draw(settings.drop_rate)
            if slow:
                self._injected["slow"] += 1
            if drop:
                self._injected["drop"] += 1
            return Aftermath(slow_seconds=settings.slow_ms / 1000 if slow else 0.0, drop=drop)

    def delayed(self) -> float:
        """The latency to add before this request is handled, in seconds (counted if any)."""
        with self._lock:
            latency = self._settings.latency_ms
            if latency:
                self._injected["latency"] += 1
            return latency / 1000

    def served(self, status: int) -> None:
        """Count an answer by the status it was sent (or started to be sent) with."""
        with self._lock:
            self._statuses[status] += 1

    def stats(self) -> dict[str, Any]:
        """Requests served, by status; faults injected, by kind; the busiest 60 s seen."""
        with self._lock:
            return {
                "requests_served": sum(self._statuses.values()),
                "by_status": {str(status): n for status, n in sorted(self._statuses.items())},
                "faults_injected": {kind: self._injected[kind] for kind in FAULT_KINDS},
                "peak_requests_in_60s": self._peak,
            }

    def _note_arrival(self, now: float) -> None:
        """Every covered request counts towards the peak, refused or not."""
        _forget_before(self._arrivals, now - WINDOW_SECONDS)
        self._arrivals.append(now)
        self._peak = max(self._peak, len(self._arrivals))

    def _seconds_until_a_slot(self, now: float, limit: int) -> int | None:
        """None when a request may be admitted now, else the whole seconds until one may."""
        if len(self._admitted) < limit:
            return None
        frees_at = self._admitted[len(self._admitted) - limit] + WINDOW_SECONDS
        return max(1, ceil(frees_at - now))

    def _refuse(
        self, kind: str, status: int, code: str, message: str, retry_after: int | None = None
    ) -> Refusal:
        self._injected[kind] += 1
        return Refusal(kind, status, code, message, retry_after)

    def _draw(self, rate: float) -> bool:
        """True with probability `rate`. A switch that is off draws nothing, so the same seed
        with the same switches on repeats the same faults."""
        return rate > 0 and self._random.random() < rate


class DroppedConnectionError(Exception):
    """Raised on purpose after a response has started, so the server breaks the connection."""


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging a traceback for each connection dropped on purpose (the
    middleware logs one line instead); every other exception is logged as before."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, DroppedConnectionError)


def _quiet_uvicorn_about_drops() -> None:
    server_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(known, _QuietDrops) for known in server_log.filters):
        server_log.addFilter(_QuietDrops())


class FaultInjector:
    """Plain ASGI middleware injecting the faults of `faults` into requests under `prefixes`.

    Other paths (the sandbox's own `/_sandbox` routes, above all) pass through untouched, so
    a test can always read and change a sandbox that is failing on purpose.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        faults: Faults,
        error_body: ErrorBody,
        prefixes: Sequence[str] = ("/v2",),
    ) -> None:
        self.app = app
        self.faults = faults
        self.error_body = error_body
        self.prefixes = tuple(prefixes)
        _quiet_uvicorn_about_drops()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._covers(scope["path"]):
            await self.app(scope, receive, send)
            return
        latency = self.faults.delayed()
        if latency:
            await asyncio.sleep(latency)
        refusal = self.faults.arrive()
        if refusal is not None:
            await self._refuse(refusal, send)
            return
        start, body = await self._run_app(scope, receive)
        aftermath = self.faults.after_work(scope["method"])
        if aftermath.slow_seconds:
            await asyncio.sleep(aftermath.slow_seconds)
        self.faults.served(start["status"])
        if aftermath.drop:
            await send(_with_length(start, len(body)))
            logger.warning(
                "fault: dropped the connection of %s %s after the work was done",
                scope["method"],
                scope["path"],
            )
            raise DroppedConnectionError("sandbox fault: connection dropped after the work")
        await send(start)
        await send({"type": "http.response.body", "body": body, "more_body": False})

    def _covers(self, path: str) -> bool:
        return any(path == prefix or path.startswith(prefix + "/") for prefix in self.prefixes)

    async def _run_app(self, scope: Scope, receive: Receive) -> tuple[Message, bytes]:
        """Let the app do the work and hold its whole answer back."""
        start: Message = {}
        chunks: list[bytes] = []

        async def hold(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, hold)
        return start, b"".join(chunks)

    async def _refuse(self, refusal: Refusal, send: Send) -> None:
        body = self.error_body(refusal.status, refusal.code, refusal.message)
        headers = [(b"content-type", b"application/json")]
        if refusal.retry_after is not None:
            headers.append((b"retry-after", str(refusal.retry_after).encode()))
        start = {"type": "http.response.start", "status": refusal.status, "headers": headers}
        self.faults.served(refusal.status)
        await send(_with_length(start, len(body)))
        await send({"type": "http.response.body", "body": body, "more_body": False})


def fault_routes(faults: Faults, prefix: str = "/_sandbox") -> APIRouter:
    """`GET`/`PUT {prefix}/faults` and `GET {prefix}/stats`, for any sandbox.

    `PUT` takes a JSON object of the settings to change (the others stay) and answers the
    settings now in force, or 422 with what was wrong and nothing changed.
    """
    router = APIRouter(prefix=prefix)

    @router.get("/faults", include_in_schema=False)
    async def read_faults() -> Response:
        return json_answer(faults.settings.model_dump())

    @router.put("/faults", include_in_schema=False)
    async def change_faults(request: Request) -> Response:
        changes = await json_object(request)
        if changes is None:
            return settings_refused("the body must be a JSON object of fault settings", {})
        try:
            settings = faults.update(changes)
        except ValidationError as error:
            return settings_refused("invalid fault settings", validation_problems(error))
        return json_answer(settings.model_dump())

    @router.get("/stats", include_in_schema=False)
    async def read_stats() -> Response:
        return json_answer(faults.stats())

    return router


def random_draws(seed: int | None) -> random.Random:
    """The draws of injected faults (and of Dinero's brownouts), which are not
    security-relevant; a seed makes a run repeatable."""
    return random.Random(seed)  # noqa: S311


def _forget_before(moments: deque[float], cutoff: float) -> None:
    while moments and moments[0] <= cutoff:
        moments.popleft()


def _with_length(start: Message, length: int) -> Message:
    """The response start with its real `Content-Length` (added when the app left it out)."""
    headers = [(name, value) for name, value in start.get("headers", [])]
    if not any(name.lower() == b"content-length" for name, _ in headers):
        headers.append((b"content-length", str(length).encode()))
    return {**start, "headers": headers}
