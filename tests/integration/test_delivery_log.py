"""The delivery log on SQLite and PostgreSQL: lanes, leases, retries, replays and the budget."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from subledger.adapters.store import store_env
from subledger.adapters.sync.http import RequestBudget
from subledger.adapters.sync.log import Attempt, DeliveryLog, NewMessage, request_spacing
from subledger.api.sync import delivery_log_for
from subledger.domain.ledger import Ledger

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


@pytest.fixture
def delivery(database_url: str) -> Iterator[DeliveryLog]:
    ledger = Ledger(store_env(database_url))
    yield delivery_log_for(ledger)
    ledger.close()


def new(seq: int, lane: str = "c1", target: str = "billy") -> NewMessage:
    return NewMessage(
        id=f"{target}-{seq}",
        target=target,
        lane=lane,
        seq=seq,
        kind="invoice",
        source=f"evt_{seq}",
        dated="2026-01-01",
        payload={"seq": seq},
    )


def attempt(outcome: str, error: str | None = None) -> Attempt:
    return Attempt(
        NOW, 5, ["POST /v2/invoices → 200 (5 ms)"], 200, {"invoice": "x"}, error, outcome
    )


def test_a_message_is_enqueued_once_whatever_replays_it(delivery: DeliveryLog) -> None:
    assert delivery.enqueue([new(1), new(2)], NOW, {"billy": 2}) == 2
    assert delivery.enqueue([new(1), new(2), new(3)], NOW, {"billy": 3}) == 1
    assert delivery.cursor("billy") == 3
    delivery.enqueue([], NOW, {"billy": 1})
    assert delivery.cursor("billy") == 3, "a cursor never moves back"


def test_an_outbox_that_derives_messages_otherwise_is_paired_again_creating_nothing_twice(
    delivery: DeliveryLog,
) -> None:
    delivery.enqueue([new(1), new(2)], NOW, {"billy": 2}, outbox="v1")
    assert delivery.cursor("billy", "v1") == 2
    assert delivery.cursor("billy", "v2") == 0, "an upgraded outbox is paired from the start"
    assert delivery.enqueue([new(1), new(2), new(3)], NOW, {"billy": 3}, outbox="v2") == 1
    assert delivery.cursor("billy", "v2") == 3


def test_only_the_head_of_a_lane_is_claimed(delivery: DeliveryLog) -> None:
    delivery.enqueue([new(1, "c1"), new(2, "c1"), new(3, "c2")], NOW)
    first = delivery.claim("billy", NOW, LEASE)
    second = delivery.claim("billy", NOW, LEASE)
    assert first is not None and second is not None
    assert (first.seq, second.seq) == (1, 3)
    assert delivery.claim("billy", NOW, LEASE) is None, "c1's second waits for its first"
    delivery.finish(first, attempt("sent"), "sent")
    third = delivery.claim("billy", NOW, LEASE)
    assert third is not None and third.seq == 2


def test_a_failed_message_holds_its_lane_until_retried(delivery: DeliveryLog) -> None:
    delivery.enqueue([new(1, "c1"), new(2, "c1"), new(3, "c2")], NOW)
    first = delivery.claim("billy", NOW, LEASE)
    assert first is not None
    delivery.finish(first, attempt("failed", "422 productId: not found"), "failed")
    other = delivery.claim("billy", NOW, LEASE)
    assert other is not None and other.lane == "c2"
    assert delivery.claim("billy", NOW, LEASE) is None
    retried = delivery.retry(first.id, NOW)
    assert retried is not None and retried.status == "pending"
    again = delivery.claim("billy", NOW, LEASE)
    assert again is not None and again.id == first.id and again.attempts == 2


def test_a_retry_waits_for_its_time(delivery: DeliveryLog) -> None:
    delivery.enqueue([new(1)], NOW)
    message = delivery.claim("billy", NOW, LEASE)
    assert message is not None
    delivery.finish(message, attempt("retry", "500"), "pending", NOW + timedelta(seconds=30))
    assert delivery.claim("billy", NOW + timedelta(seconds=29), LEASE) is None
    assert delivery.claim("billy", NOW + timedelta(seconds=31), LEASE) is not None


def test_a_dead_workers_claim_is_taken_over_when_its_lease_ends(delivery: DeliveryLog) -> None:
    delivery.enqueue([new(1)], NOW)
    assert delivery.claim("billy", NOW, LEASE) is not None
    assert delivery.claim("billy", NOW + LEASE - timedelta(seconds=1), LEASE) is None
    taken = delivery.claim("billy", NOW + LEASE + timedelta(seconds=1), LEASE)
    assert taken is not None and taken.attempts == 2


def test_every_attempt_is_kept_with_the_targets_ids(delivery: DeliveryLog) -> None:
    delivery.enqueue([new(1)], NOW)
    message = delivery.claim("billy", NOW, LEASE)
    assert message is not None
    delivery.finish(message, attempt("retry", "timed out"), "pending", NOW)
    message = delivery.claim("billy", NOW, LEASE)
    assert message is not None
    delivery.finish(message, attempt("sent"), "sent")
    attempts = delivery.attempts(message.id)
    assert [a["outcome"] for a in attempts] == ["retry", "sent"]
    assert attempts[1]["requests"] == ["POST /v2/invoices → 200 (5 ms)"]
    stored = delivery.message(message.id)
    assert stored is not None and stored.status == "sent" and stored.target_ids == {"invoice": "x"}
    assert stored.last_error is None


def test_a_replay_puts_sent_messages_of_a_range_back_to_pending(delivery: DeliveryLog) -> None:
    delivery.enqueue([new(1, "a"), new(2, "b"), new(3, "c")], NOW)
    while (message := delivery.claim("billy", NOW, LEASE)) is not None:
        delivery.finish(message, attempt("sent"), "sent")
    assert delivery.replay("billy", NOW, positions=(2, 3)) == 2
    assert delivery.counts()["billy"] == {
        "pending": 2,
        "sending": 0,
        "sent": 1,
        "failed": 0,
        "waiting": 0,
    }


def test_concurrent_workers_never_claim_one_message_or_one_lane_twice(
    delivery: DeliveryLog,
) -> None:
    delivery.enqueue([new(seq, f"c{seq % 7}") for seq in range(1, 141)], NOW)
    claimed: list[tuple[str, str]] = []
    lock = threading.Lock()

    def work() -> None:
        while (message := delivery.claim("billy", NOW, LEASE)) is not None:
            with lock:
                claimed.append((message.lane, message.id))
            delivery.finish(message, attempt("sent"), "sent")

    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    ids = [message_id for _, message_id in claimed]
    assert len(ids) == len(set(ids)) == 140
    for lane in {lane for lane, _ in claimed}:
        seqs = [int(i.split("-")[1]) for lane_, i in claimed if lane_ == lane]
        assert seqs == sorted(seqs), "a lane is delivered in order"


def test_request_slots_are_spaced_so_that_no_minute_holds_more_than_the_budget(
    delivery: DeliveryLog,
) -> None:
    slots = [NOW + timedelta(seconds=delivery.take_requests("dinero", 3, NOW)) for _ in range(10)]
    assert slots[0] == NOW, "the first request goes at once"
    assert all(
        sum(1 for other in slots if slot <= other <= slot + timedelta(seconds=60 + 0.999)) <= 3
        for slot in slots
    ), "three in any minute, with a second to spare for requests that arrive late"
    later = slots[-1] + timedelta(minutes=5)
    assert delivery.take_requests("dinero", 3, later) == 0.0, "an idle budget lets one go at once"
    assert delivery.take_requests("billy", 3, NOW) == 0.0, "each target has its own budget"


def test_workers_in_many_threads_never_share_a_request_slot(delivery: DeliveryLog) -> None:
    def take(_: int) -> datetime:
        return NOW + timedelta(seconds=delivery.take_requests("dinero", 100, NOW))

    with ThreadPoolExecutor(4) as pool:
        slots = sorted(pool.map(take, range(60)))
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert min(gaps) >= timedelta(seconds=0.6), "each slot its own, evenly spaced"


def test_processes_sharing_a_generous_budget_take_slots_in_blocks_and_never_overlap(
    delivery: DeliveryLog,
) -> None:
    now = [NOW]
    reserved: list[int] = []

    def reserve(count: int, at: datetime) -> float:
        reserved.append(count)
        return delivery.take_requests("billy", 24_000, at, count)

    first, second = (RequestBudget(reserve, 24_000, clock=lambda: now[0]) for _ in range(2))
    slots = []
    for step in range(300):
        budget = first if step % 3 else second
        slots.append(now[0] + timedelta(seconds=budget()))
        now[0] += timedelta(milliseconds=1)
    assert reserved == [100] * len(reserved) and len(reserved) <= 5, "blocks, not requests"
    assert len(set(slots)) == len(slots), "no slot is taken twice"
    ordered = sorted(slots)
    gaps = [later - earlier for earlier, later in itertools.pairwise(ordered)]
    assert min(gaps) >= timedelta(seconds=request_spacing(24_000)) - timedelta(microseconds=2)


def test_a_slot_whose_time_has_passed_is_dropped_not_spent_late(delivery: DeliveryLog) -> None:
    now = [NOW]
    budget = RequestBudget(
        lambda count, at: delivery.take_requests("billy", 24_000, at, count),
        24_000,
        clock=lambda: now[0],
    )
    assert budget() == 0.0
    now[0] += timedelta(seconds=10 * request_spacing(24_000) + 0.0001)
    wait = budget()
    assert 0 <= wait < request_spacing(24_000), "the next slot from now, not one ten slots ago"
