"""Checkpoints of the projections: an answer as of a past point folds on from the last
checkpoint before it, and gets what a fold of the log from position 0 gets.

The fold from 0 here is the test's own: every event of the projection's types up to the
position folded into empty rows, nothing retained or dropped.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subledger.adapters.backends import row_store_for
from subledger.adapters.store import store_env
from subledger.api.demo.generator import generate
from subledger.api.http.ingest import parse_submissions
from subledger.api.http.projection_reads import Reader
from subledger.domain.ledger import Ledger
from subledger.projections.engine import Between, Projection, Rows
from subledger.projections.journal import ENTRIES, JournalProjection
from subledger.projections.mrr import MrrProjection
from subledger.projections.outbox import OutboxProjection
from subledger.projections.revenue import RevenueProjection
from subledger.projections.runner import ProjectionRunner, ProjectionStore

PROJECTIONS: tuple[Projection, ...] = (
    RevenueProjection(),
    MrrProjection(),
    JournalProjection(),
    OutboxProjection(),
)


def append_business(ledger: Ledger, events: list[dict[str, object]], size: int = 500) -> None:
    for start in range(0, len(events), size):
        ledger.append(parse_submissions(orjson.dumps({"events": events[start : start + size]})))


def folded_from_zero(ledger: Ledger, projection: Projection, position: int) -> Rows:
    rows = Rows()
    for entry in ledger.iter_entries(position, projection.event_types):
        projection.fold(rows, entry)
    return rows


def assert_same_state(projection: Projection, past: Rows, full: Rows, position: int) -> None:
    """Every kept table equal to the fold from 0; every keyed row the past fold has, equal to
    that row in the fold from 0."""
    for table in projection.tables:
        got = past.known.get(table.name, {})
        wanted = full.known.get(table.name, {})
        if table.kept:
            assert got == wanted, f"{table.name} as of {position}"
        else:
            for key, row in got.items():
                assert wanted.get(key) == row, f"{table.name} {key} as of {position}"


def runner_for(ledger: Ledger, store: ProjectionStore, every: int, page: int) -> ProjectionRunner:
    runner = ProjectionRunner(ledger, store, list(PROJECTIONS), page, checkpoint_every=every)
    runner.prepare()
    return runner


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    customers=st.integers(3, 40),
    every=st.integers(20, 300),
    page=st.integers(1, 400),
    stop=st.floats(0, 1),
    points=st.lists(st.floats(0, 1), min_size=1, max_size=6),
)
def test_an_answer_as_of_any_position_folds_from_a_checkpoint_what_a_fold_from_zero_gets(
    fresh_store_url: Callable[[], str],
    seed: int,
    customers: int,
    every: int,
    page: int,
    stop: float,
    points: list[float],
) -> None:
    ledger = Ledger(store_env(fresh_store_url()))
    try:
        append_business(ledger, generate(customers, months=18, seed=seed))
        end = ledger.last_position()
        store = row_store_for(ledger)
        # One runner folds part of the log and stops between two checkpoints; another (a new
        # process) carries on without knowing what changed since the last one.
        runner_for(ledger, store, every, page).catch_up(upto=int(stop * end))
        runner_for(ledger, store, every, page).catch_up()
        reader = Reader(ledger, store, {p.name: p for p in PROJECTIONS}, wait_seconds=1.0)
        positions = sorted({int(point * end) for point in points} | {end})
        for projection in PROJECTIONS:
            for position in positions:
                checkpoint = store.last_checkpoint(
                    projection.name, projection.fingerprint(), position
                )
                # A checkpoint at each multiple; none for the outbox, never read as of the past.
                made = projection.answered_as_of_the_past
                assert checkpoint == (position // every * every if made else 0)
                past = reader.fold(projection.name, position)
                full = folded_from_zero(ledger, projection, position)
                assert_same_state(projection, past, full, position)
    finally:
        ledger.close()


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    customers=st.integers(3, 30),
    every=st.integers(20, 300),
    points=st.lists(st.floats(0, 1), min_size=1, max_size=5),
    days=st.tuples(st.floats(0, 1), st.floats(0, 1)),
)
def test_a_range_of_days_entries_as_of_any_position_are_those_a_fold_from_zero_books(
    fresh_store_url: Callable[[], str],
    seed: int,
    customers: int,
    every: int,
    points: list[float],
    days: tuple[float, float],
) -> None:
    """The entries of the days asked about come from the checkpoint's fold after it and from
    the stored entries (written once) up to it; together, what a fold from 0 books."""
    ledger = Ledger(store_env(fresh_store_url()))
    try:
        append_business(ledger, generate(customers, months=18, seed=seed))
        end = ledger.last_position()
        store = row_store_for(ledger)
        runner_for(ledger, store, every, page=150).catch_up()
        journal = PROJECTIONS[2]
        reader = Reader(ledger, store, {"journal": journal}, wait_seconds=1.0)
        booked = sorted(
            {key[0] for key in folded_from_zero(ledger, journal, end).known[ENTRIES.name]}
        )
        first, last = sorted(booked[int(share * (len(booked) - 1))] for share in days)
        for position in sorted({int(point * end) for point in points} | {end}):
            full = folded_from_zero(ledger, journal, position)
            wanted = {
                key: row
                for key, row in full.known.get(ENTRIES.name, {}).items()
                if first <= key[0] <= last
            }
            past = reader.fold("journal", position, Between(ENTRIES, first, last))
            got = dict(past.scan(ENTRIES, (), (first, last)))
            assert got == wanted, f"entries from {first} to {last} as of {position}"
            assert_same_state(journal, past, full, position)
    finally:
        ledger.close()


def test_a_rebuild_drops_the_checkpoints_and_makes_them_again(store_url: str) -> None:
    ledger = Ledger(store_env(store_url))
    try:
        append_business(ledger, generate(20, months=12, seed=4))
        end = ledger.last_position()
        store = row_store_for(ledger)
        runner = runner_for(ledger, store, every=50, page=70)
        runner.catch_up()
        revenue = PROJECTIONS[0]
        assert store.last_checkpoint("revenue", revenue.fingerprint(), end) == end // 50 * 50
        store.reset(revenue)
        assert store.last_checkpoint("revenue", revenue.fingerprint(), end) == 0
        with store.past(revenue, end) as past:
            assert past is None
        runner.rebuild(["revenue"])
        assert store.last_checkpoint("revenue", revenue.fingerprint(), end) == end // 50 * 50
        reader = Reader(ledger, store, {"revenue": revenue}, wait_seconds=1.0)
        for position in (end // 3, end // 2, end):
            full = folded_from_zero(ledger, revenue, position)
            assert_same_state(revenue, reader.fold("revenue", position), full, position)
    finally:
        ledger.close()


@pytest.mark.parametrize("every", [0])
def test_without_checkpoints_an_answer_folds_from_zero(store_url: str, every: int) -> None:
    ledger = Ledger(store_env(store_url))
    try:
        append_business(ledger, generate(10, months=12, seed=8))
        end = ledger.last_position()
        store = row_store_for(ledger)
        runner_for(ledger, store, every=every, page=100).catch_up()
        mrr = PROJECTIONS[1]
        assert store.last_checkpoint("mrr", mrr.fingerprint(), end) == 0
        reader = Reader(ledger, store, {"mrr": mrr}, wait_seconds=1.0)
        assert_same_state(mrr, reader.fold("mrr", end), folded_from_zero(ledger, mrr, end), end)
    finally:
        ledger.close()
