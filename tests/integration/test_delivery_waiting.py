"""Waiting messages in the delivery log, on SQLite and PostgreSQL: an invoice of a target that
takes invoices once paid (`transfer = "on_payment"`) waits with its document until its payments
cover it; a payment whose invoice is a draft at the target waits for a recheck; either holds
only its own document, never the customer's other invoices; and a database made before the
columns that say so gets them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from subledger.adapters.backends import backend_for
from subledger.adapters.store import store_env
from subledger.adapters.sync.log import HELD_UNTIL, Attempt, DeliveryLog, Message, NewMessage
from subledger.api.sync import delivery_log_for
from subledger.domain.ledger import Ledger

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


@pytest.fixture
def delivery(database_url: str) -> Iterator[DeliveryLog]:
    ledger = Ledger(store_env(database_url))
    yield delivery_log_for(ledger)
    ledger.close()


def message(seq: int, kind: str, invoice: str, amount: int = 0, lane: str = "c1") -> NewMessage:
    """A message of `kind` on `invoice` (gross or amount `amount`, in DKK øre)."""
    payload: dict[str, Any] = {"invoice_id": invoice, "currency": "DKK"}
    if kind in ("invoice", "credit_note"):
        payload["gross"] = amount
    else:
        payload["amount"] = amount
    return NewMessage(
        id=f"billy-{seq}",
        target="billy",
        lane=lane,
        seq=seq,
        kind=kind,
        source=f"evt_{seq}",
        dated="2026-01-01",
        payload=payload,
    )


def attempt(outcome: str) -> Attempt:
    return Attempt(NOW, 5, ["GET /v2/invoices/x → 200 (5 ms)"], 200, {}, None, outcome)


def send_everything(delivery: DeliveryLog, at: datetime = NOW) -> list[int]:
    """Claim and mark sent every message that can go, in the order claimed; their seqs."""
    sent = []
    while (claimed := delivery.claim("billy", at, LEASE)) is not None:
        delivery.finish(claimed, attempt("sent"), "sent")
        sent.append(claimed.seq)
    return sent


def statuses(delivery: DeliveryLog) -> dict[int, str]:
    return {m.seq: m.status for m in delivery.messages("billy")}


def test_an_unpaid_invoice_waits_and_holds_only_its_own_document(delivery: DeliveryLog) -> None:
    # Invoice A (100.00 DKK) is credited 20.00 and paid 70.00, then 10.00: 80.00 due, paid in
    # full by the last payment. Invoice B (50.00) of the same customer is paid at once.
    first = [
        message(1, "invoice", "A", 10_000),
        message(2, "invoice", "B", 5_000),
        message(3, "payment", "B", 5_000),
        message(4, "credit_note", "A", 2_000),
        message(5, "payment", "A", 7_000),
    ]
    delivery.enqueue(first, NOW, on_payment=("billy",))
    assert statuses(delivery) == {
        1: "waiting",
        2: "pending",
        3: "pending",
        4: "waiting",
        5: "waiting",
    }
    waiting = delivery.message("billy-1")
    assert waiting is not None and waiting.waiting_for == "payment in full"
    assert send_everything(delivery) == [2, 3], "B goes although A, earlier, waits"
    summary = delivery.summary()["billy"]
    assert summary.counts["waiting"] == 3 and summary.held_messages == 0
    assert summary.oldest_pending_at is None, "nothing waiting counts as pending"
    assert delivery.health()["billy"].state == "green"

    # 70.00 of 80.00: still waiting; the last 10.00 settles it, and A goes with its credit
    # note and payments in their order.
    delivery.enqueue([message(6, "payment", "A", 1_000)], NOW, on_payment=("billy",))
    assert send_everything(delivery) == [1, 4, 5, 6]
    # Once released, never held again: a later refund of A goes at once.
    delivery.enqueue([message(7, "refund", "A", 500)], NOW, on_payment=("billy",))
    assert send_everything(delivery) == [7]


def test_a_fully_credited_invoice_is_settled_and_a_partly_paid_one_is_not(
    delivery: DeliveryLog,
) -> None:
    delivery.enqueue(
        [
            message(1, "invoice", "A", 10_000),
            message(2, "credit_note", "A", 10_000),
            message(3, "invoice", "B", 10_000),
            message(4, "payment", "B", 9_999),
            message(5, "payment", "B", 2_000),
            message(6, "refund", "B", 2_000),
        ],
        NOW,
        on_payment=("billy",),
    )
    assert send_everything(delivery) == [1, 2], "nothing is due of A; B lacks 0.01 DKK"
    assert statuses(delivery)[3] == "waiting"


def test_a_held_target_releases_a_settled_document_at_its_run(delivery: DeliveryLog) -> None:
    paid = [message(1, "invoice", "A", 10_000), message(2, "payment", "A", 10_000)]
    delivery.enqueue(paid, NOW, on_payment=("billy",), held=("billy",))
    assert statuses(delivery) == {1: "pending", 2: "pending"}
    assert send_everything(delivery) == [], "held for a run"
    assert delivery.release("billy", NOW) == 2
    assert send_everything(delivery) == [1, 2]


def test_resend_retry_and_replay_leave_an_unpaid_invoice_waiting(delivery: DeliveryLog) -> None:
    delivery.enqueue([message(1, "invoice", "A", 10_000)], NOW, {"billy": 1}, on_payment=("billy",))
    resent = delivery.resend("billy-1", NOW)
    assert resent is not None and resent.status == "waiting"
    assert delivery.retry("billy-1", NOW) is not None
    assert delivery.replay("billy", NOW, positions=(1, 1)) == 0
    delivery.resend_lane("c1", NOW)
    assert delivery.release("billy", NOW) == 0
    assert statuses(delivery) == {1: "waiting"} and send_everything(delivery) == []
    # A target that takes invoices on issue again sends what waited for payment.
    delivery.enqueue([], NOW, {"billy": 1})
    assert send_everything(delivery) == [1]


def test_a_payment_of_a_draft_waits_for_its_recheck_holding_only_its_document(
    delivery: DeliveryLog,
) -> None:
    delivery.enqueue(
        [
            message(1, "invoice", "A", 10_000),
            message(2, "payment", "A", 10_000),
            message(3, "invoice", "B", 5_000),
        ],
        NOW,
    )
    invoice = delivery.claim("billy", NOW, LEASE)
    assert invoice is not None and invoice.seq == 1
    delivery.finish(invoice, attempt("sent"), "sent")
    payment = delivery.claim("billy", NOW, LEASE)
    assert payment is not None and payment.seq == 2
    recheck = NOW + timedelta(minutes=15)
    delivery.finish(payment, attempt("waiting"), "waiting", recheck, 0, "invoice A booked")
    # A refund of A comes later: it waits with the payment, for the same recheck.
    delivery.enqueue([message(4, "refund", "A", 1_000)], NOW)
    assert statuses(delivery) == {1: "sent", 2: "waiting", 3: "pending", 4: "waiting"}
    assert send_everything(delivery) == [3], "B goes; A's payment and refund wait"
    assert delivery.summary()["billy"].counts["pending"] == 0
    assert delivery.health()["billy"].state == "green"
    shown = delivery.message("billy-2")
    assert shown is not None and shown.describe()["next_attempt_at"] == recheck
    assert shown.waiting_for == "invoice A booked"
    assert delivery.attempts("billy-2")[-1]["outcome"] == "waiting"

    # At the recheck the payment is claimed again, and its refund only once it is sent.
    later = recheck + timedelta(seconds=1)
    again = delivery.claim("billy", later, LEASE)
    assert again is not None and again.seq == 2
    assert delivery.claim("billy", later, LEASE) is None, "the refund waits for the payment"
    delivery.finish(again, attempt("sent"), "sent")
    assert send_everything(delivery, later) == [4]


def test_a_resend_rechecks_a_draft_payment_now(delivery: DeliveryLog) -> None:
    delivery.enqueue([message(1, "invoice", "A", 100), message(2, "payment", "A", 100)], NOW)
    invoice = delivery.claim("billy", NOW, LEASE)
    assert invoice is not None
    delivery.finish(invoice, attempt("sent"), "sent")
    payment = delivery.claim("billy", NOW, LEASE)
    assert payment is not None and payment.seq == 2
    delivery.finish(payment, attempt("waiting"), "waiting", NOW + timedelta(hours=1), 0, "x")
    assert delivery.claim("billy", NOW, LEASE) is None
    resent = delivery.resend("billy-2", NOW)
    assert resent is not None and resent.status == "waiting" and resent.next_attempt_at == NOW
    assert delivery.claim("billy", NOW, LEASE) is not None


#: `sync_messages` as the first releases made it, before the columns added since.
OLD_TABLE = """CREATE TABLE sync_messages (
    id text PRIMARY KEY, target text NOT NULL, lane text NOT NULL, seq bigint NOT NULL,
    kind text NOT NULL, source text NOT NULL, dated text NOT NULL, payload text NOT NULL,
    status text NOT NULL, attempts integer NOT NULL DEFAULT 0,
    next_attempt_at {instant} NOT NULL, claimed_until {instant}, target_ids text,
    last_error text, created_at {instant} NOT NULL, updated_at {instant} NOT NULL,
    sent_at {instant})"""


def test_a_database_of_an_earlier_release_gets_the_new_columns(database_url: str) -> None:
    """A delivery log made by the first releases (before the schema migrations) is upgraded by
    them when opened: the new columns added, each message's document read off its payload."""
    ledger = Ledger(store_env(database_url))  # the log's own tables, no migration yet
    delivery = DeliveryLog(backend_for(database_url).delivery_database(ledger))
    postgres = delivery.db.postgres
    with delivery.db.transaction() as sql:
        sql.run(OLD_TABLE.format(instant="timestamptz" if postgres else "text"))
        for seq, kind, payload in (
            (1, "contact", {"customer_id": "c1"}),
            (2, "invoice", {"invoice_id": "A", "currency": "DKK", "gross": 100}),
            (3, "payment", {"invoice_id": "A", "currency": "DKK", "amount": 100}),
        ):
            sql.run(
                "INSERT INTO sync_messages (id, target, lane, seq, kind, source, dated,"
                " payload, status, next_attempt_at, created_at, updated_at) VALUES"
                " (%(id)s, 'billy', 'c1', %(seq)s, %(kind)s, 'e', '', %(p)s, 'pending',"
                " %(now)s, %(now)s, %(now)s)",
                id=f"billy-{seq}",
                seq=seq,
                kind=kind,
                p=orjson.dumps(payload).decode(),
                now=NOW,
            )
    delivery.create_tables()
    delivery.create_tables()  # a second start finds everything there
    with delivery.db.transaction() as sql:
        ran = sql.run("SELECT migration_id FROM _yoyo_migration ORDER BY migration_id")
    assert [row["migration_id"] for row in ran] == [
        "0001_release_0_1",
        "0002_delivery_waits",
        "0003_checkpoints",
    ]
    with delivery.db.transaction() as sql:
        rows = sql.run("SELECT seq, document, waiting_for FROM sync_messages ORDER BY seq")
    assert [(r["seq"], r["document"], r["waiting_for"]) for r in rows] == [
        (1, "", None),
        (2, "A", None),
        (3, "A", None),
    ]
    first = delivery.claim("billy", NOW, LEASE)
    assert isinstance(first, Message) and first.seq == 1
    delivery.finish(first, attempt("sent"), "sent")
    invoice = delivery.claim("billy", NOW, LEASE)
    assert invoice is not None and invoice.seq == 2
    delivery.finish(invoice, attempt("sent"), "sent")
    payment = delivery.claim("billy", NOW, LEASE)
    assert payment is not None
    delivery.finish(payment, attempt("waiting"), "waiting", HELD_UNTIL - timedelta(days=1), 0, "x")
    assert delivery.summary()["billy"].counts["waiting"] == 1
    ledger.close()
