"""The generated business (for the demo and the benchmarks) obeys every rule, deterministically."""

from __future__ import annotations

from collections import Counter

import orjson

from adapters.store import store_env
from api.generator import generate
from api.ingest import parse_submissions
from domain.ledger import Ledger


def test_a_generated_business_appends_without_a_refusal() -> None:
    events = generate(150, months=24, seed=3)
    ledger = Ledger(store_env("memory://"))
    for start in range(0, len(events), 1000):
        body = orjson.dumps({"events": events[start : start + 1000]})
        assert all(outcome.appended for outcome in ledger.append(parse_submissions(body)))
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
