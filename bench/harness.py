"""What the benchmarks share: a `subledger serve` on a schema, a rebuild in a process of its own,
the raw read of the log, percentiles, and a line about the machine."""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent

_REBUILD = """
import json, resource, sys, time
from api.bootstrap import build_ledger, build_runner
from api.settings import Settings
settings = Settings()
ledger = build_ledger(settings)
runner = build_runner(settings, ledger)
runner.prepare()
names = sys.argv[1:] or list(runner.projections)
started = time.perf_counter()
end = runner.rebuild(names)
elapsed = time.perf_counter() - started
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"end": end, "seconds": elapsed, "peak_mib": peak_kib / 1024}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(url: str, keys: str, workers: int = 1, wait_seconds: float = 30) -> Iterator[str]:
    """`subledger serve` on the store at `url` with `keys`; yields its base URL once it
    answers `/health`, and stops it afterwards."""
    port = free_port()
    env = {
        **os.environ,
        "SUBLEDGER_DATABASE_URL": url,
        "SUBLEDGER_API_KEYS": keys,
        "SUBLEDGER_LOG_LEVEL": "warning",
        "SUBLEDGER_READ_WAIT_SECONDS": "60",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the server did not start")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=60)


def rebuild(url: str, names: Sequence[str] = ()) -> dict[str, Any]:
    """Rebuild the named projections (all by default) in a process of its own: `end` (the
    position reached), `seconds` and the process's `peak_mib`."""
    env = {**os.environ, "SUBLEDGER_DATABASE_URL": url}
    output = subprocess.run(
        [sys.executable, "-c", _REBUILD, *names],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


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


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    """The median and the 95th percentile (nearest rank)."""
    ordered = sorted(samples)
    p95 = ordered[max(0, -(-95 * len(ordered) // 100) - 1)]
    return statistics.median(ordered), p95


def machine(database_url: str) -> str:
    with psycopg.connect(database_url) as connection:
        version = connection.execute("SHOW server_version").fetchone()
    return (
        f"machine: {os.cpu_count()} cores, Python {platform.python_version()},"
        f" PostgreSQL {version[0] if version else '?'}"
    )


def drop_schema(database_url: str, schema: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
