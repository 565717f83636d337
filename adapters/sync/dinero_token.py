"""The bearer token of a Dinero organization's personal integration, for the Dinero adapter
(`adapters.sync.dinero`): asked for with the API key's password grant, and renewed before
it expires."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Final

import httpx

from subledger.adapters.sync.common import TargetSettings
from subledger.adapters.sync.http import masked
from subledger.adapters.sync.port import RejectedError, RetryableError, Trace

DEFAULT_AUTH_URL: Final = "https://authz.dinero.dk/dineroapi/oauth/token"
AUTH_PATH: Final = "/dineroapi/oauth/token"
#: Renew a token when less than this is left of its life, in seconds.
RENEW_BEFORE_SECONDS: Final = 300.0


class DineroToken:
    """The organization's bearer token, shared by the target's workers: asked for with the
    API-key password grant, kept until `RENEW_BEFORE_SECONDS` seconds before it expires. The request
    is noted in the trace without its credentials."""

    def __init__(
        self,
        settings: TargetSettings,
        client: httpx.Client,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.client = client
        self.clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    def bearer(self, trace: Trace) -> str:
        with self._lock:
            if self._token is None or self.clock() >= self._renew_at:
                self._token, lifetime = self._ask(trace)
                self._renew_at = self.clock() + max(0.0, lifetime - RENEW_BEFORE_SECONDS)
            return self._token

    def forget(self, token: str) -> None:
        """Drop `token` (refused by Dinero before its time), unless a newer one replaced it."""
        with self._lock:
            if self._token == token:
                self._token = None

    def _ask(self, trace: Trace) -> tuple[str, float]:
        key = self.settings.token
        form = {"grant_type": "password", "scope": "read write", "username": key, "password": key}
        started = time.perf_counter()
        line = f"POST {httpx.URL(self.settings.token_url).path}"
        try:
            response = self.client.post(
                self.settings.token_url,
                data=form,
                auth=(self.settings.client_id, self.settings.client_secret),
            )
        except httpx.TransportError as error:
            trace.requests.append(f"{line} → {type(error).__name__}")
            raise RetryableError(f"{line}: no token ({type(error).__name__})") from None
        elapsed = round((time.perf_counter() - started) * 1000)
        trace.requests.append(f"{line} → {response.status_code} ({elapsed} ms)")
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(f"{line}: {response.status_code}", response.status_code)
        body = _json_object(response)
        if response.status_code != 200 or not body.get("access_token"):
            reason = body.get("error_description") or body.get("error") or response.text[:200]
            reason = masked(str(reason), (key, self.settings.client_secret))
            raise RejectedError(
                f"Dinero refused the token request ({response.status_code}: {reason}): check"
                f" client_id, client_secret and the API key of [targets.{self.settings.name}]",
                response.status_code,
            )
        return str(body["access_token"]), float(body.get("expires_in") or 3600)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
