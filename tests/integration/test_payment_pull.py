"""Two-way payments against each target's sandbox, served over real HTTP, on SQLite and
PostgreSQL: what an accountant registers at the target (`POST /_sandbox/payments`) comes into
the log once, with its `source` and the method of its account; ours never come back; a payment
deleted at the target is reported, not undone; and the ids and methods are derived as
docs/sync.md says.

Expected figures are what the test registered, worked out beside them."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

import httpx
import pytest
from fastapi.testclient import TestClient

from subledger.adapters.sandbox import serving
from subledger.adapters.sandbox.billy import BillySandboxSettings, create_billy_app
from subledger.adapters.sandbox.dinero import DineroSandboxSettings, create_dinero_app
from subledger.adapters.sandbox.faults import FaultSettings
from subledger.adapters.sync.poller import refunded_payment
from subledger.adapters.sync.pulled import method_for, pulled_event_id, pulled_id
from subledger.api.http.app import create_app
from subledger.api.settings import ConfigurationError, Settings
from subledger.api.sync import Sync, read_targets
from subledger.domain.chart import DEFAULT_CHART, Chart
from tests.conftest import API_KEYS, READ, WRITE

TOKEN = "pull-token"
DINERO_CLIENT = ("pull-client", "pull-secret")
ORGANIZATION = 515151
#: The namespace docs/sync.md gives pulled payments' event ids.
NAMESPACE = UUID("4f1d0a5c-8a43-4b0e-9d61-6c3e0b7f2a19")


def _invoice(n: int, amount: int) -> dict[str, Any]:
    return {
        "id": f"evt_i{n}",
        "type": "invoice.issued",
        "data": {
            "invoice_id": f"inv_{n}",
            "customer_id": "cus_1",
            "issue_date": "2026-01-05",
            "due_date": "2026-01-19",
            "number": f"P-{n}",
            "currency": "DKK",
            "lines": [
                {
                    "product_id": "pro",
                    "quantity": "1",
                    "unit_amount": amount,
                    "vat_rate": "0.25",
                    "period_start": "2026-01-05",
                    "period_end": "2026-02-05",
                }
            ],
        },
    }


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
    _invoice(1, 10000),  # gross 12,500
    _invoice(2, 8000),  # gross 10,000
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


@pytest.fixture(params=["billy", "dinero"])
def sandbox(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """A sandbox of each kind, served: its kind and its URL (Billy with the product `pro`
    booking to deferred revenue, as docs/sync.md asks)."""
    kind = request.param
    if kind == "billy":
        with serving(create_billy_app(BillySandboxSettings(token=TOKEN))) as url:
            headers = {"X-Access-Token": TOKEN}
            with httpx.Client(base_url=f"{url}/v2", headers=headers) as client:
                deferred = client.get("/accounts", params={"accountNo": 7400}).json()
                account = deferred["accounts"][0]["id"]
                body = {"product": {"name": "Pro", "productNo": "pro", "accountId": account}}
                client.post("/products", json=body).raise_for_status()
            yield kind, url
        return
    settings = DineroSandboxSettings(
        client_id=DINERO_CLIENT[0],
        client_secret=DINERO_CLIENT[1],
        api_key=TOKEN,
        organization_id=ORGANIZATION,
        faults=FaultSettings(rate_limit=0),
    )
    with serving(create_dinero_app(settings)) as url:
        yield kind, url


def _config(path: Path, kind: str, url: str, extra: str = "") -> Path:
    lines = [f"[targets.{kind}]", f'token = "{TOKEN}"', 'direction = "both"', "poll_seconds = 5"]
    if kind == "billy":
        lines.append(f'url = "{url}/v2"')
    else:
        lines += [
            f'url = "{url}"',
            f'organization_id = "{ORGANIZATION}"',
            f'client_id = "{DINERO_CLIENT[0]}"',
            f'client_secret = "{DINERO_CLIENT[1]}"',
            "requests_per_minute = 60000",
        ]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


@pytest.fixture
def app(database_url: str, sandbox: tuple[str, str], tmp_path: Path) -> Iterator[TestClient]:
    kind, url = sandbox
    config = _config(tmp_path / "subledger.toml", kind, url)
    settings = Settings(database_url=database_url, api_keys=API_KEYS, config=config)
    with TestClient(create_app(settings)) as client:
        answer = client.post("/v1/events", json={"events": EVENTS}, headers=WRITE)
        assert answer.status_code in (200, 201), answer.text
        yield client


def delivered(client: TestClient, kind: str) -> Sync:
    sync: Sync = client.app.state.sync  # type: ignore[attr-defined]
    sync.enqueue()
    while sync.dispatcher.deliver_one(kind):
        pass
    return sync


def register(url: str, invoice: str, amount: str, account: int, **more: Any) -> str:
    """The accountant registers a payment at the target; the target's id of it."""
    body = {"invoice": invoice, "amount": float(amount), "date": "2026-01-20", "account": account}
    answer = httpx.post(f"{url}/_sandbox/payments", json={**body, **more})
    assert answer.status_code == 201, answer.text
    made = answer.json()
    return str(made.get("id") or made.get("Id"))


def payments_at(kind: str, url: str) -> int:
    counts = httpx.get(f"{url}/_sandbox/summary").json()["counts"]
    return int(counts["bankPayments"] if kind == "billy" else counts["payments"])


def logged(client: TestClient, *types: str) -> list[dict[str, Any]]:
    answer = client.get("/v1/events", params={"limit": 1000}, headers=READ)
    assert answer.status_code == 200, answer.text
    return [event for event in answer.json()["events"] if event["type"] in types]


def test_what_the_accountant_registers_comes_in_once_with_its_source_and_is_not_sent_back(
    app: TestClient, sandbox: tuple[str, str]
) -> None:
    kind, url = sandbox
    sync = delivered(app, kind)
    assert payments_at(kind, url) == 1, "our payment of inv_1"

    # Into MobilePay's account (5820): 62.50 on P-2; and 10.00 back on P-1 from the card
    # acquirer's (5810).
    paid = register(url, "P-2", "62.50", 5820)
    back = register(url, "P-1", "10.00", 5810, refund=True)

    first = sync.poller.poll(kind)
    assert (first.appended, first.refused, first.deleted) == (2, [], [])
    received = [e for e in logged(app, "payment.received") if "source" in e["data"]]
    assert [e["data"] for e in received] == [
        {
            "payment_id": f"{kind}:payment:{paid}",
            "invoice_id": "inv_2",
            "amount": 6250,
            "currency": "DKK",
            "method": "mobilepay",
            "received_on": "2026-01-20",
            "source": {"target": kind, "reference": paid},
        }
    ]
    assert received[0]["id"] == str(uuid5(NAMESPACE, f"{kind}\n{paid}"))
    refunds = logged(app, "payment.refunded")
    assert [e["data"] for e in refunds] == [
        {
            "refund_id": f"{kind}:refund:{back}",
            "payment_id": "pay_1",  # the only payment with 10.00 left to refund
            "amount": 1000,
            "refunded_on": "2026-01-20",
            "source": {"target": kind, "reference": back},
        }
    ]

    again = sync.poller.poll(kind)
    assert (again.appended, again.new) == (0, []), "a second poll appends nothing"

    delivered(app, kind)
    assert payments_at(kind, url) == 3, "what came from the target is not sent back to it"
    failed = app.get("/v1/sync/messages", params={"status": "failed"}, headers=READ).json()
    assert failed["messages"] == []

    report = app.get("/v1/sync/reconciliation", params={"target": kind}, headers=READ).json()
    assert report["differences"] == []
    # Paid: 12,500 (ours) + 6,250 - 1,000 = 17,750; open: 12,500 + 10,000 - 17,750 = 4,750.
    assert report["ours"]["paid"] == report["theirs"]["paid"] == 17750
    assert report["ours"]["open_balance"] == report["theirs"]["open_balance"] == 4750

    audit = app.get("/v1/audit/invoice/inv_2", headers=READ).json()
    shown = [e["data"].get("source") for e in audit["events"] if e["type"] == "payment.received"]
    assert shown == [{"target": kind, "reference": paid}]


def test_a_payment_deleted_at_the_target_is_reported_once_and_kept_in_the_log(
    app: TestClient, sandbox: tuple[str, str]
) -> None:
    kind, url = sandbox
    sync = delivered(app, kind)
    paid = register(url, "P-2", "100.00", 5800)
    assert sync.poller.poll(kind).appended == 1
    reports: list[dict[str, Any]] = []
    sync.poller.notify = reports.append

    gone = httpx.delete(f"{url}/_sandbox/payments/{paid}")
    assert gone.status_code == 200, gone.text
    first = sync.poller.poll(kind)
    assert (first.appended, first.new) == (0, [])
    wanted = {
        "kind": "payment",
        "target": kind,
        "number": "P-2",
        "problem": "deleted at the target",
        "invoice_id": "inv_2",
        "reference": paid,
        "event_id": str(uuid5(NAMESPACE, f"{kind}\n{paid}")),
        "payment_id": f"{kind}:payment:{paid}",
        "amount": 10000,
        "currency": "DKK",
    }
    assert reports == [{"event": "sync.payment.deleted", **wanted}]
    sync.poller.poll(kind)
    assert len(reports) == 1, "reported once"

    kept = [e for e in logged(app, "payment.received") if "source" in e["data"]]
    assert [e["data"]["amount"] for e in kept] == [10000], "not undone in the log"
    report = app.get("/v1/sync/reconciliation", params={"target": kind}, headers=READ).json()
    assert wanted in report["differences"]


def test_the_accountants_endpoint_is_as_strict_as_the_rest(
    app: TestClient, sandbox: tuple[str, str]
) -> None:
    kind, url = sandbox
    delivered(app, kind)

    def post(body: Any) -> httpx.Response:
        return httpx.post(f"{url}/_sandbox/payments", json=body)

    good = {"invoice": "P-2", "amount": 10.0, "date": "2026-01-20", "account": 5800}
    missing = post({"invoice": "P-2"})
    assert missing.status_code == 422
    assert set(missing.json()["validationErrors"]) == {"amount", "date", "account"}
    assert post({**good, "note": "x"}).status_code == 422, "an unknown field"
    assert post({**good, "refund": "yes"}).status_code == 422
    assert post({**good, "exchange_rate": "7.46"}).status_code == 422, "a rate is a number"
    assert post({**good, "exchange_rate": 0}).status_code == 422
    assert post([good]).status_code == 422
    unknown = post({**good, "invoice": "P-404"})
    assert unknown.status_code in (400, 422), "no such invoice"
    assert post({**good, "date": "2026-02-30"}).status_code in (400, 422)
    assert post({**good, "amount": 10.005}).status_code in (400, 422), "a fraction of an øre"
    assert post({**good, "account": 1000}).status_code in (400, 422), "no bank account"
    assert httpx.delete(f"{url}/_sandbox/payments/nope").status_code in (400, 404)
    assert payments_at(kind, url) == 1, "nothing was registered"


def _foreign_invoice(n: int, currency: str, unit_amount: int) -> dict[str, Any]:
    event = _invoice(n, unit_amount)
    event["data"]["currency"] = currency
    return event


def target_balances(kind: str, url: str) -> dict[str, tuple[str, int]]:
    """Each invoice's currency and what it still owes, by our number, read off the target's own
    API (minor units, by the currency's decimals written out here)."""
    decimals = {"DKK": 2, "EUR": 2, "JPY": 0, "KWD": 3}

    def in_minor(major: Any, currency: str) -> int:
        shifted = Decimal(str(major)).scaleb(decimals[currency])
        assert shifted == shifted.to_integral_value()
        return int(shifted)

    if kind == "billy":
        headers = {"X-Access-Token": TOKEN}
        found = httpx.get(f"{url}/v2/invoices", headers=headers).json()["invoices"]
        return {
            str(i["invoiceNo"]): (i["currencyId"], in_minor(i["balance"], i["currencyId"]))
            for i in found
            if i["type"] == "invoice"
        }
    form = {"grant_type": "password", "username": TOKEN, "password": TOKEN}
    token = httpx.post(f"{url}/dineroapi/oauth/token", data=form, auth=DINERO_CLIENT)
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    listed = httpx.get(
        f"{url}/v1/{ORGANIZATION}/invoices",
        params={"fields": "Guid,ExternalReference,Currency"},
        headers=headers,
    ).json()["Collection"]
    balances = {}
    for invoice in listed:
        held = httpx.get(
            f"{url}/v2/{ORGANIZATION}/invoices/{invoice['Guid']}/payments", headers=headers
        ).json()
        currency = invoice["Currency"]
        balances[invoice["ExternalReference"]] = (
            currency,
            in_minor(held["RemainingAmount"], currency),
        )
    return balances


def receivable(client: TestClient, currency: str) -> int:
    answer = client.get(
        "/v1/ledger/trial-balance",
        params={"currency": currency, "as_of": "2099-12-31"},
        headers=READ,
    )
    assert answer.status_code == 200, answer.text
    rows = answer.json()["accounts"]
    return sum(row["balance"] for row in rows if row["role"] == "receivable")


def test_foreign_payments_and_refunds_come_in_in_their_currency_at_the_rate_the_bank_used(
    app: TestClient, sandbox: tuple[str, str]
) -> None:
    kind, url = sandbox
    foreign = [
        _foreign_invoice(3, "EUR", 10000),  # gross 125.00 EUR
        _foreign_invoice(4, "JPY", 8000),  # gross 10,000 JPY
        _foreign_invoice(5, "KWD", 8000),  # gross 10.000 KWD
    ]
    answer = app.post("/v1/events", json={"events": foreign}, headers=WRITE)
    assert answer.status_code in (200, 201), answer.text
    sync = delivered(app, kind)
    before = {c: receivable(app, c) for c in ("EUR", "JPY", "KWD")}
    assert before == {"EUR": 12500, "JPY": 10000, "KWD": 10000}

    # The bank's rates (kroner per unit), not the invoices': each payment into the card
    # acquirer's kroner account (5810). Billy counts the cash in the account's currency, so the
    # accountant gives the kroner; Dinero takes the invoice's currency and works the kroner out.
    # (invoice, in the invoice's currency, kroner, rate, refund)
    registered = [
        ("P-3", "125.00", "931.88", "7.4550", False),  # 125 × 7.4550 = 931.875
        ("P-3", "25.00", "186.50", "7.46", True),
        ("P-4", "10000", "437.00", "0.0437", False),
        ("P-5", "10.000", "223.11", "22.3105", False),  # 223.105
    ]
    unrated = {"invoice": "P-3", "amount": 931.88, "date": "2026-01-20", "account": 5810}
    if kind == "billy":
        refused = httpx.post(f"{url}/_sandbox/payments", json=unrated)
        assert refused.status_code == 422, "Billy needs cashExchangeRate from a kroner account"
        assert "cashExchangeRate" in refused.text
    else:
        rated_dkk = {**unrated, "invoice": "P-2", "exchange_rate": 7.46}
        assert httpx.post(f"{url}/_sandbox/payments", json=rated_dkk).status_code == 400
    ids = []
    for number, figure, kroner, rate, refund in registered:
        amount = kroner if kind == "billy" else figure
        extra = {"refund": True} if refund else {}
        body = {"invoice": number, "amount": float(amount), "date": "2026-01-20"}
        answer = httpx.post(
            f"{url}/_sandbox/payments",
            json={**body, "account": 5810, "exchange_rate": float(rate), **extra},
        )
        assert answer.status_code == 201, answer.text
        made = answer.json()
        ids.append(str(made.get("id") or made.get("Id")))
    eur, back, jpy, kwd = ids

    first = sync.poller.poll(kind)
    assert (first.appended, first.refused, first.deleted) == (4, [], [])
    pulled = [
        e for e in logged(app, "payment.received", "payment.refunded") if "source" in e["data"]
    ]
    # The rate each target recorded: Billy the bank payment's cashExchangeRate as given;
    # Dinero the kroner it booked over the amount in the invoice's currency.
    rates = (
        ["7.455", "7.46", "0.0437", "22.3105"]
        if kind == "billy"
        else ["7.45504", "7.46", "0.0437", "22.311"]  # 931.88/125, 186.50/25, 223.11/10
    )
    assert [e["data"] for e in pulled] == [
        {
            "payment_id": f"{kind}:payment:{eur}",
            "invoice_id": "inv_3",
            "amount": 12500,
            "currency": "EUR",
            "method": "card",
            "received_on": "2026-01-20",
            "exchange_rate": rates[0],
            "source": {"target": kind, "reference": eur},
        },
        {
            "refund_id": f"{kind}:refund:{back}",
            "payment_id": f"{kind}:payment:{eur}",
            "amount": 2500,
            "refunded_on": "2026-01-20",
            "exchange_rate": rates[1],
            "source": {"target": kind, "reference": back},
        },
        {
            "payment_id": f"{kind}:payment:{jpy}",
            "invoice_id": "inv_4",
            "amount": 10000,
            "currency": "JPY",
            "method": "card",
            "received_on": "2026-01-20",
            "exchange_rate": rates[2],
            "source": {"target": kind, "reference": jpy},
        },
        {
            "payment_id": f"{kind}:payment:{kwd}",
            "invoice_id": "inv_5",
            "amount": 10000,
            "currency": "KWD",
            "method": "card",
            "received_on": "2026-01-20",
            "exchange_rate": rates[3],
            "source": {"target": kind, "reference": kwd},
        },
    ]
    again = sync.poller.poll(kind)
    assert (again.appended, again.new, again.refused) == (0, [], []), (
        "polling again appends nothing"
    )

    delivered(app, kind)
    assert payments_at(kind, url) == 1 + 4, "nothing is sent back to the target"
    # Paid 125.00, 25.00 back: 25.00 EUR owed; the JPY and KWD invoices paid in full.
    after = {c: receivable(app, c) for c in ("EUR", "JPY", "KWD")}
    assert after == {"EUR": 2500, "JPY": 0, "KWD": 0}
    theirs = target_balances(kind, url)
    for number, currency in (("P-3", "EUR"), ("P-4", "JPY"), ("P-5", "KWD")):
        assert theirs[number] == (currency, after[currency])
    report = app.get("/v1/sync/reconciliation", params={"target": kind}, headers=READ).json()
    assert report["differences"] == []


def test_a_refund_waits_for_the_payment_it_refunds(
    app: TestClient, sandbox: tuple[str, str]
) -> None:
    kind, url = sandbox
    sync = delivered(app, kind)
    # Money back on P-2, which nothing has paid yet: no payment to refund.
    back = register(url, "P-2", "20.00", 5800, refund=True)
    first = sync.poller.poll(kind)
    assert (first.appended, len(first.refused)) == (0, 1)
    assert logged(app, "payment.refunded") == []
    # Once the payment is registered too, the next poll takes it in, then the refund of it.
    paid = register(url, "P-2", "100.00", 5800)
    second = sync.poller.poll(kind)
    assert (second.appended, second.refused) == (2, [])
    (refund,) = logged(app, "payment.refunded")
    assert refund["data"]["payment_id"] == f"{kind}:payment:{paid}"
    assert refund["data"]["refund_id"] == f"{kind}:refund:{back}"
    assert sync.poller.poll(kind).appended == 0


def test_pulled_ids_are_derived_from_the_target_and_its_reference() -> None:
    assert pulled_event_id("billy", "abc") == str(uuid5(NAMESPACE, "billy\nabc"))
    assert pulled_event_id("billy", "abc") == pulled_event_id("billy", "abc")
    assert pulled_event_id("billy", "abc") != pulled_event_id("dinero", "abc")
    assert pulled_event_id("billy", "abc") != pulled_event_id("billy", "abd")
    assert pulled_id("billy", "payment", "abc") == "billy:payment:abc"
    long = pulled_id("billy", "refund", "x" * 200)
    assert len(long) <= 128 and long.startswith("billy:refund:")


def test_the_method_is_read_back_from_the_account_through_the_mapping() -> None:
    # The default chart: 5800 the default bank account, 5810 card, 5820 mobilepay.
    assert method_for("5810", {}, DEFAULT_CHART) == "card"
    assert method_for("5820", {}, DEFAULT_CHART) == "mobilepay"
    assert method_for("5800", {}, DEFAULT_CHART) == "bank_transfer"
    assert method_for("9999", {}, DEFAULT_CHART) == "bank_transfer", "none of our bank accounts"
    assert method_for("6810", {"5810": "6810"}, DEFAULT_CHART) == "card", "ours → theirs, back"
    own = Chart.from_mapping({"bank": {"default": "5800", "bank_transfer": "5830"}})
    assert method_for("5830", {}, own) == "bank_transfer"
    assert method_for("5800", {}, own) == "other"


def test_a_refund_at_the_target_refunds_the_latest_payment_with_enough_left() -> None:
    payments = {"a": [5000, 0], "b": [3000, 2500], "c": [1000, 0]}
    assert refunded_payment(payments, 500) == "c"
    assert refunded_payment(payments, 2000) == "a", "b has 500 left, c 1,000"
    assert refunded_payment(payments, 6000) is None


def test_direction_and_poll_seconds_are_read_and_checked(tmp_path: Path) -> None:
    def read(extra: str) -> Any:
        path = tmp_path / "subledger.toml"
        path.write_text(f'[targets.billy]\ntoken = "t"\n{extra}\n')
        return read_targets(Settings(database_url="memory://", config=path))

    assert (read("")[0].direction, read("")[0].poll_seconds) == ("push", 60.0)
    both = read('direction = "both"\npoll_seconds = 15')[0]
    assert (both.direction, both.poll_seconds) == ("both", 15.0)
    for bad in ('direction = "pull"', "poll_seconds = 0", 'poll_seconds = "5"'):
        with pytest.raises(ConfigurationError):
            read(bad)
