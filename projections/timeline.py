"""A subscription's MRR as a function of the day (docs/specification.md §3.2), and at month ends.

The MRR projection keeps, per subscription, the facts that shape its MRR (its *terms*: start,
plan versions with their discounts, trial, pauses, cancellations) as JSON, in any order they
were appended. `Timeline` reads them in effective-date order and answers two questions: the MRR
on a day, and the *steps* of the month-end MRR: `[month, value, event_ids]` for each month
whose last-day MRR differs from the month before's, `event_ids` naming the events dated in that
month that made it differ. Before the first step the value is 0; after the last it holds.

The month-end MRR can only change in a month where something is dated: the start, a change, the
trial's end, a pause or resumption, the cancellation, a repeating discount's end. So the steps
come from evaluating the last day of those months alone, however long the subscription runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Final

from subledger.domain.dates import add_months, days_in_month
from subledger.domain.money import extended_amount
from subledger.domain.values import CLEARED, Cleared, Discount, SubscriptionItem
from subledger.projections.recognition import rhu_div

#: Periods a year per interval: `MRR = rhu(discounted × P / (12 × interval_count))`.
PERIODS_A_YEAR: Final = {"week": 52, "month": 12, "quarter": 4, "year": 1}

#: In a plan's `discount`: the change named none, so the discount before it goes on.
KEEP: Final = "keep"

Step = list[Any]
"""`[month "YYYY-MM", month-end MRR, [event ids]]`."""


def base_of(items: tuple[SubscriptionItem, ...]) -> int:
    """`Σ rhu(quantity × unit_amount)` over the items."""
    return sum(item.amount for item in items)


def discount_terms(discount: Discount | Cleared | None) -> dict[str, Any] | str | None:
    """A discount as a plan stores it: its terms, `None` for none, `KEEP` to go on as before."""
    if discount is None:
        return KEEP
    if discount is CLEARED or not isinstance(discount, Discount):
        return None
    terms: dict[str, Any] = {"duration": discount.effective_duration}
    if discount.percent is not None:
        terms["percent"] = str(discount.percent)
    else:
        terms["amount_off"] = discount.amount_off
    if discount.duration_in_months is not None:
        terms["months"] = discount.duration_in_months
    return terms


@dataclass(frozen=True, slots=True)
class _Discount:
    percent: Decimal | None
    amount_off: int
    #: The first day it no longer applies (a repeating discount), else `None`.
    until: date | None

    def price(self, base: int, day: date) -> int:
        if self.until is not None and day >= self.until:
            return base
        if self.percent is not None:
            return base - extended_amount(self.percent, base)
        return max(0, base - self.amount_off)


@dataclass(frozen=True, slots=True)
class _Plan:
    since: date
    base: int
    discount: _Discount | None


class Timeline:
    """The terms of one subscription, in effective-date order."""

    def __init__(self, terms: dict[str, Any]) -> None:
        self.start = date.fromisoformat(terms["start"])
        trial_end = terms["trial_end"]
        self.trial_end = date.fromisoformat(trial_end) if trial_end else None
        self.divisor = 12 * terms["interval_count"]
        self.periods = PERIODS_A_YEAR[terms["interval"]]
        #: `(date, position, event_id)` of everything dated that can move the MRR.
        started = (terms["started_at"], terms["started_by"])
        self.marks: list[tuple[date, int, str]] = [(self.start, *started)]
        if self.trial_end is not None:
            self.marks.append((self.trial_end, *started))
        self.plans = self._plans(terms["plans"])
        self.pauses = self._pauses(terms["pauses"])
        self.end = self._end(terms["cancellations"])

    def _plans(self, stored: list[dict[str, Any]]) -> list[_Plan]:
        plans: list[_Plan] = []
        discount: _Discount | None = None
        for plan in sorted(stored, key=lambda p: (p["date"], p["position"])):
            since = date.fromisoformat(plan["date"])
            self.marks.append((since, plan["position"], plan["event_id"]))
            terms = plan["discount"]
            if terms != KEEP:
                discount = self._discount(terms, since, plan["position"], plan["event_id"])
            plans.append(_Plan(since, plan["base"], discount))
        return plans

    def _discount(
        self, terms: dict[str, Any] | None, since: date, position: int, event_id: str
    ) -> _Discount | None:
        if terms is None or terms["duration"] == "once":
            return None
        until = None
        if terms["duration"] == "repeating":
            until = add_months(since, terms["months"])
            self.marks.append((until, position, event_id))
        percent = terms.get("percent")
        return _Discount(
            percent=None if percent is None else Decimal(percent),
            amount_off=terms.get("amount_off") or 0,
            until=until,
        )

    def _pauses(self, stored: list[dict[str, Any]]) -> list[tuple[date, bool]]:
        pauses = []
        for change in sorted(stored, key=lambda p: (p["date"], p["position"])):
            day = date.fromisoformat(change["date"])
            self.marks.append((day, change["position"], change["event_id"]))
            pauses.append((day, change["paused"]))
        return pauses

    def _end(self, stored: list[dict[str, Any]]) -> date | None:
        """The earliest cancellation's date: the first day without service."""
        if not stored:
            return None
        first = min(stored, key=lambda c: (c["date"], c["position"]))
        end = date.fromisoformat(first["date"])
        self.marks.append((end, first["position"], first["event_id"]))
        return end

    def mrr_on(self, day: date) -> int:
        if day < self.start or (self.end is not None and day >= self.end):
            return 0
        if self.trial_end is not None and day < self.trial_end:
            return 0
        if self._paused_on(day):
            return 0
        plan = self._plan_on(day)
        discounted = plan.base if plan.discount is None else plan.discount.price(plan.base, day)
        return rhu_div(discounted * self.periods, self.divisor)

    def _paused_on(self, day: date) -> bool:
        paused = False
        for since, pausing in self.pauses:
            if since > day:
                break
            paused = pausing
        return paused

    def _plan_on(self, day: date) -> _Plan:
        chosen = self.plans[0]
        for plan in self.plans:
            if plan.since > day:
                break
            chosen = plan
        return chosen

    def month_end_steps(self) -> list[Step]:
        """The month-end MRR wherever it changes, with the events dated in that month."""
        by_month: dict[tuple[int, int], list[tuple[int, str]]] = {}
        for day, position, event_id in self.marks:
            if self.end is None or day <= self.end:
                by_month.setdefault((day.year, day.month), []).append((position, event_id))
        steps: list[Step] = []
        previous = 0
        for year, month in sorted(by_month):
            value = self.mrr_on(date(year, month, days_in_month(year, month)))
            if value != previous:
                marks = sorted(by_month[year, month])
                steps.append([f"{year:04d}-{month:02d}", value, _unique(e for _, e in marks)])
                previous = value
        return steps


def merge_steps(series: list[list[Step]]) -> list[Step]:
    """The steps of the sum of several step series (a customer's subscriptions)."""
    changes: dict[str, tuple[int, list[str]]] = {}
    for steps in series:
        previous = 0
        for month, value, event_ids in steps:
            delta, ids = changes.get(month, (0, []))
            changes[month] = (delta + value - previous, ids + event_ids)
            previous = value
    merged: list[Step] = []
    total = 0
    for month in sorted(changes):
        delta, ids = changes[month]
        if delta:
            total += delta
            merged.append([month, total, _unique(ids)])
    return merged


def value_at(steps: list[Step], month: str) -> int:
    """The month-end value of a step series in `month`."""
    value = 0
    for step_month, step_value, _ in steps:
        if step_month > month:
            break
        value = step_value
    return int(value)


def _unique(event_ids: Any) -> list[str]:
    return list(dict.fromkeys(event_ids))
