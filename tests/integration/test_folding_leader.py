"""On PostgreSQL the processes that fold (`serve`, `subledger project`) share the projections
out, one process to a projection; a process that needs the projections caught up (the
dispatcher, `ledger export`) waits for their folders instead of folding the same pages beside
them, and folds itself only those no process folds or whose folder stands still."""

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
from tests.integration.test_projections import in_memory, stored
from tests.waiting import wait_until

pytestmark = pytest.mark.postgres


@pytest.fixture
def ledger(postgres_url: str) -> Iterator[Ledger]:
    ledger = Ledger(store_env(postgres_url))
    yield ledger
    ledger.close()


NAMES = ["revenue", "mrr", "journal"]


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
    monkeypatch.setattr(subledger.adapters.log_follower, "FOLDER_PATIENCE_SECONDS", 0.3)
    # A leader that holds the lock and never folds (hung, or folding other versions).
    stuck = Follower(ledger, runner_for(ledger))
    try:
        assert stuck.waiter.claim(NAMES) == set(NAMES)
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
        assert leader.waiter.claim(NAMES) == set(NAMES), "the locks were held only while folding"
    finally:
        leader.waiter.close()


def test_a_process_that_joins_gets_its_share_and_one_that_dies_leaves_its_share_to_the_rest(
    ledger: Ledger,
) -> None:
    first, second, third = (Follower(ledger, runner_for(ledger)) for _ in range(3))
    try:
        assert first.waiter.claim(NAMES) == set(NAMES), "alone, it folds every projection"
        # The second's share (every other one) is still the first's until the first looks again.
        assert second.waiter.claim(NAMES) == set()
        kept = first.waiter.claim(NAMES)
        taken = second.waiter.claim(NAMES)
        assert kept and taken and kept.isdisjoint(taken) and kept | taken == set(NAMES)

        assert third.waiter.claim(NAMES) == set(), "its share is still the first's"
        claims = [waiter.claim(NAMES) for waiter in (first.waiter, second.waiter, third.waiter)]
        assert [len(claim) for claim in claims] == [1, 1, 1], claims
        assert set().union(*claims) == set(NAMES)

        first.waiter.close()  # as a process killed: PostgreSQL lets go of its locks
        for _ in range(2):  # each lets go of what is now the other's, then takes its own
            claims = [waiter.claim(NAMES) for waiter in (second.waiter, third.waiter)]
        assert sorted(len(claim) for claim in claims) == [1, 2], claims
        assert claims[0].isdisjoint(claims[1]) and claims[0] | claims[1] == set(NAMES)
    finally:
        for follower in (first, second, third):
            follower.waiter.close()


def test_two_followers_fold_their_shares_and_together_reach_what_one_would(
    ledger: Ledger,
) -> None:
    events = generate(60, seed=6)
    append(ledger, events[: len(events) // 2])
    runners = [runner_for(ledger) for _ in range(2)]
    for runner in runners:
        runner.prepare()  # as `serve` and `subledger project` do before they follow
    followers = [Follower(ledger, runner) for runner in runners]
    for follower in followers:
        follower.start()
    try:
        append(ledger, events[len(events) // 2 :])
        end = ledger.last_position()
        store = row_store_for(ledger)
        wait_until(
            lambda: {stored.position for stored in store.stored().values()} == {end},
            timeout=60,
            what="both followers folding to the end",
        )
        folded = [set(follower.waiter.owned) for follower in followers]
        assert all(folded) and folded[0] | folded[1] == set(NAMES), folded
    finally:
        for follower in followers:
            follower.stop()
    assert stored(runner_for(ledger)) == (end, in_memory(ledger, end))
