"""`GET /v1/audit/{kind}/{id}` (docs/specification.md §4) on every store: a customer's whole story (its own events,
its subscriptions' and its invoices'), each event with what it produced, equal to what the
projections hold; as of a past point; unknown ids refused."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi.testclient import TestClient

from tests.builders import (
    cancelled,
    closed,
    credit_note,
    customer,
    invoice,
    item,
    line,
    payment,
    subscription,
    wire_event,
)
from tests.integration.test_revenue_api import get, post

#: docs/specification.md §8 example 3's line: 1,200 over January to March, monthly; a credit of 1,000 on 5 March.
LINE = line(
    unit_amount=1200,
    period_start=date(2026, 1, 1),
    period_end=date(2026, 4, 1),
    recognition="monthly",
)


def story(client: TestClient) -> int:
    return post(
        client,
        wire_event(customer("A"), "evt_a"),
        wire_event(customer("B"), "evt_b"),
        wire_event(subscription("a1", "A", date(2026, 1, 1), items=(item(1200),)), "evt_start"),
        wire_event(invoice("i1", "A", lines=(LINE,)), "evt_invoice"),
        wire_event(invoice("i2", "B"), "evt_other"),
        wire_event(payment("p1", "i1", amount=1500), "evt_paid"),
        wire_event(closed("2026-01"), "evt_close"),
        wire_event(
            credit_note("cn1", "i1", lines=(("1", 1000),), issue_date=date(2026, 3, 5)),
            "evt_credit",
        ),
        wire_event(cancelled("a1", date(2026, 5, 1)), "evt_cancel"),
    )


def produced(body: dict[str, Any], event_id: str) -> dict[str, Any]:
    (event,) = [e for e in body["events"] if e["id"] == event_id]
    result: dict[str, Any] = event["produced"]
    return result


def test_a_customers_audit_tells_its_whole_story_in_log_order(client: TestClient) -> None:
    story(client)
    answer = get(client, "/v1/audit/customer/A")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [e["id"] for e in body["events"]] == [
        "evt_a",
        "evt_start",
        "evt_invoice",
        "evt_paid",
        "evt_credit",
        "evt_cancel",
    ], "its own, its subscription's and its invoice's; not B's, not the period's"
    positions = [e["position"] for e in body["events"]]
    assert positions == sorted(positions)
    first = body["events"][0]
    assert first["type"] == "customer.created" and first["data"]["customer_id"] == "A"
    assert first["recorded_at"].endswith("Z")


def test_each_event_shows_the_revenue_mrr_entries_and_messages_it_produced(
    client: TestClient,
) -> None:
    story(client)
    body = get(client, "/v1/audit/customer/A").json()

    issued = produced(body, "evt_invoice")
    assert [(r["month"], r.get("recognized", 0)) for r in issued["recognition"]] == [
        ("2026-01", 400),
        ("2026-02", 400),
        ("2026-03", 400),
    ]
    assert [m["kind"] for m in issued["outbox"]] == ["invoice"]
    issue_entries = [e for e in issued["entries"] if e["kind"] == "invoice"]
    assert len(issue_entries) == 1
    assert sum(line["debit"] for line in issue_entries[0]["lines"]) == 1500

    credit = produced(body, "evt_credit")
    assert {r["month"]: r.get("recognized", 0) for r in credit["recognition"]} == {
        "2026-03": -1000
    }, "docs/specification.md §8 example 3: March's 400 to 0 and a reversal of −600"
    assert [m["kind"] for m in credit["outbox"]] == ["credit_note"]

    started = produced(body, "evt_start")
    assert started["mrr"] == [
        {
            "currency": "DKK",
            "month": "2026-01",
            "mrr_change": 1200,
            "customers_change": 1,
            "new": 1200,
        }
    ]
    churn = produced(body, "evt_cancel")
    assert [(m["month"], m["churn"]) for m in churn["mrr"]] == [("2026-05", -1200)]


def test_a_subscriptions_audit_lists_its_events_with_what_they_did_to_its_customer(
    client: TestClient,
) -> None:
    post(
        client,
        wire_event(customer("A"), "evt_a"),
        wire_event(subscription("a1", "A", date(2026, 1, 1), items=(item(1200),)), "evt_a1"),
        wire_event(subscription("a2", "A", date(2026, 1, 1), items=(item(800),)), "evt_a2"),
        wire_event(cancelled("a1", date(2026, 5, 1)), "evt_a1_cancel"),
    )
    answer = get(client, "/v1/audit/subscription/a1")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [e["id"] for e in body["events"]] == ["evt_a1", "evt_a1_cancel"]
    assert produced(body, "evt_a1_cancel")["mrr"] == [
        {"currency": "DKK", "month": "2026-05", "mrr_change": -1200, "contraction": -1200}
    ], "a contraction, not a churn: the customer keeps a2"
    assert get(client, "/v1/audit/subscription/a3").status_code == 404


def test_what_the_audit_says_was_produced_is_what_the_projections_hold(
    client: TestClient,
) -> None:
    story(client)
    body = get(client, "/v1/audit/invoice/i1").json()
    entry_ids = {e["entry_id"] for ev in body["events"] for e in ev["produced"]["entries"]}
    held = get(client, "/v1/ledger/entries", **{"from": "2026-01-01", "to": "2026-12-31"})
    assert held.status_code == 200, held.text
    of_i1 = {
        e["entry_id"]
        for e in held.json()["entries"]
        if set(e["source_event_ids"]) & {"evt_invoice", "evt_paid", "evt_credit"}
    }
    assert entry_ids == of_i1
    dates = {e["entry_id"]: e["date"] for e in held.json()["entries"]}
    audited_dates = {
        e["entry_id"]: e["date"] for ev in body["events"] for e in ev["produced"]["entries"]
    }
    assert audited_dates == {k: dates[k] for k in audited_dates}, "closed periods respected"

    schedule = get(client, "/v1/revenue/schedules/i1").json()
    recognized: dict[str, int] = {}
    for event in body["events"]:
        for row in event["produced"]["recognition"]:
            recognized[row["month"]] = recognized.get(row["month"], 0) + row.get("recognized", 0)
    assert recognized == {m["month"]: m["amount"] for m in schedule["lines"][0]["months"]}, (
        "the events' recognition adds up to the invoice's schedule"
    )


def test_an_audit_as_of_a_past_position_stops_there(client: TestClient) -> None:
    story(client)
    before_credit = get(client, "/v1/audit/customer/A").json()["events"][3]["position"]
    answer = get(client, "/v1/audit/customer/A", position=before_credit)
    assert answer.status_code == 200
    assert answer.headers["X-Log-Position"] == str(before_credit)
    assert [e["id"] for e in answer.json()["events"]] == [
        "evt_a",
        "evt_start",
        "evt_invoice",
        "evt_paid",
    ]


def test_an_unknown_id_or_kind_is_refused(client: TestClient) -> None:
    story(client)
    unknown = get(client, "/v1/audit/customer/Z")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "UNKNOWN_CUSTOMER"
    assert get(client, "/v1/audit/invoice/nope").json()["error"]["code"] == "UNKNOWN_INVOICE"
    assert get(client, "/v1/audit/payment/p1").status_code == 422
    assert client.get("/v1/audit/customer/A").status_code == 401
