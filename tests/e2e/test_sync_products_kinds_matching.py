"""Three settings of a target, over real HTTP on PostgreSQL against each target's sandbox in a
process of its own (docs/sync.md):

- `create_products` (Billy): a product Billy lacks is made on first use, once, booking to
  deferred revenue, and each line reaches the product whose sales tax ruleset gives the line's
  VAT, so Billy's totals are ours;
- `kinds`: `book`, `email` and `e_invoice` per kind of customer, else the target's own;
- `match`: a contact someone made at the target beforehand is found by VAT number, EAN or
  e-mail and used, not made a second time.

Expected figures are worked out here from the events (VAT per line, half away from zero),
never with the code under test.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.sandboxes import (
    Dispatcher,
    Sandbox,
    append,
    configure,
    enqueue,
    environment,
    in_minor,
    prepare,
    sandbox,
    subledger,
    wait_until_settled,
)
from tests.e2e.test_sync_targets import delivery_messages

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(600)]

#: Today, so that no month of these invoices has ended: no recognition vouchers are due.
TODAY = date.today().isoformat()


def event(event_id: str, type_name: str, **data: Any) -> dict[str, Any]:
    return {"id": event_id, "type": type_name, "data": data}


def line(product: str, quantity: str, unit: int, rate: str) -> dict[str, Any]:
    return {"product_id": product, "quantity": quantity, "unit_amount": unit, "vat_rate": rate}


def invoice(number: str, customer: str, *lines: dict[str, Any]) -> dict[str, Any]:
    return event(
        f"evt_{number}",
        "invoice.issued",
        invoice_id=f"inv_{number}",
        customer_id=customer,
        number=number,
        issue_date=TODAY,
        due_date=TODAY,
        currency="DKK",
        lines=list(lines),
    )


def half_up(value: Decimal) -> int:
    return int(value.to_integral_value(ROUND_HALF_UP))


def totals(lines: list[dict[str, Any]]) -> tuple[int, int]:
    """An invoice's net and VAT: each line's quantity × unit price, its VAT rounded half up."""
    net = vat = 0
    for each in lines:
        line_net = half_up(Decimal(each["quantity"]) * each["unit_amount"])
        net += line_net
        vat += half_up(line_net * Decimal(each["vat_rate"]))
    return net, vat


def synced(
    box: Sandbox, events: list[dict[str, Any]], database_url: str, tmp_path: Path, **options: Any
) -> dict[str, int]:
    """The events appended and synced to the sandbox with `options` (`extra` lines go into
    the target's table); the delivery log's counts once nothing is left to send."""
    append(database_url, events)
    config = configure(tmp_path / "subledger.toml", box, **options)
    env = environment(database_url, config, box.kind)
    enqueue(env)
    with Dispatcher(env):
        return wait_until_settled(database_url, box.kind, timeout=300)


def billy_list(client: httpx.Client, plural: str) -> list[dict[str, Any]]:
    answer = client.get(f"/{plural}", params={"pageSize": 1000})
    answer.raise_for_status()
    body = answer.json()
    assert body["meta"]["paging"]["pageCount"] <= 1
    return list(body[plural])


def dinero_list(client: httpx.Client, path: str) -> list[dict[str, Any]]:
    answer = client.get(f"/{path}", params={"page": 0, "pageSize": 1000})
    answer.raise_for_status()
    return list(answer.json()["Collection"])


# Products made at Billy on first use.

DK_COMPANY = {"customer_id": "cus_dk", "name": "Dansk ApS", "country": "DK", "kind": "company"}
DE_COMPANY = {"customer_id": "cus_de", "name": "Deutsch GmbH", "country": "DE", "kind": "company"}
PRODUCT_INVOICES = {
    "P-1": ("cus_dk", [line("widget", "2", 12345, "0.25")]),
    "P-2": ("cus_dk", [line("widget", "1", 9999, "0.25")]),
    "P-3": ("cus_de", [line("widget", "3", 5001, "0"), line("gadget", "1", 70000, "0")]),
    "P-4": ("cus_dk", [line("widget", "1", 1003, "0.25"), line("widget", "1", 1003, "0")]),
}


def test_billy_makes_each_missing_product_once_at_the_vat_of_its_lines(
    postgres_url: str, tmp_path: Path
) -> None:
    events = [
        event("evt_dk", "customer.created", **DK_COMPANY, vat_number="12345678"),
        event("evt_de", "customer.created", **DE_COMPANY, vat_number="DE123456789"),
    ]
    events += [invoice(n, c, *lines) for n, (c, lines) in PRODUCT_INVOICES.items()]
    with sandbox("billy") as box:
        sent = synced(box, events, postgres_url, tmp_path, create_products=True)
        assert sent["failed"] == 0 and sent["sent"] == 2 + len(PRODUCT_INVOICES), sent
        with box.client() as client:
            products = billy_list(client, "products")
            accounts = {a["id"]: str(a["accountNo"]) for a in billy_list(client, "accounts")}
            rates = {r["id"]: Decimal(str(r["rate"])) for r in billy_list(client, "taxRates")}
            rulesets = {
                r["id"]: rates[r["taxRateId"]] for r in billy_list(client, "salesTaxRulesets")
            }
            invoices = {str(i["invoiceNo"]): i for i in billy_list(client, "invoices")}
            lines = {
                number: client.get(f"/invoices/{i['id']}").json()["invoice"]["lines"]
                for number, i in invoices.items()
            }

    numbers = Counter(str(p["productNo"]) for p in products)
    # The plain number at Denmark's 25% (the organization's default ruleset), a twin for 0%;
    # gadget is only ever sold at 0%, so only its twin exists. Four invoices, one of each.
    assert numbers == {"widget": 1, "widget@0": 1, "gadget@0": 1}, numbers
    made = {str(p["productNo"]): p for p in products}
    assert {n: rulesets[p["salesTaxRulesetId"]] for n, p in made.items()} == {
        "widget": Decimal("0.25"),
        "widget@0": 0,
        "gadget@0": 0,
    }
    assert {accounts[p["accountId"]] for p in products} == {"7400"}, "deferred revenue"

    assert set(invoices) == set(PRODUCT_INVOICES)
    for number, (_, ours) in PRODUCT_INVOICES.items():
        held = invoices[number]
        assert held["state"] == "approved", number
        assert (in_minor(held["amount"], "DKK"), in_minor(held["tax"], "DKK")) == totals(ours)
        for mine, theirs in zip(ours, lines[number], strict=True):
            rate = Decimal(mine["vat_rate"])
            wanted = mine["product_id"] if rate else f"{mine['product_id']}@0"
            assert theirs["productId"] == made[wanted]["id"], (number, mine)
            assert rates[theirs["taxRateId"]] == rate, (number, mine)


def test_without_create_products_a_line_at_another_vat_is_refused_until_its_twin_exists(
    postgres_url: str, tmp_path: Path
) -> None:
    """The product exists at 25% only: the 0% line's invoice fails, naming the twin to make;
    once a person makes it (VAT-free, at Billy), a replay books the invoice on it."""
    mixed = [line("widget", "1", 1003, "0.25"), line("widget", "2", 500, "0")]
    events = [
        event("evt_dk", "customer.created", **DK_COMPANY, vat_number="12345678"),
        invoice("T-1", "cus_dk", *mixed),
    ]
    with sandbox("billy") as box:
        prepare(box, events)  # "widget" at the default ruleset, 25%
        sent = synced(box, events, postgres_url, tmp_path)
        assert sent["failed"] == 1 and sent["sent"] == 1, sent
        failed = delivery_messages(postgres_url, "billy", "failed")
        assert [m.kind for m in failed] == ["invoice"]
        assert "'widget@0'" in (failed[0].last_error or ""), failed[0].last_error

        with box.client() as client:
            rates = {r["id"]: Decimal(str(r["rate"])) for r in billy_list(client, "taxRates")}
            vat_free = next(
                r["id"] for r in billy_list(client, "salesTaxRulesets") if not rates[r["taxRateId"]]
            )
            deferred = next(
                a["id"] for a in billy_list(client, "accounts") if str(a["accountNo"]) == "7400"
            )
            twin = {
                "name": "Widget, VAT-free",
                "productNo": "widget@0",
                "accountId": deferred,
                "salesTaxRulesetId": vat_free,
            }
            client.post("/products", json={"product": twin}).raise_for_status()
        env = environment(postgres_url, tmp_path / "subledger.toml", "billy")
        replayed = subledger(env, "sync", "replay", "--target", "billy", "--all")
        assert replayed.returncode == 0, replayed.stderr
        with Dispatcher(env):
            sent = wait_until_settled(postgres_url, "billy", timeout=300)
        assert sent["failed"] == 0, sent
        with box.client() as client:
            (held,) = billy_list(client, "invoices")
            products = Counter(str(p["productNo"]) for p in billy_list(client, "products"))
    assert held["state"] == "approved"
    assert (in_minor(held["amount"], "DKK"), in_minor(held["tax"], "DKK")) == totals(mixed)
    assert products == {"widget": 1, "widget@0": 1, "rounding": 1}, "nothing made"


# Book, e-mail and e-invoice per kind of customer.

KIND_CUSTOMERS = {
    "person": {"name": "Pia Person", "email": "pia@example.dk"},
    "company": {"name": "Firma ApS", "email": "bogholderi@firma.dk", "vat_number": "11223344"},
    "public": {"name": "Kommunen", "email": "faktura@kommune.dk", "ean": "5798000012345"},
}


def test_book_email_and_e_invoice_are_set_per_kind_of_customer(
    postgres_url: str, target: Sandbox, tmp_path: Path
) -> None:
    events = [
        event(
            f"evt_{kind}",
            "customer.created",
            customer_id=f"cus_{kind}",
            country="DK",
            kind=kind,
            customer_number=f"K-{kind}",
            **fields,
        )
        for kind, fields in KIND_CUSTOMERS.items()
    ]
    events += [
        invoice(f"K-{kind}-1", f"cus_{kind}", line("plan", "1", 10000, "0.25"))
        for kind in KIND_CUSTOMERS
    ]
    prepare(target, events)
    # The target's own: book, and e-mail (which the company's kind turns off).
    kinds = (
        "kinds.person = { email = true, book = true }\n"
        "kinds.company = { email = false }\n"
        "kinds.public = { e_invoice = true }\n"
    )
    sent = synced(target, events, postgres_url, tmp_path, email=True, e_invoice=False, extra=kinds)
    assert sent["failed"] == 0 and sent["sent"] == 6, sent

    if target.kind == "billy":
        booked, mailed, delivered = billy_deliveries(target)
    else:
        booked, mailed, delivered = dinero_deliveries(target)
    assert booked == {"K-person-1", "K-company-1", "K-public-1"}, "every kind falls back to book"
    assert mailed == {"K-person-1": ["pia@example.dk"]}, "the company's kind is not e-mailed"
    assert delivered == {"K-public-1": ["5798000012345"]}, "the public body gets an e-invoice"


Sent = dict[str, list[str]]


def billy_deliveries(box: Sandbox) -> tuple[set[str], Sent, Sent]:
    """The invoices approved, and the e-mails (to whom) and e-invoices (to which EAN) sent of
    each, by our number, as the Billy sandbox records them."""
    with box.client() as client:
        listed = billy_list(client, "invoices")
        invoices = {i["id"]: str(i["invoiceNo"]) for i in listed}
        approved = {str(i["invoiceNo"]) for i in listed if i["state"] == "approved"}
        persons = {p["id"]: p["email"] for p in billy_list(client, "contactPersons")}
        mailed: Sent = {}
        for invoice_id, number in invoices.items():
            answer = client.get(f"/invoices/{invoice_id}/emails")
            answer.raise_for_status()
            for mail in answer.json()["emails"]:
                mailed.setdefault(number, []).append(persons[mail["contactPersonId"]])
        delivered: Sent = {}
        for delivery in billy_list(client, "invoiceDeliveries"):
            number = invoices[delivery["invoiceId"]]
            delivered.setdefault(number, []).append(str(delivery["receiverGln"]))
    return approved, mailed, delivered


def dinero_deliveries(box: Sandbox) -> tuple[set[str], Sent, Sent]:
    """The same at Dinero: invoices booked, and what `/_sandbox/sent` lists of each."""
    with box.client() as client:
        invoices = dinero_list(client, "invoices")
    by_guid = {i["Guid"]: str(i["ExternalReference"]) for i in invoices}
    booked = {str(i["ExternalReference"]) for i in invoices if i["Status"] == "Booked"}
    answer = httpx.get(f"{box.url}/_sandbox/sent", timeout=10)
    answer.raise_for_status()
    mailed: Sent = {}
    delivered: Sent = {}
    for sent in answer.json():
        if sent["Kind"] == "Email":
            mailed.setdefault(by_guid[sent["Guid"]], []).append(sent["Receiver"])
        else:
            delivered.setdefault(by_guid[sent["Guid"]], []).append(sent["ReceiverEanNumber"])
    return booked, mailed, delivered


# Contacts made at the target beforehand, found by the match field.

#: The match field → the customer (its kind and what it is matched by).
MATCHED = {
    "vat_number": {"kind": "company", "vat_number": "87654321"},
    "ean": {"kind": "public", "ean": "5790001234567"},
    "email": {"kind": "person", "email": "ole@example.dk"},
}


@pytest.mark.parametrize("match", sorted(MATCHED))
def test_a_contact_made_at_the_target_beforehand_is_found_by_the_match_field(
    match: str, postgres_url: str, target: Sandbox, tmp_path: Path
) -> None:
    customer = {
        "customer_id": "cus_m",
        "name": "Matched",
        "country": "DK",
        "customer_number": "M-1",
        **MATCHED[match],
    }
    events = [
        event("evt_m", "customer.created", **customer),
        invoice("M-INV-1", "cus_m", line("plan", "1", 20000, "0.25")),
    ]
    prepare(target, events)
    premade = premade_contact(target, match, MATCHED[match])

    sent = synced(target, events, postgres_url, tmp_path, match=match)
    assert sent["failed"] == 0 and sent["sent"] == 2, sent

    contacts, invoice_contact = held_contacts(target)
    assert contacts == [premade], "the contact made beforehand, and no second one"
    assert invoice_contact == {"M-INV-1": premade}, "the invoice is on that contact"


def premade_contact(box: Sandbox, match: str, fields: dict[str, str]) -> str:
    """A contact someone made at the target by hand, under another name and with no number of
    ours, carrying only the matched field (an e-mail in other capitals); its id."""
    with box.client() as client:
        if box.kind == "billy":
            contact: dict[str, Any] = {
                "name": "Made by hand",
                "countryId": "DK",
                "type": "person" if match == "email" else "company",
                "paymentTermsDays": 8,
                "isCustomer": True,
            }
            if match == "vat_number":
                contact["registrationNo"] = fields["vat_number"]
            elif match == "ean":
                contact["ean"] = fields["ean"]
            else:
                contact["contactPersons"] = [
                    {"name": "Ole", "email": fields["email"].upper(), "isPrimary": True}
                ]
            answer = client.post("/contacts", json={"contact": contact})
            answer.raise_for_status()
            return str(answer.json()["contacts"][0]["id"])
        body: dict[str, Any] = {
            "Name": "Made by hand",
            "CountryKey": "DK",
            "IsPerson": match == "email",
            "IsMember": False,
            "UseCvr": match == "vat_number",
        }
        if match == "vat_number":
            body["VatNumber"] = fields["vat_number"]
        elif match == "ean":
            body["EanNumber"] = fields["ean"]
        else:
            body["Email"] = fields["email"].upper()
        answer = client.post("/contacts", json=body)
        answer.raise_for_status()
        return str(answer.json()["ContactGuid"])


def held_contacts(box: Sandbox) -> tuple[list[str], dict[str, str]]:
    """The ids of the contacts the target holds, and each invoice's contact by our number."""
    with box.client() as client:
        if box.kind == "billy":
            contacts = [str(c["id"]) for c in billy_list(client, "contacts")]
            on = {str(i["invoiceNo"]): str(i["contactId"]) for i in billy_list(client, "invoices")}
            return contacts, on
        contacts = [str(c["ContactGuid"]) for c in dinero_list(client, "contacts")]
        on = {}
        for listed in dinero_list(client, "invoices"):
            answer = client.get(f"/invoices/{listed['Guid']}")
            answer.raise_for_status()
            on[str(listed["ExternalReference"])] = str(answer.json()["ContactGuid"])
        return contacts, on
