"""Appending at a steady rate with the projections folded beside: do they keep up?

    python bench/sustained.py [--database-url postgresql://postgres@127.0.0.1:5432/test]
                              [--rate 10000] [--events 300000] [--batch 1000]
                              [--folders beside 2]

For each way of folding in `--folders` it starts a server on a fresh schema: `beside` is
`subledger serve` as it runs by default with one worker (folding in a `subledger project`
process it starts beside itself); a number N is `subledger serve --no-projections` with N
`subledger project` processes beside it (the projections dealt out among them; 0: the
appends alone, nothing folded). One sender
appends a generated business over real HTTP in batches of `--batch`, paced at `--rate` events
a second (each batch sent when its time comes, or at once if the sender is behind), while a
separate connection reads every half second how far the projections are behind the log.
It prints the rate the appends reached (overall and in each tenth of the run), the
projections' lag in events along the way, at the end of the sending and at most, and how
long after the last answer they had folded everything; then raw psycopg inserting the same
rows (`executemany`, one batch a transaction) as fast as it can into identical tables, and
the ratio of the paced rate to that.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.append import HEADERS, SECRET, drop, run_raw
from bench.harness import machine, parser_for, server
from subledger.api.demo.generator import generate


@dataclass
class Run:
    """What one way of folding gave."""

    folders: str
    appended_per_second: float = 0.0
    behind_at_end: int = 0
    most_behind: int = 0
    caught_up_after: float = 0.0
    folded_per_second: float = 0.0
    samples: list[tuple[float, int]] = field(default_factory=list)
    #: When each batch was answered, in seconds from the start.
    answered: list[float] = field(default_factory=list)


def business(events: int) -> list[bytes]:
    """A generated business's first `events` events (enough customers made to have them)."""
    made: list[dict[str, object]] = []
    customers = 2000
    while len(made) < events:
        made = generate(customers, seed=7)
        customers *= 2
    return [orjson.dumps(event) for event in made[:events]]


def behind(connection: psycopg.Connection[tuple[int | None, int | None]], schema: str) -> int:
    """How many positions the least folded projection (or partition) is behind the log."""
    found = connection.execute(
        f"SELECT (SELECT max(position) FROM {schema}.subledger_log),"
        f" (SELECT min(position) FROM {schema}.subledger_projections)"
    ).fetchone()
    last, folded = found if found else (0, 0)
    return (last or 0) - (folded or 0)


@contextmanager
def folding(url: str, keys: str, folders: str) -> Iterator[str]:
    """A server on `url` folding as `folders` says; yields its base URL."""
    if folders == "beside":
        with server(url, keys, 1) as base:
            yield base
        return
    env = {
        **os.environ,
        "SUBLEDGER_DATABASE_URL": url,
        "SUBLEDGER_API_KEYS": keys,
        "SUBLEDGER_LOG_LEVEL": "warning",
    }
    with server(url, keys, 1, arguments=("--no-projections",)) as base:
        processes = [
            subprocess.Popen([sys.executable, "-m", "subledger", "project"], env=env)
            for _ in range(int(folders))
        ]
        try:
            yield base
        finally:
            for process in processes:
                process.send_signal(signal.SIGINT)
            for process in processes:
                process.wait(60)


def run(database_url: str, bodies: list[bytes], rate: float, batch: int, folders: str) -> Run:
    schema = f"bench_sustained_{uuid.uuid4().hex[:6]}"
    result = Run(folders)
    keys = f"bench:{SECRET}:events:write+read"
    batches = [
        b'{"events":[' + b",".join(bodies[i : i + batch]) + b"]}"
        for i in range(0, len(bodies), batch)
    ]
    with (
        folding(f"{database_url}?schema={schema}", keys, folders) as base,
        psycopg.connect(database_url, autocommit=True) as watcher,
    ):
        host, port = base.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        done = threading.Event()
        started = time.perf_counter()

        def watch() -> None:
            while folders != "0" and not done.wait(0.5):
                lag = behind(watcher, schema)
                result.samples.append((time.perf_counter() - started, lag))

        watching = threading.Thread(target=watch)
        watching.start()
        try:
            for number, body in enumerate(batches):
                wait = started + number * batch / rate - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                connection.request("POST", "/v1/events", body=body, headers=HEADERS)
                answer = connection.getresponse()
                text = answer.read()
                if answer.status != 201:
                    raise RuntimeError(f"{answer.status}: {text[:500]!r}")
                result.answered.append(time.perf_counter() - started)
            sent = time.perf_counter() - started
        finally:
            done.set()
            watching.join()
            connection.close()
        result.appended_per_second = len(bodies) / sent
        if folders != "0":
            result.behind_at_end = behind(watcher, schema)
            while behind(watcher, schema) > 0:
                time.sleep(0.02)
            folded = time.perf_counter() - started
            result.caught_up_after = folded - sent
            result.folded_per_second = len(bodies) / folded
            result.most_behind = max((lag for _, lag in result.samples), default=0)
    raw = run_raw(database_url, schema, all_rows=True, per_transaction=batch)
    drop(database_url, [schema])
    line = (
        f"  {folders:>6} folding: appended {result.appended_per_second:8,.0f} events/s"
        f" ({result.appended_per_second / raw:.2f} × raw {raw:,.0f})"
    )
    if folders != "0":
        line += (
            f"; behind at the end {result.behind_at_end:,} events, at most"
            f" {result.most_behind:,}; all folded {result.caught_up_after:.2f} s after the last"
            f" answer ({result.folded_per_second:,.0f} events/s)"
        )
        step = max(1, len(result.samples) // 10)
        along = ", ".join(f"{at:.0f} s: {lag:,}" for at, lag in result.samples[::step])
        line += f"\n         behind along the way: {along}"
    print(line, flush=True)
    tenth = max(1, len(result.answered) // 10)
    rates = [
        tenth
        * batch
        / (result.answered[end - 1] - (result.answered[end - tenth - 1] if end > tenth else 0))
        for end in range(tenth, len(result.answered) + 1, tenth)
    ]
    print(
        f"         appended each tenth, events/s: {', '.join(f'{r:,.0f}' for r in rates)}",
        flush=True,
    )
    return result


def main() -> None:
    parser = parser_for(__doc__)
    parser.add_argument("--rate", type=float, default=10_000, help="events a second")
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--folders", nargs="+", default=["beside", "2"])
    arguments = parser.parse_args()
    print(machine(arguments.database_url))
    bodies = business(arguments.events)
    print(
        f"{len(bodies):,} events in batches of {arguments.batch:,},"
        f" paced at {arguments.rate:,.0f} events/s\n",
        flush=True,
    )
    for folders in arguments.folders:
        run(arguments.database_url, bodies, arguments.rate, arguments.batch, folders)


if __name__ == "__main__":
    main()
