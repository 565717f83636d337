"""The journal's endpoints (docs/specification.md §4) on every store: entries, paging, the trial balance, an account's
card, time travel, and the chart of accounts from the configuration file."""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from fastapi.testclient import TestClient

from subledger.api.http.app import create_app
from subledger.api.settings import ConfigurationError, Settings
from tests.builders import closed, credit_note, customer, invoice, line, payment, wire_event
from tests.conftest import API_KEYS, READ, WRITE
from tests.integration.test_revenue_api import MONTHLY, get, post

SPRING = {"from": "2026-01-01", "to": "2026-06-30"}


def the_credit_example(client: TestClient) -> int:
    """docs/specification.md §8 example 3: a monthly line of 1200 for January to March, credited 1000 on 5 March."""
    return post(
        client,
        wire_event(customer(), "evt_customer"),
        wire_event(invoice(lines=(MONTHLY,), issue_date=date(2026, 1, 1)), "evt_invoice"),
        wire_event(credit_note(lines=(("1", 1000),), issue_date=date(2026, 3, 5)), "evt_credit"),
    )


def lines(entry: dict[str, Any]) -> list[tuple[str, str, int, int]]:
    return [(x["account"], x["role"], x["debit"], x["credit"]) for x in entry["lines"]]


def test_the_credit_example_books_the_contracts_entries(client: TestClient) -> None:
    the_credit_example(client)
    answer = get(client, "/v1/ledger/entries", **SPRING)
    assert answer.status_code == 200
    entries = answer.json()["entries"]
    assert [(e["date"], e["kind"]) for e in entries] == [
        ("2026-01-01", "invoice"),
        ("2026-01-31", "recognition"),
        ("2026-02-28", "recognition"),
        ("2026-03-05", "credit_note"),
        ("2026-03-31", "recognition"),
        ("2026-03-31", "credit_adjustment"),
    ]
    credit, adjustment = entries[3], entries[5]
    assert lines(credit) == [
        ("7210", "output_vat", 250, 0),
        ("7400", "deferred_revenue", 400, 0),
        ("1000", "revenue", 600, 0),
        ("5600", "receivable", 0, 1250),
    ]
    assert lines(adjustment) == [("1000", "revenue", 400, 0), ("7400", "deferred_revenue", 0, 400)]
    assert credit["source_event_ids"] == adjustment["source_event_ids"] == ["evt_credit"]
    assert credit["status"] == "posted"
    assert {line["currency"] for e in entries for line in e["lines"]} == {"DKK"}


def test_entries_come_a_page_at_a_time_each_once(client: TestClient) -> None:
    the_credit_example(client)
    everything = get(client, "/v1/ledger/entries", **SPRING).json()["entries"]
    seen: list[str] = []
    after = None
    while True:
        params: dict[str, Any] = {**SPRING, "limit": 4}
        if after:
            params["after"] = after
        page = get(client, "/v1/ledger/entries", **params).json()
        seen += [e["entry_id"] for e in page["entries"]]
        after = page["next"]
        if after is None:
            break
    assert seen == [e["entry_id"] for e in everything]
    assert len(seen) == 6


def test_the_trial_balance_balances_and_leaves_out_what_is_scheduled(client: TestClient) -> None:
    the_credit_example(client)
    post(client, wire_event(payment(amount=250, method="card", received_on=date(2026, 3, 6))))
    march = get(client, "/v1/ledger/trial-balance", as_of="2026-03-31").json()
    assert march["currency"] == "DKK"
    assert march["total_debit"] == march["total_credit"]
    balances = {a["account"]: (a["role"], a["balance"]) for a in march["accounts"]}
    assert balances == {
        "1000": ("revenue", 200),
        "5600": ("receivable", 0),
        "5810": ("bank", 250),
        "7210": ("output_vat", 50),
        "7400": ("deferred_revenue", 0),
    }
    february = get(client, "/v1/ledger/trial-balance", as_of="2026-02-28").json()
    deferred = [a for a in february["accounts"] if a["role"] == "deferred_revenue"]
    assert deferred == [
        {"account": "7400", "role": "deferred_revenue", "debit": 0, "credit": 400, "balance": 400}
    ]


def test_an_accounts_card_runs_its_balance_across_pages(client: TestClient) -> None:
    the_credit_example(client)
    card = get(client, "/v1/ledger/accounts/7400", **SPRING).json()
    assert (card["role"], card["opening_balance"], card["closing_balance"]) == (
        "deferred_revenue",
        0,
        0,
    )
    assert [(x["date"], x["debit"], x["credit"], x["balance"]) for x in card["lines"]] == [
        ("2026-01-01", 0, 1200, 1200),
        ("2026-01-31", 400, 0, 800),
        ("2026-02-28", 400, 0, 400),
        ("2026-03-05", 400, 0, 0),
        ("2026-03-31", 400, 0, -400),
        ("2026-03-31", 0, 400, 0),
    ]
    march = get(client, "/v1/ledger/accounts/7400", **{"from": "2026-03-01", "to": "2026-03-31"})
    assert march.json()["opening_balance"] == 400
    paged: list[int] = []
    params: dict[str, Any] = {**SPRING, "limit": 2}
    while True:
        page = get(client, "/v1/ledger/accounts/7400", **params).json()
        paged += [x["balance"] for x in page["lines"]]
        if page["next"] is None:
            assert page["closing_balance"] == 0
            break
        assert page["closing_balance"] is None
        params["after"] = page["next"]
    assert paged == [x["balance"] for x in card["lines"]]


def test_an_unknown_account_and_a_forged_cursor_are_refused(client: TestClient) -> None:
    the_credit_example(client)
    unknown = get(client, "/v1/ledger/accounts/4242")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "UNKNOWN_ACCOUNT")
    for path in ("/v1/ledger/entries", "/v1/ledger/accounts/1000"):
        forged = get(client, path, after="bm90LWEtY3Vyc29y")
        assert (forged.status_code, forged.json()["error"]["code"]) == (422, "INVALID_REQUEST")


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-02-30"},
        {"from": "2026-03-01", "to": "2026-02-01"},
        {"to": "March"},
        {"limit": 0},
        {"currency": "dkk"},
    ],
)
def test_bad_days_and_limits_are_refused(client: TestClient, params: dict[str, Any]) -> None:
    for path in ("/v1/ledger/entries", "/v1/ledger/accounts/1000"):
        answer = get(client, path, **params)
        assert answer.status_code == 422, (path, params)
    assert get(client, "/v1/ledger/trial-balance", as_of="2026-02-30").status_code == 422


def test_a_past_point_answers_as_the_journal_stood_then(client: TestClient) -> None:
    post(client, wire_event(customer()))
    post(client, wire_event(invoice(lines=(MONTHLY,), issue_date=date(2026, 1, 1))))
    then_entries = get(client, "/v1/ledger/entries", **SPRING).json()
    then_balance = get(client, "/v1/ledger/trial-balance", as_of="2026-03-31").json()
    time.sleep(0.01)
    moment = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    position = post(
        client, wire_event(credit_note(lines=(("1", 1000),), issue_date=date(2026, 3, 5)))
    )
    assert get(client, "/v1/ledger/entries", **SPRING).json() != then_entries
    past = get(client, "/v1/ledger/entries", known_at=moment, **SPRING)
    assert past.json() == then_entries
    assert int(past.headers["X-Log-Position"]) == position - 1
    balance = get(client, "/v1/ledger/trial-balance", as_of="2026-03-31", position=position - 1)
    assert balance.json() == then_balance


def test_an_entry_in_a_closed_month_is_booked_in_the_first_open_one(client: TestClient) -> None:
    post(client, wire_event(customer()), wire_event(closed("2026-01")))
    post(client, wire_event(invoice(issue_date=date(2026, 1, 20))))
    entry = get(client, "/v1/ledger/entries", **SPRING).json()["entries"][0]
    assert (entry["date"], entry["original_date"]) == ("2026-02-01", "2026-01-20")


def test_reads_of_the_journal_need_the_read_scope(client: TestClient) -> None:
    for path in ("/v1/ledger/entries", "/v1/ledger/trial-balance", "/v1/ledger/accounts/1000"):
        assert client.get(path).status_code == 401
        assert client.get(path, headers=WRITE).status_code == 403


@pytest.fixture
def charted(tmp_path: Path) -> Iterator[TestClient]:
    config = tmp_path / "subledger.toml"
    config.write_text(
        '[accounts]\nreceivable = "1100"\n\n'
        '[accounts.revenue]\ndefault = "3000"\n"setup*" = "3010"\n\n'
        '[accounts.bank]\ndefault = "2000"\n'
    )
    settings = Settings(database_url="memory://", api_keys=API_KEYS, config=config)
    with TestClient(create_app(settings)) as client:
        yield client


def test_the_configuration_file_maps_roles_to_accounts(charted: TestClient) -> None:
    one_off = line(unit_amount=4000, product_id="setup_fee")
    post(
        charted,
        wire_event(customer()),
        wire_event(invoice(lines=(line(), one_off))),
        wire_event(payment(amount=17500, method="card")),
    )
    entries = get(charted, "/v1/ledger/entries", **SPRING).json()["entries"]
    assert lines(entries[0]) == [
        ("1100", "receivable", 17500, 0),
        ("7210", "output_vat", 0, 3500),
        ("3000", "revenue", 0, 10000),
        ("3010", "revenue", 0, 4000),
    ]
    assert lines(entries[1])[0] == ("2000", "bank", 17500, 0)
    card = get(charted, "/v1/ledger/accounts/3010", **SPRING).json()
    assert [x["credit"] for x in card["lines"]] == [4000]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('[accounts]\nreceivables = "5600"\n', "no role receivables"),
        ('[accounts]\nbank = { card = "5810" }\n', "needs a default account"),
        ("[accounts\n", "subledger.toml"),
        ('accounts = "5600"\n', "accounts: must be a table"),
    ],
)
def test_a_configuration_that_cannot_be_used_stops_the_start(
    tmp_path: Path, text: str, says: str
) -> None:
    config = tmp_path / "subledger.toml"
    config.write_text(text)
    with pytest.raises(ConfigurationError, match=says.replace("[", r"\[")):
        create_app(Settings(database_url="memory://", api_keys=API_KEYS, config=config))


def test_a_named_configuration_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no such file"):
        create_app(
            Settings(database_url="memory://", api_keys=API_KEYS, config=tmp_path / "none.toml")
        )


def test_the_docs_show_the_services_own_answers(client: TestClient) -> None:
    the_credit_example(client)
    post(client, wire_event(payment(amount=250, method="card", received_on=date(2026, 3, 6))))
    text = (Path(__file__).parents[2] / "docs" / "journal.md").read_text()
    commands = [c for c in re.findall(r"```sh\n(.*?)\n```", text, re.DOTALL) if "curl" in c]
    shown = re.findall(r"```json\n(.*?)\n```", text, re.DOTALL)
    assert len(commands) == len(shown) == 3
    for command, answer in zip(commands, shown, strict=True):
        url = urlsplit(next(p for p in shlex.split(command) if p.startswith("http")))
        actual = client.get(f"{url.path}?{url.query}", headers=READ)
        assert actual.json() == orjson.loads(answer), url
