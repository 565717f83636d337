"""Money in the Dinero sandbox: amounts in each currency's own decimals (JPY 0, DKK 2, KWD 3),
rounded half away from zero; active ISO 4217 currencies with a rate in the day's table only;
foreign documents answered and booked in DKK at their rate; payments on foreign invoices
settling in the invoice's currency with the difference booked as an exchange difference; and
the seeded accounts for øre rounding and exchange differences.

Every expected figure is worked out by hand in the comment beside it, from the seeded rates
(EUR 7.4604, JPY 0.0436, KWD 22.6 DKK per unit)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from subledger.adapters.sandbox import serving
from subledger.adapters.sandbox.dinero import create_dinero_app
from tests.integration.test_dinero_sandbox import (
    NOW,
    ORG,
    Sandbox,
    balances,
    bearer,
    book,
    booked,
    contact,
    invalid,
    invoice,
    line,
    pay,
    payments,
    read,
    settings,
    voucher_line,
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    app = create_dinero_app(settings())
    with serving(app) as url:
        yield Sandbox(app, url)


@pytest.fixture
def dinero(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """A client of a freshly reset sandbox (the seeded rates again) at `NOW`, with the rate
    limit off, holding a token for read and write."""
    sandbox.move_to(NOW)
    sandbox.app.state.faults.clock = time.monotonic
    sandbox.put_faults(rate_limit=0, fail_rate=0, throttle_rate=0, drop_rate=0).raise_for_status()
    httpx.post(f"{sandbox.url}/_sandbox/reset", timeout=5).raise_for_status()
    base = f"{sandbox.url}/v1/{ORG}"
    with httpx.Client(base_url=base, headers=bearer(sandbox.url), timeout=5) as client:
        yield client


def put_rates(sandbox: Sandbox, **rates: Any) -> httpx.Response:
    return httpx.put(f"{sandbox.url}/_sandbox/rates", json=rates, timeout=5)


def totals(document: dict[str, Any]) -> tuple[float, ...]:
    return (
        document["TotalExclVat"],
        document["TotalVat"],
        document["TotalInclVat"],
        document["TotalExclVatInDkk"],
        document["TotalInclVatInDkk"],
    )


# Amounts in the currency's decimals


def test_amounts_are_read_and_answered_in_their_currencys_own_decimals(
    dinero: httpx.Client,
) -> None:
    # 1000.5 JPY is 1001 yen (no decimals, half away from zero); 3 of them 3003, VAT
    # rhu(750.75) = 751, total 3754; in DKK 3003 × 0.0436 = 130.9308 and 3754 × 0.0436 = 163.6744.
    yen = invoice(dinero, Currency="JPY", ProductLines=[line(1000.5, Quantity=3)])
    assert yen["ProductLines"][0]["BaseAmountValue"] == 1001
    assert totals(yen) == (3003, 751, 3754, 130.93, 163.67)
    # 1.2345 KWD is 1.235 (1234.5 fils up); 2 of them 2.470, VAT rhu(617.5 fils) = 0.618,
    # total 3.088; in DKK 2.470 × 22.6 = 55.822 and 3.088 × 22.6 = 69.7888.
    dinar = invoice(dinero, Currency="KWD", ProductLines=[line(1.2345, Quantity=2)])
    assert dinar["ProductLines"][0]["BaseAmountValue"] == 1.235
    assert totals(dinar) == (2.47, 0.618, 3.088, 55.82, 69.79)
    # DKK: 0.125 is 13 øre and -0.125 is -13 (away from zero); VAT 25 øre and rhu(-3.25) = -3.
    kroner = invoice(dinero, ProductLines=[line(1), line(-0.125)])
    assert [pl["TotalAmount"] for pl in kroner["ProductLines"]] == [1.0, -0.13]
    assert totals(kroner) == (0.87, 0.22, 1.09, 0.87, 1.09)


def test_a_currency_must_be_an_active_iso_code_with_a_rate_today(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    for code in ("XYZ", "eur", "CHF", "DK"):
        body = {"Currency": code, "ProductLines": [line(1)]}
        assert invalid(dinero.post("/invoices", json=body)) == {"Currency"}, code
    no_rate = dinero.post("/invoices", json={"Currency": "CHF", "ProductLines": [line(1)]})
    assert "exchange rate" in no_rate.json()["validationErrors"]["Currency"]
    assert invalid(
        dinero.post(
            "/contacts",
            json={
                "Name": "Acme",
                "CountryKey": "CH",
                "IsPerson": False,
                "IsMember": False,
                "UseCvr": False,
                "PreferredInvoiceCurrencyKey": "XYZ",
            },
        )
    ) == {"PreferredInvoiceCurrencyKey"}

    changed = put_rates(sandbox, CHF=7.1, EUR=None)
    assert changed.status_code == 200, changed.text
    assert changed.json() == {
        "CHF": 7.1,
        "GBP": 8.6,
        "JPY": 0.0436,
        "KWD": 22.6,
        "NOK": 0.64,
        "SEK": 0.65,
        "USD": 6.9,
    }
    # 100 CHF + 25% is 125 CHF; at 7.1, 710.00 and 887.50 DKK.
    franc = invoice(dinero, Currency="CHF")
    assert totals(franc) == (100.0, 25.0, 125.0, 710.0, 887.5)
    assert invalid(dinero.post("/invoices", json={"Currency": "EUR", "ProductLines": [line(1)]}))
    for refused in ({"DKK": 1}, {"XXX": 1}, {"EUR": 0}, {"EUR": "7.46"}, {"EUR": -1}):
        assert put_rates(sandbox, **refused).status_code == 422, refused
    assert httpx.put(f"{sandbox.url}/_sandbox/rates", json=[1]).status_code == 422

    httpx.post(f"{sandbox.url}/_sandbox/reset").raise_for_status()
    assert sandbox.get("/_sandbox/rates")["EUR"] == 7.4604
    assert "CHF" not in sandbox.get("/_sandbox/rates")


def test_a_document_keeps_the_rate_of_the_day_it_was_saved(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    # 125 EUR at 7.4604 is 932.55 DKK (net 746.04); at 7.5, 937.50 (net 750.00).
    first = invoice(dinero, Currency="EUR")
    assert totals(first)[3:] == (746.04, 932.55)
    put_rates(sandbox, EUR=7.5).raise_for_status()
    assert totals(read(dinero, first["Guid"]))[3:] == (746.04, 932.55)
    second = invoice(dinero, Currency="EUR", ContactGuid=first["ContactGuid"])
    assert totals(second)[3:] == (750.0, 937.5)
    listed = dinero.get(
        "/invoices", params={"fields": "Guid,TotalExclVatInDkk,totalInclVatInDkk"}
    ).json()["Collection"]
    assert listed == [
        {"Guid": first["Guid"], "TotalExclVatInDkk": 746.04, "totalInclVatInDkk": 932.55},
        {"Guid": second["Guid"], "TotalExclVatInDkk": 750.0, "totalInclVatInDkk": 937.5},
    ]
    resaved = dinero.put(
        sandbox.api(f"/invoices/{first['Guid']}", "v1.2"),
        json={"Timestamp": first["TimeStamp"], "Currency": "EUR", "ProductLines": [line(100)]},
    )
    assert resaved.status_code == 200, resaved.text
    assert totals(read(dinero, first["Guid"]))[3:] == (750.0, 937.5)


def test_a_foreign_invoice_books_its_entries_in_dkk_at_its_rate(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    # Nets 100.00 EUR (on 1000, 25%) and 33.33 EUR (on 1010, none), VAT 25.00 EUR: 158.33 EUR.
    # Converted as running totals at 7.4604: 100.00 → 746.04; 133.33 → 994.695132, so 994.70
    # and 1010 gets 248.66; 158.33 → 1181.205132, so 1181.21 and the VAT 186.51.
    done = booked(dinero, Currency="EUR", ProductLines=[line(100), line(33.33, account=1010)])
    assert totals(done) == (133.33, 25.0, 158.33, 994.7, 1181.21)
    assert balances(sandbox) == {"1000": -746.04, "1010": -248.66, "5600": 1181.21, "7210": -186.51}
    # 1250 JPY (1000 net, 250 VAT) at 0.0436: 43.60 net, 54.50 in all.
    booked(dinero, Currency="JPY", ProductLines=[line(1000)])
    assert balances(sandbox) == {
        "1000": -789.64,
        "1010": -248.66,
        "5600": 1235.71,
        "7210": -197.41,
    }


# Payments


def test_a_foreign_payment_settles_in_the_invoices_currency_and_books_the_difference(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    # 125 EUR is 932.55 DKK on the receivable; 940.00 DKK came in: 7.45 gained on the rate.
    done = booked(dinero, Currency="EUR")
    paid = pay(dinero, done["Guid"], 940, AmountInForeignCurrency=125, ExternalReference="p-1")
    assert paid.status_code == 201, paid.text
    assert read(dinero, done["Guid"])["PaymentStatus"] == "Paid"
    assert balances(sandbox) == {"1000": -746.04, "3680": -7.45, "5800": 940.0, "7210": -186.51}
    listed = payments(sandbox, dinero, done["Guid"])
    (payment,) = listed["Payments"]
    assert (
        payment["Amount"],
        payment["AmountInForeignCurrency"],
        payment["ExternalReference"],
        payment["PaymentDate"],
    ) == (940.0, 125.0, "p-1", "2025-03-05")
    assert (
        listed["RemainingAmount"],
        listed["PaidAmount"],
        listed["InvoiceTotalIncludingReminderExpenses"],
    ) == (0, 125.0, 125.0)


def test_partial_foreign_payments_clear_the_receivable_to_the_ore(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    # 41.67 + 41.67 + 41.66 EUR; running totals at 7.4604: 310.874868 → 310.87, 621.749736 →
    # 621.75, 932.55: the parts 310.87, 310.88, 310.80 clear 932.55 exactly. 933.00 DKK came
    # in, so 0.45 is gained on the rate.
    done = booked(dinero, Currency="EUR")
    assert pay(dinero, done["Guid"], 310, AmountInForeignCurrency=41.67).status_code == 201
    partly = payments(sandbox, dinero, done["Guid"])
    assert (partly["RemainingAmount"], partly["PaidAmount"]) == (83.33, 41.67)
    assert read(dinero, done["Guid"])["PaymentStatus"] == "Booked"
    assert pay(dinero, done["Guid"], 311, AmountInForeignCurrency=41.67).status_code == 201
    assert pay(dinero, done["Guid"], 312, AmountInForeignCurrency=41.66).status_code == 201
    assert read(dinero, done["Guid"])["PaymentStatus"] == "Paid"
    assert balances(sandbox) == {"1000": -746.04, "3680": -0.45, "5800": 933.0, "7210": -186.51}


def test_money_paid_back_on_a_foreign_invoice_leaves_at_the_invoices_rate(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    # After 125 EUR for 940.00 DKK, -25 EUR go back as -190.00 DKK. At the invoice's rate the
    # receivable takes back 932.55 - 746.04 = 186.51; 3.49 is lost on the rate, so the
    # exchange differences are -7.45 + 3.49 = -3.96.
    done = booked(dinero, Currency="EUR")
    pay(dinero, done["Guid"], 940, AmountInForeignCurrency=125).raise_for_status()
    back = pay(dinero, done["Guid"], -190, AmountInForeignCurrency=-25, Description="Retur")
    assert back.status_code == 201, back.text
    listed = payments(sandbox, dinero, done["Guid"])
    assert (listed["RemainingAmount"], listed["PaidAmount"]) == (25.0, 100.0)
    assert balances(sandbox) == {
        "1000": -746.04,
        "3680": -3.96,
        "5600": 186.51,
        "5800": 750.0,
        "7210": -186.51,
    }


def test_remainder_is_fee_on_a_foreign_invoice_books_the_fee_at_its_rate(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    # 120 of 125 EUR paid with 900.00 DKK, the rest a fee: 120 EUR clear 895.248 → 895.25, the
    # fee the rest of 932.55, 37.30; 900.00 - 895.25 = 4.75 gained on the rate.
    done = booked(dinero, Currency="EUR")
    fee = pay(dinero, done["Guid"], 900, AmountInForeignCurrency=120, RemainderIsFee=True)
    assert fee.status_code == 201, fee.text
    assert read(dinero, done["Guid"])["PaymentStatus"] == "Paid"
    assert balances(sandbox) == {
        "1000": -746.04,
        "3620": 37.3,
        "3680": -4.75,
        "5800": 900.0,
        "7210": -186.51,
    }


def test_a_dkk_payment_takes_amount_and_an_equal_amount_in_foreign_currency_if_any(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    done = booked(dinero)
    assert invalid(pay(dinero, done["Guid"], 12, AmountInForeignCurrency=10)) == {
        "AmountInForeignCurrency"
    }
    assert pay(dinero, done["Guid"], 12, AmountInForeignCurrency=12).status_code == 201
    assert pay(dinero, done["Guid"], 13).status_code == 201
    listed = payments(sandbox, dinero, done["Guid"])
    assert [(p["Amount"], p["AmountInForeignCurrency"]) for p in listed["Payments"]] == [
        (12.0, 12.0),
        (13.0, 13.0),
    ]
    assert (listed["RemainingAmount"], listed["PaidAmount"]) == (100.0, 25.0)
    assert balances(sandbox) == {"1000": -100.0, "5600": 100.0, "5800": 25.0, "7210": -25.0}


@pytest.mark.parametrize(
    ("currency", "amount", "foreign", "named"),
    [
        ("DKK", 10.005, None, "Amount"),
        ("EUR", 10.005, 1.34, "Amount"),
        ("EUR", 10, 1.345, "AmountInForeignCurrency"),
        ("EUR", 10, -1.34, "AmountInForeignCurrency"),
        ("EUR", -10, 1.34, "AmountInForeignCurrency"),
        ("EUR", 10, 0, "AmountInForeignCurrency"),
        ("JPY", 10, 229.5, "AmountInForeignCurrency"),
        ("KWD", 10, 0.4425, "AmountInForeignCurrency"),
    ],
)
def test_a_payment_is_whole_minor_units_of_each_currency_and_of_one_sign(
    dinero: httpx.Client, currency: str, amount: float, foreign: float | None, named: str
) -> None:
    done = booked(dinero, Currency=currency)
    given = {} if foreign is None else {"AmountInForeignCurrency": foreign}
    assert invalid(pay(dinero, done["Guid"], amount, **given)) == {named}


@pytest.mark.parametrize(
    ("currency", "foreign", "remaining"),
    # 100 + 25% in each: 125 JPY less 120 is 5; 125.000 KWD less 0.442 is 124.558.
    [("JPY", 120, 5), ("KWD", 0.442, 124.558)],
)
def test_payments_are_read_in_the_invoices_currency(
    sandbox: Sandbox, dinero: httpx.Client, currency: str, foreign: float, remaining: float
) -> None:
    done = booked(dinero, Currency=currency)
    assert pay(dinero, done["Guid"], 10, AmountInForeignCurrency=foreign).status_code == 201
    listed = payments(sandbox, dinero, done["Guid"])
    assert (listed["PaidAmount"], listed["RemainingAmount"]) == (foreign, remaining)
    assert [(p["Amount"], p["AmountInForeignCurrency"]) for p in listed["Payments"]] == [
        (10.0, foreign)
    ]


# Credit notes, the rounding account, vouchers


def test_a_credit_note_takes_the_days_rate_and_credits_its_invoice_in_its_currency(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    # The invoice: 125 EUR at 7.4604 (932.55, net 746.04, VAT 186.51). At 7.5 the note of 50
    # EUR is 375.00 DKK (net 300.00, VAT 75.00).
    done = booked(dinero, Currency="EUR")
    put_rates(sandbox, EUR=7.5).raise_for_status()
    made = dinero.post(
        "/sales/creditnotes", json={"CreditNoteFor": done["Guid"], "ProductLines": [line(40)]}
    )
    assert made.status_code == 201, made.text
    note = dinero.get(f"/sales/creditnotes/{made.json()['Guid']}").json()
    assert (note["Currency"], *totals(note)) == ("EUR", 40.0, 10.0, 50.0, 300.0, 375.0)
    book(dinero, note, "/sales/creditnotes")
    assert payments(sandbox, dinero, done["Guid"])["RemainingAmount"] == 75.0
    assert balances(sandbox) == {"1000": -446.04, "5600": 557.55, "7210": -111.51}
    dollars = {"CreditNoteFor": done["Guid"], "Currency": "USD", "ProductLines": [line(1)]}
    assert invalid(dinero.post("/sales/creditnotes", json=dollars)) == {"Currency"}
    generated = dinero.post(
        f"/invoices/{done['Guid']}/generate-creditnote",
        json={"Timestamp": read(dinero, done["Guid"])["TimeStamp"]},
    )
    assert generated.status_code == 201, generated.text
    whole = dinero.get(f"/sales/creditnotes/{generated.json()['Guid']}").json()
    assert totals(whole)[3:] == (750.0, 937.5)


def test_rounding_and_exchange_accounts_are_seeded_without_vat(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    accounts = {a["AccountNumber"]: a for a in dinero.get("/accounts/entry").json()}
    assert (accounts[3670]["Name"], accounts[3670]["VatCode"]) == ("Øreafrunding", "none")
    assert (accounts[3680]["Name"], accounts[3680]["VatCode"]) == ("Kursdifferencer", "none")
    done = booked(dinero)
    # A VAT remainder of one øre as a line of its own on 3670: no VAT on it.
    lines = [line(40), line(0.01, account=3670)]
    made = dinero.post(
        "/sales/creditnotes", json={"CreditNoteFor": done["Guid"], "ProductLines": lines}
    )
    note = dinero.get(f"/sales/creditnotes/{made.json()['Guid']}").json()
    assert totals(note)[:3] == (40.01, 10.0, 50.01)
    book(dinero, note, "/sales/creditnotes")
    # The invoice's 125.00 less 50.01 stays on 5600; 3670 is debited the øre.
    assert balances(sandbox) == {"1000": -60.0, "3670": 0.01, "5600": 74.99, "7210": -15.0}
    back = [line(40), line(-0.01, account=3670)]
    other = dinero.post(
        "/sales/creditnotes", json={"CreditNoteFor": done["Guid"], "ProductLines": back}
    )
    assert dinero.get(f"/sales/creditnotes/{other.json()['Guid']}").json()["TotalInclVat"] == 49.99


def test_voucher_amounts_and_product_prices_are_money_in_dkk(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    body = {"VoucherDate": "2025-03-31", "ExternalReference": "x", "Lines": [voucher_line(10.005)]}
    assert invalid(dinero.post("/vouchers/manuel", json=body)) == {"Lines[0].Amount"}
    item = {"Id": "6f1c2d3e-0a4b-4c5d-8e6f-7a8b9c0d1e2f", "VoucherDate": "2025-03-31"}
    items = [{**item, "Lines": [voucher_line(0.001)]}]
    assert invalid(dinero.post(sandbox.api("/ledgeritems", "v1.2"), json=items)) == {
        "[0].Lines[0].Amount"
    }
    # 99.995 is 9999.5 øre, rounded away from zero to 100.00.
    product = {"AccountNumber": 1000, "BaseAmountValue": 99.995, "Quantity": 1, "Unit": "parts"}
    made = dinero.post("/products", json=product)
    assert made.status_code == 201, made.text
    assert dinero.get(f"/products/{made.json()['ProductGuid']}").json()["BaseAmountValue"] == 100.0


def test_a_contact_may_prefer_an_active_currency(dinero: httpx.Client) -> None:
    chosen = contact(dinero, PreferredInvoiceCurrencyKey="SEK")
    assert dinero.get(f"/contacts/{chosen}").json()["PreferredInvoiceCurrencyKey"] == "SEK"
