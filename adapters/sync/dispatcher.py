"""The dispatcher: moves messages from the outbox into the delivery log, and from there to the
targets, with retries, backoff and a lease on each claim.

`enqueue` pairs every outbox message after each target's cursor with that target, and, once a
month has ended (by the dispatcher's clock), its recognition voucher; if the journal's revenue of
an ended month changes after its voucher was enqueued (a late fact in an open month), a further
voucher for the difference follows, so the target's books always add up to ours.

`Dispatcher.deliver_one` claims one message, has its target send it, and records the attempt:
`sent`; `pending` again after a backoff (exponential with jitter, at least the target's
`Retry-After`, which is believed up to `MAX_RETRY_AFTER_SECONDS`) when retrying may help; or
`failed`, with a notification, when it cannot. An unexpected error (a bug of ours, neither
`RetryableError` nor `RejectedError`) is retried like a retryable one, until a message has met
`DispatchSettings.max_unexpected_errors` of them in a row: then it fails and notifies too,
rather than hold its lane unseen for ever. A failed message holds its customer's later
messages until it is retried. A `WaitingError` (a payment or credit note whose invoice is a
draft at the target) is no failure: the message is set `waiting`, with its document's later
messages, and claimed again after the target's recheck interval (`draft_recheck`); the
customer's other invoices go meanwhile.

With `transfer = "on_payment"` (`on_payment` of `enqueue_messages`) a target gets an invoice,
its credit notes and payments only once it is paid in full (`DeliveryLog.enqueue`).
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal, cast

from subledger.adapters.sync.log import DeliveryLog
from subledger.adapters.sync.log_records import Attempt, Message, NewMessage
from subledger.adapters.sync.port import (
    MAX_RETRY_AFTER_SECONDS,
    RejectedError,
    RetryableError,
    Target,
    Trace,
    WaitingError,
)
from subledger.domain.chart import Chart
from subledger.domain.dates import Month
from subledger.projections.engine import RowSource
from subledger.projections.journal import TOTALS
from subledger.projections.messages import RecognitionMessage, VoucherLine
from subledger.projections.outbox import BOOKS_LANE, message_id, messages_after, recognition_voucher

log = logging.getLogger("subledger.sync")

Clock = Callable[[], datetime]
Notify = Callable[[Message, str], None]
#: Gives a message its customer's personal fields just before it is sent (`PersonalDetails.open`).
Open = Callable[[Message], Message]
#: Blots out of a text the personal values of an opened message (`PersonalDetails.redact`).
Redact = Callable[[str, Message], str]


#: The longest a target's `Retry-After` defers a message: an hour. A target asking for longer,
#: or for no finite time at all, is tried again after an hour (an error of its own, or a date
#: far off, must neither park a message for years nor overflow the clock's arithmetic).


def _now() -> datetime:
    return datetime.now(UTC)


# Enqueueing.


def enqueue_messages(
    delivery: DeliveryLog,
    outbox: RowSource,
    position: int,
    targets: Sequence[str],
    now: datetime,
    fingerprint: str = "",
    held: Collection[str] = (),
    on_payment: Collection[str] = (),
) -> int:
    """Pair the outbox's messages after each target's cursor with the target; the number new.
    `fingerprint` is the outbox's: when it changes (an upgrade derives messages otherwise),
    every message is paired again, and only those not known by id are new. The messages of
    the targets `held` names wait for a run (`Schedule.holds`); the invoices of those
    `on_payment` names wait to be paid in full (`transfer = "on_payment"`)."""
    if not targets:
        return 0
    after = min(delivery.cursor(target, fingerprint) for target in targets)
    inserted = 0
    while after < position:
        page = [m for m in messages_after(outbox, after, 1000) if m["position"] <= position]
        if not page:
            break
        new = [
            NewMessage(
                id=message_id(target, m["kind"], m["source_event_id"]),
                target=target,
                lane=m["lane"],
                seq=m["position"],
                kind=m["kind"],
                source=m["source_event_id"],
                dated=_dated(m["payload"]),
                payload=m["payload"],
            )
            for m in page
            for target in targets
        ]
        after = page[-1]["position"]
        inserted += delivery.enqueue(
            new, now, dict.fromkeys(targets, after), fingerprint, held, on_payment
        )
    delivery.enqueue([], now, dict.fromkeys(targets, position), fingerprint, held, on_payment)
    return inserted


def _dated(payload: dict[str, Any]) -> str:
    """The business date of a message (a document's date; a contact has none: the empty
    string, which sorts before every date)."""
    return str(payload.get("issue_date") or payload.get("date") or "")


def enqueue_vouchers(
    delivery: DeliveryLog,
    books: RowSource,
    chart: Chart,
    targets: Sequence[str],
    today: date,
    held: Collection[str] = (),
) -> int:
    """Each ended month's recognition voucher (or the difference since the last), per target
    (held for a run at the targets `held` names)."""
    keys = [key for key, _ in books.scan(TOTALS)]
    if not keys:
        return 0
    currencies = {key[0] for key in keys}
    month, inserted = Month.of(date.fromisoformat(min(key[1] for key in keys))), 0
    while month.last_day < today:
        voucher = recognition_voucher(books, chart, month, currencies)
        for target in targets:
            inserted += _enqueue_voucher(delivery, target, voucher, month, target in held)
        month = month.next()
    return inserted


def _enqueue_voucher(
    delivery: DeliveryLog, target: str, voucher: RecognitionMessage, month: Month, held: bool
) -> int:
    before = delivery.vouchers(target, voucher["date"])
    sent: dict[tuple[str, str], int] = {}
    for message in before:
        for line in cast(RecognitionMessage, message.payload)["lines"]:
            _add(sent, line)
    wanted: dict[tuple[str, str], int] = {}
    for line in voucher["lines"]:
        _add(wanted, line)
    difference = {key: wanted.get(key, 0) - sent.get(key, 0) for key in wanted.keys() | sent}
    lines: list[VoucherLine] = [
        {
            "account": account,
            "currency": currency,
            "side": "debit" if amount > 0 else "credit",
            "amount": abs(amount),
        }
        for (account, currency), amount in sorted(difference.items())
        if amount
    ]
    if not lines:
        return 0
    revision = len(before)
    source = str(month) if revision == 0 else f"{month}/r{revision}"
    payload: RecognitionMessage = {"month": str(month), "date": voucher["date"], "lines": lines}
    new = NewMessage(
        id=message_id(target, "recognition", source),
        target=target,
        lane=BOOKS_LANE,
        seq=(month.year * 12 + month.month) * 1000 + revision,
        kind="recognition",
        source=source,
        dated=voucher["date"],
        payload={**payload},
    )
    return delivery.enqueue([new], _now(), held=(target,) if held else ())


def _add(amounts: dict[tuple[str, str], int], line: VoucherLine) -> None:
    key = (line["account"], line["currency"])
    signed = line["amount"] if line["side"] == "debit" else -line["amount"]
    amounts[key] = amounts.get(key, 0) + signed


# When a target is sent to.

Mode = Literal["continuous", "scheduled", "manual"]
MODES: Final = ("continuous", "scheduled", "manual")


@dataclass(frozen=True)
class Schedule:
    """When a target is sent to (`mode` in its `[targets.<name>]` table): `continuous`, each
    message as soon as it is enqueued; `scheduled`, every `every_seconds`, everything pending
    at that moment (the rounds fall on whole multiples of the period since 1970-01-01 00:00
    UTC, so every process agrees on them: `every = "1d"` at midnight UTC, `"3h"` at 00, 03,
    06 ... UTC); `manual`, only when a run is asked for. The messages of a scheduled or
    manual target are enqueued held (`log_records.HELD_UNTIL`) until a round or a run
    releases them."""

    mode: Mode = "continuous"
    every_seconds: int | None = None

    @property
    def holds(self) -> bool:
        """Whether the target's messages wait for a run."""
        return self.mode != "continuous"

    def round_at(self, now: datetime) -> int | None:
        """The number of the scheduled round `now` falls in (None unless `scheduled`)."""
        if self.mode != "scheduled" or not self.every_seconds:
            return None
        return int(now.timestamp()) // self.every_seconds

    def describe(self) -> dict[str, Any]:
        return {"mode": self.mode, "every_seconds": self.every_seconds}


#: Suffixes of a period (`every = "3h"`) and their seconds.
PERIOD_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def period_seconds(text: str) -> int:
    """`"90s"`, `"15m"`, `"3h"`, `"1d"` in seconds: a whole number of at least 1 followed by
    one of `s`, `m`, `h`, `d`; ValueError for anything else."""
    unit = text[-1:] if isinstance(text, str) else ""
    number = text[:-1] if unit in PERIOD_UNITS else ""
    if not number.isascii() or not number.isdigit() or int(number) < 1:
        raise ValueError(f'must be a whole number and one of s, m, h, d, as "3h" (got {text!r})')
    return int(number) * PERIOD_UNITS[unit]


# Delivering.


@dataclass(frozen=True)
class DispatchSettings:
    lease: timedelta = timedelta(seconds=120)
    backoff_base_seconds: float = 1.0
    backoff_cap_seconds: float = 300.0
    idle: float = 0.5
    #: Unexpected errors in a row after which a message fails (and is notified).
    max_unexpected_errors: int = 10


class Dispatcher:
    def __init__(
        self,
        delivery: DeliveryLog,
        targets: Mapping[str, Target],
        settings: DispatchSettings | None = None,
        notify: Notify | None = None,
        clock: Clock = _now,
        open_message: Open | None = None,
        redact: Redact | None = None,
    ) -> None:
        self.delivery = delivery
        self.targets = targets
        self.settings = settings or DispatchSettings()
        self.notify = notify
        self.open_message = open_message
        self.redact = redact
        self.clock = clock
        self.random = random.Random()  # noqa: S311 (jitter, not secrets)

    def deliver_one(self, target: str) -> bool:
        """Claim and send one message of `target`; False if none was due."""
        message = self.delivery.claim(target, self.clock(), self.settings.lease)
        if message is None:
            return False
        trace, started = Trace(), self.clock()
        clock_start = time.perf_counter()
        ids: dict[str, Any] = {}
        error: str | None = None
        unexpected = 0
        waiting_for: str | None = None
        opened = message
        try:
            if self.open_message is not None:
                opened = self.open_message(message)
            ids = self.targets[target].send(opened, trace)
            status, outcome, retry_at = "sent", "sent", None
        except WaitingError as problem:
            status, outcome, waiting_for = "waiting", "waiting", problem.reason
            retry_at = self.clock() + timedelta(seconds=max(problem.recheck_after_seconds, 0))
        except RetryableError as problem:
            error, status, outcome = str(problem), "pending", "retry"
            retry_at = self.clock() + timedelta(seconds=self._backoff(message, problem))
        except RejectedError as problem:
            error, status, outcome, retry_at = str(problem), "failed", "failed", None
        except Exception as problem:  # a bug of ours: retried a while, then failed
            log.exception("sending %s to %s failed unexpectedly", message.id, target)
            error = f"{type(problem).__name__}: {problem}"
            unexpected = message.unexpected_errors + 1
            if unexpected >= self.settings.max_unexpected_errors:
                error = f"{error} ({unexpected} unexpected errors in a row)"
                status, outcome, retry_at = "failed", "failed", None
            else:
                status, outcome = "pending", "retry"
                retry_at = self.clock() + timedelta(seconds=self._backoff(message, None))
        if self.redact is not None and opened is not message:
            trace.requests = [self.redact(line, opened) for line in trace.requests]
            error = None if error is None else self.redact(error, opened)
        attempt = Attempt(
            started_at=started,
            duration_ms=round((time.perf_counter() - clock_start) * 1000),
            requests=trace.requests,
            http_status=trace.status,
            target_ids=ids,
            error=error,
            outcome=outcome,
        )
        self.delivery.finish(message, attempt, status, retry_at, unexpected, waiting_for)
        if status == "failed" and self.notify is not None and error is not None:
            try:
                self.notify(message, error)
            except Exception:
                log.exception("the notification of %s's failure was not delivered", message.id)
        return True

    def _backoff(self, message: Message, problem: RetryableError | None) -> float:
        exponent = min(message.attempts - 1, 30)
        delay: float = min(
            self.settings.backoff_cap_seconds, self.settings.backoff_base_seconds * 2.0**exponent
        )
        delay *= self.random.uniform(0.5, 1.0)
        if problem is not None and problem.retry_after is not None:
            delay = max(delay, bounded_retry_after(problem.retry_after))
        return delay

    def run_once(self, targets: Sequence[str], deadline: float) -> None:
        """Send every message of `targets` that is due, and wait out their backoffs, until
        none is left to send (all sent, failed, waiting behind a failed one of its lane, or
        `waiting`: for payment in full, or for a draft to be booked) or `time.monotonic()`
        passes `deadline`."""
        while time.monotonic() < deadline:
            if any(self.deliver_one(target) for target in targets):
                continue
            summary = self.delivery.summary()
            waiting = sum(
                found.counts.get("pending", 0)
                + found.counts.get("sending", 0)
                - found.held_messages
                for name, found in summary.items()
                if name in targets
            )
            if waiting <= 0:
                return
            time.sleep(self.settings.idle)

    def work(self, stop: threading.Event) -> None:
        """Deliver messages of every target until `stop` is set, resting while none is due."""
        while not stop.is_set():
            busy = False
            for target in self.targets:
                try:
                    busy |= self.deliver_one(target)
                except Exception:
                    log.exception("the delivery log could not be read or written")
                    stop.wait(self.settings.idle)
            if not busy:
                stop.wait(self.settings.idle)


def bounded_retry_after(seconds: float) -> float:
    """A target's `Retry-After` as a delay the dispatcher keeps to: at most
    `MAX_RETRY_AFTER_SECONDS` (infinity included), never negative; one that is not a number
    (NaN) asks for nothing."""
    if math.isnan(seconds):
        return 0.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)
