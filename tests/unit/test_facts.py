"""Malformed facts are refused as INVALID_EVENT, naming the field (checked by the domain)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from subledger.domain.dates import Month
from subledger.domain.errors import InvalidEventError
from subledger.domain.facts import FACT_TYPES, CustomerUpdated, Fact, declared_fields
from subledger.domain.values import CLEARED, Address
from tests.builders import (
    changed,
    credit_note,
    customer,
    discount,
    invoice,
    item,
    line,
    payment,
    refund,
    subscription,
)


def field_refused(fact: Fact) -> str | None:
    with pytest.raises(InvalidEventError) as raised:
        fact.check()
    return raised.value.field


@pytest.mark.parametrize(
    ("fact", "field"),
    [
        (customer(country="XX"), "country"),
        (customer(country="dk"), "country"),
        (customer(kind="public"), "ean"),
        (customer(ean="12345"), "ean"),
        (customer(email="not-an-address"), "email"),
        (customer(vat_number="12 34"), "vat_number"),
        (customer(name="  "), "name"),
        (customer(customer_id=""), "customer_id"),
        (customer(customer_id="x" * 129), "customer_id"),
        (customer(customer_id="bad\x00id"), "customer_id"),
        (customer(address=Address(street="", zip="8000", city="Aarhus")), "address.street"),
        (CustomerUpdated(customer_id="c1", country="ZZ"), "country"),
        (subscription(currency="DKR"), "currency"),
        (subscription(interval="fortnight"), "interval"),
        (subscription(interval_count=0), "interval_count"),
        (subscription(items=()), "items"),
        (subscription(items=(item(-1),)), "items[0].unit_amount"),
        (subscription(items=(item(quantity="0"),)), "items[0].quantity"),
        (subscription(items=(item(quantity="1.1234567"),)), "items[0].quantity"),
        (subscription(trial_end=date(2025, 12, 31)), "trial_end"),
        (subscription(start_date=date(1969, 12, 31)), "start_date"),
        (subscription(discount=discount()), "discount"),
        (subscription(discount=discount("0.2", 100)), "discount"),
        (subscription(discount=discount("1.5")), "discount.percent"),
        (subscription(discount=discount(amount_off=0)), "discount.amount_off"),
        (
            subscription(discount=discount("0.2", duration="repeating")),
            "discount.duration_in_months",
        ),
        (
            subscription(discount=discount("0.2", duration_in_months=2)),
            "discount.duration_in_months",
        ),
        (changed(items=(item(), item(quantity="-1"))), "items[1].quantity"),
        (invoice(currency="XYZ"), "currency"),
        (invoice(lines=()), "lines"),
        (invoice(due_date=date(2025, 12, 1)), "due_date"),
        (invoice(lines=(line(vat_rate="1"),)), "lines[0].vat_rate"),
        (invoice(lines=(line(vat_rate="1.25"),)), "lines[0].vat_rate"),
        (invoice(lines=(line(unit_amount=-5),)), "lines[0].unit_amount"),
        (invoice(lines=(line(unit_amount=10**15),)), "lines[0].unit_amount"),
        (invoice(lines=(line(discount_amount=-1),)), "lines[0].discount_amount"),
        (invoice(lines=(line(period_start=date(2026, 1, 1)),)), "lines[0].period_end"),
        (
            invoice(lines=(line(period_start=date(2026, 2, 1), period_end=date(2026, 2, 1)),)),
            "lines[0].period_end",
        ),
        (
            invoice(lines=(line(period_start=date(2026, 2, 1), period_end=date(2026, 1, 1)),)),
            "lines[0].period_end",
        ),
        (invoice(lines=(line(recognition="daily"),)), "lines[0].recognition"),
        (invoice(lines=(line(line_id="a"), line(line_id="a"))), "lines[1].line_id"),
        (invoice(lines=(line(), line(line_id="1"))), "lines[1].line_id"),
        (payment(amount=0), "amount"),
        (payment(amount=-100), "amount"),
        (payment(method="Credit Card"), "method"),
        (payment(currency="usd"), "currency"),
        (credit_note(lines=()), "lines"),
        (credit_note(lines=(("1", 0),)), "lines[0].amount"),
        (credit_note(lines=(("1", 5), ("1", 6))), "lines[1].line_id"),
        (invoice(payment_method="Bank Transfer"), "payment_method"),
        (invoice(payment_method=""), "payment_method"),
        (invoice(exchange_rate=Decimal(0)), "exchange_rate"),
        (invoice(exchange_rate=Decimal("-7.46")), "exchange_rate"),
        (invoice(exchange_rate=Decimal("NaN")), "exchange_rate"),
        (invoice(exchange_rate=Decimal("1000000")), "exchange_rate"),
        (invoice(exchange_rate=Decimal("0.00000000001")), "exchange_rate"),
        (credit_note(exchange_rate=Decimal(0)), "exchange_rate"),
        (payment(exchange_rate=Decimal("0.0")), "exchange_rate"),
        (refund(exchange_rate=Decimal("-1")), "exchange_rate"),
    ],
)
def test_a_malformed_fact_is_refused_naming_its_field(fact: Fact, field: str) -> None:
    assert field_refused(fact) == field


def test_exchange_rates_of_ten_decimals_below_a_million_and_method_names_pass() -> None:
    invoice(payment_method="bank_transfer", exchange_rate=Decimal("0.0000435012")).check()
    invoice(payment_method="mobilepay", exchange_rate=Decimal("999999.9999999999")).check()
    payment(exchange_rate=Decimal("7.4604")).check()
    refund(exchange_rate=Decimal("22.31")).check()
    credit_note(exchange_rate=Decimal("1")).check()


def test_a_well_formed_invoice_with_a_period_passes() -> None:
    invoice(
        lines=(
            line(
                period_start=date(2026, 1, 15),
                period_end=date(2026, 7, 15),
                recognition="monthly",
                quantity=Decimal("2.5"),
            ),
        )
    ).check()


def test_an_update_that_changes_nothing_is_refused_naming_no_field() -> None:
    assert field_refused(CustomerUpdated(customer_id="c1")) is None
    CustomerUpdated(customer_id="c1", email=CLEARED).check()


def test_every_field_of_every_fact_is_declared_with_a_kind_or_its_own_fields() -> None:
    """A field is a value of a known type (its kind's rule, if any, beside it), a list of
    such, or a value whose own fields are declared likewise."""
    known = {str, int, Decimal, date, Month, tuple}

    def check(declared: type) -> None:
        for name, kind in declared_fields(declared):
            item = kind.item or kind
            assert item.base in known or item.holds_fields, (declared, name)
            if item.holds_fields:
                check(item.base)

    for fact in FACT_TYPES.values():
        check(fact)
