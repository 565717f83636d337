"""`SUBLEDGER_LOG_FORMAT=json`: `subledger serve` on PostgreSQL logs one JSON object per line,
a line per request with its id, method, route template, status and duration, and never a key,
a customer's id or personal data (docs/operating.md)."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.builders import customer, invoice, wire_event
from tests.e2e.test_server import SUBLEDGER, serving

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SECRET = "json-logs-secret-key-8f3a1c"
WRONG = "json-logs-wrong-key-5d2e9b"
CUSTOMER = "cus_private_7731"
EMAIL = "ellen.hansen@example.com"
#: A request id that is not a token (it carries an e-mail address): the service makes its own.
NOT_A_TOKEN = f"id {EMAIL}"


def serve_and_ask(tmp_path: Path, url: str) -> tuple[list[str], dict[str, httpx.Response]]:
    """Serve in JSON, ask what the test needs, stop: the log's lines and the answers."""
    env = {
        **os.environ,
        "SUBLEDGER_DATABASE_URL": url,
        "SUBLEDGER_API_KEYS": f"everything:{SECRET}:events:write+read+admin",
        "SUBLEDGER_LOG_FORMAT": "json",
        "SUBLEDGER_LOG_LEVEL": "info",
    }
    key = {"Authorization": f"Bearer {SECRET}"}
    answers = {}
    with serving(tmp_path, env) as base, httpx.Client(base_url=base, timeout=30) as client:
        story = [
            wire_event(customer(CUSTOMER, email=EMAIL)),
            wire_event(invoice("inv_1", customer_id=CUSTOMER)),
        ]
        answers["append"] = client.post("/v1/events", json={"events": story}, headers=key)
        answers["mrr"] = client.get(
            f"/v1/customers/{CUSTOMER}/mrr",
            params={"known_at": datetime.now(UTC).isoformat()},
            headers={**key, "X-Request-Id": "trace-4711"},
        )
        answers["refused"] = client.get(
            "/v1/events", headers={"Authorization": f"Bearer {WRONG}", "X-Request-Id": NOT_A_TOKEN}
        )
        answers["unknown"] = client.get(f"/v1/nowhere/{CUSTOMER}", headers=key)
        answers["not_json"] = client.post(
            "/v1/events", content=b"x", headers={**key, "Content-Type": "text/plain"}
        )
    assert answers["append"].status_code == 201, answers["append"].text
    assert answers["mrr"].status_code == 200, answers["mrr"].text
    assert answers["refused"].status_code == 401
    assert answers["unknown"].status_code == 404
    assert answers["not_json"].status_code == 415
    return (tmp_path / "serve.log").read_text().splitlines(), answers


def test_serve_logs_json_lines_a_line_per_request_and_no_secret_or_personal_data(
    tmp_path: Path, postgres_url: str
) -> None:
    lines, answers = serve_and_ask(tmp_path, postgres_url)
    records: list[dict[str, Any]] = []
    for line in lines:
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys(), record
        moment = datetime.fromisoformat(record["time"])
        assert moment.utcoffset() == timedelta(0), record
        assert abs(datetime.now(UTC) - moment) < timedelta(minutes=10), record
        assert record["level"] in {"debug", "info", "warning", "error", "critical"}, record
    assert not [r for r in records if r["logger"] == "uvicorn.access"], "no second access log"

    access = [r for r in records if r["logger"] == "subledger.access"]
    for record in access:
        assert {"request_id", "method", "route", "status", "duration_ms"} <= record.keys()
        assert isinstance(record["duration_ms"], int | float) and record["duration_ms"] >= 0
    by_id = {}
    for name, answer in answers.items():
        request_id = answer.headers["X-Request-Id"]
        mine = [r for r in access if r["request_id"] == request_id]
        assert len(mine) == 1, (name, request_id, access)
        by_id[name] = mine[0]

    assert answers["mrr"].headers["X-Request-Id"] == "trace-4711"
    assert by_id["mrr"] | {"duration_ms": 0} == by_id["mrr"] | {
        "request_id": "trace-4711",
        "method": "GET",
        "route": "/v1/customers/{customer_id}/mrr",
        "status": 200,
        "duration_ms": 0,
    }
    assert (by_id["append"]["method"], by_id["append"]["route"]) == ("POST", "/v1/events")
    assert by_id["append"]["status"] == 201
    assert (by_id["refused"]["route"], by_id["refused"]["status"]) == ("/v1/events", 401)
    assert re.fullmatch(r"[0-9a-f]{16}", answers["refused"].headers["X-Request-Id"])
    assert (by_id["unknown"]["route"], by_id["unknown"]["status"]) == ("(unmatched)", 404)
    # Refused before routing, and logged under the route its path and method match.
    assert (by_id["not_json"]["route"], by_id["not_json"]["status"]) == ("/v1/events", 415)
    assert [r["route"] for r in access if r["route"] == "/health"], "the readiness polls"

    log = "\n".join(lines)
    known_at = str(answers["mrr"].request.url.params["known_at"])
    for secret in (SECRET, WRONG, "Bearer", "Authorization", CUSTOMER, EMAIL, known_at):
        assert secret.lower() not in log.lower(), secret
    assert "ellen" not in log.lower()


def test_an_unknown_log_format_is_refused(tmp_path: Path) -> None:
    """A typo in the setting stops the command, rather than logging in a format no collector
    expects."""
    result = subprocess.run(
        [SUBLEDGER, "version"],
        env={**os.environ, "SUBLEDGER_LOG_FORMAT": "jsno"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "SUBLEDGER_LOG_FORMAT must be one of text, json, not 'jsno'" in result.stderr
