"""The MRR endpoints (docs/specification.md §3.2, §4) on every store: the worked example, the drill-down, retention,
backdated facts and time travel."""

from __future__ import annotations

import re
import shlex
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from fastapi.testclient import TestClient

from tests.builders import (
    cancelled,
    changed,
    customer,
    discount,
    item,
    subscription,
    wire_event,
)
from tests.conftest import READ, WRITE
from tests.integration.test_revenue_api import get, post

SPRING = {"from": "2026-01", "to": "2026-07"}

#: docs/specification.md §8 example 4, as a billing system would send it, event by event.
EXAMPLE = [
    wire_event(customer("A"), "evt_a"),
    wire_event(customer("B"), "evt_b"),
    wire_event(subscription("a1", "A", date(2026, 1, 10), items=(item(10000),)), "evt_a_start"),
    wire_event(
        subscription(
            "b1",
            "B",
            date(2026, 2, 1),
            interval="week",
            items=(item(5000, quantity="2"),),
            trial_end=date(2026, 2, 15),
            discount=discount("0.20", duration="repeating", duration_in_months=2),
        ),
        "evt_b_start",
    ),
    wire_event(changed("a1", date(2026, 3, 1), items=(item(15000),)), "evt_a_change"),
    wire_event(cancelled("a1", date(2026, 5, 1)), "evt_a_cancel"),
    wire_event(
        subscription("a2", "A", date(2026, 7, 5), interval="year", items=(item(120000),)),
        "evt_a_yearly",
    ),
]


def nonzero(movements: dict[str, int]) -> dict[str, int]:
    return {kind: amount for kind, amount in movements.items() if amount}


def assert_identity(months: list[dict[str, Any]], before: int = 0) -> None:
    for month in months:
        assert month["mrr"] == before + sum(month["movements"].values()), month
        before = month["mrr"]


def test_the_worked_example_over_http(client: TestClient) -> None:
    post(client, *EXAMPLE)
    answer = get(client, "/v1/metrics/mrr", **SPRING)
    assert answer.status_code == 200
    body = answer.json()
    assert body["currency"] == "DKK"
    assert [(m["month"], m["mrr"], nonzero(m["movements"])) for m in body["months"]] == [
        ("2026-01", 10000, {"new": 10000}),
        ("2026-02", 44667, {"new": 34667}),
        ("2026-03", 49667, {"expansion": 5000}),
        ("2026-04", 58333, {"expansion": 8666}),
        ("2026-05", 43333, {"churn": -15000}),
        ("2026-06", 43333, {}),
        ("2026-07", 53333, {"reactivation": 10000}),
    ]
    assert body["months"][3] == {
        "month": "2026-04",
        "mrr": 58333,
        "arr": 699996,
        "customers": 2,
        "arpa": 29167,
        "movements": {
            "new": 0,
            "expansion": 8666,
            "reactivation": 0,
            "contraction": 0,
            "churn": 0,
        },
    }
    assert_identity(body["months"])


def test_a_customers_drill_down_names_the_events_behind_each_movement(
    client: TestClient,
) -> None:
    post(client, *EXAMPLE)
    body = get(client, "/v1/customers/A/mrr", **SPRING).json()
    assert body["customer_id"] == "A"
    assert body["currency"] == "DKK"
    assert [(m["mrr"], nonzero(m["movements"]), m["event_ids"]) for m in body["months"]] == [
        (10000, {"new": 10000}, ["evt_a_start"]),
        (10000, {}, []),
        (15000, {"expansion": 5000}, ["evt_a_change"]),
        (15000, {}, []),
        (0, {"churn": -15000}, ["evt_a_cancel"]),
        (0, {}, []),
        (10000, {"reactivation": 10000}, ["evt_a_yearly"]),
    ]
    b = get(client, "/v1/customers/B/mrr", **SPRING).json()["months"]
    # B's expansion in April is its discount ending: the event that set it is behind it.
    assert (b[3]["movements"]["expansion"], b[3]["event_ids"]) == (8666, ["evt_b_start"])
    assert_identity(b)


def test_retention_is_measured_against_the_month_before(client: TestClient) -> None:
    post(client, *EXAMPLE)
    months = get(client, "/v1/metrics/retention", **SPRING).json()["months"]
    may = months[4]
    assert may["month"] == "2026-05"
    assert (may["starting_mrr"], may["starting_customers"]) == (58333, 2)
    assert may["churn"] == -15000
    assert may["gross_revenue_retention"] == "0.7429"  # 43333 / 58333
    assert may["net_revenue_retention"] == "0.7429"
    assert may["customer_churn_rate"] == "0.5000"
    april = months[3]
    assert april["gross_revenue_retention"] == "1.0000"
    assert april["net_revenue_retention"] == "1.1745"  # 58333 / 49667 = 1.17447
    assert months[0]["gross_revenue_retention"] is None  # nothing to retain in January


def test_a_backdated_cancellation_rewrites_the_months_from_its_date(client: TestClient) -> None:
    before = post(client, *EXAMPLE)
    time.sleep(0.01)
    then_known = datetime.now(UTC)
    time.sleep(0.01)
    post(client, wire_event(cancelled("b1", date(2026, 3, 20)), "evt_b_cancel"))
    months = get(client, "/v1/metrics/mrr", **SPRING).json()["months"]
    assert [m["mrr"] for m in months] == [10000, 44667, 15000, 15000, 0, 0, 10000]
    assert nonzero(months[2]["movements"]) == {"expansion": 5000, "churn": -34667}
    assert_identity(months)
    then = get(client, "/v1/metrics/mrr", position=before, **SPRING).json()["months"]
    assert [m["mrr"] for m in then] == [10000, 44667, 49667, 58333, 43333, 43333, 53333]
    known = get(client, "/v1/metrics/mrr", known_at=then_known.isoformat(), **SPRING)
    assert known.headers["X-Log-Position"] == str(before)
    assert known.json()["months"] == then
    b_then = get(client, "/v1/customers/B/mrr", known_at=then_known.isoformat(), **SPRING)
    assert [m["mrr"] for m in b_then.json()["months"]][2:4] == [34667, 43333]


def test_a_customers_past_answer_is_the_one_given_then(client: TestClient) -> None:
    seen = {}
    for event in EXAMPLE:
        position = post(client, event)
        if event["type"].startswith("subscription."):
            seen[position] = get(client, "/v1/customers/A/mrr", **SPRING).json()
    for position, expected in seen.items():
        then = get(client, "/v1/customers/A/mrr", position=position, **SPRING)
        assert then.headers["X-Log-Position"] == str(position)
        assert then.json() == expected
    early = get(client, "/v1/customers/B/mrr", position=1)
    assert early.status_code == 404
    assert early.json()["error"]["code"] == "UNKNOWN_CUSTOMER"


def test_a_customer_without_subscriptions_has_no_mrr(client: TestClient) -> None:
    post(client, wire_event(customer("quiet")))
    body = get(client, "/v1/customers/quiet/mrr", **{"from": "2026-01", "to": "2026-01"}).json()
    assert body == {
        "customer_id": "quiet",
        "erased": False,
        "currency": None,
        "months": [
            {
                "month": "2026-01",
                "mrr": 0,
                "arr": 0,
                "movements": dict.fromkeys(
                    ("new", "expansion", "reactivation", "contraction", "churn"), 0
                ),
                "event_ids": [],
            }
        ],
    }


def test_an_unknown_customer_is_404(client: TestClient) -> None:
    answer = get(client, "/v1/customers/nobody/mrr")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "UNKNOWN_CUSTOMER"


def test_no_data_answers_zeros(client: TestClient) -> None:
    body = get(client, "/v1/metrics/mrr", **{"from": "2026-01", "to": "2026-01"}).json()
    assert body["currency"] is None
    assert body["months"][0]["mrr"] == 0
    assert body["months"][0]["arpa"] is None
    retention = get(client, "/v1/metrics/retention", **{"from": "2026-01", "to": "2026-01"})
    assert retention.json()["months"][0]["net_revenue_retention"] is None


def test_several_currencies_need_one_named(client: TestClient) -> None:
    post(
        client,
        wire_event(customer("c1")),
        wire_event(subscription("s1", "c1")),
        wire_event(subscription("s2", "c1", currency="EUR", items=(item(900),))),
    )
    for path in ("/v1/metrics/mrr", "/v1/metrics/retention", "/v1/customers/c1/mrr"):
        answer = get(client, path)
        assert answer.status_code == 422
        assert answer.json()["error"]["code"] == "CURRENCY_REQUIRED"
    euros = get(
        client, "/v1/customers/c1/mrr", currency="EUR", **{"from": "2026-01", "to": "2026-01"}
    )
    assert euros.json()["months"][0]["mrr"] == 900


def test_mrr_reads_need_the_read_scope(client: TestClient) -> None:
    for path in ("/v1/metrics/mrr", "/v1/metrics/retention", "/v1/customers/c1/mrr"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=WRITE).status_code == 403
        assert client.get(path, headers=READ).status_code in (200, 404)


def test_the_docs_show_the_services_own_answers(client: TestClient) -> None:
    post(client, *EXAMPLE)
    text = (Path(__file__).parents[2] / "docs" / "mrr.md").read_text()
    commands = re.findall(r"```sh\n(.*?)\n```", text, re.DOTALL)
    shown = re.findall(r"```json\n(.*?)\n```", text, re.DOTALL)
    assert len(commands) == len(shown) == 3
    for command, answer in zip(commands, shown, strict=True):
        url = urlsplit(next(p for p in shlex.split(command) if p.startswith("http")))
        actual = client.get(f"{url.path}?{url.query}", headers=READ)
        assert actual.json() == orjson.loads(answer), url
