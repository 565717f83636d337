"""What the delivery log (`adapters.sync.log`) holds: a message for one target as it is
enqueued and as it is kept, an attempt to send one, and where delivery to a target stands."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

STATUSES: Final = ("pending", "sending", "sent", "failed")


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
            "next_attempt_at": self.next_attempt_at if self.status == "pending" else None,
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
    waiting behind one."""

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
