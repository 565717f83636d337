"""Syncing to the Billy and Dinero sandboxes: messages per second with no faults and with 20%
faults, beside what the sandbox and PostgreSQL can do on their own in the same run.

    python bench/sync.py [--database-url postgresql://postgres@127.0.0.1:5432/test]
                         [--customers 200] [--months 24] [--workers 2 8]
                         [--targets billy dinero]

1. Raw ceilings: bare httpx requests to the sandbox (a contact lookup and a create, from as
   many threads as the dispatcher has workers), and a bare claim-and-finish loop on a
   PostgreSQL table shaped like the delivery log (one `UPDATE ... RETURNING` and one `UPDATE`
   per message, no HTTP).
2. For each target and worker count: a generated business appended to a fresh schema, its
   messages enqueued (`subledger sync status`), then `subledger sync run --workers N` timed
   from its start until nothing is pending or sending, against a fresh sandbox with no
   faults, and again with 20% of requests failing (Billy: 5% each of 500, 429,
   commit-then-drop, and answers slower than the 1 s timeout; Dinero: 4% each of those and of
   480 brownouts). The sandboxes' rate limits are off and the dispatcher's budget far above
   them: this measures the dispatcher, not Dinero's 100 requests a minute. The end state is
   checked: what the sandbox holds equals what the log says, nothing twice.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import parser_for, scratch_schema  # noqa: E402
from bench.sandboxes import (  # noqa: E402
    KINDS,
    Dispatcher,
    Sandbox,
    append,
    books,
    configure,
    enqueue,
    environment,
    expected_books,
    prepare,
    sandbox,
    wait_until_settled,
)
from subledger.api.demo.generator import Business  # noqa: E402


def raw_sandbox(kind: str, threads: int, seconds: float = 10) -> float:
    """Requests/s of bare httpx clients against a fresh sandbox: a contact lookup, then a
    create, over and over."""
    with sandbox(kind) as box:
        stop, done = time.monotonic() + seconds, [0] * threads

        def run(n: int) -> None:
            with box.client() as client:
                i = 0
                while True:  # one round at least, however late the thread starts
                    _lookup_and_create(box, client, f"raw-{n}-{i}")
                    done[n] += 2
                    i += 1
                    if time.monotonic() >= stop:
                        break

        started = time.monotonic()
        workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return sum(done) / (time.monotonic() - started)


def _lookup_and_create(box: Sandbox, client: httpx.Client, number: str) -> None:
    """What a new customer's contact costs the adapter at least: a lookup by a documented
    filter (Billy's `contactNo`) or by our own Guid (Dinero), and a create."""
    if box.kind == "billy":
        client.get("/contacts", params={"contactNo": number}).raise_for_status()
        contact = {"name": number, "contactNo": number, "countryId": "DK", "paymentTermsDays": 8}
        client.post("/contacts", json={"contact": contact}).raise_for_status()
        return
    guid = str(uuid.uuid5(uuid.NAMESPACE_URL, number))
    looked = client.get(f"/contacts/{guid}")
    if looked.status_code != 404:
        looked.raise_for_status()
    body = {
        "ContactGuid": guid,
        "Name": number,
        "CountryKey": "DK",
        "IsPerson": False,
        "IsMember": False,
        "UseCvr": False,
        "ExternalReference": number,
    }
    client.post("/contacts", json=body).raise_for_status()


def raw_postgres(database_url: str, schema: str, threads: int, messages: int = 20_000) -> float:
    """Messages/s claimed and finished by bare psycopg loops on a table like the delivery
    log's: no lanes, no attempts, no HTTP."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            f"CREATE SCHEMA IF NOT EXISTS {schema}; CREATE TABLE {schema}.raw_messages"
            " (id bigint PRIMARY KEY, status text NOT NULL,"
            " claimed_until timestamptz, payload text NOT NULL)"
        )
        connection.execute(
            f"INSERT INTO {schema}.raw_messages SELECT n, 'pending', NULL, repeat('x', 400)"
            f" FROM generate_series(1, {messages}) n"
        )
    done = [0] * threads

    def run(n: int) -> None:
        with psycopg.connect(database_url, autocommit=True) as connection:
            while True:
                row = connection.execute(
                    f"UPDATE {schema}.raw_messages SET status = 'sending',"
                    " claimed_until = now() + interval '2 minutes'"
                    f" WHERE id = (SELECT id FROM {schema}.raw_messages WHERE status = 'pending'"
                    " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, payload"
                ).fetchone()
                if row is None:
                    return
                connection.execute(
                    f"UPDATE {schema}.raw_messages SET status = 'sent', claimed_until = NULL"
                    " WHERE id = %s",
                    (row[0],),
                )
                done[n] += 1

    started = time.monotonic()
    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / (time.monotonic() - started)


def synced(
    kind: str, database_url: str, events: list[dict[str, Any]], workers: int, faults: bool
) -> dict[str, Any]:
    """One timed sync of `events` to a fresh sandbox, on a fresh schema."""
    with (
        scratch_schema(database_url, "bench_sync", quiet=True) as (_, url),
        sandbox(kind) as box,
        tempfile.TemporaryDirectory() as directory,
    ):
        append(url, events)
        prepare(box, events)
        options = {"timeout_seconds": 1} if faults else {}
        config = configure(Path(directory) / "subledger.toml", box, **options)
        env = environment(url, config, kind)
        messages = sum(enqueue(env)[kind].values())
        if faults:
            box.twenty_percent_faults()
        before = box.stats()["requests_served"]
        started = time.monotonic()
        with Dispatcher(env, workers=workers):
            counts = wait_until_settled(url, kind, timeout=3600, interval=0.2)
        seconds = time.monotonic() - started
        stats = box.stats()
        box.no_faults()
        held, wanted = books(box), expected_books(events, url)
        if counts["failed"] or held != wanted or held.duplicates():
            raise RuntimeError(f"the sync did not end as it should: {counts}, {held.sizes()}")
        requests = stats["requests_served"] - before
        return {
            "messages": messages,
            "seconds": seconds,
            "per_second": messages / seconds,
            "requests_per_second": requests / seconds,
            "faults": sum(stats["faults_injected"][k] for k in ("fail", "throttle", "drop", "slow"))
            + stats["by_status"].get("480", 0),
            "requests": requests,
        }


def main() -> None:
    parser = parser_for(__doc__)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--raw-seconds", type=float, default=10, help="Of bare sandbox requests.")
    parser.add_argument("--raw-messages", type=int, default=20_000, help="Of the bare PG loop.")
    parser.add_argument("--targets", nargs="+", choices=KINDS, default=list(KINDS))
    arguments = parser.parse_args()
    events = list(Business(customers=arguments.customers, months=arguments.months, seed=7).events())
    print(f"a business of {arguments.customers} customers over {arguments.months} months:")
    print(f"{len(events):,} events")
    with scratch_schema(arguments.database_url, "bench_sync_raw") as (schema, _):
        for kind in arguments.targets:
            for workers in arguments.workers:
                measure(kind, workers, events, schema, arguments)


def measure(
    kind: str, workers: int, events: list[dict[str, Any]], schema: str, arguments: Any
) -> None:
    sandbox_rate = raw_sandbox(kind, workers, arguments.raw_seconds)
    postgres_rate = raw_postgres(arguments.database_url, schema, workers, arguments.raw_messages)
    print(
        f"raw, {kind}, {workers} threads: sandbox {sandbox_rate:,.0f} requests/s;"
        f" PostgreSQL claim+finish {postgres_rate:,.0f} messages/s"
    )
    with psycopg.connect(arguments.database_url, autocommit=True) as connection:
        connection.execute(f"DROP TABLE {schema}.raw_messages")
    for label, faults in (("no faults", False), ("20% faults", True)):
        run = synced(kind, arguments.database_url, events, workers, faults)
        print(
            f"sync to {kind}, {workers} workers, {label}: {run['messages']:,} messages in"
            f" {run['seconds']:.1f} s = {run['per_second']:.1f} messages/s;"
            f" {run['requests']:,} requests ({run['faults']:,} faulted),"
            f" {run['requests_per_second']:.0f} requests/s"
            f" = {run['requests_per_second'] / sandbox_rate:.0%} of the raw sandbox;"
            f" messages/s = {run['per_second'] / postgres_rate:.1%} of raw PostgreSQL"
        )


if __name__ == "__main__":
    main()
