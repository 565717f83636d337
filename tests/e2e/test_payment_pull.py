"""Two-way payments end to end, against each target's sandbox (in a process of its own) over
real HTTP, on PostgreSQL, with `subledger sync run` in processes of its own: a generated
business of 200 customers in kroner, euros, yen and dinars is synced with a third of its
payments withheld from our log, and the refunds of those; the accountant registers them at the
target (`POST /_sandbox/payments`) as a person does, a foreign-currency payment at the bank's
rate; after a poll our log holds each of them once with its `source`, in the invoice's
currency at the rate the target recorded, each refund refunding the payment taken in before
it; our receivables per currency are the target's, the reconciliation agrees, nothing is sent
back, and polling again appends nothing.

The payments withheld are every third of the business's payments of each currency, with and
without a refund (with their refunds); everything expected is worked out here from the
business's events and from what the test registered."""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal
from fractions import Fraction
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
    counts,
    enqueue,
    environment,
    prepare,
    wait_until_settled,
)
from subledger.adapters.store import store_env
from subledger.api.demo.generator import Business
from subledger.domain.invoice import Invoice
from subledger.domain.ledger import Ledger

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(1500)]

ADMIN = "pull-tests-admin-secret"
KEYS = f"tests:{ADMIN}:read+admin"
#: The namespace docs/sync.md gives pulled payments' event ids.
NAMESPACE = UUID("4f1d0a5c-8a43-4b0e-9d61-6c3e0b7f2a19")
#: Our bank account of each method in the default chart (docs/accounting.md), unmapped.
ACCOUNTS = {"card": 5810, "mobilepay": 5820, "bank_transfer": 5800}
CURRENCIES = {"DKK": 40, "EUR": 20, "JPY": 20, "KWD": 20}
#: ISO 4217 decimals, written out here.
DECIMALS = {"DKK": 2, "EUR": 2, "JPY": 0, "KWD": 3}
#: The bank's rates (kroner per unit) the accountant registers at: not the events' own
#: (api/demo/generator.py's EXCHANGE_RATES), so that the rates taken in are the target's.
BANK_RATES = {"EUR": Fraction("7.4550"), "JPY": Fraction("0.0441"), "KWD": Fraction("22.2950")}


@pytest.fixture(scope="module")
def business() -> list[dict[str, Any]]:
    return list(
        Business(
            customers=200, months=12, seed=29, currencies=CURRENCIES, exchange_rates=True
        ).events()
    )


def rounded(value: Fraction) -> int:
    """Half away from zero."""
    whole, rest = divmod(abs(value.numerator), value.denominator)
    if 2 * rest >= value.denominator:
        whole += 1
    return whole if value >= 0 else -whole


def withheld(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The events our log gets, and those withheld from it: every third payment of each
    currency among those with a refund and among those without, and their refunds (in the
    business's order)."""
    refunded = {e["data"]["payment_id"] for e in events if e["type"] == "payment.refunded"}
    groups: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for event in events:
        if event["type"] == "payment.received":
            data = event["data"]
            key = (data["currency"], data["payment_id"] in refunded)
            groups.setdefault(key, []).append(event)
    payments = {e["data"]["payment_id"] for group in groups.values() for e in group[::3]}
    held = [
        e
        for e in events
        if e["type"] in ("payment.received", "payment.refunded")
        and e["data"]["payment_id"] in payments
    ]
    ids = {e["id"] for e in held}
    return [e for e in events if e["id"] not in ids], held


def sourced(database_url: str) -> list[Any]:
    """The payments and refunds in our log that came from a target, in log order."""
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


def receivables(base: str) -> dict[str, int]:
    """The receivable account's balance per currency in the trial balance, after every
    entry."""
    found = {}
    for currency in CURRENCIES:
        answer = httpx.get(
            f"{base}/v1/ledger/trial-balance",
            params={"currency": currency, "as_of": "2099-12-31"},
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=120,
        )
        assert answer.status_code == 200, answer.text
        rows = [row for row in answer.json()["accounts"] if row["role"] == "receivable"]
        found[currency] = sum(row["balance"] for row in rows)
    return found


def in_minor(major: Any, currency: str) -> int:
    shifted = Decimal(str(major)).scaleb(DECIMALS[currency])
    assert shifted == shifted.to_integral_value(), (major, currency)
    return int(shifted)


def owed_at(box: Sandbox) -> dict[str, int]:
    """What the target's invoices still owe, per currency, read off its own API: Billy's
    invoices' `balance`; Dinero's `RemainingAmount` of each booked invoice's payments."""
    owed = dict.fromkeys(CURRENCIES, 0)
    with box.client() as client:
        if box.kind == "billy":
            page = 1
            while True:
                body = client.get("/invoices", params={"page": page, "pageSize": 1000}).json()
                for invoice in body["invoices"]:
                    if invoice["type"] == "invoice" and invoice["state"] == "approved":
                        currency = invoice["currencyId"]
                        owed[currency] += in_minor(invoice["balance"], currency)
                if page >= body["meta"]["paging"]["pageCount"]:
                    return owed
                page += 1
        fields = "Guid,Currency,Status"
        page = 0
        invoices = []
        while True:
            params = {"page": page, "pageSize": 1000, "fields": fields}
            collection = client.get("/invoices", params=params).json()["Collection"]
            invoices += collection
            if len(collection) < 1000:
                break
            page += 1
        v2 = str(client.base_url).replace("/v1/", "/v2/")
        for invoice in invoices:
            if invoice["Status"] != "Booked":
                continue
            held = client.get(f"{v2}/invoices/{invoice['Guid']}/payments").json()
            currency = invoice["Currency"]
            owed[currency] += in_minor(held["RemainingAmount"], currency)
    return owed


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


def registration(kind: str, event: dict[str, Any], currency: str) -> tuple[dict[str, Any], Any]:
    """What the accountant enters for a withheld payment or refund, and what the target
    should then hold of it: (amount settled in the invoice's currency, the kroner booked, the
    rate). Billy counts a bank payment in its account's currency (kroner), at the bank's rate
    from the invoice's; Dinero takes the invoice's currency and works the kroner out at it."""
    data = event["data"]
    refund = event["type"] == "payment.refunded"
    figure = Fraction(data["amount"], 10 ** DECIMALS[currency])
    body: dict[str, Any] = {"date": data["refunded_on" if refund else "received_on"]}
    if refund:
        body["refund"] = True
    if currency == "DKK":
        body["amount"] = float(figure)
        return body, (data["amount"], data["amount"], None)
    rate = BANK_RATES[currency]
    kroner = rounded(figure * rate * 100)
    body["exchange_rate"] = float(rate)
    if kind == "billy":
        body["amount"] = float(Fraction(kroner, 100))
        # Billy settles the kroner at the rate: back to the figure, the rate's as given.
        settled = rounded(Fraction(kroner, 100) / rate * 10 ** DECIMALS[currency])
        return body, (settled, kroner, rate)
    body["amount"] = float(figure)
    # Dinero books the kroner and the figure; the rate it recorded is the one over the other.
    return body, (data["amount"], kroner, Fraction(kroner, 100) / figure)


def test_payments_and_refunds_registered_at_the_target_come_in_once_in_every_currency(
    business: list[dict[str, Any]], postgres_url: str, target: Sandbox, tmp_path: Path
) -> None:
    started = time.monotonic()
    ours, held = withheld(business)
    payments = [e for e in business if e["type"] == "payment.received"]
    held_payments = [e for e in held if e["type"] == "payment.received"]
    held_refunds = [e for e in held if e["type"] == "payment.refunded"]
    assert abs(3 * len(held_payments) - len(payments)) <= 3 * 8, "a third of the payments"
    currency_of = {
        e["data"]["invoice_id"]: e["data"]["currency"]
        for e in business
        if e["type"] == "invoice.issued"
    }
    assert {currency_of[e["data"]["invoice_id"]] for e in held_payments} == set(CURRENCIES)
    invoice_of = {e["data"]["payment_id"]: e["data"]["invoice_id"] for e in held_payments}
    assert {currency_of[invoice_of[e["data"]["payment_id"]]] for e in held_refunds} == set(
        CURRENCIES
    ), "refunds in every currency"
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

    push_env = {**env, "SUBLEDGER_CONFIG": str(push)}
    with server(postgres_url, KEYS, base_env=push_env) as base:
        before = receivables(base)

    # The accountant's bank reconciliation: each withheld payment into its method's account,
    # each refund out of the account its payment went into, in the business's order.
    numbers = {
        e["data"]["invoice_id"]: e["data"]["number"]
        for e in business
        if e["type"] == "invoice.issued"
    }
    method_of = {e["data"]["payment_id"]: e["data"]["method"] for e in held_payments}
    registered: dict[str, tuple[dict[str, Any], tuple[int, int, Fraction | None]]] = {}
    reference_of: dict[str, str] = {}
    with httpx.Client(base_url=target.url, timeout=30) as client:
        for event in held:
            data = event["data"]
            invoice_id = invoice_of[data["payment_id"]]
            currency = currency_of[invoice_id]
            body, expected = registration(target.kind, event, currency)
            body["invoice"] = numbers[invoice_id]
            body["account"] = ACCOUNTS[method_of[data["payment_id"]]]
            answer = client.post("/_sandbox/payments", json=body)
            assert answer.status_code == 201, answer.text
            made = answer.json()
            reference = str(made.get("id") or made.get("Id"))
            registered[reference] = (event, expected)
            reference_of[data.get("refund_id") or data["payment_id"]] = reference
    assert payments_at(target) == pushed + len(held)

    with Dispatcher(env):
        deadline = time.monotonic() + 600
        while len(taken := sourced(postgres_url)) < len(held):
            assert time.monotonic() < deadline, f"{len(taken)} of {len(held)} taken in"
            time.sleep(1)
        # Their messages to the target they came from (sent as there already) are enqueued as
        # the outbox folds them: wait for every one of them.
        while counts(postgres_url, target.kind)["sent"] < sent["sent"] + len(held):
            assert time.monotonic() < deadline, counts(postgres_url, target.kind)
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
    assert Counter(event.source.reference for event in taken) == Counter(registered.keys())
    seen: set[str] = set()
    for event in taken:
        original, (settled, kroner, rate) = registered[event.source.reference]
        data = original["data"]
        assert event.source.target == target.kind
        assert event.event_id == str(uuid5(NAMESPACE, f"{target.kind}\n{event.source.reference}"))
        assert event.amount == settled == data["amount"]
        if rate is None:
            assert event.exchange_rate is None
        elif target.kind == "billy":
            assert Fraction(event.exchange_rate) == rate, "the bank payment's cashExchangeRate"
        else:
            assert abs(Fraction(event.exchange_rate) - rate) <= Fraction(1, 10**10)
            figure = Fraction(settled, 10 ** DECIMALS[currency_of[invoice_of[data["payment_id"]]]])
            assert rounded(figure * Fraction(event.exchange_rate) * 100) == kroner
        if original["type"] == "payment.received":
            assert isinstance(event, Invoice.PaymentReceived)
            assert (event.invoice_id, event.currency) == (
                data["invoice_id"],
                currency_of[data["invoice_id"]],
            )
            assert (event.received_on.isoformat(), event.method) == (
                data["received_on"],
                data["method"],
            )
        else:
            assert isinstance(event, Invoice.PaymentRefunded)
            paid = f"{target.kind}:payment:{reference_of[data['payment_id']]}"
            assert event.payment_id == paid, "refunds the payment taken in"
            assert paid in seen, "after the payment it refunds"
            assert event.refunded_on.isoformat() == data["refunded_on"]
        if isinstance(event, Invoice.PaymentReceived):
            seen.add(event.payment_id)
    assert payments_at(target) == pushed + len(held), "nothing is sent back to the target"

    # What the test registered, per currency: payments lower the receivable, refunds raise it.
    moved = dict.fromkeys(CURRENCIES, 0)
    for event, (settled, _, _) in registered.values():
        currency = currency_of[invoice_of[event["data"]["payment_id"]]]
        moved[currency] += settled if event["type"] == "payment.received" else -settled
    with server(postgres_url, KEYS, base_env=push_env) as base:
        after = receivables(base)
        report = reconciliation(base, target.kind)
    assert after == {c: before[c] - moved[c] for c in CURRENCIES}
    assert after == owed_at(target), "our receivables per currency are the target's"
    assert report["differences"] == []
    assert report["ours"] == report["theirs"]
    print(
        f"{target.kind}: {len(held_payments)} payments and {len(held_refunds)} refunds taken in,"
        f" {time.monotonic() - started:.0f} s"
    )
