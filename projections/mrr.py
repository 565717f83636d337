"""MRR and ARR as a projection (docs/specification.md §3.2): each subscription's MRR by day, each
customer's month-end
MRR per currency, and each month's MRR, customers and movements; and the answers read from them.

Rows:
- `mrr_subscriptions` (keyed by subscription): its customer, currency and *terms*, the facts
  that shape its MRR (see `projections.timeline`).
- `mrr_customers` (keyed by customer): per currency, each subscription's month-end steps and
  their sum, the customer's steps.
- `mrr_months` (kept): per currency and month, what the month changes: `mrr_change`,
  `customers_change`, the five movements and `churned_customers`. A month's MRR is the sum of the
  changes up to it; only months where some customer's MRR changes have a row.

An event, whatever its effective date, re-derives its subscription's steps and its customer's,
and adds to `mrr_months` the difference between the customer's movements before and after. The
months before the event's effective date come out the same, so only the months from that date
on change: a backdated cancellation rewrites the months it affects and no others.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any, Final

from subledger.domain.customer import Customer
from subledger.domain.dates import Month
from subledger.domain.ledger import Entry
from subledger.domain.subscription import Subscription
from subledger.projections.engine import Column, Projection, Row, RowKey, Rows, RowSource, Table
from subledger.projections.recognition import rhu_div
from subledger.projections.timeline import (
    Step,
    Timeline,
    base_of,
    discount_terms,
    merge_steps,
    value_at,
)

SUBSCRIPTIONS = Table(
    "mrr_subscriptions",
    key=(Column("subscription_id", "text"),),
    values=(Column("customer_id", "text"), Column("currency", "text"), Column("terms", "json")),
)
CUSTOMERS = Table(
    "mrr_customers",
    key=(Column("customer_id", "text"),),
    values=(Column("currencies", "json"),),
)
MOVEMENTS: Final = ("new", "expansion", "reactivation", "contraction", "churn")
_COUNTS: Final = ("mrr_change", "customers_change", *MOVEMENTS, "churned_customers")
MONTHS = Table(
    "mrr_months",
    key=(Column("currency", "text"), Column("month", "text")),
    values=tuple(Column(name, "int") for name in _COUNTS),
    kept=True,
)

_FOLLOW_UPS: Final = (
    Subscription.Changed,
    Subscription.Paused,
    Subscription.Resumed,
    Subscription.Cancelled,
)


class MrrProjection(Projection):
    name = "mrr"
    version = 1
    tables = (SUBSCRIPTIONS, CUSTOMERS, MONTHS)
    event_types = (Customer.Created, Subscription.Started, *_FOLLOW_UPS)
    referencing_types = (Subscription.Started, *_FOLLOW_UPS)
    referenced_tables = (CUSTOMERS, SUBSCRIPTIONS)
    fold_cost = 36  # µs per event of the log, rebuilt alone (2026-12-07)

    def keys(self, event: Any) -> Iterable[tuple[Table, RowKey]]:
        if isinstance(event, Customer.Created):
            return  # it makes the customer's row and reads nothing
        yield CUSTOMERS, (event.customer_id,)
        if not isinstance(event, Subscription.Started):
            yield SUBSCRIPTIONS, (event.subscription_id,)

    def fold(self, rows: Rows, entry: Entry) -> None:
        event: Any = entry.event
        if isinstance(event, Customer.Created):  # once per customer: the domain sees to it
            rows.put(CUSTOMERS, (event.customer_id,), {"currencies": {}})
            return
        key = (event.subscription_id,)
        if isinstance(event, Subscription.Started):
            subscription: Row = {
                "customer_id": event.customer_id,
                "currency": event.currency,
                "terms": _started(event, entry.position),
            }
        else:
            found = rows.get(SUBSCRIPTIONS, key)
            assert found is not None, "a subscription's events follow its start in the log"
            subscription = found
            _record(subscription["terms"], event, entry.position)
        rows.put(SUBSCRIPTIONS, key, subscription)
        steps = Timeline(subscription["terms"]).month_end_steps()
        _restep(rows, event.customer_id, subscription["currency"], event.subscription_id, steps)


def _started(event: Subscription.Started, position: int) -> dict[str, Any]:
    start = event.start_date.isoformat()
    return {
        "start": start,
        "started_at": position,
        "started_by": event.event_id,
        "interval": event.interval,
        "interval_count": event.interval_count or 1,
        "trial_end": _iso(event.trial_end),
        "plans": [
            {
                "date": start,
                "position": position,
                "event_id": event.event_id,
                "base": base_of(event.items),
                "discount": discount_terms(event.discount) if event.discount else None,
            }
        ],
        "pauses": [],
        "cancellations": [],
    }


def _record(terms: dict[str, Any], event: Any, position: int) -> None:
    mark = {"date": event.effective_date.isoformat(), "position": position}
    mark["event_id"] = event.event_id
    if isinstance(event, Subscription.Changed):
        mark |= {"base": base_of(event.items), "discount": discount_terms(event.discount)}
        terms["plans"].append(mark)
    elif isinstance(event, Subscription.Cancelled):
        terms["cancellations"].append(mark)
    else:
        terms["pauses"].append(mark | {"paused": isinstance(event, Subscription.Paused)})


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def _restep(
    rows: Rows, customer_id: str, currency: str, subscription_id: str, steps: list[Step]
) -> None:
    """Put a subscription's new steps in its customer's row, and what that changes in the
    months."""
    customer = rows.get(CUSTOMERS, (customer_id,))
    assert customer is not None, "a subscription's customer precedes it in the log"
    books = customer["currencies"].setdefault(currency, {"subscriptions": {}, "steps": []})
    books["subscriptions"][subscription_id] = steps
    before = _changes(books["steps"])
    books["steps"] = merge_steps(list(books["subscriptions"].values()))
    after = _changes(books["steps"])
    rows.put(CUSTOMERS, (customer_id,), customer)
    for month in sorted(before.keys() | after.keys()):
        old, new = before.get(month, {}), after.get(month, {})
        if old == new:  # most months: those before the event's effective date
            continue
        for column in _COUNTS:
            delta = new.get(column, 0) - old.get(column, 0)
            if delta:
                rows.add(MONTHS, (currency, month), column, delta)


def movement(previous: int, current: int, had_mrr: bool) -> tuple[str, int] | None:
    """The movement from `previous` to `current` month-end MRR; `had_mrr` if the customer had
    MRR > 0 on some earlier month's last day."""
    if previous == current:
        return None
    if previous == 0:
        return ("reactivation" if had_mrr else "new"), current
    if current == 0:
        return "churn", -previous
    return ("expansion" if current > previous else "contraction"), current - previous


def _movements(steps: list[Step]) -> Iterable[tuple[str, int, int, tuple[str, int]]]:
    """`(month, previous, current, movement)` for each step of a customer's series."""
    previous, had_mrr = 0, False
    for month, current, _ in steps:
        moved = movement(previous, current, had_mrr)
        assert moved is not None, "consecutive steps differ"
        yield month, previous, current, moved
        had_mrr = had_mrr or current > 0
        previous = current


def _changes(steps: list[Step]) -> dict[str, dict[str, int]]:
    """What a customer's steps add to each month's row."""
    changes = {}
    for month, previous, current, (kind, amount) in _movements(steps):
        counts = {
            "mrr_change": current - previous,
            "customers_change": (current > 0) - (previous > 0),
            kind: amount,
        }
        if kind == "churn":
            counts["churned_customers"] = 1
        changes[month] = counts
    return changes


# Answers, read from stored rows or rows folded in memory alike.


def currencies(rows: RowSource) -> list[str]:
    return sorted({key[0] for key, _ in rows.scan(MONTHS)})


def _no_movements() -> dict[str, int]:
    return dict.fromkeys(MOVEMENTS, 0)


def _months(
    rows: RowSource, currency: str | None, months: list[str]
) -> Iterable[tuple[str, int, int, Row]]:
    """`(month, mrr, customers, the month's row)` for each of `months` (consecutive, in order);
    all zeros for no currency (where the data has no MRR at all)."""
    scanned = rows.scan(MONTHS, (currency,)) if currency else []
    changes = {key[1]: row for key, row in scanned}
    mrr = customers = 0
    for month, row in changes.items():
        if month < months[0]:
            mrr += row["mrr_change"]
            customers += row["customers_change"]
    empty = dict.fromkeys(_COUNTS, 0)
    for month in months:
        row = changes.get(month, empty)
        mrr += row["mrr_change"]
        customers += row["customers_change"]
        yield month, mrr, customers, row


def monthly(rows: RowSource, currency: str | None, months: list[str]) -> list[dict[str, Any]]:
    """Each month's MRR, ARR, customers, ARPA (MRR / customers) and movements."""
    return [
        {
            "month": month,
            "mrr": mrr,
            "arr": 12 * mrr,
            "customers": customers,
            "arpa": rhu_div(mrr, customers) if customers else None,
            "movements": {kind: row[kind] for kind in MOVEMENTS},
        }
        for month, mrr, customers, row in _months(rows, currency, months)
    ]


def retention(rows: RowSource, currency: str | None, months: list[str]) -> list[dict[str, Any]]:
    """Each month's gross and net revenue retention and customer churn rate, measured against
    the MRR and customers at the end of the month before."""
    first = str(Month.parse(months[0]).previous())
    answer = []
    starting_mrr = starting_customers = 0
    for month, mrr, customers, row in _months(rows, currency, [first, *months]):
        if month != first:
            lost = row["contraction"] + row["churn"]
            answer.append(
                {
                    "month": month,
                    "starting_mrr": starting_mrr,
                    "starting_customers": starting_customers,
                    "expansion": row["expansion"],
                    "contraction": row["contraction"],
                    "churn": row["churn"],
                    "churned_customers": row["churned_customers"],
                    "gross_revenue_retention": ratio(starting_mrr + lost, starting_mrr),
                    "net_revenue_retention": ratio(
                        starting_mrr + lost + row["expansion"], starting_mrr
                    ),
                    "customer_churn_rate": ratio(row["churned_customers"], starting_customers),
                }
            )
        starting_mrr, starting_customers = mrr, customers
    return answer


def ratio(numerator: int, denominator: int) -> str | None:
    """`numerator / denominator` as a decimal string of four places, rounded half up; `None`
    where the denominator is 0."""
    if denominator == 0:
        return None
    ten_thousandths = rhu_div(numerator * 10_000, denominator)
    sign = "-" if ten_thousandths < 0 else ""
    whole, fraction = divmod(abs(ten_thousandths), 10_000)
    return f"{sign}{whole}.{fraction:04d}"


def customer_currencies(rows: RowSource, customer_id: str) -> list[str] | None:
    """The currencies of a customer's subscriptions; `None` for no such customer."""
    customer = rows.get(CUSTOMERS, (customer_id,))
    return None if customer is None else sorted(customer["currencies"])


def customer_subscriptions(rows: RowSource, customer_id: str) -> list[str]:
    """The ids of a customer's subscriptions, in every currency."""
    customer = rows.get(CUSTOMERS, (customer_id,))
    if customer is None:
        return []
    return [s for books in customer["currencies"].values() for s in books["subscriptions"]]


def customer_monthly(
    rows: RowSource, customer_id: str, currency: str | None, months: list[str]
) -> list[dict[str, Any]]:
    """One customer's month-end MRR and movement in each of `months`, with the ids of the
    events that caused the movement."""
    customer = rows.get(CUSTOMERS, (customer_id,))
    books = customer["currencies"].get(currency) if customer and currency else None
    steps: list[Step] = books["steps"] if books else []
    moved = {month: (kind, amount) for month, _, _, (kind, amount) in _movements(steps)}
    caused_by = {month: event_ids for month, _, event_ids in steps}
    answer = []
    for month in months:
        mrr = value_at(steps, month)
        movements = _no_movements()
        if month in moved:
            kind, amount = moved[month]
            movements[kind] = amount
        answer.append(
            {
                "month": month,
                "mrr": mrr,
                "arr": 12 * mrr,
                "movements": movements,
                "event_ids": caused_by.get(month, []),
            }
        )
    return answer
