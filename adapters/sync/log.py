"""The delivery log: what each accounting target has been sent, and every attempt
(docs/specification.md §7).

Unlike the projections it is never rebuilt: it records what the outside world has seen. Each
outbox message meets each configured target here as a row of `sync_messages` (under its fixed
id, `projections.outbox.message_id`), inserted once whatever replays or rebuilds happen
(`INSERT ... ON CONFLICT DO NOTHING`). A row moves `pending → sending → sent`, or to `failed`
on an error that retrying cannot fix; `sync_attempts` keeps every attempt. A message counts
the unexpected errors (bugs of ours, not a target's answer) it met in a row, so that the
dispatcher can fail one that keeps meeting them, and remembers since when it has been waiting
to be sent (`pending_since`: enqueued, retried or replayed), for `DeliveryLog.summary`.

A message may also be `waiting` (`adapters.sync.log_waiting`): for its invoice to be paid in
full (`transfer = "on_payment"`), or to be booked at the target (a draft there, rechecked when
due). It holds the later messages of its own document (the invoice it belongs to), which wait
with it, and nothing else of its lane.

Claiming is safe with any number of workers in any number of processes: a claim is one
`UPDATE ... RETURNING` of the oldest due message that heads its lane (no earlier message of
the same target and customer is unsent, unless it is waiting) and its document (no earlier
message of the same invoice is waiting), with `FOR UPDATE SKIP LOCKED` on PostgreSQL and
SQLite's single writer elsewhere. A claim is a lease: a worker killed while sending leaves the
message `sending` until the lease ends, and then another worker takes it over (the adapters
look for what they create before creating it, so taking over never duplicates).

The same SQL runs on PostgreSQL and SQLite; instants are bound as timezone-aware datetimes on
PostgreSQL (`timestamptz`) and as fixed-width UTC text on SQLite, so that both compare them.
What the log holds is in `adapters.sync.log_records`, its tables in the schema migrations
(`adapters.migrations`), the two databases' transactions in `adapters.sync.log_database`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

import orjson

from subledger.adapters.sync.log_database import DeliveryDatabase, _Statements

# What the log holds, also importable from here.
from subledger.adapters.sync.log_records import HELD_UNTIL as HELD_UNTIL
from subledger.adapters.sync.log_records import STATUSES as STATUSES
from subledger.adapters.sync.log_records import WAITING_FOR_PAYMENT as WAITING_FOR_PAYMENT
from subledger.adapters.sync.log_records import Attempt as Attempt
from subledger.adapters.sync.log_records import Health as Health
from subledger.adapters.sync.log_records import LastError as LastError
from subledger.adapters.sync.log_records import Message as Message
from subledger.adapters.sync.log_records import NewMessage as NewMessage
from subledger.adapters.sync.log_records import TargetSummary as TargetSummary
from subledger.adapters.sync.log_waiting import (
    arrival,
    recheck_now,
    release_unpaid,
    settle,
    wait_behind,
)

#: Seconds of lateness between taking a request slot and the request reaching the target that
#: the budget absorbs (see `DeliveryLog.take_request`).
BUDGET_TOLERANCE_SECONDS: Final = 1.0


def _message(row: dict[str, Any]) -> Message:
    return Message(
        id=row["id"],
        target=row["target"],
        lane=row["lane"],
        seq=row["seq"],
        kind=row["kind"],
        source=row["source"],
        dated=row["dated"],
        payload=orjson.loads(row["payload"]),
        status=row["status"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        target_ids=orjson.loads(row["target_ids"]) if row["target_ids"] else {},
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        sent_at=row["sent_at"],
        unexpected_errors=row.get("unexpected_errors") or 0,
        pending_since=row.get("pending_since") or row["created_at"],
        waiting_for=row.get("waiting_for"),
    )


class DeliveryLog:
    def __init__(self, database: DeliveryDatabase) -> None:
        self.db = database

    def create_tables(self) -> None:
        """Make sure the database has the delivery log's tables as this release lays them out:
        the schema migrations it lacks applied (`adapters.migrations`; an earlier release's
        database is upgraded, its messages kept)."""
        self.db.migrate()

    # Enqueueing.

    def cursor(self, target: str, outbox: str = "") -> int:
        """The log position up to which `target` has been paired with the outbox, when the
        outbox derived its messages as `outbox` (its fingerprint) does now; 0 when it derived
        them otherwise, so that an upgrade's new or changed messages are paired too (those
        already known are skipped by id)."""
        with self.db.transaction() as sql:
            found = sql.run(
                "SELECT position FROM sync_cursors WHERE target = %(t)s AND outbox = %(o)s",
                t=target,
                o=outbox,
            )
        return found[0]["position"] if found else 0

    def enqueue(
        self,
        messages: Sequence[NewMessage],
        now: datetime,
        cursors: dict[str, int] | None = None,
        outbox: str = "",
        held: Collection[str] = (),
        on_payment: Collection[str] = (),
    ) -> int:
        """Insert the messages not yet known (by id) as `pending`, and move the targets'
        cursors forward (for the outbox fingerprinted `outbox`); the number inserted. The
        messages of the targets `held` names (manual or scheduled ones) are held until a run
        releases them (`release`); the others are due at once.

        Some enter `waiting` (`log_waiting.arrival`): at a target `on_payment` names
        (`transfer = "on_payment"`) a new invoice, and at any target a message of a document
        that waits. Then each document waiting for payment that this call added to is settled
        (`log_waiting.settle`); at a target among `cursors` not `on_payment` (any more), what
        waited for payment is released."""
        inserted = 0
        touched: set[tuple[str, str]] = set()
        with self.db.transaction() as sql:
            for message in messages:
                status, waiting_for, due = arrival(sql, message, now, held, on_payment)
                found = sql.run(
                    "INSERT INTO sync_messages (id, target, lane, seq, kind, source, dated,"
                    " payload, status, next_attempt_at, created_at, updated_at,"
                    " pending_since, document, waiting_for)"
                    " VALUES (%(id)s, %(target)s, %(lane)s, %(seq)s, %(kind)s, %(source)s,"
                    " %(dated)s, %(payload)s, %(status)s, %(due)s, %(now)s, %(now)s,"
                    " %(now)s, %(document)s, %(waiting_for)s)"
                    " ON CONFLICT (id) DO NOTHING RETURNING id",
                    id=message.id,
                    target=message.target,
                    lane=message.lane,
                    seq=message.seq,
                    kind=message.kind,
                    source=message.source,
                    dated=message.dated,
                    payload=orjson.dumps(message.payload).decode(),
                    now=now,
                    due=due,
                    status=status,
                    document=message.document,
                    waiting_for=waiting_for,
                )
                inserted += len(found)
                if found and waiting_for == WAITING_FOR_PAYMENT:
                    touched.add((message.target, message.document))
            for target, document in sorted(touched):
                settle(sql, target, document, HELD_UNTIL if target in held else now, now)
            for target in cursors or {}:
                if target not in on_payment:
                    release_unpaid(sql, target, HELD_UNTIL if target in held else now, now)
            for target, position in (cursors or {}).items():
                sql.run(
                    "INSERT INTO sync_cursors (target, position, outbox)"
                    " VALUES (%(t)s, %(p)s, %(o)s)"
                    " ON CONFLICT (target) DO UPDATE SET position = %(p)s, outbox = %(o)s"
                    " WHERE sync_cursors.position < %(p)s OR sync_cursors.outbox <> %(o)s",
                    t=target,
                    p=position,
                    o=outbox,
                )
        return inserted

    def vouchers(self, target: str, month: str) -> list[Message]:
        """The recognition vouchers of `month` already enqueued for `target`."""
        with self.db.transaction() as sql:
            rows = sql.run(
                "SELECT * FROM sync_messages WHERE target = %(t)s AND kind = 'recognition'"
                " AND dated = %(d)s ORDER BY seq",
                t=target,
                d=month,
            )
        return [_message(row) for row in rows]

    # Delivering.

    def claim(self, target: str, now: datetime, lease: timedelta) -> Message | None:
        """The oldest due message heading its lane and its document at `target`, now
        `sending` under a lease: no earlier message of its lane is unsent but for waiting
        ones, and no earlier message of its document (`log_records.document_of`) is waiting.
        A waiting invoice so holds its own credit notes and payments, never the customer's
        other invoices. A `waiting` message is claimed when its recheck is due (an invoice
        waiting for payment never is: `HELD_UNTIL`).

        `status IN ('pending', 'sending', 'waiting')` repeats the predicate of the
        `sync_messages_claimable` index, so that SQLite walks that index in `seq` order and
        stops at the first message that qualifies (without it, it sorted every pending message
        on every claim); `e.status <> 'sent'` and `w.status = 'waiting'` repeat those of
        `sync_messages_unsent` and `sync_messages_waiting`, which the two lookups use."""
        with self.db.transaction() as sql:
            rows = sql.run(
                "UPDATE sync_messages SET status = 'sending', claimed_until = %(until)s,"
                " attempts = attempts + 1, updated_at = %(now)s"
                " WHERE id = (SELECT c.id FROM sync_messages c"
                "  WHERE c.target = %(target)s"
                "  AND c.status IN ('pending', 'sending', 'waiting')"
                "  AND c.next_attempt_at <= %(now)s"
                "  AND (c.status IN ('pending', 'waiting')"
                "       OR (c.status = 'sending' AND c.claimed_until < %(now)s))"
                "  AND NOT EXISTS (SELECT 1 FROM sync_messages e WHERE e.target = c.target"
                "   AND e.lane = c.lane AND e.seq < c.seq AND e.status <> 'sent'"
                "   AND e.status <> 'waiting')"
                "  AND NOT EXISTS (SELECT 1 FROM sync_messages w WHERE w.target = c.target"
                "   AND w.document = c.document AND w.seq < c.seq AND w.status = 'waiting'"
                "   AND c.document <> '')"
                "  ORDER BY c.seq LIMIT 1 FOR UPDATE SKIP LOCKED)"
                " RETURNING *",
                target=target,
                now=now,
                until=now + lease,
            )
        return _message(rows[0]) if rows else None

    def finish(
        self,
        message: Message,
        attempt: Attempt,
        status: str,
        next_attempt_at: datetime | None = None,
        unexpected_errors: int = 0,
        waiting_for: str | None = None,
    ) -> None:
        """Record an attempt and the message's new status (`sent`, `pending` to retry at
        `next_attempt_at`, `failed`, or `waiting` for what `waiting_for` says, rechecked at
        `next_attempt_at`), with the unexpected errors it has now met in a row (0 after any
        other outcome). The pending later messages of a message set waiting wait with it
        (same reason, same recheck), so that nothing of its document counts as work left."""
        ids = {**message.target_ids, **attempt.target_ids}
        with self.db.transaction() as sql:
            sql.run(
                "INSERT INTO sync_attempts (message_id, number, started_at, duration_ms,"
                " requests, http_status, target_ids, error, outcome) VALUES (%(id)s,"
                " (SELECT COALESCE(MAX(number), 0) + 1 FROM sync_attempts"
                "  WHERE message_id = %(id)s),"
                " %(started)s, %(ms)s, %(requests)s, %(http)s, %(ids)s, %(error)s, %(outcome)s)",
                id=message.id,
                started=attempt.started_at,
                ms=attempt.duration_ms,
                requests="\n".join(attempt.requests),
                http=attempt.http_status,
                ids=orjson.dumps(attempt.target_ids).decode(),
                error=attempt.error,
                outcome=attempt.outcome,
            )
            now = attempt.started_at + timedelta(milliseconds=attempt.duration_ms)
            sql.run(
                "UPDATE sync_messages SET status = %(status)s, claimed_until = NULL,"
                " next_attempt_at = %(next)s, target_ids = %(ids)s, last_error = %(error)s,"
                " updated_at = %(now)s, unexpected_errors = %(unexpected)s,"
                " waiting_for = %(waiting_for)s,"
                " sent_at = CASE WHEN %(status)s = 'sent' THEN %(now)s ELSE sent_at END"
                " WHERE id = %(id)s",
                id=message.id,
                status=status,
                next=next_attempt_at or now,
                ids=orjson.dumps(ids).decode(),
                error=attempt.error if status != "sent" else None,
                now=now,
                unexpected=unexpected_errors,
                waiting_for=waiting_for if status == "waiting" else None,
            )
            if status == "waiting":
                wait_behind(sql, message, waiting_for, next_attempt_at or now, now)

    def retry(self, message_id: str, now: datetime) -> Message | None:
        """A `failed` message back to `pending`, due now, its count of unexpected errors
        afresh; None if there is no such message."""
        with self.db.transaction() as sql:
            sql.run(
                "UPDATE sync_messages SET status = 'pending', next_attempt_at = %(now)s,"
                " updated_at = %(now)s, pending_since = %(now)s, unexpected_errors = 0"
                " WHERE id = %(id)s AND status = 'failed'",
                id=message_id,
                now=now,
            )
        return self.message(message_id)

    def replay(
        self,
        target: str,
        now: datetime,
        positions: tuple[int, int] | None = None,
        dates: tuple[str, str] | None = None,
    ) -> int:
        """Messages of `target` in a range of source positions or of dates, sent or failed,
        back to `pending` (their counts of unexpected errors afresh): the adapters find what
        the target has and create nothing twice."""
        bounds: tuple[object, object]
        if dates is not None:
            condition, bounds = "dated BETWEEN %(low)s AND %(high)s", dates
        elif positions is not None:
            condition = "seq BETWEEN %(low)s AND %(high)s AND kind <> 'recognition'"
            bounds = positions
        else:
            raise ValueError("a range of positions or of dates")
        with self.db.transaction() as sql:
            rows = sql.run(
                "UPDATE sync_messages SET status = 'pending', next_attempt_at = %(now)s,"
                " updated_at = %(now)s, pending_since = %(now)s, unexpected_errors = 0"
                f" WHERE target = %(target)s AND {condition}"
                " AND status IN ('sent', 'failed') RETURNING id",
                target=target,
                now=now,
                low=bounds[0],
                high=bounds[1],
            )
        return len(rows)

    def release(self, target: str, now: datetime) -> int:
        """A run of `target`: every message held for one (`HELD_UNTIL`) due `now`; the number
        released. Messages waiting out a backoff keep their time (a target's `Retry-After`
        is kept to)."""
        with self.db.transaction() as sql:
            rows = sql.run(
                "UPDATE sync_messages SET next_attempt_at = %(now)s, updated_at = %(now)s"
                " WHERE target = %(target)s AND status = 'pending'"
                " AND next_attempt_at >= %(held)s RETURNING id",
                target=target,
                now=now,
                held=HELD_UNTIL,
            )
        return len(rows)

    def resend(self, message_id: str, now: datetime) -> Message | None:
        """A message sent again whatever its status: a sent or failed one back to `pending`,
        a pending one (held, or waiting out a backoff) due now, each with its count of
        unexpected errors afresh; one being sent is left to its sender. None if there is no
        such message. The adapter looks for what it made before making it, so nothing is
        created twice at the target. A `waiting` message keeps waiting: one waiting for its
        invoice to be booked at the target is rechecked now, one waiting for payment in full
        waits on (only its invoice's settlement releases it)."""
        with self.db.transaction() as sql:
            sql.run(
                "UPDATE sync_messages SET status = 'pending', next_attempt_at = %(now)s,"
                " updated_at = %(now)s, unexpected_errors = 0, pending_since = CASE"
                " WHEN status = 'pending' THEN pending_since ELSE %(now)s END"
                " WHERE id = %(id)s AND status IN ('pending', 'sent', 'failed')",
                id=message_id,
                now=now,
            )
            recheck_now(sql, "id = %(id)s", now, id=message_id)
        return self.message(message_id)

    def resend_lane(self, lane: str, now: datetime, target: str | None = None) -> dict[str, int]:
        """Every message of a customer (`lane`), at every target or at `target`, sent again as
        `resend` does; per target, the number that will be sent (those being sent included,
        and those waiting, which are sent once what they wait for has come)."""
        only = "" if target is None else " AND target = %(target)s"
        with self.db.transaction() as sql:
            sql.run(
                "UPDATE sync_messages SET status = 'pending', next_attempt_at = %(now)s,"
                " updated_at = %(now)s, unexpected_errors = 0, pending_since = CASE"
                " WHEN status = 'pending' THEN pending_since ELSE %(now)s END"
                f" WHERE lane = %(lane)s AND status IN ('pending', 'sent', 'failed'){only}",
                lane=lane,
                now=now,
                target=target,
            )
            recheck_now(sql, f"lane = %(lane)s{only}", now, lane=lane, target=target)
            rows = sql.run(
                "SELECT target, COUNT(*) AS n FROM sync_messages"
                f" WHERE lane = %(lane)s{only} GROUP BY target",
                lane=lane,
                target=target,
            )
        return {row["target"]: row["n"] for row in sorted(rows, key=lambda r: r["target"])}

    def drop_personal_fields(self, personal: Sequence[str]) -> int:
        """Remove the customers' `personal` fields from the payloads of messages enqueued
        before the outbox stopped carrying them; the number of messages changed."""
        changed = 0
        with self.db.transaction() as sql:
            if not self.db.postgres:
                sql.run("PRAGMA secure_delete = ON")
            rows = sql.run("SELECT id, payload FROM sync_messages WHERE kind <> 'recognition'")
            for row in rows:
                payload = orjson.loads(row["payload"])
                customer = payload.get("customer") if isinstance(payload, dict) else None
                holder = customer if isinstance(customer, dict) else payload
                if not any(name in holder for name in personal):
                    continue
                for name in personal:
                    holder.pop(name, None)
                sql.run(
                    "UPDATE sync_messages SET payload = %(p)s WHERE id = %(id)s",
                    p=orjson.dumps(payload).decode(),
                    id=row["id"],
                )
                changed += 1
        return changed

    # Reading.

    def message(self, message_id: str) -> Message | None:
        with self.db.transaction() as sql:
            rows = sql.run("SELECT * FROM sync_messages WHERE id = %(id)s", id=message_id)
        return _message(rows[0]) if rows else None

    def attempts(self, message_id: str) -> list[dict[str, Any]]:
        with self.db.transaction() as sql:
            rows = sql.run(
                "SELECT * FROM sync_attempts WHERE message_id = %(id)s ORDER BY number",
                id=message_id,
            )
        for row in rows:
            row["requests"] = row["requests"].splitlines()
            row["target_ids"] = orjson.loads(row["target_ids"]) if row["target_ids"] else {}
        return rows

    def messages(
        self,
        target: str | None = None,
        status: str | None = None,
        after: tuple[str, int, str] | None = None,
        limit: int = 100,
    ) -> list[Message]:
        """Messages in (target, seq, id) order, optionally of one target and status, after a
        cursor."""
        conditions: list[str] = []
        parameters: dict[str, Any] = {}
        if target is not None:
            conditions.append("target = %(target)s")
            parameters["target"] = target
        if status is not None:
            conditions.append("status = %(status)s")
            parameters["status"] = status
        if after is not None:
            conditions.append(
                "(target > %(a_target)s OR (target = %(a_target)s AND (seq > %(a_seq)s"
                " OR (seq = %(a_seq)s AND id > %(a_id)s))))"
            )
            parameters.update(a_target=after[0], a_seq=after[1], a_id=after[2])
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        with self.db.transaction() as sql:
            rows = sql.run(
                f"SELECT * FROM sync_messages {where} ORDER BY target, seq, id LIMIT %(limit)s",
                limit=limit,
                **parameters,
            )
        return [_message(row) for row in rows]

    def of_lane(self, lane: str, limit: int = 1000) -> list[Message]:
        """A customer's messages (its lane) at every target, in (target, seq) order."""
        with self.db.transaction() as sql:
            rows = sql.run(
                "SELECT * FROM sync_messages WHERE lane = %(lane)s"
                " ORDER BY target, seq, id LIMIT %(limit)s",
                lane=lane,
                limit=limit,
            )
        return [_message(row) for row in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        """Per target, the number of messages in each status."""
        with self.db.transaction() as sql:
            return _status_counts(sql, "")

    def summary(self, target: str | None = None) -> dict[str, TargetSummary]:
        """Per target (or of `target` alone), where delivery stands: `TargetSummary`."""
        where = "" if target is None else " WHERE m.target = %(target)s"
        only = "" if target is None else " AND m.target = %(target)s"
        with self.db.transaction() as sql:
            counts = _status_counts(sql, where, target=target)
            oldest = sql.run(
                "SELECT m.target,"
                " MIN(COALESCE(m.pending_since, m.created_at)) AS oldest_pending_at"
                " FROM sync_messages m WHERE m.status IN ('pending', 'sending')"
                f"{only} GROUP BY m.target",
                target=target,
            )
            lanes = sql.run(
                "SELECT m.target, COUNT(DISTINCT m.lane) AS n FROM sync_messages m"
                f" WHERE m.status = 'failed'{only} GROUP BY m.target",
                target=target,
            )
            behind = sql.run(
                "SELECT m.target, COUNT(*) AS n FROM sync_messages m"
                " WHERE m.status IN ('pending', 'sending')"
                "  AND EXISTS (SELECT 1 FROM sync_messages f WHERE f.target = m.target"
                "   AND f.lane = m.lane AND f.seq < m.seq AND f.status = 'failed')"
                f"{only} GROUP BY m.target",
                target=target,
            )
        since = {row["target"]: row["oldest_pending_at"] for row in oldest}
        held_lanes = {row["target"]: row["n"] for row in lanes}
        held_messages = {row["target"]: row["n"] for row in behind}
        return {
            name: TargetSummary(
                target=name,
                counts=by_status,
                oldest_pending_at=since.get(name),
                held_lanes=held_lanes.get(name, 0),
                held_messages=held_messages.get(name, 0),
            )
            for name, by_status in sorted(counts.items())
        }

    def health(self, lane: str | None = None) -> dict[str, Health]:
        """Per target, green or red (`Health`): its messages by status, the last attempt
        that sent one and the last that ended in an error; of one customer's messages
        (`lane`) when given."""
        only = "" if lane is None else " AND m.lane = %(lane)s"
        where = "" if lane is None else " WHERE m.lane = %(lane)s"
        with self.db.transaction() as sql:
            counts = _status_counts(sql, where, lane=lane)
            sent = sql.run(
                "SELECT m.target, MAX(m.sent_at) AS sent_at FROM sync_messages m"
                f" WHERE m.sent_at IS NOT NULL{only} GROUP BY m.target",
                lane=lane,
            )
            errors = {}
            for name in counts:
                found = sql.run(
                    "SELECT a.started_at, a.duration_ms, a.error, a.message_id"
                    " FROM sync_attempts a JOIN sync_messages m ON m.id = a.message_id"
                    f" WHERE m.target = %(target)s AND a.error IS NOT NULL{only}"
                    " ORDER BY a.started_at DESC, a.number DESC LIMIT 1",
                    target=name,
                    lane=lane,
                )
                errors[name] = found[0] if found else None
        last_sent = {row["target"]: row["sent_at"] for row in sent}
        return {
            name: Health(
                target=name,
                counts=by_status,
                last_success_at=last_sent.get(name),
                last_error=_last_error(errors.get(name)),
            )
            for name, by_status in sorted(counts.items())
        }

    # The request budget.

    def take_requests(self, target: str, per_minute: int, now: datetime, count: int = 1) -> float:
        """Reserve the next `count` request slots of `target`, shared by every worker of every
        process: the seconds from `now` to the first (0: go now); the others follow it
        `request_spacing(per_minute)` apart.

        One row per target keeps the next free slot (as seconds since the epoch), taken in one
        statement whatever the traffic, without waiting for the disk: a slot lost in a crash
        costs nothing."""
        spacing = request_spacing(per_minute)
        at = now.timestamp()
        with self.db.transaction(durable=False) as sql:
            (row,) = sql.run(
                "INSERT INTO sync_budgets (target, next_at) VALUES (%(t)s, %(at)s + %(span)s)"
                " ON CONFLICT (target) DO UPDATE SET next_at = CASE"
                " WHEN sync_budgets.next_at > %(at)s THEN sync_budgets.next_at ELSE %(at)s END"
                " + %(span)s RETURNING next_at",
                t=target,
                at=at,
                span=spacing * count,
            )
        return max(0.0, float(row["next_at"]) - spacing * count - at)


def _status_counts(sql: _Statements, where: str, **parameters: Any) -> dict[str, dict[str, int]]:
    """Per target, the number of messages (`m`, those `where` keeps) in each status."""
    rows = sql.run(
        "SELECT m.target, m.status, COUNT(*) AS n FROM sync_messages m"
        f"{where} GROUP BY m.target, m.status",
        **parameters,
    )
    counts: dict[str, dict[str, int]] = {}
    for row in rows:
        counts.setdefault(row["target"], dict.fromkeys(STATUSES, 0))[row["status"]] = row["n"]
    return counts


def _last_error(row: dict[str, Any] | None) -> LastError | None:
    """An attempt's error as of its end (its start and its duration)."""
    if row is None:
        return None
    at = row["started_at"] + timedelta(milliseconds=row["duration_ms"])
    return LastError(at=at, message=row["error"], message_id=row["message_id"])


def request_spacing(per_minute: int) -> float:
    """Seconds between request slots: `(60 s + BUDGET_TOLERANCE_SECONDS) / per_minute`, so
    that no 60 seconds hold more than `per_minute` requests even when one of them reaches the
    target up to `BUDGET_TOLERANCE_SECONDS` late."""
    return (60 + BUDGET_TOLERANCE_SECONDS) / per_minute
