"""The ledger application: batches of submitted facts in, one totally ordered log out.

All aggregates live in this one `eventsourcing` application, so the log has one order and a
position means the same everywhere. A batch is appended whole or not at all, in one transaction
(what `save()` does), in the order it was sent. It is idempotent on the sender's event ids: the
ids are written with the events, in the same transaction and under a unique constraint, so two
racing retries of one batch append it once; the loser re-reads and reports duplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, CanMutateAggregate, DomainEventProtocol
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    StoredEvent,
)

from subledger.domain.batch import (
    Batch,
    aggregate_ids,
    made_ids,
    reference_keys,
    refunded_payments,
)
from subledger.domain.cache import AggregateCache, Hunch, Remembered
from subledger.domain.customer import Customer
from subledger.domain.errors import (
    BatchRefusedError,
    ConcurrentAppendError,
    EventIdReusedError,
    LedgerError,
    Problem,
)
from subledger.domain.facts import (
    CustomerCreated,
    CustomerErased,
    CustomerUpdated,
    Fact,
    PaymentRefunded,
)
from subledger.domain.personal import logged_digest, new_key, same_body
from subledger.domain.ports import (
    DECIDED_ON,
    INVOICE_REFERENCES,
    LOG_ENTRIES,
    SEALING_KEYS,
    BatchContext,
    LedgerStore,
    LogEntry,
    PriorAppend,
    SealingKeyChange,
    SealingMapper,
)
from subledger.domain.recording import Envelope
from subledger.domain.topics import stored_topics

#: How often a batch is re-decided after losing a race to another writer before giving up.
MAX_ATTEMPTS: Final = 5
#: Aggregates kept in memory between batches (about 2 KB each: 200 MB when full; a generated
#: business of a million events keeps about 100,000 in use from one month to the next).
DEFAULT_AGGREGATE_CACHE_SIZE: Final = 100_000

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Submission:
    """One submitted event: the sender's id, the fact, and a digest of its type and data.

    The digest tells a retry (same id, same digest) from a reuse of the id for another event.
    """

    event_id: str
    fact: Fact
    digest: bytes
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class Outcome:
    event_id: str
    appended: bool
    position: int


@dataclass(frozen=True)
class Entry:
    """One event of the log, at its position (what projections fold)."""

    position: int
    event: DomainEventProtocol[UUID]


@dataclass(frozen=True)
class LoggedEvent:
    """An event as the log holds it."""

    position: int
    recorded_at: datetime
    event: DomainEventProtocol[UUID]


class Ledger(Application[UUID]):
    name = "Subledger"

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        clock: Clock = utc_now,
        aggregate_cache_size: int = DEFAULT_AGGREGATE_CACHE_SIZE,
    ) -> None:
        super().__init__(env)
        self._cache = AggregateCache(aggregate_cache_size)
        self._references: Remembered[tuple[str, str], str] = Remembered(aggregate_cache_size)
        self._keys: Remembered[str, bytes] = Remembered(aggregate_cache_size)
        self._hunch = Hunch()
        if not isinstance(self.recorder, LedgerStore):
            raise TypeError(
                f"{type(self.recorder).__name__} is not a LedgerStore: point "
                "PERSISTENCE_MODULE at one of the ledger's own store factories"
            )
        self.store: LedgerStore = self.recorder
        if not isinstance(self.mapper, SealingMapper):
            raise TypeError(
                f"{type(self.mapper).__name__} cannot seal personal data: point MAPPER_TOPIC at "
                "the ledger's own mapper"
            )
        self.sealer: SealingMapper = self.mapper
        self.clock = clock
        self._appended_listeners: list[Callable[[], None]] = []

    def on_append(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every batch this ledger appends (to wake a projection runner
        in this process without waiting for a poll)."""
        self._appended_listeners.append(listener)

    # Writing.

    def append(self, submissions: Sequence[Submission]) -> list[Outcome]:
        """Append a batch atomically; raise `BatchRefusedError` and append nothing if any fact
        is refused, or `ConcurrentAppendError` if other writers kept winning races for it."""
        if not submissions:
            raise ValueError("a batch holds at least one event")
        _refuse_malformed(submissions)
        store_failures = 0
        guess = self._hunch.worth_trying()
        for _ in range(MAX_ATTEMPTS):
            try:
                if guess:
                    guess = False
                    outcomes = self._append_on_what_is_held(submissions)
                    if outcomes is not None:
                        return outcomes
                return self._append_once(submissions)
            except (IntegrityError, _RacedError):
                # Another writer appended one of these ids, or created the same business id,
                # or moved on an aggregate the batch was decided on, after we looked. Nothing
                # of ours was written: look again and decide again.
                continue
            except (OperationalError, InterfaceError):
                # A connection broke (the database restarted, say). Trying again is safe even if
                # the commit went through: the retry then finds its own events as duplicates.
                store_failures += 1
                if store_failures > 1:
                    raise
        raise ConcurrentAppendError(
            f"the batch lost {MAX_ATTEMPTS} races with other writers; retry it"
        )

    def _append_on_what_is_held(self, submissions: Sequence[Submission]) -> list[Outcome] | None:
        """Decide the batch on the aggregates, invoice references and keys this process holds,
        reading only the aggregates and keys it needs and does not hold, and with them the
        references it names (one round trip, or none if nothing is missing; two if a refund
        names a payment whose invoice was not known): the write checks that none of the
        aggregates the batch was decided on has moved on, and its unique constraints that no
        event id, business id or key it adds exists. A batch of a thousand saves looking up
        its every event id and every held aggregate's newer events; a sender waiting for each
        answer, a round trip.

        None if the batch must be decided on a whole read instead: it was refused (a refusal
        is only ever given on a whole read), or the write found the store had moved on.
        Nothing was written then; the aggregates of the batch are dropped (a fact may have
        changed them half-way)."""
        facts = [s.fact for s in submissions]
        wanted = reference_keys(facts)
        references = self._references.get_many(wanted)
        unknown_references = wanted - references.keys()
        touched = aggregate_ids(facts, references)
        aggregates = self._cache.take(touched)
        keys: dict[str, bytes | None] = dict(self._keys.get_many(_customers_named(facts)))
        unheld = touched - aggregates.keys() - made_ids(facts)
        unknown_keys = _customers_sealed_again(facts) - keys.keys()
        try:
            # Unknown references are read along when a read is made anyway (a payment's is
            # made by the batch unless it failed before), alone only for a refund's payment.
            if unheld or unknown_keys or refunded_payments(facts) - references.keys():
                context = self.store.read_batch_context(
                    (), unknown_references, dict.fromkeys(unheld, 0), unknown_keys
                )
                self._remember(context.references.items(), context.keys)
                references.update(context.references)
                keys.update(context.keys)
                aggregates = self._bring_up_to_date(aggregates, context.stored_events)
                if context.references:
                    invoices = aggregate_ids(_refunds(facts), references) - touched
                    aggregates.update(self._held_or_read(invoices))
                    touched |= invoices
            fresh, duplicate_of = _sort_out_duplicates(submissions, {}, keys)
            positions = self._decide_and_save(
                submissions, fresh, references, keys, aggregates, touched
            )
        except (BatchRefusedError, IntegrityError):
            self._hunch.record(missed=True)
            return None
        self._hunch.record(missed=False)
        return _outcomes(submissions, positions, duplicate_of)

    def _held_or_read(self, ids: set[UUID]) -> dict[UUID, Aggregate]:
        """The aggregates among `ids` this process holds, as held, and the others read."""
        held = self._cache.take(ids)
        unheld = ids - held.keys()
        if not unheld:
            return held
        return self._bring_up_to_date(
            held, self.store.select_aggregates_events(dict.fromkeys(unheld, 0))
        )

    def _append_once(self, submissions: Sequence[Submission]) -> list[Outcome]:
        event_ids = {s.event_id for s in submissions}
        facts = [s.fact for s in submissions]
        touched = aggregate_ids(facts, {})
        cached = self._cache.take(touched)
        known = {i: cached[i].version if i in cached else 0 for i in touched}
        context = self.store.read_batch_context(
            event_ids, reference_keys(facts), known, _customers_named(facts)
        )
        self._remember(context.references.items(), context.keys)
        aggregates = self._bring_up_to_date(cached, context.stored_events)
        fresh, duplicate_of = _sort_out_duplicates(submissions, context.prior, context.keys)
        positions: dict[int, int] = {}
        if fresh:
            try:
                positions = self._append_fresh(submissions, fresh, context, aggregates, touched)
            except BatchRefusedError:
                # The aggregates may have been read after the ids were looked up (not on
                # PostgreSQL, which reads them from one snapshot). If a retry of some of these
                # very events was appended in between, the refusal ("customer exists") came
                # from our own events: decide again on a consistent view.
                if self.store.find_appended(event_ids).keys() != context.prior.keys():
                    raise _RacedError from None
                raise
        else:
            self._cache.put(aggregates.values())
        return _outcomes(submissions, positions, duplicate_of)

    def _append_fresh(
        self,
        submissions: Sequence[Submission],
        fresh: list[int],
        context: BatchContext,
        aggregates: dict[UUID, Aggregate],
        touched: set[UUID],
    ) -> dict[int, int]:
        # A refund names its payment, not its invoice: that invoice is known only now.
        refunds = _refunds(s.fact for s in submissions)
        missing = aggregate_ids(refunds, context.references) - aggregates.keys()
        if missing:
            cached = self._cache.take(missing)
            known = {i: cached[i].version if i in cached else 0 for i in missing}
            newer = self.store.select_aggregates_events(known)
            aggregates.update(self._bring_up_to_date(cached, newer))
        return self._decide_and_save(
            submissions, fresh, context.references, context.keys, aggregates, touched | missing
        )

    def _decide_and_save(
        self,
        submissions: Sequence[Submission],
        fresh: list[int],
        references: Mapping[tuple[str, str], str],
        keys: Mapping[str, bytes | None],
        aggregates: dict[UUID, Aggregate],
        touched: Collection[UUID],
    ) -> dict[int, int]:
        """Apply the fresh facts to `aggregates` and write their events, with the versions
        the batch was decided on: if another writer moved any of the batch's aggregates on
        (even one it only looked at, a customer for an invoice, say), the write is refused
        with an `IntegrityError` and the batch is decided again."""
        decided_on = dict.fromkeys(touched, 0)  # those not in `aggregates` did not exist
        decided_on.update({i: aggregate.version for i, aggregate in aggregates.items()})
        batch = Batch(aggregates, references)
        timestamp = self.clock()
        events: list[CanMutateAggregate[UUID]] = []
        for index in fresh:
            submission = submissions[index]
            envelope = Envelope(submission.event_id, submission.occurred_at, timestamp)
            try:
                events.append(batch.apply(submission.fact, envelope))
            except LedgerError as error:
                raise BatchRefusedError([Problem(index, error)]) from error
        sealing_keys, key_changes = _sealing_keys(events, keys)
        log_entries = [
            LogEntry(
                submissions[index].event_id,
                logged_digest(submissions[index].fact, submissions[index].digest, key),
            )
            for index, key in zip(fresh, sealing_keys, strict=True)
        ]
        positions = self._save_in_order(
            events,
            sealing_keys,
            **{
                LOG_ENTRIES: log_entries,
                INVOICE_REFERENCES: batch.new_references,
                SEALING_KEYS: key_changes,
                DECIDED_ON: decided_on,
            },
        )
        # Saved: the batch's aggregates are what the store holds now. (An aggregate of a batch
        # that failed is never put back: a refused fact may have changed it half-way.)
        self._cache.put(batch.aggregates)
        self._remember(
            (((r.kind, r.key), r.invoice_id) for r in batch.new_references),
            {change.customer_id: change.key for change in key_changes},
        )
        for listener in self._appended_listeners:
            listener()
        return dict(zip(fresh, positions, strict=True))

    def _remember(
        self,
        references: Iterable[tuple[tuple[str, str], str]],
        keys: Mapping[str, bytes | None],
    ) -> None:
        """Keep invoice references and customers' keys read or written (neither changes
        once stored but by an erasure, which forgets the key)."""
        self._references.put_many(references)
        self._keys.put_many((c, key) for c, key in keys.items() if key is not None)
        self._keys.forget(c for c, key in keys.items() if key is None)

    def _save_in_order(
        self,
        events: list[CanMutateAggregate[UUID]],
        sealing_keys: Sequence[bytes | None],
        **kwargs: Any,
    ) -> Sequence[int]:
        """Record the events in the order given (the batch's) in one transaction, as `save()`
        does, and return their positions; customer events have their personal fields sealed
        with their key in `sealing_keys`.

        `save()` would check each event against a runtime protocol and wrap each in a
        `Recording`; on Python 3.11 that cost more than encoding the events.
        """
        stored_events = [
            self.mapper.to_stored_event(event)
            if key is None
            else self.sealer.to_sealed_stored_event(event, key)
            for event, key in zip(events, sealing_keys, strict=True)
        ]
        positions = self.recorder.insert_events(stored_events, **kwargs)
        assert positions is not None
        assert len(positions) == len(events)
        return positions

    def _bring_up_to_date(
        self, cached: dict[UUID, Aggregate], stored_events: Sequence[StoredEvent]
    ) -> dict[UUID, Aggregate]:
        """The cached aggregates moved on by their newer stored events, and the aggregates not
        cached reconstructed from theirs (each aggregate's events in version order)."""
        aggregates: dict[UUID, Aggregate | None] = dict(cached)
        for stored in stored_events:
            event = cast(CanMutateAggregate[UUID], self.mapper.to_domain_event(stored))
            aggregates[event.originator_id] = event.mutate(aggregates.get(event.originator_id))
        return {i: aggregate for i, aggregate in aggregates.items() if aggregate is not None}

    # Reading.

    def read_log(self, after: int = 0, limit: int = 100) -> list[LoggedEvent]:
        """Up to `limit` events after position `after`, in log order, with their positions."""
        return [
            LoggedEvent(
                record.position,
                record.recorded_at,
                self.mapper.to_domain_event(record.notification),
            )
            for record in self.store.read_log(after, limit)
        ]

    def read_entries(
        self, after: int, upto: int, limit: int, event_types: Collection[type]
    ) -> list[Entry]:
        """Up to `limit` events of `event_types` with `after < position <= upto`, decoded."""
        topics = [topic for kind in event_types for topic in stored_topics(kind)]
        return [
            Entry(notification.id, self.mapper.to_domain_event(notification))
            for notification in self.store.read_notifications(after, upto, limit, topics)
        ]

    def iter_entries(
        self, upto: int, event_types: Collection[type], page_size: int = 5000, after: int = 0
    ) -> Iterator[Entry]:
        """Every event of `event_types` after position `after` up to position `upto`, in
        order, read a page at a time."""
        while True:
            page = self.read_entries(after, upto, page_size, event_types)
            yield from page
            if len(page) < page_size:
                return
            after = page[-1].position

    def iter_aggregate_entries(self, aggregate_id: UUID, upto: int) -> Iterator[Entry]:
        """One aggregate's events up to position `upto`, in order."""
        for notification in self.store.read_aggregate_notifications(aggregate_id, upto):
            yield Entry(notification.id, self.mapper.to_domain_event(notification))

    def sealing_keys(self, customer_ids: Collection[str]) -> Mapping[str, bytes | None]:
        """The keys of the given customers that have one: the key, or None once erased (their
        personal data can no longer be read)."""
        return self.store.sealing_keys(customer_ids)

    def last_position(self) -> int:
        return self.store.last_position()

    def position_at(self, instant: datetime) -> int:
        """The last position recorded at or before `instant` (0 if none was)."""
        return self.store.position_at(instant)


class _RacedError(Exception):
    """A batch was decided on reads that straddled another writer's append of its events."""


def _refuse_malformed(submissions: Sequence[Submission]) -> None:
    problems = []
    for index, submission in enumerate(submissions):
        try:
            submission.fact.check()
        except LedgerError as error:
            problems.append(Problem(index, error))
    if problems:
        raise BatchRefusedError(problems)


@dataclass(frozen=True)
class _SameAs:
    """A duplicate of the event at `index` earlier in the same batch."""

    index: int


def _refunds(facts: Iterable[Fact]) -> list[PaymentRefunded]:
    return [fact for fact in facts if isinstance(fact, PaymentRefunded)]


def _customers_named(facts: Sequence[Fact]) -> set[str]:
    """The customers whose keys a batch needs: those its customer facts name."""
    return {
        fact.customer_id
        for fact in facts
        if isinstance(fact, CustomerCreated | CustomerUpdated | CustomerErased)
    }


def _customers_sealed_again(facts: Sequence[Fact]) -> set[str]:
    """The customers whose key a batch seals with and does not make: those it updates, made
    before it."""
    made = {fact.customer_id for fact in facts if isinstance(fact, CustomerCreated)}
    return {fact.customer_id for fact in facts if isinstance(fact, CustomerUpdated)} - made


def _sealing_keys(
    events: Sequence[CanMutateAggregate[UUID]], keys: Mapping[str, bytes | None]
) -> tuple[list[bytes | None], list[SealingKeyChange]]:
    """For each event, the key that seals it (None for an event with no personal data), and
    the changes to the customers' keys to write with the events: a new key for a new customer
    (or for one whose events were written before personal data was sealed), None for an
    erased one. A customer made and erased in one batch keeps no key: its events are sealed
    with one that is never written."""
    current: dict[str, bytes | None] = dict(keys)
    sealing: list[bytes | None] = []
    changes: dict[str, SealingKeyChange] = {}
    for event in events:
        if not isinstance(event, Customer.Created | Customer.Updated | Customer.Erased):
            sealing.append(None)
            continue
        customer_id = event.customer_id
        if isinstance(event, Customer.Erased):
            current[customer_id] = None
            sealing.append(None)
            change = SealingKeyChange(
                customer_id, event.originator_id, event.originator_version, None
            )
            changes[customer_id] = change
            continue
        key = current.get(customer_id)
        if key is None:
            # No key yet (a customer erased already is refused before this point).
            key = current[customer_id] = new_key()
            changes[customer_id] = SealingKeyChange(
                customer_id, event.originator_id, event.originator_version, key
            )
        sealing.append(key)
    return sealing, list(changes.values())


def _sort_out_duplicates(
    submissions: Sequence[Submission],
    prior: Mapping[str, PriorAppend],
    keys: Mapping[str, bytes | None],
) -> tuple[list[int], dict[int, int | _SameAs]]:
    """Split a batch into the indexes to append and, for each duplicate, either the position it
    holds in the log or the earlier event of this batch it repeats."""
    fresh: list[int] = []
    duplicate_of: dict[int, int | _SameAs] = {}
    first_index: dict[str, int] = {}
    problems = []
    for index, submission in enumerate(submissions):
        earlier = prior.get(submission.event_id)
        if earlier is not None:
            key = keys.get(getattr(submission.fact, "customer_id", ""))
            if same_body(submission.fact, submission.digest, earlier.digest, key):
                duplicate_of[index] = earlier.position
            else:
                problems.append(Problem(index, _reused(submission, f"position {earlier.position}")))
        elif submission.event_id in first_index:
            first = first_index[submission.event_id]
            if submissions[first].digest == submission.digest:
                duplicate_of[index] = _SameAs(first)
            else:
                problems.append(Problem(index, _reused(submission, f"index {first} of this batch")))
        else:
            first_index[submission.event_id] = index
            fresh.append(index)
    if problems:
        raise BatchRefusedError(problems)
    return fresh, duplicate_of


def _outcomes(
    submissions: Sequence[Submission],
    positions: Mapping[int, int],
    duplicate_of: Mapping[int, int | _SameAs],
) -> list[Outcome]:
    """Each submission's outcome: appended at its position, or a duplicate of an event in the
    log or earlier in the batch."""
    outcomes = []
    for index, submission in enumerate(submissions):
        if index in positions:
            outcomes.append(Outcome(submission.event_id, True, positions[index]))
        else:
            earlier = duplicate_of[index]
            position = positions[earlier.index] if isinstance(earlier, _SameAs) else earlier
            outcomes.append(Outcome(submission.event_id, False, position))
    return outcomes


def _reused(submission: Submission, where: str) -> EventIdReusedError:
    return EventIdReusedError(
        f"event id {submission.event_id!r} was used for another event (at {where})", "id"
    )
