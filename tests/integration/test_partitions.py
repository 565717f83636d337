"""Projections folded in partitions by customer: their rows, read as one, are what one fold of
the whole log makes, live and as of any past position, however the partitions were folded.

What they are compared with is the test's own fold: every event of the projection's types up
to the position, folded into empty rows by the projection itself, unpartitioned.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subledger.adapters.backends import row_store_for
from subledger.adapters.store import store_env
from subledger.api.demo.generator import generate
from subledger.api.http.errors import ApiError, ErrorCode
from subledger.api.http.projection_reads import AsOf, Reader
from subledger.domain.ledger import Ledger
from subledger.projections.engine import Projection, Rows
from subledger.projections.journal import PERIODS
from subledger.projections.mrr import CUSTOMERS, MrrProjection
from subledger.projections.partitions import partition_of
from subledger.projections.runner import (
    PartitionsDifferError,
    ProjectionRunner,
    ProjectionStore,
)
from tests.integration.test_checkpoints import (
    PROJECTIONS,
    append_business,
    assert_same_state,
    folded_from_zero,
)


def runner_for(
    ledger: Ledger, store: ProjectionStore, partitions: int, every: int = 100, page: int = 150
) -> ProjectionRunner:
    runner = ProjectionRunner(
        ledger, store, list(PROJECTIONS), page, checkpoint_every=every, partitions=partitions
    )
    runner.prepare()
    return runner


def assert_reads_as(projection: Projection, rows: Rows, runner: ProjectionRunner) -> None:
    """Every table of the stored projection, read as one, equal to `rows` whole."""
    with runner.snapshot(projection.name) as (_, stored):
        for table in projection.tables:
            wanted = sorted(rows.known.get(table.name, {}).items())
            assert stored.scan(table) == wanted, table.name
            for key, row in wanted[:: max(1, len(wanted) // 5)]:
                assert stored.get(table, key) == row, (table.name, key)


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    customers=st.integers(3, 20),
    partitions=st.integers(2, 5),
    every=st.integers(20, 300),
    page=st.integers(1, 300),
    stops=st.lists(st.floats(0, 1), min_size=1, max_size=3),
    points=st.lists(st.floats(0, 1), min_size=1, max_size=4),
)
def test_partitions_read_as_one_are_what_one_fold_of_the_log_makes(
    fresh_store_url: Callable[[], str],
    seed: int,
    customers: int,
    partitions: int,
    every: int,
    page: int,
    stops: list[float],
    points: list[float],
) -> None:
    ledger = Ledger(store_env(fresh_store_url()))
    try:
        append_business(ledger, generate(customers, months=18, seed=seed))
        end = ledger.last_position()
        store = row_store_for(ledger)
        # The partitions stand at different positions between the runs: each run (a process
        # of its own) folds some of them further than the others.
        units = runner_for(ledger, store, partitions).units
        for number, stop in enumerate(sorted(stops)):
            chosen = list(units)[number % partitions :: 2]
            runner_for(ledger, store, partitions, every, page).catch_up(
                upto=int(stop * end), names=chosen
            )
        runner = runner_for(ledger, store, partitions, every, page)
        runner.catch_up()
        reader = Reader(ledger, store, {p.name: p for p in PROJECTIONS}, 1.0, None, partitions)
        for projection in PROJECTIONS:
            assert runner.position(projection.name) == end
            assert_reads_as(projection, folded_from_zero(ledger, projection, end), runner)
            for position in sorted({int(point * end) for point in points}):
                full = folded_from_zero(ledger, projection, position)
                assert_same_state(
                    projection, reader.fold(projection.name, position), full, position
                )
    finally:
        ledger.close()


def test_each_customer_is_folded_by_one_partition_and_a_closed_month_by_every_one(
    store_url: str,
) -> None:
    ledger = Ledger(store_env(store_url))
    try:
        append_business(ledger, generate(24, months=14, seed=3))
        store = row_store_for(ledger)
        runner = runner_for(ledger, store, partitions=3)
        runner.catch_up()
        customers: dict[str, set[int | None]] = {}
        types = {kind for projection in PROJECTIONS for kind in projection.event_types}
        for entry in ledger.iter_entries(ledger.last_position(), types):
            customer = getattr(entry.event, "customer_id", None)
            if customer is not None:
                customers.setdefault(customer, set()).add(partition_of(entry.event, 3))
        assert all(len(parts) == 1 for parts in customers.values())
        assert len({part for parts in customers.values() for part in parts}) == 3
        # Each partition keeps its own closed months, the same for all three.
        stored = next(t for t in runner.units["journal/0"].tables if t.name == PERIODS.name)
        closed = store.load_all(stored)
        by_part: dict[int, set[str]] = {}
        for key, row in closed.items():
            if row["closed"]:
                by_part.setdefault(key[-1], set()).add(key[0])
        assert len(by_part) == 3 and len({frozenset(months) for months in by_part.values()}) == 1
    finally:
        ledger.close()


def test_a_store_folded_in_other_partitions_is_refused_until_folded_again_in_the_new_number(
    store_url: str,
) -> None:
    ledger = Ledger(store_env(store_url))
    try:
        append_business(ledger, generate(12, months=12, seed=5))
        end = ledger.last_position()
        store = row_store_for(ledger)
        runner_for(ledger, store, partitions=1).catch_up()
        assert set(store.stored()) == {p.name for p in PROJECTIONS}
        for asked, held in ((4, 1), (2, 4), (4, 2)):
            runner = ProjectionRunner(ledger, store, list(PROJECTIONS), partitions=asked)
            with pytest.raises(PartitionsDifferError) as refused:
                runner.prepare()
            assert f"folded in {held} partition(s)" in str(refused.value)
            assert f"SUBLEDGER_PROJECTION_PARTITIONS is {asked}" in str(refused.value)
            before = store.stored()
            assert {name.split("/")[0] for name in before} == {p.name for p in PROJECTIONS}
            runner.prepare(repartition=True)  # as `subledger projections rebuild` does
            assert set(store.stored()) == set(runner.units)
            assert all(stored.position == 0 for stored in store.stored().values())
            runner.catch_up()
            for projection in PROJECTIONS:
                assert_reads_as(projection, folded_from_zero(ledger, projection, end), runner)
    finally:
        ledger.close()


def test_a_read_about_one_customer_waits_only_for_its_partition(store_url: str) -> None:
    ledger = Ledger(store_env(store_url))
    try:
        events = generate(16, months=12, seed=9)
        append_business(ledger, events)
        end = ledger.last_position()
        store = row_store_for(ledger)
        runner = runner_for(ledger, store, partitions=2)
        runner.catch_up(names=["mrr/0"])  # mrr/1 stays at position 0
        customers = sorted(
            {e["data"]["customer_id"] for e in events if e["type"] == "customer.created"}
        )
        by_part = {
            part: [c for c in customers if zlib.crc32(c.encode()) % 2 == part] for part in (0, 1)
        }
        assert by_part[0] and by_part[1]
        full = folded_from_zero(ledger, MrrProjection(), end)
        reader = Reader(ledger, store, {p.name: p for p in PROJECTIONS}, 0.1, None, 2)
        for customer in by_part[0]:
            with reader.rows("mrr", AsOf(), customer_id=customer) as (position, rows):
                assert position == end
                assert rows.get(CUSTOMERS, (customer,)) == full.get(CUSTOMERS, (customer,))
        for asked in ({"customer_id": by_part[1][0]}, {}):
            with pytest.raises(ApiError) as refused, reader.rows("mrr", AsOf(), **asked):
                pass
            assert refused.value.code == ErrorCode.NOT_CAUGHT_UP
    finally:
        ledger.close()
