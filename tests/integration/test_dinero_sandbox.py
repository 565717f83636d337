"""The Dinero sandbox over real HTTP: its token endpoint, its conventions (casing, paging from
0, `Timestamp`, Guids), what it computes (VAT from accounts, totals, balances, entries) and
every fault switch as a client sees it, Dinero's rate limit of 100 a minute above all."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi import FastAPI

from subledger.adapters.sandbox import serving
from subledger.adapters.sandbox.dinero import DineroSandboxSettings, create_dinero_app
from subledger.adapters.sandbox.faults import FaultSettings
from subledger.domain.chart import DEFAULT_CHART

ORG = 424242
CLIENT = ("client-for-the-dinero-tests", "secret-for-the-dinero-tests")
API_KEY = "api-key-for-the-dinero-tests"
DINERO_FAULTS = FaultSettings(rate_limit=100).model_dump()
#: The sandbox's time in every test unless a test moves it: 2025-03-05, midday UTC.
NOW = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)
QUOTA = "API calls quota exceeded!"


@dataclass
class Sandbox:
    app: FastAPI
    url: str
    now: datetime = NOW

    def put_faults(self, **settings: Any) -> httpx.Response:
        return httpx.put(f"{self.url}/_sandbox/faults", json=settings, timeout=5)

    def put_brownout(self, **settings: Any) -> httpx.Response:
        return httpx.put(f"{self.url}/_sandbox/brownout", json=settings, timeout=5)

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=5)
        response.raise_for_status()
        return response.json()

    def move_to(self, moment: datetime) -> None:
        """Set the sandbox's clock (dates, due dates, token expiry, `UpdatedAt`)."""
        self.now = moment
        self.app.state.store.clock = lambda: self.now

    def api(self, path: str, version: str = "v1") -> str:
        return f"{self.url}/{version}/{ORG}{path}"


def ask_token(url: str, auth: tuple[str, str] = CLIENT, **form: str) -> httpx.Response:
    body = {
        "grant_type": "password",
        "scope": "read write",
        "username": API_KEY,
        "password": API_KEY,
        **form,
    }
    return httpx.post(f"{url}/dineroapi/oauth/token", auth=auth, data=body, timeout=5)


def bearer(url: str, **form: str) -> dict[str, str]:
    response = ask_token(url, **form)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def settings(**changes: Any) -> DineroSandboxSettings:
    return DineroSandboxSettings(
        client_id=CLIENT[0],
        client_secret=CLIENT[1],
        api_key=API_KEY,
        organization_id=ORG,
        **changes,
    )


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    app = create_dinero_app(settings())
    with serving(app) as url:
        yield Sandbox(app, url)


@pytest.fixture
def dinero(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """A client of a freshly reset sandbox at `NOW`, faults as Dinero's (the rate limit of
    100 a minute on, nothing else), holding a token for read and write."""
    sandbox.move_to(NOW)
    sandbox.app.state.faults.clock = time.monotonic
    sandbox.put_faults(**DINERO_FAULTS).raise_for_status()
    sandbox.put_brownout(rate=0, seed=None).raise_for_status()
    httpx.post(f"{sandbox.url}/_sandbox/reset", timeout=5).raise_for_status()
    base = f"{sandbox.url}/v1/{ORG}"
    with httpx.Client(base_url=base, headers=bearer(sandbox.url), timeout=5) as client:
        yield client


# Helpers


def refusal(response: httpx.Response, status: int, code: int | None) -> dict[str, Any]:
    """Dinero's error body, checked; the body."""
    assert response.status_code == status, response.text
    body = dict(response.json())
    assert body["code"] == code
    assert body["message"]
    assert set(body) == {
        "code",
        "message",
        "validationErrors",
        "errorMessageList",
        "languageSpecificMessages",
    }
    return body


def invalid(response: httpx.Response) -> set[str]:
    """The fields a 400 with code 42 names."""
    return set(refusal(response, 400, 42)["validationErrors"])


def guid() -> str:
    return str(uuid.uuid4())


def contact(client: httpx.Client, **fields: Any) -> str:
    body = {
        "Name": "Acme ApS",
        "CountryKey": "DK",
        "IsPerson": False,
        "IsMember": False,
        "UseCvr": True,
        **fields,
    }
    response = client.post("/contacts", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["ContactGuid"])


def line(amount: float, account: int = 1000, **fields: Any) -> dict[str, Any]:
    return {"BaseAmountValue": amount, "Quantity": 1, "AccountNumber": account, **fields}


def invoice(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    """A draft invoice of 100.00 on account 1000 (25% VAT) dated 2025-03-01, read back."""
    body = {"Date": "2025-03-01", "ProductLines": [line(100)], **fields}
    if "ContactGuid" not in body:
        body["ContactGuid"] = contact(client)
    response = client.post("/invoices", json=body)
    assert response.status_code == 201, response.text
    return read(client, response.json()["Guid"])


def read(client: httpx.Client, invoice_guid: str) -> dict[str, Any]:
    response = client.get(f"/invoices/{invoice_guid}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def book(client: httpx.Client, draft: dict[str, Any], path: str = "/invoices") -> dict[str, Any]:
    response = client.post(f"{path}/{draft['Guid']}/book", json={"Timestamp": draft["TimeStamp"]})
    assert response.status_code == 200, response.text
    return dict(response.json())


def booked(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    return book(client, invoice(client, **fields))


def pay(client: httpx.Client, invoice_guid: str, amount: float, **fields: Any) -> httpx.Response:
    """A payment into the bank with the invoice's latest `TimeStamp` (read first)."""
    body = {
        "Timestamp": read(client, invoice_guid)["TimeStamp"],
        "DepositAccountNumber": 5800,
        "Amount": amount,
        "Description": "Indbetaling",
        "RemainderIsFee": False,
        **fields,
    }
    return client.post(f"/invoices/{invoice_guid}/payments", json=body)


def payments(sandbox: Sandbox, client: httpx.Client, invoice_guid: str) -> dict[str, Any]:
    response = client.get(sandbox.api(f"/invoices/{invoice_guid}/payments", "v2"))
    assert response.status_code == 200, response.text
    return dict(response.json())


def balances(sandbox: Sandbox) -> dict[str, float]:
    return dict(sandbox.get("/_sandbox/summary")["balances"])


# The token endpoint and authentication


def test_the_api_key_password_grant_gives_a_bearer_token_for_an_hour(sandbox: Sandbox) -> None:
    response = ask_token(sandbox.url)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("Bearer", 3600, "read write")
    assert len(body["access_token"]) >= 32
    assert "refresh_token" not in body
    assert response.headers["Cache-Control"] == "no-store"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert httpx.get(sandbox.api("/vatTypes"), headers=headers).status_code == 200


def test_the_token_endpoint_refuses_a_wrong_client_a_wrong_api_key_and_other_grants(
    sandbox: Sandbox,
) -> None:
    def error(response: httpx.Response, status: int) -> str:
        assert response.status_code == status, response.text
        return str(response.json()["error"])

    assert error(ask_token(sandbox.url, auth=(CLIENT[0], "wrong")), 401) == "invalid_client"
    assert error(ask_token(sandbox.url, username="wrong", password="wrong"), 400) == "invalid_grant"
    assert error(ask_token(sandbox.url, password="wrong"), 400) == "invalid_grant"
    assert error(ask_token(sandbox.url, grant_type="client_credentials"), 400) == (
        "unsupported_grant_type"
    )
    assert error(ask_token(sandbox.url, scope="admin"), 400) == "invalid_scope"
    no_client = httpx.post(f"{sandbox.url}/dineroapi/oauth/token", data={"grant_type": "password"})
    assert error(no_client, 401) == "invalid_client"
    assert no_client.headers["WWW-Authenticate"].startswith("Basic")


def test_api_calls_need_a_bearer_token_that_has_not_expired(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    refusal(httpx.get(sandbox.api("/contacts")), 401, 41)
    wrong = httpx.get(sandbox.api("/contacts"), headers={"Authorization": "Bearer nope"})
    assert refusal(wrong, 401, 41) and wrong.headers["WWW-Authenticate"].startswith("Bearer")
    assert dinero.get("/contacts").status_code == 200
    sandbox.move_to(NOW + timedelta(minutes=59, seconds=59))
    assert dinero.get("/contacts").status_code == 200
    sandbox.move_to(NOW + timedelta(hours=1))
    assert "expired" in refusal(dinero.get("/contacts"), 401, 41)["message"]
    dinero.headers.update(bearer(sandbox.url))
    assert dinero.get("/contacts").status_code == 200


def test_a_token_is_for_its_organization_which_the_organizations_list_names(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    other = httpx.get(f"{sandbox.url}/v1/{ORG + 1}/contacts", headers=dinero.headers)
    refusal(other, 403, 41)
    listed = httpx.get(
        f"{sandbox.url}/v1/organizations",
        params={"fields": "id,name,isPro"},
        headers=dinero.headers,
    )
    assert listed.json() == [{"id": ORG, "name": "Sandbox ApS", "isPro": True}]


def test_a_read_only_token_reads_but_cannot_write(sandbox: Sandbox, dinero: httpx.Client) -> None:
    headers = bearer(sandbox.url, scope="read")
    assert httpx.get(sandbox.api("/contacts"), headers=headers).status_code == 200
    created = httpx.post(sandbox.api("/contacts"), headers=headers, json={"Name": "Acme"})
    refusal(created, 403, 41)
    preview = {"ProductLines": [line(10)]}
    assert httpx.post(sandbox.api("/invoices/fetch"), headers=headers, json=preview).is_success


def test_an_organization_without_pro_is_refused_with_code_90() -> None:
    with serving(create_dinero_app(settings(is_pro=False))) as url:
        refusal(httpx.get(f"{url}/v1/{ORG}/contacts", headers=bearer(url)), 403, 90)


# Conventions


def test_fields_bind_in_any_casing_and_answers_are_pascal_case(dinero: httpx.Client) -> None:
    body = {
        "name": "Acme ApS",
        "countryKey": "dk",
        "isPerson": False,
        "ismember": False,
        "USECVR": True,
        "vatNumber": "12345678",
        "email": "ann@acme.dk",
    }
    created = dinero.post("/contacts", json=body)
    assert created.status_code == 201, created.text
    read_back = dinero.get(f"/contacts/{created.json()['ContactGuid']}").json()
    expected = ("Acme ApS", "DK", True, "12345678", "ann@acme.dk", "Netto", 8)
    assert (
        read_back["Name"],
        read_back["CountryKey"],
        read_back["UseCvr"],
        read_back["VatNumber"],
        read_back["Email"],
        read_back["PaymentConditionType"],
        read_back["PaymentConditionNumberOfDays"],
    ) == expected
    assert (read_back["IsDebitor"], read_back["DeletedAt"]) == (True, None)
    draft = invoice(
        dinero,
        contactGuid=read_back["ContactGuid"],
        productLines=[{"baseAmountValue": 10, "quantity": 2, "accountNumber": 1000}],
    )
    assert (draft["TotalInclVat"], draft["ContactName"]) == (25.0, "Acme ApS")


def test_a_contact_is_validated_strictly_naming_every_problem(dinero: httpx.Client) -> None:
    bad = {"Name": "Acme", "CountryKey": "Denmark", "IsPerson": "false", "EanNumber": "123"}
    assert invalid(dinero.post("/contacts", json=bad)) == {
        "CountryKey",
        "IsPerson",
        "IsMember",
        "UseCvr",
        "EanNumber",
    }
    refusal(dinero.post("/contacts", content=b"{not json"), 400, 42)
    refusal(dinero.post("/contacts", json=[1, 2]), 400, 42)


def test_lists_page_from_zero_with_dinero_pagination_and_project_fields(
    dinero: httpx.Client,
) -> None:
    for name in ("Acme ApS", "Bolt A/S", "ACME Nordic"):
        contact(dinero, Name=name)
    first = dinero.get("/contacts", params={"page": 0, "pageSize": 2}).json()
    assert [c["Name"] for c in first["Collection"]] == ["Acme ApS", "Bolt A/S"]
    assert first["Pagination"] == {
        "MaxPageSizeAllowed": 1000,
        "PageSize": 2,
        "Result": 2,
        "ResultWithoutFilter": 3,
        "Page": 0,
    }
    second = dinero.get("/contacts", params={"page": 1, "pageSize": 2}).json()
    assert [c["Name"] for c in second["Collection"]] == ["ACME Nordic"]
    assert second["Pagination"]["Result"] == 1
    default = dinero.get("/contacts").json()["Pagination"]
    assert (default["Page"], default["PageSize"]) == (0, 100)
    projected = dinero.get("/contacts", params={"fields": "name,ContactGuid,nothing"}).json()
    assert set(projected["Collection"][0]) == {"name", "ContactGuid"}
    assert invalid(dinero.get("/contacts", params={"pageSize": 1001})) == {"pageSize"}
    assert invalid(dinero.get("/contacts", params={"page": -1})) == {"page"}


def test_query_filter_takes_eq_and_contains_and_refuses_other_fields(dinero: httpx.Client) -> None:
    contact(dinero, Name="Acme ApS", VatNumber="12345678")
    contact(dinero, Name="O'Brien Consulting")
    contact(dinero, Name="ACME Nordic", VatNumber="87654321")

    def names(query_filter: str) -> list[str]:
        found = dinero.get("/contacts", params={"queryFilter": query_filter}).json()
        return [c["Name"] for c in found["Collection"]]

    assert names("VatNumber eq '12345678'") == ["Acme ApS"]
    assert names("Name contains 'acme'") == ["Acme ApS", "ACME Nordic"]
    assert names("name contains 'acme' and vatNumber eq '87654321'") == ["ACME Nordic"]
    assert names("Name eq 'O''Brien Consulting'") == ["O'Brien Consulting"]
    assert invalid(dinero.get("/contacts", params={"queryFilter": "IsDebitor eq true"})) == {
        "queryFilter"
    }
    assert invalid(dinero.get("/contacts", params={"queryFilter": "Name like 'x'"})) == {
        "queryFilter"
    }


def test_unknown_paths_and_methods_get_dineros_errors(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    refusal(dinero.get("/projects"), 404, 40)
    refusal(dinero.patch("/contacts"), 405, None)
    moved = dinero.put(f"/invoices/{guid()}", json={})
    assert "/v1.2" in refusal(moved, 404, 40)["message"]
    assert dinero.get("/VATTYPES").status_code == 200, "paths are matched in any case"
    refusal(httpx.get(f"{sandbox.url}/nowhere"), 404, 40)


# Contacts


def test_a_client_chosen_contact_guid_is_kept_and_a_replay_is_guid_must_be_unique(
    dinero: httpx.Client,
) -> None:
    chosen = guid()
    assert contact(dinero, ContactGuid=chosen.upper()) == chosen
    replay = dinero.post(
        "/contacts",
        json={"ContactGuid": chosen, "Name": "Acme", "CountryKey": "DK", "IsPerson": False},
    )
    body = refusal(replay, 400, 42)
    assert body["validationErrors"] == {"ContactGuid": "guidMustBeUnique"}
    assert dinero.get("/contacts").json()["Pagination"]["ResultWithoutFilter"] == 1


def test_a_deleted_contact_shows_in_the_v2_list_and_deleted_only_and_can_be_restored(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    kept, gone = contact(dinero, Name="Kept"), contact(dinero, Name="Gone")
    assert dinero.delete(f"/contacts/{gone}").status_code == 200
    assert dinero.get(f"/contacts/{gone}").json()["DeletedAt"]

    def names(path: str, version: str = "v1", **params: str) -> list[str]:
        found = dinero.get(sandbox.api(path, version), params=params).json()
        return [c["Name"] for c in found["Collection"]]

    assert names("/contacts") == ["Kept"]
    assert names("/contacts", deletedOnly="true") == ["Gone"]
    assert names("/contacts", "v2") == ["Kept", "Gone"]
    assert invalid(dinero.post("/invoices", json={"ContactGuid": gone, "ProductLines": [line(1)]}))
    assert dinero.post(f"/contacts/{gone}/restore").status_code == 200
    assert names("/contacts") == ["Kept", "Gone"]
    update = {"Name": "Kept A/S", "CountryKey": "DK", "IsPerson": False, "IsMember": False}
    assert invalid(dinero.put(f"/contacts/{kept}", json=update)) == {"UseCvr"}
    assert dinero.put(f"/contacts/{kept}", json={**update, "UseCvr": False}).status_code == 200
    assert dinero.get(f"/contacts/{kept}").json()["Name"] == "Kept A/S"


def test_an_unknown_contact_is_404_but_an_unknown_invoice_is_400_with_code_63(
    dinero: httpx.Client,
) -> None:
    refusal(dinero.get(f"/contacts/{guid()}"), 404, 40)
    refusal(dinero.get(f"/invoices/{guid()}"), 400, 63)
    refusal(dinero.get("/invoices/not-a-guid"), 400, 63)
    refusal(dinero.get(f"/sales/creditnotes/{guid()}"), 400, 63)


# Invoices


def test_an_invoice_created_twice_with_one_guid_is_refused_409_with_code_72(
    dinero: httpx.Client,
) -> None:
    chosen = guid()
    first = invoice(dinero, Guid=chosen)
    assert (first["Guid"], first["Status"], first["Number"]) == (chosen, "Draft", None)
    replay = dinero.post("/invoices", json={"Guid": chosen, "ProductLines": [line(999)]})
    assert "already exists" in refusal(replay, 409, 72)["message"]
    note = {"Guid": chosen, "ProductLines": [line(1)]}
    refusal(dinero.post("/sales/creditnotes", json=note), 409, 72)
    assert read(dinero, chosen)["TotalExclVat"] == 100.0


def test_totals_follow_each_lines_account_vat_code(dinero: httpx.Client) -> None:
    lines = [
        line(200.5, Quantity=1.5),
        line(100, Quantity=2, Discount=10),
        line(80, account=1010),
        line(50, account=7400),
        line(0, LineType="Text", Description="Tak for handlen"),
    ]
    draft = invoice(dinero, ProductLines=lines)
    assert [
        (pl.get("TotalAmount"), pl.get("TotalAmountInclVat")) for pl in draft["ProductLines"]
    ] == [
        (300.75, 375.94),
        (180.0, 225.0),
        (80.0, 80.0),
        (50.0, 62.5),
        (None, None),
    ]
    assert (draft["TotalExclVat"], draft["TotalVat"], draft["TotalInclVat"]) == (
        610.75,
        132.69,
        743.44,
    )
    assert [row["TotalAmount"] for row in draft["TotalLines"]] == [610.75, 132.69, 743.44]
    incl = invoice(dinero, ShowLinesInclVat=True, ProductLines=[line(125), line(99.99)])
    assert (incl["TotalExclVat"], incl["TotalVat"], incl["TotalInclVat"]) == (179.99, 45.0, 224.99)
    assert invalid(
        dinero.post("/invoices", json={"ProductLines": [line(10, account=9999), {"Quantity": 1}]})
    ) == {
        "ProductLines[0].AccountNumber",
        "ProductLines[1].BaseAmountValue",
        "ProductLines[1].AccountNumber",
    }
    assert invalid(dinero.post("/invoices", json={"ProductLines": [line(-10)]})) == {"ProductLines"}


def test_fetch_previews_the_totals_and_stores_nothing(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    preview = dinero.post(
        "/invoices/fetch", json={"productLines": [line(100), line(20, account=1010)]}
    )
    assert preview.status_code == 200, preview.text
    assert (preview.json()["TotalExclVat"], preview.json()["TotalInclVat"]) == (120.0, 145.0)
    assert sandbox.get("/_sandbox/summary")["counts"]["invoices"] == 0


def test_booking_with_a_stale_timestamp_is_code_58_and_the_re_read_one_books(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    draft = invoice(dinero)
    path = f"/invoices/{draft['Guid']}/book"
    assert invalid(dinero.post(path, json={})) == {"Timestamp"}
    changed = dinero.put(
        sandbox.api(f"/invoices/{draft['Guid']}", "v1.2"),
        json={
            "Timestamp": draft["TimeStamp"],
            "ContactGuid": draft["ContactGuid"],
            "Date": "2025-03-01",
            "ProductLines": [line(200)],
        },
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["TimeStamp"] != draft["TimeStamp"]
    stale = dinero.post(path, json={"Timestamp": draft["TimeStamp"]})
    assert refusal(stale, 400, 58)["validationErrors"] == {"Timestamp": "is not the latest"}
    fresh = read(dinero, draft["Guid"])
    assert fresh["TotalExclVat"] == 200.0
    done = book(dinero, fresh)
    assert (done["Status"], done["PaymentStatus"], done["Number"]) == ("Booked", "Booked", 1)
    assert done["TimeStamp"] not in (draft["TimeStamp"], fresh["TimeStamp"])
    again = dinero.post(path, json={"Timestamp": done["TimeStamp"]})
    assert invalid(again) == {"Status"}


def test_booking_numbers_invoices_in_one_series_and_needs_a_contact(dinero: httpx.Client) -> None:
    assert booked(dinero)["Number"] == 1
    assert book(dinero, invoice(dinero))["Number"] == 2
    draft = invoice(dinero)
    taken = dinero.post(
        f"/invoices/{draft['Guid']}/book", json={"Timestamp": draft["TimeStamp"], "Number": 2}
    )
    assert invalid(taken) == {"Number"}
    chosen = dinero.post(
        f"/invoices/{draft['Guid']}/book", json={"Timestamp": draft["TimeStamp"], "Number": 10}
    )
    assert chosen.json()["Number"] == 10
    assert booked(dinero)["Number"] == 11
    orphan = dinero.post("/invoices", json={"ProductLines": [line(10)]}).json()
    missing = dinero.post(
        f"/invoices/{orphan['Guid']}/book", json={"Timestamp": orphan["TimeStamp"]}
    )
    assert invalid(missing) == {"ContactGuid"}


def test_only_a_draft_is_changed_or_deleted_each_with_its_latest_timestamp(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    draft = invoice(dinero, ExternalReference="sub-1")
    update_url = sandbox.api(f"/invoices/{draft['Guid']}", "v1.2")
    body = {"ContactGuid": draft["ContactGuid"], "ProductLines": [line(10)]}
    refusal(dinero.put(update_url, json={**body, "Timestamp": "0"}), 400, 58)
    deleted = dinero.request(
        "DELETE", f"/invoices/{draft['Guid']}", json={"Timestamp": draft["TimeStamp"]}
    )
    assert deleted.status_code == 200, deleted.text
    refusal(dinero.get(f"/invoices/{draft['Guid']}"), 400, 63)
    gone = dinero.get("/invoices", params={"deletedOnly": "true"}).json()["Collection"]
    assert [i["Guid"] for i in gone] == [draft["Guid"]]
    refusal(
        dinero.post("/invoices", json={"Guid": draft["Guid"], "ProductLines": [line(1)]}), 409, 72
    )

    done = booked(dinero)
    assert invalid(
        dinero.put(
            sandbox.api(f"/invoices/{done['Guid']}", "v1.2"),
            json={**body, "Timestamp": done["TimeStamp"]},
        )
    ) == {"Status"}
    assert invalid(
        dinero.request("DELETE", f"/invoices/{done['Guid']}", json={"Timestamp": done["TimeStamp"]})
    ) == {"Status"}


def test_payment_conditions_set_the_due_date_and_default_from_the_contact(
    dinero: httpx.Client,
) -> None:
    assert invoice(dinero)["PaymentDate"] == "2025-03-09"
    fourteen = contact(dinero, PaymentConditionType="Netto", PaymentConditionNumberOfDays=14)
    assert invoice(dinero, ContactGuid=fourteen)["PaymentDate"] == "2025-03-15"
    month = invoice(dinero, PaymentConditionType="CurrentMonthOut", Date="2025-02-10")
    assert (month["PaymentDate"], month["PaymentConditionNumberOfDays"]) == ("2025-02-28", None)
    cash = invoice(dinero, PaymentConditionType="NettoCash", PaymentConditionNumberOfDays=0)
    assert cash["PaymentDate"] == "2025-03-01"
    assert invalid(
        dinero.post(
            "/invoices",
            json={
                "PaymentConditionType": "Paid",
                "PaymentConditionNumberOfDays": 3,
                "ProductLines": [line(1)],
            },
        )
    ) == {"PaymentConditionNumberOfDays"}
    assert invalid(
        dinero.post("/invoices", json={"PaymentConditionType": "Netto", "ProductLines": [line(1)]})
    ) == {"PaymentConditionNumberOfDays"}


def test_a_booked_invoice_past_its_due_date_is_overdue_until_paid(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    done = booked(dinero)
    sandbox.move_to(datetime(2025, 3, 10, 8, 0, tzinfo=UTC))
    dinero.headers.update(bearer(sandbox.url))
    assert read(dinero, done["Guid"])["PaymentStatus"] == "Overdue"
    listed = dinero.get("/invoices", params={"statusFilter": "Overdue"}).json()["Collection"]
    assert [i["Guid"] for i in listed] == [done["Guid"]]
    assert pay(dinero, done["Guid"], 125).status_code == 201
    assert read(dinero, done["Guid"])["PaymentStatus"] == "Paid"


# Credit notes


def test_a_booked_credit_note_lowers_what_its_invoice_still_owes(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    original = booked(dinero)
    created = dinero.post(
        "/sales/creditnotes", json={"CreditNoteFor": original["Guid"], "ProductLines": [line(40)]}
    )
    assert created.status_code == 201, created.text
    note = dinero.get(f"/sales/creditnotes/{created.json()['Guid']}").json()
    assert (note["CreditNoteFor"], note["ContactGuid"], note["TotalInclVat"]) == (
        original["Guid"],
        original["ContactGuid"],
        50.0,
    )
    assert payments(sandbox, dinero, original["Guid"])["RemainingAmount"] == 125.0, (
        "a draft credits nothing"
    )
    booked_note = book(dinero, note, "/sales/creditnotes")
    assert (booked_note["Status"], booked_note["Number"]) == ("Booked", 2)
    assert payments(sandbox, dinero, original["Guid"])["RemainingAmount"] == 75.0
    listed = dinero.get(
        "/sales/creditnotes", params={"queryFilter": f"ContactGuid eq '{original['ContactGuid']}'"}
    )
    assert [n["Guid"] for n in listed.json()["Collection"]] == [note["Guid"]]
    assert balances(sandbox) == {"1000": -60.0, "5600": 75.0, "7210": -15.0}


def test_a_credit_note_needs_a_booked_invoice_of_its_contact(dinero: httpx.Client) -> None:
    draft = invoice(dinero)
    against_draft = {"CreditNoteFor": draft["Guid"], "ProductLines": [line(10)]}
    assert invalid(dinero.post("/sales/creditnotes", json=against_draft)) == {"CreditNoteFor"}
    done = booked(dinero)
    other = {
        "CreditNoteFor": done["Guid"],
        "ContactGuid": contact(dinero),
        "ProductLines": [line(10)],
    }
    assert invalid(dinero.post("/sales/creditnotes", json=other)) == {"ContactGuid"}


def test_generate_creditnote_drafts_a_credit_note_for_the_whole_invoice(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    done = booked(dinero, ProductLines=[line(100), line(20, account=1010)])
    made = dinero.post(
        f"/invoices/{done['Guid']}/generate-creditnote", json={"Timestamp": done["TimeStamp"]}
    )
    assert made.status_code == 201, made.text
    note = dinero.get(f"/sales/creditnotes/{made.json()['Guid']}").json()
    assert (note["Status"], note["CreditNoteFor"], note["TotalInclVat"]) == (
        "Draft",
        done["Guid"],
        145.0,
    )
    book(dinero, note, "/sales/creditnotes")
    assert read(dinero, done["Guid"])["PaymentStatus"] == "Paid"
    assert balances(sandbox) == {}, "the credit note reverses every entry of the invoice"


# Payments


def test_payments_change_the_remaining_amount_and_the_payment_status(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    done = booked(dinero)
    assert pay(dinero, done["Guid"], 100, ExternalReference="pay-1").status_code == 201
    partly = read(dinero, done["Guid"])
    assert partly["PaymentStatus"] == "Booked"
    assert partly["TimeStamp"] != done["TimeStamp"], "a payment changes the invoice's stamp"
    listed = payments(sandbox, dinero, done["Guid"])
    assert (
        listed["PaidAmount"],
        listed["RemainingAmount"],
        listed["InvoiceTotalIncludingReminderExpenses"],
    ) == (
        100.0,
        25.0,
        125.0,
    )
    (first,) = listed["Payments"]
    assert (
        first["Amount"],
        first["DepositAccountNumber"],
        first["ExternalReference"],
        first["PaymentDate"],
    ) == (
        100.0,
        5800,
        "pay-1",
        "2025-03-05",
    )
    assert pay(dinero, done["Guid"], 25, DepositAccountNumber=5820).status_code == 201
    assert read(dinero, done["Guid"])["PaymentStatus"] == "Paid"
    assert pay(dinero, done["Guid"], 10).status_code == 201
    assert read(dinero, done["Guid"])["PaymentStatus"] == "OverPaid"
    assert pay(dinero, done["Guid"], -10, Description="Tilbagebetaling").status_code == 201
    assert read(dinero, done["Guid"])["PaymentStatus"] == "Paid"
    assert balances(sandbox) == {"1000": -100.0, "5800": 100.0, "5820": 25.0, "7210": -25.0}

    latest = read(dinero, done["Guid"])["TimeStamp"]
    taken_back = dinero.request(
        "DELETE", f"/invoices/{done['Guid']}/payments/{first['Id']}", json={"Timestamp": latest}
    )
    assert taken_back.status_code == 200, taken_back.text
    assert payments(sandbox, dinero, done["Guid"])["RemainingAmount"] == 100.0


def test_a_payment_needs_a_booked_invoice_a_deposit_account_and_the_latest_timestamp(
    dinero: httpx.Client,
) -> None:
    draft = invoice(dinero)
    assert invalid(pay(dinero, draft["Guid"], 125)) == {"Status"}
    done = book(dinero, draft)
    assert invalid(pay(dinero, done["Guid"], 125, DepositAccountNumber=1000)) == {
        "DepositAccountNumber"
    }
    body = {
        "DepositAccountNumber": 5800,
        "Amount": 125,
        "Description": "x",
        "RemainderIsFee": False,
    }
    stale = dinero.post(
        f"/invoices/{done['Guid']}/payments", json={**body, "Timestamp": draft["TimeStamp"]}
    )
    refusal(stale, 400, 58)
    missing = dinero.post(
        f"/invoices/{done['Guid']}/payments", json={"Timestamp": done["TimeStamp"]}
    )
    assert invalid(missing) == {"DepositAccountNumber", "Amount", "Description", "RemainderIsFee"}
    euro = booked(dinero, Currency="EUR")
    assert invalid(pay(dinero, euro["Guid"], 930)) == {"AmountInForeignCurrency"}
    assert pay(dinero, euro["Guid"], 930, AmountInForeignCurrency=125).status_code == 201
    assert read(dinero, euro["Guid"])["PaymentStatus"] == "Paid"


def test_remainder_is_fee_settles_a_short_payment_and_books_the_shortfall_as_a_fee(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    done = booked(dinero)
    assert pay(dinero, done["Guid"], 120, RemainderIsFee=True).status_code == 201
    assert read(dinero, done["Guid"])["PaymentStatus"] == "Paid"
    assert payments(sandbox, dinero, done["Guid"])["PaidAmount"] == 120.0
    assert balances(sandbox) == {"1000": -100.0, "3620": 5.0, "5800": 120.0, "7210": -25.0}


# Manual vouchers and ledger items


def voucher_line(amount: float, **fields: Any) -> dict[str, Any]:
    """Revenue recognized: `amount` debited to deferred revenue 7400, credited to 1000."""
    return {
        "Description": "Indtægtsført marts",
        "AccountNumber": 7400,
        "BalancingAccountNumber": 1000,
        "Amount": amount,
        **fields,
    }


def test_a_manual_voucher_books_each_line_against_its_balancing_account(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    def create(amount: float) -> dict[str, Any]:
        lines = [voucher_line(amount, AccountVatCode="none", BalancingAccountVatCode="none")]
        body = {"VoucherDate": "2025-03-31", "ExternalReference": "rec-2025-03", "Lines": lines}
        response = dinero.post("/vouchers/manuel", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    kept, dropped = create(100), create(50)
    stale = dinero.post(
        f"/vouchers/manuel/{kept['Guid']}/book", json={"Timestamp": dropped["Timestamp"]}
    )
    refusal(stale, 400, 58)
    done = dinero.post(
        f"/vouchers/manuel/{kept['Guid']}/book", json={"Timestamp": kept["Timestamp"]}
    )
    assert done.status_code == 200, done.text
    assert (done.json()["Status"], done.json()["VoucherNumber"]) == ("Booked", 1)
    assert dinero.get(f"/vouchers/manuel/{kept['Guid']}").json()["Status"] == "Booked"
    assert balances(sandbox) == {"1000": -100.0, "7400": 100.0}
    again = dinero.post(
        f"/vouchers/manuel/{kept['Guid']}/book", json={"Timestamp": done.json()["Timestamp"]}
    )
    assert invalid(again) == {"Status"}
    deleted = dinero.request(
        "DELETE", f"/vouchers/manuel/{dropped['Guid']}", json={"Timestamp": dropped["Timestamp"]}
    )
    assert deleted.status_code == 200
    refusal(dinero.get(f"/vouchers/manuel/{dropped['Guid']}"), 404, 40)
    same = {
        "VoucherDate": "2025-03-31",
        "ExternalReference": "x",
        "Lines": [voucher_line(1, BalancingAccountNumber=7400)],
    }
    assert invalid(dinero.post("/vouchers/manuel", json=same)) == {
        "Lines[0].BalancingAccountNumber"
    }


def test_voucher_vat_falls_back_to_each_accounts_code_unless_none_is_given(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    def post(**codes: str) -> None:
        body = {
            "VoucherDate": "2025-03-31",
            "ExternalReference": "rec-2025-03",
            "Lines": [voucher_line(100, **codes)],
        }
        created = dinero.post("/vouchers/manuel", json=body).json()
        booked_voucher = dinero.post(
            f"/vouchers/manuel/{created['Guid']}/book", json={"Timestamp": created["Timestamp"]}
        )
        assert booked_voucher.status_code == 200, booked_voucher.text

    post()
    assert balances(sandbox) == {"1000": -80.0, "7400": 80.0}, (
        "VAT out of both sides, which cancels"
    )
    post(AccountVatCode="none", BalancingAccountVatCode="NONE")
    assert balances(sandbox) == {"1000": -180.0, "7400": 180.0}
    assert invalid(
        dinero.post(
            "/vouchers/manuel",
            json={
                "VoucherDate": "2025-03-31",
                "ExternalReference": "rec-2025-03",
                "Lines": [voucher_line(1, AccountVatCode="X9")],
            },
        )
    ) == {"Lines[0].AccountVatCode"}


def test_ledger_items_take_the_clients_id_once_and_book_by_version(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    item_id = guid()
    items = [
        {
            "Id": item_id,
            "VoucherDate": "2025-03-31",
            "Lines": [voucher_line(50, AccountVatCode="none", BalancingAccountVatCode="none")],
        }
    ]
    created = dinero.post(sandbox.api("/ledgeritems", "v1.2"), json=items)
    assert created.status_code == 201, created.text
    refusal(dinero.post(sandbox.api("/ledgeritems", "v1.2"), json=items), 409, 72)
    (status,) = dinero.post("/ledgeritems/status", json=[{"Id": item_id}, {"Id": guid()}]).json()
    assert (status["Id"], status["Status"], status["VoucherNumber"]) == (item_id, "Draft", None)
    refusal(dinero.post("/ledgeritems/book", json=[{"Id": item_id, "Version": "0"}]), 400, 58)
    (done,) = dinero.post(
        "/ledgeritems/book", json=[{"Id": item_id, "Version": status["Version"]}]
    ).json()
    assert (done["Status"], done["VoucherNumber"]) == ("Booked", 1)
    assert balances(sandbox) == {"1000": -50.0, "7400": 50.0}
    retired = dinero.post(sandbox.api("/ledgeritems", "v1.1"), json=items)
    assert "/v1.2" in refusal(retired, 480, None)["message"]


def test_entries_list_what_was_booked_within_one_accounting_year(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    done = booked(dinero, Date="2024-12-20")
    pay(dinero, done["Guid"], 125, PaymentDate="2025-01-03")

    def entries(**params: str) -> list[tuple[int, float, str]]:
        found = dinero.get(
            "/entries", params={"fromDate": "2025-01-01", "toDate": "2025-12-31", **params}
        )
        assert found.status_code == 200, found.text
        return [(e["AccountNumber"], e["Amount"], e["VoucherType"]) for e in found.json()]

    assert entries(includePrimo="false") == [
        (5800, 125.0, "InvoicePayment"),
        (5600, -125.0, "InvoicePayment"),
    ]
    assert entries()[:4] == [
        (1000, -100.0, "Primo"),
        (5600, 125.0, "Primo"),
        (7210, -25.0, "Primo"),
        (5800, 125.0, "InvoicePayment"),
    ]
    assert invalid(
        dinero.get("/entries", params={"fromDate": "2024-12-01", "toDate": "2025-01-31"})
    ) == {"toDate"}
    assert invalid(dinero.get("/entries", params={"fromDate": "2025-01-01"})) == {"fromDate"}


# Sending


def test_an_email_needs_a_booked_invoice_its_latest_timestamp_and_a_receiver(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    buyer = contact(dinero, Email="ann@acme.dk")
    draft = invoice(dinero, ContactGuid=buyer)
    mail = {"ShouldAddTrustPilotEmailAsBcc": False, "Subject": "Faktura", "Message": "Tak!"}
    send = f"/invoices/{draft['Guid']}/email"
    assert invalid(dinero.post(send, json={**mail, "Timestamp": draft["TimeStamp"]})) == {"Status"}
    assert invalid(dinero.post(send, json={"Timestamp": draft["TimeStamp"]})) == {
        "ShouldAddTrustPilotEmailAsBcc"
    }
    done = book(dinero, draft)
    refusal(dinero.post(send, json={**mail, "Timestamp": draft["TimeStamp"]}), 400, 58)
    assert dinero.post(send, json={**mail, "Timestamp": done["TimeStamp"]}).status_code == 200
    after = read(dinero, draft["Guid"])
    assert after["MailOutStatus"] == "Sent" and after["TimeStamp"] != done["TimeStamp"]
    (sent,) = sandbox.get("/_sandbox/sent")
    assert (sent["Kind"], sent["Receiver"], sent["Number"], sent["Subject"]) == (
        "Email",
        "ann@acme.dk",
        1,
        "Faktura",
    )
    silent = booked(dinero)
    assert invalid(
        dinero.post(
            f"/invoices/{silent['Guid']}/email", json={**mail, "Timestamp": silent["TimeStamp"]}
        )
    ) == {"Receiver"}


def test_an_ean_e_invoice_goes_to_the_contacts_ean_from_v2(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    public = booked(dinero, ContactGuid=contact(dinero, EanNumber="5798000000007"))
    send = sandbox.api(f"/invoices/{public['Guid']}/with-ean", "v2")
    assert (
        dinero.post(
            send, json={"Timestamp": public["TimeStamp"], "OrderReference": "PO-7"}
        ).status_code
        == 200
    )
    (sent,) = sandbox.get("/_sandbox/sent")
    assert (sent["Kind"], sent["ReceiverEanNumber"], sent["OrderReference"]) == (
        "EInvoice",
        "5798000000007",
        "PO-7",
    )
    private = booked(dinero)
    no_ean = dinero.post(
        sandbox.api(f"/invoices/{private['Guid']}/with-ean", "v2"),
        json={"Timestamp": private["TimeStamp"]},
    )
    assert invalid(no_ean) == {"ReceiverEanNumber"}
    retired = dinero.post(sandbox.api(f"/invoices/{private['Guid']}/with-ean"), json={})
    refusal(retired, 480, None)


# Finding things


def test_invoices_are_found_by_reference_changes_since_status_dates_and_text(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    first = invoice(dinero, ExternalReference="subledger:inv-1", Description="Marts")
    sandbox.move_to(NOW + timedelta(minutes=10))
    second = invoice(dinero, ExternalReference="subledger:inv-2", Date="2025-02-01")

    def guids(**params: str) -> list[str]:
        found = dinero.get("/invoices", params=params)
        assert found.status_code == 200, found.text
        return [i["Guid"] for i in found.json()["Collection"]]

    assert guids(queryFilter="ExternalReference eq 'subledger:inv-2'") == [second["Guid"]]
    assert guids(changesSince="2025-03-05T12:05:00Z") == [second["Guid"]]
    sandbox.move_to(NOW + timedelta(minutes=20))
    book(dinero, first)
    assert guids(changesSince="2025-03-05T12:15:00Z") == [first["Guid"]]
    assert guids(statusFilter="Booked") == [first["Guid"]]
    assert guids(statusFilter="draft,booked") == [first["Guid"], second["Guid"]]
    assert guids(startDate="2025-02-01", endDate="2025-02-28") == [second["Guid"]]
    assert guids(freeTextSearch="marts") == [first["Guid"]]
    assert guids(sort="Date") == [second["Guid"], first["Guid"]]
    assert guids(sort="date", sortOrder="descending") == [first["Guid"], second["Guid"]]
    assert invalid(dinero.get("/invoices", params={"startDate": "2025-02-01"})) == {"startDate"}
    assert invalid(dinero.get("/invoices", params={"statusFilter": "Lost"})) == {"statusFilter"}
    assert invalid(dinero.get("/invoices", params={"changesSince": "yesterday"})) == {
        "changesSince"
    }


def test_the_chart_vat_types_and_sales_settings_are_seeded_to_fit_our_default_chart(
    dinero: httpx.Client,
) -> None:
    accounts = {a["AccountNumber"]: a for a in dinero.get("/accounts/entry").json()}
    assert {int(number) for number in DEFAULT_CHART.accounts()} <= set(accounts)
    assert (accounts[1000]["VatCode"], accounts[1000]["IsDefaultSalesAccount"]) == ("U25", True)
    assert (accounts[1010]["VatCode"], accounts[7400]["VatCode"], accounts[7410]["VatCode"]) == (
        "none",
        "U25",
        "none",
    )
    deposits = dinero.get("/accounts/deposit").json()
    assert [a["AccountNumber"] for a in deposits] == [5800, 5810, 5820]
    revenue = dinero.get(
        "/accounts/entry", params={"categoryFilter": "revenue", "fields": "accountNumber"}
    )
    assert revenue.json() == [{"accountNumber": 1000}, {"accountNumber": 1010}]
    vat = {v["VatCode"]: v["VatRate"] for v in dinero.get("/vatTypes").json()}
    assert vat == {"U25": 0.25, "I25": 0.25, "none": 0}
    assert dinero.get("/sales/settings").json()["DefaultAccountNumber"] == 1000


# Faults and stats


def test_the_rate_limit_is_100_a_minute_by_default_and_answers_dineros_quota_body(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    now = [1000.0]
    sandbox.app.state.faults.clock = lambda: now[0]
    assert all(dinero.get("/vatTypes").status_code == 200 for _ in range(100))
    limited = dinero.get("/vatTypes")
    assert refusal(limited, 429, 43)["message"] == QUOTA
    assert QUOTA in limited.text
    assert ask_token(sandbox.url).status_code == 200, "the token endpoint is not limited"
    assert sandbox.get("/_sandbox/summary")["counts"]["accounts"] == 13, "nor are /_sandbox routes"
    now[0] += 60
    assert dinero.get("/vatTypes").status_code == 200
    stats = sandbox.get("/_sandbox/stats")
    assert (stats["by_status"]["429"], stats["faults_injected"]["rate_limit"]) == (1, 1)
    assert stats["requests_served"] == 102


def test_stats_show_no_429_for_a_client_within_the_limit(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    done = booked(dinero)
    pay(dinero, done["Guid"], 125)
    httpx.get(sandbox.api("/contacts"))
    stats = sandbox.get("/_sandbox/stats")
    assert "429" not in stats["by_status"]
    assert stats["by_status"] == {"200": 3, "201": 3, "401": 1}
    assert stats["faults_injected"]["rate_limit"] == 0


def test_fail_rate_answers_500_without_doing_the_work(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    sandbox.put_faults(fail_rate=1).raise_for_status()
    answer = dinero.post(
        "/contacts",
        json={
            "Name": "Acme",
            "CountryKey": "DK",
            "IsPerson": False,
            "IsMember": False,
            "UseCvr": True,
        },
    )
    refusal(answer, 500, None)
    sandbox.put_faults(fail_rate=0).raise_for_status()
    assert sandbox.get("/_sandbox/summary")["counts"]["contacts"] == 0


def test_throttle_rate_answers_429_with_the_quota_body_without_doing_the_work(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    sandbox.put_faults(throttle_rate=1).raise_for_status()
    answer = dinero.post("/contacts", json={"Name": "Acme"})
    assert refusal(answer, 429, 43)["message"] == QUOTA
    assert answer.headers["Retry-After"] == "1"
    assert sandbox.get("/_sandbox/summary")["counts"]["contacts"] == 0


def test_a_dropped_write_is_committed_but_the_client_sees_a_broken_connection(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    sandbox.put_faults(drop_rate=1).raise_for_status()
    assert dinero.get("/contacts").status_code == 200, "reads are never dropped"
    chosen = guid()
    with pytest.raises(httpx.RemoteProtocolError):
        contact(dinero, ContactGuid=chosen)
    sandbox.put_faults(drop_rate=0).raise_for_status()
    assert dinero.get(f"/contacts/{chosen}").status_code == 200
    replay = dinero.post(
        "/contacts",
        json={
            "ContactGuid": chosen,
            "Name": "Acme",
            "CountryKey": "DK",
            "IsPerson": False,
            "IsMember": False,
            "UseCvr": True,
        },
    )
    assert refusal(replay, 400, 42)["validationErrors"] == {"ContactGuid": "guidMustBeUnique"}


def test_a_slow_answer_beyond_the_client_timeout_leaves_the_work_done(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    sandbox.put_faults(slow_rate=1, slow_ms=800).raise_for_status()
    chosen = guid()
    with pytest.raises(httpx.ReadTimeout):
        dinero.post("/invoices", json={"Guid": chosen, "ProductLines": [line(10)]}, timeout=0.3)
    sandbox.put_faults(slow_rate=0).raise_for_status()
    refusal(dinero.post("/invoices", json={"Guid": chosen, "ProductLines": [line(10)]}), 409, 72)


def test_latency_delays_api_answers_only(sandbox: Sandbox, dinero: httpx.Client) -> None:
    sandbox.put_faults(latency_ms=300).raise_for_status()
    started = time.monotonic()
    dinero.get("/vatTypes").raise_for_status()
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    sandbox.get("/_sandbox/summary")
    ask_token(sandbox.url)
    assert time.monotonic() - started < 0.3, "/_sandbox and the token endpoint are not delayed"


def test_brownouts_answer_480_on_demand_and_retired_endpoints_always(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    assert sandbox.put_brownout(rate=1).json() == {"rate": 1.0, "seed": None, "injected": 0}
    refusal(dinero.get("/contacts"), 480, None)
    assert sandbox.get("/_sandbox/brownout")["injected"] == 1
    assert sandbox.put_brownout(rate=2).status_code == 422
    sandbox.put_brownout(rate=0).raise_for_status()
    done = booked(dinero)
    retired = dinero.get(f"/invoices/{done['Guid']}/payments")
    assert "/v2/" in refusal(retired, 480, None)["message"]
    assert sandbox.get("/_sandbox/stats")["by_status"]["480"] == 2


def test_a_seed_makes_the_fault_draws_repeatable(sandbox: Sandbox, dinero: httpx.Client) -> None:
    sandbox.put_faults(fail_rate=0.5, seed=7).raise_for_status()
    first = [dinero.get("/vatTypes").status_code for _ in range(20)]
    httpx.post(f"{sandbox.url}/_sandbox/reset").raise_for_status()
    again = [dinero.get("/vatTypes").status_code for _ in range(20)]
    assert first == again
    assert set(first) == {200, 500}


# The sandbox's own routes and its command


def test_the_summary_counts_everything_and_a_reset_goes_back_to_the_seed_keeping_tokens(
    sandbox: Sandbox, dinero: httpx.Client
) -> None:
    done = booked(dinero)
    invoice(dinero, ContactGuid=done["ContactGuid"])
    pay(dinero, done["Guid"], 125)
    dinero.post(
        "/sales/creditnotes", json={"CreditNoteFor": done["Guid"], "ProductLines": [line(1)]}
    )
    summary = sandbox.get("/_sandbox/summary")
    assert summary["invoices"] == {"Draft": 1, "Booked": 0, "Paid": 1, "OverPaid": 0, "Overdue": 0}
    assert summary["creditNotes"] == {"Draft": 1, "Booked": 0}
    assert {
        k: summary["counts"][k] for k in ("contacts", "invoices", "creditNotes", "payments")
    } == {
        "contacts": 1,
        "invoices": 2,
        "creditNotes": 1,
        "payments": 1,
    }
    assert summary["balances"] == {"1000": -100.0, "5800": 125.0, "7210": -25.0}
    assert summary["organization"] == {"Id": ORG, "Name": "Sandbox ApS", "IsPro": True}
    assert summary["tokens"]["active"] >= 1
    reset = httpx.post(f"{sandbox.url}/_sandbox/reset").json()
    assert reset["counts"]["invoices"] == reset["counts"]["contacts"] == 0
    assert (reset["counts"]["accounts"], reset["balances"]) == (13, {})
    assert sandbox.get("/_sandbox/stats")["requests_served"] == 0
    assert dinero.get("/contacts").status_code == 200, "a token outlives a reset"
    assert booked(dinero)["Number"] == 1, "numbering starts again"


def test_the_dinero_command_serves_dineros_rate_limit_and_says_how_to_get_a_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from subledger.api.cli.main import main

    served: dict[str, Any] = {}
    monkeypatch.setattr(
        "subledger.api.cli.sandbox.uvicorn.run",
        lambda app, **options: served.update(app=app, **options),
    )
    arguments = ["sandbox", "dinero", "--organization-id", "777", "--api-key", "k3y", "--seed", "5"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Dinero sandbox listening on http://127.0.0.1:8082/v1/777 (organization 777)",
        "Token: POST http://127.0.0.1:8082/dineroapi/oauth/token with Basic "
        "sandbox-client:sandbox-secret, grant_type=password, username=password=k3y "
        "(tokens last 3600 s)",
        "Rate limit: 100 requests a minute",
    ]
    assert (served["host"], served["port"], served["log_level"]) == ("127.0.0.1", 8082, "warning")
    app = served["app"]
    assert (app.state.faults.settings.rate_limit, app.state.faults.settings.seed) == (100, 5)
    assert app.state.store.settings.organization_id == 777
    assert app.state.brownouts.settings.seed == 5

    served.clear()
    off = CliRunner().invoke(
        main, ["sandbox", "dinero", "--rate-limit", "0", "--brownout-rate", "0.1"]
    )
    assert off.exit_code == 0, off.output
    assert off.output.splitlines()[-1] == "Rate limit: off"
    assert served["app"].state.brownouts.settings.rate == 0.1


def test_the_dinero_command_refuses_a_rate_above_one() -> None:
    from subledger.api.cli.main import main

    result = CliRunner().invoke(main, ["sandbox", "dinero", "--throttle-rate", "2"])
    assert result.exit_code == 2
    assert "--throttle-rate" in result.output and "0.0<=x<=1.0" in result.output
