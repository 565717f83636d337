"""Syncing a generated business to the Billy sandbox over real HTTP, on PostgreSQL: everything
arrives once, with our totals, and replays send nothing new."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from adapters.store import store_env
from api.generator import Business
from api.ingest import parse_submissions
from bench.harness import free_port
from domain.dates import Month
from domain.ledger import Ledger
from projections.engine import Rows
from projections.journal import TOTALS, JournalProjection

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "sandbox-token-for-tests"


@pytest.fixture(scope="module")
def business() -> list[dict[str, Any]]:
    return list(Business(customers=200, months=24, seed=7).events())


@pytest.fixture
def sandbox() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "api.cli",
            "sandbox",
            "billy",
            "--port",
            str(port),
            "--token",
            TOKEN,
        ],
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/_sandbox/summary", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(10)


def billy(url: str) -> httpx.Client:
    return httpx.Client(base_url=f"{url}/v2", headers={"X-Access-Token": TOKEN}, timeout=30)


def everything(client: httpx.Client, plural: str, **filters: Any) -> list[dict[str, Any]]:
    found, page = [], 1
    while True:
        body = client.get(f"/{plural}", params={"page": page, "pageSize": 1000, **filters}).json()
        found += body[plural]
        if page >= body["meta"]["paging"]["pageCount"]:
            return found
        page += 1


def set_up_products(url: str, events: list[dict[str, Any]]) -> None:
    """Billy's products for ours, booking to deferred revenue (7400) as docs/sync.md says."""
    with billy(url) as client:
        deferred = client.get("/accounts", params={"accountNo": 7400}).json()["accounts"][0]
        products = {
            line["product_id"]
            for event in events
            if event["type"] == "invoice.issued"
            for line in event["data"]["lines"]
        }
        for product in sorted(products):
            body = {"product": {"name": product, "productNo": product, "accountId": deferred["id"]}}
            client.post("/products", json=body).raise_for_status()


@pytest.fixture
def environment(postgres_url: str, tmp_path: Path, sandbox: str) -> dict[str, str]:
    config = tmp_path / "subledger.toml"
    config.write_text(
        f'[targets.billy]\nurl = "{sandbox}/v2"\nbook = true\nrequests_per_minute = 100000\n'
        "timeout_seconds = 2\n"
    )
    return {
        **os.environ,
        "SUBLEDGER_DATABASE_URL": postgres_url,
        "SUBLEDGER_CONFIG": str(config),
        "SUBLEDGER_TARGET_BILLY_TOKEN": TOKEN,
        "SUBLEDGER_SYNC_BACKOFF_SECONDS": "0.05",
        "SUBLEDGER_SYNC_BACKOFF_CAP_SECONDS": "1",
        "SUBLEDGER_SYNC_LEASE_SECONDS": "3",
        "SUBLEDGER_LOG_LEVEL": "warning",
    }


def append(url: str, events: list[dict[str, Any]]) -> None:
    ledger = Ledger(store_env(url))
    for start in range(0, len(events), 1000):
        ledger.append(parse_submissions(orjson.dumps({"events": events[start : start + 1000]})))
    ledger.close()


def subledger(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def sync_until_done(env: dict[str, str], timeout: float = 600) -> str:
    """`subledger sync run` until every message is sent (or one failed); its status output."""
    process = subprocess.Popen([sys.executable, "-m", "api.cli", "sync", "run"], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(2)
            status = subledger(env, "sync", "status").stdout
            if _settled(status):
                return status
        raise AssertionError(f"the sync did not finish:\n{status}")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def _settled(status: str) -> bool:
    for line in status.splitlines():
        cells = [c.strip().replace(",", "") for c in line.split("│") if c.strip()]
        if cells and cells[0] == "billy":
            pending, sending, _, failed = (int(c) for c in cells[1:5])
            return pending == sending == 0 or failed > 0
    return False


def expected(events: list[dict[str, Any]]) -> dict[str, int]:
    kinds = [event["type"] for event in events]
    return {
        "contacts": kinds.count("customer.created"),
        "invoices": kinds.count("invoice.issued"),
        "credit_notes": kinds.count("credit_note.issued"),
        "payments": kinds.count("payment.received"),
        "refunds": kinds.count("payment.refunded"),
    }


def ended_months_with_revenue(url: str) -> int:
    """The months, ended by today, in which the journal (folded here, in memory) books revenue."""
    ledger = Ledger(store_env(url))
    projection, rows = JournalProjection(), Rows()
    for entry in ledger.iter_entries(ledger.last_position(), projection.event_types):
        projection.fold(rows, entry)
    ledger.close()
    today = date.today().isoformat()
    return len(
        {
            day[:7]
            for (_, day, role, _), row in rows.scan(TOTALS)
            if role == "revenue"
            and row["credit"] != row["debit"]
            and Month.parse(day[:7]).last_day.isoformat() < today
        }
    )


def holdings(url: str) -> dict[str, int]:
    with billy(url) as client:
        invoices = everything(client, "invoices")
        payments = everything(client, "bankPayments")
        return {
            "contacts": len(everything(client, "contacts")),
            "invoices": sum(1 for i in invoices if i["type"] == "invoice"),
            "credit_notes": sum(1 for i in invoices if i["type"] == "creditNote"),
            "payments": sum(1 for p in payments if p["cashSide"] == "debit"),
            "refunds": sum(1 for p in payments if p["cashSide"] == "credit"),
            "vouchers": len(everything(client, "daybookTransactions")),
            "approved": sum(1 for i in invoices if i["state"] == "approved"),
        }


def test_a_generated_business_syncs_completely_and_replays_send_nothing_new(
    business: list[dict[str, Any]],
    environment: dict[str, str],
    sandbox: str,
) -> None:
    append(environment["SUBLEDGER_DATABASE_URL"], business)
    set_up_products(sandbox, business)
    checked = subledger(environment, "sync", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    status = sync_until_done(environment)
    held = holdings(sandbox)
    wanted = expected(business)
    assert {k: held[k] for k in wanted} == wanted, status
    assert held["approved"] == wanted["invoices"] + wanted["credit_notes"]
    assert held["vouchers"] == ended_months_with_revenue(environment["SUBLEDGER_DATABASE_URL"])

    replayed = subledger(environment, "sync", "replay", "--target", "billy", "--all")
    assert replayed.returncode == 0, replayed.stderr
    sync_until_done(environment)
    assert holdings(sandbox) == held
