"""Projections on a log of a million events on PostgreSQL, beside raw reads of the same log.

    python bench/project.py [--database-url postgresql://postgres@127.0.0.1:5432/test]
                            [--events 1000000] [--keep]

1. Appends a generated business (thousands of customers over three years: plans, trials,
   discounts, upgrades, pauses, churn, credit notes, refunds, late payments, two currencies) in
   batches of 1,000 through the ledger, made in chunks of customers so that it never sits in
   memory whole, and then closes the months of its first two years.
2. Reads the whole log with raw psycopg (binary, keyset pages of 2,000 rows): rows/s.
3. Rebuilds every projection in a process of its own: events/s of the log, and that process's
   peak memory.
4. Runs `subledger projections check` on the rebuilt rows: every journal entry balances, the
   trial balance balances on every day, deferred revenue matches recognition at every month
   end, and receivables match the log; fails the benchmark if any does not.
5. Starts `subledger serve` and times the revenue summary and the trial balance on live rows, a
   month's journal entries, the summary as of `known_at` instants across the log and as of
   `position=` the end of the log and drawn positions, and a month's entries as of drawn
   positions.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    parser_for,
    percentiles,
    raw_read,
    rebuild,
    scratch_schema,
    server,
    subledger,
    timed,
    vacuum,
)
from subledger.adapters.store import store_env  # noqa: E402
from subledger.api.demo.generator import Business  # noqa: E402
from subledger.api.http.ingest import parse_submissions  # noqa: E402
from subledger.domain.dates import Month  # noqa: E402
from subledger.domain.ledger import Ledger  # noqa: E402

SECRET = "bench-reader-secret-0001"
CUSTOMERS_PER_CHUNK = 4000


def append_business(url: str, wanted: int) -> int:
    """Append chunks of customers over the same three years, then close the first two years'
    months (as a business that has closed its books for them): `wanted` events in all."""
    ledger = Ledger(store_env(url))
    closing = [
        {"id": f"evt_close_{month}", "type": "period.closed", "data": {"period": str(month)}}
        for month in _months(Month(2023, 1), 24)
    ]
    appended = 0
    chunk = 0
    started = time.perf_counter()
    while appended < wanted - len(closing):
        business = Business(customers=CUSTOMERS_PER_CHUNK, seed=100 + chunk, close_periods=False)
        events = list(business.events())[: wanted - len(closing) - appended]
        for start in range(0, len(events), 1000):
            body = orjson.dumps({"events": events[start : start + 1000]})
            ledger.append(parse_submissions(body))
        appended += len(events)
        chunk += 1
        rate = appended / (time.perf_counter() - started)
        print(f"  appended {appended:,} events ({rate:,.0f}/s)", flush=True)
    ledger.append(parse_submissions(orjson.dumps({"events": closing})))
    ledger.close()
    return appended + len(closing)


def _months(first: Month, count: int) -> list[Month]:
    months = [first]
    while len(months) < count:
        months.append(months[-1].next())
    return months


def check(url: str) -> tuple[float, list[str]]:
    """`subledger projections check` on the rebuilt rows: its time and its findings."""
    started = time.perf_counter()
    done = subledger(url, "projections", "check")
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"the journal check failed:\n{done.stdout}{done.stderr[-2000:]}")
    return seconds, [line.strip() for line in done.stdout.splitlines()[1:] if line.strip()]


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
        balance = {"as_of": "2025-12-31", "currency": "DKK"}
        trial = [timed(client, "/v1/ledger/trial-balance", **balance)[0] for _ in range(50)]
        results["trial_balance"] = percentiles(trial)
        month = {"from": "2025-06-01", "to": "2025-06-30", "limit": 1000}
        pages = [timed(client, "/v1/ledger/entries", **month)[0] for _ in range(50)]
        results["entries"] = percentiles(pages)
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
        # A live read reflects the whole log (nothing is appended meanwhile): its position.
        live_answer = client.get("/v1/revenue/summary", params=span)
        last = int(live_answer.headers["X-Log-Position"])
        results["position"], at_end = timed(client, "/v1/revenue/summary", position=last, **span)
        if at_end != live_answer.json():
            raise RuntimeError("the summary as of the end of the log differs from the live one")
        drawn = random.Random(21).sample(range(1, last + 1), 10)
        results["positions"] = [
            timed(client, "/v1/revenue/summary", position=position, **span)[0] for position in drawn
        ]
        results["entries_as_of"] = [
            timed(client, "/v1/ledger/entries", position=position, **month)[0]
            for position in drawn[:5]
        ]
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
        seconds, findings = check(url)
        print(f"subledger projections check:       {seconds:12.1f} s")
        for finding in findings:
            print(f"  {finding}")
        answers = queries(url, database_url, schema)
        p50, p95 = answers["live"]
        print(
            f"revenue summary on live rows:      p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"
        )
        for name, label in (("trial_balance", "trial balance"), ("entries", "a month's entries")):
            p50, p95 = answers[name]
            print(
                f"{label + ', 1,000 a page:' if name == 'entries' else label + ':':34} "
                f"p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"
            )
        print(
            "revenue summary as of known_at at 25/50/75% of the log: "
            + ", ".join(f"{t:.2f} s" for t in answers["known_at"])
        )
        print(
            f"revenue summary as of position= the end ({appended:,} events): "
            f"{answers['position']:.2f} s (the same answer as live)"
        )
        drawn = sorted(answers["positions"])
        print(
            f"revenue summary as of position= at 10 drawn positions: "
            f"p50 {statistics.median(drawn):.2f} s, max {drawn[-1]:.2f} s"
        )
        drawn = sorted(answers["entries_as_of"])
        print(
            f"a month's entries as of position= at 5 drawn positions: "
            f"p50 {statistics.median(drawn):.2f} s, max {drawn[-1]:.2f} s"
        )


if __name__ == "__main__":
    main()
