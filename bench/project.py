"""Projections on a log of a million events on PostgreSQL, beside raw reads of the same log.

    python bench/project.py [--database-url postgresql://postgres@127.0.0.1:5432/test]
                            [--events 1000000] [--keep]

1. Appends a generated business (thousands of customers over three years: plans, trials,
   discounts, upgrades, pauses, churn, credit notes, refunds, late payments, two currencies) in
   batches of 1,000 through the ledger, made in chunks so that it never sits in memory whole.
2. Reads the whole log with raw psycopg (binary, keyset pages of 2,000 rows): rows/s.
3. Rebuilds every projection in a process of its own: events/s of the log, and that process's
   peak memory.
4. Starts `subledger serve` and times the revenue summary on live rows, as of `known_at`
   instants across the log, and as of `position=` the end of the log.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.store import store_env  # noqa: E402
from api.generator import Business  # noqa: E402
from api.ingest import parse_submissions  # noqa: E402
from bench.harness import (  # noqa: E402
    parser_for,
    percentiles,
    raw_read,
    rebuild,
    scratch_schema,
    server,
    timed,
    vacuum,
)
from domain.ledger import Ledger  # noqa: E402

SECRET = "bench-reader-secret-0001"
CUSTOMERS_PER_CHUNK = 4000


def append_business(url: str, wanted: int) -> int:
    ledger = Ledger(store_env(url))
    appended = 0
    chunk = 0
    started = time.perf_counter()
    while appended < wanted:
        business = Business(
            customers=CUSTOMERS_PER_CHUNK, seed=100 + chunk, close_periods=chunk == 0
        )
        events = list(business.events())[: wanted - appended]
        for start in range(0, len(events), 1000):
            body = orjson.dumps({"events": events[start : start + 1000]})
            ledger.append(parse_submissions(body))
        appended += len(events)
        chunk += 1
        rate = appended / (time.perf_counter() - started)
        print(f"  appended {appended:,} events ({rate:,.0f}/s)", flush=True)
    ledger.close()
    return appended


def queries(url: str, database_url: str, schema: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with (
        server(url, f"bench:{SECRET}:read") as base,
        httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {SECRET}"}, timeout=600
        ) as client,
    ):
        span = {"from": "2023-01", "to": "2025-12", "currency": "DKK"}
        timed(client, "/v1/revenue/summary", **span)
        live = [timed(client, "/v1/revenue/summary", **span)[0] for _ in range(50)]
        results["live"] = percentiles(live)
        with psycopg.connect(database_url) as connection:
            moments = [
                connection.execute(
                    f"SELECT recorded_at FROM {schema}.subledger_log"
                    f" ORDER BY position OFFSET (SELECT count(*) * {share} / 100"
                    f" FROM {schema}.subledger_log) LIMIT 1"
                ).fetchone()[0]  # type: ignore[index]
                for share in (25, 50, 75)
            ]
        results["known_at"] = [
            timed(client, "/v1/revenue/summary", known_at=moment.isoformat(), **span)[0]
            for moment in moments
        ]
        last = client.get("/health").json()["last_position"]
        results["position"] = timed(client, "/v1/revenue/summary", position=last, **span)[0]
    return results


def main() -> None:
    parser = parser_for(__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    arguments = parser.parse_args()
    database_url = arguments.database_url
    with scratch_schema(database_url, "bench_project", arguments.keep) as (schema, url):
        print(f"appending {arguments.events:,} events")
        appended = append_business(url, arguments.events)
        vacuum(database_url, schema, "subledger_events", "subledger_log")
        raw = raw_read(database_url, schema)
        print(f"raw psycopg read of the log:       {raw:12,.0f} rows/s")
        result = rebuild(url)
        rate = result["end"] / result["seconds"]
        print(
            f"rebuild of every projection:       {rate:12,.0f} events/s"
            f"  ({result['seconds']:.1f} s, {rate / raw:.2f} × the raw read)"
        )
        print(f"peak memory of the rebuild:        {result['peak_mib']:12,.0f} MiB")
        answers = queries(url, database_url, schema)
        p50, p95 = answers["live"]
        print(
            f"revenue summary on live rows:      p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"
        )
        print(
            "revenue summary as of known_at at 25/50/75% of the log: "
            + ", ".join(f"{t:.2f} s" for t in answers["known_at"])
        )
        print(
            f"revenue summary as of position= the end ({appended:,} events): "
            f"{answers['position']:.2f} s"
        )


if __name__ == "__main__":
    main()
