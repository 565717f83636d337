"""HTTP to an accounting target: one httpx client per target, its request budget, and the
translation of what went wrong into retryable or rejected.

Every request first waits for its slot in the target's budget (requests per minute, spaced
evenly and shared through the delivery log by every worker of every process), then is noted in
the attempt's trace without headers (so no token ever reaches a log). Timeouts and broken
connections, 408, 429, 480 (Dinero's "brownout" of an endpoint being retired) and 5xx raise
`RetryableError` (with `Retry-After` when the target sent one, as seconds or an HTTP date, at
most an hour); other 4xx raise `RejectedError` with the target's own words, less any credential
the request carried (a target that quotes the token it refused must not put it in the delivery
log, a notification or an answer of ours).

Money crosses as exact decimals both ways: a body's `Decimal`s are written as JSON numbers with
their own digits (`123.45`, never a float's approximation), and an answer's numbers with a
fraction are read as `Decimal`s, so that no amount passes through binary floating point.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Final

import httpx
import orjson

from subledger.adapters.sync.log import request_spacing
from subledger.adapters.sync.port import (
    MAX_RETRY_AFTER_SECONDS,
    RejectedError,
    RetryableError,
    Trace,
)

Budget = Callable[[], float]
"""Reserves the target's next request slot: the seconds to wait until it (0: go now)."""

Reserve = Callable[[int, datetime], float]
"""Reserves `count` request slots of a target's shared budget from an instant: the seconds from
then to the first slot (`DeliveryLog.take_requests`)."""


class RequestBudget:
    """One process's share of a target's request budget: slots reserved from the shared budget
    in blocks of up to a quarter of a second's worth (one slot at a time for budgets under 240
    a minute) and handed out one per request, so that a generous budget does not cost a
    database round trip per request. A slot whose time has passed unused is dropped, never
    spent late: requests keep the spacing the budget promises."""

    def __init__(
        self,
        reserve: Reserve,
        per_minute: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.reserve = reserve
        self.spacing = request_spacing(per_minute)
        self.block = max(1, per_minute // 240)
        self.clock = clock
        self._lock = threading.Lock()
        self._start = 0.0  # the block's first slot, in seconds since the epoch
        self._used = self.block  # slots of the block used or dropped

    def __call__(self) -> float:
        with self._lock:
            now = self.clock()
            at = now.timestamp()
            passed = math.ceil((at - self._start) / self.spacing)
            index = max(self._used, passed)
            if index >= self.block:
                self._start, index = at + self.reserve(self.block, now), 0
            self._used = index + 1
            slot = self._start + index * self.spacing
        return max(0.0, slot - at)


Explain = Callable[[httpx.Response], str]

#: The 4xx statuses that trying again later may cure.
RETRYABLE_STATUSES: Final = frozenset({408, 429, 480})
#: Request headers that carry a credential.
CREDENTIAL_HEADERS: Final = frozenset({"authorization", "x-access-token"})
MASK: Final = "***"


def exact_json(body: Any) -> bytes:
    """`body` as JSON, each `Decimal` written as a number with its own digits (`123.450` stays
    `123.450`; `1E+3` is `1000`)."""
    return orjson.dumps(body, default=_decimal_number)


def _decimal_number(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(format(value, "f"))
    raise TypeError(f"{type(value).__name__} cannot be sent as JSON")


def decimal_json(content: bytes) -> Any:
    """A JSON answer with every number that has a fraction or an exponent as a `Decimal`."""
    return json.loads(content, parse_float=Decimal)


def masked(text: str, secrets: Iterable[str]) -> str:
    """`text` with each of `secrets` in it replaced by `***`."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, MASK)
    return text


def credentials(headers: Mapping[str, str]) -> list[str]:
    """The credentials among request headers: each value, and a bearer's token alone."""
    found = []
    for name, value in headers.items():
        if name.lower() in CREDENTIAL_HEADERS and value:
            found.append(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.lower() in ("bearer", "basic"):
                found.append(token.strip())
    return found


class TargetHTTP:
    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        timeout: float,
        budget: Budget | None,
        explain: Explain,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.client = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )
        self.budget = budget
        self.explain = explain
        self.secrets = credentials(headers)
        #: Told of each request once it ends: the answer's status as text, or `timeout` or
        #: `unreachable` when none came (the composition root counts them for `GET /metrics`).
        self.on_request: Callable[[str], None] = _unobserved

    def request(
        self,
        trace: Trace,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The decoded JSON answer of a 2xx (None when it is empty); raises `RetryableError`
        or `RejectedError`."""
        self._wait_for_budget()
        started = time.perf_counter()
        line = f"{method} {path}"
        sent = dict(headers or {})
        content = None
        if json is not None:
            content = exact_json(json)
            sent["Content-Type"] = "application/json"
        try:
            response = self.client.request(
                method, path, params=params, content=content, headers=sent
            )
        except httpx.TimeoutException as error:
            self.on_request("timeout")
            trace.requests.append(f"{line} → timeout ({_ms(started)} ms)")
            raise RetryableError(f"{line}: timed out ({type(error).__name__})") from None
        except httpx.TransportError as error:
            self.on_request("unreachable")
            trace.requests.append(f"{line} → {type(error).__name__} ({_ms(started)} ms)")
            raise RetryableError(f"{line}: connection failed ({type(error).__name__})") from None
        self.on_request(str(response.status_code))
        trace.status = response.status_code
        trace.requests.append(f"{line} → {response.status_code} ({_ms(started)} ms)")
        if response.status_code >= 400:
            said = masked(self.explain(response), [*self.secrets, *credentials(headers or {})])
            if response.status_code in RETRYABLE_STATUSES or response.status_code >= 500:
                raise RetryableError(
                    f"{line}: {response.status_code} {said}",
                    response.status_code,
                    _retry_after(response),
                )
            raise RejectedError(
                f"{line}: {response.status_code} {said}",
                response.status_code,
                _decoded(response),
            )
        if not response.content:
            return None
        try:
            return decimal_json(response.content)
        except ValueError:
            raise RetryableError(f"{line}: an answer that is not JSON") from None

    def _wait_for_budget(self) -> None:
        if self.budget is None:
            return
        wait = self.budget()
        if wait > 0:
            time.sleep(wait)

    def close(self) -> None:
        self.client.close()


def _unobserved(status: str) -> None:
    """What a request's end tells when nobody listens."""


def _decoded(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds, given as seconds or as an HTTP date, at most
    `MAX_RETRY_AFTER_SECONDS`; None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    return None if value is None else retry_after_seconds(value, datetime.now(UTC))


def retry_after_seconds(value: str, now: datetime) -> float | None:
    """A `Retry-After` value (`120`, `1e12`, `Wed, 21 Oct 2026 07:28:00 GMT`) as the seconds to
    wait from `now`, between 0 and `MAX_RETRY_AFTER_SECONDS`; None when it is neither."""
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)
