"""The Billy sandbox requires every field the reference marks required (`*`), on every endpoint:
left out, it is a 422 naming the field; sent with the wrong type, a 422 naming it too. A PUT is
partial (it need not repeat a required field) but may not blank one."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.integration.billy_sandbox_kit import (
    Sandbox,
    account_id,
    approved_invoice,
    contact,
    fresh_client,
    invoice,
    payment_body,
    product,
    refused_fields,
    running_sandbox,
    write,
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    yield from running_sandbox()


@pytest.fixture
def billy(sandbox: Sandbox) -> Iterator[httpx.Client]:
    yield from fresh_client(sandbox)


@dataclass(frozen=True)
class Endpoint:
    """Where a create goes, the singular name its 422 is filed under, and a valid body."""

    path: str
    singular: str
    body: dict[str, Any]


def contacts(billy: httpx.Client) -> Endpoint:
    return Endpoint("/contacts", "contact", {"name": "A", "countryId": "DK", "paymentTermsDays": 8})


def contact_persons(billy: httpx.Client) -> Endpoint:
    return Endpoint(
        "/contactPersons", "contactPerson", {"contactId": contact(billy)["id"], "name": "Ann"}
    )


def products(billy: httpx.Client) -> Endpoint:
    return Endpoint("/products", "product", {"name": "Plan"})


def invoices(billy: httpx.Client) -> Endpoint:
    body = {
        "contactId": contact(billy)["id"],
        "entryDate": "2025-03-01",
        "currencyId": "DKK",
        "paymentTermsDays": 8,
        "lines": [{"productId": product(billy), "unitPrice": 100}],
    }
    return Endpoint("/invoices", "invoice", body)


def emails(billy: httpx.Client) -> Endpoint:
    persons = [{"name": "Ann", "email": "ann@acme.dk"}]
    created = write(
        billy,
        "POST",
        "/contacts",
        "contact",
        name="Acme",
        countryId="DK",
        paymentTermsDays=8,
        contactPersons=persons,
    )
    booked = invoice(billy, created["contacts"][0]["id"], state="approved")
    body = {
        "contactPersonId": created["contactPersons"][0]["id"],
        "emailSubject": "Faktura",
        "emailBody": "Se vedhæftede.",
    }
    return Endpoint(f"/invoices/{booked['id']}/emails", "email", body)


def daybook_transactions(billy: httpx.Client) -> Endpoint:
    lines = [
        {"accountNo": 7400, "amount": 100, "side": "debit"},
        {"accountNo": 1000, "amount": 100, "side": "credit"},
    ]
    return Endpoint(
        "/daybookTransactions", "daybookTransaction", {"entryDate": "2025-03-31", "lines": lines}
    )


def bank_payments(billy: httpx.Client) -> Endpoint:
    booked = approved_invoice(billy)
    return Endpoint("/bankPayments", "bankPayment", payment_body(billy, booked["id"], 125))


Setup = Callable[[httpx.Client], Endpoint]


@dataclass(frozen=True)
class Required:
    """A required field: its endpoint, its path in the body, a value of the wrong type, and
    the name a 422 gives it when it is missing (its path, unless said otherwise)."""

    setup: Setup
    path: str
    wrong: Any
    missing_named: str = ""

    @property
    def named_when_missing(self) -> str:
        return self.missing_named or self.path

    def __str__(self) -> str:
        return f"{self.setup.__name__}.{self.path}"


REQUIRED: list[Required] = [
    Required(contacts, "name", 5),
    Required(contacts, "countryId", 45),
    Required(contacts, "paymentTermsDays", "8"),
    Required(contact_persons, "contactId", 5),
    # A person needs a name or an email; with neither, the 422 names `name`.
    Required(contact_persons, "name", 5),
    Required(products, "name", 5),
    Required(invoices, "contactId", 5),
    Required(invoices, "entryDate", 20250301),
    Required(invoices, "currencyId", 208),
    Required(invoices, "paymentTermsDays", "8"),
    Required(invoices, "lines", {"unitPrice": 100}),
    Required(invoices, "lines[0].productId", 7),
    Required(invoices, "lines[0].unitPrice", "100"),
    Required(emails, "contactPersonId", 5),
    Required(emails, "emailSubject", 5),
    Required(emails, "emailBody", ["Se vedhæftede."]),
    Required(daybook_transactions, "entryDate", 20250331),
    Required(daybook_transactions, "lines", "debit 100"),
    # A line needs an accountId or an accountNo; with neither, the 422 names `accountId`.
    Required(daybook_transactions, "lines[0].accountNo", "7400", "lines[0].accountId"),
    Required(daybook_transactions, "lines[0].amount", "100"),
    Required(daybook_transactions, "lines[0].side", 1),
    Required(bank_payments, "entryDate", 20250305),
    Required(bank_payments, "cashAmount", "125"),
    Required(bank_payments, "cashSide", True),
    Required(bank_payments, "cashAccountId", 5800),
    Required(bank_payments, "associations", {"subjectReference": "invoice:x"}),
]


STEP = re.compile(r"([A-Za-z]+)(?:\[([0-9]+)\])?")


def _parent(body: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The object holding the field `path` names (`lines[0].amount`), and the field's name."""
    *steps, last = path.split(".")
    holder: Any = body
    for step in steps:
        match = STEP.fullmatch(step)
        assert match is not None
        holder = holder[match[1]]
        if match[2] is not None:
            holder = holder[int(match[2])]
    return holder, last


def without(body: dict[str, Any], path: str) -> dict[str, Any]:
    copy: dict[str, Any] = _deep_copy(body)
    holder, name = _parent(copy, path)
    del holder[name]
    return copy


def with_value(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    copy: dict[str, Any] = _deep_copy(body)
    holder, name = _parent(copy, path)
    holder[name] = value
    return copy


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _deep_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_deep_copy(item) for item in value]
    return value


@pytest.mark.parametrize("field", REQUIRED, ids=str)
def test_a_create_without_a_required_field_is_refused_naming_it(
    billy: httpx.Client, field: Required
) -> None:
    endpoint = field.setup(billy)
    body = without(endpoint.body, field.path)
    answer = billy.post(endpoint.path, json={endpoint.singular: body})
    assert field.named_when_missing in refused_fields(answer, endpoint.singular)


@pytest.mark.parametrize("field", REQUIRED, ids=str)
def test_a_required_field_of_the_wrong_type_is_refused_naming_it(
    billy: httpx.Client, field: Required
) -> None:
    endpoint = field.setup(billy)
    body = with_value(endpoint.body, field.path, field.wrong)
    answer = billy.post(endpoint.path, json={endpoint.singular: body})
    assert field.path in refused_fields(answer, endpoint.singular)


@pytest.mark.parametrize("setup", [contacts, products, invoices, daybook_transactions])
def test_the_valid_bodies_of_these_tests_are_accepted(billy: httpx.Client, setup: Setup) -> None:
    endpoint = setup(billy)
    write(billy, "POST", endpoint.path, endpoint.singular, **endpoint.body)


def test_a_bank_payment_needs_no_cash_exchange_rate_in_the_invoices_own_currency(
    billy: httpx.Client,
) -> None:
    endpoint = bank_payments(billy)
    write(billy, "POST", endpoint.path, endpoint.singular, **endpoint.body)


def test_a_contact_person_needs_a_name_or_an_email_and_either_will_do(
    billy: httpx.Client,
) -> None:
    endpoint = contact_persons(billy)
    by_email = {**without(endpoint.body, "name"), "email": "ann@acme.dk"}
    assert write(billy, "POST", "/contactPersons", "contactPerson", **by_email)["contactPersons"]
    neither = without(endpoint.body, "name")
    answer = billy.post("/contactPersons", json={"contactPerson": neither})
    assert set(refused_fields(answer, "contactPerson")) == {"name"}


def test_an_email_sent_with_the_wrong_type_is_named_even_when_a_name_is_given(
    billy: httpx.Client,
) -> None:
    endpoint = contact_persons(billy)
    answer = billy.post("/contactPersons", json={"contactPerson": {**endpoint.body, "email": 5}})
    assert set(refused_fields(answer, "contactPerson")) == {"email"}


def test_a_daybook_line_may_name_its_account_by_id_instead_of_number(
    billy: httpx.Client,
) -> None:
    endpoint = daybook_transactions(billy)
    body = without(endpoint.body, "lines[0].accountNo")
    body["lines"][0]["accountId"] = account_id(billy, 7400)
    kept = write(billy, "POST", endpoint.path, endpoint.singular, **body)
    assert kept["daybookTransactions"][0]["lines"][0]["accountNo"] == 7400


# PUT is partial: it need not repeat a required field, but it may not blank one.


def test_a_put_of_a_contact_need_not_repeat_its_required_fields(billy: httpx.Client) -> None:
    created = contact(billy, paymentTermsDays=14)
    changed = write(billy, "PUT", f"/contacts/{created['id']}", "contact", street="Vejen 1")
    after = changed["contacts"][0]
    assert (after["street"], after["name"], after["paymentTermsDays"]) == (
        "Vejen 1",
        "Acme ApS",
        14,
    )


def test_a_put_of_a_product_or_a_draft_need_not_repeat_their_required_fields(
    billy: httpx.Client,
) -> None:
    product_id = product(billy)
    changed = write(billy, "PUT", f"/products/{product_id}", "product", description="Monthly")
    assert (changed["products"][0]["name"], changed["products"][0]["description"]) == (
        "Plan",
        "Monthly",
    )
    draft = invoice(billy, contact(billy)["id"], paymentTermsDays=10)
    changed = write(billy, "PUT", f"/invoices/{draft['id']}", "invoice", contactMessage="Hej")
    kept = changed["invoices"][0]
    assert (kept["contactMessage"], kept["paymentTermsDays"], kept["amount"]) == ("Hej", 10, 100.0)


BLANKED: list[tuple[str, str, Any]] = [
    ("contact", "name", None),
    ("contact", "name", ""),
    ("contact", "countryId", None),
    ("contact", "paymentTermsDays", None),
    ("product", "name", None),
    ("product", "name", ""),
    ("invoice", "contactId", None),
    ("invoice", "entryDate", None),
    ("invoice", "currencyId", ""),
    ("invoice", "paymentTermsDays", None),
    ("invoice", "lines", None),
    ("invoice", "lines", []),
]


@pytest.mark.parametrize(("singular", "name", "blank"), BLANKED)
def test_a_put_may_not_blank_a_required_field(
    billy: httpx.Client, singular: str, name: str, blank: Any
) -> None:
    record_id = _made(billy, singular)
    answer = billy.put(f"/{singular}s/{record_id}", json={singular: {name: blank}})
    assert name in refused_fields(answer, singular)


def _made(billy: httpx.Client, singular: str) -> str:
    """A new contact, product or draft invoice, by its singular name; its id."""
    if singular == "contact":
        return str(contact(billy)["id"])
    if singular == "product":
        return product(billy)
    return str(invoice(billy, contact(billy)["id"])["id"])
