"""Racing writers: the id check and the business-id checks hold inside the write transaction.

Each race makes both writers decide their batch before either writes (a barrier just before
the write), so the loser really does find out at the write, not at the earlier look-up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from subledger.adapters.store import store_env
from subledger.domain.errors import BatchRefusedError
from subledger.domain.facts import CustomerErased
from subledger.domain.ledger import Ledger, Outcome, Submission
from tests.builders import customer, invoice, line, submission, subscription


class RacingLedger(Ledger):
    """A ledger whose first save in a racing thread waits until the other racer is about to
    save too, so both have decided their batch before either writes."""

    barrier: threading.Barrier | None = None

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env)
        self.racing = threading.local()

    def _save_in_order(self, *args: Any, **kwargs: Any) -> Any:
        if self.barrier is not None and getattr(self.racing, "first_save", False):
            self.racing.first_save = False
            self.barrier.wait(timeout=10)
        return super()._save_in_order(*args, **kwargs)


@pytest.fixture
def racers(store_url: str) -> Iterator[tuple[RacingLedger, RacingLedger]]:
    """Two ledgers on one store, as two API processes would be (one shared in memory)."""
    first = RacingLedger(store_env(store_url))
    second = first if store_url == "memory://" else RacingLedger(store_env(store_url))
    yield first, second
    first.close()
    second.close()


def race(
    ledgers: tuple[RacingLedger, RacingLedger],
    batches: tuple[list[Submission], list[Submission]],
) -> list[list[Outcome] | BaseException]:
    barrier = threading.Barrier(2)
    for ledger in ledgers:
        ledger.barrier = barrier

    def run(index: int) -> list[Outcome] | BaseException:
        ledgers[index].racing.first_save = True
        try:
            return ledgers[index].append(batches[index])
        except BatchRefusedError as error:
            return error

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(run, index) for index in (0, 1)]
        return [future.result(timeout=30) for future in futures]


def test_two_racing_retries_of_one_batch_append_it_once(
    racers: tuple[RacingLedger, RacingLedger],
) -> None:
    setup = [submission(customer("c1"))]
    racers[0].append(setup)
    batch = [submission(subscription("s1")), submission(invoice("i1", subscription_id="s1"))]
    results = race(racers, (batch, batch))
    outcomes = [result for result in results if isinstance(result, list)]
    assert len(outcomes) == 2
    appended = sorted([o.appended for o in outcome] for outcome in outcomes)
    assert appended == [[False, False], [True, True]], "one appends, the other gets duplicates"
    assert [o.position for o in outcomes[0]] == [o.position for o in outcomes[1]] == [2, 3]
    assert [e.event.event_id for e in racers[0].read_log(0, 10)] == [  # type: ignore[attr-defined]
        setup[0].event_id,
        batch[0].event_id,
        batch[1].event_id,
    ]


def test_two_different_events_creating_the_same_invoice_have_one_winner(
    racers: tuple[RacingLedger, RacingLedger],
) -> None:
    racers[0].append([submission(customer("c1"))])
    one = [submission(invoice("i9", lines=(line(10000),)))]
    other = [submission(invoice("i9", lines=(line(20000),)))]
    results = race(racers, (one, other))
    winners = [result for result in results if isinstance(result, list)]
    losers = [result for result in results if isinstance(result, BatchRefusedError)]
    assert len(winners) == 1
    assert len(losers) == 1
    assert losers[0].problems[0].error.code == "ALREADY_EXISTS"
    assert racers[0].last_position() == 2


def test_two_events_claiming_one_payment_id_on_two_invoices_have_one_winner(
    racers: tuple[RacingLedger, RacingLedger],
) -> None:
    from tests.builders import payment

    racers[0].append([submission(fact) for fact in (customer(), invoice("i1"), invoice("i2"))])
    results = race(
        racers,
        ([submission(payment("p1", "i1"))], [submission(payment("p1", "i2"))]),
    )
    assert sorted(type(result).__name__ for result in results) == ["BatchRefusedError", "list"]
    assert racers[0].last_position() == 4


def test_an_invoice_racing_its_customers_erasure_is_never_logged_after_it(
    racers: tuple[RacingLedger, RacingLedger],
) -> None:
    """The invoice only looks at its customer: whichever writes second, the log never holds an
    invoice of a customer erased before it."""
    racers[0].append([submission(customer("c1"))])
    results = race(
        racers,
        ([submission(invoice("i1"))], [submission(CustomerErased(customer_id="c1"))]),
    )
    logged = [type(e.event).__name__ for e in racers[1].read_log(0, 10)]
    if isinstance(results[0], BatchRefusedError):
        assert results[0].problems[0].error.message == "customer 'c1' was erased"
        assert logged == ["Created", "Erased"]
    else:
        assert logged == ["Created", "Issued", "Erased"]
    assert isinstance(results[1], list)


def test_many_senders_retrying_concurrently_append_each_event_once(database_url: str) -> None:
    """Four threads each send the same twenty batches in a shuffled order, twice."""
    import random

    ledgers = [Ledger(store_env(database_url)) for _ in range(4)]
    batches = [
        [
            submission(customer(f"c{n}")),
            submission(subscription(f"s{n}", customer_id=f"c{n}")),
            submission(invoice(f"i{n}", customer_id=f"c{n}", subscription_id=f"s{n}")),
        ]
        for n in range(20)
    ]

    failures: list[BaseException] = []

    def sender(seed: int) -> Callable[[], None]:
        def send() -> None:
            order = [*batches, *batches]
            random.Random(seed).shuffle(order)
            try:
                for batch in order:
                    ledgers[seed].append(batch)
            except BaseException as error:
                failures.append(error)

        return send

    threads = [threading.Thread(target=sender(seed)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    logged = ledgers[0].read_log(0, 1000)
    ids = [e.event.event_id for e in logged]  # type: ignore[attr-defined]
    assert sorted(ids) == sorted(s.event_id for batch in batches for s in batch)
    # Each batch was one transaction: its events sit side by side, in the order sent.
    position = {event_id: index for index, event_id in enumerate(ids)}
    for batch in batches:
        places = [position[s.event_id] for s in batch]
        assert places == list(range(places[0], places[0] + len(batch)))
    for ledger in ledgers:
        ledger.close()
