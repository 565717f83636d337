"""Money in the Billy sandbox: amounts in each currency's own decimals (JPY 0, DKK 2, KWD 3),
rounded half away from zero; exchange rates on invoices and across a payment's currencies; the
balance modifiers that record what payments and credit notes did; and payment terms.

Every expected figure here is worked out by hand in the comments beside it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.billy_sandbox_kit import (
    Sandbox,
    account_id,
    approved_invoice,
    contact,
    credit_note,
    fresh_client,
    invoice,
    invoice_body,
    listed,
    pay,
    payment_body,
    product,
    read_invoice,
    refusal,
    refused_fields,
    running_sandbox,
    write,
)

DEFAULT_RATES = {
    "EUR": 7.4604,
    "GBP": 8.6,
    "JPY": 0.0436,
    "KWD": 22.6,
    "NOK": 0.64,
    "SEK": 0.65,
    "USD": 6.9,
}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    yield from running_sandbox()


@pytest.fixture
def billy(sandbox: Sandbox) -> Iterator[httpx.Client]:
    yield from fresh_client(sandbox)


def one_line(client: httpx.Client, unit_price: float, quantity: float = 1) -> list[dict[str, Any]]:
    return [{"productId": product(client), "unitPrice": unit_price, "quantity": quantity}]


def totals(document: dict[str, Any]) -> tuple[Any, Any, Any]:
    return document["amount"], document["tax"], document["grossAmount"]


# Amounts in the currency's own decimals


def test_a_yen_invoice_has_whole_yen_rounded_half_away_from_zero(billy: httpx.Client) -> None:
    # 1.5 × 1500 = 2250 yen; VAT 25% of 2250 = 562.5, rounded away from zero: 563.
    created = invoice(
        billy, contact(billy)["id"], currencyId="JPY", lines=one_line(billy, 1500, 1.5)
    )
    assert totals(created) == (2250, 563, 2813)
    # A unit price of 99.5 yen is 100 yen (half away from zero), 125 with VAT.
    rounded = invoice(billy, contact(billy)["id"], currencyId="JPY", lines=one_line(billy, 99.5))
    assert rounded["lines"][0]["unitPrice"] == 100
    assert totals(rounded) == (100, 25, 125)


def test_a_dinar_invoice_keeps_three_decimals(billy: httpx.Client) -> None:
    # 10.1235 KWD is 10123.5 fils, rounded to 10124: 10.124; VAT 10124 × 0.25 = 2531 fils.
    created = invoice(billy, contact(billy)["id"], currencyId="KWD", lines=one_line(billy, 10.1235))
    assert created["lines"][0]["unitPrice"] == 10.124
    assert totals(created) == (10.124, 2.531, 12.655)


def test_a_krone_price_with_half_an_ore_rounds_up(billy: httpx.Client) -> None:
    # 0.125 DKK is 12.5 øre: 13 øre; VAT 13 × 0.25 = 3.25: 3 øre.
    created = invoice(billy, contact(billy)["id"], lines=one_line(billy, 0.125))
    assert totals(created) == (0.13, 0.03, 0.16)


@pytest.mark.parametrize("code", ["XYZ", "dkk", "DKKR", "XAU"])
def test_an_invoice_in_anything_but_an_active_iso_currency_is_refused(
    billy: httpx.Client, code: str
) -> None:
    body = invoice_body(billy, contact(billy)["id"], currencyId=code)
    answer = billy.post("/invoices", json={"invoice": body})
    assert set(refused_fields(answer, "invoice")) == {"currencyId"}


def test_a_contacts_default_currency_must_be_an_active_iso_code_and_is_kept(
    billy: httpx.Client,
) -> None:
    assert contact(billy, currencyId="EUR")["currencyId"] == "EUR"
    body = {"name": "A", "countryId": "DK", "paymentTermsDays": 8, "currencyId": "EURO"}
    answer = billy.post("/contacts", json={"contact": body})
    assert set(refused_fields(answer, "contact")) == {"currencyId"}


def test_product_prices_are_read_in_their_own_currency(billy: httpx.Client) -> None:
    prices = [
        {"unitPrice": 1500.4, "currencyId": "JPY"},
        {"unitPrice": 12.3456, "currencyId": "KWD"},
        {"unitPrice": 99.995, "currencyId": "DKK"},
    ]
    made = write(billy, "POST", "/products", "product", name="Plan", prices=prices)
    # 1500.4 yen: 1500; 12345.6 fils: 12346; 9999.5 øre: 10000.
    assert [p["unitPrice"] for p in made["products"][0]["prices"]] == [1500, 12.346, 100.0]
    bad = [{"unitPrice": 1, "currencyId": "ABC"}]
    answer = billy.post("/products", json={"product": {"name": "Plan", "prices": bad}})
    assert set(refused_fields(answer, "product")) == {"prices[0].currencyId"}


# Exchange rates on invoices


def test_the_sandbox_starts_with_its_table_of_todays_rates(sandbox: Sandbox) -> None:
    assert sandbox.get("/_sandbox/rates") == DEFAULT_RATES


def test_an_invoice_in_the_base_currency_has_the_rate_one_whatever_is_sent(
    billy: httpx.Client,
) -> None:
    assert invoice(billy, contact(billy)["id"], exchangeRate=7)["exchangeRate"] == 1


def test_a_foreign_invoice_takes_the_rate_given_or_todays(billy: httpx.Client) -> None:
    buyer = contact(billy)["id"]
    assert invoice(billy, buyer, currencyId="EUR")["exchangeRate"] == 7.4604
    assert invoice(billy, buyer, currencyId="EUR", exchangeRate=7.5)["exchangeRate"] == 7.5
    for wrong in (0, -7.46, "7.46"):
        body = invoice_body(billy, buyer, currencyId="EUR", exchangeRate=wrong)
        answer = billy.post("/invoices", json={"invoice": body})
        assert set(refused_fields(answer, "invoice")) == {"exchangeRate"}


def test_a_currency_without_todays_rate_needs_one_given(billy: httpx.Client) -> None:
    buyer = contact(billy)["id"]
    body = invoice_body(billy, buyer, currencyId="CHF")
    answer = billy.post("/invoices", json={"invoice": body})
    assert set(refused_fields(answer, "invoice")) == {"exchangeRate"}
    assert invoice(billy, buyer, currencyId="CHF", exchangeRate=7.02)["exchangeRate"] == 7.02


def test_the_rate_table_can_be_changed_and_a_reset_restores_it(
    sandbox: Sandbox, billy: httpx.Client
) -> None:
    changed = sandbox.put_rates({"CHF": 7.02, "EUR": None, "USD": 7.1})
    assert changed.status_code == 200, changed.text
    without_euros = {code: rate for code, rate in DEFAULT_RATES.items() if code != "EUR"}
    assert changed.json() == {**without_euros, "CHF": 7.02, "USD": 7.1}
    buyer = contact(billy)["id"]
    assert invoice(billy, buyer, currencyId="CHF")["exchangeRate"] == 7.02
    assert invoice(billy, buyer, currencyId="USD")["exchangeRate"] == 7.1
    euros = billy.post("/invoices", json={"invoice": invoice_body(billy, buyer, currencyId="EUR")})
    assert set(refused_fields(euros, "invoice")) == {"exchangeRate"}
    httpx.post(f"{sandbox.url}/_sandbox/reset", timeout=5).raise_for_status()
    assert sandbox.get("/_sandbox/rates") == DEFAULT_RATES


def test_invalid_rates_are_refused_whole_naming_each(sandbox: Sandbox) -> None:
    answer = sandbox.put_rates({"XYZ": 1, "DKK": 1, "USD": 0, "GBP": "8.6", "SEK": 0.7})
    assert answer.status_code == 422
    body = answer.json()
    assert body["errorCode"] == "VALIDATION_ERROR"
    assert set(body["validationErrors"]) == {"XYZ", "DKK", "USD", "GBP"}
    assert sandbox.get("/_sandbox/rates") == DEFAULT_RATES, "nothing changed"
    assert sandbox.put_rates([1]).status_code == 422  # type: ignore[arg-type]


def test_a_draft_that_changes_currency_takes_the_new_currencys_rate(billy: httpx.Client) -> None:
    draft = invoice(billy, contact(billy)["id"], currencyId="EUR")
    changed = write(billy, "PUT", f"/invoices/{draft['id']}", "invoice", currencyId="USD")
    assert changed["invoices"][0]["exchangeRate"] == 6.9
    kept = write(billy, "PUT", f"/invoices/{draft['id']}", "invoice", contactMessage="Hej")
    assert kept["invoices"][0]["exchangeRate"] == 6.9


# Payments: cash in the cash account's currency


def test_cash_must_be_whole_minor_units_of_the_cash_accounts_currency(
    billy: httpx.Client,
) -> None:
    booked = approved_invoice(billy)
    answer = billy.post(
        "/bankPayments", json={"bankPayment": payment_body(billy, booked["id"], 100.005)}
    )
    assert set(refused_fields(answer, "bankPayment")) == {"cashAmount"}
    assert pay(billy, booked["id"], 100.01)["invoices"][0]["balance"] == 24.99


def test_a_payment_across_currencies_needs_a_cash_exchange_rate(billy: httpx.Client) -> None:
    booked = approved_invoice(billy, currencyId="JPY", lines=one_line(billy, 2000))
    body = payment_body(billy, booked["id"], 100)
    answer = billy.post("/bankPayments", json={"bankPayment": body})
    assert set(refused_fields(answer, "bankPayment")) == {"cashExchangeRate"}
    wrong = billy.post("/bankPayments", json={"bankPayment": {**body, "cashExchangeRate": "1"}})
    assert set(refused_fields(wrong, "bankPayment")) == {"cashExchangeRate"}


def test_a_yen_invoice_paid_in_kroner_moves_its_balance_by_the_converted_cash(
    billy: httpx.Client,
) -> None:
    # 2000 yen + 25% = 2500 yen, at today's 0.0436 DKK a yen. 100.00 DKK at 1 JPY = 0.0436 DKK
    # settles 100 / 0.0436 = 2293.58 yen: 2294, leaving 206. Booked at the invoice's rate, the
    # 2294 yen were 2294 × 0.0436 = 100.0184 DKK; 100.00 came in: a loss of 1.84 øre, -0.02.
    booked = approved_invoice(billy, currencyId="JPY", lines=one_line(billy, 2000))
    paid = pay(billy, booked["id"], 100, cashExchangeRate=0.0436)
    assert paid["invoices"][0]["balance"] == 206
    assert paid["bankPayments"][0]["cashExchangeRate"] == 0.0436
    modifier = paid["balanceModifiers"][0]
    assert (modifier["amount"], modifier["realizedCurrencyDifference"]) == (2294, -0.02)


def test_a_euro_invoice_paid_into_the_euro_account_ignores_any_cash_exchange_rate(
    billy: httpx.Client,
) -> None:
    # 100 EUR + 25% = 125 EUR; 125.00 EUR in cash settles it, whatever rate is sent.
    booked = approved_invoice(billy, currencyId="EUR")
    euros = account_id(billy, 5850)
    paid = pay(billy, booked["id"], 125, cashAccountId=euros, cashExchangeRate=99)
    assert (paid["invoices"][0]["balance"], paid["invoices"][0]["isPaid"]) == (0, True)
    assert paid["bankPayments"][0]["cashExchangeRate"] == 1
    assert paid["balanceModifiers"][0]["realizedCurrencyDifference"] == 0


def test_a_krone_invoice_paid_from_the_euro_account_converts_the_euros(
    billy: httpx.Client,
) -> None:
    # 1 DKK = 0.134 EUR: 13.40 EUR settle 13.40 / 0.134 = 100.00 DKK of the 125.00 owed.
    booked = approved_invoice(billy)
    euros = account_id(billy, 5850)
    body = payment_body(billy, booked["id"], 13.4, cashAccountId=euros)
    answer = billy.post("/bankPayments", json={"bankPayment": body})
    assert set(refused_fields(answer, "bankPayment")) == {"cashExchangeRate"}
    paid = pay(billy, booked["id"], 13.4, cashAccountId=euros, cashExchangeRate=0.134)
    assert paid["invoices"][0]["balance"] == 25.0
    assert paid["balanceModifiers"][0]["amount"] == 100.0


def test_a_dinar_invoice_is_settled_to_the_fils(billy: httpx.Client) -> None:
    # 4 KWD + 25% = 5.000 KWD. 45.20 DKK at 1 KWD = 22.6 DKK is exactly 2.000 KWD.
    booked = approved_invoice(billy, currencyId="KWD", lines=one_line(billy, 4))
    paid = pay(billy, booked["id"], 45.2, cashExchangeRate=22.6)
    assert paid["invoices"][0]["balance"] == 3.0
    assert paid["balanceModifiers"][0]["amount"] == 2.0


def test_a_cash_amount_that_converts_to_nothing_is_refused(billy: httpx.Client) -> None:
    # 0.01 DKK at 1 JPY = 0.0436 DKK is 0.23 yen: nothing at all in whole yen.
    booked = approved_invoice(billy, currencyId="JPY", lines=one_line(billy, 2000))
    body = payment_body(billy, booked["id"], 0.01, cashExchangeRate=0.0436)
    answer = billy.post("/bankPayments", json={"bankPayment": body})
    assert set(refused_fields(answer, "bankPayment")) == {"cashAmount"}


def test_a_fee_counts_towards_a_deposit_and_off_a_withdrawal(billy: httpx.Client) -> None:
    # 125.00 owed: 120.00 in cash and a 5.00 fee settle it. A refund of 30.00 with a 5.00 fee
    # gives the customer 25.00 back: the balance is 25.00 again.
    booked = approved_invoice(billy)
    fees = account_id(billy, 2750)
    paid = pay(billy, booked["id"], 120, feeAmount=5, feeAccountId=fees)
    assert (paid["invoices"][0]["balance"], paid["invoices"][0]["isPaid"]) == (0, True)
    refunded = pay(billy, booked["id"], 30, side="credit", feeAmount=5, feeAccountId=fees)
    assert refunded["invoices"][0]["balance"] == 25.0
    assert refunded["balanceModifiers"][0]["amount"] == -25.0


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"feeAmount": 5}, "feeAccountId"),
        ({"feeAmount": 5, "feeAccountId": "no-such-account"}, "feeAccountId"),
        ({"feeAccountId": "bank"}, "feeAccountId"),
        ({"feeAmount": 0.001, "feeAccountId": "expense"}, "feeAmount"),
        ({"isVoided": True}, "isVoided"),
    ],
)
def test_fees_and_a_voided_start_are_checked(
    billy: httpx.Client, fields: dict[str, Any], named: str
) -> None:
    booked = approved_invoice(billy)
    accounts = {"bank": account_id(billy, 5810), "expense": account_id(billy, 2750)}
    given = {k: accounts.get(v, v) if k == "feeAccountId" else v for k, v in fields.items()}
    body = payment_body(billy, booked["id"], 100, **given)
    answer = billy.post("/bankPayments", json={"bankPayment": body})
    assert set(refused_fields(answer, "bankPayment")) == {named}


# Daybook amounts


@pytest.mark.parametrize(
    ("currency", "amount"), [("DKK", 100.005), ("JPY", 100.5), ("KWD", 1.2345)]
)
def test_a_journal_amount_must_be_whole_minor_units_of_its_currency(
    billy: httpx.Client, currency: str, amount: float
) -> None:
    lines = [
        {"accountNo": 7400, "amount": amount, "side": "debit", "currencyId": currency},
        {"accountNo": 1000, "amount": amount, "side": "credit", "currencyId": currency},
    ]
    body = {"entryDate": "2025-03-31", "lines": lines}
    answer = billy.post("/daybookTransactions", json={"daybookTransaction": body})
    assert set(refused_fields(answer, "daybookTransaction")) == {
        "lines[0].amount",
        "lines[1].amount",
    }


def test_journal_lines_balance_per_currency_in_its_decimals(billy: httpx.Client) -> None:
    def post(debit: float, credit: float, currency: str) -> httpx.Response:
        lines = [
            {"accountNo": 7400, "amount": debit, "side": "debit", "currencyId": currency},
            {"accountNo": 1000, "amount": credit, "side": "credit", "currencyId": currency},
        ]
        body = {"entryDate": "2025-03-31", "lines": lines}
        return billy.post("/daybookTransactions", json={"daybookTransaction": body})

    problem = refused_fields(post(1.234, 1.233, "KWD"), "daybookTransaction")["lines"]
    assert "1.234" in problem and "1.233" in problem
    kept = post(1500, 1500, "JPY").json()["daybookTransactions"][0]["lines"]
    assert [(line["amount"], line["currencyId"]) for line in kept] == [(1500, "JPY")] * 2
    unknown = refused_fields(post(1, 1, "XYZ"), "daybookTransaction")
    assert set(unknown) == {"lines[0].currencyId", "lines[1].currencyId"}


# Balance modifiers


MODIFIER_FIELDS = {
    "id",
    "modifierReference",
    "subjectReference",
    "amount",
    "entryDate",
    "realizedCurrencyDifference",
    "isVoided",
}


def test_each_payment_and_approved_credit_note_leaves_a_balance_modifier(
    billy: httpx.Client,
) -> None:
    # 125.00 owed; paid 100.00 (modifier +100), credited 40 + 10 VAT (+50), refunded 30.00
    # (-30): 125 - 100 - 50 + 30 = 5.00 left.
    booked = approved_invoice(billy)
    payment = pay(billy, booked["id"], 100)["bankPayments"][0]["id"]
    answer = credit_note(billy, booked, 40, state="approved")
    assert answer.status_code == 200, answer.text
    note = answer.json()["invoices"][0]["id"]
    refund = pay(billy, booked["id"], 30, side="credit")["bankPayments"][0]["id"]
    modifiers = listed(billy, "balanceModifiers")
    assert all(set(m) == MODIFIER_FIELDS for m in modifiers)
    subject = f"invoice:{booked['id']}"
    assert [
        (m["modifierReference"], m["subjectReference"], m["amount"], m["entryDate"])
        for m in modifiers
    ] == [
        (f"bankPayment:{payment}", subject, 100.0, "2025-03-05"),
        (f"invoice:{note}", subject, 50.0, "2025-03-10"),
        (f"bankPayment:{refund}", subject, -30.0, "2025-03-05"),
    ]
    assert read_invoice(billy, booked["id"])["balance"] == 5.0
    one = billy.get(f"/balanceModifiers/{modifiers[1]['id']}").json()["balanceModifier"]
    assert one == modifiers[1]


def test_a_voided_payment_voids_its_modifier_and_gives_the_balance_back(
    billy: httpx.Client,
) -> None:
    booked = approved_invoice(billy)
    payment = pay(billy, booked["id"], 125)["bankPayments"][0]["id"]
    voided = write(billy, "PUT", f"/bankPayments/{payment}", "bankPayment", isVoided=True)
    assert voided["balanceModifiers"][0]["isVoided"] is True
    assert (voided["invoices"][0]["balance"], voided["invoices"][0]["isPaid"]) == (125.0, False)


def test_a_refund_against_a_credit_note_settles_it(billy: httpx.Client) -> None:
    # A paid invoice credited 40 + 10 VAT: the customer is owed 50.00, the note's balance
    # -50.00; paying that out (a credit, -50) brings it to 0.
    booked = approved_invoice(billy)
    pay(billy, booked["id"], 125)
    note = credit_note(billy, booked, 40, state="approved").json()["invoices"][0]
    assert note["balance"] == -50.0
    refunded = pay(billy, note["id"], 50, side="credit")["invoices"][0]
    assert (refunded["balance"], refunded["isPaid"]) == (0, True)


def test_an_invoice_embeds_or_sideloads_its_modifiers_on_request(billy: httpx.Client) -> None:
    booked = approved_invoice(billy)
    other = approved_invoice(billy)
    first = pay(billy, booked["id"], 25)["balanceModifiers"][0]
    second = pay(billy, booked["id"], 50)["balanceModifiers"][0]
    path = f"/invoices/{booked['id']}"
    assert "balanceModifiers" not in billy.get(path).json()["invoice"]

    embedded = billy.get(path, params={"include": "invoice.balanceModifiers:embed"}).json()
    assert embedded["invoice"]["balanceModifiers"] == [first, second]

    sideloaded = billy.get(path, params={"include": "invoice.balanceModifiers"}).json()
    assert sideloaded["invoice"]["balanceModifierIds"] == [first["id"], second["id"]]
    assert sideloaded["balanceModifiers"] == [first, second]

    include = "invoice.lines:embed,invoice.balanceModifiers:sideload"
    listing = billy.get("/invoices", params={"include": include}).json()
    assert [i["balanceModifierIds"] for i in listing["invoices"]] == [
        [first["id"], second["id"]],
        [],
    ]
    assert [i["id"] for i in listing["invoices"]] == [booked["id"], other["id"]]
    assert listing["balanceModifiers"] == [first, second]
    bad = billy.get(path, params={"include": "invoice.balanceModifiers:inline"})
    assert set(refused_fields(bad, "invoice")) == {"include"}


def test_balance_modifiers_are_read_only(billy: httpx.Client) -> None:
    refusal(
        billy.post("/balanceModifiers", json={"balanceModifier": {}}), 405, "METHOD_NOT_ALLOWED"
    )
    refusal(billy.get("/balanceModifiers/no-such-id"), 404, "RECORD_NOT_FOUND")


# Payment terms


@pytest.mark.parametrize(
    ("entry", "mode", "days", "due"),
    [
        ("2025-01-15", "net", 10, "2025-01-25"),
        ("2025-01-15", "netEndOfMonth", 10, "2025-02-10"),
        ("2024-02-10", "netEndOfMonth", 0, "2024-02-29"),
        ("2025-12-20", "net", 30, "2026-01-19"),
    ],
)
def test_the_due_date_follows_the_payment_terms(
    billy: httpx.Client, entry: str, mode: str, days: int, due: str
) -> None:
    created = invoice(
        billy,
        contact(billy)["id"],
        entryDate=entry,
        paymentTermsMode=mode,
        paymentTermsDays=days,
    )
    assert (created["paymentTermsMode"], created["paymentTermsDays"], created["dueDate"]) == (
        mode,
        days,
        due,
    )


def test_terms_default_to_net_and_a_draft_recomputes_its_due_date(billy: httpx.Client) -> None:
    draft = invoice(billy, contact(billy)["id"], entryDate="2025-01-15", paymentTermsDays=10)
    assert (draft["paymentTermsMode"], draft["dueDate"]) == ("net", "2025-01-25")
    path = f"/invoices/{draft['id']}"
    changed = write(billy, "PUT", path, "invoice", paymentTermsMode="netEndOfMonth")
    assert changed["invoices"][0]["dueDate"] == "2025-02-10"


def test_date_terms_keep_the_due_date_sent_and_the_days_must_agree(billy: httpx.Client) -> None:
    buyer = contact(billy)["id"]
    fixed = invoice(
        billy,
        buyer,
        entryDate="2025-01-15",
        paymentTermsMode="date",
        paymentTermsDays=17,
        dueDate="2025-02-01",
    )
    assert (fixed["paymentTermsMode"], fixed["dueDate"]) == ("date", "2025-02-01")

    def refused(**fields: Any) -> set[str]:
        body = invoice_body(billy, buyer, entryDate="2025-01-15", paymentTermsMode="date")
        answer = billy.post("/invoices", json={"invoice": {**body, **fields}})
        return set(refused_fields(answer, "invoice"))

    assert refused(paymentTermsDays=17) == {"dueDate"}
    assert refused(paymentTermsDays=10, dueDate="2025-02-01") == {"paymentTermsDays"}
    assert refused(paymentTermsDays=0, dueDate="2025-01-14") == {"dueDate"}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"paymentTermsMode": "unknown"}, "paymentTermsMode"),
        ({"paymentTermsMode": "Net"}, "paymentTermsMode"),
        ({"paymentTermsDays": -1}, "paymentTermsDays"),
        ({"paymentTermsDays": 8.0}, "paymentTermsDays"),
    ],
)
def test_invalid_invoice_terms_are_refused(
    billy: httpx.Client, fields: dict[str, Any], named: str
) -> None:
    body = invoice_body(billy, contact(billy)["id"], **fields)
    answer = billy.post("/invoices", json={"invoice": body})
    assert set(refused_fields(answer, "invoice")) == {named}


def test_a_contact_keeps_net_or_end_of_month_terms_but_not_a_fixed_date(
    billy: httpx.Client,
) -> None:
    kept = contact(billy, paymentTermsMode="netEndOfMonth", paymentTermsDays=30)
    assert (kept["paymentTermsMode"], kept["paymentTermsDays"]) == ("netEndOfMonth", 30)
    body = {"name": "A", "countryId": "DK", "paymentTermsDays": 8, "paymentTermsMode": "date"}
    answer = billy.post("/contacts", json={"contact": body})
    assert set(refused_fields(answer, "contact")) == {"paymentTermsMode"}


def test_an_invoice_does_not_take_its_contacts_terms(billy: httpx.Client) -> None:
    buyer = contact(billy, paymentTermsMode="netEndOfMonth", paymentTermsDays=30)["id"]
    created = invoice(billy, buyer, entryDate="2025-01-15", paymentTermsDays=5)
    assert (created["paymentTermsMode"], created["dueDate"]) == ("net", "2025-01-20")


# Rounding lines


def test_a_vat_free_rounding_line_lets_two_credits_take_a_lines_whole_vat(
    billy: httpx.Client,
) -> None:
    # The contract's example: 100.02 at 25% has VAT 25.01 (gross 125.03). Credited as 50.01 +
    # 50.01, each line's VAT at Billy is 12.50, but the second credit must carry 12.51: a
    # rounding line of 0.01 on a VAT-free product booked to 3670 makes its gross 62.52, and the
    # two credits (62.51 + 62.52) take the invoice's whole 125.03.
    rulesets = {r["abbreviation"]: r["id"] for r in listed(billy, "salesTaxRulesets")}
    rounding = product(
        billy,
        name="Øreafrunding",
        accountId=account_id(billy, 3670),
        salesTaxRulesetId=rulesets["DK0"],
    )
    booked = approved_invoice(billy, lines=one_line(billy, 100.02))
    assert booked["grossAmount"] == 125.03
    first = credit_note(billy, booked, 50.01, state="approved").json()["invoices"][0]
    lines = [
        {"productId": booked["lines"][0]["productId"], "unitPrice": 50.01},
        {"productId": rounding, "unitPrice": 0.01},
    ]
    second = credit_note(billy, booked, 0, state="approved", lines=lines).json()["invoices"][0]
    assert (first["tax"], first["grossAmount"]) == (12.5, 62.51)
    assert [line["tax"] for line in second["lines"]] == [12.5, 0]
    assert second["grossAmount"] == 62.52
    assert read_invoice(billy, booked["id"])["balance"] == 0
