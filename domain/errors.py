"""Typed refusals. Every rule of the ledger raises one of these, never `assert`.

Each error carries a stable `code` (the API's error code) and the `field` it is about, as a path
inside the event's `data` (`lines[2].discount_amount`), or `id` for the event's own id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


class LedgerError(Exception):
    """Base class of every refusal of a submitted fact."""

    code: ClassVar[str] = "LEDGER_ERROR"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidEventError(LedgerError):
    """The event is malformed: a value out of range, two fields that contradict each other."""

    code = "INVALID_EVENT"


class UnknownReferenceError(LedgerError):
    """The event refers to a customer, subscription, invoice, line or payment that is unknown."""

    code = "UNKNOWN_REFERENCE"


class AlreadyExistsError(LedgerError):
    """The event creates something (by its business id) that exists already."""

    code = "ALREADY_EXISTS"


class RuleViolatedError(LedgerError):
    """The event is well formed but breaks a rule of the ledger (docs/specification.md §1.3)."""

    code = "RULE_VIOLATED"


class EventIdReusedError(LedgerError):
    """The sender's event id was appended before with another body."""

    code = "EVENT_ID_REUSED"


@dataclass(frozen=True)
class Problem:
    """One refusal, located: the event's index in its batch and the error."""

    index: int
    error: LedgerError


class BatchRefusedError(Exception):
    """A batch was refused as a whole: nothing of it was appended."""

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("a refused batch names at least one problem")
        super().__init__(problems[0].error.message)
        self.problems = problems

    @property
    def code(self) -> str:
        return self.problems[0].error.code


class ConcurrentAppendError(Exception):
    """Other writers kept changing the same things; the batch was not appended. Retry it."""
