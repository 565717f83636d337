"""`subledger sync run --once` also takes in the payments registered at a two-way target
(docs/sync.md, "Two-way payments"): one run after the accountant registers a payment at
Billy's or Dinero's sandbox (`POST /_sandbox/payments`) and the payment is in our log, with
its source; a target that is not `direction = "both"` is not asked. On SQLite and PostgreSQL,
the command run as a reader runs it (in this process), against each sandbox served over HTTP.

The expected amount is the invoice's gross, worked out here: 10,000 øre net at 25% VAT."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from subledger.adapters.sandbox import serving
from subledger.adapters.sandbox.billy import BillySandboxSettings, create_billy_app
from subledger.adapters.sandbox.dinero import DineroSandboxSettings, create_dinero_app
from subledger.adapters.sandbox.faults import FaultSettings
from subledger.api.cli.main import main
from subledger.api.http.app import create_app
from subledger.api.settings import Settings
from tests.conftest import ADMIN, API_KEYS, READ, WRITE

pytestmark = pytest.mark.timeout(300)

TOKEN = "once-token"
CLIENT = ("once-client", "once-secret")
ORGANIZATION = 616161
NET = 10_000
GROSS = NET + NET * 25 // 100  # 12,500 øre: 125.00 kr.

EVENTS: list[dict[str, Any]] = [
    {
        "id": "evt_once_c1",
        "type": "customer.created",
        "data": {
            "customer_id": "cus_once",
            "name": "Once ApS",
            "customer_number": "7001",
            "country": "DK",
            "kind": "company",
        },
    },
    {
        "id": "evt_once_i1",
        "type": "invoice.issued",
        "data": {
            "invoice_id": "inv_once",
            "customer_id": "cus_once",
            "number": "ONCE-1",
            "issue_date": "2026-01-05",
            "due_date": "2026-01-19",
            "currency": "DKK",
            "lines": [
                {"product_id": "pro", "quantity": "1", "unit_amount": NET, "vat_rate": "0.25"}
            ],
        },
    },
]


@pytest.fixture(params=["billy", "dinero"])
def target(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """A sandbox of each kind, served: the target's table in subledger.toml (without its
    direction) and the sandbox's URL."""
    if request.param == "billy":
        with serving(create_billy_app(BillySandboxSettings(token=TOKEN))) as url:
            with httpx.Client(base_url=f"{url}/v2", headers={"X-Access-Token": TOKEN}) as billy:
                deferred = billy.get("/accounts", params={"accountNo": 7400}).json()
                account = deferred["accounts"][0]["id"]
                product = {"name": "Pro", "productNo": "pro", "accountId": account}
                billy.post("/products", json={"product": product}).raise_for_status()
            yield f'[targets.billy]\nurl = "{url}/v2"\ntoken = "{TOKEN}"\n', url
        return
    settings = DineroSandboxSettings(
        client_id=CLIENT[0],
        client_secret=CLIENT[1],
        api_key=TOKEN,
        organization_id=ORGANIZATION,
        faults=FaultSettings(rate_limit=0),
    )
    with serving(create_dinero_app(settings)) as url:
        table = (
            f'[targets.dinero]\nurl = "{url}"\ntoken = "{TOKEN}"\n'
            f'organization_id = "{ORGANIZATION}"\nclient_id = "{CLIENT[0]}"\n'
            f'client_secret = "{CLIENT[1]}"\nrequests_per_minute = 60000\n'
        )
        yield table, url


@pytest.fixture
def ledger(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The service, without targets of its own (nothing in it sends or polls): the events
    appended, and the log read, through it."""
    (tmp_path / "no-targets.toml").write_text("")
    settings = Settings(
        database_url=database_url, api_keys=API_KEYS, config=tmp_path / "no-targets.toml"
    )
    with TestClient(create_app(settings)) as client:
        answer = client.post("/v1/events", json={"events": EVENTS}, headers=WRITE)
        assert answer.status_code == 201, answer.text
        yield client


def run_once(database_url: str, config: Path) -> int:
    """`subledger sync run --once`, as typed; its exit code."""
    environment = {"SUBLEDGER_DATABASE_URL": database_url, "SUBLEDGER_CONFIG": str(config)}
    ran = CliRunner().invoke(main, ["sync", "run", "--once", "--timeout", "60"], env=environment)
    assert ran.exception is None or isinstance(ran.exception, SystemExit), ran.output
    return ran.exit_code


def register_payment(url: str) -> None:
    """The accountant registers the invoice's payment, in full, into the bank account."""
    body = {"invoice": "ONCE-1", "amount": GROSS / 100, "date": "2026-01-20", "account": 5800}
    answer = httpx.post(f"{url}/_sandbox/payments", json=body)
    assert answer.status_code == 201, answer.text


def payments_logged(client: TestClient) -> list[dict[str, Any]]:
    answer = client.get("/v1/events", params={"limit": 1000}, headers=READ)
    assert answer.status_code == 200, answer.text
    return [e["data"] for e in answer.json()["events"] if e["type"] == "payment.received"]


def test_one_run_once_takes_in_what_the_accountant_registered_at_a_two_way_target(
    database_url: str, target: tuple[str, str], ledger: TestClient, tmp_path: Path
) -> None:
    table, url = target
    kind = table.split("]", 1)[0].removeprefix("[targets.")
    config = tmp_path / "subledger.toml"
    config.write_text(table + 'direction = "both"\n')
    assert run_once(database_url, config) == 0, "the contact and the invoice delivered"
    assert payments_logged(ledger) == []

    register_payment(url)
    assert run_once(database_url, config) == 0

    [payment] = payments_logged(ledger)
    assert payment["invoice_id"] == "inv_once"
    assert payment["amount"] == GROSS
    assert payment["currency"] == "DKK"
    assert payment["method"] == "bank_transfer"
    assert payment["received_on"] == "2026-01-20"
    assert payment["source"]["target"] == kind
    assert payment["payment_id"] == f"{kind}:payment:{payment['source']['reference']}"

    assert run_once(database_url, config) == 0
    assert len(payments_logged(ledger)) == 1, "taken in once, however many runs"


def test_a_push_target_is_not_asked_for_its_payments_by_a_run(
    database_url: str, target: tuple[str, str], ledger: TestClient, tmp_path: Path
) -> None:
    table, url = target
    config = tmp_path / "subledger.toml"
    config.write_text(table)  # direction = "push", the default
    assert run_once(database_url, config) == 0
    register_payment(url)
    assert run_once(database_url, config) == 0
    assert payments_logged(ledger) == []


def test_sync_now_over_http_takes_in_what_the_accountant_registered_too(
    database_url: str, target: tuple[str, str], tmp_path: Path
) -> None:
    """`POST /v1/sync/run` answers at once and asks the two-way targets behind the answer (no
    dispatcher or poller runs in this process: only the run can have asked)."""
    table, url = target
    config = tmp_path / "subledger.toml"
    config.write_text(table + 'direction = "both"\npoll_seconds = 3600\n')
    settings = Settings(database_url=database_url, api_keys=API_KEYS, config=config)
    with TestClient(create_app(settings)) as client:
        answer = client.post("/v1/events", json={"events": EVENTS}, headers=WRITE)
        assert answer.status_code == 201, answer.text
        assert run_once(database_url, config) == 0, "the contact and the invoice delivered"
        register_payment(url)

        answer = client.post("/v1/sync/run", headers=ADMIN)
        assert answer.status_code == 202, answer.text
        deadline = time.monotonic() + 60
        while not payments_logged(client) and time.monotonic() < deadline:
            time.sleep(0.2)
        [payment] = payments_logged(client)
        assert (payment["invoice_id"], payment["amount"]) == ("inv_once", GROSS)
