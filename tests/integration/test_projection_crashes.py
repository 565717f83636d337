"""Killing the projection worker mid-page, again and again, loses and doubles nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from subledger.adapters.backends import row_store_for
from subledger.adapters.store import store_env
from subledger.api.demo.generator import generate
from subledger.api.http.ingest import parse_submissions
from subledger.domain.ledger import Ledger
from subledger.projections.runner import ProjectionRunner
from tests.integration.test_projections import PROJECTIONS, in_memory, stored

SUBLEDGER = str(Path(sys.executable).parent / "subledger")


def worker(url: str, cwd: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SUBLEDGER_DATABASE_URL": url, "SUBLEDGER_PROJECTION_PAGE_SIZE": "40"}
    return subprocess.Popen(
        [SUBLEDGER, "project"], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def test_a_worker_killed_mid_page_five_times_ends_where_a_rebuild_does(
    database_url: str, tmp_path: Path
) -> None:
    ledger = Ledger(store_env(database_url))
    events = generate(1000, months=30, seed=11)
    for start in range(0, len(events), 1000):
        ledger.append(parse_submissions(orjson.dumps({"events": events[start : start + 1000]})))
    store = row_store_for(ledger)
    for projection in PROJECTIONS:
        store.create_tables(projection.tables)
    end = ledger.last_position()
    kills: list[int] = []
    folded = 0
    while len(kills) < 5 and folded < end:
        process = worker(database_url, tmp_path)
        # Kill it just after it has written another page: it is then folding the next one.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            mark = store.stored().get("revenue")
            if mark is not None and mark.position > folded:
                break
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        mark = store.stored().get("revenue")
        folded = mark.position if mark is not None else 0
        kills.append(folded)
    assert len([k for k in kills if k < end]) >= 3, f"kills should land mid-fold: {kills}"

    runner = ProjectionRunner(ledger, store, list(PROJECTIONS))
    runner.prepare()
    runner.catch_up()
    assert stored(runner) == (end, in_memory(ledger, end))
    ledger.close()


def test_the_worker_stops_cleanly_when_asked(database_url: str, tmp_path: Path) -> None:
    process = worker(database_url, tmp_path)
    assert process.stdout is not None
    said = b""  # the worker says what it folds once it is ready to, however slow its start
    while b"subledger project: folding" not in said and process.poll() is None:
        said += process.stdout.readline()
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, said + output
    assert b"subledger project: stopped" in output
