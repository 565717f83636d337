"""What the benchmarks share: a `subledger serve` on a schema, `subledger projections rebuild`,
the raw read of the log, percentiles, and a line about the machine."""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(
    url: str,
    keys: str,
    workers: int = 1,
    wait_seconds: float = 30,
    base_env: Mapping[str, str] | None = None,
    arguments: Sequence[str] = (),
) -> Iterator[str]:
    """`subledger serve` on the store at `url` with `keys` (in `base_env`, by default this
    process's environment) and further `arguments` (`--no-projections`); yields its base URL
    once it answers `/health`, and stops it afterwards."""
    port = free_port()
    env = {
        **(os.environ if base_env is None else base_env),
        "SUBLEDGER_DATABASE_URL": url,
        "SUBLEDGER_API_KEYS": keys,
        "SUBLEDGER_LOG_LEVEL": "warning",
        "SUBLEDGER_READ_WAIT_SECONDS": "60",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "subledger",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            *arguments,
        ],
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


def timed(client: httpx.Client, path: str, **params: Any) -> tuple[float, Any]:
    """How long a GET took, in seconds, and its JSON; anything but 200 is an error."""
    started = time.perf_counter()
    answer = client.get(path, params=params)
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise RuntimeError(f"{path}: {answer.status_code}: {answer.text[:300]}")
    return elapsed, answer.json()


def subledger(url: str, *arguments: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """`subledger <arguments>` on the store at `url`, in a process of its own, its output
    captured (logging at warning and above)."""
    return subprocess.run(
        [sys.executable, "-m", "subledger", *arguments],
        cwd=ROOT,
        env={**os.environ, "SUBLEDGER_DATABASE_URL": url, "SUBLEDGER_LOG_LEVEL": "warning"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def rebuild(url: str, names: Sequence[str] = ()) -> dict[str, Any]:
    """`subledger projections rebuild` of the named projections (all by default): `end` (the
    position reached), `seconds` (as the command reports them) and its `peak_mib` (the largest
    child process so far: run it before any other)."""
    process = subledger(url, "projections", "rebuild", *names)
    if process.returncode != 0:
        raise RuntimeError(f"the rebuild failed: {process.stderr[-2000:]}")
    found = re.search(r"to position (\d+) in ([\d.]+) s", process.stderr)
    if found is None:
        raise RuntimeError(f"no result in {process.stderr[-500:]!r}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"end": int(found[1]), "seconds": float(found[2]), "peak_mib": peak_kib / 1024}


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


def parser_for(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's argument parser, described by its docstring's first paragraph, with
    `--database-url` (a server where the benchmark may make and drop a schema)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "SUBLEDGER_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    return parser


@contextmanager
def scratch_schema(
    database_url: str, prefix: str, keep: bool = False, quiet: bool = False
) -> Iterator[tuple[str, str]]:
    """A fresh schema's name and the store URL on it, after a line about the machine (unless
    `quiet`); the schema is dropped afterwards unless `keep`."""
    schema = f"{prefix}_{uuid.uuid4().hex[:6]}"
    if not quiet:
        print(f"{machine(database_url)}; schema {schema}")
    try:
        yield schema, f"{database_url}?schema={schema}"
    finally:
        if not keep:
            with psycopg.connect(database_url, autocommit=True) as connection:
                connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def vacuum(database_url: str, schema: str, *tables: str) -> None:
    """`VACUUM ANALYZE` freshly appended tables, so that reads time a settled database."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        for table in tables:
            connection.execute(f"VACUUM ANALYZE {schema}.{table}")
