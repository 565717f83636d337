"""The Customer aggregate: who is billed, and whether their personal data was erased."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate

from subledger.domain.errors import RuleViolatedError
from subledger.domain.facts import CustomerCreated, CustomerErased, CustomerUpdated
from subledger.domain.recording import Envelope, Recorded, aggregate_id, event_fields
from subledger.domain.values import CLEARED, Kind


class Customer(Aggregate):
    class Created(Aggregate.Created, CustomerCreated, Recorded):
        pass

    class Updated(Aggregate.Event, CustomerUpdated, Recorded):
        def apply(self, aggregate: Customer) -> None:
            if self.kind is not None:
                aggregate.kind = self.kind
            if self.ean is not None:
                aggregate.has_ean = self.ean is not CLEARED

    class Erased(Aggregate.Event, CustomerErased, Recorded):
        def apply(self, aggregate: Customer) -> None:
            aggregate.erased = True

    def __init__(self, customer_id: str, kind: Kind, ean: str | None) -> None:
        self.customer_id = customer_id
        self.kind: Kind = kind
        self.has_ean = ean is not None
        self.erased = False

    @staticmethod
    def id_for(customer_id: str) -> UUID:
        return aggregate_id("customer", customer_id)

    @classmethod
    def create(cls, fact: CustomerCreated, envelope: Envelope) -> Customer:
        return cls._create(
            cls.Created, id=cls.id_for(fact.customer_id), **event_fields(fact, envelope)
        )

    def update(self, fact: CustomerUpdated, envelope: Envelope) -> None:
        self.refuse_if_erased("customer_id")
        kind = fact.kind or self.kind
        has_ean = self.has_ean if fact.ean is None else fact.ean is not CLEARED
        if kind == "public" and not has_ean:
            raise RuleViolatedError("a public customer needs an EAN", "ean")
        self.trigger_event(self.Updated, **event_fields(fact, envelope))

    def erase(self, fact: CustomerErased, envelope: Envelope) -> None:
        self.refuse_if_erased("customer_id")
        self.trigger_event(self.Erased, **event_fields(fact, envelope))

    def refuse_if_erased(self, field: str) -> None:
        if self.erased:
            raise RuleViolatedError(f"customer {self.customer_id!r} was erased", field)
