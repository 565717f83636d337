"""`source` on payments and refunds: taken from the wire, checked as ids are, stored and read
back, shown as sent; and events stored before the field existed read back without it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any
from uuid import uuid4

import orjson
import pytest
from eventsourcing.persistence import JSONTranscoder, StoredEvent
from eventsourcing.utils import get_topic

from subledger.adapters.store import store_env
from subledger.adapters.store.mapper import PlainJSONMapper
from subledger.api.http.event_data import data_of
from subledger.api.http.ingest import parse_submissions
from subledger.api.http.schemas.events import DATA_MODELS
from subledger.domain.errors import InvalidEventError
from subledger.domain.facts import PaymentReceived
from subledger.domain.invoice import Invoice
from subledger.domain.ledger import Ledger
from subledger.domain.values import PaymentSource

SOURCE = {"target": "billy", "reference": "b6yN5Gq1TzqkkP8xV0c3Aa"}


def _events(source: dict[str, Any] | None) -> list[dict[str, Any]]:
    payment: dict[str, Any] = {
        "payment_id": "pay_1",
        "invoice_id": "inv_1",
        "amount": 12500,
        "currency": "DKK",
        "method": "bank_transfer",
        "received_on": "2026-01-20",
    }
    refund: dict[str, Any] = {
        "refund_id": "ref_1",
        "payment_id": "pay_1",
        "amount": 500,
        "refunded_on": "2026-01-21",
    }
    if source is not None:
        payment["source"] = source
        refund["source"] = {**source, "reference": "r2"}
    return [
        {
            "id": "evt_c",
            "type": "customer.created",
            "data": {"customer_id": "cus_1", "name": "A", "country": "DK", "kind": "company"},
        },
        {
            "id": "evt_i",
            "type": "invoice.issued",
            "data": {
                "invoice_id": "inv_1",
                "customer_id": "cus_1",
                "issue_date": "2026-01-05",
                "currency": "DKK",
                "lines": [
                    {"product_id": "p", "quantity": "1", "unit_amount": 10000, "vat_rate": "0.25"}
                ],
            },
        },
        {"id": "evt_p", "type": "payment.received", "data": payment},
        {"id": "evt_r", "type": "payment.refunded", "data": refund},
    ]


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    ledger = Ledger(store_env("memory://"))
    yield ledger
    ledger.close()


def test_a_source_is_stored_read_back_and_shown_as_sent(ledger: Ledger) -> None:
    ledger.append(parse_submissions(orjson.dumps({"events": _events(SOURCE)})))
    logged = [entry.event for entry in ledger.read_log(0, 10)]
    received, refunded = logged[2], logged[3]
    assert received.source == PaymentSource(target="billy", reference=SOURCE["reference"])  # type: ignore[attr-defined]
    assert data_of(received)["source"] == SOURCE
    assert data_of(refunded)["source"] == {"target": "billy", "reference": "r2"}
    mapper = PlainJSONMapper(transcoder=JSONTranscoder())
    stored = mapper.to_stored_event(received)
    assert orjson.loads(stored.state)["source"] == SOURCE
    assert mapper.to_domain_event(stored) == received


def test_an_event_stored_before_the_field_reads_back_without_it() -> None:
    """The state a release without `source` wrote for a payment: no `source` key at all."""
    state = {
        "event_id": "evt_old",
        "occurred_at": None,
        "payment_id": "pay_9",
        "invoice_id": "inv_9",
        "amount": 100,
        "currency": "DKK",
        "method": "card",
        "received_on": "2025-03-01",
        "exchange_rate": None,
        "timestamp": "2025-03-01T10:00:00+00:00",
        "customer_id": "cus_9",
    }
    stored = StoredEvent(
        originator_id=uuid4(),
        originator_version=2,
        topic=get_topic(Invoice.PaymentReceived),
        state=orjson.dumps(state),
    )
    event: Any = PlainJSONMapper(transcoder=JSONTranscoder()).to_domain_event(stored)
    assert event.source is None
    assert event.received_on == date(2025, 3, 1)
    assert "source" not in data_of(event)


def test_a_source_is_checked_as_ids_are() -> None:
    model = DATA_MODELS["payment.received"]
    good = _events(None)[2]["data"]
    for bad in ({"target": "billy"}, {"target": "billy", "reference": 7}, "billy"):
        with pytest.raises(ValueError, match="source"):
            model.model_validate_json(orjson.dumps({**good, "source": bad}))
    extra = {**SOURCE, "other": "x"}
    with pytest.raises(ValueError, match="other"):
        model.model_validate_json(orjson.dumps({**good, "source": extra}))
    fact = PaymentReceived(
        payment_id="pay_1",
        invoice_id="inv_1",
        amount=1,
        currency="DKK",
        method="card",
        received_on=date(2026, 1, 1),
        source=PaymentSource(target="billy", reference="x" * 129),
    )
    with pytest.raises(InvalidEventError) as refused:
        fact.check()
    assert refused.value.field == "source.reference"
