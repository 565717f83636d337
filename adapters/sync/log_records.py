"""What the delivery log (`adapters.sync.log`) holds: a message for one target as it is
enqueued and as it is kept, an attempt to send one, and where delivery to a target stands."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

STATUSES: Final = ("pending", "sending", "sent", "failed", "waiting")
#: Why a message of a target with `transfer = "on_payment"` waits: its invoice is not yet paid
#: in full (`DeliveryLog.enqueue` holds the invoice and what follows it until it is).
WAITING_FOR_PAYMENT: Final = "payment in full"
#: The kinds of message that belong to an invoice (a document): the invoice itself, and its
#: credit notes, payments and refunds.
DOCUMENT_KINDS: Final = ("invoice", "credit_note", "payment", "refund")
#: The `next_attempt_at` of a message held for a run: a `manual` or `scheduled` target's
#: message, enqueued but not due until `DeliveryLog.release` (a run, or its period's round)
#: makes it due. Later than any retry, so that no claim takes it before then.
HELD_UNTIL: Final = datetime(9999, 1, 1, tzinfo=UTC)


def document_of(kind: str, payload: dict[str, Any]) -> str:
    """The invoice a message belongs to (its document): an invoice's own id, a credit note's,
    payment's or refund's `invoice_id`; empty for a contact or a recognition voucher."""
    if kind not in DOCUMENT_KINDS:
        return ""
    return str(payload.get("invoice_id") or "")


def settled(document: Sequence[tuple[str, dict[str, Any]]]) -> bool:
    """Whether an invoice is paid in full: `document` is its messages as (kind, payload), the
    invoice first. Its payments less its refunds must cover its gross less its credit notes;
    one credited in full (nothing left due) is settled. Every message of a document is in its
    invoice's currency (the outbox gives each the invoice's); one that is not leaves the
    document unsettled rather than add amounts of two currencies."""
    (kind, invoice), *rest = document
    if kind != "invoice":
        return False
    due, paid = int(invoice["gross"]), 0
    for kind, payload in rest:
        if payload.get("currency") != invoice.get("currency"):
            return False
        if kind == "credit_note":
            due -= int(payload["gross"])
        elif kind == "payment":
            paid += int(payload["amount"])
        elif kind == "refund":
            paid -= int(payload["amount"])
    return paid >= due


@dataclass(frozen=True)
class NewMessage:
    """A message for one target, as it is enqueued."""

    id: str
    target: str
    lane: str
    seq: int
    kind: str
    source: str
    dated: str
    #: The message's JSON object: its kind's type in `projections.messages` (as the outbox
    #: version that made it wrote it), read as that type by the target adapters.
    payload: dict[str, Any]

    @property
    def document(self) -> str:
        """The invoice the message belongs to (`document_of`)."""
        return document_of(self.kind, self.payload)


@dataclass(frozen=True)
class Message(NewMessage):
    """A message as the delivery log holds it."""

    status: str
    attempts: int
    next_attempt_at: datetime
    target_ids: dict[str, Any]
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    #: Unexpected errors met in a row (reset by any other outcome, a retry or a replay).
    unexpected_errors: int = 0
    #: Since when the message has waited to be sent: enqueued, retried or replayed.
    pending_since: datetime | None = None
    #: What a `waiting` message waits for: `WAITING_FOR_PAYMENT`, or its invoice booked at
    #: the target (a draft there); None unless waiting.
    waiting_for: str | None = None

    @property
    def held(self) -> bool:
        """Pending until a run (of a `manual` or `scheduled` target) releases it."""
        return self.status == "pending" and self.next_attempt_at >= HELD_UNTIL

    def describe(self) -> dict[str, Any]:
        """The message as the API shows it."""
        return {
            "id": self.id,
            "target": self.target,
            "kind": self.kind,
            "customer_id": self.lane or None,
            "source": self.source,
            "dated": self.dated,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": (
                self.next_attempt_at
                if self.status in ("pending", "waiting") and self.next_attempt_at < HELD_UNTIL
                else None
            ),
            "held": self.held,
            "waiting_for": self.waiting_for,
            "target_ids": self.target_ids,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "sent_at": self.sent_at,
            "payload": self.payload,
        }


@dataclass(frozen=True)
class TargetSummary:
    """Where delivery to one target stands: its messages by status; since when the oldest
    unsent one (`pending` or `sending`, held or not) has waited; and what failures hold up: a
    failed message holds its lane (a customer, or the books' vouchers), so `held_lanes` is the
    number of lanes with a failed message and `held_messages` that of the unsent messages
    waiting behind one. `waiting` messages (an invoice not yet paid in full, a payment whose
    invoice is a draft at the target) are neither work left nor failures."""

    target: str
    counts: dict[str, int]
    oldest_pending_at: datetime | None
    held_lanes: int
    held_messages: int

    def oldest_pending_seconds(self, now: datetime) -> int | None:
        """Whole seconds the oldest unsent message has waited by `now`; None if none waits."""
        if self.oldest_pending_at is None:
            return None
        return max(0, int((now - self.oldest_pending_at).total_seconds()))

    def describe(self, now: datetime) -> dict[str, Any]:
        """The summary as the API and `subledger sync status --json` show it."""
        return {
            **{status: self.counts.get(status, 0) for status in STATUSES},
            "oldest_pending_at": self.oldest_pending_at,
            "oldest_pending_seconds": self.oldest_pending_seconds(now),
            "held_lanes": self.held_lanes,
            "held_messages": self.held_messages,
        }


@dataclass(frozen=True)
class Attempt:
    started_at: datetime
    duration_ms: int
    requests: Sequence[str]
    http_status: int | None
    target_ids: dict[str, Any]
    error: str | None
    outcome: str


@dataclass(frozen=True)
class LastError:
    """The latest attempt that ended in an error: when, the error, and the message's id."""

    at: datetime
    message: str
    message_id: str

    def describe(self) -> dict[str, Any]:
        return {"at": self.at, "message": self.message, "message_id": self.message_id}


@dataclass(frozen=True)
class Health:
    """Green or red, for a target or a customer's lane at a target: red while a message is
    `failed` (it holds its lane until it is sent again) or when the latest attempt ended in
    an error; green otherwise (`waiting` messages leave it green: they wait by design). With
    the last success and the last error."""

    target: str
    counts: dict[str, int]
    last_success_at: datetime | None
    last_error: LastError | None

    @property
    def state(self) -> str:
        if self.counts.get("failed", 0):
            return "red"
        if self.last_error is not None and (
            self.last_success_at is None or self.last_error.at > self.last_success_at
        ):
            return "red"
        return "green"

    def describe(self) -> dict[str, Any]:
        return {
            "state": self.state,
            **{status: self.counts.get(status, 0) for status in STATUSES},
            "last_success_at": self.last_success_at,
            "last_error": None if self.last_error is None else self.last_error.describe(),
        }
