"""Killing the projection worker mid-page, again and again, loses and doubles nothing; on
PostgreSQL, workers share the projections' partitions out as they join, and one killed mid-page
leaves its share to the others."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from subledger.adapters.backends import backend_of, row_store_for
from subledger.adapters.log_follower import fold_owners
from subledger.adapters.store import store_env
from subledger.api.demo.generator import generate
from subledger.domain.ledger import Ledger
from subledger.projections.partitions import unit_names
from subledger.projections.runner import ProjectionRunner
from tests.integration.test_projections import PROJECTIONS, append_business, in_memory, stored
from tests.waiting import wait_until

SUBLEDGER = str(Path(sys.executable).parent / "subledger")


def worker(
    url: str, cwd: Path, page_size: int = 40, partitions: int = 1
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SUBLEDGER_DATABASE_URL": url,
        "SUBLEDGER_PROJECTION_PAGE_SIZE": str(page_size),
        "SUBLEDGER_PROJECTION_PARTITIONS": str(partitions),
    }
    return subprocess.Popen(
        [SUBLEDGER, "project"], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def test_a_worker_killed_mid_page_five_times_ends_where_a_rebuild_does(
    database_url: str, tmp_path: Path
) -> None:
    ledger = Ledger(store_env(database_url))
    append_business(ledger, generate(1000, months=30, seed=11), size=1000)
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


@pytest.mark.postgres
@pytest.mark.slow
def test_partitions_are_shared_out_as_workers_join_and_one_killed_mid_page_leaves_its_own(
    postgres_url: str, tmp_path: Path
) -> None:
    """Each projection in four partitions: sixteen to fold. A second and a third worker joining
    each get their share; the first, killed just after it wrote a page of one of its
    partitions, leaves its partitions to the other two; read as one, the partitions are then
    what a fold of the whole log makes."""
    ledger = Ledger(store_env(postgres_url))
    append_business(ledger, generate(1000, months=30, seed=13), size=1000)
    end = ledger.last_position()
    store = row_store_for(ledger)
    notifications = backend_of(ledger).notifications(ledger)
    assert notifications is not None
    datastore = notifications.datastore
    runner = ProjectionRunner(ledger, store, list(PROJECTIONS), partitions=4)
    names = ["revenue", "mrr", "journal", "outbox"]  # what a worker folds
    units = [unit for name in names for unit in unit_names(name, 4)]

    def owners() -> dict[str, str]:
        return fold_owners(datastore, units)

    def pids() -> list[str]:
        return sorted(owner.split()[1] for owner in owners().values())

    def position(name: str) -> int:
        mark = store.stored().get(name)
        return mark.position if mark is not None else 0

    workers: list[subprocess.Popen[bytes]] = []
    try:
        workers.append(worker(postgres_url, tmp_path, page_size=25, partitions=4))
        wait_until(lambda: len(owners()) == 16, timeout=60, what="the first worker folds all")
        for joined in (2, 3):
            workers.append(worker(postgres_url, tmp_path, page_size=25, partitions=4))
            wait_until(
                lambda joined=joined: len(owners()) == 16 and len(set(pids())) == joined,
                timeout=60,
                what=f"the partitions shared out among {joined} workers",
            )
        shares = sorted(pids().count(pid) for pid in set(pids()))
        assert shares == [5, 5, 6], owners()
        first = workers[0]
        first_folds = [name for name, owner in owners().items() if f"pid {first.pid} " in owner]
        # One of its partitions still folding (the cheaper ones may be done already).
        watched = min(first_folds, key=position)
        seen = position(watched)
        wait_until(lambda: position(watched) > seen, timeout=60, what="another page written")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        behind = {name: position(name) for name in first_folds}
        assert any(at < end for at in behind.values()), f"the kill should land mid-fold: {behind}"

        wait_until(
            lambda: all(position(name) >= end for name in units),
            timeout=300,
            what="the other two taking the first's partitions over and folding to the end",
        )
        # Each looks again at what is its own after its turn: between two looks, a partition
        # one has let go of may not yet be taken by the other.
        wait_until(lambda: len(owners()) == 16, timeout=30, what="all sixteen held again")
        assert set(pids()) == {str(workers[1].pid), str(workers[2].pid)}
    finally:
        for process in workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)

    assert stored(runner) == (end, in_memory(ledger, end))
    ledger.close()
