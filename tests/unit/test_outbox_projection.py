"""The outbox's messages: one per fact an accounting system keeps, self-contained, in log order."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from subledger.adapters.store import store_env
from subledger.adapters.sync.personal_details import PersonalDetails
from subledger.domain import facts
from subledger.domain.chart import DEFAULT_CHART
from subledger.domain.dates import Month
from subledger.domain.ledger import Ledger
from subledger.domain.values import CLEARED
from subledger.projections.engine import Rows
from subledger.projections.journal import JournalProjection
from subledger.projections.outbox import (
    MESSAGE_NAMESPACE,
    OutboxProjection,
    invoice_balances,
    message_id,
    messages_after,
    recognition_voucher,
)
from tests.builders import (
    append,
    closed,
    credit_note,
    customer,
    invoice,
    line,
    payment,
    refund,
)


def fold(ledger: Ledger, projection: Any = None) -> Rows:
    projection = projection or OutboxProjection()
    rows = Rows()
    for entry in ledger.iter_entries(ledger.last_position(), projection.event_types):
        projection.fold(rows, entry)
    return rows


def messages(ledger: Ledger) -> list[dict[str, Any]]:
    return messages_after(fold(ledger), 0, 1000)


@pytest.fixture
def books() -> Iterator[Ledger]:
    ledger = Ledger(store_env("memory://"))
    yield ledger
    ledger.close()


def test_each_fact_an_accounting_system_keeps_is_one_message_in_log_order(books: Ledger) -> None:
    append(
        books,
        customer(email="a@example.dk", customer_number="1001"),
        invoice(lines=(line(unit_amount=10000),)),
        payment(amount=12500),
        refund(amount=1000),
        credit_note(lines=(("1", 2000),)),
    )
    found = messages(books)
    assert [m["kind"] for m in found] == ["contact", "invoice", "payment", "refund", "credit_note"]
    assert [m["position"] for m in found] == sorted(m["position"] for m in found)
    assert {m["lane"] for m in found} == {"c1"}
    assert len({m["source_event_id"] for m in found}) == 5


def test_an_invoice_message_carries_its_lines_totals_and_customer_without_personal_data(
    books: Ledger,
) -> None:
    append(
        books,
        customer(email="a@example.dk", customer_number="1001"),
        invoice(
            lines=(line(unit_amount=999, quantity=Decimal("1.5"), discount_amount=100),),
            due_date=date(2026, 1, 31),
            number="2026-0007",
        ),
    )
    payload = messages(books)[1]["payload"]
    assert payload["number"] == "2026-0007"
    assert payload["lines"][0]["net"] == 1399  # rhu(1.5 × 999) − 100
    assert payload["lines"][0]["vat"] == 350
    assert (payload["net"], payload["vat"], payload["gross"]) == (1399, 350, 1749)
    assert payload["customer"] == {
        "customer_id": "c1",
        "country": "DK",
        "kind": "company",
        "customer_number": "1001",
    }
    assert payload["due_date"] == "2026-01-31"


def test_an_update_sends_the_whole_contact_with_cleared_fields_gone(books: Ledger) -> None:
    append(
        books,
        customer(email="a@example.dk", vat_number="DK12345678"),
        facts.CustomerUpdated(
            customer_id="c1", name="Nordlys A/S", email=CLEARED, customer_number="7"
        ),
    )
    first, second = messages(books)
    assert second["payload"] == {
        "customer_id": "c1",
        "country": "DK",
        "kind": "company",
        "customer_number": "7",
    }, "personal fields stay sealed in the log"
    opened = PersonalDetails(books).personal("c1", second["position"])
    assert opened["name"] == "Nordlys A/S"
    assert opened["vat_number"] == "DK12345678"
    assert "email" not in opened
    assert PersonalDetails(books).personal("c1", first["position"])["email"] == "a@example.dk"


def test_a_credit_note_carries_the_credited_lines_with_their_products_and_vat(
    books: Ledger,
) -> None:
    append(
        books,
        customer(),
        invoice(lines=(line(unit_amount=10000, product_id="pro"), line(product_id="seat"))),
        credit_note(lines=(("2", 3333),), number="CN-1"),
    )
    payload = messages(books)[2]["payload"]
    assert payload["number"] == "CN-1"
    assert payload["invoice_number"] == "i1"
    assert [(x["product_id"], x["net"], x["vat"]) for x in payload["lines"]] == [
        ("seat", 3333, 833)
    ]
    assert payload["gross"] == 4166


def test_a_line_credited_in_halves_sends_the_vat_each_credit_note_recorded(
    books: Ledger,
) -> None:
    # docs/specification.md §2: 100.02 at 25% has VAT 25.01; credited 50.01 + 50.01, the credits carry 12.50 and 12.51.
    append(
        books,
        customer(),
        invoice(lines=(line(unit_amount=10002),)),
        credit_note("cn1", lines=(("1", 5001),)),
        credit_note("cn2", lines=(("1", 5001),)),
    )
    first, second = [m["payload"] for m in messages(books) if m["kind"] == "credit_note"]
    assert [x["vat"] for x in first["lines"]] == [1250]
    assert (first["net"], first["vat"], first["gross"]) == (5001, 1250, 6251)
    assert [x["vat"] for x in second["lines"]] == [1251]
    assert (second["net"], second["vat"], second["gross"]) == (5001, 1251, 6252)
    balance = invoice_balances(fold(books))["i1"]
    assert (balance["gross"], balance["credited"], balance["balance"]) == (12503, 12503, 0)


def test_a_credit_note_without_lines_sends_what_is_left_with_its_vat(books: Ledger) -> None:
    append(
        books,
        customer(),
        invoice(lines=(line(unit_amount=10001), line(unit_amount=333, product_id="usage"))),
        credit_note("cn1", lines=(("1", 2),)),
        credit_note("cn2"),
    )
    payload = messages(books)[-1]["payload"]
    # Line 1: VAT 25.00 less the 0.01 credited with 0.02; line 2: rhu(3.33 × 25%) = 0.83.
    assert [(x["line_id"], x["net"], x["vat"]) for x in payload["lines"]] == [
        ("1", 9999, 2499),
        ("2", 333, 83),
    ]
    assert (payload["net"], payload["vat"], payload["gross"]) == (10332, 2582, 12914)
    assert invoice_balances(fold(books))["i1"]["balance"] == 0


def test_documents_carry_their_own_exchange_rates_and_the_invoice_its_method(
    books: Ledger,
) -> None:
    append(
        books,
        customer(),
        invoice(currency="EUR", payment_method="bank_transfer", exchange_rate=Decimal("7.4604")),
        payment(currency="EUR", exchange_rate=Decimal("7.4610")),
        refund(exchange_rate=Decimal("7.46")),
        credit_note(lines=(("1", 1000),), exchange_rate=Decimal("7.45900")),
        invoice("i2", currency="EUR"),
        payment("p2", "i2", currency="EUR"),
        refund("r2", "p2"),
        credit_note("cn2", "i2"),
    )
    found = [(m["kind"], m["payload"]) for m in messages(books)[1:]]
    assert [(kind, p["exchange_rate"]) for kind, p in found] == [
        ("invoice", "7.4604"),
        ("payment", "7.4610"),
        ("refund", "7.46"),
        ("credit_note", "7.45900"),
        ("invoice", None),
        ("payment", None),
        ("refund", None),
        ("credit_note", None),
    ]
    invoices = [p for kind, p in found if kind == "invoice"]
    assert [p["payment_method"] for p in invoices] == ["bank_transfer", None]
    assert [p["due_date"] for p in invoices] == [None, None]


def test_identical_payments_of_one_invoice_are_told_apart_by_their_ordinal(books: Ledger) -> None:
    append(
        books,
        customer(),
        invoice(lines=(line(unit_amount=100000),)),
        payment("p1", amount=1000),
        payment("p2", amount=1000),
        payment("p3", amount=2000),
    )
    ordinals = [m["payload"]["ordinal"] for m in messages(books) if m["kind"] == "payment"]
    assert ordinals == [0, 1, 0]


def test_an_invoice_balance_is_gross_less_credited_and_paid_plus_refunded(books: Ledger) -> None:
    append(
        books,
        customer(),
        invoice(lines=(line(unit_amount=10000),)),
        payment(amount=10000),
        refund(amount=500),
        credit_note(lines=(("1", 1000),)),
    )
    balance = invoice_balances(fold(books))["i1"]
    assert balance["gross"] == 12500
    assert balance["balance"] == 12500 - 1250 - 10000 + 500


def test_a_months_voucher_moves_its_booked_revenue_out_of_deferred(books: Ledger) -> None:
    ratable = line(
        unit_amount=1200,
        period_start=date(2026, 1, 1),
        period_end=date(2026, 4, 1),
        recognition="monthly",
        product_id="pro",
    )
    append(books, customer(), invoice(lines=(ratable,), issue_date=date(2026, 1, 1)))
    voucher = recognition_voucher(fold(books, JournalProjection()), DEFAULT_CHART, Month(2026, 2))
    assert voucher["date"] == "2026-02-28"
    assert voucher["lines"] == [
        {"account": "7400", "currency": "DKK", "side": "debit", "amount": 400},
        {"account": "1000", "currency": "DKK", "side": "credit", "amount": 400},
    ]


def test_a_closed_months_revenue_is_vouchered_in_the_first_open_month(books: Ledger) -> None:
    ratable = line(
        unit_amount=1200,
        period_start=date(2026, 1, 1),
        period_end=date(2026, 4, 1),
        recognition="monthly",
    )
    append(books, customer(), closed("2026-01"), invoice(lines=(ratable,)))
    rows = fold(books, JournalProjection())
    assert recognition_voucher(rows, DEFAULT_CHART, Month(2026, 1))["lines"] == []
    february = recognition_voucher(rows, DEFAULT_CHART, Month(2026, 2))["lines"]
    assert february[0] == {"account": "7400", "currency": "DKK", "side": "debit", "amount": 800}


@given(st.sampled_from(["billy", "dinero"]), st.text(min_size=1, max_size=64))
def test_a_message_id_is_the_uuid5_of_target_kind_and_source(target: str, source: str) -> None:
    assert message_id(target, "invoice", source) == str(
        uuid.uuid5(MESSAGE_NAMESPACE, f"{target}/invoice/{source}")
    )
