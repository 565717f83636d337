"""The running service against its own OpenAPI document, on PostgreSQL.

Schemathesis sends every operation of the document generated requests (ones that fit its
schema and ones that break it: wrong types, values out of range, missing or extra parameters,
odd strings) with a key that has every scope, to a real `subledger serve` on PostgreSQL with no
sync target configured. Every answer must be no 5xx, a status code the document lists for the
operation, with the content type, headers and body schema it documents; and a request that
breaks the document must be refused (4xx).

The operations are collected from the app's document (`create_app(...).openapi()`); the first
test checks that the running server serves that very document. The run is derandomized with a
fixed seed and bounded per operation, so that CI sees the same requests every time.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import httpx
import orjson
import pytest
import schemathesis

from subledger.api.http.app import create_app
from subledger.api.http.examples import EXAMPLE_EVENTS
from subledger.api.settings import Settings
from tests.e2e.test_server import serving

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SECRET = "schemathesis-every-scope-0123"
KEYS = f"everything:{SECRET}:events:write+read+admin"

#: What each answer is checked for. Left out: `positive_data_acceptance` (a well-formed event
#: may still break a rule of the ledger, a well-formed read name an invoice that does not
#: exist) and the checks of access, which tests/e2e/test_access.py makes route by route.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
)

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20260115,
        "headers": {"Authorization": f"Bearer {SECRET}"},
        "generation": {"max-examples": 30, "deterministic": True, "database": "none"},
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            "enabled": False,
            **{name: {"enabled": True} for name in CHECKS},
            # A batch over 1,000 events breaks the document's `maxItems` and is a 413.
            "negative_data_rejection": {
                "enabled": True,
                "expected-statuses": [400, 401, 403, 404, 409, 413, 415, 422],
            },
        },
        "request-timeout": 30,
    }
)

DOCUMENT = create_app(Settings(database_url="memory://", api_keys=KEYS)).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)


@pytest.fixture(scope="module")
def base_url(postgres_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One `subledger serve` on PostgreSQL (a schema of its own) for every operation, in a
    directory with no `subledger.toml` (the default chart of accounts, no sync target),
    holding the examples' story, so that the reads answer with numbers, entries and events."""
    env = {
        **os.environ,
        "SUBLEDGER_DATABASE_URL": f"{postgres_database_url}?schema=t_schemathesis_{uuid.uuid4().hex[:8]}",
        "SUBLEDGER_API_KEYS": KEYS,
    }
    with serving(tmp_path_factory.mktemp("serve"), env) as base:
        story = httpx.post(
            f"{base}/v1/events",
            json={"events": EXAMPLE_EVENTS},
            headers={"Authorization": f"Bearer {SECRET}"},
            timeout=30,
        )
        assert story.status_code == 201, story.text
        yield base


def test_the_server_serves_the_document_the_operations_come_from(base_url: str) -> None:
    served = httpx.get(f"{base_url}/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == DOCUMENT


@schema.parametrize()
def test_every_operation_answers_as_its_openapi_document_says(
    case: schemathesis.Case, base_url: str
) -> None:
    case.call_and_validate(base_url=base_url)


def test_the_server_refuses_a_chunked_body_over_the_limit_before_reading_it_all(
    base_url: str,
) -> None:
    """A body sent chunked (no Content-Length) to the real server: once a little more than the
    limit (5 MiB) is sent, the server answers 413 without waiting for the rest, which is never
    sent; nothing is appended and the server goes on answering."""
    host, port = base_url.removeprefix("http://").split(":")
    before = int(
        httpx.get(
            f"{base_url}/v1/metrics/mrr",
            params={"currency": "DKK"},
            headers={"Authorization": f"Bearer {SECRET}"},
            timeout=30,
        ).headers["X-Log-Position"]
    )
    chunk = b" " * 65536
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: " + host.encode() + b"\r\n"
            b"Authorization: Bearer " + SECRET.encode() + b"\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(5 * 1024 * 1024 // len(chunk) + 2):
            connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            received = connection.recv(65536)
            if not received:
                break
            answer += received
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer[:300]
    assert orjson.loads(body[body.index(b"{") :])["error"]["code"] == "BODY_TOO_LARGE"
    appended = httpx.get(
        f"{base_url}/v1/events",
        params={"after": before},
        headers={"Authorization": f"Bearer {SECRET}"},
        timeout=10,
    )
    assert appended.status_code == 200 and appended.json()["events"] == []
