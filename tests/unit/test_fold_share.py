"""How the projections are dealt out among the processes that fold them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from subledger.adapters.log_follower import share

COSTLIEST_FIRST = ["journal", "outbox", "revenue", "mrr"]


def test_two_processes_get_the_costliest_and_the_cheapest_and_the_two_between() -> None:
    assert share(COSTLIEST_FIRST, 0, 2) == {"journal", "mrr"}
    assert share(COSTLIEST_FIRST, 1, 2) == {"outbox", "revenue"}


def test_one_process_folds_all_and_four_fold_one_each() -> None:
    assert share(COSTLIEST_FIRST, 0, 1) == set(COSTLIEST_FIRST)
    assert [share(COSTLIEST_FIRST, rank, 4) for rank in range(4)] == [
        {"journal"},
        {"outbox"},
        {"revenue"},
        {"mrr"},
    ]


def test_of_three_processes_the_last_gets_the_two_cheapest() -> None:
    assert [share(COSTLIEST_FIRST, rank, 3) for rank in range(3)] == [
        {"journal"},
        {"outbox"},
        {"revenue", "mrr"},
    ]


def test_a_fifth_process_stands_by() -> None:
    assert share(COSTLIEST_FIRST, 4, 5) == set()


@given(names=st.lists(st.text(min_size=1), unique=True, max_size=12), count=st.integers(1, 9))
def test_the_shares_are_disjoint_and_cover_every_projection(names: list[str], count: int) -> None:
    shares = [share(names, rank, count) for rank in range(count)]
    assert sum(len(mine) for mine in shares) == len(names)
    assert set().union(*shares) == set(names)
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
