"""MRR on 100,000 subscriptions over three years on PostgreSQL, beside raw PostgreSQL.

    python bench/mrr.py [--database-url postgresql://postgres@127.0.0.1:5432/test]
                        [--subscriptions 100000] [--queries 200] [--keep]

1. Appends the customer and subscription facts of a generated business (monthly, quarterly and
   yearly plans, trials, discounts, upgrades and downgrades, pauses, churn, backdated
   involuntary cancellations, returns, two currencies) until it has the subscriptions asked for,
   in batches of 1,000 through the ledger.
2. Reads the whole log with raw psycopg: rows/s.
3. Rebuilds the MRR projection in a process of its own: the time, events/s (and × the raw read)
   and peak memory.
4. Starts `subledger serve` and times, over real HTTP, a 36-month `/v1/metrics/mrr`, a 36-month
   `/v1/metrics/retention` and random customers' 36-month drill-downs; beside them, raw psycopg
   reading the same rows (the 36 months' running sums with a window function; one customer's row
   by key). It checks that every MRR answer keeps the movement identity and equals the raw sums.
5. Times answers as of a past position: the 36-month MRR as of the middle of the log, and
   drill-downs as of it.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    parser_for,
    percentiles,
    raw_read,
    rebuild,
    scratch_schema,
    server,
    timed,
    vacuum,
)
from subledger.adapters.store import store_env
from subledger.api.demo.generator import Business
from subledger.api.http.ingest import parse_submissions
from subledger.domain.ledger import Ledger

SECRET = "bench-reader-secret-0001"
CUSTOMERS_PER_CHUNK = 4000
SPAN = {"from": "2023-01", "to": "2025-12", "currency": "DKK"}
KINDS = ("customer.", "subscription.")


def append_subscriptions(url: str, wanted: int) -> tuple[int, int, list[str]]:
    """Append businesses' customer and subscription events until `wanted` subscriptions have
    started; returns the events and subscriptions appended and the ids of the customers with
    DKK subscriptions, in the order they were appended."""
    ledger = Ledger(store_env(url))
    events = subscriptions = chunk = 0
    customers: list[str] = []
    started = time.perf_counter()
    while subscriptions < wanted:
        business = Business(customers=CUSTOMERS_PER_CHUNK, seed=200 + chunk, close_periods=False)
        chosen, left_out = [], set()
        for event in business.events():
            if not event["type"].startswith(KINDS):
                continue
            subscription = event["data"].get("subscription_id")
            if event["type"] == "subscription.started" and subscriptions == wanted:
                left_out.add(subscription)
            if subscription in left_out:
                continue
            if event["type"] == "subscription.started":
                subscriptions += 1
                if event["data"]["currency"] == "DKK":
                    customers.append(event["data"]["customer_id"])
            chosen.append(event)
        for start in range(0, len(chosen), 1000):
            body = orjson.dumps({"events": chosen[start : start + 1000]})
            ledger.append(parse_submissions(body))
        events += len(chosen)
        chunk += 1
        rate = events / (time.perf_counter() - started)
        print(
            f"  appended {events:,} events, {subscriptions:,} subscriptions ({rate:,.0f}/s)",
            flush=True,
        )
    ledger.close()
    return events, subscriptions, list(dict.fromkeys(customers))


def raw_months(connection: psycopg.Connection[Any], schema: str) -> tuple[float, dict[str, int]]:
    """The MRR of every month with a change up to the span's end, as running sums of the
    stored changes, with one SQL statement."""
    started = time.perf_counter()
    rows = connection.execute(
        f"SELECT month, sum(mrr_change) OVER (ORDER BY month)"
        f" FROM {schema}.subledger_mrr_months WHERE currency = %s AND month <= %s",
        (SPAN["currency"], SPAN["to"]),
    ).fetchall()
    return time.perf_counter() - started, {month: int(mrr) for month, mrr in rows}


def raw_customer(connection: psycopg.Connection[Any], schema: str, customer_id: str) -> float:
    started = time.perf_counter()
    connection.execute(
        f"SELECT currencies FROM {schema}.subledger_mrr_customers WHERE customer_id = %s",
        (customer_id,),
    ).fetchone()
    return time.perf_counter() - started


def check(answer: dict[str, Any], raw: dict[str, int]) -> None:
    """The movement identity on every month, and the MRR the raw sums give."""
    previous = None
    for month in answer["months"]:
        if previous is not None:
            assert month["mrr"] == previous + sum(month["movements"].values()), month
        previous = month["mrr"]
        changed = [m for m in raw if m <= month["month"]]
        assert month["mrr"] == (raw[max(changed)] if changed else 0), month


def queries(url: str, database_url: str, schema: str, customers: list[str], count: int) -> None:
    chooser = random.Random(7)
    with (
        server(url, f"bench:{SECRET}:read", wait_seconds=600) as base,
        httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {SECRET}"}, timeout=600
        ) as client,
        psycopg.connect(database_url) as connection,
    ):
        timed(client, "/v1/metrics/mrr", **SPAN)  # waits for the projections
        mrr, raw, retention, drill, raw_drill = [], [], [], [], []
        for _ in range(count):
            elapsed, answer = timed(client, "/v1/metrics/mrr", **SPAN)
            raw_elapsed, raw_answer = raw_months(connection, schema)
            check(answer, raw_answer)
            mrr.append(elapsed)
            raw.append(raw_elapsed)
            retention.append(timed(client, "/v1/metrics/retention", **SPAN)[0])
            customer = chooser.choice(customers)
            drill.append(timed(client, f"/v1/customers/{customer}/mrr", **SPAN)[0])
            raw_drill.append(raw_customer(connection, schema, customer))
        # A live read reflects the whole log (nothing is appended meanwhile): its position.
        last = int(client.get("/v1/metrics/mrr", params=SPAN).headers["X-Log-Position"])
        middle = last // 2
        early = customers[: len(customers) // 4 or 1]  # known by the middle of the log
        past = [timed(client, "/v1/metrics/mrr", position=middle, **SPAN)[0] for _ in range(3)]
        past_drill = [
            timed(
                client,
                f"/v1/customers/{chooser.choice(early)}/mrr",
                position=middle,
                **SPAN,
            )[0]
            for _ in range(count // 4 or 1)
        ]
    report("36-month MRR, live", mrr, raw, "raw SQL running sums")
    report("36-month retention, live", retention, raw, "raw SQL running sums")
    report("one customer's drill-down, live", drill, raw_drill, "raw SQL row by key")
    p50, _ = percentiles(past)
    print(f"36-month MRR as of position {middle:,} (folded in memory): {p50:.2f} s")
    p50, p95 = percentiles(past_drill)
    print(f"drill-down as of position {middle:,}: p50 {ms(p50)}, p95 {ms(p95)}")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def report(what: str, samples: list[float], raw: list[float], raw_what: str) -> None:
    p50, p95 = percentiles(samples)
    raw50, raw95 = percentiles(raw)
    print(
        f"{what}: p50 {ms(p50)}, p95 {ms(p95)};"
        f" {raw_what}: p50 {ms(raw50)}, p95 {ms(raw95)} ({p50 / raw50:.1f}× at p50)"
    )


def main() -> None:
    parser = parser_for(__doc__)
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    arguments = parser.parse_args()
    database_url = arguments.database_url
    with scratch_schema(database_url, "bench_mrr", arguments.keep) as (schema, url):
        print(f"appending {arguments.subscriptions:,} subscriptions")
        events, subscriptions, customers = append_subscriptions(url, arguments.subscriptions)
        vacuum(database_url, schema, "subledger_events")
        raw = raw_read(database_url, schema)
        print(f"raw psycopg read of the log:  {raw:10,.0f} rows/s")
        result = rebuild(url, ["mrr"])
        rate = result["end"] / result["seconds"]
        print(
            f"fold of {subscriptions:,} subscriptions ({events:,} events):"
            f" {result['seconds']:.1f} s, {rate:,.0f} events/s ({rate / raw:.2f} × the raw read),"
            f" peak memory {result['peak_mib']:,.0f} MiB"
        )
        queries(url, database_url, schema, customers, arguments.queries)


if __name__ == "__main__":
    main()
