"""`GET /metrics` of an app in one process, on SQLite: the counts kept in the process's memory
beside the facts read from the database (tests/e2e/test_metrics.py has the server with two
workers on PostgreSQL)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from subledger.api.http.app import create_app
from subledger.api.settings import Settings
from tests.conftest import API_KEYS, READ, WRITE
from tests.integration.test_mrr_api import EXAMPLE

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def scrape(client: TestClient) -> Samples:
    answer = client.get("/metrics", headers=READ)
    assert answer.status_code == 200, answer.text
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def requests_timed(samples: Samples, **labels: str) -> float:
    return sum(
        value
        for found, value in samples.get("subledger_http_request_duration_seconds_count", {}).items()
        if labels.items() <= dict(found).items()
    )


def test_one_process_shows_its_requests_by_route_template_and_the_log_as_the_database_holds_it(
    tmp_path: Path,
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'metrics.db'}", api_keys=API_KEYS)
    with TestClient(create_app(settings)) as client:
        before = scrape(client)  # the process's counters hold what earlier tests did too
        appended = client.post("/v1/events", json={"events": EXAMPLE}, headers=WRITE)
        assert appended.status_code == 201, appended.text
        refused = client.post(
            "/v1/events", content=b"x", headers={**WRITE, "Content-Type": "text/plain"}
        )
        assert refused.status_code == 415  # refused before any route is chosen
        missing = client.get("/v1/sync/messages/m-1", headers=READ)
        assert missing.status_code == 404
        deadline = time.monotonic() + 30
        while True:
            after = scrape(client)
            lags = after["subledger_projection_lag_events"]
            if set(lags.values()) == {0} or time.monotonic() > deadline:
                break
            time.sleep(0.05)

    def more(**labels: Any) -> float:
        return requests_timed(after, **labels) - requests_timed(before, **labels)

    # The example's seven events, at positions 1 to 7 of a new log, each projection at the end.
    assert after["subledger_events_appended_total"] == {(): 7}
    assert set(after["subledger_projection_position"].values()) == {7}
    assert set(after["subledger_projection_lag_events"].values()) == {0}
    assert after["subledger_store_up"] == {(): 1}
    # A store that can sync, with no target: no series of a target.
    assert after.get("subledger_sync_messages", {}) == {}
    # Each request under its route's template, the refusal before routing included.
    assert more(route="/v1/events", method="POST", status="201") == 1
    assert more(route="/v1/events", method="POST", status="415") == 1
    assert more(route="/v1/sync/messages/{message_id}", method="GET", status="404") == 1
    assert more(route="/v1/sync/messages/m-1") == 0
