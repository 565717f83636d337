"""Credentials of the accounting targets stay out of what an error says and of settings' reprs
(tests/e2e/test_secrets.py follows them through the running programs)."""

from __future__ import annotations

import httpx
import pytest

from subledger.adapters.sync.common import TargetSettings
from subledger.adapters.sync.http import TargetHTTP, credentials, masked
from subledger.adapters.sync.notify import NotifySettings
from subledger.adapters.sync.port import RejectedError, RetryableError, Trace
from subledger.api.settings import Settings

TOKEN = "a-billy-token-8c2f1e"
BEARER = "a-dinero-access-token-4b7d0a"


def quoting(status: int) -> httpx.MockTransport:
    """A target that answers `status` and quotes the credentials it was sent."""

    def answer(request: httpx.Request) -> httpx.Response:
        quoted = f"{request.headers.get('X-Access-Token')} / {request.headers.get('Authorization')}"
        return httpx.Response(status, json={"errorMessage": f"refused: {quoted}"})

    return httpx.MockTransport(answer)


def target(status: int) -> TargetHTTP:
    return TargetHTTP(
        "http://target.test",
        {"X-Access-Token": TOKEN},
        timeout=5,
        budget=None,
        explain=lambda response: str(response.json()["errorMessage"]),
        transport=quoting(status),
    )


@pytest.mark.parametrize(("status", "error"), [(401, RejectedError), (503, RetryableError)])
def test_a_target_quoting_the_credentials_it_refused_is_recorded_without_them(
    status: int, error: type[Exception]
) -> None:
    headers = {"Authorization": f"Bearer {BEARER}"}
    with pytest.raises(error) as raised:
        target(status).request(Trace(), "GET", "/contacts", headers=headers)
    said = str(raised.value)
    assert f": {status} refused: *** / ***" in said
    assert TOKEN not in said and BEARER not in said


def test_credentials_are_the_credential_headers_and_a_bearers_token() -> None:
    found = credentials(
        {"Accept": "application/json", "X-Access-Token": "t1", "authorization": "Bearer t2"}
    )
    assert found == ["t1", "Bearer t2", "t2"]
    assert masked("Bearer t2 and t1, t12", found) == "*** and ***, ***2"


def test_settings_never_show_a_credential_in_their_repr() -> None:
    target_settings = TargetSettings(
        name="dinero",
        kind="dinero",
        url="http://dinero.test",
        token="the-api-key-5e1d",
        client_id="client",
        client_secret="the-client-secret-9a0c",
    )
    notify = NotifySettings(smtp_host="mail.test", smtp_user="u", smtp_password="the-password-3f")
    service = Settings(api_keys="ops:the-api-key-secret-77b2:read")
    shown = repr(target_settings) + str(target_settings) + repr(notify) + repr(service)
    for secret in ("the-api-key-5e1d", "the-client-secret-9a0c", "the-password-3f", "77b2"):
        assert secret not in shown
