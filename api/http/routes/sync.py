"""Syncing, seen and steered (docs/specification.md §7): the delivery log's messages with their
attempts, a retry of a failed one, a resend of any message or of a customer's, a replay of a
range, a run ("sync now"), each target's and each customer's green or red, and a
reconciliation of our invoices with a target's."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from subledger.adapters.sync.log import Health
from subledger.adapters.sync.log_waiting import unpaid_documents
from subledger.adapters.sync.port import RejectedError, RetryableError, TargetInvoice
from subledger.api.http.auth import AdminKey, ReadKey
from subledger.api.http.dependencies import SyncDep
from subledger.api.http.errors import ApiError, ErrorCode
from subledger.api.http.parameters import MAX_POSITION
from subledger.api.http.responses import OrjsonResponse
from subledger.api.http.schemas.answers import (
    CustomerResent,
    CustomerSync,
    Replayed,
    SyncMessages,
    SyncRun,
    SyncStatus,
)
from subledger.api.http.schemas.documents import BODY_REFUSALS, READ_REFUSALS, refusals
from subledger.api.sync import Sync
from subledger.projections.outbox import MESSAGES, invoice_balances

#: What every route here may answer (a route that names a code at 409 names this one too).
_SYNC_REFUSALS = (*READ_REFUSALS, ErrorCode.SYNC_UNAVAILABLE)
router = APIRouter(prefix="/v1/sync", tags=["sync"], responses=refusals(*_SYNC_REFUSALS))
Status = Literal["pending", "sending", "sent", "failed", "waiting"]


def _known_target(sync: Sync, target: str) -> None:
    if target not in sync.targets:
        known = ", ".join(sync.targets) or "none"
        raise ApiError(ErrorCode.NOT_FOUND, f"no target {target!r} is configured (known: {known})")


@router.get(
    "/messages",
    summary="The delivery log's messages, a page at a time",
    description="The first page (no `after`) also carries `targets`: per target (of `target`"
    " alone when given; whatever `status` asks for), its messages by status, since when the"
    " oldest unsent one has waited, and the lanes (customers) a failed message holds with the"
    " messages waiting behind them. Later pages carry `targets: null`.",
    response_model=SyncMessages,
    responses=refusals(*READ_REFUSALS, ErrorCode.INVALID_CURSOR),
)
def sync_messages(
    _: ReadKey,
    sync: SyncDep,
    status: Annotated[Status | None, Query(description="only messages in this status")] = None,
    target: Annotated[str | None, Query(max_length=64)] = None,
    after: Annotated[str | None, Query(max_length=512, description="`next` of a page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> OrjsonResponse:
    cursor = _decode(after) if after else None
    found = sync.delivery.messages(target, status, cursor, limit)
    last = found[-1] if len(found) == limit else None
    summary = None if cursor else sync.delivery.summary(target)
    now = datetime.now(UTC)
    body = {
        "messages": [m.describe() for m in found],
        "next": _encode([last.target, last.seq, last.id]) if last else None,
        "targets": None if summary is None else {n: s.describe(now) for n, s in summary.items()},
    }
    return OrjsonResponse(body)


@router.get(
    "/messages/{message_id}",
    summary="One message with every attempt to send it",
    responses=refusals(ErrorCode.NOT_FOUND),
)
def sync_message(
    _: ReadKey, sync: SyncDep, message_id: Annotated[str, Path(max_length=64)]
) -> OrjsonResponse:
    message = sync.delivery.message(message_id)
    if message is None:
        raise ApiError(ErrorCode.NOT_FOUND, f"no message {message_id!r}")
    return OrjsonResponse({**message.describe(), "attempts": sync.delivery.attempts(message_id)})


@router.post(
    "/messages/{message_id}/retry",
    summary="Send a failed message again",
    status_code=202,
    responses=refusals(*_SYNC_REFUSALS, ErrorCode.NOT_FOUND, ErrorCode.NOT_FAILED),
)
def sync_retry(
    _: AdminKey, sync: SyncDep, message_id: Annotated[str, Path(max_length=64)]
) -> OrjsonResponse:
    before = sync.delivery.message(message_id)
    if before is None:
        raise ApiError(ErrorCode.NOT_FOUND, f"no message {message_id!r}")
    if before.status != "failed":
        raise ApiError(
            ErrorCode.NOT_FAILED, f"the message is {before.status}: only a failed one is retried"
        )
    after = sync.delivery.retry(message_id, datetime.now(UTC))
    assert after is not None
    return OrjsonResponse(after.describe(), status_code=202)


@router.post(
    "/messages/{message_id}/resend",
    summary="Send a message again, whatever its status, creating nothing twice",
    description="A sent or failed message goes back to pending, due now (a pending one, held"
    " for a run or waiting out a backoff, is due now; one being sent is left to its sender)."
    " The target's adapter looks for what it made before making anything, so a resend"
    " creates nothing twice at the target.",
    status_code=202,
    responses=refusals(*_SYNC_REFUSALS, ErrorCode.NOT_FOUND),
)
def sync_resend(
    _: AdminKey, sync: SyncDep, message_id: Annotated[str, Path(max_length=64)]
) -> OrjsonResponse:
    after = sync.delivery.resend(message_id, datetime.now(UTC))
    if after is None:
        raise ApiError(ErrorCode.NOT_FOUND, f"no message {message_id!r}")
    return OrjsonResponse(after.describe(), status_code=202)


@router.post(
    "/customers/{customer_id}/resend",
    summary="Send every message of a customer again, creating nothing twice",
    description="Its contact, invoices, credit notes, payments and refunds, at every target or"
    " at `target`, in their order, each as `POST /v1/sync/messages/{message_id}/resend` does.",
    response_model=CustomerResent,
    status_code=202,
    responses=refusals(*_SYNC_REFUSALS, ErrorCode.NOT_FOUND),
)
def sync_resend_customer(
    _: AdminKey,
    sync: SyncDep,
    customer_id: Annotated[str, Path(min_length=1, max_length=200)],
    target: Annotated[str | None, Query(max_length=64)] = None,
) -> OrjsonResponse:
    if target is not None:
        _known_target(sync, target)
    resent = sync.delivery.resend_lane(customer_id, datetime.now(UTC), target)
    if not resent:
        where = "" if target is None else f" at {target}"
        raise ApiError(ErrorCode.NOT_FOUND, f"no message of customer {customer_id!r}{where}")
    return OrjsonResponse({"customer_id": customer_id, "resent": resent}, status_code=202)


@router.post(
    "/run",
    summary="Sync now: send everything pending, whatever the targets' modes",
    description="Enqueues what the log holds that the delivery log does not yet, and makes"
    " every message held for a run (a manual or scheduled target's) due now, at `target` or at"
    " every target; the service's dispatcher sends them. Answers at once (202) with what was"
    " released and what is now pending per target: follow the sending with"
    " `GET /v1/sync/status`. A message waiting out a backoff keeps its time. Two-way targets"
    " are asked for the payments registered there too, after the answer; those taken in are"
    " sent with the run.",
    response_model=SyncRun,
    status_code=202,
    responses=refusals(*_SYNC_REFUSALS, ErrorCode.NOT_FOUND),
)
def sync_run(
    _: AdminKey,
    sync: SyncDep,
    target: Annotated[str | None, Query(max_length=64, description="one target only")] = None,
) -> OrjsonResponse:
    if target is not None:
        _known_target(sync, target)
    started = datetime.now(UTC)
    released = sync.release(target)
    sync.poll_soon(target)  # two-way targets' payments: taken in behind the answer
    counts = sync.delivery.counts()
    body = {
        "started_at": started,
        "targets": {
            name: {
                "mode": sync.schedule(name).mode,
                "released": count,
                "pending": counts.get(name, {}).get("pending", 0),
            }
            for name, count in released.items()
        },
    }
    return OrjsonResponse(body, status_code=202)


@router.get(
    "/status",
    summary="Each target green or red, with its last success and last error",
    description="Red while a message is failed (it holds its customer's later messages) or"
    " when the latest attempt ended in an error; green otherwise. With each target's mode and"
    " its messages by status.",
    response_model=SyncStatus,
)
def sync_status(_: ReadKey, sync: SyncDep) -> OrjsonResponse:
    health = sync.delivery.health()
    targets = {
        name: {
            **health.get(name, Health(name, {}, None, None)).describe(),
            **sync.schedule(name).describe(),
        }
        for name in sorted(sync.targets)
    }
    return OrjsonResponse({"targets": targets})


@router.get(
    "/customers/{customer_id}",
    summary="A customer's lane at each target, green or red, with its messages",
    response_model=CustomerSync,
    responses=refusals(ErrorCode.NOT_FOUND),
)
def sync_customer(
    _: ReadKey, sync: SyncDep, customer_id: Annotated[str, Path(min_length=1, max_length=200)]
) -> OrjsonResponse:
    messages = sync.delivery.of_lane(customer_id)
    if not messages:
        raise ApiError(ErrorCode.NOT_FOUND, f"no message of customer {customer_id!r}")
    health = sync.delivery.health(customer_id)
    body = {
        "customer_id": customer_id,
        "targets": {name: found.describe() for name, found in health.items()},
        "messages": [message.describe() for message in messages],
    }
    return OrjsonResponse(body)


class Replay(BaseModel):
    """A target and what of it to send again: `all` of it, or a range of log positions or of
    document dates (both ends included; contacts have no date, and recognition vouchers no
    position of their own, so only `all` takes in both)."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(max_length=64)
    all: StrictBool = False
    from_position: StrictInt | None = Field(default=None, ge=0, le=MAX_POSITION)
    to_position: StrictInt | None = Field(default=None, ge=0, le=MAX_POSITION)
    from_date: date | None = Field(default=None, description="YYYY-MM-DD")
    to_date: date | None = Field(default=None, description="YYYY-MM-DD")

    @field_validator("from_date", "to_date", mode="before")
    @classmethod
    def a_day_as_text(cls, value: Any) -> Any:
        """A day is `YYYY-MM-DD` only (not a number of seconds)."""
        if value is not None and not isinstance(value, str):
            raise ValueError("a day is a string YYYY-MM-DD")
        return value

    @model_validator(mode="after")
    def one_kind_of_range(self) -> Replay:
        positions = self.from_position is not None or self.to_position is not None
        dates = self.from_date is not None or self.to_date is not None
        if [self.all, positions, dates].count(True) != 1:
            raise ValueError("give all: true, a range of positions or a range of dates (one)")
        return self


@router.post(
    "/replay",
    summary="Send messages again, creating nothing twice",
    response_model=Replayed,
    status_code=202,
    responses=refusals(*BODY_REFUSALS, ErrorCode.NOT_FOUND),
)
def sync_replay(_: AdminKey, sync: SyncDep, replay: Replay) -> OrjsonResponse:
    _known_target(sync, replay.target)
    now = datetime.now(UTC)
    if replay.all:
        count = sync.delivery.replay(replay.target, now, dates=("", "9999-12-31"))
    elif replay.from_date is not None or replay.to_date is not None:
        low = replay.from_date.isoformat() if replay.from_date else ""
        high = replay.to_date.isoformat() if replay.to_date else "9999-12-31"
        count = sync.delivery.replay(replay.target, now, dates=(low, high))
    else:
        span = (replay.from_position or 0, replay.to_position or 2**62)
        count = sync.delivery.replay(replay.target, now, positions=span)
    return OrjsonResponse({"target": replay.target, "replayed": count}, status_code=202)


@router.get(
    "/reconciliation",
    summary="Our invoices, credit notes, payments and open balances beside the target's",
    responses=refusals(ErrorCode.NOT_FOUND, ErrorCode.TARGET_UNAVAILABLE),
)
def sync_reconciliation(
    _: ReadKey, sync: SyncDep, target: Annotated[str, Query(max_length=64)]
) -> OrjsonResponse:
    _known_target(sync, target)
    with sync.snapshots() as (position, rows):
        ours = invoice_balances(rows["outbox"])
        credit_notes = _credit_notes(rows["outbox"])
    try:
        held = sync.targets[target].invoices()
    except (RetryableError, RejectedError) as error:
        raise ApiError(
            ErrorCode.TARGET_UNAVAILABLE, f"{target} could not be read: {error}"
        ) from None
    theirs = {(i.kind, i.number): i for i in held}
    # Not at the target by design (transfer = "on_payment"): listed as waiting, not missing.
    unpaid = unpaid_documents(sync.delivery.db, target)
    differences: list[dict[str, Any]] = []
    for invoice in ours.values():
        found = theirs.pop(("invoice", str(invoice["number"])), None)
        _compare(
            differences if ("invoice", str(invoice["number"])) not in unpaid else [],
            "invoice",
            str(invoice["number"]),
            found,
            gross=invoice["gross"],
            paid=invoice["paid"] - invoice["refunded"],
            balance=invoice["balance"],
        )
    for number, gross in credit_notes.items():
        found = theirs.pop(("credit_note", number), None)
        _compare(
            differences if ("credit_note", number) not in unpaid else [],
            "credit_note",
            number,
            found,
            gross=gross,
        )
    for kind, number in sorted(unpaid):
        differences.append(
            {"kind": kind, "number": number, "problem": "waiting for payment in full"}
        )
    for kind, number in sorted(theirs):
        differences.append({"kind": kind, "number": number, "problem": "only at the target"})
    # Payments taken in from the target (direction "both") that it no longer holds.
    if target in sync.poller.names:
        try:
            deleted = sync.poller.check(target).deleted
        except (RetryableError, RejectedError) as error:
            raise ApiError(
                ErrorCode.TARGET_UNAVAILABLE, f"{target} could not be read: {error}"
            ) from None
        differences.extend(payment.describe() for payment in deleted)
    invoices_there = [i for i in held if i.kind == "invoice"]
    body = {
        "target": target,
        "position": position,
        "ours": {
            "invoices": len(ours),
            "credit_notes": len(credit_notes),
            "paid": sum(i["paid"] - i["refunded"] for i in ours.values()),
            "open_balance": sum(i["balance"] for i in ours.values()),
        },
        "theirs": {
            "invoices": len(invoices_there),
            "credit_notes": len(held) - len(invoices_there),
            "paid": sum(i.paid for i in invoices_there),
            "open_balance": sum(i.balance for i in invoices_there),
        },
        "differences": differences,
    }
    return OrjsonResponse(body, headers={"X-Log-Position": str(position)})


def _credit_notes(rows: Any) -> dict[str, int]:
    return {
        str(row["payload"]["number"]): row["payload"]["gross"]
        for _, row in rows.scan(MESSAGES)
        if row["kind"] == "credit_note"
    }


def _compare(
    differences: list[dict[str, Any]],
    kind: str,
    number: str,
    found: TargetInvoice | None,
    **amounts: int,
) -> None:
    """List what differs between our document and the target's: missing, or each of our
    amounts (`gross`, `paid`, `balance`) that the target's is not."""
    if found is None:
        differences.append({"kind": kind, "number": number, "problem": "missing at the target"})
        return
    for name, ours in amounts.items():
        theirs = getattr(found, name)
        if ours != theirs:
            differences.append(
                {"kind": kind, "number": number, "problem": name, "ours": ours, "theirs": theirs}
            )


def _encode(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def _decode(cursor: str) -> tuple[str, int, str]:
    try:
        target, seq, message_id = orjson.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        )
        return str(target), int(seq), str(message_id)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise ApiError(
            ErrorCode.INVALID_CURSOR, "`after` is not a cursor this service gave"
        ) from None
