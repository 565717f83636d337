"""Monthly recognition vouchers in the delivery log: one per ended month with revenue, and a
further voucher for the difference when a late fact changes an ended month's revenue, so the
target's books always add up to ours."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from subledger.adapters.store import store_env
from subledger.adapters.sync.dispatcher import enqueue_vouchers
from subledger.adapters.sync.log import DeliveryLog
from subledger.api.http.ingest import parse_submissions
from subledger.api.sync import delivery_log_for
from subledger.domain.chart import DEFAULT_CHART
from subledger.domain.ledger import Ledger
from subledger.projections.engine import Rows
from subledger.projections.journal import JournalProjection


def invoice(number: int, issued: str, end: str, amount: int) -> dict[str, Any]:
    return {
        "id": f"evt_inv_{number}",
        "type": "invoice.issued",
        "data": {
            "invoice_id": f"inv_{number}",
            "customer_id": "cus_1",
            "issue_date": issued,
            "currency": "DKK",
            "lines": [
                {
                    "line_id": "1",
                    "product_id": "plan",
                    "quantity": "1",
                    "unit_amount": amount,
                    "vat_rate": "0.25",
                    "period_start": issued,
                    "period_end": end,
                }
            ],
        },
    }


CUSTOMER = {
    "id": "evt_cus_1",
    "type": "customer.created",
    "data": {"customer_id": "cus_1", "name": "Alpha", "country": "DK", "kind": "company"},
}


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger(store_env(f"sqlite:///{tmp_path / 'vouchers.db'}"))
    yield ledger
    ledger.close()


def append(ledger: Ledger, *events: dict[str, Any]) -> None:
    ledger.append(parse_submissions(orjson.dumps({"events": list(events)})))


def books(ledger: Ledger) -> Rows:
    projection, rows = JournalProjection(), Rows()
    for entry in ledger.iter_entries(ledger.last_position(), projection.event_types):
        projection.fold(rows, entry)
    return rows


def vouchers(delivery: DeliveryLog, month: str) -> list[dict[str, Any]]:
    return [
        {"source": m.source, "lines": m.payload["lines"]} for m in delivery.vouchers("billy", month)
    ]


def test_an_ended_month_gets_one_voucher_and_a_late_fact_a_voucher_for_the_difference(
    ledger: Ledger,
) -> None:
    delivery = delivery_log_for(ledger)
    append(ledger, CUSTOMER, invoice(1, "2026-01-01", "2026-02-01", 31000))
    today = date(2026, 2, 10)

    assert enqueue_vouchers(delivery, books(ledger), DEFAULT_CHART, ["billy"], today) == 1
    assert enqueue_vouchers(delivery, books(ledger), DEFAULT_CHART, ["billy"], today) == 0
    first = vouchers(delivery, "2026-01-31")
    assert [v["source"] for v in first] == ["2026-01"]
    assert {(line["side"], line["amount"]) for line in first[0]["lines"]} == {
        ("debit", 31000),
        ("credit", 31000),
    }, "January's revenue out of deferred revenue, into revenue"

    # A January invoice appended in February: January's revenue grows by 3,100.
    append(ledger, invoice(2, "2026-01-29", "2026-02-01", 9300))
    assert enqueue_vouchers(delivery, books(ledger), DEFAULT_CHART, ["billy"], today) == 1
    revised = vouchers(delivery, "2026-01-31")
    assert [v["source"] for v in revised] == ["2026-01", "2026-01/r1"]
    assert {(line["side"], line["amount"]) for line in revised[1]["lines"]} == {
        ("debit", 9300),
        ("credit", 9300),
    }, "only the difference"
    assert enqueue_vouchers(delivery, books(ledger), DEFAULT_CHART, ["billy"], today) == 0
    assert vouchers(delivery, "2026-02-28") == [], "February has not ended"
