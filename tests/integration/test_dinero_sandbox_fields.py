"""The Dinero sandbox refuses what Dinero's documented API refuses: every field the reference
(`docs/reference/dinero.md`) marks required, on every endpoint, is named in Dinero's own error
body when it is missing or of the wrong type; payment conditions give the due date each type
documents; `queryFilter` takes only the documented fields; products are kept as Dinero keeps
them. Each case sends a body that is accepted whole, less one field."""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from subledger.adapters.sandbox import serving
from subledger.adapters.sandbox.dinero import create_dinero_app
from tests.integration.test_dinero_sandbox import (
    NOW,
    ORG,
    Sandbox,
    bearer,
    book,
    booked,
    contact,
    guid,
    invalid,
    invoice,
    line,
    read,
    refusal,
    settings,
    voucher_line,
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    app = create_dinero_app(settings())
    with serving(app) as url:
        yield Sandbox(app, url)


@pytest.fixture
def dinero(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """A client of a freshly reset sandbox at `NOW`, with the rate limit off (each case sets
    up a whole organization) and a token for read and write."""
    sandbox.move_to(NOW)
    sandbox.app.state.faults.clock = time.monotonic
    sandbox.put_faults(rate_limit=0, fail_rate=0, throttle_rate=0, drop_rate=0).raise_for_status()
    httpx.post(f"{sandbox.url}/_sandbox/reset", timeout=5).raise_for_status()
    base = f"{sandbox.url}/v1/{ORG}"
    with httpx.Client(base_url=base, headers=bearer(sandbox.url), timeout=5) as client:
        yield client


def at(client: httpx.Client, path: str, version: str = "v1") -> httpx.URL:
    """The URL of `path` under the organization, in `version` (the client's base is v1)."""
    return client.base_url.copy_with(path=f"/{version}/{ORG}{path}")


# An organization holding one of everything a request may refer to


@dataclass
class World:
    """What the cases send their requests about, made through the API itself."""

    client: httpx.Client
    contact: str
    product: str
    draft: str
    booked: str
    euro: str
    credit_note: str
    booked_note: str
    payment: str
    voucher: str
    ledger_item: str

    def stamp(self, document: str, path: str = "/invoices") -> str:
        return str(self.client.get(f"{path}/{document}").json()["TimeStamp"])

    def voucher_stamp(self) -> str:
        return str(self.client.get(f"/vouchers/manuel/{self.voucher}").json()["Timestamp"])

    def ledger_version(self) -> str:
        (status,) = self.client.post("/ledgeritems/status", json=[{"Id": self.ledger_item}]).json()
        return str(status["Version"])


def created(response: httpx.Response, key: str) -> str:
    assert response.status_code == 201, response.text
    return str(response.json()[key])


def make_world(client: httpx.Client) -> World:
    buyer = contact(client, Email="ann@acme.dk", EanNumber="5798000000007")
    product = created(client.post("/products", json=product_body()), "ProductGuid")
    done = booked(client, ContactGuid=buyer)
    euro = booked(client, ContactGuid=buyer, Currency="EUR")
    note = created(client.post("/sales/creditnotes", json=credit_note_body(done["Guid"])), "Guid")
    sent_note = created(
        client.post("/sales/creditnotes", json=credit_note_body(done["Guid"])), "Guid"
    )
    book(client, client.get(f"/sales/creditnotes/{sent_note}").json(), "/sales/creditnotes")
    paid = client.post(
        f"/invoices/{done['Guid']}/payments",
        json={**payment_body(), "Timestamp": read(client, done["Guid"])["TimeStamp"]},
    )
    assert paid.status_code == 201, paid.text
    (payment,) = client.get(at(client, f"/invoices/{done['Guid']}/payments", "v2")).json()[
        "Payments"
    ]
    voucher = created(client.post("/vouchers/manuel", json=voucher_body()), "Guid")
    item = guid()
    made = client.post(at(client, "/ledgeritems", "v1.2"), json=[ledger_item(item)])
    assert made.status_code == 201, made.text
    return World(
        client=client,
        contact=buyer,
        product=product,
        draft=invoice(client, ContactGuid=buyer)["Guid"],
        booked=done["Guid"],
        euro=euro["Guid"],
        credit_note=note,
        booked_note=sent_note,
        payment=str(payment["Id"]),
        voucher=voucher,
        ledger_item=item,
    )


# The bodies, each accepted as it is


def contact_body() -> dict[str, Any]:
    return {
        "Name": "Bolt A/S",
        "CountryKey": "DK",
        "IsPerson": False,
        "IsMember": False,
        "UseCvr": True,
    }


def product_body() -> dict[str, Any]:
    return {"AccountNumber": 1000, "BaseAmountValue": 99.5, "Quantity": 1, "Unit": "hours"}


def invoice_body() -> dict[str, Any]:
    return {"Date": "2025-03-01", "ProductLines": [line(100)]}


def credit_note_body(invoice_guid: str) -> dict[str, Any]:
    return {"CreditNoteFor": invoice_guid, "ProductLines": [line(10)]}


def payment_body() -> dict[str, Any]:
    return {
        "DepositAccountNumber": 5800,
        "Amount": 10,
        "Description": "Indbetaling",
        "RemainderIsFee": False,
    }


def voucher_body() -> dict[str, Any]:
    return {
        "VoucherDate": "2025-03-31",
        "ExternalReference": "rec-2025-03",
        "Lines": [voucher_line(100)],
    }


def ledger_item(item: str | None = None) -> dict[str, Any]:
    return {"Id": item or guid(), "VoucherDate": "2025-03-31", "Lines": [voucher_line(50)]}


@dataclass(frozen=True)
class Case:
    """One endpoint: how to send to it, and a body it accepts."""

    method: str
    path: Callable[[World], str]
    body: Callable[[World], Any]
    version: str = "v1"

    def send(self, world: World, body: Any) -> httpx.Response:
        url = at(world.client, self.path(world), self.version)
        return world.client.request(self.method, url, json=body)


LINE_FIELDS = ("BaseAmountValue", "Quantity", "AccountNumber")
VOUCHER_LINE_FIELDS = ("Description", "AccountNumber", "BalancingAccountNumber", "Amount")

CONTACT = Case("POST", lambda w: "/contacts", lambda w: contact_body())
CONTACT_UPDATE = Case("PUT", lambda w: f"/contacts/{w.contact}", lambda w: contact_body())
PRODUCT = Case("POST", lambda w: "/products", lambda w: product_body())
PRODUCT_UPDATE = Case("PUT", lambda w: f"/products/{w.product}", lambda w: product_body())
INVOICE = Case("POST", lambda w: "/invoices", lambda w: invoice_body())
PREVIEW = Case("POST", lambda w: "/invoices/fetch", lambda w: invoice_body())
UPDATE = Case(
    "PUT",
    lambda w: f"/invoices/{w.draft}",
    lambda w: {**invoice_body(), "Timestamp": w.stamp(w.draft)},
    "v1.2",
)
CREDIT_NOTE = Case("POST", lambda w: "/sales/creditnotes", lambda w: credit_note_body(w.booked))
BOOK = Case(
    "POST", lambda w: f"/invoices/{w.draft}/book", lambda w: {"Timestamp": w.stamp(w.draft)}
)
BOOK_NOTE = Case(
    "POST",
    lambda w: f"/sales/creditnotes/{w.credit_note}/book",
    lambda w: {"Timestamp": w.stamp(w.credit_note, "/sales/creditnotes")},
)
DELETE = Case("DELETE", lambda w: f"/invoices/{w.draft}", lambda w: {"Timestamp": w.stamp(w.draft)})
EMAIL = Case(
    "POST",
    lambda w: f"/invoices/{w.booked}/email",
    lambda w: {"ShouldAddTrustPilotEmailAsBcc": False, "Timestamp": w.stamp(w.booked)},
)
EMAIL_NOTE = Case(
    "POST",
    lambda w: f"/sales/creditnotes/{w.booked_note}/email",
    lambda w: {
        "ShouldAddTrustPilotEmailAsBcc": False,
        "Timestamp": w.stamp(w.booked_note, "/sales/creditnotes"),
    },
)
EAN = Case(
    "POST",
    lambda w: f"/invoices/{w.booked}/with-ean",
    lambda w: {"Timestamp": w.stamp(w.booked)},
    "v2",
)
GENERATE = Case(
    "POST",
    lambda w: f"/invoices/{w.booked}/generate-creditnote",
    lambda w: {"Timestamp": w.stamp(w.booked)},
)
PAYMENT = Case(
    "POST",
    lambda w: f"/invoices/{w.booked}/payments",
    lambda w: {**payment_body(), "Timestamp": w.stamp(w.booked)},
)
EURO_PAYMENT = Case(
    "POST",
    lambda w: f"/invoices/{w.euro}/payments",
    lambda w: {**payment_body(), "AmountInForeignCurrency": 1.34, "Timestamp": w.stamp(w.euro)},
)
DELETE_PAYMENT = Case(
    "DELETE",
    lambda w: f"/invoices/{w.booked}/payments/{w.payment}",
    lambda w: {"Timestamp": w.stamp(w.booked)},
)
VOUCHER = Case("POST", lambda w: "/vouchers/manuel", lambda w: voucher_body())
BOOK_VOUCHER = Case(
    "POST",
    lambda w: f"/vouchers/manuel/{w.voucher}/book",
    lambda w: {"Timestamp": w.voucher_stamp()},
)
DELETE_VOUCHER = Case(
    "DELETE", lambda w: f"/vouchers/manuel/{w.voucher}", lambda w: {"Timestamp": w.voucher_stamp()}
)
LEDGER_ITEMS = Case("POST", lambda w: "/ledgeritems", lambda w: [ledger_item()], "v1.2")
LEDGER_STATUS = Case("POST", lambda w: "/ledgeritems/status", lambda w: [{"Id": w.ledger_item}])
LEDGER_BOOK = Case(
    "POST",
    lambda w: "/ledgeritems/book",
    lambda w: [{"Id": w.ledger_item, "Version": w.ledger_version()}],
)

#: Every endpoint and the field paths the reference marks required on it.
REQUIRED: dict[str, tuple[Case, tuple[str, ...]]] = {
    "contacts": (CONTACT, ("Name", "CountryKey", "IsPerson", "IsMember", "UseCvr")),
    "contact update": (CONTACT_UPDATE, ("Name", "CountryKey", "IsPerson", "IsMember", "UseCvr")),
    "products": (PRODUCT, ("AccountNumber", "BaseAmountValue", "Quantity", "Unit")),
    "product update": (PRODUCT_UPDATE, ("AccountNumber", "BaseAmountValue", "Quantity", "Unit")),
    "invoices": (INVOICE, ("ProductLines", *(f"ProductLines[0].{n}" for n in LINE_FIELDS))),
    "invoice preview": (PREVIEW, ("ProductLines", *(f"ProductLines[0].{n}" for n in LINE_FIELDS))),
    "invoice update": (
        UPDATE,
        ("Timestamp", "ProductLines", *(f"ProductLines[0].{n}" for n in LINE_FIELDS)),
    ),
    "credit notes": (
        CREDIT_NOTE,
        ("ProductLines", "CreditNoteFor", *(f"ProductLines[0].{n}" for n in LINE_FIELDS)),
    ),
    "book invoice": (BOOK, ("Timestamp",)),
    "book credit note": (BOOK_NOTE, ("Timestamp",)),
    "delete invoice": (DELETE, ("Timestamp",)),
    "e-mail invoice": (EMAIL, ("ShouldAddTrustPilotEmailAsBcc", "Timestamp")),
    "e-mail credit note": (EMAIL_NOTE, ("ShouldAddTrustPilotEmailAsBcc", "Timestamp")),
    "e-invoice": (EAN, ("Timestamp",)),
    "generate credit note": (GENERATE, ("Timestamp",)),
    "payments": (
        PAYMENT,
        ("Timestamp", "DepositAccountNumber", "Amount", "Description", "RemainderIsFee"),
    ),
    "payments outside DKK": (EURO_PAYMENT, ("AmountInForeignCurrency",)),
    "delete payment": (DELETE_PAYMENT, ("Timestamp",)),
    "manual vouchers": (
        VOUCHER,
        (
            "VoucherDate",
            "ExternalReference",
            "Lines",
            *(f"Lines[0].{n}" for n in VOUCHER_LINE_FIELDS),
        ),
    ),
    "book manual voucher": (BOOK_VOUCHER, ("Timestamp",)),
    "delete manual voucher": (DELETE_VOUCHER, ("Timestamp",)),
    "ledger items": (
        LEDGER_ITEMS,
        (
            "[0].Id",
            "[0].VoucherDate",
            "[0].Lines",
            *(f"[0].Lines[0].{n}" for n in VOUCHER_LINE_FIELDS),
        ),
    ),
    "ledger item status": (LEDGER_STATUS, ("[0].Id",)),
    "book ledger items": (LEDGER_BOOK, ("[0].Id", "[0].Version")),
}
FIELD_CASES = [
    pytest.param(case, name, id=f"{endpoint}: {name}")
    for endpoint, (case, names) in REQUIRED.items()
    for name in names
]
STEP = re.compile(r"\[(\d+)\]|\.?([A-Za-z]+)")


def located(body: Any, path: str) -> tuple[Any, str | int]:
    """The container that holds the field at `path` (`ProductLines[0].Quantity`) and its key."""
    steps: list[str | int] = [int(index) if index else name for index, name in STEP.findall(path)]
    for step in steps[:-1]:
        body = body[step]
    return body, steps[-1]


def without(body: Any, path: str) -> Any:
    changed = copy.deepcopy(body)
    holder, key = located(changed, path)
    del holder[key]
    return changed


def mistyped(body: Any, path: str) -> Any:
    """The body with the field at `path` sent as a JSON type it does not take: a string for
    a number or a boolean, a number for a string, a string for a list."""
    changed = copy.deepcopy(body)
    holder, key = located(changed, path)
    value = holder[key]
    if isinstance(value, bool | int | float):
        holder[key] = str(value).lower()
    elif isinstance(value, str):
        holder[key] = 7
    else:
        holder[key] = "7"
    return changed


@pytest.mark.parametrize(
    "case", [pytest.param(case, id=name) for name, (case, _) in REQUIRED.items()]
)
def test_each_case_body_is_accepted_whole(dinero: httpx.Client, case: Case) -> None:
    world = make_world(dinero)
    answer = case.send(world, case.body(world))
    assert answer.is_success, answer.text


@pytest.mark.parametrize(("case", "name"), FIELD_CASES)
def test_a_missing_required_field_is_refused_naming_it(
    dinero: httpx.Client, case: Case, name: str
) -> None:
    world = make_world(dinero)
    assert invalid(case.send(world, without(case.body(world), name))) == {name}


@pytest.mark.parametrize(("case", "name"), FIELD_CASES)
def test_a_required_field_of_the_wrong_type_is_refused_naming_it(
    dinero: httpx.Client, case: Case, name: str
) -> None:
    world = make_world(dinero)
    assert invalid(case.send(world, mistyped(case.body(world), name))) == {name}


def test_an_empty_string_or_null_counts_as_missing(dinero: httpx.Client) -> None:
    empty = {**contact_body(), "Name": "", "CountryKey": None}
    assert invalid(dinero.post("/contacts", json=empty)) == {"Name", "CountryKey"}
    no_lines = {"ProductLines": []}
    assert invalid(dinero.post("/invoices", json=no_lines)) == {"ProductLines"}


def test_a_text_line_needs_the_line_fields_too_but_carries_no_amount(dinero: httpx.Client) -> None:
    text = {"LineType": "Text", "Description": "Tak for handlen"}
    assert invalid(dinero.post("/invoices", json={"ProductLines": [line(100), text]})) == {
        "ProductLines[1].BaseAmountValue",
        "ProductLines[1].Quantity",
        "ProductLines[1].AccountNumber",
    }
    draft = invoice(dinero, ProductLines=[line(100), {**text, **line(50)}])
    assert (draft["TotalExclVat"], draft["TotalInclVat"]) == (100.0, 125.0)


# Payment conditions and the due date


@pytest.mark.parametrize(
    ("condition", "days", "day", "due"),
    [
        ("Netto", 14, "2025-03-01", "2025-03-15"),
        ("Netto", 0, "2025-03-01", "2025-03-01"),
        ("NettoCash", 3, "2025-03-30", "2025-04-02"),
        ("CurrentMonthOut", None, "2024-02-10", "2024-02-29"),
        ("CurrentMonthOut", None, "2025-03-31", "2025-03-31"),
        ("Paid", None, "2025-03-20", "2025-03-20"),
    ],
)
def test_each_payment_condition_gives_its_due_date(
    dinero: httpx.Client, condition: str, days: int | None, day: str, due: str
) -> None:
    draft = invoice(
        dinero, Date=day, PaymentConditionType=condition, PaymentConditionNumberOfDays=days
    )
    assert (
        draft["PaymentConditionType"],
        draft["PaymentConditionNumberOfDays"],
        draft["PaymentDate"],
    ) == (condition, days, due)


@pytest.mark.parametrize(
    ("terms", "due"),
    [
        ({}, ("Netto", 8, "2025-03-09")),
        ({"PaymentConditionType": "CurrentMonthOut"}, ("CurrentMonthOut", None, "2025-03-31")),
        ({"PaymentConditionType": "Paid"}, ("Paid", None, "2025-03-01")),
        (
            {"PaymentConditionType": "NettoCash", "PaymentConditionNumberOfDays": 5},
            ("NettoCash", 5, "2025-03-06"),
        ),
    ],
)
def test_an_invoice_without_conditions_takes_its_contacts(
    dinero: httpx.Client, terms: dict[str, Any], due: tuple[str, int | None, str]
) -> None:
    buyer = contact(dinero, **terms)
    read_back = dinero.get(f"/contacts/{buyer}").json()
    assert (read_back["PaymentConditionType"], read_back["PaymentConditionNumberOfDays"]) == due[:2]
    draft = invoice(dinero, ContactGuid=buyer)
    assert (
        draft["PaymentConditionType"],
        draft["PaymentConditionNumberOfDays"],
        draft["PaymentDate"],
    ) == due
    own = invoice(
        dinero, ContactGuid=buyer, PaymentConditionType="Netto", PaymentConditionNumberOfDays=30
    )
    assert own["PaymentDate"] == "2025-03-31", "the invoice's own conditions win"


@pytest.mark.parametrize(
    ("terms", "named"),
    [
        ({"PaymentConditionType": "Netto"}, "PaymentConditionNumberOfDays"),
        ({"PaymentConditionType": "NettoCash"}, "PaymentConditionNumberOfDays"),
        (
            {"PaymentConditionType": "CurrentMonthOut", "PaymentConditionNumberOfDays": 15},
            "PaymentConditionNumberOfDays",
        ),
        (
            {"PaymentConditionType": "Paid", "PaymentConditionNumberOfDays": 0},
            "PaymentConditionNumberOfDays",
        ),
        ({"PaymentConditionNumberOfDays": 14}, "PaymentConditionType"),
        (
            {"PaymentConditionType": "Net", "PaymentConditionNumberOfDays": 14},
            "PaymentConditionType",
        ),
        (
            {"PaymentConditionType": "Netto", "PaymentConditionNumberOfDays": -1},
            "PaymentConditionNumberOfDays",
        ),
        (
            {"PaymentConditionType": "Netto", "PaymentConditionNumberOfDays": "14"},
            "PaymentConditionNumberOfDays",
        ),
    ],
)
def test_payment_conditions_that_do_not_fit_are_refused_on_contacts_and_invoices(
    dinero: httpx.Client, terms: dict[str, Any], named: str
) -> None:
    assert invalid(dinero.post("/contacts", json={**contact_body(), **terms})) == {named}
    assert invalid(dinero.post("/invoices", json={**invoice_body(), **terms})) == {named}


# queryFilter


def found(client: httpx.Client, path: str, query_filter: str, key: str = "Guid") -> list[str]:
    answer = client.get(path, params={"queryFilter": query_filter})
    assert answer.status_code == 200, answer.text
    return [str(record[key]) for record in answer.json()["Collection"]]


def test_contacts_filter_on_vat_number_eq_and_name_eq_or_contains(dinero: httpx.Client) -> None:
    acme = contact(dinero, Name="Acme ApS", VatNumber="12345678")
    nordic = contact(dinero, Name="ACME Nordic", VatNumber="87654321")
    contact(dinero, Name="Bolt A/S")

    def guids(query_filter: str) -> list[str]:
        return found(dinero, "/contacts", query_filter, "ContactGuid")

    assert guids("VatNumber eq '87654321'") == [nordic]
    assert guids("Name eq 'acme aps'") == [acme]
    assert guids("Name contains 'acme'") == [acme, nordic]


@pytest.mark.parametrize(
    "query_filter",
    [
        "VatNumber contains '1234'",
        "EanNumber eq '5798000000007'",
        "Email eq 'ann@acme.dk'",
        "ExternalReference eq 'c-1'",
        "IsDebitor eq true",
        "ContactGuid eq 'x'",
        "Name ne 'Acme'",
    ],
)
def test_contacts_refuse_any_other_filter_naming_query_filter(
    dinero: httpx.Client, query_filter: str
) -> None:
    assert invalid(dinero.get("/contacts", params={"queryFilter": query_filter})) == {"queryFilter"}
    listed_v2 = dinero.get(at(dinero, "/contacts", "v2"), params={"queryFilter": query_filter})
    assert invalid(listed_v2) == {"queryFilter"}


@pytest.mark.parametrize("path", ["/invoices", "/sales/creditnotes"])
def test_invoices_and_credit_notes_filter_on_reference_contact_and_description(
    dinero: httpx.Client, path: str
) -> None:
    first, second = contact(dinero, Name="First"), contact(dinero, Name="Second")
    original = booked(dinero, ContactGuid=first)
    other = booked(dinero, ContactGuid=second)

    def make(buyer: str, credited: str, reference: str, text: str) -> str:
        fields = {"ExternalReference": reference, "Description": text}
        if path == "/invoices":
            return str(invoice(dinero, ContactGuid=buyer, **fields)["Guid"])
        body = {**credit_note_body(credited), **fields}
        return created(dinero.post(path, json=body), "Guid")

    one = make(first, original["Guid"], "subledger:cn-1", "Marts abonnement")
    two = make(second, other["Guid"], "subledger:cn-2", "April abonnement")
    mine = {one, two}

    def guids(query_filter: str) -> list[str]:
        return [g for g in found(dinero, path, query_filter) if g in mine]

    assert guids("ExternalReference eq 'subledger:cn-2'") == [two]
    assert guids("ExternalReference contains 'CN-1'") == [one]
    assert guids(f"ContactGuid eq '{second}'") == [two]
    assert guids("Description eq 'marts abonnement'") == [one]
    assert guids("Description contains 'abonnement'") == [one, two]
    for refused in ("ContactGuid contains 'a'", "Number eq '1'", "Currency eq 'DKK'"):
        assert invalid(dinero.get(path, params={"queryFilter": refused})) == {"queryFilter"}


def test_lists_page_from_zero_up_to_a_thousand(dinero: httpx.Client) -> None:
    names = [f"Kunde {n}" for n in range(5)]
    for name in names:
        contact(dinero, Name=name)

    def page(number: int, size: int) -> list[str]:
        answer = dinero.get("/contacts", params={"page": number, "pageSize": size})
        assert answer.status_code == 200, answer.text
        return [c["Name"] for c in answer.json()["Collection"]]

    assert page(0, 2) == names[:2]
    assert page(2, 2) == names[4:]
    assert page(3, 2) == []
    assert page(0, 1000) == names
    assert invalid(dinero.get("/contacts", params={"pageSize": 1001})) == {"pageSize"}
    assert invalid(dinero.get("/contacts", params={"pageSize": 0})) == {"pageSize"}


# Products


def test_a_product_is_created_read_listed_replaced_and_deleted(dinero: httpx.Client) -> None:
    fields = {name: value for name, value in product_body().items() if name != "Unit"}
    body = {**fields, "Name": "Support", "ProductNumber": "P-1", "unit": "HOURS"}
    made = created(dinero.post("/products", json=body), "ProductGuid")
    read_back = dinero.get(f"/products/{made}").json()
    assert (
        read_back["Name"],
        read_back["ProductNumber"],
        read_back["BaseAmountValue"],
        read_back["Quantity"],
        read_back["AccountNumber"],
        read_back["Unit"],
        read_back["DeletedAt"],
    ) == ("Support", "P-1", 99.5, 1, 1000, "hours", None)
    listed = dinero.get("/products", params={"fields": "ProductGuid,Name"}).json()
    assert listed["Collection"] == [{"ProductGuid": made, "Name": "Support"}]
    assert invalid(dinero.put(f"/products/{made}", json={"Name": "Support"})) == {
        "AccountNumber",
        "BaseAmountValue",
        "Quantity",
        "Unit",
    }
    replaced = dinero.put(f"/products/{made}", json={**product_body(), "BaseAmountValue": 120})
    assert replaced.status_code == 200, replaced.text
    assert dinero.get(f"/products/{made}").json()["Name"] is None, "PUT replaces the whole"
    assert dinero.delete(f"/products/{made}").status_code == 200
    assert dinero.get(f"/products/{made}").json()["DeletedAt"]
    assert dinero.get("/products").json()["Collection"] == []
    refusal(dinero.get(f"/products/{guid()}"), 404, 40)


def test_a_product_unit_is_parts_or_hours_and_its_list_takes_no_query_filter(
    dinero: httpx.Client,
) -> None:
    assert invalid(dinero.post("/products", json={**product_body(), "Unit": "km"})) == {"Unit"}
    assert invalid(dinero.post("/products", json={**product_body(), "Quantity": 0})) == {"Quantity"}
    assert invalid(dinero.get("/products", params={"queryFilter": "Name eq 'x'"})) == {
        "queryFilter"
    }
    assert invalid(dinero.post("/invoices", json={"ProductLines": [line(1, Unit="km")]})) == {
        "ProductLines[0].Unit"
    }


def test_a_line_may_name_a_product_that_exists_and_is_not_deleted(dinero: httpx.Client) -> None:
    made = created(dinero.post("/products", json=product_body()), "ProductGuid")
    draft = invoice(dinero, ProductLines=[line(100, ProductGuid=made)])
    assert draft["ProductLines"][0]["ProductGuid"] == made
    assert draft["TotalExclVat"] == 100.0, "the line's own price counts, not the product's"
    assert invalid(
        dinero.post("/invoices", json={"ProductLines": [line(1, ProductGuid=guid())]})
    ) == {"ProductLines[0].ProductGuid"}
    dinero.delete(f"/products/{made}").raise_for_status()
    assert invalid(
        dinero.post("/invoices", json={"ProductLines": [line(1, ProductGuid=made)]})
    ) == {"ProductLines[0].ProductGuid"}


def test_a_credit_note_without_credit_note_for_is_refused(dinero: httpx.Client) -> None:
    alone = {"ContactGuid": contact(dinero), "ProductLines": [line(10)]}
    assert invalid(dinero.post("/sales/creditnotes", json=alone)) == {"CreditNoteFor"}
    done = book(dinero, invoice(dinero))
    made = dinero.post("/sales/creditnotes", json=credit_note_body(done["Guid"]))
    assert made.status_code == 201, made.text
