"""The projection runner on every store: never missing or repeating an event, rebuilds equal
to live rows, and any prefix folded in memory equal to the live rows at that position."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subledger.adapters.backends import row_store_for
from subledger.adapters.store import store_env
from subledger.api.demo.generator import generate
from subledger.api.http.ingest import parse_submissions
from subledger.domain.ledger import Ledger
from subledger.projections.engine import Projection, Rows, RowSource
from subledger.projections.journal import JournalProjection
from subledger.projections.mrr import MrrProjection
from subledger.projections.revenue import RevenueProjection
from subledger.projections.runner import ProjectionMovedError, ProjectionRunner

PROJECTIONS: tuple[Projection, ...] = (RevenueProjection(), MrrProjection(), JournalProjection())
NAMES = [projection.name for projection in PROJECTIONS]


@pytest.fixture
def ledger(store_url: str) -> Iterator[Ledger]:
    ledger = Ledger(store_env(store_url))
    yield ledger
    ledger.close()


def append_business(ledger: Ledger, events: list[dict[str, object]], size: int = 700) -> None:
    for start in range(0, len(events), size):
        body = orjson.dumps({"events": events[start : start + size]})
        ledger.append(parse_submissions(body))


Everything = dict[str, list[object]]


def everything(rows: RowSource, projection: Projection) -> Everything:
    """Every row of a projection, comparable across stores."""
    return {table.name: rows.scan(table) for table in projection.tables}


def stored(runner: ProjectionRunner) -> tuple[int, Everything]:
    """Every stored row of every projection, and the position they all reflect."""
    positions, answer = set(), {}
    for projection in PROJECTIONS:
        with runner.snapshot(projection.name) as (position, rows):
            positions.add(position)
            answer |= everything(rows, projection)
    assert len(positions) == 1, positions
    return positions.pop(), answer


def in_memory(ledger: Ledger, position: int) -> Everything:
    answer: Everything = {}
    for projection in PROJECTIONS:
        rows = Rows()
        for entry in ledger.iter_entries(position, projection.event_types):
            projection.fold(rows, entry)
        answer |= everything(rows, projection)
    return answer


def runner_for(ledger: Ledger, page_size: int = 300) -> ProjectionRunner:
    runner = ProjectionRunner(ledger, row_store_for(ledger), list(PROJECTIONS), page_size)
    runner.prepare()
    return runner


def test_live_rows_equal_a_rebuild_and_every_prefix_folded_in_memory(ledger: Ledger) -> None:
    events = generate(120, months=24, seed=5)
    runner = runner_for(ledger)
    seen: dict[int, dict[str, list[object]]] = {}
    for start in range(0, len(events), 900):
        append_business(ledger, events[start : start + 900])
        position = runner.catch_up()
        at, seen[position] = stored(runner)
        assert at == position
    for position, live in seen.items():
        assert in_memory(ledger, position) == live, f"as of {position}"
    final = max(seen)
    runner.rebuild(NAMES)
    assert stored(runner) == (final, seen[final])


def test_a_new_fingerprint_rebuilds_on_start(ledger: Ledger) -> None:
    append_business(ledger, generate(30, months=12, seed=6))
    runner_for(ledger).catch_up()
    monthly = ProjectionRunner(
        ledger, row_store_for(ledger), [RevenueProjection(default_policy="monthly")]
    )
    assert monthly.prepare() == ["revenue"]
    assert monthly.position("revenue") == 0
    monthly.catch_up()
    daily = ProjectionRunner(ledger, row_store_for(ledger), [RevenueProjection()])
    assert daily.prepare() == ["revenue"], "and back again"
    assert daily.prepare() == [], "once"


def test_a_projection_reset_behind_the_others_never_moves_them_back(ledger: Ledger) -> None:
    """A new version of one projection is folded from 0 while the log has grown past the
    others' positions: the others fold only what they have not folded, once."""
    events = generate(60, months=12, seed=3)
    half = len(events) // 2
    append_business(ledger, events[:half])
    runner = runner_for(ledger, page_size=200)
    runner.catch_up()
    mrr = next(projection for projection in PROJECTIONS if projection.name == "mrr")
    runner.store.reset(mrr)  # what `prepare()` does for a projection of another version
    append_business(ledger, events[half:])
    again = runner_for(ledger, page_size=200)
    end = again.catch_up()
    assert stored(again) == (end, in_memory(ledger, end))


def test_a_runner_overtaken_by_another_writes_nothing_and_carries_on(ledger: Ledger) -> None:
    append_business(ledger, generate(30, months=12, seed=7))
    first, second = runner_for(ledger), runner_for(ledger)
    second.catch_up()
    with pytest.raises(ProjectionMovedError):
        first.catch_up()
    assert first.catch_up() == ledger.last_position(), "it reloaded and found nothing to do"
    assert stored(first) == (ledger.last_position(), in_memory(ledger, ledger.last_position()))


def test_events_a_projection_does_not_read_still_advance_its_position(ledger: Ledger) -> None:
    from tests.builders import append, closed, customer, subscription

    append(ledger, customer(), subscription(), closed("2025-12"))
    runner = runner_for(ledger)
    assert runner.catch_up() == 3
    assert runner.position("revenue") == 3, "it reads none of them"
    assert runner.position("mrr") == 3, "it reads the first two"
    assert runner.position("journal") == 3, "it reads the last"


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    customers=st.integers(1, 40),
    step=st.integers(50, 900),
    page=st.integers(1, 500),
)
def test_any_business_folded_in_any_pages_equals_its_rebuild_and_its_prefixes(
    fresh_store_url: Callable[[], str], seed: int, customers: int, step: int, page: int
) -> None:
    ledger = Ledger(store_env(fresh_store_url()))
    try:
        events = generate(customers, months=18, seed=seed)
        runner = runner_for(ledger, page_size=page)
        seen = {}
        for start in range(0, len(events), step):
            append_business(ledger, events[start : start + step])
            position = runner.catch_up()
            seen[position] = stored(runner)[1]
        for position, live in seen.items():
            assert in_memory(ledger, position) == live
        runner.rebuild(NAMES)
        assert stored(runner)[1] == seen[max(seen)]
    finally:
        ledger.close()
