"""The Billy sandbox over real HTTP: Billy's envelopes and errors, what it computes, and every
fault switch as a client sees it (exceptions, not statuses, where the connection breaks)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from tests.integration.billy_sandbox_kit import (
    FAULTS_OFF,
    Sandbox,
    account_id,
    approved_invoice,
    contact,
    credit_note,
    fresh_client,
    invoice,
    listed,
    pay,
    payment_body,
    product,
    read_invoice,
    refusal,
    refused_fields,
    running_sandbox,
    write,
)

#: A contact as the fault tests send it: every required field.
ACME = {"contact": {"name": "Acme", "countryId": "DK", "paymentTermsDays": 8}}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    yield from running_sandbox()


@pytest.fixture
def billy(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """A client of a freshly reset sandbox with every fault off."""
    yield from fresh_client(sandbox)


# Auth and Billy's errors


def test_a_request_without_a_token_is_refused_with_authentication_required(
    sandbox: Sandbox, billy: httpx.Client
) -> None:
    refusal(httpx.get(f"{sandbox.url}/v2/contacts"), 401, "AUTHENTICATION_REQUIRED")


def test_a_request_with_a_wrong_token_is_refused_with_an_invalid_token_code(
    sandbox: Sandbox, billy: httpx.Client
) -> None:
    response = httpx.get(f"{sandbox.url}/v2/contacts", headers={"X-Access-Token": "wrong"})
    refusal(response, 401, "OAUTH_INVALID_ACCESS_TOKEN")


def test_unknown_paths_ids_methods_and_bodies_get_billys_error_codes(billy: httpx.Client) -> None:
    refusal(billy.get("/webhooks"), 404, "UNKNOWN_RESOURCE")
    refusal(billy.get("/contacts/no-such-id"), 404, "RECORD_NOT_FOUND")
    refusal(billy.delete("/bankPayments/any-id"), 405, "METHOD_NOT_ALLOWED")
    refusal(billy.post("/accounts", json={"account": {}}), 405, "METHOD_NOT_ALLOWED")
    refusal(billy.post("/contacts", content=b"[1, 2]"), 400, "INVALID_REQUEST_BODY")
    refusal(billy.post("/contacts", content=b"{not json"), 400, "INVALID_REQUEST_BODY")


def test_the_organization_chart_vat_and_daybook_are_seeded(billy: httpx.Client) -> None:
    organization = billy.get("/organization").json()["organization"]
    by_number = {account["accountNo"]: account for account in listed(billy, "accounts")}
    assert organization["name"] == "Sandbox ApS"
    assert organization["baseCurrencyId"] == "DKK"
    assert organization["defaultSalesAccountId"] == by_number[1000]["id"]
    assert sorted(by_number) == [1000, 2750, 3670, 5600, 5800, 5810, 5820, 5850, 7210, 7400]
    enabled = sorted(n for n, a in by_number.items() if a["isPaymentEnabled"])
    assert enabled == [5800, 5810, 5820, 5850]
    assert {n: a["currencyId"] for n, a in by_number.items() if a["currencyId"]} == {5850: "EUR"}
    assert by_number[3670]["name"] == "Øreafrunding"
    rates = {rate["abbreviation"]: rate for rate in billy.get("/taxRates").json()["taxRates"]}
    assert (rates["S25"]["rate"], rates["S0"]["rate"]) == (0.25, 0)
    rulesets = {r["abbreviation"]: r for r in listed(billy, "salesTaxRulesets")}
    default = rulesets["DK25"]
    assert default["id"] == organization["defaultSalesTaxRulesetId"]
    assert (default["name"], default["taxRateId"]) == ("Dansk salg 25%", rates["S25"]["id"])
    assert (rulesets["DK0"]["name"], rulesets["DK0"]["taxRateId"]) == (
        "Momsfrit salg",
        rates["S0"]["id"],
    )
    assert [d["name"] for d in billy.get("/daybooks").json()["daybooks"]] == ["Kassekladde"]
    assert len(organization["id"]) == 22


# Contacts


def test_contacts_are_created_with_their_defaults_and_paged(billy: httpx.Client) -> None:
    first = contact(billy, name="Acme ApS", contactNo="C-1", paymentTermsDays=14)
    contact(billy, name="Bolt A/S", contactNo="C-2", isCustomer=False)
    contact(billy, name="ACME Nordic", contactNo="C-3")
    assert (first["type"], first["isCustomer"]) == ("company", True)
    assert (first["paymentTermsMode"], first["paymentTermsDays"]) == ("net", 14)

    body = billy.get("/contacts", params={"pageSize": 2, "page": 2}).json()
    paging = body["meta"]["paging"]
    assert [c["name"] for c in body["contacts"]] == ["ACME Nordic"]
    assert {k: paging[k] for k in ("page", "pageCount", "pageSize", "total")} == {
        "page": 2,
        "pageCount": 2,
        "pageSize": 2,
        "total": 3,
    }
    assert paging["previousUrl"] and paging["nextUrl"] is None
    assert "page=1" in paging["firstUrl"] and "page=2" in paging["lastUrl"]
    refusal(billy.get("/contacts", params={"pageSize": 1001}), 422, "VALIDATION_ERROR")


def test_a_contact_is_validated_and_its_embedded_persons_replace_the_old_ones(
    billy: httpx.Client,
) -> None:
    bad = billy.post("/contacts", json={"contact": {"countryId": "Denmark", "ean": "123"}})
    assert set(refused_fields(bad, "contact")) == {"name", "countryId", "ean", "paymentTermsDays"}

    persons = [{"name": "Ann", "email": "ann@acme.dk", "isPrimary": True}]
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
    contact_id = created["contacts"][0]["id"]
    old_person = created["contactPersons"][0]["id"]
    changed = write(
        billy, "PUT", f"/contacts/{contact_id}", "contact", contactPersons=[{"email": "bo@acme.dk"}]
    )
    assert changed["meta"]["deletedRecords"] == {"contactPersons": [old_person]}
    assert changed["contacts"][0]["name"] == "Acme"
    persons_now = [p for p in listed(billy, "contactPersons") if p["contactId"] == contact_id]
    assert [p["email"] for p in persons_now] == ["bo@acme.dk"]


# Invoices


def test_invoice_lines_are_priced_exactly_with_discounts_and_each_products_vat(
    billy: httpx.Client,
) -> None:
    buyer = contact(billy, paymentTermsDays=14)["id"]
    standard, exempt = product(billy), product(billy, ruleset="Momsfrit salg")
    lines = [
        {"productId": standard, "quantity": 1.5, "unitPrice": 200.5},
        {
            "productId": standard,
            "quantity": 2,
            "unitPrice": 100,
            "discountMode": "cash",
            "discountValue": 15.5,
        },
        {
            "productId": standard,
            "quantity": 3,
            "unitPrice": 33.33,
            "discountMode": "percent",
            "discountValue": 10,
        },
        {"productId": exempt, "unitPrice": 80},
    ]
    created = invoice(billy, buyer, paymentTermsDays=14, lines=lines)
    assert [(line["amount"], line["tax"]) for line in created["lines"]] == [
        (300.75, 75.19),
        (184.5, 46.13),
        (89.99, 22.5),
        (80.0, 0.0),
    ]
    assert (created["amount"], created["tax"], created["grossAmount"]) == (655.24, 143.82, 799.06)
    assert (created["state"], created["balance"], created["isPaid"]) == ("draft", 0, False)
    assert (created["dueDate"], created["sentState"]) == ("2025-03-15", "unsent")
    assert created["lines"][3]["taxRateId"] != created["lines"][0]["taxRateId"]


def test_with_tax_mode_incl_the_unit_price_includes_vat(billy: httpx.Client) -> None:
    lines = [
        {"productId": product(billy), "unitPrice": 125},
        {"productId": product(billy), "unitPrice": 99.99},
    ]
    created = invoice(billy, contact(billy)["id"], taxMode="incl", lines=lines)
    assert [(line["amount"], line["tax"]) for line in created["lines"]] == [
        (100.0, 25.0),
        (79.99, 20.0),
    ]
    assert (created["amount"], created["tax"], created["grossAmount"]) == (179.99, 45.0, 224.99)


def test_an_invoice_number_is_unique_across_invoices_and_credit_notes(billy: httpx.Client) -> None:
    original = approved_invoice(billy, invoiceNo=7)
    assert original["invoiceNo"] == "7"
    answer = credit_note(billy, original, 10, invoiceNo="7")
    assert set(refused_fields(answer, "invoice")) == {"invoiceNo"}


def test_invoices_without_a_number_are_numbered_from_one_skipping_taken_numbers(
    billy: httpx.Client,
) -> None:
    buyer = contact(billy)["id"]
    invoice(billy, buyer, invoiceNo="2")
    numbers = [invoice(billy, buyer)["invoiceNo"] for _ in range(3)]
    assert numbers == ["1", "3", "4"]


def test_approving_a_draft_books_it_with_its_balance(billy: httpx.Client) -> None:
    draft = invoice(billy, contact(billy)["id"])
    approved = write(billy, "PUT", f"/invoices/{draft['id']}", "invoice", state="approved")[
        "invoices"
    ][0]
    assert approved["state"] == "approved" and approved["approvedTime"]
    assert (approved["grossAmount"], approved["balance"], approved["isPaid"]) == (
        125.0,
        125.0,
        False,
    )


def test_an_approved_invoice_only_changes_its_contact_message(billy: httpx.Client) -> None:
    booked = approved_invoice(billy)
    path = f"/invoices/{booked['id']}"
    back = billy.put(path, json={"invoice": {"state": "draft"}})
    assert (
        "state"
        in refusal(back, 422, "VALIDATION_ERROR")["validationErrors"]["invoice"]["attributes"]
    )
    lines = [{"productId": booked["lines"][0]["productId"], "unitPrice": 1}]
    refusal(billy.put(path, json={"invoice": {"lines": lines}}), 422, "VALIDATION_ERROR")
    refusal(billy.put(path, json={"invoice": {"entryDate": "2025-01-01"}}), 422, "VALIDATION_ERROR")
    refusal(billy.delete(path), 422, "VALIDATION_ERROR")
    changed = write(billy, "PUT", path, "invoice", contactMessage="Tak!", state="approved")
    assert changed["invoices"][0]["contactMessage"] == "Tak!"
    assert read_invoice(billy, booked["id"])["grossAmount"] == 125.0


def test_a_draft_can_be_changed_and_deleted_and_deleting_an_unknown_id_succeeds(
    billy: httpx.Client,
) -> None:
    draft = invoice(billy, contact(billy)["id"])
    lines = [{"productId": draft["lines"][0]["productId"], "unitPrice": 40, "quantity": 2}]
    changed = write(billy, "PUT", f"/invoices/{draft['id']}", "invoice", lines=lines)["invoices"][0]
    assert (changed["amount"], changed["invoiceNo"]) == (80.0, draft["invoiceNo"])
    deleted = billy.delete(f"/invoices/{draft['id']}")
    assert deleted.json()["meta"]["deletedRecords"] == {"invoices": [draft["id"]]}
    refusal(billy.get(f"/invoices/{draft['id']}"), 404, "RECORD_NOT_FOUND")
    assert billy.delete("/invoices/never-existed").status_code == 200


def test_an_approved_credit_note_lowers_the_balance_of_the_invoice_it_credits(
    billy: httpx.Client,
) -> None:
    original = approved_invoice(billy)
    answer = credit_note(billy, original, 40, state="approved")
    assert answer.status_code == 200, answer.text
    note, credited = answer.json()["invoices"]
    assert (note["type"], note["grossAmount"], note["balance"], note["isPaid"]) == (
        "creditNote",
        50.0,
        -50.0,
        False,
    )
    assert (credited["id"], credited["balance"]) == (original["id"], 75.0)
    credits = listed(billy, "invoices", creditedInvoiceId=original["id"])
    assert [i["id"] for i in credits] == [note["id"]]
    assert (
        credit_note(billy, original, 60, state="approved").json()["invoices"][1]["isPaid"] is True
    )


def test_a_credit_note_against_a_draft_is_refused(billy: httpx.Client) -> None:
    draft = invoice(billy, contact(billy)["id"])
    body = refusal(credit_note(billy, draft, 10), 422, "VALIDATION_ERROR")
    assert set(body["validationErrors"]["invoice"]["attributes"]) == {"creditedInvoiceId"}


def test_payments_settle_an_invoice_and_a_refund_reopens_it(billy: httpx.Client) -> None:
    booked = approved_invoice(billy)
    first = pay(billy, booked["id"], 100)
    assert first["invoices"][0]["balance"] == 25.0
    assert first["bankPayments"][0]["contactId"] == booked["contactId"]
    assert pay(billy, booked["id"], 25)["invoices"][0]["isPaid"] is True
    assert [i["id"] for i in listed(billy, "invoices", isPaid="true")] == [booked["id"]]

    refunded = pay(billy, booked["id"], 30, side="credit")["invoices"][0]
    assert (refunded["balance"], refunded["isPaid"]) == (30.0, False)
    payment_id = first["bankPayments"][0]["id"]
    voided = write(billy, "PUT", f"/bankPayments/{payment_id}", "bankPayment", isVoided=True)
    assert voided["invoices"][0]["balance"] == 130.0
    assert voided["balanceModifiers"][0]["isVoided"] is True
    read = billy.get(
        f"/invoices/{booked['id']}", params={"include": "invoice.balanceModifiers:embed"}
    )
    modifiers = read.json()["invoice"]["balanceModifiers"]
    assert [(m["amount"], m["isVoided"]) for m in modifiers] == [
        (100.0, True),
        (25.0, False),
        (-30.0, False),
    ]


def test_a_payment_into_an_account_that_is_not_payment_enabled_is_refused(
    billy: httpx.Client,
) -> None:
    booked = approved_invoice(billy)
    body = payment_body(billy, booked["id"], 125, cashAccountId=account_id(billy, 1000))
    answer = billy.post("/bankPayments", json={"bankPayment": body})
    assert set(refused_fields(answer, "bankPayment")) == {"cashAccountId"}


# Daybook transactions


def test_an_unbalanced_daybook_transaction_is_refused_and_a_balanced_one_is_kept(
    billy: httpx.Client,
) -> None:
    def transaction(credit: float) -> httpx.Response:
        lines = [
            {"accountNo": 7400, "amount": 100, "side": "debit"},
            {"accountId": account_id(billy, 1000), "amount": credit, "side": "credit"},
        ]
        body = {
            "entryDate": "2025-03-31",
            "apiType": "subledger:march",
            "state": "approved",
            "lines": lines,
        }
        return billy.post("/daybookTransactions", json={"daybookTransaction": body})

    unbalanced = refusal(transaction(99.99), 422, "VALIDATION_ERROR")
    assert set(unbalanced["validationErrors"]["daybookTransaction"]["attributes"]) == {"lines"}
    kept = transaction(100).json()["daybookTransactions"][0]
    assert [(line["accountNo"], line["amount"], line["currencyId"]) for line in kept["lines"]] == [
        (7400, 100.0, "DKK"),
        (1000, 100.0, "DKK"),
    ]
    found = listed(billy, "daybookTransactions", apiType="subledger:march")
    assert [t["id"] for t in found] == [kept["id"]]
    long = {"entryDate": "2025-03-31", "description": "x" * 101, "lines": kept["lines"]}
    refusal(
        billy.post("/daybookTransactions", json={"daybookTransaction": long}),
        422,
        "VALIDATION_ERROR",
    )


# Sending


def test_an_email_needs_an_approved_invoice_and_marks_it_sent(billy: httpx.Client) -> None:
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
    buyer, person = created["contacts"][0]["id"], created["contactPersons"][0]["id"]
    draft = invoice(billy, buyer)
    email = {"contactPersonId": person, "emailSubject": "Faktura", "emailBody": "Se vedhæftede."}
    refusal(
        billy.post(f"/invoices/{draft['id']}/emails", json={"email": email}),
        422,
        "VALIDATION_ERROR",
    )

    write(billy, "PUT", f"/invoices/{draft['id']}", "invoice", state="approved")
    sent = billy.post(f"/invoices/{draft['id']}/emails", json={"email": email})
    assert sent.status_code == 200 and sent.json()["meta"]["success"] is True
    assert read_invoice(billy, draft["id"])["sentState"] == "sent"
    recorded = billy.get(f"/invoices/{draft['id']}/emails").json()["emails"]
    assert [(e["contactPersonId"], e["emailSubject"]) for e in recorded] == [(person, "Faktura")]


def test_an_e_invoice_delivery_needs_the_contacts_ean(billy: httpx.Client) -> None:
    ean = "5798000000007"
    without = approved_invoice(billy)
    with_ean = invoice(billy, contact(billy, ean=ean)["id"], state="approved")

    def deliver(invoice_id: str) -> httpx.Response:
        body = {"invoiceId": invoice_id, "receiverIdType": "gln", "receiverGln": ean}
        return billy.post("/invoiceDeliveries", json={"invoiceDelivery": body})

    errors = refusal(deliver(without["id"]), 422, "VALIDATION_ERROR")["validationErrors"]
    assert set(errors["invoiceDelivery"]["attributes"]) == {"receiverGln"}
    delivered = deliver(with_ean["id"]).json()
    assert delivered["invoiceDeliveries"][0]["state"] == "sent"
    assert delivered["invoices"][0]["sentState"] == "sent"


# Faults


def test_fail_rate_answers_500_without_doing_the_work(
    sandbox: Sandbox, billy: httpx.Client
) -> None:
    sandbox.put_faults(fail_rate=1).raise_for_status()
    answer = billy.post("/contacts", json=ACME)
    refusal(answer, 500, "INTERNAL_SERVER_ERROR")
    assert sandbox.get("/_sandbox/summary")["counts"]["contacts"] == 0


def test_throttle_rate_answers_429_with_retry_after_without_doing_the_work(
    sandbox: Sandbox, billy: httpx.Client
) -> None:
    sandbox.put_faults(throttle_rate=1).raise_for_status()
    answer = billy.post("/contacts", json=ACME)
    refusal(answer, 429, "TOO_MANY_REQUESTS")
    assert answer.headers["Retry-After"] == "1"
    assert sandbox.get("/_sandbox/summary")["counts"]["contacts"] == 0


def test_the_rate_limit_is_a_sliding_window_of_sixty_seconds(
    sandbox: Sandbox, billy: httpx.Client
) -> None:
    now = [1000.0]
    sandbox.app.state.faults.clock = lambda: now[0]
    sandbox.put_faults(rate_limit=2).raise_for_status()
    assert billy.get("/accounts").status_code == 200
    now[0] += 20
    assert billy.get("/accounts").status_code == 200
    limited = billy.get("/accounts")
    refusal(limited, 429, "TOO_MANY_REQUESTS")
    assert limited.headers["Retry-After"] == "40"
    now[0] += 39.5
    assert billy.get("/accounts").headers["Retry-After"] == "1"
    now[0] += 0.5
    assert billy.get("/accounts").status_code == 200
    assert billy.get("/accounts").headers["Retry-After"] == "20"
    stats = sandbox.get("/_sandbox/stats")
    assert stats["faults_injected"]["rate_limit"] == 3
    assert stats["peak_requests_in_60s"] == 5


def test_a_dropped_write_is_committed_but_the_client_sees_a_broken_connection(
    sandbox: Sandbox, billy: httpx.Client
) -> None:
    sandbox.put_faults(drop_rate=1).raise_for_status()
    assert billy.get("/contacts").status_code == 200, "reads are never dropped"
    with pytest.raises(httpx.RemoteProtocolError):
        billy.post("/contacts", json=ACME)
    sandbox.put_faults(drop_rate=0).raise_for_status()
    assert [c["name"] for c in billy.get("/contacts").json()["contacts"]] == ["Acme"]
    assert sandbox.get("/_sandbox/stats")["faults_injected"]["drop"] == 1


def test_a_slow_answer_beyond_the_client_timeout_leaves_the_work_done(
    sandbox: Sandbox, billy: httpx.Client
) -> None:
    sandbox.put_faults(slow_rate=1, slow_ms=1000).raise_for_status()
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        billy.post("/contacts", json=ACME, timeout=0.3)
    assert time.monotonic() - started < 0.9
    sandbox.put_faults(slow_rate=0).raise_for_status()
    assert [c["name"] for c in billy.get("/contacts").json()["contacts"]] == ["Acme"]


def test_latency_delays_every_answer(sandbox: Sandbox, billy: httpx.Client) -> None:
    sandbox.put_faults(latency_ms=250).raise_for_status()
    started = time.monotonic()
    billy.get("/organization").raise_for_status()
    refusal(billy.get("/nowhere"), 404, "UNKNOWN_RESOURCE")
    assert time.monotonic() - started >= 0.5
    started = time.monotonic()
    sandbox.get("/_sandbox/summary")
    assert time.monotonic() - started < 0.25, "the /_sandbox routes are never delayed"


def test_faults_change_at_run_time_and_invalid_settings_are_refused(
    sandbox: Sandbox, billy: httpx.Client
) -> None:
    changed = sandbox.put_faults(fail_rate=1, slow_ms=10)
    assert changed.json() == {**FAULTS_OFF, "fail_rate": 1.0, "slow_ms": 10}
    assert billy.get("/organization").status_code == 500
    assert sandbox.get("/_sandbox/faults")["fail_rate"] == 1.0, "/_sandbox is never faulted"
    assert sandbox.put_faults(fail_rate=0).json()["slow_ms"] == 10, "a PUT changes what it names"
    assert billy.get("/organization").status_code == 200
    invalid = sandbox.put_faults(drop_rate=2, bogus=1)
    assert invalid.status_code == 422
    assert set(invalid.json()["validationErrors"]) == {"drop_rate", "bogus"}
    assert sandbox.get("/_sandbox/faults")["drop_rate"] == 0


def test_a_seed_makes_the_fault_draws_repeatable(sandbox: Sandbox, billy: httpx.Client) -> None:
    sandbox.put_faults(fail_rate=0.5, seed=7).raise_for_status()
    first = [billy.get("/organization").status_code for _ in range(20)]
    httpx.post(f"{sandbox.url}/_sandbox/reset").raise_for_status()
    again = [billy.get("/organization").status_code for _ in range(20)]
    assert first == again
    assert set(first) == {200, 500}


def test_stats_count_answers_by_status_faults_by_kind_and_the_busiest_minute(
    sandbox: Sandbox, billy: httpx.Client
) -> None:
    billy.get("/organization")
    billy.get("/accounts")
    httpx.get(f"{sandbox.url}/v2/accounts")
    sandbox.put_faults(throttle_rate=1).raise_for_status()
    billy.get("/accounts")
    stats = sandbox.get("/_sandbox/stats")
    assert stats["requests_served"] == 4
    assert stats["by_status"] == {"200": 2, "401": 1, "429": 1}
    assert stats["faults_injected"]["throttle"] == 1
    assert stats["peak_requests_in_60s"] == 4


# The sandbox's own routes and its command


def test_the_summary_counts_every_resource_and_a_reset_goes_back_to_the_seed(
    sandbox: Sandbox, billy: httpx.Client
) -> None:
    original = approved_invoice(billy)
    invoice(billy, original["contactId"])
    credit_note(billy, original, 10).raise_for_status()
    pay(billy, original["id"], 50)
    summary = sandbox.get("/_sandbox/summary")
    assert summary["invoices"] == {
        "invoice": {"draft": 1, "approved": 1},
        "creditNote": {"draft": 1, "approved": 0},
    }
    kinds = ("contacts", "products", "invoices", "accounts", "bankPayments", "balanceModifiers")
    assert {k: summary["counts"][k] for k in kinds} == {
        "contacts": 1,
        "products": 2,
        "invoices": 3,
        "accounts": 10,
        "bankPayments": 1,
        "balanceModifiers": 1,
    }
    bank = account_id(billy, 5800)
    reset = httpx.post(f"{sandbox.url}/_sandbox/reset").json()
    assert reset["counts"]["invoices"] == reset["counts"]["contacts"] == 0
    assert reset["counts"]["balanceModifiers"] == 0
    assert reset["counts"]["accounts"] == 10
    assert account_id(billy, 5800) == bank, "seeded records keep their ids"
    assert sandbox.get("/_sandbox/stats")["requests_served"] == 1


def test_the_command_refuses_a_rate_above_one() -> None:
    from subledger.api.cli.main import main

    result = CliRunner().invoke(main, ["sandbox", "billy", "--fail-rate", "2"])
    assert result.exit_code == 2
    assert "--fail-rate" in result.output and "0.0<=x<=1.0" in result.output


def test_the_command_serves_the_sandbox_with_its_faults_and_says_where(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from subledger.api.cli.main import main

    served: dict[str, Any] = {}
    monkeypatch.setattr(
        "subledger.api.cli.sandbox.uvicorn.run",
        lambda app, **options: served.update(app=app, **options),
    )
    arguments = [
        "sandbox",
        "billy",
        "--port",
        "9911",
        "--token",
        "t0k",
        "--throttle-rate",
        "0.5",
        "--seed",
        "3",
    ]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    assert (
        result.output
        == "Billy sandbox listening on http://127.0.0.1:9911/v2 (X-Access-Token: t0k)\n"
    )
    assert (served["host"], served["port"], served["log_level"]) == ("127.0.0.1", 9911, "warning")
    settings = served["app"].state.faults.settings
    assert (settings.throttle_rate, settings.seed, settings.fail_rate) == (0.5, 3, 0.0)
