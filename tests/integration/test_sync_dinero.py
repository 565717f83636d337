"""The Dinero adapter against the Dinero sandbox served over real HTTP, on SQLite and
PostgreSQL: tokens kept and renewed, a stale `TimeStamp` read again, totals that differ held
until the mapping is fixed, e-mail and EAN once, the mapping checked, the configuration refused
with reasons, and the reconciliation read off Dinero's lists and entries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from subledger.adapters.sandbox import serving
from subledger.adapters.sandbox.dinero import DineroSandboxSettings, create_dinero_app
from subledger.adapters.sandbox.faults import FaultSettings
from subledger.adapters.sync.common import TargetSettings
from subledger.adapters.sync.dinero import RENEW_BEFORE_SECONDS, DineroTarget, DineroToken
from subledger.adapters.sync.port import Trace
from subledger.api.http.app import create_app
from subledger.api.settings import ConfigurationError, Settings
from subledger.api.sync import Sync, read_targets
from subledger.domain.chart import DEFAULT_CHART
from tests.conftest import ADMIN, API_KEYS, READ, WRITE
from tests.integration.test_sync_api import EVENTS, PEOPLE
from tests.integration.test_sync_api import delivered as deliver_all

API_KEY = "dinero-api-key-for-tests"
CLIENT = ("subledger-tests", "client-secret-for-tests")
ORGANIZATION = 424242


@pytest.fixture
def dinero_app() -> Any:
    return create_dinero_app(
        DineroSandboxSettings(
            client_id=CLIENT[0],
            client_secret=CLIENT[1],
            api_key=API_KEY,
            organization_id=ORGANIZATION,
            faults=FaultSettings(rate_limit=0),
        )
    )


@pytest.fixture
def dinero(dinero_app: Any) -> Iterator[str]:
    with serving(dinero_app) as url:
        yield url


def write_config(path: Path, url: str, **options: str) -> Path:
    """A subledger.toml with the sandbox as target `dinero`; its rate limit is off, and so is,
    nearly, the dispatcher's budget (unless `requests_per_minute` is given)."""
    options = {"requests_per_minute": "60000", **options}
    lines = [
        "[targets.dinero]",
        f'url = "{url}"',
        f'organization_id = "{ORGANIZATION}"',
        f'client_id = "{CLIENT[0]}"',
        f'client_secret = "{CLIENT[1]}"',
        f'token = "{API_KEY}"',
        *(f"{name} = {value}" for name, value in options.items()),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def app(database_url: str, dinero: str, tmp_path: Path) -> Iterator[TestClient]:
    config = write_config(tmp_path / "subledger.toml", dinero)
    settings = Settings(database_url=database_url, api_keys=API_KEYS, config=config)
    with TestClient(create_app(settings)) as client:
        answer = client.post("/v1/events", json={"events": EVENTS}, headers=WRITE)
        assert answer.status_code in (200, 201), answer.text
        yield client


def delivered(client: TestClient) -> Sync:
    return deliver_all(client, "dinero")


def failed(client: TestClient) -> list[dict[str, Any]]:
    answer = client.get("/v1/sync/messages", params={"status": "failed"}, headers=READ)
    return list(answer.json()["messages"])


def summary(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/_sandbox/summary").json())


def statuses(url: str) -> dict[str, int]:
    """The sandbox's invoices by `PaymentStatus` (those from January are overdue by now)."""
    return {status: n for status, n in summary(url)["invoices"].items() if n}


def organization(url: str) -> httpx.Client:
    """A client of the sandbox's organization, as a person using Dinero's API would make."""
    form = {"grant_type": "password", "username": API_KEY, "password": API_KEY}
    token = httpx.post(f"{url}/dineroapi/oauth/token", data=form, auth=CLIENT).json()
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    return httpx.Client(base_url=f"{url}/v1/{ORGANIZATION}", headers=headers)


def test_everything_arrives_booked_under_one_token_and_reconciles(
    app: TestClient, dinero: str
) -> None:
    delivered(app)
    assert failed(app) == []
    held = summary(dinero)
    assert held["counts"]["contacts"] == 2
    assert statuses(dinero) == {"Paid": 1, "Overdue": 2}
    assert held["tokens"]["issued"] == 1, "one token for every request"

    report = app.get("/v1/sync/reconciliation", params={"target": "dinero"}, headers=READ).json()
    assert report["differences"] == []
    assert report["ours"] == report["theirs"]
    assert report["theirs"]["paid"] == 12500

    with organization(dinero) as client:
        contact = client.get("/contacts").json()["Collection"][0]["ContactGuid"]
        line = {"BaseAmountValue": 10, "Quantity": 1, "AccountNumber": 1000}
        made = client.post("/invoices", json={"ContactGuid": contact, "ProductLines": [line]})
        assert made.status_code == 201, made.text
    report = app.get("/v1/sync/reconciliation", params={"target": "dinero"}, headers=READ).json()
    assert [d["problem"] for d in report["differences"]] == ["only at the target"]


def test_a_token_is_renewed_before_its_hour_ends_and_asked_again_when_refused(
    dinero: str, dinero_app: Any
) -> None:
    now = [0.0]
    settings = TargetSettings(
        name="dinero",
        kind="dinero",
        url=dinero,
        token=API_KEY,
        organization_id=str(ORGANIZATION),
        client_id=CLIENT[0],
        client_secret=CLIENT[1],
        token_url=f"{dinero}/dineroapi/oauth/token",
    )
    target = DineroTarget(settings, DEFAULT_CHART)
    target.token = DineroToken(settings, target.http.client, clock=lambda: now[0])
    trace = Trace()
    try:
        first = target.token.bearer(trace)
        now[0] = 3600 - RENEW_BEFORE_SECONDS - 1
        assert target.token.bearer(trace) == first, "kept while it has time left"
        now[0] = 3600 - RENEW_BEFORE_SECONDS + 1
        second = target.token.bearer(trace)
        assert second != first, "renewed before it expires"

        # Dinero refuses a token early (its clock ahead of ours): asked for again, once.
        store = dinero_app.state.store
        store.clock = lambda: datetime.now(UTC) + timedelta(hours=2)
        assert target.check() == []
        assert summary(dinero)["tokens"]["issued"] == 3
    finally:
        target.close()
    assert all("Bearer" not in line and API_KEY not in line for line in trace.requests)
    assert trace.requests[0].startswith("POST /dineroapi/oauth/token → 200")


class Meddling(httpx.HTTPTransport):
    """Changes the invoice at Dinero (as a person editing it would) just before the adapter's
    first attempt to book it, so that the `TimeStamp` the adapter holds is stale."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.meddled = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/book") and not self.meddled:
            self.meddled += 1
            guid = request.url.path.split("/")[-2]
            with organization(self.url) as client:
                draft = client.get(f"/invoices/{guid}").json()
                changes = {
                    "ContactGuid": draft["ContactGuid"],
                    "Date": draft["Date"],
                    "ExternalReference": draft["ExternalReference"],
                    "ProductLines": draft["ProductLines"],
                    "Comment": "edited by a person",
                    "Timestamp": draft["TimeStamp"],
                }
                put = client.put(f"{self.url}/v1.2/{ORGANIZATION}/invoices/{guid}", json=changes)
                assert put.status_code == 200, put.text
        return super().handle_request(request)


def test_a_stale_timestamp_is_read_again_and_the_booking_retried(
    app: TestClient, dinero: str
) -> None:
    sync: Sync = app.app.state.sync  # type: ignore[attr-defined]
    target = sync.targets["dinero"]
    assert isinstance(target, DineroTarget)
    meddling = Meddling(dinero)
    target.http.client._transport = meddling  # the same client, its requests seen on the way
    delivered(app)
    assert meddling.meddled == 1
    assert failed(app) == []
    assert statuses(dinero) == {"Paid": 1, "Overdue": 2}
    shown = app.get("/v1/sync/messages", params={"status": "sent"}, headers=READ).json()
    traces = [
        app.get(f"/v1/sync/messages/{m['id']}", headers=READ).json()["attempts"][-1]["requests"]
        for m in shown["messages"]
        if m["kind"] == "invoice"
    ]
    assert any(sum("/book → " in line for line in trace) == 2 for trace in traces), traces


def test_totals_that_differ_are_held_until_the_mapping_is_fixed_and_retried(
    database_url: str, dinero: str, tmp_path: Path
) -> None:
    # Lines at 25% VAT booked to 1010, which carries no VAT: Dinero's totals are not ours.
    wrong = write_config(tmp_path / "wrong.toml", dinero, vat_accounts='{ "25" = "1010" }')
    settings = Settings(database_url=database_url, api_keys=API_KEYS, config=wrong)
    with TestClient(create_app(settings)) as client:
        client.post("/v1/events", json={"events": EVENTS}, headers=WRITE)
        checked = client.app.state.sync.targets["dinero"].check()  # type: ignore[attr-defined]
        assert any("1010" in problem and "25%" in problem for problem in checked), checked
        delivered(client)
        refused = failed(client)
        # cus_2's second invoice waits behind its first.
        assert {m["kind"] for m in refused} == {"invoice"} and len(refused) == 2
        assert all("differ from ours" in m["last_error"] for m in refused)
    assert statuses(dinero) == {"Draft": 2}

    fixed = write_config(tmp_path / "fixed.toml", dinero)
    settings = Settings(database_url=database_url, api_keys=API_KEYS, config=fixed)
    with TestClient(create_app(settings)) as client:
        for message in refused:
            answer = client.post(f"/v1/sync/messages/{message['id']}/retry", headers=ADMIN)
            assert answer.status_code == 202, answer.text
        delivered(client)
        assert failed(client) == []
    assert statuses(dinero) == {"Paid": 1, "Overdue": 2}, "the drafts got our lines, booked"
    assert summary(dinero)["counts"]["invoices"] == 3


def test_invoices_are_emailed_or_sent_to_their_ean_once(
    database_url: str, dinero: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "delivering.toml", dinero, email="true", e_invoice="true")
    invoices = [e for e in EVENTS if e["type"] == "invoice.issued"][:2]
    settings = Settings(database_url=database_url, api_keys=API_KEYS, config=config)
    with TestClient(create_app(settings)) as client:
        answer = client.post("/v1/events", json={"events": PEOPLE + invoices}, headers=WRITE)
        assert answer.status_code in (200, 201), answer.text
        sync = delivered(client)
        sync.delivery.replay("dinero", datetime.now(UTC), dates=("", "9999-12-31"))
        delivered(client)
        assert failed(client) == []
    sent = httpx.get(f"{dinero}/_sandbox/sent").json()
    assert sorted(s["Kind"] for s in sent) == ["EInvoice", "Email"], "each once, despite a replay"


def test_the_check_names_accounts_that_take_no_payments_or_carry_another_vat_rate(
    dinero: str, tmp_path: Path, database_url: str
) -> None:
    config = write_config(
        tmp_path / "check.toml",
        dinero,
        accounts='{ "5820" = "5600" }',
        vat_accounts='{ "25" = "7410", "0" = "9999" }',
    )
    (target,) = read_targets(Settings(database_url=database_url, config=config))
    adapter = DineroTarget(target, DEFAULT_CHART)
    try:
        problems = adapter.check()
    finally:
        adapter.close()
    assert len(problems) == 3, problems
    assert "account 5600 (our bank account 5820) is no deposit account" in problems[0]
    assert "no account 9999 (for lines at 0% VAT)" in problems[1]
    assert "account 7410 has VAT code 'none' (0%), but lines at 25% VAT" in problems[2]

    good = write_config(tmp_path / "good.toml", dinero, vat_accounts='{ "0" = "7410" }')
    (target,) = read_targets(Settings(database_url=database_url, config=good))
    adapter = DineroTarget(target, DEFAULT_CHART)
    try:
        assert adapter.check() == []
    finally:
        adapter.close()


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"organization_id": '"acme"'}, "organization_id: must be the organization's number"),
        ({"client_id": '""'}, "client_id: must not be empty"),
        ({"products": '{ pro = "P" }'}, "Dinero's invoice lines name accounts, not products"),
        ({"vat_accounts": '{ "high" = "7400" }'}, "vat_accounts: keys are VAT rates in percent"),
        ({"kind": '"visma"'}, "kind: must be 'billy' or 'dinero'"),
        ({"colour": '"red"'}, "colour: unknown key"),
    ],
)
def test_a_dinero_target_is_refused_with_the_reason(
    options: dict[str, str], says: str, tmp_path: Path
) -> None:
    path = tmp_path / "subledger.toml"
    write_config(path, "http://127.0.0.1:9")
    text = path.read_text()
    for name, value in options.items():
        text = "\n".join(line for line in text.splitlines() if not line.startswith(f"{name} ="))
        text += f"\n{name} = {value}\n"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=says):
        read_targets(Settings(config=path))


def test_a_dinero_target_defaults_to_dineros_host_limit_and_token_endpoint(
    tmp_path: Path,
) -> None:
    path = tmp_path / "subledger.toml"
    path.write_text(
        f'[targets.dinero]\norganization_id = "{ORGANIZATION}"\nclient_id = "c"\n'
        'client_secret = "the-client-secret"\ntoken = "the-api-key"\n'
    )
    (target,) = read_targets(Settings(config=path))
    assert target.url == "https://api.dinero.dk"
    assert target.token_url == "https://authz.dinero.dk/dineroapi/oauth/token"
    assert target.requests_per_minute == 100
    assert "the-api-key" not in repr(target) and "the-client-secret" not in repr(target)
