"""Small builders of facts and wire events for tests, with sensible defaults."""

from __future__ import annotations

import hashlib
import itertools
from datetime import date
from decimal import Decimal
from typing import Any

import orjson

from subledger.api.http.event_data import data_of, type_of
from subledger.domain import facts
from subledger.domain.dates import Month
from subledger.domain.ledger import Ledger, Outcome, Submission
from subledger.domain.values import CreditLine, Discount, InvoiceLine, SubscriptionItem

_ids = itertools.count(1)


def next_event_id() -> str:
    return f"evt_{next(_ids):06d}"


def customer(customer_id: str = "c1", **changes: Any) -> facts.CustomerCreated:
    values: dict[str, Any] = {
        "customer_id": customer_id,
        "name": "Nordlys ApS",
        "country": "DK",
        "kind": "company",
    }
    return facts.CustomerCreated(**(values | changes))


def item(unit_amount: int = 10000, quantity: str = "1") -> SubscriptionItem:
    return SubscriptionItem(product_id="plan", quantity=Decimal(quantity), unit_amount=unit_amount)


def subscription(
    subscription_id: str = "s1",
    customer_id: str = "c1",
    start_date: date = date(2026, 1, 1),
    **changes: Any,
) -> facts.SubscriptionStarted:
    values: dict[str, Any] = {
        "subscription_id": subscription_id,
        "customer_id": customer_id,
        "start_date": start_date,
        "currency": "DKK",
        "interval": "month",
        "items": (item(),),
    }
    return facts.SubscriptionStarted(**(values | changes))


def line(unit_amount: int = 10000, vat_rate: str = "0.25", **changes: Any) -> InvoiceLine:
    values: dict[str, Any] = {
        "product_id": "plan",
        "quantity": Decimal(1),
        "unit_amount": unit_amount,
        "vat_rate": Decimal(vat_rate),
    }
    return InvoiceLine(**(values | changes))


def invoice(invoice_id: str = "i1", customer_id: str = "c1", **changes: Any) -> facts.InvoiceIssued:
    values: dict[str, Any] = {
        "invoice_id": invoice_id,
        "customer_id": customer_id,
        "issue_date": date(2026, 1, 1),
        "currency": "DKK",
        "lines": (line(),),
    }
    return facts.InvoiceIssued(**(values | changes))


def payment(
    payment_id: str = "p1", invoice_id: str = "i1", amount: int = 12500, **changes: Any
) -> facts.PaymentReceived:
    values: dict[str, Any] = {
        "payment_id": payment_id,
        "invoice_id": invoice_id,
        "amount": amount,
        "currency": "DKK",
        "method": "card",
        "received_on": date(2026, 1, 2),
    }
    return facts.PaymentReceived(**(values | changes))


def failed_payment(
    payment_id: str = "p1", invoice_id: str = "i1", amount: int = 12500, **changes: Any
) -> facts.PaymentFailed:
    values: dict[str, Any] = {
        "payment_id": payment_id,
        "invoice_id": invoice_id,
        "amount": amount,
        "currency": "DKK",
        "failed_on": date(2026, 1, 2),
    }
    return facts.PaymentFailed(**(values | changes))


def refund(
    refund_id: str = "r1", payment_id: str = "p1", amount: int = 1000, **changes: Any
) -> facts.PaymentRefunded:
    values: dict[str, Any] = {
        "refund_id": refund_id,
        "payment_id": payment_id,
        "amount": amount,
        "refunded_on": date(2026, 1, 3),
    }
    return facts.PaymentRefunded(**(values | changes))


def credit_note(
    credit_note_id: str = "cn1",
    invoice_id: str = "i1",
    lines: tuple[tuple[str, int], ...] | None = None,
    **changes: Any,
) -> facts.CreditNoteIssued:
    values: dict[str, Any] = {
        "credit_note_id": credit_note_id,
        "invoice_id": invoice_id,
        "issue_date": date(2026, 1, 5),
        "lines": None
        if lines is None
        else tuple(CreditLine(line_id=i, amount=a) for i, a in lines),
    }
    return facts.CreditNoteIssued(**(values | changes))


def discount(percent: str | None = None, amount_off: int | None = None, **kw: Any) -> Discount:
    return Discount(
        percent=None if percent is None else Decimal(percent), amount_off=amount_off, **kw
    )


def changed(
    subscription_id: str = "s1", effective_date: date = date(2026, 2, 1), **changes: Any
) -> facts.SubscriptionChanged:
    values: dict[str, Any] = {
        "subscription_id": subscription_id,
        "effective_date": effective_date,
        "items": (item(20000),),
    }
    return facts.SubscriptionChanged(**(values | changes))


def paused(subscription_id: str = "s1", on: date = date(2026, 2, 1)) -> facts.SubscriptionPaused:
    return facts.SubscriptionPaused(subscription_id=subscription_id, effective_date=on)


def resumed(subscription_id: str = "s1", on: date = date(2026, 3, 1)) -> facts.SubscriptionResumed:
    return facts.SubscriptionResumed(subscription_id=subscription_id, effective_date=on)


def cancelled(
    subscription_id: str = "s1", on: date = date(2026, 6, 1)
) -> facts.SubscriptionCancelled:
    return facts.SubscriptionCancelled(subscription_id=subscription_id, effective_date=on)


def closed(period: str) -> facts.PeriodClosed:
    return facts.PeriodClosed(period=Month.parse(period))


def reopened(period: str) -> facts.PeriodReopened:
    return facts.PeriodReopened(period=Month.parse(period))


def digest(type_name: str, data: dict[str, Any]) -> bytes:
    """A digest of a fact's type and data, for submitting facts to the ledger directly."""
    return hashlib.sha256(orjson.dumps([type_name, data], option=orjson.OPT_SORT_KEYS)).digest()


def submission(fact: facts.Fact, event_id: str | None = None) -> Submission:
    return Submission(
        event_id=event_id or next_event_id(),
        fact=fact,
        digest=digest(type_of(fact), data_of(fact)),
    )


def append(ledger: Ledger, *fact_list: facts.Fact) -> list[Outcome]:
    """Append facts as one batch, each under a fresh event id."""
    return ledger.append([submission(fact) for fact in fact_list])


def wire_event(fact: facts.Fact, event_id: str | None = None) -> dict[str, Any]:
    """The fact as a billing system would send it."""
    return {"id": event_id or next_event_id(), "type": type_of(fact), "data": data_of(fact)}
