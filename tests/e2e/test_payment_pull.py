"""Two-way payments end to end, against each target's sandbox (in a process of its own) over
real HTTP, on PostgreSQL, with `subledger sync run` in processes of its own: a generated
business of 200 customers is synced with a third of its kroner payments withheld from our
log; the accountant registers those at the target (`POST /_sandbox/payments`); after a poll
our log holds each of them once with its `source`, our receivables and the reconciliation
agree with the target, nothing is sent back, and polling again appends nothing.

The payments withheld are every third of the business's kroner payments that no refund
refers to (a refund of a payment our log lacks could not be appended); everything expected is
worked out here from the business's events and from what the test registered."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

import httpx
import pytest

from bench.harness import server
from bench.sandboxes import (
    Dispatcher,
    Sandbox,
    append,
    configure,
    enqueue,
    environment,
    prepare,
    wait_until_settled,
)
from subledger.adapters.store import store_env
from subledger.api.demo.generator import Business
from subledger.domain.invoice import Invoice
from subledger.domain.ledger import Ledger

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(900)]

ADMIN = "pull-tests-admin-secret"
KEYS = f"tests:{ADMIN}:read+admin"
#: The namespace docs/sync.md gives pulled payments' event ids.
NAMESPACE = UUID("4f1d0a5c-8a43-4b0e-9d61-6c3e0b7f2a19")
#: Our bank account of each method in the default chart (docs/accounting.md), unmapped.
ACCOUNTS = {"card": 5810, "mobilepay": 5820, "bank_transfer": 5800}


@pytest.fixture(scope="module")
def business() -> list[dict[str, Any]]:
    return list(Business(customers=200, months=24, seed=29).events())


def withheld(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The events our log gets, and the payments withheld from it (a third of the kroner
    payments that no refund refers to)."""
    refunded = {e["data"]["payment_id"] for e in events if e["type"] == "payment.refunded"}
    candidates = [
        e
        for e in events
        if e["type"] == "payment.received"
        and e["data"]["currency"] == "DKK"
        and e["data"]["payment_id"] not in refunded
    ]
    held = candidates[::3]
    ids = {e["id"] for e in held}
    return [e for e in events if e["id"] not in ids], held


def numbers(events: list[dict[str, Any]]) -> dict[str, str]:
    return {
        e["data"]["invoice_id"]: e["data"]["number"]
        for e in events
        if e["type"] == "invoice.issued"
    }


def sourced(database_url: str) -> list[Any]:
    """The payments and refunds in our log that came from a target."""
    ledger = Ledger(store_env(database_url))
    try:
        kinds = (Invoice.PaymentReceived, Invoice.PaymentRefunded)
        entries = ledger.iter_entries(ledger.last_position(), kinds)
        return [entry.event for entry in entries if getattr(entry.event, "source", None)]
    finally:
        ledger.close()


def last_position(database_url: str) -> int:
    ledger = Ledger(store_env(database_url))
    try:
        return ledger.last_position()
    finally:
        ledger.close()


def receivable(base: str, as_of: str) -> int:
    """The kroner receivable account's balance in the trial balance."""
    answer = httpx.get(
        f"{base}/v1/ledger/trial-balance",
        params={"currency": "DKK", "as_of": as_of},
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    rows = [row for row in answer.json()["accounts"] if row["role"] == "receivable"]
    return sum(row["balance"] for row in rows)


def reconciliation(base: str, kind: str) -> dict[str, Any]:
    answer = httpx.get(
        f"{base}/v1/sync/reconciliation",
        params={"target": kind},
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=300,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def payments_at(box: Sandbox) -> int:
    counts = httpx.get(f"{box.url}/_sandbox/summary", timeout=30).json()["counts"]
    return int(counts["bankPayments"] if box.kind == "billy" else counts["payments"])


def requests_served(box: Sandbox) -> int:
    return int(box.stats()["requests_served"])


def test_payments_registered_at_the_target_come_in_once_and_receivables_agree(
    business: list[dict[str, Any]], postgres_url: str, target: Sandbox, tmp_path: Path
) -> None:
    started = time.monotonic()
    ours, held = withheld(business)
    assert len(held) >= 100
    append(postgres_url, ours)
    prepare(target, ours)
    push = configure(tmp_path / "push.toml", target)
    both = configure(tmp_path / "both.toml", target, direction="both", poll_seconds=1)
    env = environment(postgres_url, both, target.kind)
    enqueue(env)

    with Dispatcher(env):
        sent = wait_until_settled(postgres_url, target.kind)
    assert sent["failed"] == 0
    assert sourced(postgres_url) == [], "none of our own payments comes back"
    pushed = sum(1 for e in ours if e["type"] in ("payment.received", "payment.refunded"))
    assert payments_at(target) == pushed

    as_of = "2099-12-31"  # after every entry
    push_env = {**env, "SUBLEDGER_CONFIG": str(push)}
    with server(postgres_url, KEYS, base_env=push_env) as base:
        before = receivable(base, as_of)

    # The accountant's bank reconciliation: each withheld payment, into its method's account.
    number_of = numbers(business)
    registered: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=target.url, timeout=30) as client:
        for event in held:
            data = event["data"]
            body = {
                "invoice": number_of[data["invoice_id"]],
                "amount": data["amount"] / 100,
                "date": data["received_on"],
                "account": ACCOUNTS[data["method"]],
            }
            answer = client.post("/_sandbox/payments", json=body)
            assert answer.status_code == 201, answer.text
            made = answer.json()
            registered[str(made.get("id") or made.get("Id"))] = data
    assert payments_at(target) == pushed + len(held)

    with Dispatcher(env):
        deadline = time.monotonic() + 300
        while len(taken := sourced(postgres_url)) < len(held):
            assert time.monotonic() < deadline, f"{len(taken)} of {len(held)} taken in"
            time.sleep(1)
        wait_until_settled(postgres_url, target.kind)
        position = last_position(postgres_url)
        served = requests_served(target)
        # Two more polls at least (every second), and nothing more in the log.
        while requests_served(target) < served + 2:
            time.sleep(0.5)
        time.sleep(2.5)
        assert last_position(postgres_url) == position, "a second poll appends nothing"
    assert wait_until_settled(postgres_url, target.kind)["failed"] == 0

    taken = sourced(postgres_url)
    assert len(taken) == len(held), "each once"
    assert {event.source.reference for event in taken} == set(registered)
    for event in taken:
        data = registered[event.source.reference]
        assert event.source.target == target.kind
        assert event.event_id == str(uuid5(NAMESPACE, f"{target.kind}\n{event.source.reference}"))
        assert (event.invoice_id, event.amount, event.currency) == (
            data["invoice_id"],
            data["amount"],
            "DKK",
        )
        assert (event.received_on.isoformat(), event.method) == (
            data["received_on"],
            data["method"],
        )
    wanted = Counter((d["invoice_id"], d["amount"]) for d in registered.values())
    assert Counter((e.invoice_id, e.amount) for e in taken) == wanted
    assert payments_at(target) == pushed + len(held), "nothing is sent back to the target"

    with server(postgres_url, KEYS, base_env=push_env) as base:
        after = receivable(base, as_of)
        report = reconciliation(base, target.kind)
    assert after == before - sum(d["amount"] for d in registered.values())
    assert report["differences"] == []
    assert report["ours"] == report["theirs"]
    print(f"{target.kind}: {len(held)} payments taken in, {time.monotonic() - started:.0f} s")
