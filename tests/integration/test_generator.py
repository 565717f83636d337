"""The generated business (for the demo and the benchmarks) obeys every rule, deterministically,
with or without the options that reach for the edges of syncing."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from typing import Any

import orjson
import pytest

from subledger.adapters.store import store_env
from subledger.api.demo.generator import Business, generate
from subledger.api.http.ingest import parse_submissions
from subledger.domain.ledger import Ledger

EVERY_OPTION: dict[str, Any] = {
    "currencies": {"DKK": 40, "EUR": 20, "JPY": 20, "KWD": 20},
    "due_dates": False,
    "exchange_rates": True,
    "split_credits": True,
}


def append_all(ledger: Ledger, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 1000):
        body = orjson.dumps({"events": events[start : start + 1000]})
        assert all(outcome.appended for outcome in ledger.append(parse_submissions(body)))


def test_a_generated_business_appends_without_a_refusal() -> None:
    events = generate(150, months=24, seed=3)
    ledger = Ledger(store_env("memory://"))
    append_all(ledger, events)
    assert ledger.last_position() == len(events)
    kinds = Counter(event["type"] for event in events)
    for kind in (
        "customer.created",
        "subscription.started",
        "subscription.cancelled",
        "invoice.issued",
        "payment.received",
        "payment.failed",
        "credit_note.issued",
        "period.closed",
    ):
        assert kinds[kind] > 0, kind


def test_the_same_seed_gives_the_same_business() -> None:
    assert generate(40, months=12, seed=9) == generate(40, months=12, seed=9)
    assert generate(40, months=12, seed=9) != generate(40, months=12, seed=10)
    with_options = Business(40, months=12, seed=9, **EVERY_OPTION)
    assert list(with_options.events()) == list(
        Business(40, months=12, seed=9, **EVERY_OPTION).events()
    )


def test_the_options_leave_a_seeds_default_business_as_it_was() -> None:
    default = Business(40, months=12, seed=9)
    spelled_out = Business(
        40, months=12, seed=9, due_dates=True, exchange_rates=False, split_credits=False
    )
    assert list(default.events()) == list(spelled_out.events())
    assert list(Business(40, months=12, seed=9, currencies={"EUR": 15}).events()) == list(
        Business(40, months=12, seed=9).events()
    )


@pytest.mark.postgres
def test_a_business_with_every_option_appends_whole_on_postgresql(postgres_url: str) -> None:
    events = list(Business(150, months=24, seed=3, **EVERY_OPTION).events())
    ledger = Ledger(store_env(postgres_url))
    try:
        append_all(ledger, events)
        assert ledger.last_position() == len(events)
    finally:
        ledger.close()
    invoices = [e["data"] for e in events if e["type"] == "invoice.issued"]
    assert {data["currency"] for data in invoices} == {"DKK", "EUR", "JPY", "KWD"}
    assert all("due_date" not in data and "payment_method" in data for data in invoices)
    rated = [e for e in events if "exchange_rate" in e["data"]]
    assert {e["type"] for e in rated} >= {
        "invoice.issued",
        "credit_note.issued",
        "payment.received",
    }
    assert all(data["currency"] != "DKK" for data in invoices if "exchange_rate" in data)
    assert any("lines" not in e["data"] for e in events if e["type"] == "credit_note.issued")
    assert remainders(events) > 10


def quarter(amount: int) -> int:
    """`rhu(amount × 25%)`, the generator's VAT rate, in plain integer arithmetic."""
    exact = Fraction(amount, 4)
    return (2 * exact.numerator + exact.denominator) // (2 * exact.denominator)


def remainders(events: list[dict[str, Any]]) -> int:
    """How many credits complete a line with a VAT other than `rhu(amount × 25%)`: where docs/specification.md §2's
    remainder rule (the line's VAT less the VAT already credited) changes the figure."""
    lines: dict[tuple[str, str], list[int]] = {}  # net, VAT, credited net, credited VAT
    count = 0
    for event in events:
        data = event["data"]
        if event["type"] == "invoice.issued":
            for line in data["lines"]:
                net = int(line["quantity"]) * line["unit_amount"] - line.get("discount_amount", 0)
                lines[data["invoice_id"], line["line_id"]] = [net, quarter(net), 0, 0]
        elif event["type"] == "credit_note.issued":
            invoice_id = data["invoice_id"]
            credits = (
                [(c["line_id"], c["amount"]) for c in data["lines"]]
                if "lines" in data
                else [
                    (line_id, kept[0] - kept[2])
                    for (of, line_id), kept in lines.items()
                    if of == invoice_id and kept[0] > kept[2]
                ]
            )
            for line_id, amount in credits:
                kept = lines[invoice_id, line_id]
                kept[2] += amount
                vat = kept[1] - kept[3] if kept[2] == kept[0] else quarter(amount)
                count += vat != quarter(amount)
                kept[3] += vat
    return count
