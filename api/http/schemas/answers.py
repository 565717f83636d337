"""The bodies of the reads (docs/specification.md §4), as the OpenAPI document describes them.

The routes build their answers as plain dicts from the projections; these models only say what
those dicts hold, for the document and its readers. They forbid fields they do not name, so
that an answer that grows a field the document does not know fails the Schemathesis test
(`tests/e2e/test_openapi_schemathesis.py`) instead of surprising a client.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


Currency = str | None
_CURRENCY = Field(description="the currency asked for, or the data's only one (null: no data)")


class RevenueMonth(Answer):
    month: str = Field(examples=["2026-01"])
    billed: int
    credited: int
    recognized: int
    deferred_end: int = Field(description="negative where revenue was earned before billed")


class RevenueSummary(Answer):
    currency: Currency = _CURRENCY
    months: list[RevenueMonth]


class ScheduledMonth(Answer):
    month: str
    amount: int = Field(description="the month's scheduled amount plus its reversals")


class ScheduledLine(Answer):
    line_id: str
    net: int
    recognition: Literal["daily", "monthly", "point_in_time"]
    credited: int
    months: list[ScheduledMonth]


class RevenueSchedule(Answer):
    invoice_id: str
    currency: str
    lines: list[ScheduledLine]


class WaterfallRow(Answer):
    billing_month: str
    billed: int
    months: list[ScheduledMonth] = Field(description="what of it was recognized in each month")


class RevenueWaterfall(Answer):
    currency: Currency = _CURRENCY
    rows: list[WaterfallRow]


class Movements(Answer):
    new: int
    expansion: int
    reactivation: int
    contraction: int
    churn: int


class MrrMonth(Answer):
    month: str
    mrr: int
    arr: int
    customers: int
    arpa: int | None = Field(description="MRR per paying customer (null: none)")
    movements: Movements


class MrrMetrics(Answer):
    currency: Currency = _CURRENCY
    months: list[MrrMonth]


class RetentionMonth(Answer):
    month: str
    starting_mrr: int
    starting_customers: int
    expansion: int
    contraction: int
    churn: int
    churned_customers: int
    gross_revenue_retention: str | None = Field(description='a decimal string, "0.9500"')
    net_revenue_retention: str | None
    customer_churn_rate: str | None


class Retention(Answer):
    currency: Currency = _CURRENCY
    months: list[RetentionMonth]


class CustomerMrrMonth(Answer):
    month: str
    mrr: int
    arr: int
    movements: Movements
    event_ids: list[str] = Field(description="the events behind the month's movement")


class CustomerMrr(Answer):
    customer_id: str
    erased: bool
    currency: Currency = _CURRENCY
    months: list[CustomerMrrMonth]


class EntryLine(Answer):
    account: str
    role: str
    debit: int
    credit: int
    currency: str
    product_id: str | None = Field(default=None, description="on revenue lines")
    method: str | None = Field(default=None, description="on bank lines")


class Entry(Answer):
    entry_id: str
    date: str
    original_date: str | None
    status: Literal["posted", "scheduled"]
    kind: str
    currency: str
    customer_id: str | None
    source_event_ids: list[str]
    lines: list[EntryLine]


class LedgerEntries(Answer):
    first: str = Field(alias="from")
    last: str = Field(alias="to")
    entries: list[Entry]
    next: str | None = Field(description="the `after` of the next page (null: the last page)")


class TrialBalanceAccount(Answer):
    account: str
    role: str
    debit: int
    credit: int
    balance: int


class TrialBalance(Answer):
    currency: Currency = _CURRENCY
    as_of: str
    accounts: list[TrialBalanceAccount]
    total_debit: int
    total_credit: int


class CardLine(Answer):
    date: str
    original_date: str | None
    entry_id: str
    kind: str
    customer_id: str | None
    debit: int
    credit: int
    balance: int


class AccountCard(Answer):
    account: str
    role: str
    currency: Currency = _CURRENCY
    first: str = Field(alias="from")
    last: str = Field(alias="to")
    opening_balance: int
    lines: list[CardLine]
    closing_balance: int | None = Field(description="null until the last page")
    next: str | None


class Produced(Answer):
    recognition: list[dict[str, Any]]
    mrr: list[dict[str, Any]]
    entries: list[Entry]
    outbox: list[dict[str, Any]]


class AuditedEvent(Answer):
    position: int
    id: str
    type: str
    occurred_at: str | None
    recorded_at: str
    data: dict[str, Any]
    produced: Produced


class AuditTrail(Answer):
    kind: Literal["customer", "subscription", "invoice"]
    id: str
    events: list[AuditedEvent]


class SyncTarget(Answer):
    """Where delivery to one target stands."""

    pending: int
    sending: int
    sent: int
    failed: int
    waiting: int = Field(
        description="messages waiting for their invoice to be paid in full (transfer ="
        ' "on_payment") or booked at the target: neither work left nor failures'
    )
    oldest_pending_at: datetime | None = Field(
        description="since when the oldest unsent (pending or sending) message has waited:"
        " enqueued, retried or replayed; null when none waits"
    )
    oldest_pending_seconds: int | None = Field(description="its wait, in whole seconds, now")
    held_lanes: int = Field(
        description="lanes (customers, or the books' vouchers) held by a failed message"
    )
    held_messages: int = Field(description="unsent messages waiting behind a failed one")


class SyncMessages(Answer):
    messages: list[dict[str, Any]]
    next: str | None
    targets: dict[str, SyncTarget] | None = Field(
        description="per target, where delivery stands; on the first page only (no `after`)"
    )


class Replayed(Answer):
    target: str
    replayed: int = Field(description="how many messages will be sent again")


class SyncRunTarget(Answer):
    """What a run started at one target."""

    mode: Literal["continuous", "scheduled", "manual"]
    released: int = Field(description="messages that were held for a run and are due now")
    pending: int = Field(description="messages now waiting to be sent (those released included)")


class SyncRun(Answer):
    """A run ("sync now") started: everything pending at `started_at` is due at once; the
    service's dispatcher sends it (follow it with `GET /v1/sync/status`)."""

    started_at: datetime
    targets: dict[str, SyncRunTarget]


class CustomerResent(Answer):
    customer_id: str
    resent: dict[str, int] = Field(
        description="per target, the customer's messages that will be sent again"
    )


class SyncError(Answer):
    at: datetime = Field(description="when the attempt that met it ended")
    message: str = Field(description="the error, as the target or the network gave it")
    message_id: str


class SyncHealth(Answer):
    """Green or red: red while a message is failed (holding its lane) or when the latest
    attempt ended in an error, green otherwise."""

    state: Literal["green", "red"]
    pending: int
    sending: int
    sent: int
    failed: int
    waiting: int = Field(description="messages waiting by design, which leave the state green")
    last_success_at: datetime | None = Field(description="when a message was last sent")
    last_error: SyncError | None = Field(description="the latest attempt's error, if any")


class SyncTargetStatus(SyncHealth):
    mode: Literal["continuous", "scheduled", "manual"]
    every_seconds: int | None = Field(description="a scheduled target's period")


class SyncStatus(Answer):
    targets: dict[str, SyncTargetStatus]


class CustomerSync(Answer):
    customer_id: str
    targets: dict[str, SyncHealth] = Field(description="the customer's lane at each target")
    messages: list[dict[str, Any]] = Field(description="the customer's messages, oldest first")
