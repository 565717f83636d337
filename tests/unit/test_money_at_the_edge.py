"""Money as it leaves for Billy and Dinero and comes back: each currency's own decimals, exact
decimals on the wire, payment terms, the rounding line of a credit note whose VAT a target
computes itself, amounts moved between currencies, and `Retry-After` read and capped.

Expected values are worked out by hand (in the comments) or by a deliberately plain computation
in the test, never by the helpers under test."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from subledger.adapters.sync.billy import _settling
from subledger.adapters.sync.common import converted, credit_lines, invoice_terms, major, minor
from subledger.adapters.sync.http import decimal_json, exact_json, retry_after_seconds
from subledger.api.cli.demo import money


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [(12345, "DKK", "123.45"), (1500, "JPY", "1500"), (12345, "KWD", "12.345"), (5, "EUR", "0.05")],
)
def test_amounts_leave_with_their_currencys_own_decimals(
    amount: int, currency: str, text: str
) -> None:
    assert exact_json({"amount": major(amount, currency)}) == f'{{"amount":{text}}}'.encode()


@pytest.mark.parametrize(
    ("body", "currency", "amount"),
    [
        (b'{"a": 123.45}', "DKK", 12345),
        (b'{"a": 1500}', "JPY", 1500),
        (b'{"a": 12.345}', "KWD", 12345),
    ],
)
def test_amounts_read_back_in_their_currencys_minor_units(
    body: bytes, currency: str, amount: int
) -> None:
    assert minor(decimal_json(body)["a"], currency) == amount


def test_an_answer_with_a_fraction_is_read_exactly_not_as_a_float() -> None:
    # 0.1 + 0.2 as floats is 0.30000000000000004; as decimals it is 0.3.
    read = decimal_json(b'{"a": 0.1, "b": 0.2}')
    assert read["a"] + read["b"] == Decimal("0.3")


def test_a_quantity_and_a_rate_are_sent_as_the_decimals_they_are() -> None:
    assert exact_json([Decimal("1.5"), Decimal("7.4604")]) == b"[1.5,7.4604]"


def test_a_float_never_reaches_the_wire_from_an_amount() -> None:
    # 0.1 + 0.2 in floats would be written 0.30000000000000004.
    assert exact_json(major(10, "DKK") + major(20, "DKK")) == b"0.30"


# Payment terms.


def test_terms_come_from_the_due_date_first() -> None:
    payload = {"issue_date": "2026-03-01", "due_date": "2026-03-15", "payment_method": "card"}
    terms = invoice_terms(payload, {"card": 0, "default": 8})
    assert terms is not None
    assert (terms.days, terms.source) == (14, "due_date")


def test_without_a_due_date_terms_come_from_the_payment_method() -> None:
    payload = {"issue_date": "2026-03-01", "payment_method": "bank_transfer"}
    terms = invoice_terms(payload, {"card": 0, "bank_transfer": 14, "default": 8})
    assert terms is not None
    assert (terms.days, terms.source) == (14, "method")


def test_a_method_without_terms_takes_the_default() -> None:
    payload = {"issue_date": "2026-03-01", "payment_method": "mobilepay"}
    terms = invoice_terms(payload, {"card": 0, "default": 8})
    assert terms is not None
    assert (terms.days, terms.source) == (8, "default")


def test_without_due_date_or_mapping_the_contacts_terms_apply() -> None:
    assert invoice_terms({"issue_date": "2026-03-01", "payment_method": "card"}, {}) is None


# Rounding lines.


def _target_vat(net: int, rate: str) -> int:
    """VAT as a target computes it on one line: net × rate rounded half away from zero, done
    here with integers (rate in hundredths of a percent)."""
    hundredths = int(Decimal(rate) * 10000)
    twice = 2 * net * hundredths
    return (twice + 10000) // 20000 if net >= 0 else -((-twice + 10000) // 20000)


def test_the_credit_that_completes_a_line_gets_a_rounding_line_for_its_extra_ore() -> None:
    # 100.02 at 25% has VAT 25.01; the second 50.01 credits the 12.51 left, but a target
    # computes 50.01 × 25% = 12.5025 → 12.50: one øre short, made up by a VAT-free line.
    credit = credit_lines([{"net": 5001, "vat": 1251, "vat_rate": "0.25", "product_id": "p"}])
    assert [line["net"] for line in credit.lines] == [5001]
    assert credit.rounding == 1
    assert (credit.net, credit.vat) == (5002, 1250)


def test_a_remainder_below_the_targets_vat_shortens_the_line_instead_of_going_negative() -> None:
    # 100.01 at 25% has VAT 25.00; after 0.02 (VAT 0.01), the 99.99 that completes it credits
    # 24.99, a target would compute 25.00 (24.9975). Sent as 99.98 (VAT 24.995 → 25.00) the
    # gross is 124.98 = 99.99 + 24.99, with no rounding line at all.
    credit = credit_lines([{"net": 9999, "vat": 2499, "vat_rate": "0.25", "product_id": "p"}])
    assert [line["net"] for line in credit.lines] == [9998]
    assert credit.rounding == 0
    assert credit.net + credit.vat == 9999 + 2499


def test_an_ordinary_credit_is_sent_as_it_is() -> None:
    credit = credit_lines([{"net": 5001, "vat": 1250, "vat_rate": "0.25", "product_id": "p"}])
    assert credit.lines[0]["net"] == 5001
    assert (credit.rounding, credit.net, credit.vat) == (0, 5001, 1250)


@given(
    net=st.integers(min_value=1, max_value=10**9),
    off=st.integers(min_value=-3, max_value=3),
    rate=st.sampled_from(["0.25", "0.125", "0.06", "0"]),
)
def test_what_a_target_computes_from_the_sent_lines_adds_up_to_our_gross(
    net: int, off: int, rate: str
) -> None:
    vat = max(0, _target_vat(net, rate) + off) if rate != "0" else 0
    credit = credit_lines([{"net": net, "vat": vat, "vat_rate": rate, "product_id": "p"}])
    sent = credit.lines[0]["net"]
    assert credit.rounding >= 0
    assert sent <= net
    their_gross = sent + _target_vat(sent, rate) + credit.rounding
    assert their_gross == net + vat


# Amounts between currencies.


def test_a_euro_payment_becomes_kroner_at_the_rate() -> None:
    # 100.00 EUR at 7.4604 DKK/EUR = 746.04 DKK.
    assert converted(10000, "EUR", Fraction("7.4604"), "DKK") == 74604


def test_yen_and_dinar_convert_with_their_own_decimals() -> None:
    # 1,500 JPY at 0.0436 = 65.40 DKK; 12.345 KWD at 22.6 = 278.997 → 279.00 DKK.
    assert converted(1500, "JPY", Fraction("0.0436"), "DKK") == 6540
    assert converted(12345, "KWD", Fraction("22.6"), "DKK") == 27900


@given(
    amount=st.integers(min_value=1, max_value=10**9),
    rate=st.fractions(min_value=Fraction(1, 10), max_value=Fraction(100)).map(
        lambda r: Fraction(round(r * 10000), 10000) or Fraction(1, 10000)
    ),
    currency=st.sampled_from(["EUR", "JPY", "KWD", "USD"]),
)
def test_the_kroner_sent_for_a_payment_settle_exactly_its_amount(
    amount: int, rate: Fraction, currency: str
) -> None:
    exponent = {"EUR": 2, "JPY": 0, "KWD": 3, "USD": 2}[currency]
    worth = rate * 100 / 10**exponent  # øre per minor unit of the currency
    if worth < 1:
        return  # a minor unit worth less than an øre cannot always be settled exactly
    cash = _settling(amount, currency, rate, "DKK")
    # What the target books against the invoice: cash ÷ rate, back in the currency's units.
    settled = Fraction(cash, 100) / rate * 10**exponent
    assert abs(settled - amount) <= Fraction(1, 2)


# Retry-After.


NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("1e12", 3600.0),
        ("-5", 0.0),
        ("Sun, 06 Dec 2026 12:02:00 GMT", 120.0),
        ("Fri, 06 Dec 2030 12:00:00 GMT", 3600.0),
        ("Sat, 05 Dec 2026 12:00:00 GMT", 0.0),
        ("soon", None),
        ("nan", None),
        ("inf", 3600.0),
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date_and_capped_at_an_hour(
    value: str, seconds: float | None
) -> None:
    assert retry_after_seconds(value, NOW) == seconds


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (21370291, "DKK", "213,702.91 DKK"),
        (150000, "JPY", "150,000 JPY"),
        (1234567, "KWD", "1,234.567 KWD"),
        (-5, "EUR", "-0.05 EUR"),
    ],
)
def test_the_demo_shows_amounts_with_their_currencys_own_decimals(
    amount: int, currency: str, shown: str
) -> None:
    assert money(amount, currency) == shown
