"""Properties of the MRR projection over random subscription histories (docs/specification.md §3.2):

- its month-end MRR, customers and movements are what the rules of docs/specification.md §3.2 give, evaluated on
  each month's last day from the facts;
- `MRR(M) = MRR(M − 1) + Σ movements(M)` in every month, per currency;
- facts appended backdated (in any order the rules allow) give the same answers as the same facts
  appended in date order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from subledger.adapters.store import store_env
from subledger.domain import facts
from subledger.domain.dates import Month, add_months
from subledger.domain.ledger import Ledger
from subledger.domain.values import CLEARED, Discount, SubscriptionItem
from subledger.projections.engine import Rows
from subledger.projections.mrr import MrrProjection, currencies, customer_monthly, monthly
from tests.builders import customer, submission

FIRST_DAY = date(2026, 1, 1)
MONTHS = [str(Month(2026 + i // 12, 1 + i % 12)) for i in range(30)]
PERIODS = {"week": 52, "month": 12, "quarter": 4, "year": 1}


@dataclass
class History:
    """One subscription's facts in date order (ties: the order they must be appended in)."""

    started: facts.SubscriptionStarted
    later: list[facts.Fact] = field(default_factory=list)


items = st.lists(
    st.builds(
        SubscriptionItem,
        product_id=st.just("plan"),
        quantity=st.sampled_from([Decimal(1), Decimal(2), Decimal("1.5"), Decimal("0.333")]),
        unit_amount=st.integers(0, 200_000),
    ),
    min_size=1,
    max_size=2,
).map(tuple)
durations = st.one_of(
    st.tuples(st.just("forever"), st.none()),
    st.tuples(st.just("once"), st.none()),
    st.tuples(st.just("repeating"), st.integers(1, 6)),
)
discounts = st.builds(
    lambda off, duration: Discount(
        percent=off if isinstance(off, Decimal) else None,
        amount_off=off if isinstance(off, int) else None,
        duration=duration[0],
        duration_in_months=duration[1],
    ),
    st.one_of(
        st.sampled_from([Decimal("0.2"), Decimal("0.15"), Decimal("0.333"), Decimal(1)]),
        st.integers(1, 50_000),
    ),
    durations,
)


@st.composite
def histories(draw: st.DrawFn, subscription_id: str, customer_id: str) -> History:
    start = FIRST_DAY + timedelta(days=draw(st.integers(0, 400)))
    trial = draw(st.none() | st.integers(0, 70))
    started = facts.SubscriptionStarted(
        subscription_id=subscription_id,
        customer_id=customer_id,
        start_date=start,
        currency=draw(st.sampled_from(["DKK", "EUR"])),
        interval=draw(st.sampled_from(list(PERIODS))),
        interval_count=draw(st.none() | st.integers(1, 3)),
        items=draw(items),
        discount=draw(st.none() | discounts),
        trial_end=None if trial is None else start + timedelta(days=trial),
    )
    history = History(started)
    # Distinct dates, so that no two facts share a day and date order is one order.
    gaps = draw(st.lists(st.integers(1, 80), max_size=5))
    day, paused = start, False
    for gap in gaps:
        day += timedelta(days=gap)
        kind = draw(st.sampled_from(["change", "pause"]))
        if kind == "change":
            history.later.append(
                facts.SubscriptionChanged(
                    subscription_id=subscription_id,
                    effective_date=day,
                    items=draw(items),
                    discount=draw(st.none() | st.just(CLEARED) | discounts),
                )
            )
        else:
            kind_of = facts.SubscriptionResumed if paused else facts.SubscriptionPaused
            history.later.append(kind_of(subscription_id=subscription_id, effective_date=day))
            paused = not paused
    if draw(st.booleans()):
        cancel_on = day + timedelta(days=draw(st.integers(1, 120)))
        history.later.append(
            facts.SubscriptionCancelled(subscription_id=subscription_id, effective_date=cancel_on)
        )
    return history


@st.composite
def books(draw: st.DrawFn) -> list[History]:
    count = draw(st.integers(1, 5))
    owners = [draw(st.sampled_from(["c1", "c2", "c3"])) for _ in range(count)]
    return [draw(histories(f"s{i}", owner)) for i, owner in enumerate(owners)]


def ledger_of(ordered: list[facts.Fact], ids: dict[int, str]) -> Ledger:
    ledger = Ledger(store_env("memory://"))
    ledger.append([submission(customer(c), f"evt_{c}") for c in ("c1", "c2", "c3")])
    for fact in ordered:
        outcomes = ledger.append([submission(fact, ids[id(fact)])])
        assert outcomes[0].appended
    return ledger


def fold(ledger: Ledger) -> Rows:
    projection = MrrProjection()
    rows = Rows()
    for entry in ledger.iter_entries(ledger.last_position(), projection.event_types):
        projection.fold(rows, entry)
    return rows


def in_date_order(histories: list[History]) -> list[facts.Fact]:
    return [h.started for h in histories] + sorted(
        (fact for h in histories for fact in h.later), key=lambda f: f.effective_date
    )


def backdated(histories: list[History], seed: int) -> list[facts.Fact]:
    """Each subscription's later facts shuffled, pauses and resumptions kept in their order
    (they alternate as appended), subscriptions interleaved."""
    shuffler = random.Random(seed)
    streams = []
    for history in histories:
        later = list(history.later)
        shuffler.shuffle(later)
        pausing = iter([f for f in history.later if _is_pause_change(f)])
        later = [next(pausing) if _is_pause_change(f) else f for f in later]
        streams.append([history.started, *later])
    ordered: list[facts.Fact] = []
    while streams:
        stream = shuffler.choice(streams)
        ordered.append(stream.pop(0))
        if not stream:
            streams.remove(stream)
    return ordered


def _is_pause_change(fact: facts.Fact) -> bool:
    return isinstance(fact, facts.SubscriptionPaused | facts.SubscriptionResumed)


def mrr_by_the_rule(history: History, day: date) -> int:
    """docs/specification.md §3.2 read literally, from the facts, for one day."""
    started = history.started
    if day < started.start_date:
        return 0
    if started.trial_end is not None and day < started.trial_end:
        return 0
    items, discount, discount_since, paused = (
        started.items,
        started.discount,
        started.start_date,
        False,
    )
    for fact in history.later:
        if fact.effective_date > day:  # type: ignore[attr-defined]
            break
        if isinstance(fact, facts.SubscriptionCancelled):
            return 0
        if isinstance(fact, facts.SubscriptionPaused | facts.SubscriptionResumed):
            paused = isinstance(fact, facts.SubscriptionPaused)
        if isinstance(fact, facts.SubscriptionChanged):
            items = fact.items
            if fact.discount is CLEARED:
                discount = None
            elif isinstance(fact.discount, Discount):
                discount, discount_since = fact.discount, fact.effective_date
    if paused:
        return 0
    base = sum(_rhu(item.quantity * item.unit_amount) for item in items)
    price = base
    if discount is not None and discount.duration != "once":
        applies = discount.duration != "repeating" or day < add_months(
            discount_since, discount.duration_in_months or 0
        )
        if applies and discount.percent is not None:
            price = base - _rhu(base * discount.percent)
        elif applies:
            price = max(0, base - (discount.amount_off or 0))
    return _rhu(Decimal(price * PERIODS[started.interval]) / (12 * (started.interval_count or 1)))


def _rhu(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding="ROUND_HALF_UP"))


def _ids(histories: list[History]) -> dict[int, str]:
    every = [fact for h in histories for fact in (h.started, *h.later)]
    return {id(fact): f"evt_{n}" for n, fact in enumerate(every)}


@settings(max_examples=150, deadline=None)
@given(books())
def test_month_end_mrr_is_the_rule_evaluated_on_each_last_day(histories: list[History]) -> None:
    with_ids = _ids(histories)
    rows = fold(ledger_of(in_date_order(histories), with_ids))
    for currency in ("DKK", "EUR"):
        previous: dict[str, int] = {}
        had_mrr: set[str] = set()
        for month in monthly(rows, currency, MONTHS):
            last_day = Month.parse(month["month"]).last_day
            values: dict[str, int] = {}
            for h in histories:
                if h.started.currency == currency:
                    owner = h.started.customer_id
                    values[owner] = values.get(owner, 0) + mrr_by_the_rule(h, last_day)
            assert month["mrr"] == sum(values.values()), month["month"]
            assert month["customers"] == sum(1 for v in values.values() if v > 0)
            assert month["movements"] == movements_by_the_rule(previous, values, had_mrr)
            had_mrr |= {owner for owner, value in values.items() if value > 0}
            previous = values


def movements_by_the_rule(
    previous: dict[str, int], current: dict[str, int], had_mrr: set[str]
) -> dict[str, int]:
    moves = dict.fromkeys(("new", "expansion", "reactivation", "contraction", "churn"), 0)
    for owner in previous.keys() | current.keys():
        p, c = previous.get(owner, 0), current.get(owner, 0)
        if p == 0 < c:
            moves["reactivation" if owner in had_mrr else "new"] += c
        elif c > p > 0:
            moves["expansion"] += c - p
        elif 0 < c < p:
            moves["contraction"] += c - p
        elif p > 0 == c:
            moves["churn"] -= p
    return moves


@settings(max_examples=150, deadline=None)
@given(books())
def test_the_movement_identity_holds_every_month(histories: list[History]) -> None:
    rows = fold(ledger_of(in_date_order(histories), _ids(histories)))
    for currency in currencies(rows):
        previous = 0
        for month in monthly(rows, currency, MONTHS):
            assert month["mrr"] == previous + sum(month["movements"].values())
            assert month["arr"] == 12 * month["mrr"]
            previous = month["mrr"]


@settings(max_examples=150, deadline=None)
@given(books(), st.integers(0, 2**32))
def test_backdated_facts_give_what_date_ordered_facts_give(
    histories: list[History], seed: int
) -> None:
    ids = _ids(histories)
    ordered = fold(ledger_of(in_date_order(histories), ids))
    shuffled = fold(ledger_of(backdated(histories, seed), ids))
    assert _answers(shuffled) == _answers(ordered)


def _answers(rows: Rows) -> dict[str, Any]:
    return {
        "months": {c: monthly(rows, c, MONTHS) for c in ("DKK", "EUR")},
        "customers": {
            (c, currency): [
                (m["month"], m["mrr"], m["movements"], sorted(m["event_ids"]))
                for m in customer_monthly(rows, c, currency, MONTHS)
            ]
            for c in ("c1", "c2", "c3")
            for currency in ("DKK", "EUR")
        },
    }
