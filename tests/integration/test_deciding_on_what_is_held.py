"""A batch decided on what the ledger holds, without reading the store first, and the check at
the write that makes that safe: an aggregate another writer moved on is never decided on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from subledger.adapters.store import store_env
from subledger.api.http.event_data import logged_data, sealing_keys
from subledger.domain.customer import Customer
from subledger.domain.errors import BatchRefusedError
from subledger.domain.facts import CustomerErased, CustomerUpdated
from subledger.domain.ledger import Ledger
from tests.builders import append, customer, invoice, payment, refund, submission, subscription


class Calls:
    """The calls a ledger makes of one of its store's methods (a spy on the real store)."""

    method = ""

    def __init__(self, ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[Any, ...]] = []
        called = getattr(ledger.store, self.method)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(args)
            return called(*args, **kwargs)

        monkeypatch.setattr(ledger.store, self.method, counted)

    @property
    def count(self) -> int:
        return len(self.calls)


class Reads(Calls):
    """The reads a ledger makes to decide a batch: every decision on a read starts with this
    one. A whole read looks up the batch's event ids among what the log holds; a read of what
    is not held does not."""

    method = "read_batch_context"

    @property
    def whole(self) -> int:
        return sum(1 for call in self.calls if call[0])


class Writes(Calls):
    """The writes a ledger tries (refused ones too)."""

    method = "insert_events"


@pytest.fixture
def two_ledgers(database_url: str) -> Iterator[tuple[Ledger, Ledger]]:
    """Two ledgers on one store, as two API processes would be."""
    first, second = Ledger(store_env(database_url)), Ledger(store_env(database_url))
    yield first, second
    first.close()
    second.close()


def test_a_senders_next_events_are_decided_without_reading_the_store(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(store_env(store_url))
    append(ledger, customer("c1"), subscription("s1"))
    reads = Reads(ledger, monkeypatch)
    outcomes = append(ledger, invoice("i1", subscription_id="s1"))
    outcomes += append(ledger, payment("p1", "i1"))
    outcomes += append(ledger, refund("r1", "p1"))
    # A batch refunding a payment it records itself names the refund's invoice in that payment.
    outcomes += append(ledger, invoice("i2"), payment("p2", "i2"), refund("r2", "p2"))
    assert reads.count == 0, "the customer, subscription, invoices and payments were held"
    assert [(o.appended, o.position) for o in outcomes] == [(True, n) for n in range(3, 9)]
    logged = [e.event.event_id for e in ledger.read_log(0, 10)]  # type: ignore[attr-defined]
    assert logged[2:] == [o.event_id for o in outcomes]
    ledger.close()


def test_a_customer_is_updated_with_its_key_held_and_read_when_it_is_not(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(store_env(store_url), aggregate_cache_size=2)
    append(ledger, customer("c1"))
    reads, writes = Reads(ledger, monkeypatch), Writes(ledger, monkeypatch)
    append(ledger, CustomerUpdated(customer_id="c1", name="Renamed ApS"))
    assert (reads.count, writes.count) == (0, 1), "the customer and its key were held"
    append(ledger, customer("c2"), customer("c3"))  # the two keys held now: c2's and c3's
    append(ledger, invoice("i1", customer_id="c1"))  # c1 read again; c1 and i1 held now
    assert (reads.count, writes.count) == (1, 3)
    event_ids, references, aggregates, customers = reads.calls[-1]
    assert (event_ids, references, customers) == ((), set(), set())
    assert aggregates == {Customer.id_for("c1"): 0}, "only the customer not held was read"
    append(ledger, CustomerUpdated(customer_id="c1", name="Renamed again ApS"))
    assert (reads.count, writes.count) == (2, 4), "c1's key was read, then the batch written"
    assert reads.calls[-1][2:] == ({}, {"c1"}), "only the key was read: c1 was held"
    assert reads.whole == 0
    events = [logged.event for logged in ledger.read_log(0, 10)]
    keys = sealing_keys(ledger, events)
    names = [logged_data(event, keys).get("name") for event in events]
    assert names[1] == "Renamed ApS"
    assert names[-1] == "Renamed again ApS", "sealed with c1's own key"
    ledger.close()


def test_a_retry_and_a_refusal_are_still_told_from_a_read(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(store_env(store_url))
    first = append(ledger, customer("c1"))
    reads = Reads(ledger, monkeypatch)
    again = ledger.append([submission(customer("c1"), event_id=first[0].event_id)])
    assert [(o.appended, o.position) for o in again] == [(False, 1)]
    with pytest.raises(BatchRefusedError) as refused:
        append(ledger, invoice("i1", customer_id="nobody"))
    assert refused.value.problems[0].error.code == "UNKNOWN_REFERENCE"
    assert reads.whole == 2, "each was decided again on a whole read"
    assert ledger.last_position() == 1
    ledger.close()


def test_an_aggregate_another_process_moved_on_is_read_again(
    two_ledgers: tuple[Ledger, Ledger], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The invoice writes nothing to its customer, only looks at it: without the check at the
    write, the first ledger would invoice a customer the second had erased."""
    first, second = two_ledgers
    append(first, customer("c1"))
    append(second, CustomerErased(customer_id="c1"))
    reads = Reads(first, monkeypatch)
    with pytest.raises(BatchRefusedError) as refused:
        append(first, invoice("i1"))
    assert refused.value.problems[0].error.message == "customer 'c1' was erased"
    assert reads.count == 1
    assert first.last_position() == 2


def test_an_aggregate_read_for_a_batch_and_moved_on_before_its_write_is_read_again(
    two_ledgers: tuple[Ledger, Ledger], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first ledger holds nothing of the customer: it reads it alone, and the second erases
    it between that read and the first's write."""
    first, second = two_ledgers
    append(second, customer("c1"))
    save = first._save_in_order

    def erase_then_save(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(first, "_save_in_order", save)
        append(second, CustomerErased(customer_id="c1"))
        return save(*args, **kwargs)

    monkeypatch.setattr(first, "_save_in_order", erase_then_save)
    reads = Reads(first, monkeypatch)
    with pytest.raises(BatchRefusedError) as refused:
        append(first, invoice("i1"))
    assert refused.value.problems[0].error.message == "customer 'c1' was erased"
    assert (reads.count, reads.whole) == (2, 1), "the customer alone, then the whole batch"
    assert first.last_position() == 2


def test_a_refund_of_a_payment_not_held_reads_the_payment_and_its_invoice_alone(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = Ledger(store_env(store_url), aggregate_cache_size=1)
    append(ledger, customer("c1"), invoice("i1"), payment("p1", "i1", amount=12500))
    append(ledger, customer("c2"), invoice("i2", customer_id="c2"), payment("p2", "i2"))
    reads = Reads(ledger, monkeypatch)
    outcomes = append(ledger, refund("r1", "p1", amount=12000))
    assert [o.position for o in outcomes] == [7]
    with pytest.raises(BatchRefusedError):
        append(ledger, refund("r2", "p1", amount=1000))  # 12,500 paid, 13,000 refunded
    wanted = {("payment", "p1"), ("refund", "r1")}
    assert reads.calls[0][:2] == ((), wanted), "no event id, only the references it names"
    assert reads.whole == 1, "only the refusal was decided on a whole read"
    assert ledger.last_position() == 7
    ledger.close()
