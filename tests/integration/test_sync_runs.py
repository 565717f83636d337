"""Held messages, runs, resends and green or red, in the delivery log on SQLite and PostgreSQL:
a manual or scheduled target's messages wait until a run releases them (and only those
pending then); a resend puts any message back, whatever its status; a target and a customer
are red while a message is failed or after the latest attempt met an error, green otherwise.

The dispatcher here runs against a scripted target (the port, faked) on a clock of its own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from subledger.adapters.store import store_env
from subledger.adapters.sync.dispatcher import Dispatcher, DispatchSettings
from subledger.adapters.sync.log import DeliveryLog, NewMessage
from subledger.adapters.sync.port import RejectedError, RetryableError
from subledger.api.sync import delivery_log_for
from subledger.domain.ledger import Ledger
from tests.integration.test_sync_failures import Scripted

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.fixture
def delivery(database_url: str) -> Iterator[DeliveryLog]:
    ledger = Ledger(store_env(database_url))
    yield delivery_log_for(ledger)
    ledger.close()


def new(seq: int, lane: str, kind: str = "invoice") -> NewMessage:
    return NewMessage(
        id=f"billy-{seq}",
        target="billy",
        lane=lane,
        seq=seq,
        kind=kind,
        source=f"evt_{seq}",
        dated="2026-01-01",
        payload={"seq": seq},
    )


class Clocked:
    """A dispatcher on a clock that moves a second on after each attempt; backoffs of ten
    minutes and more, so that a retried message is not due again within a test."""

    def __init__(self, delivery: DeliveryLog, target: Scripted) -> None:
        self.now = T0
        self.target = target
        settings = DispatchSettings(backoff_base_seconds=1200)
        self.dispatcher = Dispatcher(delivery, {"billy": target}, settings, clock=lambda: self.now)

    def drain(self) -> int:
        """Deliver until nothing is due; the number of attempts."""
        done = 0
        while self.dispatcher.deliver_one("billy"):
            done += 1
            self.now += SECOND
        return done


def test_held_messages_wait_for_a_run_which_takes_only_what_is_pending_then(
    delivery: DeliveryLog,
) -> None:
    run = Clocked(delivery, Scripted(None))
    assert delivery.enqueue([new(1, "cus_1"), new(2, "cus_2")], T0, held=("billy",)) == 2
    assert run.drain() == 0, "nothing is sent before a run"
    shown = delivery.message("billy-1")
    assert shown is not None and shown.held and shown.describe()["next_attempt_at"] is None

    assert delivery.release("billy", T0) == 2
    delivery.enqueue([new(3, "cus_3")], T0 + SECOND, held=("billy",))
    assert run.drain() == 2, "the two pending at the run"
    assert delivery.counts()["billy"] == {
        "pending": 1,
        "sending": 0,
        "sent": 2,
        "failed": 0,
        "waiting": 0,
    }
    assert delivery.release("billy", run.now) == 1
    assert run.drain() == 1
    assert delivery.release("billy", run.now) == 0, "nothing is left to release"


def test_a_release_leaves_a_backoff_alone_and_others_not_held_due_at_once(
    delivery: DeliveryLog,
) -> None:
    run = Clocked(delivery, Scripted(RetryableError("busy"), None))
    delivery.enqueue([new(1, "cus_1")], T0)
    assert run.drain() == 1  # retried later: not due at once
    assert delivery.release("billy", run.now) == 0
    assert run.drain() == 0, "the backoff is kept"


def test_a_resend_puts_back_any_message_and_a_customers_every_message(
    delivery: DeliveryLog,
) -> None:
    run = Clocked(delivery, Scripted(None))
    delivery.enqueue([new(1, "cus_1", "contact"), new(2, "cus_1"), new(3, "cus_2")], T0)
    assert run.drain() == 3
    again = delivery.resend("billy-2", run.now)
    assert again is not None and again.status == "pending"
    assert run.drain() == 1
    assert delivery.resend("no-such-message", run.now) is None

    assert delivery.resend_lane("cus_1", run.now) == {"billy": 2}
    assert delivery.resend_lane("cus_1", run.now, "dinero") == {}
    assert delivery.resend_lane("cus_9", run.now) == {}
    assert run.drain() == 2
    assert [m.id for m in delivery.of_lane("cus_1")] == ["billy-1", "billy-2"]
    assert run.target.sent == 6, "three, one, then the customer's two"


def test_green_after_success_red_with_the_error_while_failed(delivery: DeliveryLog) -> None:
    run = Clocked(delivery, Scripted(None, RejectedError("Billy refused it: 422 no"), None))
    delivery.enqueue([new(1, "cus_1"), new(2, "cus_2")], T0)
    assert delivery.health()["billy"].state == "green", "nothing has gone wrong yet"
    assert run.drain() == 2
    health = delivery.health()["billy"]
    assert health.state == "red" and health.counts["failed"] == 1
    assert health.last_error is not None and health.last_error.message_id == "billy-2"
    assert health.last_error.message == "Billy refused it: 422 no"
    assert health.last_success_at is not None
    assert health.last_success_at < health.last_error.at
    assert delivery.health("cus_1")["billy"].state == "green"
    refused = delivery.health("cus_2")["billy"]
    assert refused.state == "red" and refused.last_success_at is None

    delivery.retry("billy-2", run.now)
    assert run.drain() == 1
    health = delivery.health()["billy"]
    assert health.state == "green" and health.counts["failed"] == 0
    assert health.last_success_at is not None and health.last_error is not None
    assert health.last_success_at > health.last_error.at
    described = health.describe()
    assert described["state"] == "green" and described["sent"] == 2
    assert described["last_error"]["message_id"] == "billy-2"
