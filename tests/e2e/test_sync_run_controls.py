"""The sync controls a finance person expects, against each target's sandbox over real HTTP on
PostgreSQL: a manual target sends nothing until a run is asked for; a scheduled one sends in
rounds of its period; `subledger sync run --once` exits 0 when everything was delivered and 1,
saying what, when something was refused; a resend of a message or of a whole customer creates
nothing twice at the target (its documents counted through its own API); and each target and
each customer shows green after success and red, with the target's error, after a refusal.

What the target should hold comes from the events alone (`bench.sandboxes.expected_books`)."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.harness import server
from bench.sandboxes import (
    Books,
    Dispatcher,
    Sandbox,
    append,
    books,
    configure,
    counts,
    environment,
    expected_books,
    prepare,
    subledger,
    wait_until_settled,
)
from subledger.adapters.store import store_env
from subledger.api.demo.generator import Business
from subledger.api.sync import delivery_log_for
from subledger.domain.ledger import Ledger
from tests.e2e.test_sync_targets import REFUSALS, assert_holds_exactly, set_up
from tests.waiting import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(900)]

ADMIN = "controls-tests-admin-secret"
KEYS = f"tests:{ADMIN}:read+admin"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
#: The scheduled target's period in the test, in seconds.
PERIOD = 3


@pytest.fixture(scope="module")
def business() -> list[dict[str, Any]]:
    return list(Business(customers=12, months=4, seed=17).events())


def get(base: str, path: str, **params: Any) -> Any:
    answer = httpx.get(f"{base}{path}", params=params, headers=AUTH, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def post(base: str, path: str, **params: Any) -> Any:
    answer = httpx.post(f"{base}{path}", params=params, headers=AUTH, timeout=60)
    assert answer.status_code == 202, answer.text
    return answer.json()


def delivery_messages(database_url: str, kind: str) -> list[Any]:
    """Every message of the target in the delivery log, with its attempts."""
    ledger = Ledger(store_env(database_url))
    try:
        delivery, found, after = delivery_log_for(ledger), [], None
        while page := delivery.messages(kind, None, after, 1000):
            found += [(m, delivery.attempts(m.id)) for m in page]
            after = (page[-1].target, page[-1].seq, page[-1].id)
        return found
    finally:
        ledger.close()


#: The events the outbox makes a message of, one each (a contact, a document, a payment).
SENT_TYPES = {
    "customer.created",
    "customer.updated",
    "invoice.issued",
    "credit_note.issued",
    "payment.received",
    "payment.refunded",
}


def expected_messages(events: list[dict[str, Any]], wanted: Books) -> int:
    """The messages a target is sent: one per event of `SENT_TYPES`, and one voucher per ended
    month that books revenue."""
    return sum(1 for e in events if e["type"] in SENT_TYPES) + wanted.sizes()["vouchers"]


def customer_messages(events: list[dict[str, Any]], customer: str) -> int:
    """The messages of one customer: its contact's, and those of its invoices, their credit
    notes, payments and refunds."""
    invoices: set[str] = set()
    payments: set[str] = set()
    found = 0
    for event in events:
        data, kind = event["data"], event["type"]
        if kind == "invoice.issued" and data["customer_id"] == customer:
            invoices.add(data["invoice_id"])
        if kind == "payment.received" and data["invoice_id"] in invoices:
            payments.add(data["payment_id"])
        if kind not in SENT_TYPES:
            continue
        found += (
            data.get("customer_id") == customer
            or data.get("invoice_id") in invoices
            or data.get("payment_id") in payments
        )
    return found


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def nothing_at(box: Sandbox) -> None:
    held = books(box).sizes()
    assert held == dict.fromkeys(held, 0), f"the target holds {held}"


def test_a_manual_target_sends_nothing_until_a_run_and_resends_duplicate_nothing(
    business: list[dict[str, Any]], postgres_url: str, target: Sandbox, tmp_path: Path
) -> None:
    env = set_up(business, postgres_url, target, tmp_path, mode="manual")
    wanted = expected_books(business, postgres_url)
    total = expected_messages(business, wanted)
    with Dispatcher(env), server(postgres_url, KEYS, base_env=env) as base:
        time.sleep(4)  # both dispatchers (the command's and the server's) have run for a while
        nothing_at(target)
        assert counts(postgres_url, target.kind) == {
            "pending": total,
            "sending": 0,
            "sent": 0,
            "failed": 0,
        }, "every message waits"
        status = get(base, "/v1/sync/status")["targets"][target.kind]
        assert status["mode"] == "manual" and status["every_seconds"] is None
        assert status["pending"] == total and status["last_success_at"] is None

        run = post(base, "/v1/sync/run")
        assert run["targets"] == {
            target.kind: {"mode": "manual", "released": total, "pending": total}
        }
        assert wait_until_settled(postgres_url, target.kind)["sent"] == total
        assert_holds_exactly(target, wanted)
        status = get(base, "/v1/sync/status")["targets"][target.kind]
        assert status["state"] == "green" and status["sent"] == total
        assert status["last_success_at"] is not None and status["last_error"] is None

        # One invoice sent again, then the whole of a customer with a payment.
        sent = [m for m, _ in delivery_messages(postgres_url, target.kind)]
        invoice = next(m for m in sent if m.kind == "invoice")
        again = post(base, f"/v1/sync/messages/{invoice.id}/resend")
        assert again["status"] in ("pending", "sending", "sent") and again["id"] == invoice.id
        wait_until(
            lambda: (
                get(base, f"/v1/sync/messages/{invoice.id}")["attempts"][-1]["outcome"] == "sent"
                and len(get(base, f"/v1/sync/messages/{invoice.id}")["attempts"]) == 2
            ),
            120,
            "the invoice is sent a second time",
        )
        customer = next(m.lane for m in sent if m.kind == "payment")
        of_customer = [m for m in sent if m.lane == customer]
        assert len(of_customer) == customer_messages(business, customer)
        resent = post(base, f"/v1/sync/customers/{customer}/resend")
        assert resent == {"customer_id": customer, "resent": {target.kind: len(of_customer)}}
        assert wait_until_settled(postgres_url, target.kind)["sent"] == total
        assert_holds_exactly(target, wanted)

        lane = get(base, f"/v1/sync/customers/{customer}")
        assert lane["targets"][target.kind]["state"] == "green"
        assert lane["targets"][target.kind]["sent"] == len(of_customer)
        assert sorted(m["id"] for m in lane["messages"]) == sorted(m.id for m in of_customer)
        attempts = {m.id: len(a) for m, a in delivery_messages(postgres_url, target.kind)}
        assert all(attempts[m.id] == 2 for m in of_customer if m.id != invoice.id)
        assert attempts[invoice.id] == 2 + (invoice.lane == customer)


def test_a_scheduled_target_sends_what_is_pending_once_per_period(
    business: list[dict[str, Any]], postgres_url: str, target: Sandbox, tmp_path: Path
) -> None:
    # A second wave of new customers (contacts only: no month's revenue changes with them).
    later = [
        {
            "id": f"evt_controls_later_{n}",
            "type": "customer.created",
            "data": {
                "customer_id": f"cus_controls_later_{n}",
                "name": f"Later Customer {n}",
                "country": "DK",
                "kind": "company",
                "email": f"later{n}@example.dk",
                "customer_number": str(90_000 + n),
                "vat_number": str(40_000_000 + n),
            },
        }
        for n in range(5)
    ]
    events = business + later
    append(postgres_url, business)
    prepare(target, business)
    config = configure(tmp_path / "subledger.toml", target, mode="scheduled", every=f"{PERIOD}s")
    env = environment(postgres_url, config, target.kind)
    with Dispatcher(env):
        wait_until(
            lambda: counts(postgres_url, target.kind)["sent"] > 0, 120, "a first round is sent"
        )
        append(postgres_url, later)
        wanted = expected_books(events, postgres_url)
        wait_until(
            lambda: (
                len(delivery_messages(postgres_url, target.kind))
                == expected_messages(events, wanted)
            ),
            120,
            "the second wave is enqueued",
        )
        wait_until_settled(postgres_url, target.kind)
    assert_holds_exactly(target, wanted)

    rounds = set()
    for message, attempts in delivery_messages(postgres_url, target.kind):
        enqueued = int(message.created_at.timestamp()) // PERIOD
        first = int(attempts[0]["started_at"].timestamp()) // PERIOD
        assert first > enqueued, f"{message.kind} {message.id} was sent in the period it came"
        rounds.add(first)
    assert len(rounds) >= 2, "the two halves went in rounds of their own"


def test_sync_run_once_exits_1_on_a_refusal_shown_red_and_0_once_all_is_delivered(
    business: list[dict[str, Any]], postgres_url: str, target: Sandbox, tmp_path: Path
) -> None:
    assert any(
        e["type"] == "payment.received" and e["data"].get("method") == "mobilepay" for e in business
    ), "the business has MobilePay payments to be refused"
    # MobilePay payments mapped to the receivables account, which takes no payments.
    env = set_up(business, postgres_url, target, tmp_path, mode="manual", accounts={"5820": "5600"})
    done = subledger(env, "sync", "run", "--once")
    assert done.returncode == 1, done.stdout + done.stderr
    status_code, words = REFUSALS[target.kind]
    messages = [m for m, _ in delivery_messages(postgres_url, target.kind)]
    failed = [m for m in messages if m.status == "failed"]
    assert failed and all(m.kind in ("payment", "refund") for m in failed)
    assert f"{target.kind}: {len(failed)} failed" in done.stderr
    assert words in done.stderr, "the summary quotes the target's refusal"

    with server(postgres_url, KEYS, base_env=env) as base:
        status = get(base, "/v1/sync/status")["targets"][target.kind]
        assert status["state"] == "red" and status["failed"] == len(failed)
        assert status["last_success_at"] is not None
        error = status["last_error"]
        assert f": {status_code} " in error["message"] and words in error["message"]
        assert error["message_id"] in {m.id for m in failed}
        refused = failed[0].lane
        lane = get(base, f"/v1/sync/customers/{refused}")["targets"][target.kind]
        assert lane["state"] == "red" and words in lane["last_error"]["message"]
        fine = next(m.lane for m in messages if m.lane and m.lane not in {f.lane for f in failed})
        lane = get(base, f"/v1/sync/customers/{fine}")["targets"][target.kind]
        assert lane["state"] == "green" and lane["last_error"] is None
        missing = httpx.get(f"{base}/v1/sync/customers/no-such-customer", headers=AUTH)
        assert missing.status_code == 404

    # The fix (no mapping for 5820, the target's own MobilePay account), everything sent again.
    configure(tmp_path / "subledger.toml", target, mode="manual")
    replayed = subledger(env, "sync", "replay", "--target", target.kind, "--all")
    assert replayed.returncode == 0, replayed.stderr
    done = subledger(env, "sync", "run", "--once")
    assert done.returncode == 0, done.stdout + done.stderr
    assert_holds_exactly(target, expected_books(business, postgres_url))
    with server(postgres_url, KEYS, base_env=env) as base:
        status = get(base, "/v1/sync/status")["targets"][target.kind]
        assert status["state"] == "green" and status["failed"] == 0
        assert status["last_error"] is not None, "the refusal is still the last error there was"
        assert instant(status["last_success_at"]) > instant(status["last_error"]["at"])


def test_a_period_that_means_nothing_is_refused_with_its_place(
    postgres_url: str, target: Sandbox, tmp_path: Path
) -> None:
    config = configure(tmp_path / "subledger.toml", target, mode="scheduled", every="3 hours")
    done = subledger(environment(postgres_url, config, target.kind), "sync", "run", "--once")
    assert done.returncode != 0
    assert f"targets.{target.kind}.every: " in done.stderr and "'3 hours'" in done.stderr
