"""Folding shared out among 1, 2 and 4 `subledger project` processes, beside a raw read.

    python bench/fold_owners.py [--database-url postgresql://postgres@127.0.0.1:5432/test]
                                [--events 200000] [--owners 1 2 4] [--partitions 1 4]

1. Appends a generated business (bench/project.py's) of `--events` events.
2. Reads the whole log with raw psycopg: rows/s.
3. For each number of partitions (`SUBLEDGER_PROJECTION_PARTITIONS`) and each number of
   owners: forgets every projection (so that the next start folds them all from position 0),
   starts that many `subledger project` processes at once, and times them until every
   projection (each of its partitions) has folded the whole log (process start-up included);
   then stops them. Prints events/s, the speed-up over one process and the share of the raw
   read, and which process folded what.

Each process folds the projections (or partitions) that fall to it (docs/projections.md, "Who
folds"), so with one partition more than four processes add nothing, and on a machine of two
cores the processes share them with PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import parser_for, raw_read, scratch_schema, subledger, vacuum  # noqa: E402
from bench.project import append_business  # noqa: E402

NAMES = ("revenue", "mrr", "journal", "outbox")


def units(partitions: int) -> list[str]:
    """What is folded with each projection in `partitions` partitions."""
    return [
        name if partitions == 1 else f"{name}/{part}"
        for name in NAMES
        for part in range(partitions)
    ]


def positions(database_url: str, schema: str) -> dict[str, int]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(f"SELECT name, position FROM {schema}.subledger_projections")
        return {str(name): int(position) for name, position in rows}


def folders(database_url: str, schema: str, names: list[str]) -> dict[str, str]:
    """Which process holds each projection's (or partition's) lock now
    (adapters/log_follower.py)."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT name, activity.application_name FROM unnest(%s::text[]) AS name"
            " JOIN pg_locks AS lock ON lock.locktype = 'advisory' AND lock.objsubid = 2"
            "  AND lock.granted AND lock.classid = hashtext(%s)::oid"
            "  AND lock.objid = hashtext(name)::oid"
            " JOIN pg_stat_activity AS activity ON activity.pid = lock.pid",
            (names, f"{schema} fold"),
        )
        return {str(name): str(application).split(" pid ")[-1] for name, application in rows}


def fold_with(
    url: str, database_url: str, schema: str, owners: int, end: int, partitions: int
) -> tuple[float, dict[str, str]]:
    """Seconds until `owners` processes started at once have folded every projection (each of
    its `partitions`) to `end`, and which process folded each last."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f"DELETE FROM {schema}.subledger_projections")
    names = units(partitions)
    env = {
        **os.environ,
        "SUBLEDGER_DATABASE_URL": url,
        "SUBLEDGER_LOG_LEVEL": "warning",
        "SUBLEDGER_PROJECTION_PARTITIONS": str(partitions),
    }
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "subledger", "project"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(owners)
    ]
    seen: dict[str, str] = {}
    try:
        while True:
            reached = positions(database_url, schema)
            if set(reached) == set(names) and min(reached.values()) >= end:
                break
            if any(process.poll() is not None for process in processes):
                raise RuntimeError("a `subledger project` process stopped")
            seen |= folders(database_url, schema, names)
            time.sleep(0.2)
        seconds = time.perf_counter() - started
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
    return seconds, seen


def main() -> None:
    parser = parser_for(__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--owners", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--partitions", type=int, nargs="+", default=[1, 4])
    arguments = parser.parse_args()
    database_url = arguments.database_url
    with scratch_schema(database_url, "bench_owners") as (schema, url):
        print(f"appending {arguments.events:,} events")
        end = append_business(url, arguments.events)
        vacuum(database_url, schema, "subledger_events", "subledger_log")
        subledger(url, "projections", "status")  # makes the projections' tables
        raw = raw_read(database_url, schema)
        print(f"{'raw psycopg read of the log:':29} {raw:12,.0f} rows/s")
        for partitions in arguments.partitions:
            print(f"each projection in {partitions} partition{'s' if partitions > 1 else ''}:")
            one = None
            for owners in arguments.owners:
                seconds, seen = fold_with(url, database_url, schema, owners, end, partitions)
                rate = end / seconds
                one = one or rate
                label = f"{owners} process{'es' if owners > 1 else ''} folding:"
                print(
                    f"  {label:27} {rate:12,.0f} events/s  ({seconds:.1f} s, {rate / one:.2f} ×"
                    f" one process, {rate / raw:.3f} × the raw read)"
                )
                shares: dict[str, list[str]] = {}
                for name, folder in sorted(seen.items()):
                    shares.setdefault(folder, []).append(name)
                print("    " + "; ".join(", ".join(names) for names in shares.values()))


if __name__ == "__main__":
    main()
