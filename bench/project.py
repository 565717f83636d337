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

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
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
from domain.ledger import Ledger  # noqa: E402

SECRET = "bench-reader-secret-0001"
CUSTOMERS_PER_CHUNK = 4000

REBUILD = """
import json, resource, sys, time
from api.bootstrap import build_ledger, build_runner
from api.settings import Settings
settings = Settings()
ledger = build_ledger(settings)
runner = build_runner(settings, ledger)
runner.prepare()
started = time.perf_counter()
end = runner.rebuild(list(runner.projections))
elapsed = time.perf_counter() - started
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"end": end, "seconds": elapsed, "peak_mib": peak_kib / 1024}))
"""


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


def raw_read(database_url: str, schema: str) -> float:
    """Rows per second reading the whole log with psycopg, binary, keyset pages of 2,000."""
    with psycopg.connect(database_url) as connection:
        cursor = connection.cursor(binary=True)
        started = time.perf_counter()
        after, count = 0, 0
        while True:
            cursor.execute(
                f"SELECT notification_id, originator_id, originator_version, topic, state"
                f" FROM {schema}.subledger_events WHERE notification_id > %s"
                " ORDER BY notification_id LIMIT 2000",
                (after,),
            )
            rows = cursor.fetchall()
            if not rows:
                break
            count += len(rows)
            after = rows[-1][0]
        return count / (time.perf_counter() - started)


def rebuild(url: str) -> dict[str, Any]:
    env = {**os.environ, "SUBLEDGER_DATABASE_URL": url}
    output = subprocess.run(
        [sys.executable, "-c", REBUILD],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def timed(client: httpx.Client, path: str, **params: Any) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    answer = client.get(path, params=params)
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise RuntimeError(f"{answer.status_code}: {answer.text[:300]}")
    return elapsed, answer


def queries(url: str, database_url: str, schema: str) -> dict[str, Any]:
    port = free_port()
    env = {
        **os.environ,
        "SUBLEDGER_DATABASE_URL": url,
        "SUBLEDGER_LOG_LEVEL": "warning",
        "SUBLEDGER_API_KEYS": f"bench:{SECRET}:read",
        "SUBLEDGER_READ_WAIT_SECONDS": "60",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    results: dict[str, Any] = {}
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {SECRET}"}, timeout=600
        ) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not start")
                time.sleep(0.2)
            span = {"from": "2023-01", "to": "2025-12", "currency": "DKK"}
            timed(client, "/v1/revenue/summary", **span)
            live = [timed(client, "/v1/revenue/summary", **span)[0] for _ in range(50)]
            results["live"] = (statistics.median(live), sorted(live)[int(0.95 * len(live)) - 1])
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
    finally:
        server.terminate()
        server.wait(timeout=60)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "SUBLEDGER_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    arguments = parser.parse_args()
    database_url = arguments.database_url
    schema = f"bench_project_{uuid.uuid4().hex[:6]}"
    url = f"{database_url}?schema={schema}"
    with psycopg.connect(database_url) as connection:
        version = connection.execute("SHOW server_version").fetchone()
    print(
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()},"
        f" PostgreSQL {version[0] if version else '?'}; schema {schema}"
    )
    try:
        print(f"appending {arguments.events:,} events")
        appended = append_business(url, arguments.events)
        with psycopg.connect(database_url, autocommit=True) as connection:
            connection.execute(f"VACUUM ANALYZE {schema}.subledger_events")
            connection.execute(f"VACUUM ANALYZE {schema}.subledger_log")
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
    finally:
        if not arguments.keep:
            with psycopg.connect(database_url, autocommit=True) as connection:
                connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


if __name__ == "__main__":
    main()
