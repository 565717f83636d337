"""`/v1/sync/*` on SQLite and PostgreSQL, against a Billy sandbox served over real HTTP: the
delivery log paged and shown with attempts, retries and replays with their refusals, and the
reconciliation with every difference it finds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from subledger.adapters.sandbox import serving
from subledger.adapters.sandbox.billy import BillySandboxSettings, create_billy_app
from subledger.api.http.app import create_app
from subledger.api.settings import Settings
from subledger.api.sync import Sync
from tests.conftest import ADMIN, API_KEYS, READ, WRITE

TOKEN = "sandbox-token-for-api-tests"

EVENTS: list[dict[str, Any]] = [
    {
        "id": "evt_c1",
        "type": "customer.created",
        "data": {
            "customer_id": "cus_1",
            "name": "Alpha ApS",
            "customer_number": "1001",
            "country": "DK",
            "kind": "company",
        },
    },
    {
        "id": "evt_c2",
        "type": "customer.created",
        "data": {
            "customer_id": "cus_2",
            "name": "Beta ApS",
            "customer_number": "1002",
            "country": "DK",
            "kind": "company",
        },
    },
    *(
        {
            "id": f"evt_i{n}",
            "type": "invoice.issued",
            "data": {
                "invoice_id": f"inv_{n}",
                "customer_id": customer,
                "issue_date": "2026-01-05",
                "number": f"A-{n}",
                "currency": "DKK",
                "lines": [
                    {
                        "line_id": "1",
                        "product_id": product,
                        "quantity": "1",
                        "unit_amount": 10000,
                        "vat_rate": "0.25",
                        "period_start": "2026-01-05",
                        "period_end": "2026-02-05",
                    }
                ],
            },
        }
        for n, customer, product in ((1, "cus_1", "pro"), (2, "cus_2", "pro"), (3, "cus_2", "gold"))
    ),
    {
        "id": "evt_p1",
        "type": "payment.received",
        "data": {
            "payment_id": "pay_1",
            "invoice_id": "inv_1",
            "amount": 12500,
            "currency": "DKK",
            "method": "card",
            "received_on": "2026-01-10",
        },
    },
]

#: A company with an e-mail and a public customer with an EAN: one invoice is e-mailed, one
#: e-invoiced.
PEOPLE: list[dict[str, Any]] = [
    {
        "id": "evt_c1",
        "type": "customer.created",
        "data": {
            "customer_id": "cus_1",
            "name": "Alpha ApS",
            "country": "DK",
            "kind": "company",
            "email": "billing@alpha.dk",
        },
    },
    {
        "id": "evt_c2",
        "type": "customer.created",
        "data": {
            "customer_id": "cus_2",
            "name": "Kommunen",
            "country": "DK",
            "kind": "public",
            "vat_number": "29189919",
            "ean": "5798000000001",
        },
    },
]


@pytest.fixture
def billy() -> Iterator[str]:
    with serving(create_billy_app(BillySandboxSettings(token=TOKEN))) as url:
        with httpx.Client(base_url=f"{url}/v2", headers={"X-Access-Token": TOKEN}) as client:
            deferred = client.get("/accounts", params={"accountNo": 7400}).json()["accounts"][0]
            body = {"product": {"name": "Pro", "productNo": "pro", "accountId": deferred["id"]}}
            client.post("/products", json=body).raise_for_status()  # "gold" is missing
        yield url


@pytest.fixture
def app(
    request: pytest.FixtureRequest, database_url: str, billy: str, tmp_path: Path
) -> Iterator[TestClient]:
    """The service syncing to a Billy sandbox; its projections folded whole, or in as many
    partitions by customer as a test's parameter says."""
    config = tmp_path / "subledger.toml"
    config.write_text(f'[targets.billy]\nurl = "{billy}/v2"\ntoken = "{TOKEN}"\n')
    settings = Settings(
        database_url=database_url,
        api_keys=API_KEYS,
        config=config,
        projection_partitions=getattr(request, "param", 1),
    )
    with TestClient(create_app(settings)) as client:
        answer = client.post("/v1/events", json={"events": EVENTS}, headers=WRITE)
        assert answer.status_code in (200, 201), answer.text
        yield client


def delivered(client: TestClient, target: str = "billy") -> Sync:
    """Enqueue and deliver everything that can be, as a dispatcher would."""
    sync: Sync = client.app.state.sync  # type: ignore[attr-defined]
    sync.enqueue()
    while sync.dispatcher.deliver_one(target):
        pass
    return sync


def messages(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    found, after = [], None
    while True:
        query = {**params, **({"after": after} if after else {})}
        answer = client.get("/v1/sync/messages", params=query, headers=READ)
        assert answer.status_code == 200, answer.text
        found += answer.json()["messages"]
        after = answer.json()["next"]
        if after is None:
            return found


@pytest.mark.parametrize("app", [1, 3], indirect=True, ids=["whole", "3-partitions"])
def test_messages_are_paged_filtered_by_status_and_shown_with_their_attempts(
    app: TestClient,
) -> None:
    """The same messages, in the same order, whether the outbox is folded whole or in
    partitions (read as one)."""
    delivered(app)
    everything = messages(app, limit=2)
    assert [m["kind"] for m in everything].count("contact") == 2
    assert len(everything) == 8, "2 contacts, 3 invoices, 1 payment, 2 months' vouchers"
    failed = messages(app, status="failed")
    assert [m["source"] for m in failed] == ["evt_i3"], "the invoice of an unknown product"
    assert "gold" in failed[0]["last_error"]
    held = [m for m in messages(app, status="pending") if m["customer_id"] == "cus_2"]
    assert held == [], "nothing of cus_2 comes after its failed invoice"

    shown = app.get(f"/v1/sync/messages/{failed[0]['id']}", headers=READ).json()
    assert shown["status"] == "failed" and len(shown["attempts"]) == 1
    assert shown["attempts"][0]["outcome"] == "failed"
    sent = next(m for m in everything if m["status"] == "sent" and m["kind"] == "invoice")
    attempt = app.get(f"/v1/sync/messages/{sent['id']}", headers=READ).json()["attempts"][0]
    assert any(line.startswith("POST /invoices → 200") for line in attempt["requests"])
    assert TOKEN not in str(attempt), "no credential reaches the delivery log"

    assert app.get("/v1/sync/messages/nope", headers=READ).status_code == 404
    assert app.get("/v1/sync/messages", params={"after": "x!"}, headers=READ).status_code == 422
    assert app.get("/v1/sync/messages", params={"status": "lost"}, headers=READ).status_code == 422


def test_only_a_failed_message_is_retried_and_only_by_an_admin(app: TestClient) -> None:
    delivered(app)
    failed = messages(app, status="failed")[0]
    sent = messages(app, status="sent")[0]
    path = "/v1/sync/messages/{}/retry"
    assert app.post(path.format(failed["id"]), headers=READ).status_code == 403
    refused = app.post(path.format(sent["id"]), headers=ADMIN)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "NOT_FAILED"
    assert app.post(path.format("nope"), headers=ADMIN).status_code == 404
    retried = app.post(path.format(failed["id"]), headers=ADMIN)
    assert retried.status_code == 202 and retried.json()["status"] == "pending"


def test_a_replay_needs_one_kind_of_range_and_a_known_target(app: TestClient) -> None:
    delivered(app)

    def replay(body: dict[str, Any]) -> httpx.Response:
        return app.post("/v1/sync/replay", json=body, headers=ADMIN)

    assert replay({"target": "billy"}).status_code == 422
    both = {"target": "billy", "all": True, "from_position": 1}
    assert replay(both).status_code == 422
    assert replay({"target": "dinero", "all": True}).status_code == 404
    by_date = replay({"target": "billy", "from_date": "2026-01-01", "to_date": "2026-01-09"})
    assert by_date.status_code == 202 and by_date.json()["replayed"] == 3, "the invoices"
    everything = replay({"target": "billy", "all": True})
    assert everything.json()["replayed"] == 5, "the invoices are pending already"
    delivered(app)
    assert {m["status"] for m in messages(app)} == {"sent", "failed"}


def test_reconciliation_lists_every_difference_and_says_when_the_target_is_down(
    app: TestClient, billy: str, database_url: str, tmp_path: Path
) -> None:
    delivered(app)
    report = app.get("/v1/sync/reconciliation", params={"target": "billy"}, headers=READ).json()
    assert report["differences"] == [
        {"kind": "invoice", "number": "A-3", "problem": "missing at the target"}
    ]
    assert report["ours"]["invoices"] == 3 and report["theirs"]["invoices"] == 2
    assert report["ours"]["paid"] == report["theirs"]["paid"] == 12500

    with httpx.Client(base_url=f"{billy}/v2", headers={"X-Access-Token": TOKEN}) as client:
        contact = client.get("/contacts", params={"contactNo": "1001"}).json()["contacts"][0]
        product = client.get("/products", params={"productNo": "pro"}).json()["products"][0]
        line = {"productId": product["id"], "unitPrice": 10, "quantity": 1}
        body = {
            "type": "invoice",
            "currencyId": "DKK",
            "paymentTermsDays": 14,
            "invoiceNo": "Z-9",
            "contactId": contact["id"],
            "entryDate": "2026-01-06",
            "lines": [line],
        }
        made = client.post("/invoices", json={"invoice": body})
        assert made.status_code == 200, made.text
    report = app.get("/v1/sync/reconciliation", params={"target": "billy"}, headers=READ).json()
    assert {"kind": "invoice", "number": "Z-9", "problem": "only at the target"} in report[
        "differences"
    ]
    unknown = app.get("/v1/sync/reconciliation", params={"target": "x"}, headers=READ)
    assert unknown.status_code == 404

    config = tmp_path / "down.toml"
    config.write_text(f'[targets.billy]\nurl = "http://127.0.0.1:9/v2"\ntoken = "{TOKEN}"\n')
    settings = Settings(database_url=database_url, api_keys=API_KEYS, config=config)
    with TestClient(create_app(settings)) as down:
        answer = down.get("/v1/sync/reconciliation", params={"target": "billy"}, headers=READ)
    assert answer.status_code == 502 and answer.json()["error"]["code"] == "TARGET_UNAVAILABLE"


def test_syncing_needs_a_database() -> None:
    settings = Settings(database_url="memory://", api_keys=API_KEYS)
    with TestClient(create_app(settings)) as client:
        answer = client.get("/v1/sync/messages", headers=READ)
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "SYNC_UNAVAILABLE"


def test_a_caller_without_a_key_is_refused_before_syncing_is_found_unavailable() -> None:
    settings = Settings(database_url="memory://", api_keys=API_KEYS)
    with TestClient(create_app(settings)) as client:
        anonymous = client.get("/v1/sync/messages")
        reader = client.post("/v1/sync/replay", headers=READ, json={"target": "billy", "all": True})
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "UNAUTHORIZED"
    assert reader.status_code == 403 and reader.json()["error"]["code"] == "FORBIDDEN"


def test_invoices_are_emailed_or_e_invoiced_once_as_configured(
    database_url: str, billy: str, tmp_path: Path
) -> None:
    config = tmp_path / "delivering.toml"
    config.write_text(
        f'[targets.billy]\nurl = "{billy}/v2"\ntoken = "{TOKEN}"\nemail = true\ne_invoice = true\n'
    )
    invoices = [e for e in EVENTS if e["type"] == "invoice.issued"][:2]
    settings = Settings(database_url=database_url, api_keys=API_KEYS, config=config)
    with TestClient(create_app(settings)) as client:
        answer = client.post("/v1/events", json={"events": PEOPLE + invoices}, headers=WRITE)
        assert answer.status_code in (200, 201), answer.text
        sync = delivered(client)
        sync.delivery.replay("billy", datetime.now(UTC), dates=("", "9999-12-31"))
        delivered(client)
        assert messages(client, status="failed") == []
    summary = httpx.get(f"{billy}/_sandbox/summary").json()["counts"]
    assert summary["emails"] == 1, "the company's invoice, e-mailed once despite the replay"
    assert summary["invoiceDeliveries"] == 1, "the public customer's, to its EAN, once"
