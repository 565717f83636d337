"""When an invoice reaches a target, against each target's sandbox over real HTTP on PostgreSQL:
with `transfer = "on_payment"` an invoice, its credit notes and payments reach the target only
once it is paid in full (booked, its payments right after), while the customer's other invoices
go; with `book = false` a payment of an invoice that is still a draft at the target waits, not
failing and holding nothing else of its customer, until a person books the draft there, and
then goes at the next recheck. What the target should hold is worked out here by hand."""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.harness import server
from bench.sandboxes import (
    Dispatcher,
    Sandbox,
    append,
    books,
    configure,
    enqueue,
    environment,
    prepare,
    subledger,
    unbooked,
)
from subledger.adapters.store import store_env
from subledger.api.sync import delivery_log_for
from subledger.domain.ledger import Ledger
from tests.waiting import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(900)]

ADMIN = "transfer-tests-admin-secret"
KEYS = f"tests:{ADMIN}:read+admin"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
#: This month's first day: no month of these invoices ends during the test, so no recognition
#: voucher joins the messages counted here.
DAY = date.today().replace(day=1).isoformat()
#: The first day of next month: where the invoices' service periods end.
NEXT_MONTH = (date.today().replace(day=1) + timedelta(days=32)).replace(day=1).isoformat()


def customer(n: int) -> dict[str, Any]:
    return {
        "id": f"evt_transfer_c{n}",
        "type": "customer.created",
        "data": {
            "customer_id": f"cus_{n}",
            "name": f"Customer {n} ApS",
            "customer_number": f"{1000 + n}",
            "country": "DK",
            "kind": "company",
        },
    }


def invoice(number: str, customer_id: str, unit: int) -> dict[str, Any]:
    """An invoice of one line, `unit` øre net at 25 % VAT (gross `unit * 5 / 4`)."""
    return {
        "id": f"evt_transfer_i{number}",
        "type": "invoice.issued",
        "data": {
            "invoice_id": f"inv_{number}",
            "customer_id": customer_id,
            "issue_date": DAY,
            "number": number,
            "currency": "DKK",
            "lines": [
                {
                    "line_id": "1",
                    "product_id": "pro",
                    "quantity": "1",
                    "unit_amount": unit,
                    "vat_rate": "0.25",
                    "period_start": DAY,
                    "period_end": NEXT_MONTH,
                }
            ],
        },
    }


def payment(payment_id: str, number: str, amount: int) -> dict[str, Any]:
    return {
        "id": f"evt_transfer_{payment_id}",
        "type": "payment.received",
        "data": {
            "payment_id": payment_id,
            "invoice_id": f"inv_{number}",
            "amount": amount,
            "currency": "DKK",
            "method": "bank_transfer",
            "received_on": DAY,
        },
    }


def credit_note(number: str, of: str, amount: int) -> dict[str, Any]:
    """A credit note of `amount` øre net of line 1 of invoice `of`."""
    return {
        "id": f"evt_transfer_{number}",
        "type": "credit_note.issued",
        "data": {
            "credit_note_id": f"crn_{number}",
            "invoice_id": f"inv_{of}",
            "issue_date": DAY,
            "number": number,
            "lines": [{"line_id": "1", "amount": amount}],
        },
    }


def set_up(
    events: list[dict[str, Any]], url: str, box: Sandbox, tmp_path: Path, **options: Any
) -> dict[str, str]:
    append(url, events)
    prepare(box, events)
    env = environment(url, configure(tmp_path / "subledger.toml", box, **options), box.kind)
    enqueue(env)
    return env


def log_messages(url: str, target: str) -> dict[str, Any]:
    """The target's messages in the delivery log by source event id (our `evt_...`)."""
    ledger = Ledger(store_env(url))
    try:
        delivery = delivery_log_for(ledger)
        return {m.source: m for m in delivery.messages(target, limit=1000)}
    finally:
        ledger.close()


def attempts(url: str, message_id: str) -> list[dict[str, Any]]:
    ledger = Ledger(store_env(url))
    try:
        return delivery_log_for(ledger).attempts(message_id)
    finally:
        ledger.close()


def run_once(env: dict[str, str]) -> None:
    done = subledger(env, "sync", "run", "--once", "--timeout", "120")
    assert done.returncode == 0, done.stderr[-3000:]


def balance_there(box: Sandbox, number: str) -> int:
    """What invoice `number` still owes at the target, in øre, as the target itself says."""
    with box.client() as client:
        if box.kind == "billy":
            found = client.get("/invoices", params={"invoiceNo": number}).json()["invoices"]
            (record,) = found
            assert record["state"] == "approved"
            return round(float(record["balance"]) * 100)
        page = client.get("/invoices", params={"pageSize": 1000}).json()["Collection"]
        (record,) = [r for r in page if r["ExternalReference"] == number]
        base = str(client.base_url).replace("/v1/", "/v2/")
        paid = client.get(f"{base}/invoices/{record['Guid']}/payments").json()
        return round(float(paid["RemainingAmount"]) * 100)


def book_draft(box: Sandbox, number: str) -> None:
    """What the accountant does at the target: book (approve) our draft invoice `number`,
    through the target's own API."""
    with box.client() as client:
        if box.kind == "billy":
            (record,) = client.get("/invoices", params={"invoiceNo": number}).json()["invoices"]
            assert record["state"] == "draft"
            body = {"invoice": {"state": "approved"}}
            client.put(f"/invoices/{record['id']}", json=body).raise_for_status()
            return
        page = client.get("/invoices", params={"pageSize": 1000}).json()["Collection"]
        (listed,) = [r for r in page if r["ExternalReference"] == number]
        record = client.get(f"/invoices/{listed['Guid']}").json()
        assert record["Status"] == "Draft"
        stamp = {"Timestamp": record["TimeStamp"]}
        client.post(f"/invoices/{listed['Guid']}/book", json=stamp).raise_for_status()


def test_an_invoice_reaches_an_on_payment_target_once_paid_in_full_with_its_payments(
    postgres_url: str, target: Sandbox, tmp_path: Path
) -> None:
    # A-1 (cus_1): 125.00 gross, credited 25.00 (20.00 net + 5.00 VAT), so 100.00 due; unpaid
    # at first. A-2 (cus_1, issued after A-1): 100.00, paid in full at once. A-3 (cus_2):
    # 250.00, paid 100.00 at first and the remaining 150.00 later.
    first = [
        customer(1),
        customer(2),
        invoice("A-1", "cus_1", 10_000),
        invoice("A-2", "cus_1", 8_000),
        payment("pay_2", "A-2", 10_000),
        invoice("A-3", "cus_2", 20_000),
        payment("pay_3a", "A-3", 10_000),
        credit_note("CN-1", "A-1", 2_000),
    ]
    env = set_up(first, postgres_url, target, tmp_path, transfer="on_payment")
    run_once(env)  # ends although messages wait

    held = books(target)
    assert dict(held.invoices) == {"A-2": 1}, "nothing unpaid is transferred"
    assert dict(held.credit_notes) == {}
    assert dict(held.payments) == {("A-2", DAY, 10_000, "debit"): 1}
    assert dict(held.contacts) == {"1001": 1, "1002": 1}
    messages = log_messages(postgres_url, target.kind)
    waiting = {source for source, m in messages.items() if m.status == "waiting"}
    assert waiting == {
        "evt_transfer_iA-1",
        "evt_transfer_CN-1",
        "evt_transfer_iA-3",
        "evt_transfer_pay_3a",
    }
    assert {m.waiting_for for m in messages.values() if m.status == "waiting"} == {
        "payment in full"
    }
    with server(postgres_url, KEYS, base_env=env) as base:
        shown = httpx.get(
            f"{base}/v1/sync/messages",
            params={"status": "waiting", "target": target.kind},
            headers=AUTH,
            timeout=60,
        ).json()
        assert len(shown["messages"]) == 4
        assert shown["targets"][target.kind]["waiting"] == 4
        assert shown["targets"][target.kind]["failed"] == 0
        status = httpx.get(f"{base}/v1/sync/status", headers=AUTH, timeout=60).json()
        assert status["targets"][target.kind]["state"] == "green"
        assert status["targets"][target.kind]["waiting"] == 4
        reconciled = httpx.get(
            f"{base}/v1/sync/reconciliation",
            params={"target": target.kind},
            headers=AUTH,
            timeout=120,
        ).json()
        assert sorted(reconciled["differences"], key=lambda d: d["number"]) == [
            {"kind": "invoice", "number": "A-1", "problem": "waiting for payment in full"},
            {"kind": "invoice", "number": "A-3", "problem": "waiting for payment in full"},
            {"kind": "credit_note", "number": "CN-1", "problem": "waiting for payment in full"},
        ], "what waits is listed as waiting, and A-2 agrees"
    counted = subledger(env, "sync", "status", "--json")
    assert '"waiting":4' in counted.stdout

    # A-1 paid 100.00 (its 125.00 less the 25.00 credited), A-3 its last 150.00.
    append(postgres_url, [payment("pay_1", "A-1", 10_000), payment("pay_3b", "A-3", 15_000)])
    run_once(env)
    held = books(target)
    assert held.duplicates() == {}
    assert dict(held.invoices) == {"A-1": 1, "A-2": 1, "A-3": 1}
    assert dict(held.credit_notes) == {"CN-1": 1}
    assert dict(held.payments) == {
        ("A-1", DAY, 10_000, "debit"): 1,
        ("A-2", DAY, 10_000, "debit"): 1,
        ("A-3", DAY, 10_000, "debit"): 1,
        ("A-3", DAY, 15_000, "debit"): 1,
    }
    assert unbooked(target) == 0, "every invoice arrives booked"
    assert balance_there(target, "A-1") == 0 and balance_there(target, "A-3") == 0
    messages = log_messages(postgres_url, target.kind)
    assert {m.status for m in messages.values()} == {"sent"}
    sent = {source: m.sent_at for source, m in messages.items()}
    assert sent["evt_transfer_iA-1"] < sent["evt_transfer_CN-1"] < sent["evt_transfer_pay_1"]
    assert sent["evt_transfer_iA-3"] < sent["evt_transfer_pay_3a"] < sent["evt_transfer_pay_3b"]


def test_a_payment_of_a_draft_waits_until_the_draft_is_booked_at_the_target(
    postgres_url: str, target: Sandbox, tmp_path: Path
) -> None:
    # D-1 (125.00) is paid in full; D-2 (62.50) of the same customer is issued after; D-3
    # (125.00) is credited 25.00 (20.00 net + 5.00 VAT) and then paid 100.00.
    events = [
        customer(1),
        invoice("D-1", "cus_1", 10_000),
        payment("pay_d1", "D-1", 12_500),
        invoice("D-2", "cus_1", 5_000),
        invoice("D-3", "cus_1", 10_000),
        credit_note("DCN-3", "D-3", 2_000),
        payment("pay_d3", "D-3", 10_000),
    ]
    env = set_up(events, postgres_url, target, tmp_path, book=False, draft_recheck="2s")
    run_once(env)  # ends with the payment waiting, nothing failed

    held = books(target)
    assert dict(held.invoices) == {"D-1": 1, "D-2": 1, "D-3": 1}, "D-2 goes although D-1 waits"
    assert dict(held.payments) == {} and dict(held.credit_notes) == {}
    assert unbooked(target) == 3
    messages = log_messages(postgres_url, target.kind)
    paid = messages["evt_transfer_pay_d1"]
    assert paid.status == "waiting" and "booked" in (paid.waiting_for or "")
    assert messages["evt_transfer_iD-2"].status == "sent"
    assert not any(m.status == "failed" for m in messages.values())
    tries = attempts(postgres_url, paid.id)
    assert [a["outcome"] for a in tries] == ["waiting"] and tries[0]["error"] is None
    # D-3's credit note waits for the draft, and its payment, never tried, waits behind it.
    credited = messages["evt_transfer_DCN-3"]
    assert credited.status == "waiting" and "D-3" in (credited.waiting_for or "")
    assert [a["outcome"] for a in attempts(postgres_url, credited.id)] == ["waiting"]
    behind = messages["evt_transfer_pay_d3"]
    assert behind.status == "waiting" and attempts(postgres_url, behind.id) == []

    book_draft(target, "D-1")
    book_draft(target, "D-3")
    with Dispatcher(env):
        wait_until(
            lambda: (
                {
                    m.status
                    for source, m in log_messages(postgres_url, target.kind).items()
                    if source
                    in ("evt_transfer_pay_d1", "evt_transfer_DCN-3", "evt_transfer_pay_d3")
                }
                == {"sent"}
            ),
            120,
            "the payments and the credit note go at the recheck after the drafts are booked",
        )
    time.sleep(0.5)
    held = books(target)
    assert held.duplicates() == {}, "nothing is created twice"
    assert dict(held.invoices) == {"D-1": 1, "D-2": 1, "D-3": 1}
    assert dict(held.credit_notes) == {"DCN-3": 1}
    assert dict(held.payments) == {
        ("D-1", DAY, 12_500, "debit"): 1,
        ("D-3", DAY, 10_000, "debit"): 1,
    }
    assert balance_there(target, "D-1") == 0
    # 125.00 less 100.00 paid: the credit note is a draft at the target (book = false), which
    # lowers nothing until the accountant books it too.
    assert balance_there(target, "D-3") == 2_500
    assert unbooked(target) == 2, "D-2 and the credit note are drafts"
    outcomes = [a["outcome"] for a in attempts(postgres_url, paid.id)]
    assert outcomes[0] == "waiting" and outcomes[-1] == "sent"
    assert set(outcomes[1:-1]) <= {"waiting"}
