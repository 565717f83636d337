"""The Subscription aggregate: what a customer subscribes to, from when, paused and cancelled.

The aggregate keeps only what its rules need. What a subscription is worth on a given day (its
MRR) is the projections' business: they see every change with its effective date, in any order.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from subledger.domain.customer import Customer
from subledger.domain.errors import RuleViolatedError
from subledger.domain.facts import (
    Fact,
    SubscriptionCancelled,
    SubscriptionChanged,
    SubscriptionPaused,
    SubscriptionResumed,
    SubscriptionStarted,
)
from subledger.domain.recording import Envelope, Recorded, aggregate_id, event_fields


class Subscription(Aggregate):
    """Its events after `Started` also record the subscription's `customer_id`, which their
    facts do not name, so that a projection can find the customer's rows from any of them."""

    class Started(Aggregate.Created, SubscriptionStarted, Recorded):
        pass

    class Changed(Aggregate.Event, SubscriptionChanged, Recorded):
        customer_id: str

    class Paused(Aggregate.Event, SubscriptionPaused, Recorded):
        customer_id: str

        def apply(self, aggregate: Subscription) -> None:
            aggregate.paused = True
            aggregate.last_pause_change = self.effective_date

    class Resumed(Aggregate.Event, SubscriptionResumed, Recorded):
        customer_id: str

        def apply(self, aggregate: Subscription) -> None:
            aggregate.paused = False
            aggregate.last_pause_change = self.effective_date

    class Cancelled(Aggregate.Event, SubscriptionCancelled, Recorded):
        customer_id: str

        def apply(self, aggregate: Subscription) -> None:
            # A later-appended cancellation can only be dated earlier (see `_refuse_date`):
            # the service ends at the earliest one.
            aggregate.cancelled_on = self.effective_date

    def __init__(
        self, subscription_id: str, customer_id: str, start_date: date, currency: str
    ) -> None:
        self.subscription_id = subscription_id
        self.customer_id = customer_id
        self.start_date = start_date
        self.currency = currency
        self.paused = False
        self.last_pause_change: date | None = None
        self.cancelled_on: date | None = None

    @staticmethod
    def id_for(subscription_id: str) -> UUID:
        return aggregate_id("subscription", subscription_id)

    @classmethod
    def start(
        cls, fact: SubscriptionStarted, customer: Customer, envelope: Envelope
    ) -> Subscription:
        customer.refuse_if_erased("customer_id")
        return cls._create(
            cls.Started, id=cls.id_for(fact.subscription_id), **event_fields(fact, envelope)
        )

    def change(self, fact: SubscriptionChanged, envelope: Envelope) -> None:
        self._refuse_date(fact.effective_date)
        self.trigger_event(self.Changed, **self._recorded(fact, envelope))

    def pause(self, fact: SubscriptionPaused, envelope: Envelope) -> None:
        self._refuse_date(fact.effective_date)
        if self.paused:
            raise RuleViolatedError("the subscription is paused already", "effective_date")
        self._refuse_before_last_pause_change(fact.effective_date, "resumed")
        self.trigger_event(self.Paused, **self._recorded(fact, envelope))

    def resume(self, fact: SubscriptionResumed, envelope: Envelope) -> None:
        self._refuse_date(fact.effective_date)
        if not self.paused:
            raise RuleViolatedError("the subscription is not paused", "effective_date")
        self._refuse_before_last_pause_change(fact.effective_date, "paused")
        self.trigger_event(self.Resumed, **self._recorded(fact, envelope))

    def cancel(self, fact: SubscriptionCancelled, envelope: Envelope) -> None:
        self._refuse_date(fact.effective_date)
        self.trigger_event(self.Cancelled, **self._recorded(fact, envelope))

    def _recorded(self, fact: Fact, envelope: Envelope) -> dict[str, Any]:
        return event_fields(fact, envelope, customer_id=self.customer_id)

    def _refuse_date(self, effective_date: date) -> None:
        """Nothing is dated before the start, and nothing happens on or after a cancellation.

        Events dated before an existing cancellation are accepted (backdated facts are normal),
        including a second cancellation that ends the service earlier.
        """
        if effective_date < self.start_date:
            raise RuleViolatedError(
                f"must not be before the subscription's start_date {self.start_date}",
                "effective_date",
            )
        if self.cancelled_on is not None and effective_date >= self.cancelled_on:
            raise RuleViolatedError(
                f"the subscription is cancelled from {self.cancelled_on}", "effective_date"
            )

    def _refuse_before_last_pause_change(self, effective_date: date, what: str) -> None:
        if self.last_pause_change is not None and effective_date < self.last_pause_change:
            raise RuleViolatedError(
                f"must not be before the day it was last {what} ({self.last_pause_change})",
                "effective_date",
            )
