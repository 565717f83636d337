"""What Billy and Dinero receive is exactly right, over real HTTP on PostgreSQL, against each
target's sandbox (as strict as the documented APIs): a generated business whose invoices carry
no due date, with customers in DKK, EUR, JPY (no decimals) and KWD (three) and lines credited in
parts, syncs completely through a fifth of the requests failing. Everything arrives once; each
invoice's open balance at the target is ours to the minor unit; each invoice's due date follows
the payment terms of its method; a foreign-currency payment's kroner follow its exchange rate;
reconciliation finds no difference.

The expected figures are worked out here from the events alone, with a plain computation of the
arithmetic of docs/specification.md (§2, VAT remainders included), never with the code under test."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.harness import server
from bench.sandboxes import (
    Dispatcher,
    Sandbox,
    append,
    books,
    configure,
    enqueue,
    environment,
    expected_books,
    in_minor,
    prepare,
    unbooked,
    wait_until_settled,
)
from subledger.api.demo.generator import Business

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(1200)]

ADMIN = "edge-tests-admin-secret"
KEYS = f"tests:{ADMIN}:read+admin"
#: The target's payment terms by method, in days (what the test configures and expects).
TERMS = {"card": 0, "mobilepay": 0, "bank_transfer": 14, "default": 8}
CURRENCIES = {"DKK": 40, "EUR": 20, "JPY": 20, "KWD": 20}
DECIMALS = {"DKK": 2, "EUR": 2, "JPY": 0, "KWD": 3}


@pytest.fixture(scope="module")
def business() -> list[dict[str, Any]]:
    """The business, every other foreign-currency document without its exchange rate (so
    that the target's own rate is used for those)."""
    events = list(
        Business(
            customers=48,
            months=14,
            seed=29,
            currencies=CURRENCIES,
            due_dates=False,
            exchange_rates=True,
            split_credits=True,
        ).events()
    )
    rated = [event for event in events if "exchange_rate" in event["data"]]
    for event in rated[::2]:
        del event["data"]["exchange_rate"]
    return events


# The contract's arithmetic, plainly.


def rounded(value: Fraction) -> int:
    """Half away from zero."""
    whole, rest = divmod(abs(value.numerator), value.denominator)
    if 2 * rest >= value.denominator:
        whole += 1
    return whole if value >= 0 else -whole


def expected_invoices(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each invoice by number: currency, issue date, method, gross and open balance (gross −
    credit notes' gross − payments + refunds), and each credit note's gross, from the events."""
    invoices: dict[str, dict[str, Any]] = {}
    by_id: dict[str, dict[str, Any]] = {}
    payments: dict[str, dict[str, Any]] = {}
    for event in events:
        data = event["data"]
        if event["type"] == "invoice.issued":
            lines = {}
            for position, line in enumerate(data["lines"], start=1):
                gross = rounded(Fraction(Decimal(line["quantity"])) * line["unit_amount"])
                net = gross - line.get("discount_amount", 0)
                vat = rounded(net * Fraction(Decimal(line["vat_rate"])))
                lines[line.get("line_id") or str(position)] = {
                    "net": net,
                    "vat": vat,
                    "rate": Fraction(Decimal(line["vat_rate"])),
                    "credited": 0,
                    "credited_vat": 0,
                }
            invoice = {
                "number": data.get("number") or data["invoice_id"],
                "currency": data["currency"],
                "issued": data["issue_date"],
                "method": data.get("payment_method"),
                "lines": lines,
                "gross": sum(line["net"] + line["vat"] for line in lines.values()),
                "credited": 0,
                "paid": 0,
            }
            invoice["balance"] = invoice["gross"]
            by_id[data["invoice_id"]] = invoices[invoice["number"]] = invoice
        elif event["type"] == "credit_note.issued":
            invoice = by_id[data["invoice_id"]]
            credits = data.get("lines") or [
                {"line_id": key, "amount": line["net"] - line["credited"]}
                for key, line in invoice["lines"].items()
                if line["net"] > line["credited"]
            ]
            for credit in credits:
                line = invoice["lines"][credit["line_id"]]
                if line["credited"] + credit["amount"] == line["net"]:
                    vat = line["vat"] - line["credited_vat"]
                else:
                    vat = rounded(credit["amount"] * line["rate"])
                line["credited"] += credit["amount"]
                line["credited_vat"] += vat
                invoice["balance"] -= credit["amount"] + vat
        elif event["type"] == "payment.received":
            invoice = by_id[data["invoice_id"]]
            payments[data["payment_id"]] = invoice
            invoice["balance"] -= data["amount"]
        elif event["type"] == "payment.refunded":
            payments[data["payment_id"]]["balance"] += data["amount"]
    return invoices


def due_day(invoice: dict[str, Any]) -> str:
    days = TERMS.get(invoice["method"] or "", TERMS["default"])
    return (date.fromisoformat(invoice["issued"]) + timedelta(days=days)).isoformat()


# What the target holds.


def held_invoices(box: Sandbox) -> dict[str, dict[str, Any]]:
    """Each invoice at the target by our number: currency, due date and open balance in the
    invoice's currency, and the kroner and foreign figures of its payments."""
    with box.client() as client:
        if box.kind == "billy":
            return _billy_invoices(client)
        return _dinero_invoices(client)


def _billy_invoices(client: httpx.Client) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    payments = {p["id"]: p for p in _billy_list(client, "bankPayments")}
    modifiers = _billy_list(client, "balanceModifiers")
    for invoice in _billy_list(client, "invoices"):
        if invoice["type"] != "invoice":
            continue
        paid = []
        for modifier in modifiers:
            reference = str(modifier["modifierReference"])
            if modifier["subjectReference"] != f"invoice:{invoice['id']}":
                continue
            if not reference.startswith("bankPayment:"):
                continue  # a credit note's
            payment = payments[reference.removeprefix("bankPayment:")]
            paid.append(
                (
                    abs(in_minor(modifier["amount"], invoice["currencyId"])),
                    in_minor(payment["cashAmount"], "DKK"),
                    payment.get("cashExchangeRate"),
                )
            )
        found[str(invoice["invoiceNo"])] = {
            "currency": invoice["currencyId"],
            "due": invoice["dueDate"],
            "balance": in_minor(invoice["balance"], invoice["currencyId"]),
            "rate": invoice.get("exchangeRate"),
            "payments": paid,
        }
    return found


def _billy_list(client: httpx.Client, plural: str) -> list[dict[str, Any]]:
    found, page = [], 1
    while True:
        body = client.get(f"/{plural}", params={"page": page, "pageSize": 1000}).json()
        found += body[plural]
        if page >= body["meta"]["paging"]["pageCount"]:
            return found
        page += 1


def _dinero_invoices(client: httpx.Client) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    page = 0
    base = str(client.base_url).replace("/v1/", "/v2/")
    while True:
        listed = client.get("/invoices", params={"page": page, "pageSize": 1000}).json()
        for row in listed["Collection"]:
            invoice = client.get(f"/invoices/{row['Guid']}").json()
            held = client.get(f"{base}/invoices/{row['Guid']}/payments").json()
            currency = invoice["Currency"]
            found[str(invoice["ExternalReference"])] = {
                "currency": currency,
                "due": invoice["PaymentDate"],
                "balance": in_minor(held["RemainingAmount"], currency),
                "rate": None,
                "payments": [
                    (
                        abs(
                            in_minor(
                                p["Amount"] if currency == "DKK" else p["AmountInForeignCurrency"],
                                currency,
                            )
                        ),
                        abs(in_minor(p["Amount"], "DKK")),
                        None,
                    )
                    for p in held["Payments"]
                ],
            }
        if len(listed["Collection"]) < 1000:
            return found
        page += 1


# The test.


def test_a_business_without_due_dates_in_four_currencies_syncs_exactly_through_faults(
    business: list[dict[str, Any]], postgres_url: str, target: Sandbox, tmp_path: Path
) -> None:
    invoices = expected_invoices(business)
    assert {invoice["currency"] for invoice in invoices.values()} == set(CURRENCIES)
    assert all(
        event["data"].get("due_date") is None
        for event in business
        if event["type"] == "invoice.issued"
    )
    split = sum(
        1
        for event in business
        if event["type"] == "credit_note.issued" and event["data"].get("lines")
    )
    assert split > 0, "lines are credited in parts"

    append(postgres_url, business)
    prepare(target, business)
    config = configure(tmp_path / "subledger.toml", target, timeout_seconds=1, payment_terms=TERMS)
    env = environment(postgres_url, config, target.kind)
    enqueue(env)
    target.twenty_percent_faults()
    with Dispatcher(env, workers=6):
        settled = wait_until_settled(postgres_url, target.kind, timeout=900)
    target.no_faults()
    assert settled["failed"] == 0, settled

    held = books(target)
    assert held.duplicates() == {}, "nothing is created twice"
    assert held == expected_books(business, postgres_url)
    assert unbooked(target) == 0

    there = held_invoices(target)
    assert set(there) == set(invoices)
    for number, ours in invoices.items():
        theirs = there[number]
        assert theirs["currency"] == ours["currency"], number
        assert theirs["balance"] == ours["balance"], (number, ours["currency"])
        assert theirs["due"] == due_day(ours), (number, ours["method"])
    _assert_kroner_follow_the_rates(business, there, target)

    with server(postgres_url, KEYS, base_env=env) as base:
        answer = httpx.get(
            f"{base}/v1/sync/reconciliation",
            params={"target": target.kind},
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=300,
        )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["differences"] == []
    assert report["ours"] == report["theirs"]


def _assert_kroner_follow_the_rates(
    events: list[dict[str, Any]], there: dict[str, dict[str, Any]], box: Sandbox
) -> None:
    """A foreign-currency payment's kroner are its amount at its own exchange rate when the
    event gives one, else at the rate the target applied to the invoice (Billy's invoice
    `exchangeRate`; at Dinero, which takes no rate, the sandbox's rate of the day): within an
    øre of the plain product (a target settles exactly the foreign amount, which may take an
    øre more or less), and never the foreign figure itself."""
    table = httpx.get(f"{box.url}/_sandbox/rates", timeout=10).json()
    table = table.get("rates", table)
    numbers: dict[str, str] = {}
    checked = {"event": 0, "target": 0}
    for event in events:
        data = event["data"]
        if event["type"] == "invoice.issued":
            numbers[data["invoice_id"]] = data.get("number") or data["invoice_id"]
        if event["type"] != "payment.received" or data["currency"] == "DKK":
            continue
        invoice = there[numbers[data["invoice_id"]]]
        if data.get("exchange_rate"):
            rate, source = Fraction(Decimal(data["exchange_rate"])), "event"
        elif box.kind == "billy":
            rate, source = Fraction(Decimal(str(invoice["rate"]))), "target"
        else:
            rate, source = Fraction(Decimal(str(table[data["currency"]]))), "target"
        exponent = DECIMALS[data["currency"]]
        kroner = rounded(data["amount"] * rate * Fraction(100, 10**exponent))
        matching = [p for p in invoice["payments"] if p[0] == data["amount"]]
        assert any(abs(p[1] - kroner) <= 1 for p in matching), (data, invoice["payments"], kroner)
        checked[source] += 1
    assert checked["event"] > 0 and checked["target"] > 0, checked
