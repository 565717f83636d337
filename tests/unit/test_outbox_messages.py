"""The outbox's messages as they are stored: the very JSON of each kind, byte for byte.

The delivery log keeps every payload it was given and is never rebuilt, and the outbox's rows are
kept until its version changes: the keys, their order and their values of each kind are pinned
here, written out by hand, so that a change of the code that makes them cannot change what is
stored unnoticed (it would need a new outbox version). The types the adapters read them with
(`projections.messages`) must name every key found here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import orjson
import pytest

from subledger.adapters.store import store_env
from subledger.domain import facts
from subledger.domain.chart import DEFAULT_CHART
from subledger.domain.dates import Month
from subledger.domain.ledger import Ledger
from subledger.domain.values import CLEARED
from subledger.projections import messages
from subledger.projections.engine import Projection, Rows
from subledger.projections.journal import JournalProjection
from subledger.projections.outbox import (
    CUSTOMERS,
    INVOICES,
    OutboxProjection,
    messages_after,
    recognition_voucher,
)
from tests.builders import append, credit_note, customer, invoice, line, payment, refund

CUSTOMER = '{"customer_id":"c1","country":"DK","kind":"company","customer_number":"1001"}'
UPDATED = '{"customer_id":"c1","country":"SE","kind":"company","customer_number":"7"}'

INVOICE = (
    '{"invoice_id":"i1","number":"2026-0007","issue_date":"2026-01-01",'
    '"due_date":"2026-01-31","currency":"EUR","lines":['
    '{"line_id":"1","product_id":"pro","description":"Pro plan","quantity":"1.5",'
    '"unit_amount":999,"discount_amount":100,"vat_rate":"0.25","net":1399,"vat":350},'
    '{"line_id":"x","product_id":"plan","description":null,"quantity":"1",'
    '"unit_amount":10000,"discount_amount":0,"vat_rate":"0.25","net":10000,"vat":2500}],'
    '"net":11399,"vat":2850,"gross":14249,"payment_method":"card","exchange_rate":"7.4604",'
    f'"customer":{CUSTOMER}}}'
)
PAYMENT = (
    '{"invoice_id":"i1","invoice_number":"2026-0007","currency":"EUR","payment_id":"p1",'
    '"amount":5000,"method":"card","date":"2026-01-02","ordinal":0,"exchange_rate":"7.46",'
    f'"customer":{CUSTOMER}}}'
)
SECOND_PAYMENT = (
    '{"invoice_id":"i1","invoice_number":"2026-0007","currency":"EUR","payment_id":"p2",'
    '"amount":5000,"method":"bank_transfer","date":"2026-01-02","ordinal":1,'
    f'"exchange_rate":null,"customer":{CUSTOMER}}}'
)
REFUND = (
    '{"invoice_id":"i1","invoice_number":"2026-0007","currency":"EUR","refund_id":"r1",'
    '"payment_id":"p1","amount":1000,"method":"card","date":"2026-01-03","ordinal":0,'
    f'"exchange_rate":null,"customer":{CUSTOMER}}}'
)
CREDIT_NOTE = (
    '{"invoice_id":"i1","invoice_number":"2026-0007","currency":"EUR","credit_note_id":"cn1",'
    '"number":"CN-1","issue_date":"2026-01-05","lines":['
    '{"line_id":"1","product_id":"pro","description":"Pro plan","vat_rate":"0.25",'
    '"net":699,"vat":175}],"net":699,"vat":175,"gross":874,"exchange_rate":"7.5",'
    f'"customer":{UPDATED}}}'
)
STORED_INVOICE = (
    '{"invoice":{"invoice_id":"i1","customer_id":"c1","number":"2026-0007","currency":"EUR",'
    '"lines":[{"line_id":"1","product_id":"pro","description":"Pro plan","vat_rate":"0.25"},'
    '{"line_id":"x","product_id":"plan","description":null,"vat_rate":"0.25"}],'
    '"payments":{"p1":{"amount":5000,"date":"2026-01-02","method":"card"},'
    '"p2":{"amount":5000,"date":"2026-01-02","method":"bank_transfer"}},'
    '"gross":14249,"credited":874,"paid":10000,"refunded":1000,'
    '"refunds":{"r1":{"amount":1000,"date":"2026-01-03"}}}}'
)
VOUCHER = (
    '{"month":"2026-02","date":"2026-02-28","lines":['
    '{"account":"7400","currency":"DKK","side":"debit","amount":400},'
    '{"account":"1000","currency":"DKK","side":"credit","amount":400}]}'
)


@pytest.fixture
def books() -> Iterator[Ledger]:
    ledger = Ledger(store_env("memory://"))
    yield ledger
    ledger.close()


def fold(ledger: Ledger, projection: Projection) -> Rows:
    rows = Rows()
    for entry in ledger.iter_entries(ledger.last_position(), projection.event_types):
        projection.fold(rows, entry)
    return rows


def dumped(value: Any) -> str:
    return orjson.dumps(value).decode()


@pytest.fixture
def business(books: Ledger) -> Rows:
    append(
        books,
        customer(customer_number="1001", email="a@example.dk"),
        invoice(
            currency="EUR",
            number="2026-0007",
            due_date=date(2026, 1, 31),
            payment_method="card",
            exchange_rate=Decimal("7.4604"),
            lines=(
                line(
                    unit_amount=999,
                    quantity=Decimal("1.5"),
                    discount_amount=100,
                    description="Pro plan",
                    product_id="pro",
                ),
                line(line_id="x"),
            ),
        ),
        payment(amount=5000, currency="EUR", exchange_rate=Decimal("7.46")),
        payment("p2", amount=5000, currency="EUR", method="bank_transfer"),
        refund(),
        facts.CustomerUpdated(customer_id="c1", customer_number=CLEARED, country="SE"),
        facts.CustomerUpdated(customer_id="c1", customer_number="7"),
        credit_note(lines=(("1", 699),), number="CN-1", exchange_rate=Decimal("7.5")),
    )
    return fold(books, OutboxProjection())


def test_each_kind_is_stored_as_the_very_json_it_was(business: Rows) -> None:
    found = messages_after(business, 0, 100)
    assert [(m["kind"], dumped(m["payload"])) for m in found] == [
        ("contact", CUSTOMER),
        ("invoice", INVOICE),
        ("payment", PAYMENT),
        ("payment", SECOND_PAYMENT),
        ("refund", REFUND),
        ("contact", '{"customer_id":"c1","country":"SE","kind":"company"}'),
        ("contact", UPDATED),
        ("credit_note", CREDIT_NOTE),
    ]


def test_the_outboxs_own_rows_are_stored_as_they_were(business: Rows) -> None:
    (customer_row,) = [row for _, row in business.scan(CUSTOMERS)]
    assert (
        dumped(customer_row) == '{"fields":{"country":"SE","kind":"company","customer_number":"7"}}'
    )
    (invoice_row,) = [row for _, row in business.scan(INVOICES)]
    assert dumped(invoice_row) == STORED_INVOICE


def test_a_recognition_voucher_is_the_json_it_was(books: Ledger) -> None:
    ratable = line(
        unit_amount=1200,
        period_start=date(2026, 1, 1),
        period_end=date(2026, 4, 1),
        recognition="monthly",
    )
    append(books, customer(), invoice(lines=(ratable,)))
    voucher = recognition_voucher(fold(books, JournalProjection()), DEFAULT_CHART, Month(2026, 2))
    assert dumped(voucher) == VOUCHER


#: Each kind's type, and the keys its stored JSON has (those of messages before outbox version 4
#: may lack `payment_method` and `exchange_rate`).
KINDS: dict[str, tuple[Any, str]] = {
    "contact": (messages.ContactMessage, UPDATED),
    "invoice": (messages.InvoiceMessage, INVOICE),
    "credit_note": (messages.CreditNoteMessage, CREDIT_NOTE),
    "payment": (messages.PaymentMessage, PAYMENT),
    "refund": (messages.RefundMessage, REFUND),
    "recognition": (messages.RecognitionMessage, VOUCHER),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kinds_type_names_every_key_it_is_stored_with(kind: str) -> None:
    kind_type, stored = KINDS[kind]
    keys = set(orjson.loads(stored))
    required, optional = kind_type.__required_keys__, kind_type.__optional_keys__
    assert required <= keys, "a key the type requires is stored"
    assert keys <= required | optional, "every stored key is one the type names"


def test_messages_taken_before_outbox_version_4_may_lack_its_keys() -> None:
    for kind_type in (
        messages.InvoiceMessage,
        messages.CreditNoteMessage,
        messages.PaymentMessage,
        messages.RefundMessage,
    ):
        assert "exchange_rate" in kind_type.__optional_keys__
    assert "payment_method" in messages.InvoiceMessage.__optional_keys__


def test_a_document_line_type_names_the_keys_each_line_is_stored_with() -> None:
    invoice_line = orjson.loads(INVOICE)["lines"][0]
    credited = orjson.loads(CREDIT_NOTE)["lines"][0]
    voucher_line = orjson.loads(VOUCHER)["lines"][0]
    assert messages.InvoiceLine.__required_keys__ == set(invoice_line)
    assert messages.CreditedLine.__required_keys__ == set(credited)
    assert messages.VoucherLine.__required_keys__ == set(voucher_line)
