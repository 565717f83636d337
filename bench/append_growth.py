"""Appending as the tables grow: events/s of each chunk through the ledger, beside raw psycopg.

    python bench/append_growth.py [--database-url postgresql://postgres@127.0.0.1:5432/test]
                                  [--events 300000] [--chunk 30000] [--analyze] [--keep]
                                  [--business chunks|sustained] [--cache 100000]

Appends a generated business the way bench/project.py does (chunks of 4,000 customers over
three years; `--business sustained`: bench/sustained.py's one business, whose working set
grows with it), in batches of 1,000 through the ledger (keeping `--cache` aggregates), in one
process, on a fresh schema, and, for every `--chunk` events, prints the rate of that chunk
alone (not the running average), the time per event of the batches' reads, of replaying what
they read and of their writes, the aggregates read a batch, and the sequential scans
PostgreSQL made of the ledger's tables meanwhile (`pg_stat_user_tables`). The same rows the
ledger wrote in the chunk (events, log rows, invoice references) are then inserted with raw
psycopg `executemany`, 100 events per transaction, into tables of the same definition that
grow alongside: the ratio of the two rates is what to compare across chunks on a shared
machine. `--analyze` runs `ANALYZE` on the ledger's tables after each chunk (what autovacuum
would do; the CI server has it off). At the end it shows `EXPLAIN (ANALYZE, BUFFERS)` of the
last batch's read.
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path
from statistics import median
from typing import Any

import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import parser_for, scratch_schema
from bench.sustained import business as sustained_business
from subledger.adapters.store import store_env
from subledger.api.composition import tune_garbage_collector
from subledger.api.demo.generator import Business
from subledger.api.http.ingest import parse_submissions
from subledger.domain.ledger import DEFAULT_AGGREGATE_CACHE_SIZE, Ledger

TABLES = ("events", "log", "invoice_refs", "customer_keys")
CUSTOMERS_PER_CHUNK = 4000


class Timed:
    """Wraps a recorder method, adding up the nanoseconds spent in it and keeping the last
    call's arguments."""

    def __init__(self, method: Any) -> None:
        self.method = method
        self.nanoseconds = 0
        self.aggregates = 0  # read, for a read
        self.last: tuple[tuple[Any, ...], dict[str, Any]] = ((), {})

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.last = (args, kwargs)
        if len(args) > 2:  # read_batch_context(event_ids, references, known_versions, ...)
            self.aggregates += len(args[2])
        started = time.perf_counter_ns()
        try:
            return self.method(*args, **kwargs)
        finally:
            self.nanoseconds += time.perf_counter_ns() - started


def sustained_batches(wanted: int) -> Any:
    """bench/sustained.py's business, `wanted` events in all, in bodies of 1,000."""
    events = sustained_business(wanted)
    for start in range(0, len(events), 1000):
        part = events[start : start + 1000]
        yield len(part), b'{"events":[' + b",".join(part) + b"]}"


def batches(wanted: int) -> Any:
    """Bodies of 1,000 events, `wanted` events in all, made a batch at a time."""
    made, chunk = 0, 0
    while made < wanted:
        business = Business(customers=CUSTOMERS_PER_CHUNK, seed=100 + chunk, close_periods=False)
        events = business.events()
        while made < wanted:
            batch = list(itertools.islice(events, min(1000, wanted - made)))
            if not batch:
                break
            made += len(batch)
            yield len(batch), orjson.dumps({"events": batch})
        chunk += 1


def seq_scans(connection: psycopg.Connection[Any], schema: str) -> dict[str, int]:
    rows = connection.execute(
        "SELECT relname, seq_scan FROM pg_stat_user_tables WHERE schemaname = %s", (schema,)
    ).fetchall()
    return {name.removeprefix("subledger_"): count for name, count in rows}


def raw_copy(connection: psycopg.Connection[Any], schema: str, after: int) -> tuple[int, float]:
    """Insert the rows the ledger wrote after position `after` into the raw tables, 100 events
    per transaction: (events, seconds)."""
    events = connection.execute(
        f"SELECT originator_id, originator_version, topic, state FROM {schema}.subledger_events"
        " WHERE notification_id > %s ORDER BY notification_id",
        (after,),
    ).fetchall()
    log = connection.execute(
        f"SELECT position, event_id, digest, recorded_at FROM {schema}.subledger_log"
        " WHERE position > %s ORDER BY position",
        (after,),
    ).fetchall()
    references = connection.execute(
        f"SELECT kind, key, invoice_id FROM {schema}.subledger_invoice_refs"
        f" EXCEPT SELECT kind, key, invoice_id FROM {schema}.raw_invoice_refs"
    ).fetchall()
    connection.commit()
    chunks = range(0, len(events), 100)
    per_chunk = -(-len(references) // max(1, len(chunks)))
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for number, start in enumerate(chunks):
            cursor.executemany(
                f"INSERT INTO {schema}.raw_events"
                " (originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
                events[start : start + 100],
            )
            cursor.executemany(
                f"INSERT INTO {schema}.raw_log VALUES (%s, %s, %s, %s)", log[start : start + 100]
            )
            part = references[number * per_chunk : (number + 1) * per_chunk]
            if part:
                cursor.executemany(
                    f"INSERT INTO {schema}.raw_invoice_refs VALUES (%s, %s, %s)", part
                )
            connection.commit()
    return len(events), time.perf_counter() - started


def explain_read(ledger: Ledger, read: Timed) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the read with the last batch's arguments, on one of the
    ledger's own connections (its settings), as a statement with its values inlined."""
    recorder: Any = ledger.recorder
    statement = getattr(recorder, "read_batch_statement", None)
    if statement is None:
        print("(this version of the store has no read_batch_statement to explain)")
        return
    args, kwargs = read.last
    if not args:
        print("(no batch read the store: every aggregate it needed was held)")
        return
    sql, parameters = statement(*args, **kwargs)
    with recorder.datastore.get_connection() as connection:
        cursor = psycopg.ClientCursor(connection)
        text = sql.as_string(connection).replace("%b", "%s")
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {text}", parameters)
        for row in cursor.fetchall():
            line = next(iter(row.values())) if isinstance(row, dict) else row[0]
            print("   ", line if len(line) < 200 else line[:200] + " ...")


def main() -> None:
    parser = parser_for(__doc__)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--chunk", type=int, default=30_000, help="events per line")
    parser.add_argument("--analyze", action="store_true", help="ANALYZE after each chunk")
    parser.add_argument("--keep", action="store_true", help="keep the schema")
    parser.add_argument("--business", choices=("chunks", "sustained"), default="chunks")
    parser.add_argument("--cache", type=int, default=DEFAULT_AGGREGATE_CACHE_SIZE)
    arguments = parser.parse_args()
    made = sustained_batches if arguments.business == "sustained" else batches
    bodies = list(made(arguments.events))

    with scratch_schema(arguments.database_url, "growth", keep=arguments.keep) as (schema, url):
        ledger = Ledger(store_env(url), aggregate_cache_size=arguments.cache)
        tune_garbage_collector()
        recorder: Any = ledger.recorder
        read = recorder.read_batch_context = Timed(recorder.read_batch_context)
        write = recorder.insert_events = Timed(recorder.insert_events)
        replay = Timed(ledger._bring_up_to_date)
        ledger._bring_up_to_date = replay  # type: ignore[method-assign]
        with psycopg.connect(arguments.database_url) as raw:
            ledger.append(parse_submissions(bodies[0][1]))  # makes the tables
            for table in ("events", "log", "invoice_refs"):
                raw.execute(
                    f"CREATE TABLE {schema}.raw_{table}"
                    f" (LIKE {schema}.subledger_{table} INCLUDING DEFAULTS INCLUDING INDEXES)"
                )
            raw.commit()
            print(
                f"{'events':>9} | {'ledger/s':>8} | {'read µs/ev':>10} | {'replay µs/ev':>12}"
                f" | {'write µs/ev':>11} | {'read/batch':>10}"
                f" | {'seq scans (events, log, refs, keys)':>36} | {'raw/s':>7} | × raw"
            )
            ratios: list[float] = []
            appended, position = bodies[0][0], ledger.last_position()
            scans = seq_scans(raw, schema)
            stream = iter(bodies[1:])
            while appended < arguments.events:
                read.nanoseconds = write.nanoseconds = replay.nanoseconds = read.aggregates = 0
                count, started = 0, time.perf_counter()
                for size, body in itertools.islice(stream, arguments.chunk // 1000):
                    ledger.append(parse_submissions(body))
                    count += size
                if not count:
                    break
                elapsed = time.perf_counter() - started
                appended += count
                time.sleep(1.1)  # the statistics of the chunk's last transactions
                now = seq_scans(raw, schema)
                scanned = ", ".join(str(now.get(t, 0) - scans.get(t, 0)) for t in TABLES)
                scans = now
                copied, seconds = raw_copy(raw, schema, position)
                position = ledger.last_position()
                rate, raw_rate = count / elapsed, copied / seconds
                ratios.append(rate / raw_rate)
                print(
                    f"{appended:9,} | {rate:8,.0f} | {read.nanoseconds / 1e3 / count:10.1f}"
                    f" | {replay.nanoseconds / 1e3 / count:12.1f}"
                    f" | {write.nanoseconds / 1e3 / count:11.1f}"
                    f" | {read.aggregates * 1000 / count:10.0f} | {scanned:>36}"
                    f" | {raw_rate:7,.0f} | {rate / raw_rate:.3f}",
                    flush=True,
                )
                if arguments.analyze:
                    for table in TABLES:
                        raw.execute(f"ANALYZE {schema}.subledger_{table}")
                    raw.commit()
            if ratios:
                half = max(1, len(ratios) // 3)
                print(
                    f"× raw: median of the first third {median(ratios[:half]):.3f},"
                    f" of the last third {median(ratios[-half:]):.3f}"
                )
            print("the last batch's read:")
            explain_read(ledger, read)
        ledger.close()


if __name__ == "__main__":
    main()
