"""How messages wait in the delivery log (`adapters.sync.log`): which new message enters it
`waiting` and for what, when a document waiting for payment in full is released, and how a
message set waiting takes the later messages of its document with it.

A document is the invoice a message belongs to (`log_records.document_of`). At a target with
`transfer = "on_payment"` a new invoice waits for payment in full, never due (`HELD_UNTIL`),
and every later message of its document waits with it; the document is released (`settle`)
when, by the payloads in the log, its payments less its refunds cover its gross less its
credit notes, and is never held again. A message the target cannot take yet (its invoice a
draft there) waits to be rechecked, and its document's later messages with it
(`wait_behind`)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import orjson

from subledger.adapters.sync.log_database import DeliveryDatabase
from subledger.adapters.sync.log_records import (
    HELD_UNTIL,
    WAITING_FOR_PAYMENT,
    Message,
    NewMessage,
    settled,
)
from subledger.adapters.sync.log_schema import Statements


def arrival(
    sql: Statements,
    message: NewMessage,
    now: datetime,
    held: Collection[str],
    on_payment: Collection[str],
) -> tuple[str, str | None, datetime]:
    """How a new message enters the log: its status, what it waits for, and when it is due
    (`DeliveryLog.enqueue`)."""
    due = HELD_UNTIL if message.target in held else now
    document = message.document
    if not document:
        return "pending", None, due
    if message.kind == "invoice":
        if message.target in on_payment:
            return "waiting", WAITING_FOR_PAYMENT, HELD_UNTIL
        return "pending", None, due
    ahead = sql.run(
        "SELECT waiting_for, next_attempt_at FROM sync_messages"
        " WHERE target = %(t)s AND document = %(d)s AND seq < %(seq)s AND status = 'waiting'"
        " ORDER BY seq LIMIT 1",
        t=message.target,
        d=document,
        seq=message.seq,
    )
    if ahead:
        return "waiting", ahead[0]["waiting_for"], ahead[0]["next_attempt_at"]
    return "pending", None, due


def settle(sql: Statements, target: str, document: str, due: datetime, now: datetime) -> None:
    """Release a document whose invoice waits for payment in full at `target` once it is
    settled (`log_records.settled`): every waiting message of it `pending`, due at `due`
    (`HELD_UNTIL` at a target that waits for a run). While the invoice waits, all of its
    document's later messages wait too, so its waiting messages are the whole document."""
    rows = sql.run(
        "SELECT kind, payload, waiting_for FROM sync_messages"
        " WHERE target = %(t)s AND document = %(d)s AND status = 'waiting' ORDER BY seq",
        t=target,
        d=document,
    )
    if not rows or rows[0]["kind"] != "invoice" or rows[0]["waiting_for"] != WAITING_FOR_PAYMENT:
        return
    if not settled([(row["kind"], orjson.loads(row["payload"])) for row in rows]):
        return
    sql.run(
        "UPDATE sync_messages SET status = 'pending', waiting_for = NULL,"
        " next_attempt_at = %(due)s, updated_at = %(now)s, pending_since = %(now)s"
        " WHERE target = %(t)s AND document = %(d)s AND status = 'waiting'",
        t=target,
        d=document,
        due=due,
        now=now,
    )


def release_unpaid(sql: Statements, target: str, due: datetime, now: datetime) -> None:
    """Every message of `target` waiting for payment in full `pending`, due at `due`: the
    target takes invoices on issue (again)."""
    sql.run(
        "UPDATE sync_messages SET status = 'pending', waiting_for = NULL,"
        " next_attempt_at = %(due)s, updated_at = %(now)s, pending_since = %(now)s"
        " WHERE target = %(t)s AND status = 'waiting' AND waiting_for = %(reason)s",
        t=target,
        due=due,
        now=now,
        reason=WAITING_FOR_PAYMENT,
    )


def wait_behind(
    sql: Statements, message: Message, reason: str | None, recheck: datetime, now: datetime
) -> None:
    """The pending messages of `message`'s document after it `waiting` with it (same reason,
    same recheck): they could not go before it anyway, and so count neither as work left
    nor as held behind a failure."""
    if not message.document:
        return
    sql.run(
        "UPDATE sync_messages SET status = 'waiting', waiting_for = %(reason)s,"
        " next_attempt_at = %(next)s, updated_at = %(now)s"
        " WHERE target = %(target)s AND document = %(document)s"
        " AND seq > %(seq)s AND status = 'pending'",
        reason=reason,
        next=recheck,
        now=now,
        target=message.target,
        document=message.document,
        seq=message.seq,
    )


def recheck_now(sql: Statements, condition: str, now: datetime, **parameters: Any) -> None:
    """The waiting messages `condition` keeps that wait for a recheck (their invoice a draft
    at the target) due `now`; those waiting for payment in full wait on."""
    sql.run(  # `condition` is the log's own text, never input
        "UPDATE sync_messages SET next_attempt_at = %(now)s, updated_at = %(now)s"  # noqa: S608
        f" WHERE {condition} AND status = 'waiting' AND next_attempt_at < %(held)s",
        now=now,
        held=HELD_UNTIL,
        **parameters,
    )


def unpaid_documents(database: DeliveryDatabase, target: str) -> set[tuple[str, str]]:
    """The invoices and credit notes (kind, our number) that `target` does not hold yet
    because they wait for their invoice to be paid in full, for the reconciliation."""
    with database.transaction() as sql:
        rows = sql.run(
            "SELECT kind, payload FROM sync_messages WHERE target = %(t)s"
            " AND status = 'waiting' AND waiting_for = %(reason)s"
            " AND kind IN ('invoice', 'credit_note')",
            t=target,
            reason=WAITING_FOR_PAYMENT,
        )
    return {(row["kind"], str(orjson.loads(row["payload"]).get("number"))) for row in rows}
