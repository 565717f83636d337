"""The Period aggregate: an accounting month, closed to postings or open again."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate

from subledger.domain.dates import Month
from subledger.domain.errors import RuleViolatedError
from subledger.domain.facts import PeriodClosed, PeriodReopened
from subledger.domain.recording import Envelope, Recorded, aggregate_id, event_fields


class Period(Aggregate):
    """A month exists as an aggregate from the first time it is closed."""

    class FirstClosed(Aggregate.Created, PeriodClosed, Recorded):
        pass

    class Closed(Aggregate.Event, PeriodClosed, Recorded):
        def apply(self, aggregate: Period) -> None:
            aggregate.closed = True

    class Reopened(Aggregate.Event, PeriodReopened, Recorded):
        def apply(self, aggregate: Period) -> None:
            aggregate.closed = False

    def __init__(self, period: Month) -> None:
        self.period = period
        self.closed = True

    @staticmethod
    def id_for(period: Month) -> UUID:
        return aggregate_id("period", str(period))

    @classmethod
    def close_first_time(cls, fact: PeriodClosed, envelope: Envelope) -> Period:
        return cls._create(
            cls.FirstClosed, id=cls.id_for(fact.period), **event_fields(fact, envelope)
        )

    def close(self, fact: PeriodClosed, envelope: Envelope) -> None:
        if self.closed:
            raise RuleViolatedError(f"period {self.period} is closed already", "period")
        self.trigger_event(self.Closed, **event_fields(fact, envelope))

    def reopen(self, fact: PeriodReopened, envelope: Envelope) -> None:
        if not self.closed:
            raise RuleViolatedError(f"period {self.period} is not closed", "period")
        self.trigger_event(self.Reopened, **event_fields(fact, envelope))
