"""The ingestion suite: `POST /v1/events` and `GET /v1/events` over the app, on every store."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from subledger.api.http.examples import EXAMPLE_EVENTS
from tests.builders import (
    credit_note,
    customer,
    invoice,
    payment,
    refund,
    subscription,
    wire_event,
)
from tests.conftest import READ, WRITE


def post(client: TestClient, body: Any, headers: dict[str, str] = WRITE) -> Any:
    return client.post("/v1/events", json=body, headers=headers)


def log(client: TestClient, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
    answer = client.get("/v1/events", params={"after": after, "limit": limit}, headers=READ)
    assert answer.status_code == 200, answer.text
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


def refusal(answer: Any, status: int, code: str) -> list[dict[str, Any]]:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    details: list[dict[str, Any]] = error["details"]
    return details


def story() -> list[dict[str, Any]]:
    return [
        wire_event(customer(), "e1"),
        wire_event(subscription(), "e2"),
        wire_event(invoice(subscription_id="s1"), "e3"),
    ]


def test_a_batch_is_appended_with_positions_in_order(client: TestClient) -> None:
    answer = post(client, {"events": story()})
    assert answer.status_code == 201
    assert answer.json() == {
        "results": [
            {"id": "e1", "status": "appended", "position": 1},
            {"id": "e2", "status": "appended", "position": 2},
            {"id": "e3", "status": "appended", "position": 3},
        ],
        "last_position": 3,
    }


def test_a_single_event_may_be_sent_without_a_batch(client: TestClient) -> None:
    answer = post(client, wire_event(customer(), "e1"))
    assert answer.status_code == 201
    assert answer.json()["results"] == [{"id": "e1", "status": "appended", "position": 1}]


def test_a_retried_batch_answers_200_with_duplicates_and_appends_nothing(
    client: TestClient,
) -> None:
    post(client, {"events": story()})
    answer = post(client, {"events": story()})
    assert answer.status_code == 200
    assert [r["status"] for r in answer.json()["results"]] == ["duplicate"] * 3
    assert [r["position"] for r in answer.json()["results"]] == [1, 2, 3]
    assert len(log(client)) == 3


def test_a_partly_retried_batch_appends_only_the_new_events(client: TestClient) -> None:
    post(client, {"events": story()[:2]})
    answer = post(client, {"events": story()})
    assert answer.status_code == 201
    assert [(r["status"], r["position"]) for r in answer.json()["results"]] == [
        ("duplicate", 1),
        ("duplicate", 2),
        ("appended", 3),
    ]


def test_the_log_returns_each_event_as_it_was_appended_but_erased_personal_data(
    client: TestClient,
) -> None:
    sent = copy.deepcopy(EXAMPLE_EVENTS)
    assert post(client, {"events": sent}).status_code == 201
    logged = log(client)
    assert [event["position"] for event in logged] == list(range(1, len(sent) + 1))
    erased = {e["data"]["customer_id"] for e in sent if e["type"] == "customer.erased"}
    assert erased, "the examples erase a customer"
    for original, event in zip(sent, logged, strict=True):
        data = original["data"]
        if original["type"].startswith("customer.") and data["customer_id"] in erased:
            personal = ("name", "email", "vat_number", "ean", "address")
            data = {k: v for k, v in data.items() if k not in personal}
            if original["type"] != "customer.erased":
                data["erased"] = True
        assert (event["id"], event["type"], event["data"]) == (
            original["id"],
            original["type"],
            data,
        )
        assert event["recorded_at"].endswith("Z")
    assert logged[0]["occurred_at"] == "2026-01-15T09:58:00Z"
    assert logged[3]["occurred_at"] is None


def test_the_log_pages_after_a_position(client: TestClient) -> None:
    post(client, {"events": EXAMPLE_EVENTS})
    page = client.get("/v1/events", params={"after": 5, "limit": 3}, headers=READ)
    assert [event["position"] for event in page.json()["events"]] == [6, 7, 8]
    assert page.headers["X-Log-Position"] == "8"
    assert log(client, after=len(EXAMPLE_EVENTS)) == []


def test_recorded_times_never_decrease_along_the_log(client: TestClient) -> None:
    for index in range(5):
        post(client, wire_event(customer(f"c{index}")))
    times = [event["recorded_at"] for event in log(client)]
    assert times == sorted(times)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e.update(type="invoice.paid"), "type"),
        (lambda e: e.pop("id"), "id"),
        (lambda e: e.update(id=""), "id"),
        (lambda e: e.update(id="x" * 129), "id"),
        (lambda e: e.update(occurred_at="2026-01-15T10:00:00"), "occurred_at"),
        (lambda e: e.update(surprise=1), "surprise"),
        (lambda e: e["data"].pop("customer_id"), "data.customer_id"),
        (lambda e: e["data"].update(customer_id=42), "data.customer_id"),
        (lambda e: e["data"].update(currency="kroner"), "data.currency"),
        (lambda e: e["data"].update(currency="XYZ"), "data.currency"),
        (lambda e: e["data"].update(issue_date="2026-02-30"), "data.issue_date"),
        (lambda e: e["data"].update(issue_date="15/01/2026"), "data.issue_date"),
        (lambda e: e["data"].update(notes="hello"), "data.notes"),
        (lambda e: e["data"]["lines"][0].update(unit_amount=-100), "data.lines[0].unit_amount"),
        (lambda e: e["data"]["lines"][0].update(unit_amount="100"), "data.lines[0].unit_amount"),
        (lambda e: e["data"]["lines"][0].update(unit_amount=100.0), "data.lines[0].unit_amount"),
        (lambda e: e["data"]["lines"][0].update(quantity=1), "data.lines[0].quantity"),
        (lambda e: e["data"]["lines"][0].update(vat_rate="1.0"), "data.lines[0].vat_rate"),
        (lambda e: e["data"]["lines"][0].update(vat_rate="-0.1"), "data.lines[0].vat_rate"),
        (
            lambda e: e["data"]["lines"][0].update(
                period_start="2026-02-01", period_end="2026-02-01"
            ),
            "data.lines[0].period_end",
        ),
        (
            lambda e: e["data"]["lines"][0].update(period_start="2026-02-01"),
            "data.lines[0].period_end",
        ),
        (lambda e: e["data"]["lines"][0].update(colour="red"), "data.lines[0].colour"),
        (lambda e: e["data"].update(lines=[]), "data.lines"),
    ],
)
def test_a_malformed_event_is_refused_naming_its_index_and_field(
    client: TestClient, mutate: Any, field: str
) -> None:
    post(client, wire_event(customer()))
    bad = wire_event(invoice("i9"), "bad")
    mutate(bad)
    answer = post(client, {"events": [wire_event(customer("c2")), bad]})
    details = refusal(answer, 422, "INVALID_EVENT")
    assert {"index": 1, "field": field} in [
        {"index": d["index"], "field": d["field"]} for d in details
    ]
    assert len(log(client)) == 1


def test_every_malformed_event_of_a_batch_is_reported_at_once(client: TestClient) -> None:
    first = wire_event(customer())
    first["data"]["country"] = "Denmark"
    second = wire_event(payment())
    second["data"]["amount"] = -5
    details = refusal(post(client, {"events": [first, second]}), 422, "INVALID_EVENT")
    assert [(d["index"], d["field"]) for d in details] == [
        (0, "data.country"),
        (1, "data.amount"),
    ]


def test_a_reference_to_an_unknown_invoice_is_refused(client: TestClient) -> None:
    answer = post(client, {"events": [*story(), wire_event(payment(invoice_id="nope"))]})
    details = refusal(answer, 422, "UNKNOWN_REFERENCE")
    assert (details[0]["index"], details[0]["field"]) == (3, "data.invoice_id")
    assert log(client) == []


def test_a_second_creation_with_an_existing_business_id_is_refused(client: TestClient) -> None:
    post(client, {"events": story()})
    answer = post(client, wire_event(invoice(subscription_id="s1"), "e4"))
    details = refusal(answer, 409, "ALREADY_EXISTS")
    assert (details[0]["index"], details[0]["field"]) == (0, "data.invoice_id")


def test_a_fact_that_breaks_a_rule_is_refused(client: TestClient) -> None:
    post(client, {"events": story()})
    answer = post(client, wire_event(payment(currency="EUR")))
    details = refusal(answer, 422, "RULE_VIOLATED")
    assert (details[0]["index"], details[0]["field"]) == (0, "data.currency")


def test_an_event_id_reused_with_another_body_is_refused_and_nothing_appended(
    client: TestClient,
) -> None:
    post(client, {"events": story()})
    reused = wire_event(customer("c2"), "e1")
    answer = post(client, {"events": [wire_event(customer("c3")), reused]})
    details = refusal(answer, 409, "EVENT_ID_REUSED")
    assert (details[0]["index"], details[0]["field"]) == (1, "id")
    assert len(log(client)) == 3


def test_the_same_body_with_another_occurred_at_is_still_a_duplicate(client: TestClient) -> None:
    event = wire_event(customer(), "e1")
    post(client, {**event, "occurred_at": "2026-01-01T00:00:00Z"})
    answer = post(client, {**event, "occurred_at": "2026-01-02T00:00:00+01:00"})
    assert answer.json()["results"][0]["status"] == "duplicate"


def test_a_retry_with_keys_reordered_and_nulls_for_absent_fields_is_a_duplicate(
    client: TestClient,
) -> None:
    event = wire_event(invoice(subscription_id="s1"), "e3")
    post(client, {"events": [*story()[:2], event]})
    retry = {
        "data": dict(reversed(event["data"].items())) | {"due_date": None, "number": None},
        "type": event["type"],
        "id": "e3",
    }
    answer = post(client, retry)
    assert answer.status_code == 200
    assert answer.json()["results"][0]["status"] == "duplicate"


def test_null_that_removes_a_field_is_not_the_same_as_leaving_it_out(client: TestClient) -> None:
    post(client, {"events": story()})
    keep = {
        "id": "u1",
        "type": "customer.updated",
        "data": {"customer_id": "c1", "name": "Nordlys A/S"},
    }
    remove = {
        "id": "u1",
        "type": "customer.updated",
        "data": {"customer_id": "c1", "name": "Nordlys A/S", "email": None},
    }
    assert post(client, keep).status_code == 201
    refusal(post(client, remove), 409, "EVENT_ID_REUSED")


def test_a_refused_batch_appends_nothing_and_can_be_fixed_and_resent(client: TestClient) -> None:
    events = [*story(), wire_event(payment(amount=12500), "e4")]
    events[3]["data"]["currency"] = "SEK"
    refusal(post(client, {"events": events}), 422, "RULE_VIOLATED")
    assert log(client) == []
    events[3]["data"]["currency"] = "DKK"
    answer = post(client, {"events": events})
    assert [r["status"] for r in answer.json()["results"]] == ["appended"] * 4


def test_a_batch_over_a_thousand_events_is_refused_as_too_large(client: TestClient) -> None:
    events = [wire_event(customer(f"c{i}")) for i in range(1001)]
    refusal(post(client, {"events": events}), 413, "BATCH_TOO_LARGE")
    assert log(client) == []


def test_a_batch_of_a_thousand_events_is_appended(client: TestClient) -> None:
    events = [wire_event(customer(f"c{i}")) for i in range(1000)]
    answer = post(client, {"events": events})
    assert answer.status_code == 201
    assert answer.json()["last_position"] == 1000


def test_an_empty_batch_is_refused(client: TestClient) -> None:
    refusal(post(client, {"events": []}), 422, "INVALID_EVENT")


def test_a_body_that_is_not_json_is_refused(client: TestClient) -> None:
    answer = client.post("/v1/events", content=b"{not json", headers=WRITE)
    refusal(answer, 400, "INVALID_JSON")


def test_a_body_over_the_limit_is_refused(client: TestClient) -> None:
    limit = client.app.state.settings.max_body_bytes  # type: ignore[attr-defined]
    answer = client.post("/v1/events", content=b" " * (limit + 1), headers=WRITE)
    refusal(answer, 413, "BODY_TOO_LARGE")


def test_a_batch_with_fields_beside_events_is_refused(client: TestClient) -> None:
    details = refusal(post(client, {"events": story(), "x": 1}), 422, "INVALID_EVENT")
    assert details[0]["field"] == "x"


def test_appending_needs_a_key_with_the_write_scope(client: TestClient) -> None:
    refusal(post(client, wire_event(customer()), headers={}), 401, "UNAUTHORIZED")
    refusal(
        post(client, wire_event(customer()), headers={"Authorization": "Bearer wrong-key"}),
        401,
        "UNAUTHORIZED",
    )
    refusal(post(client, wire_event(customer()), headers=READ), 403, "FORBIDDEN")
    assert log(client) == []


def test_reading_the_log_needs_a_key_with_the_read_scope(client: TestClient) -> None:
    answer = client.get("/v1/events")
    refusal(answer, 401, "UNAUTHORIZED")
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    refusal(client.get("/v1/events", headers=WRITE), 403, "FORBIDDEN")


def test_bad_paging_parameters_are_refused(client: TestClient) -> None:
    answer = client.get("/v1/events", params={"after": -1}, headers=READ)
    refusal(answer, 422, "INVALID_REQUEST")
    answer = client.get("/v1/events", params={"limit": 1001}, headers=READ)
    refusal(answer, 422, "INVALID_REQUEST")


def test_health_answers_without_a_key_and_says_nothing_of_the_log(
    client: TestClient, store_url: str
) -> None:
    """Only whether the store answers, and its kind: no count, no position."""
    post(client, {"events": story()})
    answer = client.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "store": store_url.split(":", 1)[0]}


def test_every_example_event_is_accepted(client: TestClient) -> None:
    answer = post(client, {"events": EXAMPLE_EVENTS})
    assert answer.status_code == 201, answer.text
    assert all(r["status"] == "appended" for r in answer.json()["results"])


def test_every_example_in_the_openapi_document_is_accepted(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    shown = {
        schema["examples"][0]["id"]: schema["examples"][0]
        for schema in schemas.values()
        if "const" in schema.get("properties", {}).get("type", {})
    }
    assert len(shown) == 15
    # Append the story in order, taking each event that the document shows from the document.
    for event in EXAMPLE_EVENTS:
        answer = post(client, shown.pop(event["id"], event))
        assert answer.status_code == 201, answer.text
    assert shown == {}
    body = document["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    for example in body["examples"].values():
        answer = post(client, example["value"])
        assert answer.status_code == 200, answer.text  # the same events: duplicates


def test_the_openapi_document_describes_every_event_types_data(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    for type_name in {event["type"] for event in EXAMPLE_EVENTS}:
        title = "".join(p.capitalize() for p in type_name.replace("_", ".").split("."))
        event_schema = schemas[f"{title}Event"]
        assert event_schema["properties"]["type"]["const"] == type_name
        data_ref = event_schema["properties"]["data"]["$ref"].rsplit("/", 1)[-1]
        assert schemas[data_ref]["additionalProperties"] is False
        assert schemas[data_ref]["properties"]
    assert client.get("/docs").status_code == 200


def rated_story() -> list[dict[str, Any]]:
    """A euro invoice expected by bank transfer, paid, refunded and credited, each document
    with its own exchange rate."""
    events = [
        wire_event(customer(), "r1"),
        wire_event(invoice(currency="EUR"), "r2"),
        wire_event(payment(currency="EUR"), "r3"),
        wire_event(refund(), "r4"),
        wire_event(credit_note(lines=(("1", 1000),)), "r5"),
    ]
    events[1]["data"] |= {"payment_method": "bank_transfer", "exchange_rate": "7.46040"}
    events[2]["data"]["exchange_rate"] = "7.4610"
    events[3]["data"]["exchange_rate"] = "0.0000435012"
    events[4]["data"]["exchange_rate"] = "999999.5"
    return events


def test_exchange_rates_and_the_expected_method_are_kept_and_logged_as_sent(
    client: TestClient,
) -> None:
    sent = rated_story()
    assert "due_date" not in sent[1]["data"]
    assert post(client, {"events": sent}).status_code == 201
    assert [(e["id"], e["type"], e["data"]) for e in log(client)] == [
        (e["id"], e["type"], e["data"]) for e in sent
    ]
    again = post(client, {"events": rated_story()})
    assert [r["status"] for r in again.json()["results"]] == ["duplicate"] * 5
    other = rated_story()[2]
    other["data"]["exchange_rate"] = "7.4611"
    refusal(post(client, other), 409, "EVENT_ID_REUSED")


@pytest.mark.parametrize("rate", ["0", "0.0000", "-7.46", "7,46", "1e3", 7.46, "1000000"])
@pytest.mark.parametrize("index", [1, 2, 3, 4])
def test_an_exchange_rate_that_is_not_a_positive_decimal_is_refused(
    client: TestClient, index: int, rate: Any
) -> None:
    events = rated_story()
    events[index]["data"]["exchange_rate"] = rate
    details = refusal(post(client, {"events": events}), 422, "INVALID_EVENT")
    assert [(d["index"], d["field"]) for d in details] == [(index, "data.exchange_rate")]
    assert log(client) == []


def test_an_exchange_rate_with_more_than_ten_decimals_is_refused(client: TestClient) -> None:
    events = rated_story()
    events[1]["data"]["exchange_rate"] = "7.46040000001"
    details = refusal(post(client, {"events": events}), 422, "INVALID_EVENT")
    assert [(d["index"], d["field"]) for d in details] == [(1, "data.exchange_rate")]


@pytest.mark.parametrize("method", ["Card", "bank transfer", "", "9card", 5, None])
def test_a_payment_method_that_is_not_a_lower_case_name_is_refused(
    client: TestClient, method: Any
) -> None:
    events = rated_story()[:2]
    events[1]["data"]["payment_method"] = method
    answer = post(client, {"events": events})
    if method is None:  # null is the same as leaving it out
        assert answer.status_code == 201
        assert "payment_method" not in log(client)[1]["data"]
        return
    details = refusal(answer, 422, "INVALID_EVENT")
    assert [(d["index"], d["field"]) for d in details] == [(1, "data.payment_method")]
