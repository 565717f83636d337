"""Applying a batch of facts to the aggregates they touch, in order, without saving anything.

Everything a batch refers to is loaded up front in two reads (invoice references, then the events
of every aggregate named), so a batch of a thousand facts costs a handful of round trips, not
thousands. Facts later in the batch see the aggregates as the earlier facts left them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate, CanMutateAggregate

from subledger.domain.customer import Customer
from subledger.domain.errors import AlreadyExistsError, RuleViolatedError, UnknownReferenceError
from subledger.domain.facts import (
    CreditNoteIssued,
    CustomerCreated,
    CustomerErased,
    CustomerUpdated,
    Fact,
    InvoiceIssued,
    PaymentFailed,
    PaymentReceived,
    PaymentRefunded,
    PeriodClosed,
    PeriodReopened,
    SubscriptionCancelled,
    SubscriptionChanged,
    SubscriptionPaused,
    SubscriptionResumed,
    SubscriptionStarted,
)
from subledger.domain.invoice import Invoice
from subledger.domain.period import Period
from subledger.domain.ports import InvoiceReference
from subledger.domain.recording import Envelope
from subledger.domain.subscription import Subscription

A = TypeVar("A", bound=Aggregate)
Loader = Callable[[Iterable[UUID]], Mapping[UUID, Aggregate]]

_PAYMENT, _REFUND, _CREDIT_NOTE = "payment", "refund", "credit_note"


def reference_keys(facts: Iterable[Fact]) -> set[tuple[str, str]]:
    """The invoice references a batch needs to look up."""
    keys: set[tuple[str, str]] = set()
    for fact in facts:
        if isinstance(fact, PaymentReceived | PaymentFailed):
            keys.add((_PAYMENT, fact.payment_id))
        elif isinstance(fact, PaymentRefunded):
            keys.update(((_PAYMENT, fact.payment_id), (_REFUND, fact.refund_id)))
        elif isinstance(fact, CreditNoteIssued):
            keys.add((_CREDIT_NOTE, fact.credit_note_id))
    return keys


def aggregate_ids(facts: Iterable[Fact], references: Mapping[tuple[str, str], str]) -> set[UUID]:
    """The aggregates a batch touches or refers to."""
    ids: set[UUID] = set()
    for fact in facts:
        if isinstance(fact, CustomerCreated | CustomerUpdated | CustomerErased):
            ids.add(Customer.id_for(fact.customer_id))
        elif isinstance(fact, SubscriptionStarted):
            ids.update(
                (Subscription.id_for(fact.subscription_id), Customer.id_for(fact.customer_id))
            )
        elif isinstance(
            fact,
            SubscriptionChanged | SubscriptionPaused | SubscriptionResumed | SubscriptionCancelled,
        ):
            ids.add(Subscription.id_for(fact.subscription_id))
        elif isinstance(fact, InvoiceIssued):
            ids.update((Invoice.id_for(fact.invoice_id), Customer.id_for(fact.customer_id)))
            if fact.subscription_id is not None:
                ids.add(Subscription.id_for(fact.subscription_id))
        elif isinstance(fact, PaymentReceived | PaymentFailed | CreditNoteIssued):
            ids.add(Invoice.id_for(fact.invoice_id))
        elif isinstance(fact, PaymentRefunded):
            invoice_id = references.get((_PAYMENT, fact.payment_id))
            if invoice_id is not None:
                ids.add(Invoice.id_for(invoice_id))
        elif isinstance(fact, PeriodClosed | PeriodReopened):
            ids.add(Period.id_for(fact.period))
    return ids


def made_ids(facts: Iterable[Fact]) -> set[UUID]:
    """The aggregates the facts make, if they do not exist yet."""
    ids: set[UUID] = set()
    for fact in facts:
        if isinstance(fact, CustomerCreated):
            ids.add(Customer.id_for(fact.customer_id))
        elif isinstance(fact, SubscriptionStarted):
            ids.add(Subscription.id_for(fact.subscription_id))
        elif isinstance(fact, InvoiceIssued):
            ids.add(Invoice.id_for(fact.invoice_id))
        elif isinstance(fact, PeriodClosed):
            ids.add(Period.id_for(fact.period))
    return ids


def refunded_payments(facts: Iterable[Fact]) -> set[tuple[str, str]]:
    """The references of the payments the facts refund that no earlier fact of theirs records
    (a refund names its payment, whose reference names the refund's invoice)."""
    paid: set[tuple[str, str]] = set()
    refunded: set[tuple[str, str]] = set()
    for fact in facts:
        if isinstance(fact, PaymentReceived | PaymentFailed):
            paid.add((_PAYMENT, fact.payment_id))
        elif isinstance(fact, PaymentRefunded) and (_PAYMENT, fact.payment_id) not in paid:
            refunded.add((_PAYMENT, fact.payment_id))
    return refunded


class Batch:
    """The aggregates of one batch, and the facts applied to them so far."""

    def __init__(
        self,
        aggregates: Mapping[UUID, Aggregate],
        references: Mapping[tuple[str, str], str],
    ) -> None:
        self._aggregates: dict[UUID, Aggregate] = dict(aggregates)
        self._references: dict[tuple[str, str], str] = dict(references)
        self.new_references: list[InvoiceReference] = []

    @property
    def aggregates(self) -> list[Aggregate]:
        """Every aggregate the batch has seen or made, as the applied facts left them."""
        return list(self._aggregates.values())

    def apply(self, fact: Fact, envelope: Envelope) -> CanMutateAggregate[UUID]:
        """Apply one fact; return the one domain event that records it. Raises `LedgerError`."""
        aggregate = _HANDLERS[type(fact)](self, fact, envelope)
        events: Sequence[CanMutateAggregate[UUID]] = aggregate.collect_events()
        assert len(events) == 1, "every fact is recorded by exactly one domain event"
        return events[0]

    # Lookups.

    def _find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        found = self._aggregates.get(aggregate_id)
        if found is not None and not isinstance(found, cls):
            raise TypeError(f"{aggregate_id} is a {type(found).__name__}, not a {cls.__name__}")
        return found

    def _require(self, cls: type[A], aggregate_id: UUID, what: str, field: str) -> A:
        found = self._find(cls, aggregate_id)
        if found is None:
            raise UnknownReferenceError(f"no {what}", field)
        return found

    def _refuse_existing(self, cls: type[A], aggregate_id: UUID, what: str, field: str) -> None:
        if self._find(cls, aggregate_id) is not None:
            raise AlreadyExistsError(f"{what} exists", field)

    def _added(self, aggregate: A) -> A:
        self._aggregates[aggregate.id] = aggregate
        return aggregate

    def _customer(self, customer_id: str) -> Customer:
        return self._require(
            Customer, Customer.id_for(customer_id), f"customer {customer_id!r}", "customer_id"
        )

    def _subscription(self, subscription_id: str) -> Subscription:
        return self._require(
            Subscription,
            Subscription.id_for(subscription_id),
            f"subscription {subscription_id!r}",
            "subscription_id",
        )

    def _invoice(self, invoice_id: str, field: str = "invoice_id") -> Invoice:
        return self._require(Invoice, Invoice.id_for(invoice_id), f"invoice {invoice_id!r}", field)

    def _claim(self, kind: str, key: str, invoice_id: str, field: str) -> None:
        """Record that `key` lives in `invoice_id`; refuse it if it lives in another invoice."""
        owner = self._references.get((kind, key))
        if owner is None:
            self._references[(kind, key)] = invoice_id
            self.new_references.append(InvoiceReference(kind, key, invoice_id))
        elif owner != invoice_id:
            raise AlreadyExistsError(
                f"{kind.replace('_', ' ')} {key!r} exists on invoice {owner!r}", field
            )

    # One handler per fact type.

    def _customer_created(self, fact: CustomerCreated, envelope: Envelope) -> Aggregate:
        aggregate_id = Customer.id_for(fact.customer_id)
        self._refuse_existing(
            Customer, aggregate_id, f"customer {fact.customer_id!r}", "customer_id"
        )
        return self._added(Customer.create(fact, envelope))

    def _customer_updated(self, fact: CustomerUpdated, envelope: Envelope) -> Aggregate:
        customer = self._customer(fact.customer_id)
        customer.update(fact, envelope)
        return customer

    def _customer_erased(self, fact: CustomerErased, envelope: Envelope) -> Aggregate:
        customer = self._customer(fact.customer_id)
        customer.erase(fact, envelope)
        return customer

    def _subscription_started(self, fact: SubscriptionStarted, envelope: Envelope) -> Aggregate:
        self._refuse_existing(
            Subscription,
            Subscription.id_for(fact.subscription_id),
            f"subscription {fact.subscription_id!r}",
            "subscription_id",
        )
        customer = self._customer(fact.customer_id)
        return self._added(Subscription.start(fact, customer, envelope))

    def _subscription_changed(self, fact: SubscriptionChanged, envelope: Envelope) -> Aggregate:
        subscription = self._subscription(fact.subscription_id)
        subscription.change(fact, envelope)
        return subscription

    def _subscription_paused(self, fact: SubscriptionPaused, envelope: Envelope) -> Aggregate:
        subscription = self._subscription(fact.subscription_id)
        subscription.pause(fact, envelope)
        return subscription

    def _subscription_resumed(self, fact: SubscriptionResumed, envelope: Envelope) -> Aggregate:
        subscription = self._subscription(fact.subscription_id)
        subscription.resume(fact, envelope)
        return subscription

    def _subscription_cancelled(self, fact: SubscriptionCancelled, envelope: Envelope) -> Aggregate:
        subscription = self._subscription(fact.subscription_id)
        subscription.cancel(fact, envelope)
        return subscription

    def _invoice_issued(self, fact: InvoiceIssued, envelope: Envelope) -> Aggregate:
        self._refuse_existing(
            Invoice, Invoice.id_for(fact.invoice_id), f"invoice {fact.invoice_id!r}", "invoice_id"
        )
        customer = self._customer(fact.customer_id)
        subscription = (
            None if fact.subscription_id is None else self._subscription(fact.subscription_id)
        )
        return self._added(Invoice.issue(fact, customer, subscription, envelope))

    def _payment_received(self, fact: PaymentReceived, envelope: Envelope) -> Aggregate:
        invoice = self._invoice(fact.invoice_id)
        self._claim(_PAYMENT, fact.payment_id, fact.invoice_id, "payment_id")
        invoice.receive_payment(fact, envelope)
        return invoice

    def _payment_failed(self, fact: PaymentFailed, envelope: Envelope) -> Aggregate:
        invoice = self._invoice(fact.invoice_id)
        self._claim(_PAYMENT, fact.payment_id, fact.invoice_id, "payment_id")
        invoice.record_failed_payment(fact, envelope)
        return invoice

    def _payment_refunded(self, fact: PaymentRefunded, envelope: Envelope) -> Aggregate:
        invoice_id = self._references.get((_PAYMENT, fact.payment_id))
        if invoice_id is None:
            raise UnknownReferenceError(f"no payment {fact.payment_id!r}", "payment_id")
        invoice = self._invoice(invoice_id, "payment_id")
        self._claim(_REFUND, fact.refund_id, invoice_id, "refund_id")
        invoice.refund(fact, envelope)
        return invoice

    def _credit_note_issued(self, fact: CreditNoteIssued, envelope: Envelope) -> Aggregate:
        invoice = self._invoice(fact.invoice_id)
        self._claim(_CREDIT_NOTE, fact.credit_note_id, fact.invoice_id, "credit_note_id")
        invoice.issue_credit_note(fact, envelope)
        return invoice

    def _period_closed(self, fact: PeriodClosed, envelope: Envelope) -> Aggregate:
        period = self._find(Period, Period.id_for(fact.period))
        if period is None:
            return self._added(Period.close_first_time(fact, envelope))
        period.close(fact, envelope)
        return period

    def _period_reopened(self, fact: PeriodReopened, envelope: Envelope) -> Aggregate:
        period = self._find(Period, Period.id_for(fact.period))
        if period is None:
            raise RuleViolatedError(f"period {fact.period} is not closed", "period")
        period.reopen(fact, envelope)
        return period


# By fact type. A table of plain functions, not of bound methods: a batch holding its own bound
# methods would be a reference cycle, kept alive (with every aggregate of the batch) until the
# garbage collector's next pass instead of being freed when the batch ends.
_HANDLERS: dict[type[Any], Callable[[Batch, Any, Envelope], Aggregate]] = {
    CustomerCreated: Batch._customer_created,
    CustomerUpdated: Batch._customer_updated,
    CustomerErased: Batch._customer_erased,
    SubscriptionStarted: Batch._subscription_started,
    SubscriptionChanged: Batch._subscription_changed,
    SubscriptionPaused: Batch._subscription_paused,
    SubscriptionResumed: Batch._subscription_resumed,
    SubscriptionCancelled: Batch._subscription_cancelled,
    InvoiceIssued: Batch._invoice_issued,
    PaymentReceived: Batch._payment_received,
    PaymentFailed: Batch._payment_failed,
    PaymentRefunded: Batch._payment_refunded,
    CreditNoteIssued: Batch._credit_note_issued,
    PeriodClosed: Batch._period_closed,
    PeriodReopened: Batch._period_reopened,
}
