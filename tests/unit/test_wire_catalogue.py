"""The wire format of the event catalogue is derived from the facts' declarations: a `data`
model validates straight into its fact, checks the JSON's shape only (the values are the
domain's to check), and gives the canonical JSON that retries are compared by."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from subledger.api.http.schemas.events import DATA_MODELS, EVENT_DATA, WireData
from subledger.domain import facts
from subledger.domain.dates import Month
from subledger.domain.errors import InvalidEventError
from subledger.domain.facts import FACT_TYPES
from subledger.domain.values import CLEARED, Address, Discount, InvoiceLine, SubscriptionItem


def validated(type_name: str, data: dict[str, Any]) -> WireData:
    adapter: TypeAdapter[WireData] = TypeAdapter(EVENT_DATA[type_name])
    return adapter.validate_json(json.dumps(data))


def refused_shape(type_name: str, data: dict[str, Any]) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as raised:
        validated(type_name, data)
    return [problem["loc"] for problem in raised.value.errors()]


def test_each_event_types_data_model_has_its_facts_fields_in_their_order() -> None:
    assert list(DATA_MODELS) == list(FACT_TYPES)
    for type_name, fact in FACT_TYPES.items():
        assert list(DATA_MODELS[type_name].model_fields) == [
            field.name for field in dataclasses.fields(fact)
        ]


def test_an_invoice_validates_straight_into_its_fact() -> None:
    data = {
        "invoice_id": "i1",
        "customer_id": "c1",
        "issue_date": "2026-01-15",
        "currency": "EUR",
        "lines": [
            {"product_id": "plan", "quantity": "2.50", "unit_amount": 1000, "vat_rate": "0.25"},
            {
                "line_id": "x",
                "product_id": "setup",
                "quantity": "1",
                "unit_amount": 0,
                "vat_rate": "0",
                "period_start": "2026-01-15",
                "period_end": "2026-02-15",
                "recognition": "daily",
            },
        ],
        "exchange_rate": "7.4604",
        "due_date": None,
    }
    assert validated("invoice.issued", data).fact == facts.InvoiceIssued(
        invoice_id="i1",
        customer_id="c1",
        issue_date=date(2026, 1, 15),
        currency="EUR",
        lines=(
            InvoiceLine(
                product_id="plan",
                quantity=Decimal("2.50"),
                unit_amount=1000,
                vat_rate=Decimal("0.25"),
            ),
            InvoiceLine(
                line_id="x",
                product_id="setup",
                quantity=Decimal(1),
                unit_amount=0,
                vat_rate=Decimal(0),
                period_start=date(2026, 1, 15),
                period_end=date(2026, 2, 15),
                recognition="daily",
            ),
        ),
        exchange_rate=Decimal("7.4604"),
    )


def test_nested_values_months_and_removals_become_the_domains() -> None:
    started = validated(
        "subscription.started",
        {
            "subscription_id": "s1",
            "customer_id": "c1",
            "start_date": "2026-01-01",
            "currency": "DKK",
            "interval": "month",
            "items": [{"product_id": "plan", "quantity": "1", "unit_amount": 100}],
            "discount": {"percent": "0.10", "duration": "once"},
        },
    ).fact
    assert isinstance(started, facts.SubscriptionStarted)
    assert started.items == (
        SubscriptionItem(product_id="plan", quantity=Decimal(1), unit_amount=100),
    )
    assert started.discount == Discount(percent=Decimal("0.10"), duration="once")
    closed = validated("period.closed", {"period": "2026-01"}).fact
    assert closed == facts.PeriodClosed(period=Month(2026, 1))
    updated = validated(
        "customer.updated",
        {
            "customer_id": "c1",
            "email": None,
            "address": {"street": "Havnegade 12", "zip": "8000", "city": "Aarhus C"},
        },
    ).fact
    assert updated == facts.CustomerUpdated(
        customer_id="c1",
        email=CLEARED,
        address=Address(street="Havnegade 12", zip="8000", city="Aarhus C"),
    )
    removed = validated(
        "subscription.changed",
        {
            "subscription_id": "s1",
            "effective_date": "2026-02-01",
            "items": [{"product_id": "plan", "quantity": "1", "unit_amount": 1}],
            "discount": None,
        },
    ).fact
    assert isinstance(removed, facts.SubscriptionChanged)
    assert removed.discount is CLEARED


def test_the_canonical_json_is_the_data_in_the_catalogues_order_without_nulls() -> None:
    sent = {
        "lines": [{"vat_rate": "0.250", "unit_amount": 5, "quantity": "007.5", "product_id": "p"}],
        "currency": "DKK",
        "number": None,
        "issue_date": "2026-01-15",
        "customer_id": "c1",
        "invoice_id": "i1",
    }
    assert validated("invoice.issued", sent).canonical_json == (
        b'{"invoice_id":"i1","customer_id":"c1","issue_date":"2026-01-15","currency":"DKK",'
        b'"lines":[{"product_id":"p","quantity":"007.5","unit_amount":5,"vat_rate":"0.250"}]}'
    )


def test_the_canonical_json_of_an_update_sorts_its_keys_and_keeps_removals() -> None:
    sent = {"name": "Nordlys\nA/S", "email": None, "customer_id": "c1", "kind": "company"}
    assert validated("customer.updated", sent).canonical_json == (
        b'{"customer_id":"c1","email":null,"kind":"company","name":"Nordlys\\nA/S"}'
    )


WELL_FORMED: dict[str, dict[str, Any]] = {
    "payment.received": {
        "payment_id": "p1",
        "invoice_id": "i1",
        "amount": 100,
        "currency": "DKK",
        "method": "card",
        "received_on": "2026-01-02",
    },
    "customer.created": {"customer_id": "c1", "name": "N", "country": "DK", "kind": "person"},
}


@pytest.mark.parametrize(
    ("type_name", "data", "field"),
    [
        ("payment.received", {"currency": "XYZ"}, "currency"),
        ("payment.received", {"currency": "kroner"}, "currency"),
        ("payment.received", {"amount": 0}, "amount"),
        ("payment.received", {"amount": 10**30}, "amount"),
        ("payment.received", {"payment_id": ""}, "payment_id"),
        ("payment.received", {"method": "Card"}, "method"),
        ("payment.received", {"received_on": "2200-01-01"}, "received_on"),
        ("payment.received", {"exchange_rate": "0"}, "exchange_rate"),
        ("customer.created", {"kind": "martian"}, "kind"),
        ("customer.created", {"country": "Denmark"}, "country"),
    ],
)
def test_a_value_of_the_right_shape_is_left_to_the_domains_rule(
    type_name: str, data: dict[str, Any], field: str
) -> None:
    fact = validated(type_name, WELL_FORMED[type_name] | data).fact
    with pytest.raises(InvalidEventError) as raised:
        fact.check()
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"amount": "100"}, ("amount",)),
        ({"amount": 100.0}, ("amount",)),
        ({"currency": 208}, ("currency",)),
        ({"received_on": "2026-02-30"}, ("received_on",)),
        ({"exchange_rate": "1e3"}, ("exchange_rate",)),
        ({"exchange_rate": 7.46}, ("exchange_rate",)),
        ({"colour": "red"}, ("colour",)),
    ],
)
def test_the_wire_refuses_what_is_not_of_the_fields_shape(
    data: dict[str, Any], where: tuple[str, ...]
) -> None:
    assert refused_shape("payment.received", WELL_FORMED["payment.received"] | data) == [where]


def test_an_update_cannot_remove_what_it_can_only_change() -> None:
    with pytest.raises(ValidationError, match="name can be changed but not removed"):
        validated("customer.updated", {"customer_id": "c1", "name": None})


def _customer(customer_id: str) -> dict[str, Any]:
    return {
        "id": f"evt_{customer_id}",
        "type": "customer.created",
        "occurred_at": "2026-01-01T00:00:00Z",
        "data": {
            "customer_id": customer_id,
            "name": "Parsed Once",
            "country": "DK",
            "kind": "company",
        },
    }


def test_a_well_formed_body_is_parsed_once_straight_into_facts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only a refused body is read a second time (to say what is wrong with it)."""
    from subledger.api.http import ingest

    def second_parse(_: bytes) -> Any:
        raise AssertionError("a well-formed body was parsed twice")

    monkeypatch.setattr(ingest, "_parse", second_parse)
    batch = json.dumps({"events": [_customer("c1"), _customer("c2")]}).encode()
    single = json.dumps(_customer("c3")).encode()

    assert [s.fact.customer_id for s in ingest.parse_submissions(batch)] == ["c1", "c2"]  # type: ignore[attr-defined]
    assert [s.event_id for s in ingest.parse_submissions(single)] == ["evt_c3"]


def test_a_refused_body_is_read_again_for_a_precise_answer() -> None:
    from subledger.api.http import ingest
    from subledger.api.http.errors import ApiError

    broken = _customer("c1")
    del broken["data"]["name"]
    with pytest.raises(ApiError) as refused:
        ingest.parse_submissions(json.dumps({"events": [_customer("c0"), broken]}).encode())
    assert refused.value.details[0]["index"] == 1
    assert refused.value.details[0]["field"] == "data.name"
    with pytest.raises(ApiError) as not_json:
        ingest.parse_submissions(b'{"events": [')
    assert not_json.value.code.name == "INVALID_JSON"
