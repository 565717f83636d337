"""`GET /metrics` of a busy `subledger serve --workers 2` on PostgreSQL, over real HTTP.

The server syncs to Billy's sandbox, which admits only a few requests a minute and throttles
and fails some more on top; meanwhile the test appends a business in batches and reads MRR and
revenue, each request on a connection of its own so that both workers take some. Then a scrape,
parsed with prometheus_client's own parser, is held to what the test did and to what the
database and the sandbox say, each counted apart from the code under test."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import server
from bench.sandboxes import Sandbox, configure, environment, prepare, sandbox
from subledger.api.demo.generator import Business

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(180)]

READER = "metrics-reader-secret-0123"
WRITER = "metrics-writer-secret-0123"
KEYS = f"scraper:{READER}:read,billing:{WRITER}:events:write"
BATCH = 25
#: The sandbox's own limit (requests admitted in any 60 s), far under the target's budget.
SANDBOX_LIMIT = 25
#: Requests that may be on their way back to us while the sandbox's stats are read: each
#: worker process's two dispatcher threads.
IN_FLIGHT = 4


def scrape(base: str, secret: str = READER) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of a scrape: family sample name → labels → value."""
    answer = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


def of(samples: dict[str, dict[Any, float]], name: str, **labels: str) -> float:
    """The sum of `name`'s samples that carry `labels`."""
    return sum(
        value
        for found, value in samples.get(name, {}).items()
        if labels.items() <= dict(found).items()
    )


def messages_in_the_delivery_log(postgres_url: str) -> int:
    base, _, schema = postgres_url.partition("?schema=")
    with psycopg.connect(base) as connection:
        row = connection.execute(f'SELECT count(*) FROM "{schema}".sync_messages').fetchone()
    assert row is not None
    return int(row[0])


def test_a_scrape_of_a_busy_two_worker_server_adds_up_what_both_workers_and_the_database_saw(
    postgres_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    events = list(Business(customers=25, months=4, seed=7, eur_percent=0).events())
    with sandbox("billy") as billy:
        prepare(billy, events)  # its products, made before any limit or fault
        baseline = billy.stats()
        billy.faults(rate_limit=SANDBOX_LIMIT, throttle_rate=0.1, fail_rate=0.05)
        run_and_check(billy, baseline, events, postgres_url, tmp_path, started)


def run_and_check(
    billy: Sandbox,
    baseline: dict[str, Any],
    events: list[dict[str, Any]],
    postgres_url: str,
    tmp_path: Path,
    started: float,
) -> None:
    config = configure(tmp_path / "subledger.toml", billy)
    # The server makes its directory of counts in the temporary directory: this one.
    counts_here = tmp_path / "tmp"
    counts_here.mkdir()
    env = {**environment(postgres_url, config), "TMPDIR": str(counts_here)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    writer = {"Authorization": f"Bearer {WRITER}"}
    reader = {"Authorization": f"Bearer {READER}"}

    with server(postgres_url, KEYS, workers=2, base_env=env, wait_seconds=60) as base:
        # Refused without a key, and with a key that lacks `read`.
        assert httpx.get(f"{base}/metrics", timeout=10).status_code == 401
        assert httpx.get(f"{base}/metrics", headers=writer, timeout=10).status_code == 403

        appended = posts = reads = 0
        last_position = 0
        for start in range(0, len(events), BATCH):
            body = orjson.dumps({"events": events[start : start + BATCH]})
            answer = httpx.post(f"{base}/v1/events", content=body, headers=writer, timeout=60)
            posts += 1
            assert answer.status_code == 201, answer.text
            results = answer.json()["results"]
            appended += sum(1 for result in results if result["status"] == "appended")
            last_position = max(last_position, answer.json()["last_position"])
            for path in ("/v1/metrics/mrr", "/v1/revenue/summary"):
                read = httpx.get(
                    f"{base}{path}", params={"currency": "DKK"}, headers=reader, timeout=60
                )
                reads += 1
                assert read.status_code == 200, read.text
        assert appended == len(events)

        # Once every projection has folded the log and the sandbox has refused us, the
        # delivery log's total is steady (both workers enqueue every second).
        deadline = time.monotonic() + 40
        while True:
            samples = scrape(base)
            folded = all(
                value == last_position
                for value in samples["subledger_projection_position"].values()
            )
            limited = of(samples, "subledger_sync_requests_total", status="429") > 0
            total = of(samples, "subledger_sync_messages", target="billy")
            if folded and limited and total == messages_in_the_delivery_log(postgres_url):
                break
            assert time.monotonic() < deadline, samples
            time.sleep(0.5)

        before = billy.stats()
        samples = scrape(base)
        after = billy.stats()
        workers_counting = {
            path.name for path in counts_here.glob("subledger-metrics-*/histogram_*.db")
        }

    # The log: everything the test appended, and nothing else.
    assert of(samples, "subledger_events_appended_total") == appended == last_position
    assert of(samples, "subledger_store_up") == 1
    # Each projection at the log's end, nothing to fold.
    projections = samples["subledger_projection_position"]
    assert {dict(labels)["projection"] for labels in projections} == {
        "revenue",
        "mrr",
        "journal",
        "outbox",
    }
    assert set(projections.values()) == {last_position}
    assert set(samples["subledger_projection_lag_events"].values()) == {0}
    # The delivery log: each status of the one target, adding up to the messages it holds.
    statuses = {
        dict(labels)["status"]
        for labels in samples["subledger_sync_messages"]
        if dict(labels)["target"] == "billy"
    }
    assert {"pending", "sending", "sent", "failed"} <= statuses
    assert of(samples, "subledger_sync_messages", target="billy") > 0
    waited = of(samples, "subledger_sync_oldest_pending_seconds", target="billy")
    assert 0 <= waited <= time.monotonic() - started
    # Requests to the target by status, as the sandbox answered them (both workers sync).
    ours = {
        dict(labels)["status"]: value
        for labels, value in samples["subledger_sync_requests_total"].items()
        if dict(labels)["target"] == "billy"
    }
    assert ours.get("429", 0) >= 1, ours
    assert after["faults_injected"]["rate_limit"] >= 1, "the sandbox's limit refused us"
    already = Counter(baseline["by_status"])
    theirs_before = Counter(before["by_status"]) - already
    theirs_after = Counter(after["by_status"]) - already
    for status, count in ours.items():
        assert theirs_before[status] - IN_FLIGHT <= count <= theirs_after[status], status
    assert theirs_before.total() - IN_FLIGHT <= sum(ours.values()) <= theirs_after.total()
    # Every request the test made, whichever of the two workers took it.
    assert len(workers_counting) >= 2, "both workers counted requests"
    duration = "subledger_http_request_duration_seconds_count"
    assert of(samples, duration, route="/v1/events", method="POST", status="201") == posts
    mrr_reads = of(samples, duration, route="/v1/metrics/mrr", method="GET", status="200")
    revenue_reads = of(samples, duration, route="/v1/revenue/summary", method="GET")
    assert mrr_reads + revenue_reads == reads
    assert of(samples, duration, route="/metrics", status="401") == 1
    assert of(samples, duration, route="/metrics", status="403") == 1
    # The server's directory of counts is gone with it.
    assert list(counts_here.iterdir()) == []
