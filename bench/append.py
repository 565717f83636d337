"""Append throughput through the HTTP API on PostgreSQL, beside raw psycopg in the same run.

    python bench/append.py [--database-url postgresql://postgres@127.0.0.1:5432/test]
                           [--events 20000] [--single-events 3000] [--senders 4]

For each batch size (1, 100, 1000) it starts `subledger serve` on a fresh schema, appends a
generated business's events (a realistic mix: customers, subscriptions, invoices, payments,
failures, credits, refunds, changes, pauses, cancellations) over real HTTP, and times it: one
sender at a time, and several senders against a server of several processes; and how long
until the server had also folded them into every projection (as `serve` does by default: in a
process beside it with one worker, in each worker with several; two runs serve with
`--no-projections`, the append path alone). Then
it inserts the very rows the API stored into identical tables with raw psycopg (`executemany`,
100 events per transaction): once the same rows (each event's row, its log row, the invoice
references), once the event rows alone, and the single-event run's rows one event per
transaction (a durable commit each: what one sender waiting for each answer is held to); and
prints events/s for each and the ratios. It does this `--rounds` times and reports the
medians: on a shared machine one run can be a third slower than the next.
"""

from __future__ import annotations

import http.client
import sys
import threading
import time
import uuid
from pathlib import Path
from statistics import median
from typing import Any

import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import machine, parser_for, server
from subledger.api.demo.generator import generate

SECRET = "bench-writer-secret-0001"
HEADERS = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}


def send(base: str, bodies: list[bytes]) -> None:
    """POST each body in turn on one keep-alive connection (the standard library's client:
    the leanest, so that the figures are the server's, not the client's)."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        for body in bodies:
            connection.request("POST", "/v1/events", body=body, headers=HEADERS)
            answer = connection.getresponse()
            text = answer.read()
            if answer.status != 201:
                raise RuntimeError(f"{answer.status}: {text[:500]!r}")
    finally:
        connection.close()


def run_http(
    database_url: str,
    events: list[dict[str, Any]],
    batch: int,
    senders: int = 1,
    workers: int = 1,
    folding: bool = True,
) -> tuple[float, float | None, str]:
    """Events per second appending `events` in batches of `batch` from `senders` senders at
    once, to a server of `workers` processes; events per second until the server has also
    folded them into every projection (None if it does not fold: `--no-projections`); and the
    schema used."""
    schema = f"bench_{batch}_{senders}_{workers}_{uuid.uuid4().hex[:6]}"
    # Each customer's events go to one sender, in order, so every sender's stream is valid.
    streams: list[list[dict[str, Any]]] = [[] for _ in range(senders)]
    owner: dict[str, int] = {}
    for event in events:
        key = _customer_of(event, owner)
        streams[owner.setdefault(key, len(owner) % senders)].append(event)
    lanes = [
        [
            orjson.dumps(stream[i] if batch == 1 else {"events": stream[i : i + batch]})
            for i in range(0, len(stream), batch)
        ]
        for stream in streams
    ]
    keys = f"bench:{SECRET}:events:write+read"
    arguments = () if folding else ("--no-projections",)
    with server(f"{database_url}?schema={schema}", keys, workers, arguments=arguments) as base:
        started = time.perf_counter()
        threads = [threading.Thread(target=send, args=(base, lane)) for lane in lanes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        folded = wait_folded(database_url, schema) - started if folding else None
    return len(events) / elapsed, None if folded is None else len(events) / folded, schema


def wait_folded(database_url: str, schema: str) -> float:
    """When every projection had folded the whole log (polled every 10 ms)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        while True:
            found = connection.execute(
                f"SELECT (SELECT min(position) FROM {schema}.subledger_projections)"
                f" >= (SELECT max(position) FROM {schema}.subledger_log)"
            ).fetchone()
            if found and found[0]:
                return time.perf_counter()
            time.sleep(0.01)


def _customer_of(event: dict[str, Any], owner: dict[str, int]) -> str:
    """Which customer's stream an event belongs to (so each sender's events stay valid)."""
    data = event["data"]
    for key in ("customer_id",):
        if key in data:
            return str(data[key])
    reference = data.get("subscription_id") or data.get("invoice_id") or data.get("payment_id")
    if reference is not None:
        return _links.get(reference, str(reference))
    return "periods"


_links: dict[str, str] = {}


def link_references(events: list[dict[str, Any]]) -> None:
    """Map subscription, invoice and payment ids to their customer, for `_customer_of`."""
    for event in events:
        data = event["data"]
        customer = data.get("customer_id")
        if customer is None:
            parent = data.get("invoice_id") or data.get("subscription_id")
            customer = _links.get(parent) if parent else None
        if customer is None:
            continue
        for key in ("subscription_id", "invoice_id", "payment_id"):
            if key in data:
                _links[data[key]] = customer


def run_raw(database_url: str, schema: str, *, all_rows: bool, per_transaction: int = 100) -> float:
    """Events per second inserting the rows the API stored in `schema` into identical tables
    with `executemany`, `per_transaction` events per transaction: the event rows only, or
    (`all_rows`) the same rows as the API wrote: each event's row, its log row and the invoice
    references."""
    tables = ("events", "log", "invoice_refs") if all_rows else ("events",)
    suffix = f"all{per_transaction}" if all_rows else f"events{per_transaction}"
    with psycopg.connect(database_url) as connection:
        events = connection.execute(
            f"SELECT originator_id, originator_version, topic, state"
            f" FROM {schema}.subledger_events ORDER BY notification_id"
        ).fetchall()
        log = connection.execute(
            f"SELECT position, event_id, digest, recorded_at FROM {schema}.subledger_log"
            " ORDER BY position"
        ).fetchall()
        references = connection.execute(
            f"SELECT kind, key, invoice_id FROM {schema}.subledger_invoice_refs"
        ).fetchall()
        for table in tables:
            connection.execute(
                f"CREATE TABLE {schema}.raw_{suffix}_{table}"
                f" (LIKE {schema}.subledger_{table} INCLUDING DEFAULTS INCLUDING INDEXES)"
            )
        connection.commit()
        chunks = range(0, len(events), per_transaction)
        per_chunk = -(-len(references) // len(chunks))
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for number, start in enumerate(chunks):
                cursor.executemany(
                    f"INSERT INTO {schema}.raw_{suffix}_events"
                    " (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
                    events[start : start + per_transaction],
                )
                if all_rows:
                    cursor.executemany(
                        f"INSERT INTO {schema}.raw_{suffix}_log VALUES (%s, %s, %s, %s)",
                        log[start : start + per_transaction],
                    )
                    chunk = references[number * per_chunk : (number + 1) * per_chunk]
                    if chunk:
                        cursor.executemany(
                            f"INSERT INTO {schema}.raw_{suffix}_invoice_refs VALUES (%s, %s, %s)",
                            chunk,
                        )
                connection.commit()
        return len(events) / (time.perf_counter() - started)


def drop(database_url: str, schemas: list[str]) -> None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        for schema in schemas:
            connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def main() -> None:
    parser = parser_for(__doc__)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--single-events", type=int, default=3000)
    parser.add_argument("--senders", type=int, default=4, help="senders of single events")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--rounds", type=int, default=3, help="report the median of rounds")
    arguments = parser.parse_args()

    events: list[dict[str, Any]] = []
    customers = 500
    while len(events) < arguments.events:
        events = generate(customers, seed=7)
        customers *= 2
    events = events[: arguments.events]
    singles = events[: arguments.single_events]
    link_references(events)
    print(machine(arguments.database_url))
    print(f"events: {len(events)} (single-event runs: {len(singles)})\n")

    many, workers = arguments.senders, arguments.workers
    several = f"{many} senders, {workers} workers"
    runs = (
        ("1 event per request, 1 sender", singles, 1, 1, 1, True),
        (f"1 event per request, {several}", singles, 1, many, workers, True),
        ("batches of 100, 1 sender", events, 100, 1, 1, True),
        ("batches of 100, 1 sender, `--no-projections`", events, 100, 1, 1, False),
        ("batches of 1,000, 1 sender", events, 1000, 1, 1, True),
        ("batches of 1,000, 1 sender, `--no-projections`", events, 1000, 1, 1, False),
        (f"batches of 1,000, {several}", events, 1000, many, workers, True),
    )
    rates: dict[str, list[float]] = {label: [] for label, *_ in runs}
    folded: dict[str, list[float]] = {label: [] for label, *_ in runs}
    ratios: dict[str, list[float]] = {label: [] for label, *_ in runs}
    raws: list[float] = []
    raws_all: list[float] = []
    raws_single: list[float] = []
    ratios_all: dict[str, list[float]] = {label: [] for label, *_ in runs}
    ratios_single: list[float] = []
    for round_number in range(1, arguments.rounds + 1):
        print(f"round {round_number} of {arguments.rounds}", flush=True)
        schemas = []
        for label, stream, batch, senders, processes, folding in runs:
            rate, end_to_end, schema = run_http(
                arguments.database_url, stream, batch, senders, processes, folding
            )
            schemas.append(schema)
            rates[label].append(rate)
            line = f"  HTTP, {label:50s} {rate:9,.0f} events/s"
            if end_to_end is not None:
                folded[label].append(end_to_end)
                line += f", folded {end_to_end:9,.0f} events/s"
            print(line, flush=True)
        raw = run_raw(arguments.database_url, schemas[-3], all_rows=False)
        raw_all = run_raw(arguments.database_url, schemas[-3], all_rows=True)
        raws.append(raw)
        raws_all.append(raw_all)
        # What one sender waiting for each answer is held to: a durable commit per event.
        raw_single = run_raw(arguments.database_url, schemas[0], all_rows=True, per_transaction=1)
        raws_single.append(raw_single)
        ratios_single.append(rates[runs[0][0]][-1] / raw_single)
        for label, *_ in runs:
            ratios[label].append(rates[label][-1] / raw)
            ratios_all[label].append(rates[label][-1] / raw_all)
        for label, rate in (("raw, event rows", raw), ("raw, the same rows", raw_all)):
            print(f"  {label + ', executemany, 100 per transaction':56s} {rate:9,.0f} events/s")
        print(f"  {'raw, the same rows, 1 per transaction':56s} {raw_single:9,.0f} events/s")
        drop(arguments.database_url, schemas)

    print(f"\nmedians of {arguments.rounds} rounds (each ratio is taken within its round):\n")
    print(
        "| appending | events/s | range | × raw, same rows | × raw, event rows"
        " | folded too, events/s |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for label, *_ in runs:
        low, high = min(rates[label]), max(rates[label])
        end_to_end = f"{median(folded[label]):,.0f}" if folded[label] else "–"
        print(
            f"| HTTP, {label} | {median(rates[label]):,.0f} | {low:,.0f}–{high:,.0f}"
            f" | {median(ratios_all[label]):.2f} | {median(ratios[label]):.2f} | {end_to_end} |"
        )
    for label, values in (
        ("raw psycopg `executemany`, the same rows, 100 events per transaction", raws_all),
        ("raw psycopg `executemany`, event rows only, 100 per transaction", raws),
        ("raw psycopg, the same rows, 1 event per transaction", raws_single),
    ):
        print(f"| {label} | {median(values):,.0f} | {min(values):,.0f}–{max(values):,.0f} | | | |")
    print(
        f"\n1 event per request, 1 sender, × raw with 1 event per transaction (a durable commit"
        f" each, the floor for a sender waiting for each answer): {median(ratios_single):.2f}"
    )


if __name__ == "__main__":
    main()
