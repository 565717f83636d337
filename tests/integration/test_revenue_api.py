"""The revenue endpoints (docs/specification.md §4) on every store: answers, read-your-writes, and time travel."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from subledger.api.http.app import create_app
from subledger.api.settings import Settings
from tests.builders import credit_note, customer, invoice, line, wire_event
from tests.conftest import API_KEYS, READ, WRITE


def post(client: TestClient, *events: dict[str, Any]) -> int:
    answer = client.post("/v1/events", json={"events": list(events)}, headers=WRITE)
    assert answer.status_code in (200, 201), answer.text
    position: int = answer.json()["last_position"]
    return position


def get(client: TestClient, path: str, **params: Any) -> Any:
    return client.get(path, params=params, headers=READ)


#: Every read over a range of months, each taking `from`, `to`, `currency` and a point of the log.
MONTHLY_READS = (
    "/v1/revenue/summary",
    "/v1/revenue/waterfall",
    "/v1/metrics/mrr",
    "/v1/metrics/retention",
    "/v1/customers/c1/mrr",
)
DAILY = line(unit_amount=60000, period_start=date(2026, 1, 15), period_end=date(2026, 7, 15))
MONTHLY = line(
    unit_amount=1200,
    period_start=date(2026, 1, 1),
    period_end=date(2026, 4, 1),
    recognition="monthly",
)


def test_the_schedule_of_an_invoice_is_the_contracts(client: TestClient) -> None:
    post(client, wire_event(customer()), wire_event(invoice(lines=(DAILY,))))
    answer = get(client, "/v1/revenue/schedules/i1")
    assert answer.status_code == 200
    body = answer.json()
    assert body["currency"] == "DKK"
    assert [m["amount"] for m in body["lines"][0]["months"]] == [
        5635,
        9282,
        10276,
        9945,
        10276,
        9945,
        4641,
    ]


def test_a_read_reflects_every_append_answered_before_it(client: TestClient) -> None:
    post(client, wire_event(customer()))
    for number in range(5):
        position = post(client, wire_event(invoice(f"i{number}", lines=(MONTHLY,))))
        answer = get(client, "/v1/revenue/summary", **{"from": "2026-01", "to": "2026-03"})
        assert int(answer.headers["X-Log-Position"]) >= position
        assert answer.json()["months"][0]["billed"] == 1200 * (number + 1)


def test_the_summary_and_the_waterfall_after_a_credit_beyond_what_is_left(
    client: TestClient,
) -> None:
    post(
        client,
        wire_event(customer()),
        wire_event(invoice(lines=(MONTHLY,), issue_date=date(2026, 1, 1))),
        wire_event(credit_note(lines=(("1", 1000),), issue_date=date(2026, 3, 5))),
    )
    summary = get(client, "/v1/revenue/summary", **{"from": "2026-01", "to": "2026-04"}).json()
    assert summary["currency"] == "DKK"
    assert [
        (m["billed"], m["credited"], m["recognized"], m["deferred_end"]) for m in summary["months"]
    ] == [
        (1200, 0, 400, 800),
        (0, 0, 400, 400),
        (0, 1000, -600, 0),
        (0, 0, 0, 0),
    ]
    schedule = get(client, "/v1/revenue/schedules/i1").json()
    assert [m["amount"] for m in schedule["lines"][0]["months"]] == [400, 400, -600]
    waterfall = get(client, "/v1/revenue/waterfall", **{"from": "2026-01", "to": "2026-02"})
    assert waterfall.json()["rows"] == [
        {
            "billing_month": "2026-01",
            "billed": 1200,
            "months": [
                {"month": "2026-01", "amount": 400},
                {"month": "2026-02", "amount": 400},
                {"month": "2026-03", "amount": -600},
            ],
        },
        {"billing_month": "2026-02", "billed": 0, "months": []},
    ]


def test_any_past_position_answers_as_the_live_rows_did_then(client: TestClient) -> None:
    post(client, wire_event(customer()))
    seen: dict[int, Any] = {}
    moments: dict[int, datetime] = {}
    for number, issued in enumerate([date(2026, 1, 5), date(2026, 2, 5), date(2026, 2, 20)]):
        position = post(
            client, wire_event(invoice(f"i{number}", lines=(DAILY,), issue_date=issued))
        )
        answer = get(client, "/v1/revenue/summary", **{"from": "2026-01", "to": "2026-08"})
        seen[position] = answer.json()
        time.sleep(0.01)
        moments[position] = datetime.now(UTC)
    post(client, wire_event(credit_note("cn", "i0", issue_date=date(2026, 3, 1))))
    for position, expected in seen.items():
        then = get(
            client, "/v1/revenue/summary", position=position, **{"from": "2026-01", "to": "2026-08"}
        )
        assert then.json() == expected
        assert then.headers["X-Log-Position"] == str(position)
        known = get(
            client,
            "/v1/revenue/summary",
            known_at=moments[position].isoformat(),
            **{"from": "2026-01", "to": "2026-08"},
        )
        assert known.json() == expected
    early = get(client, "/v1/revenue/schedules/i1", position=min(seen))
    assert early.status_code == 404
    assert early.json()["error"]["code"] == "UNKNOWN_INVOICE"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"from": "2026-13"}, "INVALID_REQUEST"),
        ({"from": "2026-05", "to": "2026-04"}, "INVALID_REQUEST"),
        ({"to": "January"}, "INVALID_REQUEST"),
        ({"currency": "dkk"}, "INVALID_REQUEST"),
        ({"currency": "XXX"}, "INVALID_REQUEST"),
        ({"position": -1}, "INVALID_REQUEST"),
        ({"position": 999}, "INVALID_REQUEST"),
        ({"known_at": "2999-01-01T00:00:00Z"}, "INVALID_REQUEST"),
        ({"known_at": "2026-01-01T00:00:00"}, "INVALID_REQUEST"),
        ({"position": 1, "known_at": "2026-01-01T00:00:00Z"}, "INVALID_REQUEST"),
        ({"from": "1900-01", "to": "2026-01"}, "INVALID_REQUEST"),
    ],
)
def test_bad_parameters_are_refused(client: TestClient, params: dict[str, Any], code: str) -> None:
    post(client, wire_event(customer()), wire_event(invoice()))
    for path in MONTHLY_READS:
        answer = get(client, path, **params)
        assert answer.status_code == 422, (path, params, answer.text)
        assert answer.json()["error"]["code"] == code


def test_several_currencies_need_one_named(client: TestClient) -> None:
    post(
        client,
        wire_event(customer()),
        wire_event(invoice("i1")),
        wire_event(invoice("i2", currency="EUR")),
    )
    answer = get(client, "/v1/revenue/summary")
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "CURRENCY_REQUIRED"
    euros = get(
        client, "/v1/revenue/summary", currency="EUR", **{"from": "2026-01", "to": "2026-01"}
    )
    assert euros.json()["months"][0]["billed"] == 10000


def test_an_unknown_invoice_is_404(client: TestClient) -> None:
    answer = get(client, "/v1/revenue/schedules/nope")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "UNKNOWN_INVOICE"


def test_no_data_answers_zeros(client: TestClient) -> None:
    answer = get(client, "/v1/revenue/summary", **{"from": "2026-01", "to": "2026-02"})
    assert answer.json() == {
        "currency": None,
        "months": [
            {"month": m, "billed": 0, "credited": 0, "recognized": 0, "deferred_end": 0}
            for m in ("2026-01", "2026-02")
        ],
    }


def test_reads_need_the_read_scope(client: TestClient) -> None:
    for path in ("/v1/revenue/summary", "/v1/revenue/waterfall", "/v1/revenue/schedules/i1"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=WRITE).status_code == 403


@pytest.fixture
def without_projections(database_url: str) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, api_keys=API_KEYS, read_wait_seconds=0.3)
    with TestClient(create_app(settings, run_projections=False)) as client:
        yield client


def test_a_read_waits_for_projections_folded_elsewhere_and_says_when_they_lag(
    without_projections: TestClient, database_url: str
) -> None:
    from subledger.adapters.store import store_env
    from subledger.api.composition import build_runner
    from subledger.domain.ledger import Ledger

    client = without_projections
    post(client, wire_event(customer()), wire_event(invoice()))
    lagging = get(client, "/v1/revenue/summary")
    assert lagging.status_code == 503
    assert lagging.json()["error"]["code"] == "NOT_CAUGHT_UP"
    assert lagging.headers["Retry-After"] == "1"
    elsewhere = Ledger(store_env(database_url))
    runner = build_runner(Settings(database_url=database_url), elsewhere)
    runner.prepare()
    runner.catch_up()
    answer = get(client, "/v1/revenue/summary", **{"from": "2026-01", "to": "2026-01"})
    assert answer.status_code == 200
    assert answer.json()["months"][0]["billed"] == 10000
    elsewhere.close()
