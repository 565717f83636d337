"""The benchmarks run, small, on PostgreSQL: a figure in docs/benchmarks.md comes from a script
that still works. (Their figures are not checked here: timings are not asserted in tests.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("script", "arguments", "says"),
    [
        ("append.py", ["--events", "400", "--single-events", "20", "--rounds", "1"], "raw psycopg"),
        # No aggregate kept: every batch reads, and the last read is explained.
        (
            "append_growth.py",
            ["--events", "3000", "--chunk", "1000", "--cache", "0"],
            "Execution Time",
        ),
        ("project.py", ["--events", "3000"], "rebuild of every projection"),
        (
            "fold_owners.py",
            ["--events", "2000", "--owners", "1", "2", "--partitions", "2"],
            "2 processes folding",
        ),
        ("mrr.py", ["--subscriptions", "400", "--queries", "5"], "36-month MRR, live"),
        (
            "sync.py",
            [
                "--customers",
                "4",
                "--months",
                "3",
                "--workers",
                "4",
                "--raw-seconds",
                "1",
                "--raw-messages",
                "200",
            ],
            "sync to dinero, 4 workers, 20% faults",
        ),
        (
            "load.py",
            [
                "--seconds",
                "3",
                "--customers",
                "10",
                "--senders",
                "2",
                "--analysts",
                "1",
                "--settle",
            ],
            "every check passed",
        ),
    ],
)
def test_a_benchmark_runs_to_its_figures(
    postgres_database_url: str, script: str, arguments: list[str], says: str
) -> None:
    command = [
        sys.executable,
        str(ROOT / "bench" / script),
        "--database-url",
        postgres_database_url,
    ]
    done = subprocess.run(
        [*command, *arguments],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert says in done.stdout
