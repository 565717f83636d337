"""The adapters against sandboxes as strict as Billy's and Dinero's documented APIs, over real
HTTP, one message at a time: each refusal kind the strict stand-ins brought to light.

- Billy requires payment terms: an invoice without a due date gets its method's terms, else the
  target's default, else the contact's.
- A list filter a service does not document may be ignored: a payment, a contact or an account
  is taken only if it is what was looked for (Billy answers every bank payment to a filter on
  `subjectReference`, every contact to one on `registrationNo`; Dinero refuses a contact filter
  on `Email`).
- Amounts leave with their currency's own decimals (JPY none, KWD three).
- A foreign-currency payment is sent in kroner at its exchange rate, or at the rate the target
  applied to its invoice; never its own figure as kroner.

Expected figures are worked out by hand in the comments beside them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from subledger.adapters.sandbox import serving
from subledger.adapters.sandbox.billy import BillySandboxSettings, create_billy_app
from subledger.adapters.sandbox.dinero import DineroSandboxSettings, create_dinero_app
from subledger.adapters.sandbox.faults import FaultSettings
from subledger.adapters.sync.billy import BillyTarget
from subledger.adapters.sync.common import TargetSettings
from subledger.adapters.sync.dinero import DineroTarget
from subledger.adapters.sync.log import Message
from subledger.adapters.sync.port import Trace
from subledger.api.settings import ConfigurationError, Settings
from subledger.api.sync import read_targets
from subledger.domain.chart import DEFAULT_CHART

TOKEN = "edge-token"
DINERO = {"client_id": "edge-client", "client_secret": "edge-secret", "api_key": "edge-key"}
ORGANIZATION = 777001
NOW = datetime(2026, 12, 6, tzinfo=UTC)


def message(kind: str, payload: dict[str, Any], source: str = "evt") -> Message:
    lane = str(payload.get("customer_id") or payload.get("customer", {}).get("customer_id", ""))
    return Message(
        id=f"{kind}:{source}",
        target="t",
        lane=lane,
        seq=1,
        kind=kind,
        source=source,
        dated="",
        payload=payload,
        status="sending",
        attempts=1,
        next_attempt_at=NOW,
        target_ids={},
        last_error=None,
        created_at=NOW,
        updated_at=NOW,
        sent_at=None,
    )


def customer(number: str = "1001", **fields: Any) -> dict[str, Any]:
    return {
        "customer_id": f"cus_{number}",
        "customer_number": number,
        "name": f"Customer {number}",
        "country": "DK",
        "kind": "company",
        **fields,
    }


def invoice(
    number: str,
    unit: int,
    currency: str = "DKK",
    who: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """One line, one unit at `unit` minor units, 25% VAT; `net` and `vat` worked out here."""
    vat = (unit * 25 + 50) // 100  # half up, for the positive amounts used here
    return {
        "invoice_id": f"inv_{number}",
        "number": number,
        "issue_date": "2026-03-02",
        "due_date": None,
        "currency": currency,
        "lines": [
            {
                "line_id": "1",
                "product_id": "plan",
                "description": "Plan",
                "quantity": "1",
                "unit_amount": unit,
                "discount_amount": 0,
                "vat_rate": "0.25",
                "net": unit,
                "vat": vat,
            }
        ],
        "net": unit,
        "vat": vat,
        "gross": unit + vat,
        "customer": who or customer(),
        **fields,
    }


def payment(
    invoice_number: str, amount: int, currency: str = "DKK", **fields: Any
) -> dict[str, Any]:
    return {
        "invoice_id": f"inv_{invoice_number}",
        "invoice_number": invoice_number,
        "currency": currency,
        "payment_id": f"pay_{invoice_number}_{amount}",
        "amount": amount,
        "method": "card",
        "date": "2026-03-05",
        "ordinal": 0,
        "customer": customer(),
        **fields,
    }


# Billy.


@pytest.fixture
def billy() -> Iterator[str]:
    with serving(create_billy_app(BillySandboxSettings(token=TOKEN))) as url:
        yield f"{url}/v2"


def billy_client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"X-Access-Token": TOKEN}, timeout=10)


def billy_target(url: str, **settings: Any) -> BillyTarget:
    target = TargetSettings(name="billy", kind="billy", url=url, token=TOKEN, **settings)
    return BillyTarget(target, DEFAULT_CHART)


def listed(client: httpx.Client, plural: str) -> list[dict[str, Any]]:
    answer = client.get(f"/{plural}", params={"pageSize": 1000})
    answer.raise_for_status()
    return list(answer.json()[plural])


def billy_product(client: httpx.Client) -> None:
    """The product our lines name, booking to deferred revenue (7400)."""
    deferred = next(a["id"] for a in listed(client, "accounts") if a["accountNo"] == 7400)
    body = {"product": {"name": "Plan", "productNo": "plan", "accountId": deferred}}
    client.post("/products", json=body).raise_for_status()


def billy_invoice(client: httpx.Client, number: str) -> dict[str, Any]:
    (found,) = [i for i in listed(client, "invoices") if str(i["invoiceNo"]) == number]
    return found


def test_billy_gets_the_terms_of_an_invoices_payment_method_when_it_has_no_due_date(
    billy: str,
) -> None:
    with billy_client(billy) as client:
        billy_product(client)
        target = billy_target(billy, payment_terms={"card": 0, "bank_transfer": 14})
        target.send(message("contact", customer()), Trace())
        target.send(
            message("invoice", invoice("A1", 10000, payment_method="bank_transfer")), Trace()
        )
        target.send(message("invoice", invoice("A2", 10000, payment_method="card")), Trace())
        # No terms for mobilepay and no default: the contact's own, 8 days (what a contact
        # the adapter creates gets when the mapping has no default).
        target.send(message("invoice", invoice("A3", 10000, payment_method="mobilepay")), Trace())
        dues = {n: billy_invoice(client, n)["dueDate"] for n in ("A1", "A2", "A3")}
    assert dues == {"A1": "2026-03-16", "A2": "2026-03-02", "A3": "2026-03-10"}


def test_billy_finds_a_payment_on_its_own_invoice_not_on_another_with_the_same_date_and_amount(
    billy: str,
) -> None:
    with billy_client(billy) as client:
        billy_product(client)
        target = billy_target(billy, payment_terms={"default": 8})
        target.send(message("contact", customer()), Trace())
        target.send(message("invoice", invoice("B1", 10000)), Trace())
        target.send(message("invoice", invoice("B2", 10000)), Trace())
        # A person registers B2's payment at Billy: 125.00 on 5 March into the card account.
        card = next(a["id"] for a in listed(client, "accounts") if a["accountNo"] == 5810)
        other = billy_invoice(client, "B2")
        body = {
            "entryDate": "2026-03-05",
            "cashAmount": 125,
            "cashSide": "debit",
            "cashAccountId": card,
            "associations": [{"subjectReference": f"invoice:{other['id']}"}],
        }
        client.post("/bankPayments", json={"bankPayment": body}).raise_for_status()

        ids = target.send(message("payment", payment("B1", 12500)), Trace())
        ours = billy_invoice(client, "B1")
        made = client.get(f"/bankPayments/{ids['payment']}").json()["bankPayment"]
    assert made["associations"][0]["subjectReference"] == f"invoice:{ours['id']}"
    assert Decimal(str(ours["balance"])) == 0, "B1's own payment was made, not B2's taken"


def test_billy_matches_a_contact_by_vat_number_only_if_it_has_that_number(billy: str) -> None:
    with billy_client(billy) as client:
        for name, vat in (("First ApS", "11111111"), ("Second ApS", "22222222")):
            contact = {
                "name": name,
                "countryId": "DK",
                "registrationNo": vat,
                "paymentTermsDays": 8,
            }
            client.post("/contacts", json={"contact": contact}).raise_for_status()
        target = billy_target(billy, match="vat_number")
        target.send(message("contact", customer("2002", vat_number="22222222")), Trace())
        contacts = {c["name"]: c for c in listed(client, "contacts")}
    assert len(contacts) == 2, "found, not created"
    assert str(contacts["Customer 2002"]["registrationNo"]) == "22222222"
    assert contacts["First ApS"]["contactNo"] in (None, ""), "the other contact is untouched"


def test_billy_gets_yen_without_decimals_and_dinar_with_three(billy: str) -> None:
    with billy_client(billy) as client:
        billy_product(client)
        target = billy_target(billy, payment_terms={"default": 8})
        target.send(message("contact", customer()), Trace())
        # 1,500 yen: VAT 375 yen. 12.345 KWD: VAT 3.08625 → 3.086 KWD.
        target.send(message("invoice", invoice("Y1", 1500, "JPY")), Trace())
        kwd = invoice("K1", 12345, "KWD")
        assert kwd["vat"] == 3086
        target.send(message("invoice", kwd), Trace())
        yen, dinar = billy_invoice(client, "Y1"), billy_invoice(client, "K1")
    assert (Decimal(str(yen["amount"])), Decimal(str(yen["tax"]))) == (1500, 375)
    assert (Decimal(str(dinar["amount"])), Decimal(str(dinar["tax"]))) == (
        Decimal("12.345"),
        Decimal("3.086"),
    )


def test_billy_takes_a_euro_payment_into_a_kroner_account_in_kroner_at_the_rate(
    billy: str,
) -> None:
    with billy_client(billy) as client:
        billy_product(client)
        target = billy_target(billy, payment_terms={"default": 8})
        target.send(message("contact", customer()), Trace())
        # 80.00 EUR + 20.00 VAT = 100.00 EUR, at 7.5 DKK/EUR as the invoice's rate.
        target.send(message("invoice", invoice("E1", 8000, "EUR", exchange_rate="7.5")), Trace())
        # Half at the payment's own rate 7.46: 50.00 EUR = 373.00 DKK; half at the invoice's
        # rate (7.5): 375.00 DKK.
        paid = payment("E1", 5000, "EUR", exchange_rate="7.46")
        first = target.send(message("payment", paid), Trace())
        rest = payment("E1", 5000, "EUR", payment_id="pay_E1_rest", ordinal=1)
        second = target.send(message("payment", rest, "evt2"), Trace())
        payments = [
            client.get(f"/bankPayments/{ids['payment']}").json()["bankPayment"]
            for ids in (first, second)
        ]
        balance = Decimal(str(billy_invoice(client, "E1")["balance"]))
    assert [Decimal(str(p["cashAmount"])) for p in payments] == [Decimal("373"), Decimal("375")]
    assert [Decimal(str(p["cashExchangeRate"])) for p in payments] == [
        Decimal("7.46"),
        Decimal("7.5"),
    ]
    assert balance == 0


# Dinero.


@pytest.fixture
def dinero() -> Iterator[str]:
    settings = DineroSandboxSettings(
        **DINERO, organization_id=ORGANIZATION, faults=FaultSettings(rate_limit=0)
    )
    with serving(create_dinero_app(settings)) as url:
        yield url


def dinero_target(url: str, **settings: Any) -> DineroTarget:
    target = TargetSettings(
        name="dinero",
        kind="dinero",
        url=url,
        token=DINERO["api_key"],
        organization_id=str(ORGANIZATION),
        client_id=DINERO["client_id"],
        client_secret=DINERO["client_secret"],
        token_url=f"{url}/dineroapi/oauth/token",
        **settings,
    )
    return DineroTarget(target, DEFAULT_CHART)


def dinero_client(url: str) -> httpx.Client:
    form = {"grant_type": "password", "username": DINERO["api_key"], "password": DINERO["api_key"]}
    auth = (DINERO["client_id"], DINERO["client_secret"])
    token = httpx.post(f"{url}/dineroapi/oauth/token", data=form, auth=auth).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    return httpx.Client(base_url=f"{url}/v1/{ORGANIZATION}", headers=headers, timeout=10)


def test_dinero_matches_a_contact_by_email_without_a_filter_dinero_does_not_document(
    dinero: str,
) -> None:
    with dinero_client(dinero) as client:
        made = {
            "Name": "Made by a person",
            "CountryKey": "DK",
            "IsPerson": False,
            "IsMember": False,
            "UseCvr": False,
            "Email": "books@example.dk",
        }
        client.post("/contacts", json=made).raise_for_status()
        target = dinero_target(dinero, match="email")
        target.send(message("contact", customer(email="Books@Example.dk")), Trace())
        contacts = client.get("/contacts", params={"fields": "Name,Email"}).json()["Collection"]
    assert [c["Name"] for c in contacts] == ["Customer 1001"], "found and updated, not created"


def test_dinero_gets_a_euro_payment_in_kroner_at_its_rate_or_the_invoices(dinero: str) -> None:
    with dinero_client(dinero) as client:
        target = dinero_target(dinero, payment_terms={"default": 8})
        target.send(message("contact", customer()), Trace())
        target.send(message("invoice", invoice("E1", 8000, "EUR")), Trace())
        # 50.00 EUR at its own 7.46: 373.00 DKK. 50.00 EUR without a rate: at the rate Dinero
        # applied to the invoice, the sandbox's 7.4604 of the day: 373.02 DKK.
        target.send(message("payment", payment("E1", 5000, "EUR", exchange_rate="7.46")), Trace())
        rest = payment("E1", 5000, "EUR", payment_id="pay_E1_rest")
        target.send(message("payment", rest, "evt2"), Trace())
        guid = client.get("/invoices", params={"fields": "Guid"}).json()["Collection"][0]["Guid"]
        base = dinero.rstrip("/") + f"/v2/{ORGANIZATION}"
        held = client.get(f"{base}/invoices/{guid}/payments").json()
    kroner = sorted(Decimal(str(p["Amount"])) for p in held["Payments"])
    euros = sorted(Decimal(str(p["AmountInForeignCurrency"])) for p in held["Payments"])
    assert kroner == [Decimal("373.00"), Decimal("373.02")]
    assert euros == [Decimal("50.00"), Decimal("50.00")]
    assert Decimal(str(held["RemainingAmount"])) == 0


# The configuration of terms and rounding.


def configured(tmp_path: Path, kind: str, lines: str) -> list[TargetSettings]:
    path = tmp_path / "subledger.toml"
    dinero = 'organization_id = "1"\nclient_id = "c"\nclient_secret = "s"\n'
    path.write_text(f'[targets.{kind}]\ntoken = "t"\n{dinero if kind == "dinero" else ""}{lines}\n')
    return read_targets(Settings(config=path))


def test_payment_terms_and_rounding_are_read_from_the_targets_table(tmp_path: Path) -> None:
    (billy_settings,) = configured(
        tmp_path,
        "billy",
        'payment_terms = { card = 0, bank_transfer = 14, default = 8 }\nrounding_product = "R1"',
    )
    assert billy_settings.payment_terms == {"card": 0, "bank_transfer": 14, "default": 8}
    assert billy_settings.rounding_product == "R1"
    (dinero_settings,) = configured(tmp_path, "dinero", "rounding_account = 3671")
    assert (dinero_settings.payment_terms, dinero_settings.rounding_account) == ({}, "3671")


@pytest.mark.parametrize(
    ("kind", "lines", "says"),
    [
        ("billy", "payment_terms = { card = -1 }", "payment_terms.card: must be greater than or"),
        ("billy", "payment_terms = { card = 400 }", "payment_terms.card: must be less than or"),
        ("billy", 'payment_terms = { card = "8" }', "payment_terms.card: must be a whole number"),
        ("billy", "payment_terms = { card = true }", "payment_terms.card: must be a whole number"),
        ("billy", "payment_terms = 8", "payment_terms: must be a table"),
        ("billy", "rounding_product = true", "rounding_product: must be a product number"),
        ("billy", 'rounding_account = "3670"', "rounding_account: unknown key"),
        ("dinero", 'rounding_account = "øre"', "rounding_account: must be an account number"),
        ("dinero", 'rounding_product = "R1"', "rounding_product: unknown key"),
    ],
)
def test_a_bad_term_or_rounding_setting_is_refused_with_its_place(
    tmp_path: Path, kind: str, lines: str, says: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(says)):
        configured(tmp_path, kind, lines)


def test_dinero_restores_our_contact_a_person_deleted_before_updating_it(dinero: str) -> None:
    with dinero_client(dinero) as client:
        target = dinero_target(dinero)
        ours = target.send(message("contact", customer()), Trace())["contact"]
        client.delete(f"/contacts/{ours}").raise_for_status()
        fresh = dinero_target(dinero)  # a process that remembers nothing
        again = fresh.send(message("contact", customer(name="Renamed ApS")), Trace())["contact"]
        record = client.get(f"/contacts/{ours}").json()
    assert again == ours
    assert record["DeletedAt"] is None
    assert record["Name"] == "Renamed ApS"
