"""`subledger projections status` and `rebuild`, run as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from subledger.adapters.store import store_env
from subledger.api.demo.generator import generate
from subledger.api.http.ingest import parse_submissions
from subledger.domain.ledger import Ledger

SUBLEDGER = str(Path(sys.executable).parent / "subledger")


def run(url: str, cwd: Path, *arguments: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "SUBLEDGER_DATABASE_URL": url, **env}
    return subprocess.run(
        [SUBLEDGER, *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_status_and_rebuild_show_and_fold_the_projections(
    database_url: str, tmp_path: Path
) -> None:
    ledger = Ledger(store_env(database_url))
    events = generate(60, months=12, seed=8)
    ledger.append(parse_submissions(orjson.dumps({"events": events[:1000]})))
    end = ledger.last_position()
    ledger.close()

    before = run(database_url, tmp_path, "projections", "status")
    assert before.returncode == 0, before.stderr
    assert "never folded" in before.stdout

    rebuilt = run(database_url, tmp_path, "projections", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert f"rebuilt revenue, mrr, journal, outbox to position {end}" in rebuilt.stderr

    after = run(database_url, tmp_path, "projections", "status")
    # On PostgreSQL a last column names the process folding each projection: none here.
    folder = ["-"] if database_url.startswith("postgresql") else []
    assert [line.split() for line in after.stdout.split("\n")[1:5]] == [
        ["revenue", str(end), str(end), "0", "current", *folder],
        ["mrr", str(end), str(end), "0", "current", *folder],
        ["journal", str(end), str(end), "0", "current", *folder],
        ["outbox", str(end), str(end), "0", "current", *folder],
    ]

    monthly = run(database_url, tmp_path, "projections", "status", SUBLEDGER_RECOGNITION="monthly")
    assert "to rebuild (folded as revenue:v2:daily)" in monthly.stdout


def test_rebuild_names_the_projections_there_are(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'subledger.db'}"
    unknown = run(url, tmp_path, "projections", "rebuild", "nope")
    assert unknown.returncode != 0
    assert "no projection nope; there are revenue, mrr, journal, outbox" in unknown.stderr
    memory = run("memory://", tmp_path, "projections", "status")
    assert memory.returncode != 0
    assert "memory:// lives inside one process" in memory.stderr


def test_status_lists_each_partition_of_projections_rebuilt_in_partitions(
    database_url: str, tmp_path: Path
) -> None:
    ledger = Ledger(store_env(database_url))
    ledger.append(parse_submissions(orjson.dumps({"events": generate(20, months=6, seed=2)})))
    end = ledger.last_position()
    ledger.close()
    partitioned = {"SUBLEDGER_PROJECTION_PARTITIONS": "2"}

    rebuilt = run(database_url, tmp_path, "projections", "rebuild", **partitioned)
    assert rebuilt.returncode == 0, rebuilt.stderr
    status = run(database_url, tmp_path, "projections", "status", **partitioned)
    assert status.returncode == 0, status.stderr
    folder = ["-"] if database_url.startswith("postgresql") else []
    assert [line.split() for line in status.stdout.split("\n")[1:9]] == [
        [f"{name}/{part}", str(end), str(end), "0", "current", *folder]
        for name in ("revenue", "mrr", "journal", "outbox")
        for part in (0, 1)
    ]
    # Given one partition again, the store's projections are to be folded again in one; a
    # process asked to fold them so is refused, rather than undo the others' work.
    unpartitioned = run(database_url, tmp_path, "projections", "status")
    assert unpartitioned.stdout.count("never folded") == 4, unpartitioned.stdout
    for command in (["project"], ["serve", "--port", "65530"]):
        refused = run(database_url, tmp_path, *command)
        assert refused.returncode == 1, refused.stderr
        assert (
            "the store's projections are folded in 2 partition(s) and"
            " SUBLEDGER_PROJECTION_PARTITIONS is 1" in " ".join(refused.stderr.split())
        ), refused.stderr
