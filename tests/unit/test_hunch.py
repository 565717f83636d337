"""When a ledger decides batches on what it holds: while few of its recent tries missed."""

from __future__ import annotations

from subledger.domain.cache import Hunch, Remembered


def test_a_few_misses_do_not_stop_the_guessing_but_a_run_of_them_does() -> None:
    hunch = Hunch(give_up_above=0.25, probe_every=32)
    for _ in range(4):  # the share of misses: 1 - (15/16)^4 = 0.228
        assert hunch.worth_trying()
        hunch.record(missed=True)
    assert hunch.worth_trying()
    hunch.record(missed=True)  # 1 - (15/16)^5 = 0.276
    tries = [hunch.worth_trying() for _ in range(64)]
    assert [i for i, tried in enumerate(tries) if tried] == [31, 63], "one in 32 probes"


def test_the_guessing_comes_back_once_the_probes_hit() -> None:
    hunch = Hunch(give_up_above=0.25, probe_every=1000)
    for _ in range(8):  # 1 - (15/16)^8 = 0.403
        hunch.record(missed=True)
    hits = 0
    while not hunch.worth_trying():
        hunch.record(missed=False)
        hits += 1
    # 0.403 × (15/16)^k <= 0.25 first at k = 8 (0.403 × 0.597 = 0.241; at 7, 0.257)
    assert hits == 8


def test_remembered_values_are_the_most_recently_used_ones() -> None:
    remembered: Remembered[str, int] = Remembered(capacity=2)
    remembered.put_many([("a", 1), ("b", 2)])
    assert remembered.get_many(["a"]) == {"a": 1}  # "a" now the most recent
    remembered.put_many([("c", 3)])
    assert remembered.get_many(["a", "b", "c"]) == {"a": 1, "c": 3}
    remembered.forget(["a"])
    assert remembered.get_many(["a", "c", "x"]) == {"c": 3}
