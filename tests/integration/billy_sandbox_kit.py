"""What the Billy sandbox's test files share: a running sandbox, a client of it, and small
helpers that write Billy's requests the way a careful client would (every required field sent).

Each test file declares its own `sandbox` (module scope) and `billy` fixtures from
`running_sandbox` and `fresh_client`, so each file gets a server of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from subledger.adapters.sandbox import serving
from subledger.adapters.sandbox.billy import BillySandboxSettings, create_billy_app
from subledger.adapters.sandbox.faults import FaultSettings

TOKEN = "token-for-the-billy-sandbox-tests"
FAULTS_OFF = FaultSettings().model_dump()


@dataclass(frozen=True)
class Sandbox:
    app: FastAPI
    url: str

    def put_faults(self, **settings: Any) -> httpx.Response:
        return httpx.put(f"{self.url}/_sandbox/faults", json=settings, timeout=5)

    def put_rates(self, rates: dict[str, Any]) -> httpx.Response:
        return httpx.put(f"{self.url}/_sandbox/rates", json=rates, timeout=5)

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=5)
        response.raise_for_status()
        return response.json()


def running_sandbox() -> Iterator[Sandbox]:
    """A Billy sandbox served on a free port for as long as the generator is open."""
    app = create_billy_app(BillySandboxSettings(token=TOKEN))
    with serving(app) as url:
        yield Sandbox(app, url)


def fresh_client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """A client of the sandbox, freshly reset, with every fault off."""
    sandbox.app.state.faults.clock = time.monotonic
    sandbox.put_faults(**FAULTS_OFF).raise_for_status()
    httpx.post(f"{sandbox.url}/_sandbox/reset", timeout=5).raise_for_status()
    headers = {"X-Access-Token": TOKEN}
    with httpx.Client(base_url=f"{sandbox.url}/v2", headers=headers, timeout=5) as client:
        yield client


# Each write must succeed (200) and answers the records it changed.


def write(client: httpx.Client, method: str, path: str, singular: str, **fields: Any) -> Any:
    response = client.request(method, path, json={singular: fields})
    assert response.status_code == 200, response.text
    return response.json()


def refusal(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Billy's error envelope, checked; the body."""
    assert response.status_code == status, response.text
    body = dict(response.json())
    assert body["meta"] == {"statusCode": status, "success": False}
    assert body["errorCode"] == code
    assert body["errorMessage"]
    assert body["errorTime"]
    assert body["helpUrl"]
    return body


def refused_fields(response: httpx.Response, singular: str) -> dict[str, str]:
    """The attributes a 422 names under the resource's singular name."""
    body = refusal(response, 422, "VALIDATION_ERROR")
    return dict(body["validationErrors"][singular]["attributes"])


def listed(client: httpx.Client, plural: str, **params: Any) -> list[dict[str, Any]]:
    """The records of one list request (one page of up to 1000)."""
    response = client.get(f"/{plural}", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()[plural])


def account_id(client: httpx.Client, number: int) -> str:
    """The id of the account numbered `number`, picked from the whole list: Billy documents no
    `accountNo` filter."""
    return next(str(a["id"]) for a in listed(client, "accounts") if a["accountNo"] == number)


def contact(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    body = {"name": "Acme ApS", "countryId": "DK", "paymentTermsDays": 8, **fields}
    return dict(write(client, "POST", "/contacts", "contact", **body)["contacts"][0])


def ruleset_id(client: httpx.Client, name: str) -> str:
    return next(str(r["id"]) for r in listed(client, "salesTaxRulesets") if r["name"] == name)


def product(client: httpx.Client, ruleset: str | None = None, **fields: Any) -> str:
    body: dict[str, Any] = {"name": "Plan", "productNo": f"P-{time.monotonic_ns()}", **fields}
    if ruleset is not None:
        body["salesTaxRulesetId"] = ruleset_id(client, ruleset)
    return str(write(client, "POST", "/products", "product", **body)["products"][0]["id"])


def invoice_body(client: httpx.Client, contact_id: str, **fields: Any) -> dict[str, Any]:
    """A valid invoice body: every required field, overridden by `fields`."""
    body = {
        "contactId": contact_id,
        "entryDate": "2025-03-01",
        "currencyId": "DKK",
        "paymentTermsDays": 8,
        **fields,
    }
    if "lines" not in body:
        body["lines"] = [{"productId": product(client), "unitPrice": 100}]
    return body


def invoice(client: httpx.Client, contact_id: str, **fields: Any) -> dict[str, Any]:
    body = invoice_body(client, contact_id, **fields)
    return dict(write(client, "POST", "/invoices", "invoice", **body)["invoices"][0])


def approved_invoice(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    """An approved invoice (by default of 100.00 + 25% VAT in DKK) for a new contact."""
    return invoice(client, contact(client)["id"], state="approved", **fields)


def read_invoice(client: httpx.Client, invoice_id: str) -> dict[str, Any]:
    return dict(client.get(f"/invoices/{invoice_id}").json()["invoice"])


def payment_body(
    client: httpx.Client, subject_id: str, amount: float, side: str = "debit", **fields: Any
) -> dict[str, Any]:
    """A valid bank payment into account 5800 (DKK) unless `fields` say otherwise."""
    return {
        "entryDate": "2025-03-05",
        "cashAmount": amount,
        "cashSide": side,
        "cashAccountId": account_id(client, 5800),
        "associations": [{"subjectReference": f"invoice:{subject_id}"}],
        **fields,
    }


def pay(
    client: httpx.Client, subject_id: str, amount: float, side: str = "debit", **fields: Any
) -> Any:
    body = payment_body(client, subject_id, amount, side, **fields)
    return write(client, "POST", "/bankPayments", "bankPayment", **body)


def credit_note_body(credited: dict[str, Any], unit_price: float, **fields: Any) -> dict[str, Any]:
    return {
        "type": "creditNote",
        "creditedInvoiceId": credited["id"],
        "contactId": credited["contactId"],
        "entryDate": "2025-03-10",
        "currencyId": credited["currencyId"],
        "paymentTermsDays": 0,
        "lines": [{"productId": credited["lines"][0]["productId"], "unitPrice": unit_price}],
        **fields,
    }


def credit_note(
    client: httpx.Client, credited: dict[str, Any], unit_price: float, **fields: Any
) -> httpx.Response:
    body = credit_note_body(credited, unit_price, **fields)
    return client.post("/invoices", json={"invoice": body})
