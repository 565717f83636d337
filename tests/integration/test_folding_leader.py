"""On PostgreSQL one process leads the folding (`serve`, `subledger project`); a process that
needs the projections caught up (the dispatcher, `ledger export`) waits for the leader instead
of folding the same pages beside it, and folds itself only when the leader stands still."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

import subledger.adapters.log_follower
from subledger.adapters.backends import row_store_for
from subledger.adapters.log_follower import Follower
from subledger.adapters.store import store_env
from subledger.adapters.store.postgres import PostgresLedgerRecorder
from subledger.api.demo.generator import generate
from subledger.api.folding import catch_up
from subledger.api.http.ingest import parse_submissions
from subledger.domain.ledger import Ledger
from subledger.projections.journal import JournalProjection
from subledger.projections.mrr import MrrProjection
from subledger.projections.revenue import RevenueProjection
from subledger.projections.runner import ProjectionRunner

pytestmark = pytest.mark.postgres


@pytest.fixture
def ledger(postgres_url: str) -> Iterator[Ledger]:
    ledger = Ledger(store_env(postgres_url))
    yield ledger
    ledger.close()


def runner_for(ledger: Ledger) -> ProjectionRunner:
    projections = [RevenueProjection(), MrrProjection(), JournalProjection()]
    return ProjectionRunner(ledger, row_store_for(ledger), projections, page_size=200)


def append(ledger: Ledger, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 500):
        ledger.append(parse_submissions(orjson.dumps({"events": events[start : start + 500]})))


def stored_positions(runner: ProjectionRunner) -> set[int]:
    return {stored.position for stored in runner.store.stored().values()}


def counting_folds(runner: ProjectionRunner, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record each `catch_up` the runner is asked for (the folding it does itself)."""
    calls: list[int] = []
    fold: Callable[..., int] = runner.catch_up

    def counted(*args: Any, **kwargs: Any) -> int:
        calls.append(1)
        return fold(*args, **kwargs)

    monkeypatch.setattr(runner, "catch_up", counted)
    return calls


def test_a_catch_up_beside_a_folding_leader_waits_for_it_and_folds_nothing(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = generate(40, seed=3)
    append(ledger, events[: len(events) // 2])
    leading = runner_for(ledger)
    leading.prepare()  # as `serve` and `subledger project` do before they follow
    leader = Follower(ledger, leading)
    leader.start()
    try:
        append(ledger, events[len(events) // 2 :])
        other = runner_for(ledger)
        folds = counting_folds(other, monkeypatch)
        catch_up(other)
        assert stored_positions(other) == {ledger.last_position()}
        assert folds == [], "the leader folded every page; this process only waited"
    finally:
        leader.stop()


def test_a_catch_up_folds_itself_when_the_leader_stands_still(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    append(ledger, generate(20, seed=4))
    recorder = ledger.recorder
    assert isinstance(recorder, PostgresLedgerRecorder)
    monkeypatch.setattr(subledger.adapters.log_follower, "LEADER_PATIENCE_SECONDS", 0.3)
    # A leader that holds the lock and never folds (hung, or folding other versions).
    stuck = Follower(ledger, runner_for(ledger))
    try:
        assert stuck.waiter.lead()
        other = runner_for(ledger)
        folds = counting_folds(other, monkeypatch)
        catch_up(other)
        assert stored_positions(other) == {ledger.last_position()}
        assert folds, "it folded once the leader had stood still"
    finally:
        stuck.waiter.close()


def test_a_catch_up_with_no_leader_folds_and_leaves_the_lead_free(ledger: Ledger) -> None:
    append(ledger, generate(20, seed=5))
    runner = runner_for(ledger)
    catch_up(runner)
    assert stored_positions(runner) == {ledger.last_position()}
    leader = Follower(ledger, runner_for(ledger))
    try:
        assert leader.waiter.lead(), "the lock was held only while folding"
    finally:
        leader.waiter.close()
