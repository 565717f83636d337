"""Failures of delivery, bounded and loud, on SQLite and PostgreSQL: a message that keeps meeting
unexpected errors fails and notifies after N in a row (a retry starts the count afresh); a
target's `Retry-After`, however large or strange, defers a message an hour at most; and where
delivery stands (the oldest unsent message, the lanes held behind failures) is shown by the
delivery log, `subledger sync status` and `GET /v1/sync/messages`."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from subledger.adapters.backends import backend_of
from subledger.adapters.sandbox import serving
from subledger.adapters.store import store_env
from subledger.adapters.sync.dispatcher import Dispatcher, DispatchSettings
from subledger.adapters.sync.log import Attempt, DeliveryLog, Message, NewMessage
from subledger.adapters.sync.port import RetryableError, TargetInvoice, Trace
from subledger.api.cli.main import main
from subledger.api.http.app import create_app
from subledger.api.settings import Settings
from subledger.api.sync import delivery_log_for
from subledger.domain.ledger import Ledger
from tests.builders import append, customer, invoice, payment
from tests.conftest import ADMIN, API_KEYS, READ, WRITE
from tests.integration.test_sync_api import EVENTS, TOKEN, billy, delivered, messages

__all__ = ["billy"]  # the Billy sandbox fixture, shared with test_sync_api

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
HOUR = timedelta(hours=1)
#: The first customer of test_sync_api's events: one message (its contact), no invoice.
ONE_CUSTOMER = EVENTS[:1]


@pytest.fixture
def delivery(database_url: str) -> Iterator[DeliveryLog]:
    ledger = Ledger(store_env(database_url))
    yield delivery_log_for(ledger)
    ledger.close()


def new(seq: int, lane: str, target: str = "billy") -> NewMessage:
    return NewMessage(
        id=f"{target}-{seq}",
        target=target,
        lane=lane,
        seq=seq,
        kind="invoice",
        source=f"evt_{seq}",
        dated="2026-01-01",
        payload={"seq": seq},
    )


class Scripted:
    """A target (the port, faked) whose every send raises the next of its `steps`, or the
    last one again once they run out; None answers as a target that took the message."""

    def __init__(self, *steps: Exception | None, name: str = "billy") -> None:
        self.name, self.steps, self.sent = name, list(steps), 0

    def send(self, message: Message, trace: Trace) -> dict[str, Any]:
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        self.sent += 1
        if step is not None:
            raise step
        return {"id": f"theirs-{message.id}"}

    def check(self, products: set[str]) -> list[str]:
        return []

    def invoices(self) -> list[TargetInvoice]:
        return []

    def close(self) -> None:
        pass


def bug() -> KeyError:
    """What a bug of ours looks like to the dispatcher: neither retryable nor rejected."""
    return KeyError("invoiceNo")


@dataclass
class Run:
    """A dispatcher over `delivery` with one scripted target, its own clock (moved an hour on
    after each attempt, past any backoff) and the notifications it made."""

    delivery: DeliveryLog
    target: Scripted
    settings: DispatchSettings = field(default_factory=DispatchSettings)
    now: datetime = T0
    notified: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.dispatcher = Dispatcher(
            self.delivery,
            {self.target.name: self.target},
            self.settings,
            notify=lambda message, error: self.notified.append((message.id, error)),
            clock=lambda: self.now,
        )

    def attempt(self) -> bool:
        done = self.dispatcher.deliver_one(self.target.name)
        self.now += HOUR
        return done

    def message(self, message_id: str) -> Message:
        found = self.delivery.message(message_id)
        assert found is not None
        return found


# ---------------------------------------------------------------------------------------------
# Unexpected errors


def test_a_message_failing_unexpectedly_ten_times_in_a_row_fails_and_notifies(
    delivery: DeliveryLog,
) -> None:
    delivery.enqueue([new(1, "c1"), new(2, "c1")], T0)
    run = Run(delivery, Scripted(bug()))
    for count in range(1, 10):
        assert run.attempt()
        held = run.message("billy-1")
        assert (held.status, held.unexpected_errors) == ("pending", count)
        assert held.last_error == "KeyError: 'invoiceNo'"
    assert run.notified == [], "nine unexpected errors are still worth retrying"

    assert run.attempt()
    failed = run.message("billy-1")
    assert failed.status == "failed"
    assert failed.last_error == "KeyError: 'invoiceNo' (10 unexpected errors in a row)"
    assert run.notified == [("billy-1", failed.last_error)]
    outcomes = [a["outcome"] for a in delivery.attempts("billy-1")]
    assert outcomes == ["retry"] * 9 + ["failed"]
    assert not run.attempt(), "the failed message holds its lane: billy-2 waits"
    assert run.message("billy-2").status == "pending"


def test_only_unexpected_errors_in_a_row_count(delivery: DeliveryLog) -> None:
    delivery.enqueue([new(1, "c1")], T0)
    steps = [bug(), bug(), RetryableError("503", 503), bug(), bug(), bug()]
    run = Run(delivery, Scripted(*steps), DispatchSettings(max_unexpected_errors=3))
    for _ in range(5):
        assert run.attempt()
    pending = run.message("billy-1")
    assert (pending.status, pending.unexpected_errors) == ("pending", 2), "the 503 broke the row"
    assert run.notified == []
    assert run.attempt()
    assert run.message("billy-1").status == "failed"
    assert len(run.notified) == 1


def test_a_retried_message_counts_its_unexpected_errors_afresh_through_the_api(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUBLEDGER_SYNC_MAX_UNEXPECTED_ERRORS", "2")
    config = tmp_path / "subledger.toml"
    config.write_text(f'[targets.billy]\nurl = "http://127.0.0.1:9/v2"\ntoken = "{TOKEN}"\n')
    settings = Settings(database_url=database_url, api_keys=API_KEYS, config=config)
    with TestClient(create_app(settings)) as client:
        assert client.post("/v1/events", json={"events": ONE_CUSTOMER}, headers=WRITE).is_success
        sync = client.app.state.sync  # type: ignore[attr-defined]
        assert sync.dispatcher.settings.max_unexpected_errors == 2, "read from the environment"
        assert sync.enqueue() == 1
        # The clock runs a day ahead, so that a retry made now is due at once.
        run = Run(sync.delivery, Scripted(bug()), sync.dispatcher.settings)
        run.now = datetime.now(UTC) + timedelta(days=1)
        (contact,) = messages(client)
        run.attempt()
        run.attempt()
        assert run.message(contact["id"]).status == "failed" and len(run.notified) == 1

        answer = client.post(f"/v1/sync/messages/{contact['id']}/retry", headers=ADMIN)
        assert answer.status_code == 202, answer.text
        assert run.message(contact["id"]).unexpected_errors == 0
        run.attempt()
        again = run.message(contact["id"])
        assert (again.status, again.unexpected_errors) == ("pending", 1), "counted afresh"
        run.attempt()
        assert run.message(contact["id"]).status == "failed" and len(run.notified) == 2


def test_a_sent_message_after_unexpected_errors_counts_none(delivery: DeliveryLog) -> None:
    delivery.enqueue([new(1, "c1")], T0)
    run = Run(delivery, Scripted(bug(), None))
    assert run.attempt() and run.attempt()
    sent = run.message("billy-1")
    assert (sent.status, sent.unexpected_errors, sent.last_error) == ("sent", 0, None)


# ---------------------------------------------------------------------------------------------
# Retry-After


@pytest.mark.parametrize("asked", [1e12, math.inf, 1e308, 3600.5])
def test_a_retry_after_beyond_an_hour_defers_the_message_an_hour(
    delivery: DeliveryLog, asked: float
) -> None:
    delivery.enqueue([new(1, "c1")], T0)
    run = Run(delivery, Scripted(RetryableError("429", 429, retry_after=asked)))
    assert run.attempt()
    message = run.message("billy-1")
    assert message.status == "pending"
    assert message.next_attempt_at == T0 + HOUR


@pytest.mark.parametrize("asked", [math.nan, -5.0])
def test_a_retry_after_that_asks_for_no_time_leaves_the_backoff_alone(
    delivery: DeliveryLog, asked: float
) -> None:
    delivery.enqueue([new(1, "c1")], T0)
    settings = DispatchSettings(backoff_base_seconds=2.0)
    run = Run(delivery, Scripted(RetryableError("429", 429, retry_after=asked)), settings)
    assert run.attempt()
    wait = run.message("billy-1").next_attempt_at - T0
    assert timedelta(seconds=1) <= wait <= timedelta(seconds=2), "the first backoff, jittered"


def throttling(retry_after: str) -> Any:
    """An HTTP target that answers every request 429 with `Retry-After: retry_after`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"retry-after", retry_after.encode()), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"errorMessage": "slow down"}'})

    return app


@pytest.mark.parametrize("retry_after", ["1e12", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_target_asking_to_wait_for_ages_gets_its_message_back_within_the_hour(
    database_url: str, tmp_path: Path, retry_after: str
) -> None:
    with serving(throttling(retry_after)) as url:
        config = tmp_path / "subledger.toml"
        config.write_text(f'[targets.billy]\nurl = "{url}/v2"\ntoken = "{TOKEN}"\n')
        settings = Settings(database_url=database_url, api_keys=API_KEYS, config=config)
        with TestClient(create_app(settings)) as client:
            assert client.post("/v1/events", json={"events": ONE_CUSTOMER}, headers=WRITE)
            sync = client.app.state.sync  # type: ignore[attr-defined]
            sync.enqueue()
            before = datetime.now(UTC)
            assert sync.dispatcher.deliver_one("billy"), "the worker survived the answer"
            after = datetime.now(UTC)
            (contact,) = messages(client)
            assert contact["status"] == "pending"
            retry_at = datetime.fromisoformat(contact["next_attempt_at"])
            assert before < retry_at <= after + HOUR
            shown = client.get(f"/v1/sync/messages/{contact['id']}", headers=READ).json()
            assert [a["http_status"] for a in shown["attempts"]] == [429]
            assert not sync.dispatcher.deliver_one("billy"), "not due again before its time"


# ---------------------------------------------------------------------------------------------
# Where delivery stands


def test_the_summary_counts_held_lanes_and_the_messages_behind_them(
    delivery: DeliveryLog,
) -> None:
    """c1: a failed message with two behind it; c2: a failed one alone; c3: one sent, one
    pending (enqueued a minute later); c4: one being sent. Another target has one pending."""
    lanes = {1: "c1", 2: "c1", 3: "c1", 4: "c2", 5: "c3", 6: "c4"}
    delivery.enqueue([new(seq, lane) for seq, lane in lanes.items()], T0)
    later = T0 + timedelta(minutes=1)
    delivery.enqueue([new(7, "c3"), new(1, "c1", target="dinero")], later)
    for expected, outcome in ((1, "failed"), (4, "failed"), (5, "sent"), (6, None)):
        claimed = delivery.claim("billy", T0, LEASE)
        assert claimed is not None and claimed.seq == expected
        if outcome is not None:
            attempt = Attempt(T0, 5, [], 422, {}, "422" if outcome == "failed" else None, outcome)
            delivery.finish(claimed, attempt, outcome)

    summary = delivery.summary()
    billy_ = summary["billy"]
    assert billy_.counts == {"pending": 3, "sending": 1, "sent": 1, "failed": 2, "waiting": 0}
    assert (billy_.held_lanes, billy_.held_messages) == (2, 2), "c1 and c2; c1's 2 and 3"
    assert billy_.oldest_pending_at == T0
    assert billy_.oldest_pending_seconds(T0 + timedelta(seconds=90)) == 90
    dinero = summary["dinero"]
    assert (dinero.oldest_pending_at, dinero.held_lanes, dinero.held_messages) == (later, 0, 0)
    assert list(delivery.summary("dinero")) == ["dinero"]

    # A retry or a replay waits from the time it was made.
    delivery.retry("billy-1", later)
    delivery.replay("billy", later, positions=(5, 5))
    assert delivery.message("billy-1").pending_since == later  # type: ignore[union-attr]
    assert delivery.message("billy-5").pending_since == later  # type: ignore[union-attr]
    assert delivery.summary()["billy"].oldest_pending_at == T0, "billy-2 and -3 since T0"
    assert (delivery.summary()["billy"].held_lanes, delivery.summary()["billy"].held_messages) == (
        1,
        0,
    ), "c2 alone is held now, with nothing behind it"


def test_a_delivery_log_made_before_these_columns_keeps_working(database_url: str) -> None:
    ledger = Ledger(store_env(database_url))
    try:
        database = backend_of(ledger).delivery_database(ledger)
        assert database is not None
        old = DeliveryLog(database)
        instant = "timestamptz" if old.db.postgres else "text"
        with old.db.transaction() as sql:
            sql.run(OLD_MESSAGES.format(instant=instant))
            sql.run(
                "INSERT INTO sync_messages (id, target, lane, seq, kind, source, dated, payload,"
                " status, next_attempt_at, created_at, updated_at) VALUES ('billy-1', 'billy',"
                " 'c1', 1, 'invoice', 'evt_1', '2026-01-01', '{}', 'pending', %(t)s, %(t)s, %(t)s)",
                t=T0,
            )
        delivery = delivery_log_for(ledger)
        delivery_log_for(ledger)  # a second start finds the columns there
        summary = delivery.summary()["billy"]
        assert summary.oldest_pending_at == T0, "waiting since it was enqueued"
        run = Run(delivery, Scripted(bug()), DispatchSettings(max_unexpected_errors=2))
        run.now = T0
        assert run.attempt() and run.attempt()
        assert run.message("billy-1").status == "failed" and len(run.notified) == 1
    finally:
        ledger.close()


#: `sync_messages` as the first release made it, before `unexpected_errors` and `pending_since`.
OLD_MESSAGES = """CREATE TABLE IF NOT EXISTS sync_messages (
    id text PRIMARY KEY,
    target text NOT NULL,
    lane text NOT NULL,
    seq bigint NOT NULL,
    kind text NOT NULL,
    source text NOT NULL,
    dated text NOT NULL,
    payload text NOT NULL,
    status text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at {instant} NOT NULL,
    claimed_until {instant},
    target_ids text,
    last_error text,
    created_at {instant} NOT NULL,
    updated_at {instant} NOT NULL,
    sent_at {instant})"""


#: After test_sync_api's events, a payment on cus_2's second invoice: it waits behind cus_2's
#: third, which fails (Billy has no product "gold").
HELD_PAYMENT = {
    "id": "evt_p2",
    "type": "payment.received",
    "data": {
        "payment_id": "pay_2",
        "invoice_id": "inv_2",
        "amount": 12500,
        "currency": "DKK",
        "method": "card",
        "received_on": "2026-01-11",
    },
}


def test_status_and_the_first_page_of_messages_show_what_failures_hold(
    database_url: str, billy: str, tmp_path: Path
) -> None:
    """What is held is also worked out here the simple way, from every message: the lanes with
    a failed message, and the unsent messages with a failed one earlier in their lane."""
    config = tmp_path / "subledger.toml"
    config.write_text(f'[targets.billy]\nurl = "{billy}/v2"\ntoken = "{TOKEN}"\n')
    settings = Settings(database_url=database_url, api_keys=API_KEYS, config=config)
    with TestClient(create_app(settings)) as client:
        events = [*EVENTS, HELD_PAYMENT]
        assert client.post("/v1/events", json={"events": events}, headers=WRITE).is_success
        sync = delivered(client)
        everything = sync.delivery.messages(limit=1000)
        failed = [m for m in everything if m.status == "failed"]
        unsent = [m for m in everything if m.status in ("pending", "sending")]
        behind = [m for m in unsent if any(f.lane == m.lane and f.seq < m.seq for f in failed)]
        assert "cus_2" in {m.lane for m in failed}, "its invoice of an unknown product"
        assert [m.source for m in behind if m.lane == "cus_2"] == ["evt_p2"]
        expected = {
            "failed": len(failed),
            "pending": sum(1 for m in unsent if m.status == "pending"),
            "held_lanes": len({m.lane for m in failed}),
            "held_messages": len(behind),
        }
        oldest = min(m.pending_since or m.created_at for m in unsent)

        first = client.get("/v1/sync/messages", params={"limit": 1}, headers=READ).json()
        shown = first["targets"]["billy"]
        assert {name: shown[name] for name in expected} == expected
        assert shown["sent"] == sum(1 for m in everything if m.status == "sent")
        assert datetime.fromisoformat(shown["oldest_pending_at"]) == oldest
        assert 0 <= shown["oldest_pending_seconds"] < 600
        later = client.get(
            "/v1/sync/messages", params={"limit": 1, "after": first["next"]}, headers=READ
        ).json()
        assert later["targets"] is None, "the first page alone carries it"

    env = {"SUBLEDGER_DATABASE_URL": database_url, "SUBLEDGER_CONFIG": str(config)}
    status = CliRunner().invoke(main, ["sync", "status", "--json"], env=env)
    assert status.exit_code == 0, status.output
    document = orjson.loads(status.stdout)
    told = document["targets"]["billy"]
    assert {name: told[name] for name in expected} == expected
    assert document["counts"]["billy"]["failed"] == expected["failed"], "the counts stay"
    assert sorted(m["id"] for m in document["failed"]) == sorted(m.id for m in failed)

    cells = status_table(env)["billy"]
    headings = {"failed": "failed", "pending": "pending", "held_lanes": "held"}
    assert {name: cells[headings.get(name, "behind")] for name in expected} == {
        name: str(value) for name, value in expected.items()
    }
    assert cells["oldest"].endswith((" s", " min"))


def status_table(env: dict[str, str]) -> dict[str, dict[str, str]]:
    """`subledger sync status`'s table (80 columns wide at most): per target, each heading's
    cell."""
    table = CliRunner().invoke(main, ["sync", "status"], env=env)
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert max(len(line) for line in lines if line.startswith(("┃", "│"))) <= 80
    header = next(line for line in lines if "target" in line)
    names = [cell.strip() for cell in header.strip("┃ ").split("┃")]
    rows = [line.strip("│ ").split("│") for line in lines if line.startswith("│")]
    return {
        row[0].strip(): dict(zip(names, (cell.strip() for cell in row), strict=True))
        for row in rows
    }


def test_status_shows_the_messages_waiting_for_payment_in_full(
    database_url: str, tmp_path: Path
) -> None:
    """Billy takes invoices once paid in full: an invoice of 125.00 DKK paid 50.00 waits, and
    so does its payment: 2 waiting, none failed. Nothing is sent here."""
    config = tmp_path / "subledger.toml"
    config.write_text(
        f'[targets.billy]\nurl = "http://127.0.0.1:9/v2"\ntoken = "{TOKEN}"\n'
        'transfer = "on_payment"\n'
    )
    ledger = Ledger(store_env(database_url))
    try:
        append(ledger, customer("c1"), invoice("i1", "c1"), payment("p1", "i1", amount=5000))
    finally:
        ledger.close()
    env = {"SUBLEDGER_DATABASE_URL": database_url, "SUBLEDGER_CONFIG": str(config)}

    cells = status_table(env)["billy"]

    assert (cells["waiting"], cells["failed"], cells["behind"]) == ("2", "0", "0")


def test_status_tells_a_wait_as_a_person_reads_it() -> None:
    from subledger.api.cli.sync import age

    assert [age(s) for s in (None, 0, 45, 720, 3 * 3600 + 5 * 60, 2 * 86400 + 4 * 3600 + 59)] == [
        "–",
        "0 s",
        "45 s",
        "12 min",
        "3 h 05 min",
        "2 d 4 h",
    ]
