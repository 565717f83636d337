"""The one port every accounting target implements, and what crosses it.

The dispatcher hands a target one message at a time; the target does whatever requests that
takes (finding what exists, creating what does not, reading back, booking, e-mailing), and
either returns the ids the target gave, or raises `RetryableError` (a timeout, a dropped
connection, 429, 5xx: trying again later may work), `RejectedError` (the target refused
what we sent, or its totals differ from ours: nothing will change until a person looks) or
`WaitingError` (the invoice a payment or credit note is for is still a draft there). Every
request made is noted, without secrets, in the trace the dispatcher logs with the attempt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from subledger.adapters.sync.log_records import Message

#: The longest a target's `Retry-After` is believed, in seconds: a longer (or endless) one is
#: read as an hour, so that no answer can park a message for good or overflow a date.
MAX_RETRY_AFTER_SECONDS: Final = 3600.0


class RetryableError(Exception):
    def __init__(
        self, message: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class WaitingError(Exception):
    """The target cannot take the message yet, and no error of anyone's is the cause: its
    invoice is a draft there, which a person approves in their own time. The dispatcher
    sets the message `waiting` for `reason` and looks again after `recheck_after_seconds`."""

    def __init__(self, reason: str, recheck_after_seconds: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.recheck_after_seconds = recheck_after_seconds


class RejectedError(Exception):
    """`body` is the target's decoded answer, when it sent JSON, for adapters that act on the
    target's own error codes."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass
class Trace:
    """The requests of one attempt, as `METHOD path → status (ms)` lines, and the last status."""

    requests: list[str] = field(default_factory=list)
    status: int | None = None


@dataclass(frozen=True)
class TargetInvoice:
    """An invoice or credit note as the target holds it, in minor units: `paid` is the money
    its payments brought in less its refunds."""

    number: str
    kind: str
    gross: int
    balance: int
    state: str
    paid: int


@dataclass(frozen=True)
class SentInvoice:
    """One of our invoices that a target holds, as the payments pull asks about it: `paid` is
    what our log says its payments brought in less its refunds (minor units of `currency`)."""

    invoice_id: str
    number: str
    currency: str
    paid: int


@dataclass(frozen=True)
class TargetPayment:
    """A payment (`side` `in`) or refund (`out`) standing on an invoice at the target:
    `reference` is the target's id of it, `amount` what it settled of the invoice (minor
    units of the invoice's currency, > 0), `account` the number of the target's cash or
    deposit account it went through, `external_reference` the sender's reference where the
    target keeps one (Dinero)."""

    reference: str
    side: Literal["in", "out"]
    amount: int
    day: str
    account: str
    external_reference: str | None = None


class Target(Protocol):
    name: str

    def send(self, message: Message, trace: Trace) -> dict[str, Any]:
        """Make the target hold what `message` says, creating nothing twice; the target's ids."""
        ...

    def check(self, products: set[str]) -> list[str]:
        """What in the mapping does not hold at the target (its accounts, and the products the
        outbox names): empty if all does."""
        ...

    def invoices(self) -> list[TargetInvoice]:
        """Every invoice and credit note the target holds, for reconciliation."""
        ...

    def payments(self, invoices: Sequence[SentInvoice]) -> dict[str, list[TargetPayment]]:
        """The payments and refunds standing at the target on `invoices`, by our invoice id.
        An invoice left out of the answer was not read: the target found nothing changed on it
        (what it holds as paid is `paid`), or does not hold it."""
        ...

    def close(self) -> None: ...
