"""Syncing a generated business to each target's sandbox (Billy and Dinero, one code path) over
real HTTP, on PostgreSQL, with the dispatcher in processes of its own: everything arrives once
with our totals, through faults, SIGKILLs, replays and a rebuild of the outbox; a refusal holds
only its customer's messages until the mapping is fixed and the message retried."""

from __future__ import annotations

import random
import threading
import time
from contextlib import AbstractContextManager
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiosmtpd.controller import Controller

from bench.harness import free_port, server
from bench.sandboxes import (
    Books,
    Dispatcher,
    Sandbox,
    append,
    books,
    configure,
    enqueue,
    environment,
    expected_books,
    prepare,
    subledger,
    unbooked,
    wait_until_settled,
)
from subledger.adapters.store import store_env
from subledger.api.demo.generator import Business
from subledger.api.sync import delivery_log_for
from subledger.domain.ledger import Ledger
from tests.waiting import wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(900)]

ADMIN = "sync-tests-admin-secret"
KEYS = f"tests:{ADMIN}:read+admin"


@pytest.fixture(scope="module")
def business() -> list[dict[str, Any]]:
    return list(Business(customers=120, months=24, seed=7).events())


@pytest.fixture(scope="module")
def faulted_business() -> list[dict[str, Any]]:
    """Two thirds of `business`: under a fifth of faults still about 100 of each kind (200
    customers gave 264 to 845), in half the time; and enough to send that five kills of the
    dispatcher each land mid-send."""
    return list(Business(customers=80, months=24, seed=7).events())


@pytest.fixture(scope="module")
def small_business() -> list[dict[str, Any]]:
    return list(Business(customers=30, months=6, seed=11).events())


def set_up(
    events: list[dict[str, Any]], database_url: str, box: Sandbox, tmp_path: Path, **options: Any
) -> dict[str, str]:
    """The business appended, the target's products made, subledger.toml written and every
    message enqueued: the environment of a `subledger` process."""
    append(database_url, events)
    prepare(box, events)
    extra = options.pop("extra", "")
    config = configure(tmp_path / "subledger.toml", box, extra, **options)
    env = environment(database_url, config, box.kind)
    enqueue(env)
    return env


def assert_holds_exactly(box: Sandbox, wanted: Books) -> None:
    held = books(box)
    assert held.duplicates() == {}, "nothing is created twice"
    assert held == wanted, {"wanted": wanted.sizes(), "held": held.sizes()}
    assert unbooked(box) == 0, "every invoice and credit note is booked"


def reconcile(base: str, kind: str) -> dict[str, Any]:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}) as client:
        answer = client.get("/v1/sync/reconciliation", params={"target": kind}, timeout=120)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def patient_server(
    database_url: str, env: dict[str, str], box: Sandbox, tmp_path: Path
) -> AbstractContextManager[str]:
    """A server whose target waits 30 s for an answer, for the reconciliation once the faults
    are off: the tests' short timeouts make faults bite, but reading a whole year of a
    target's entries on a busy machine may take longer than they allow."""
    config = configure(tmp_path / "patient.toml", box, timeout_seconds=30)
    return server(database_url, KEYS, base_env={**env, "SUBLEDGER_CONFIG": str(config)})


def reconciled(database_url: str, env: dict[str, str], box: Sandbox, tmp_path: Path) -> Any:
    with patient_server(database_url, env, box, tmp_path) as base:
        return reconcile(base, box.kind)


def test_a_generated_business_syncs_completely_reconciles_and_replays_send_nothing_new(
    business: list[dict[str, Any]], postgres_url: str, target: Sandbox, tmp_path: Path
) -> None:
    env = set_up(business, postgres_url, target, tmp_path)
    checked = subledger(env, "sync", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    wanted = expected_books(business, postgres_url)
    assert wanted.sizes()["contacts"] >= 120 and wanted.sizes()["vouchers"] >= 24

    with Dispatcher(env):
        sent = wait_until_settled(postgres_url, target.kind)
    assert sent["failed"] == 0
    assert_holds_exactly(target, wanted)

    with patient_server(postgres_url, env, target, tmp_path) as base:
        report = reconcile(base, target.kind)
        assert report["differences"] == []
        assert report["ours"] == report["theirs"]
        assert report["ours"]["invoices"] == wanted.sizes()["invoices"]

        replay = httpx.post(
            f"{base}/v1/sync/replay",
            json={"target": target.kind, "all": True},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        assert replay.status_code == 202, replay.text
        assert replay.json()["replayed"] == sent["sent"]
        wait_until_settled(postgres_url, target.kind)  # the server's own dispatcher sends them
    assert_holds_exactly(target, wanted)

    rebuilt = subledger(env, "projections", "rebuild", "outbox")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert enqueue(env)[target.kind] == {**sent, "waiting": 0}, "no message is new"
    with Dispatcher(env):
        wait_until_settled(postgres_url, target.kind)
    assert_holds_exactly(target, wanted)


def test_twenty_percent_of_requests_failing_changes_nothing_at_the_end(
    faulted_business: list[dict[str, Any]], postgres_url: str, target: Sandbox, tmp_path: Path
) -> None:
    business = faulted_business
    env = set_up(business, postgres_url, target, tmp_path, timeout_seconds=1)
    target.twenty_percent_faults()

    with Dispatcher(env, workers=8):
        assert wait_until_settled(postgres_url, target.kind)["failed"] == 0

    injected = target.stats()["faults_injected"]
    assert all(injected[kind] > 50 for kind in ("fail", "throttle", "drop", "slow")), injected
    if target.kind == "dinero":
        assert target.stats()["by_status"].get("480", 0) > 50, "brownouts, retried"
    target.no_faults()
    assert_holds_exactly(target, expected_books(business, postgres_url))
    assert reconciled(postgres_url, env, target, tmp_path)["differences"] == []


def test_killing_the_dispatcher_five_times_changes_nothing_at_the_end(
    faulted_business: list[dict[str, Any]], postgres_url: str, target: Sandbox, tmp_path: Path
) -> None:
    business = faulted_business
    env = set_up(business, postgres_url, target, tmp_path)
    # Requests in flight when the kill comes, and slow enough (four workers, 40 ms a request)
    # that the business's messages outlast five dispatchers killed a few seconds in.
    target.faults(latency_ms=40)
    draw, after_kills = random.Random(5), []
    for _ in range(5):
        before = delivery_counts(postgres_url, target.kind)["sent"]
        dispatcher = Dispatcher(env, workers=4)
        dispatcher.start()
        # Killed once it has sent something (on a busy machine, starting takes seconds), at a
        # random moment after that.
        wait_until(
            lambda: delivery_counts(postgres_url, target.kind)["sent"] > before,  # noqa: B023
            120,
            "the dispatcher sends a message",
        )
        time.sleep(draw.uniform(0.5, 4))
        dispatcher.kill()
        after_kills.append(delivery_counts(postgres_url, target.kind))
    sent = [counts["sent"] for counts in after_kills]
    assert sent == sorted(sent) and sent[0] > 0, "each dispatcher got somewhere before its kill"
    assert any(counts["sending"] for counts in after_kills), "kills caught messages mid-send"

    target.faults(latency_ms=0)  # the rest sent at the sandbox's own pace
    with Dispatcher(env, workers=4):
        assert wait_until_settled(postgres_url, target.kind)["failed"] == 0
    assert_holds_exactly(target, expected_books(business, postgres_url))
    assert reconciled(postgres_url, env, target, tmp_path)["differences"] == []


def delivery_counts(database_url: str, kind: str) -> dict[str, int]:
    """The delivery log's counts of the target's messages by status."""
    ledger = Ledger(store_env(database_url))
    try:
        return delivery_log_for(ledger).counts()[kind]
    finally:
        ledger.close()


# A refusal from the target.

#: What each target answers a payment into an account that takes none, in its own words.
REFUSALS = {"billy": (422, "not payment-enabled"), "dinero": (400, "is not a deposit account")}


class Webhook(ThreadingHTTPServer):
    """A local webhook receiver keeping the JSON documents posted to it."""

    def __init__(self) -> None:
        self.documents: list[dict[str, Any]] = []
        received = self.documents

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.append(orjson.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        super().__init__(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/subledger"


class Mailbox:
    """A local SMTP server keeping the mails it receives."""

    def __init__(self) -> None:
        self.mails: list[Any] = []
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        self.mails.append(message_from_bytes(envelope.content))
        return "250 OK"


def test_a_refusal_holds_its_customer_notifies_and_a_retry_after_the_fix_completes_it(
    small_business: list[dict[str, Any]],
    postgres_url: str,
    target: Sandbox,
    tmp_path: Path,
    webhook: Webhook,
    mailbox: Mailbox,
) -> None:
    notifications = (
        f'\n[notifications]\nwebhook_url = "{webhook.url}"\nsmtp_host = "127.0.0.1"\n'
        f'smtp_port = {mailbox.port}\nsmtp_to = ["finance@example.com"]\n'
    )
    # MobilePay payments mapped to the receivables account, which takes no payments.
    env = set_up(
        small_business,
        postgres_url,
        target,
        tmp_path,
        accounts={"5820": "5600"},
        extra=notifications,
    )
    checked = subledger(env, "sync", "check")
    assert checked.returncode == 1 and "5600" in checked.stdout, "the check sees it coming"

    with Dispatcher(env):
        failed, held = wait_until_held(postgres_url, target.kind)
    assert failed, "MobilePay payments are refused"
    status, words = REFUSALS[target.kind]
    for message in failed:
        assert message.kind in ("payment", "refund")
        assert f": {status} " in (message.last_error or "")
        assert words in (message.last_error or ""), "the target's own words"
    failed_lanes = {message.lane for message in failed}
    assert held and {message.lane for message in held} <= failed_lanes
    assert all(any(m.lane == h.lane and m.seq < h.seq for m in failed) for h in held), (
        "what waits, waits behind its customer's failed message"
    )
    sent_lanes = {m.lane for m in delivery_messages(postgres_url, target.kind, "sent")}
    assert sent_lanes - failed_lanes, "other customers' messages flowed"

    assert sorted(d["message_id"] for d in webhook.documents) == sorted(m.id for m in failed)
    assert all(d["event"] == "sync.message.failed" for d in webhook.documents)
    assert len(mailbox.mails) == len(failed)
    assert all("failed" in mail["Subject"] for mail in mailbox.mails)

    # The fix: no mapping for 5820 (the target's own MobilePay account), then a retry of each.
    configure(tmp_path / "subledger.toml", target, notifications)
    with server(postgres_url, KEYS, base_env=env) as base:
        auth = {"Authorization": f"Bearer {ADMIN}"}
        shown = httpx.get(f"{base}/v1/sync/messages/{failed[0].id}", headers=auth).json()
        assert shown["status"] == "failed"
        assert shown["attempts"][-1]["http_status"] == status
        for message in failed:
            retried = httpx.post(f"{base}/v1/sync/messages/{message.id}/retry", headers=auth)
            assert retried.status_code == 202, retried.text
        assert wait_until_settled(postgres_url, target.kind)["failed"] == 0
        assert reconcile(base, target.kind)["differences"] == []
    assert_holds_exactly(target, expected_books(small_business, postgres_url))


def delivery_messages(database_url: str, kind: str, status: str) -> list[Any]:
    ledger = Ledger(store_env(database_url))
    try:
        delivery, found, after = delivery_log_for(ledger), [], None
        while page := delivery.messages(kind, status, after, 1000):
            found += page
            after = (page[-1].target, page[-1].seq, page[-1].id)
        return found
    finally:
        ledger.close()


def wait_until_held(
    database_url: str, kind: str, timeout: float = 300
) -> tuple[list[Any], list[Any]]:
    """Wait until nothing is sending and every pending message waits behind a failed one of
    its customer; the failed and the pending messages."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        failed = delivery_messages(database_url, kind, "failed")
        pending = delivery_messages(database_url, kind, "pending")
        sending = delivery_messages(database_url, kind, "sending")
        blocked = {m.lane: m.seq for m in sorted(failed, key=lambda m: -m.seq)}
        if failed and not sending and all(m.seq > blocked.get(m.lane, m.seq) for m in pending):
            return failed, pending
        time.sleep(0.5)
    raise AssertionError("the sync never came to rest behind its failures")
