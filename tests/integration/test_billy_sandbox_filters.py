"""The Billy sandbox's lists honour exactly the filters the reference documents, each of which
really filters, and ignore every other query parameter (answering the unfiltered list, paged),
so that a client trusting an undocumented filter finds out here rather than at Billy."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.integration.billy_sandbox_kit import (
    Sandbox,
    contact,
    credit_note,
    fresh_client,
    invoice,
    listed,
    pay,
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


def ids(client: httpx.Client, plural: str, **params: Any) -> list[str]:
    return [str(record["id"]) for record in listed(client, plural, **params)]


# Invoices


@dataclass(frozen=True)
class Invoices:
    """Four documents whose every filtered field differs somewhere (dates, terms, state,
    currency, contact, number, paid or not)."""

    acme: str
    jan: str
    feb: str
    mar: str
    note: str

    @property
    def every(self) -> list[str]:
        return [self.jan, self.feb, self.mar, self.note]


@pytest.fixture
def documents(billy: httpx.Client) -> Invoices:
    acme = contact(billy, name="Acme ApS")["id"]
    bolt = contact(billy, name="Bolt A/S")["id"]
    plan = product(billy, name="Pro plan")
    # Approved, 100 + 25 VAT, due 2025-01-23; credited by 50 below, so its balance is 75.
    jan = invoice(
        billy,
        acme,
        entryDate="2025-01-15",
        invoiceNo="1001",
        state="approved",
        lines=[{"productId": plan, "unitPrice": 100, "description": "Pro plan January"}],
    )
    # A draft in euros, due 2025-03-12.
    feb = invoice(
        billy,
        bolt,
        entryDate="2025-02-10",
        currencyId="EUR",
        paymentTermsDays=30,
        lines=[{"productId": plan, "unitPrice": 80}],
    )
    # Approved, 200 + 50 VAT, due 2025-04-14, paid in full.
    mar = invoice(
        billy,
        acme,
        entryDate="2025-03-31",
        paymentTermsDays=14,
        invoiceNo="2001",
        state="approved",
        lines=[{"productId": plan, "unitPrice": 200}],
    )
    pay(billy, mar["id"], 250)
    # 40 + 10 VAT off January, dated 2025-03-10 and due the same day.
    answer = credit_note(billy, jan, 40, state="approved")
    assert answer.status_code == 200, answer.text
    note = answer.json()["invoices"][0]["id"]
    return Invoices(acme, jan["id"], feb["id"], mar["id"], note)


def test_invoices_filter_by_contact_credited_invoice_number_and_currency(
    billy: httpx.Client, documents: Invoices
) -> None:
    d = documents
    assert ids(billy, "invoices", contactId=d.acme) == [d.jan, d.mar, d.note]
    assert ids(billy, "invoices", creditedInvoiceId=d.jan) == [d.note]
    assert ids(billy, "invoices", invoiceNo="1001") == [d.jan]
    assert ids(billy, "invoices", invoiceNo="100") == []
    assert ids(billy, "invoices", currencyId="EUR") == [d.feb]


def test_invoices_filter_by_state_and_paid(billy: httpx.Client, documents: Invoices) -> None:
    d = documents
    assert ids(billy, "invoices", state="draft") == [d.feb]
    assert ids(billy, "invoices", state="approved") == [d.jan, d.mar, d.note]
    assert ids(billy, "invoices", state="voided") == []
    assert ids(billy, "invoices", isPaid="true") == [d.mar]
    assert ids(billy, "invoices", isPaid="false") == [d.jan, d.feb, d.note]


def test_an_external_id_matches_nothing_as_no_invoice_can_be_given_one(
    billy: httpx.Client, documents: Invoices
) -> None:
    assert ids(billy, "invoices", externalId="shop-1") == []
    assert len(ids(billy, "invoices")) == 4


def test_invoices_filter_by_entry_date_bounds(billy: httpx.Client, documents: Invoices) -> None:
    d = documents
    assert ids(billy, "invoices", minEntryDate="2025-02-10") == [d.feb, d.mar, d.note]
    assert ids(billy, "invoices", maxEntryDate="2025-02-10") == [d.jan, d.feb]
    both = {"minEntryDate": "2025-02-11", "maxEntryDate": "2025-03-30"}
    assert ids(billy, "invoices", **both) == [d.note]


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        ("all", "jan feb mar note"),
        ("day:2025-02-10", "feb"),
        ("dates:2025-01-16...2025-03-10", "feb note"),
        ("month:2025-03", "mar note"),
        ("quarter:2025-1", "jan feb mar note"),
        ("quarter:2025-2", ""),
        ("halfYear:2025-1", "jan feb mar note"),
        ("halfYear:2024-2", ""),
        ("year:2025", "jan feb mar note"),
        ("fiscalYear:2024", ""),
    ],
)
def test_invoices_filter_by_entry_date_period(
    billy: httpx.Client, documents: Invoices, period: str, expected: str
) -> None:
    wanted = [getattr(documents, name) for name in expected.split()]
    assert ids(billy, "invoices", entryDatePeriod=period) == wanted


def test_invoices_filter_by_due_date_bounds(billy: httpx.Client, documents: Invoices) -> None:
    d = documents
    assert ids(billy, "invoices", minDueDate="2025-03-12") == [d.feb, d.mar]
    assert ids(billy, "invoices", maxDueDate="2025-03-10") == [d.jan, d.note]


def test_invoices_filter_by_approved_time_and_drafts_have_none(
    billy: httpx.Client, documents: Invoices
) -> None:
    d = documents
    assert ids(billy, "invoices", minApprovedTime="2000-01-01 00:00:00") == [d.jan, d.mar, d.note]
    assert ids(billy, "invoices", maxApprovedTime="2000-01-01T00:00:00") == []
    approved = listed(billy, "invoices", invoiceNo="2001")[0]["approvedTime"]
    around = {"minApprovedTime": approved, "maxApprovedTime": approved}
    assert d.mar in ids(billy, "invoices", **around)
    assert d.feb not in ids(billy, "invoices", **around)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("ACME", "jan mar note"),
        ("january", "jan"),
        ("1001", "jan"),
        ("250", "mar"),
        ("75", "jan"),
        ("75.00", "jan"),
        ("nothing like it", ""),
    ],
)
def test_invoices_search_the_number_contact_name_line_descriptions_and_amounts(
    billy: httpx.Client, documents: Invoices, q: str, expected: str
) -> None:
    wanted = [getattr(documents, name) for name in expected.split()]
    assert ids(billy, "invoices", q=q) == wanted


def test_undocumented_invoice_filters_are_ignored(billy: httpx.Client, documents: Invoices) -> None:
    every = documents.every
    assert ids(billy, "invoices", type="creditNote") == every
    assert ids(billy, "invoices", amount="200", sortProperty="amount") == every


@pytest.mark.parametrize(
    ("parameter", "value"),
    [
        ("state", "paid"),
        ("isPaid", "yes"),
        ("minEntryDate", "2025-13-01"),
        ("maxDueDate", "1 March"),
        ("entryDatePeriod", "week:2025-10"),
        ("entryDatePeriod", "quarter:2025-5"),
        ("entryDatePeriod", "dates:2025-03-01...2025-02-01"),
        ("minApprovedTime", "2025-06-02"),
        ("maxApprovedTime", "2025-06-31 12:00:00"),
    ],
)
def test_a_documented_filter_with_a_value_it_cannot_take_is_refused_naming_it(
    billy: httpx.Client, parameter: str, value: str
) -> None:
    answer = billy.get("/invoices", params={parameter: value})
    assert set(refused_fields(answer, "invoice")) == {parameter}


# Daybook transactions


def transaction(client: httpx.Client, **fields: Any) -> str:
    lines = [
        {"accountNo": 7400, "amount": 100, "side": "debit"},
        {"accountNo": 1000, "amount": 100, "side": "credit"},
    ]
    body = {"lines": lines, **fields}
    created = write(client, "POST", "/daybookTransactions", "daybookTransaction", **body)
    return str(created["daybookTransactions"][0]["id"])


def test_daybook_transactions_filter_by_each_documented_parameter(billy: httpx.Client) -> None:
    january = transaction(
        billy,
        entryDate="2025-01-31",
        apiType="sub:jan",
        description="Revenue January",
        voucherNo="V-1",
        state="approved",
    )
    february = transaction(
        billy,
        entryDate="2025-02-28",
        apiType="sub:feb",
        extendedDescription="Deferred to revenue",
        voucherNo="V-2",
    )
    march = transaction(billy, entryDate="2025-03-31", apiType="sub:mar", state="approved")
    write(billy, "PUT", f"/daybookTransactions/{march}", "daybookTransaction", isVoided=True)
    daybook = listed(billy, "daybooks")[0]["id"]

    def found(**params: Any) -> list[str]:
        return ids(billy, "daybookTransactions", **params)

    assert found(apiType="sub:feb") == [february]
    assert found(state="approved") == [january]
    assert found(state="draft") == [february]
    assert found(state="voided") == [march]
    assert found(minEntryDate="2025-02-01") == [february, march]
    assert found(maxEntryDate="2025-02-28") == [january, february]
    assert found(daybookId=daybook) == [january, february, march]
    assert found(daybookId="another-daybook") == []
    assert found(q="JANUARY") == [january]
    assert found(q="deferred") == [february]
    assert found(q="v-2") == [february]
    assert found(voucherNo="V-1") == [january, february, march], "undocumented: ignored"


# Contacts, products and accounts: `q` is the name only


def test_contacts_filter_by_name_contact_number_and_customer_only(billy: httpx.Client) -> None:
    acme = contact(billy, name="Acme ApS", contactNo="C-1")["id"]
    bolt = contact(billy, name="Bolt A/S", contactNo="C-2", isCustomer=False)["id"]
    nordic = contact(billy, name="Nordic ACME", contactNo="C-3", registrationNo="12345678")["id"]
    assert ids(billy, "contacts", q="acme") == [acme, nordic]
    assert ids(billy, "contacts", q="C-2") == [], "q looks in the name only"
    assert ids(billy, "contacts", contactNo="C-2") == [bolt]
    assert ids(billy, "contacts", contactNo="C") == [], "contactNo is an exact match"
    assert ids(billy, "contacts", isCustomer="false") == [bolt]
    assert ids(billy, "contacts", isCustomer="true", q="nordic") == [nordic]
    every = [acme, bolt, nordic]
    assert ids(billy, "contacts", registrationNo="12345678") == every
    assert ids(billy, "contacts", ean="5790000000001", email="x@y.dk") == every
    assert set(refused_fields(billy.get("/contacts?isCustomer=1"), "contact")) == {"isCustomer"}


def test_products_search_their_name_only_and_ignore_product_numbers(billy: httpx.Client) -> None:
    pro = product(billy, name="Pro plan", productNo="ACME-1")
    basic = product(billy, name="Basic plan", productNo="B-2")
    assert ids(billy, "products", q="PRO") == [pro]
    assert ids(billy, "products", q="acme") == []
    assert ids(billy, "products", productNo="B-2") == [pro, basic]


def test_accounts_search_their_name_only_and_ignore_account_numbers(
    billy: httpx.Client,
) -> None:
    every = listed(billy, "accounts")
    assert len(every) == 10
    banks = [a["accountNo"] for a in listed(billy, "accounts", q="bank")]
    assert banks == [5800, 5850]
    assert listed(billy, "accounts", q="5800") == []
    assert len(listed(billy, "accounts", accountNo=5800)) == 10
    paged = billy.get("/accounts", params={"accountNo": 5800, "pageSize": 3}).json()
    assert len(paged["accounts"]) == 3
    assert (paged["meta"]["paging"]["total"], paged["meta"]["paging"]["pageCount"]) == (10, 4)


# Lists with no documented filter answer everything


def test_contact_persons_payments_modifiers_and_deliveries_ignore_every_filter(
    billy: httpx.Client,
) -> None:
    ean = "5798000000007"
    persons = [{"name": "Ann", "email": "ann@acme.dk"}]
    made = write(
        billy,
        "POST",
        "/contacts",
        "contact",
        name="Acme",
        countryId="DK",
        paymentTermsDays=8,
        ean=ean,
        contactPersons=persons,
    )
    acme = made["contacts"][0]["id"]
    bolt = write(
        billy,
        "POST",
        "/contactPersons",
        "contactPerson",
        contactId=contact(billy, name="Bolt")["id"],
        email="bo@bolt.dk",
    )["contactPersons"][0]["id"]
    people = [made["contactPersons"][0]["id"], bolt]
    assert ids(billy, "contactPersons", contactId=acme) == people
    assert ids(billy, "contactPersons", email="ann@acme.dk") == people

    first = invoice(billy, acme, state="approved")["id"]
    second = invoice(billy, acme, state="approved")["id"]
    payments = [pay(billy, subject, 50)["bankPayments"][0]["id"] for subject in (first, second)]
    subject = f"invoice:{first}"
    assert ids(billy, "bankPayments", subjectReference=subject) == payments
    assert ids(billy, "bankPayments", isVoided="true", contactId="other") == payments
    assert len(ids(billy, "balanceModifiers", subjectReference=subject)) == 2

    deliveries = []
    for invoice_id in (first, second):
        body = {"invoiceId": invoice_id, "receiverIdType": "gln", "receiverGln": ean}
        answer = write(billy, "POST", "/invoiceDeliveries", "invoiceDelivery", **body)
        deliveries.append(answer["invoiceDeliveries"][0]["id"])
    assert ids(billy, "invoiceDeliveries", invoiceId=first) == deliveries
