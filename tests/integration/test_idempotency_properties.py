"""Property: any interleaving of retries of valid batches yields each event once, in the order
in which it was first appended, and every retry reports the positions of the first append."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subledger.adapters.store import store_env
from subledger.domain.facts import Fact
from subledger.domain.ledger import Ledger, Submission
from tests.builders import (
    customer,
    invoice,
    payment,
    refund,
    submission,
    subscription,
)


def _story(prefix: str, length: int) -> list[Fact]:
    """A customer's valid chain of facts, cut to `length`: each needs the ones before it."""
    c, s, i, p = (f"{prefix}-{kind}" for kind in "csip")
    start = date(2026, 1, 1) + timedelta(days=len(prefix) % 28)
    chain: list[Fact] = [
        customer(c),
        subscription(s, customer_id=c, start_date=start),
        invoice(i, customer_id=c, subscription_id=s, issue_date=start),
        payment(p, invoice_id=i),
        refund(f"{prefix}-r", payment_id=p, amount=500),
    ]
    return chain[:length]


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[list[Submission]], list[int]]:
    """Independent batches, and an order of deliveries in which each is sent one to three times."""
    run = uuid.uuid4().hex[:8]
    sizes = draw(st.lists(st.integers(1, 5), min_size=1, max_size=5))
    batches = [
        [submission(fact) for fact in _story(f"{run}-{n}", size)] for n, size in enumerate(sizes)
    ]
    repeats = draw(st.lists(st.integers(1, 3), min_size=len(batches), max_size=len(batches)))
    schedule = [n for n, times in enumerate(repeats) for _ in range(times)]
    return batches, draw(st.permutations(schedule))


def check_interleaving(ledger: Ledger, batches: list[list[Submission]], order: list[int]) -> None:
    start = ledger.last_position()
    expected: list[str] = []
    first_positions: dict[int, list[int]] = {}
    for n in order:
        outcomes = ledger.append(batches[n])
        positions = [outcome.position for outcome in outcomes]
        if n in first_positions:
            assert not any(outcome.appended for outcome in outcomes)
            assert positions == first_positions[n]
        else:
            assert all(outcome.appended for outcome in outcomes)
            first_positions[n] = positions
            expected.extend(s.event_id for s in batches[n])
    logged = ledger.read_log(start, 1000)
    assert [e.event.event_id for e in logged] == expected  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def shared_memory_ledger() -> Iterator[Ledger]:
    ledger = Ledger(store_env("memory://"))
    yield ledger
    ledger.close()


@settings(max_examples=200, deadline=None)
@given(deliveries())
def test_retries_in_any_order_append_each_event_once_in_memory(
    shared_memory_ledger: Ledger, plan: tuple[list[list[Submission]], list[int]]
) -> None:
    check_interleaving(shared_memory_ledger, *plan)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plan=deliveries())
def test_retries_in_any_order_append_each_event_once_in_a_database(
    database_url: str, plan: tuple[list[list[Submission]], list[int]]
) -> None:
    ledger = Ledger(store_env(database_url))
    try:
        check_interleaving(ledger, *plan)
    finally:
        ledger.close()
