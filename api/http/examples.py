"""Example events: one small business's story, in the order it is appended.

They are the examples of the OpenAPI document (one per event type, and a batch), and the test
suite appends all of them, so every example shown to users is known to be accepted.
"""

from __future__ import annotations

from typing import Any, Final

EXAMPLE_EVENTS: Final[list[dict[str, Any]]] = [
    {
        "id": "evt_0001",
        "type": "customer.created",
        "occurred_at": "2026-01-15T09:58:00Z",
        "data": {
            "customer_id": "cus_1001",
            "name": "Nordlys ApS",
            "country": "DK",
            "kind": "company",
            "email": "billing@nordlys.dk",
            "vat_number": "DK31415926",
            "customer_number": "1001",
            "address": {"street": "Havnegade 12", "zip": "8000", "city": "Aarhus C"},
        },
    },
    {
        "id": "evt_0002",
        "type": "subscription.started",
        "occurred_at": "2026-01-15T10:00:00Z",
        "data": {
            "subscription_id": "sub_1001",
            "customer_id": "cus_1001",
            "start_date": "2026-01-15",
            "currency": "DKK",
            "interval": "month",
            "items": [{"product_id": "plan_pro", "quantity": "1", "unit_amount": 60000}],
            "discount": {"percent": "0.10", "duration": "repeating", "duration_in_months": 3},
        },
    },
    {
        "id": "evt_0003",
        "type": "invoice.issued",
        "occurred_at": "2026-01-15T10:00:05Z",
        "data": {
            "invoice_id": "inv_1001",
            "customer_id": "cus_1001",
            "subscription_id": "sub_1001",
            "issue_date": "2026-01-15",
            "due_date": "2026-01-29",
            "number": "2026-0001",
            "currency": "DKK",
            "lines": [
                {
                    "line_id": "1",
                    "product_id": "plan_pro",
                    "description": "Pro plan, 15 January to 14 February 2026",
                    "quantity": "1",
                    "unit_amount": 60000,
                    "discount_amount": 6000,
                    "vat_rate": "0.25",
                    "period_start": "2026-01-15",
                    "period_end": "2026-02-15",
                }
            ],
        },
    },
    {
        "id": "evt_0004",
        "type": "payment.received",
        "data": {
            "payment_id": "pay_1001",
            "invoice_id": "inv_1001",
            "amount": 67500,
            "currency": "DKK",
            "method": "card",
            "received_on": "2026-01-16",
        },
    },
    {
        "id": "evt_0005",
        "type": "customer.updated",
        "data": {"customer_id": "cus_1001", "email": "finance@nordlys.dk"},
    },
    {
        "id": "evt_0006",
        "type": "invoice.issued",
        "data": {
            "invoice_id": "inv_1002",
            "customer_id": "cus_1001",
            "subscription_id": "sub_1001",
            "issue_date": "2026-02-15",
            "currency": "DKK",
            "lines": [
                {
                    "product_id": "plan_pro",
                    "quantity": "1",
                    "unit_amount": 60000,
                    "discount_amount": 6000,
                    "vat_rate": "0.25",
                    "period_start": "2026-02-15",
                    "period_end": "2026-03-15",
                },
                {
                    "product_id": "onboarding",
                    "description": "Onboarding workshop",
                    "quantity": "2.5",
                    "unit_amount": 95000,
                    "vat_rate": "0.25",
                },
            ],
        },
    },
    {
        "id": "evt_0007",
        "type": "payment.failed",
        "data": {
            "payment_id": "pay_1002",
            "invoice_id": "inv_1002",
            "amount": 364375,
            "currency": "DKK",
            "failed_on": "2026-02-16",
            "reason": "card declined",
        },
    },
    {
        "id": "evt_0008",
        "type": "credit_note.issued",
        "data": {
            "credit_note_id": "cn_1001",
            "invoice_id": "inv_1002",
            "issue_date": "2026-02-20",
            "number": "CN-2026-0001",
            "lines": [{"line_id": "2", "amount": 47500}],
        },
    },
    {
        "id": "evt_0009",
        "type": "payment.received",
        "data": {
            "payment_id": "pay_1002",
            "invoice_id": "inv_1002",
            "amount": 305000,
            "currency": "DKK",
            "method": "bank_transfer",
            "received_on": "2026-02-23",
        },
    },
    {
        "id": "evt_0010",
        "type": "payment.refunded",
        "data": {
            "refund_id": "ref_1001",
            "payment_id": "pay_1001",
            "amount": 5000,
            "refunded_on": "2026-02-24",
        },
    },
    {
        "id": "evt_0011",
        "type": "subscription.changed",
        "data": {
            "subscription_id": "sub_1001",
            "effective_date": "2026-03-01",
            "items": [{"product_id": "plan_pro", "quantity": "2", "unit_amount": 60000}],
            "discount": None,
        },
    },
    {
        "id": "evt_0012",
        "type": "period.closed",
        "data": {"period": "2026-01"},
    },
    {
        "id": "evt_0013",
        "type": "subscription.paused",
        "data": {"subscription_id": "sub_1001", "effective_date": "2026-04-01"},
    },
    {
        "id": "evt_0014",
        "type": "subscription.resumed",
        "data": {"subscription_id": "sub_1001", "effective_date": "2026-05-01"},
    },
    {
        "id": "evt_0015",
        "type": "period.reopened",
        "data": {"period": "2026-01"},
    },
    {
        "id": "evt_0016",
        "type": "customer.created",
        "data": {
            "customer_id": "cus_1002",
            "name": "Aarhus Kommune, Borgerservice",
            "country": "DK",
            "kind": "public",
            "ean": "5798000416604",
        },
    },
    {
        "id": "evt_0017",
        "type": "customer.erased",
        "data": {"customer_id": "cus_1002"},
    },
    {
        "id": "evt_0018",
        "type": "subscription.cancelled",
        "data": {
            "subscription_id": "sub_1001",
            "effective_date": "2026-07-15",
            "requested_on": "2026-06-30",
            "reason": "voluntary",
        },
    },
]


def example_of(type_name: str) -> dict[str, Any]:
    """The first example event of a type."""
    return next(event for event in EXAMPLE_EVENTS if event["type"] == type_name)
