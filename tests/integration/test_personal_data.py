"""Personal data (docs/specification.md §6) on SQLite and PostgreSQL, over the HTTP app with a Billy sandbox as its
target: a customer's personal fields are nowhere in the database in the clear, before or after
its erasure; after `customer.erased` every read shows it erased, its numbers and books stay (a
rebuild included), its unsent messages go out as the erased customer, later facts about it are
refused, and a retry of its events is still told apart."""

from __future__ import annotations

import re
import secrets
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import psycopg
import pytest
from click.testing import CliRunner
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from fastapi.testclient import TestClient
from psycopg import sql

from subledger.adapters.sandbox import serving
from subledger.adapters.sandbox.billy import BillySandboxSettings, create_billy_app
from subledger.adapters.store import store_env
from subledger.adapters.store.sealing import SealingError, open_box
from subledger.adapters.sync.dispatcher import Dispatcher
from subledger.adapters.sync.log import Message, NewMessage
from subledger.adapters.sync.personal_details import ERASED_NAME, REDACTED, PersonalDetails
from subledger.adapters.sync.port import RejectedError, Trace
from subledger.api.cli.main import main
from subledger.api.http.app import create_app
from subledger.api.http.event_data import logged_data, sealing_keys
from subledger.api.http.examples import EXAMPLE_EVENTS
from subledger.api.http.ingest import parse_submissions
from subledger.api.settings import Settings
from subledger.api.sync import Sync, delivery_log_for
from subledger.domain.customer import Customer
from subledger.domain.errors import BatchRefusedError
from subledger.domain.ledger import Ledger
from subledger.domain.ports import LOG_ENTRIES, LogEntry
from subledger.domain.recording import Envelope
from tests.conftest import ADMIN, API_KEYS, READ, WRITE

TOKEN = "sandbox-token-for-personal-data"
#: Appears in every personal field of the customer and nowhere else.
MARK = secrets.token_hex(6)
VAT_NUMBER = "DK" + "".join(secrets.choice("0123456789") for _ in range(11))
EAN = "57" + "".join(secrets.choice("0123456789") for _ in range(11))
PERSONAL = {
    "name": f"Kvæsthuset Ørnebjerg {MARK}",
    "email": f"bogholderi.{MARK}@ornebjerg.dk",
    "vat_number": VAT_NUMBER,
    "ean": EAN,
    "address": {"street": f"Gyldenløvesgade {MARK}", "zip": "8000", "city": f"Århus {MARK}"},
}
#: The strings that must never be stored in the clear.
SECRETS = (
    MARK,
    PERSONAL["name"],
    PERSONAL["email"],
    VAT_NUMBER,
    EAN,
    PERSONAL["address"]["street"],
    "Ørnebjerg",
)

CUSTOMER = {
    "id": "evt_customer",
    "type": "customer.created",
    "data": {
        "customer_id": "cus_pd",
        "country": "DK",
        "kind": "public",
        "customer_number": "4711",
        **PERSONAL,
    },
}
STORY: list[dict[str, Any]] = [
    CUSTOMER,
    {
        "id": "evt_other",
        "type": "customer.created",
        "data": {
            "customer_id": "cus_other",
            "name": "Andet ApS",
            "country": "DK",
            "kind": "company",
        },
    },
    {
        "id": "evt_start",
        "type": "subscription.started",
        "data": {
            "subscription_id": "sub_pd",
            "customer_id": "cus_pd",
            "start_date": "2026-01-01",
            "currency": "DKK",
            "interval": "month",
            "items": [{"product_id": "pro", "quantity": "1", "unit_amount": 40000}],
        },
    },
    {
        "id": "evt_invoice",
        "type": "invoice.issued",
        "data": {
            "invoice_id": "inv_pd",
            "customer_id": "cus_pd",
            "subscription_id": "sub_pd",
            "issue_date": "2026-01-01",
            "number": "PD-1",
            "currency": "DKK",
            "lines": [
                {
                    "product_id": "pro",
                    "quantity": "1",
                    "unit_amount": 40000,
                    "vat_rate": "0.25",
                    "period_start": "2026-01-01",
                    "period_end": "2026-02-01",
                }
            ],
        },
    },
    {
        "id": "evt_paid",
        "type": "payment.received",
        "data": {
            "payment_id": "pay_pd",
            "invoice_id": "inv_pd",
            "amount": 50000,
            "currency": "DKK",
            "method": "card",
            "received_on": "2026-01-05",
        },
    },
]
UPDATE = {
    "id": "evt_update",
    "type": "customer.updated",
    "data": {"customer_id": "cus_pd", "email": f"ny.{MARK}@ornebjerg.dk"},
}
ERASE = {"id": "evt_erase", "type": "customer.erased", "data": {"customer_id": "cus_pd"}}

#: Reads whose answers an erasure must not change.
NUMBERS = (
    ("/v1/metrics/mrr", {"from": "2026-01", "to": "2026-03"}),
    ("/v1/revenue/summary", {"from": "2026-01", "to": "2026-03"}),
    ("/v1/ledger/trial-balance", {"as_of": "2026-03-31"}),
    ("/v1/ledger/entries", {"from": "2026-01-01", "to": "2026-03-31", "limit": 500}),
    ("/v1/customers/cus_pd/mrr", {"from": "2026-01", "to": "2026-03"}),
)


@pytest.fixture
def billy() -> Iterator[str]:
    with serving(create_billy_app(BillySandboxSettings(token=TOKEN))) as url:
        with httpx.Client(base_url=f"{url}/v2", headers={"X-Access-Token": TOKEN}) as client:
            deferred = client.get("/accounts", params={"accountNo": 7400}).json()["accounts"][0]
            body = {"product": {"name": "Pro", "productNo": "pro", "accountId": deferred["id"]}}
            client.post("/products", json=body).raise_for_status()
        yield url


@pytest.fixture
def app(database_url: str, billy: str, tmp_path: Path) -> Iterator[TestClient]:
    config = tmp_path / "subledger.toml"
    config.write_text(f'[targets.billy]\nurl = "{billy}/v2"\ntoken = "{TOKEN}"\n')
    settings = Settings(database_url=database_url, api_keys=API_KEYS, config=config)
    with TestClient(create_app(settings)) as client:
        yield client


def post(client: TestClient, *events: dict[str, Any]) -> httpx.Response:
    return client.post("/v1/events", json={"events": list(events)}, headers=WRITE)


def read(client: TestClient, path: str, **params: Any) -> Any:
    answer = client.get(path, params=params, headers=READ)
    assert answer.status_code == 200, answer.text
    return answer.json()


def deliver(client: TestClient) -> Sync:
    sync: Sync = client.app.state.sync  # type: ignore[attr-defined]
    sync.enqueue()
    while sync.dispatcher.deliver_one("billy"):
        pass
    return sync


def numbers(client: TestClient) -> list[Any]:
    answers = [read(client, path, **params) for path, params in NUMBERS]
    answers[-1].pop("erased")
    return answers


def billy_contact(billy: str) -> dict[str, Any]:
    with httpx.Client(base_url=f"{billy}/v2", headers={"X-Access-Token": TOKEN}) as client:
        (contact,) = client.get("/contacts", params={"contactNo": "4711"}).json()["contacts"]
        persons = client.get("/contactPersons", params={"contactId": contact["id"]}).json()
    return {**contact, "persons": persons["contactPersons"]}


def dump(database_url: str) -> bytes:
    """Every byte the test's database holds in its tables: on PostgreSQL every table of the
    test's schema copied out whole (binary, so a `bytea` is its own bytes, and as text); on
    SQLite the database file and its write-ahead log."""
    if database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///"))
        wal = path.with_name(path.name + "-wal")
        return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    parts = urlsplit(database_url)
    schema = parse_qs(parts.query)["schema"][0]
    chunks: list[bytes] = []
    with psycopg.connect(parts._replace(query="").geturl()) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = %s AND table_type = 'BASE TABLE'",
            (schema,),
        ).fetchall()
        assert {("subledger_events",), ("subledger_customer_keys",)} <= set(tables)
        for (table,) in tables:
            name = sql.Identifier(schema, table)
            for form in (sql.SQL("(FORMAT binary)"), sql.SQL("(FORMAT text)")):
                statement = sql.SQL("COPY {} TO STDOUT {}").format(name, form)
                with connection.cursor().copy(statement) as copy:
                    chunks.extend(bytes(chunk) for chunk in copy)
    return b"".join(chunks)


def assert_nowhere(stored: bytes) -> None:
    for secret in SECRETS:
        assert secret.encode() not in stored, f"{secret!r} is stored in the clear"


def key_row(database_url: str) -> tuple[Any, ...]:
    query = "SELECT key, erased_position, erased_at FROM {} WHERE customer_id = 'cus_pd'"
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            row = connection.execute(query.format("subledger_customer_keys")).fetchone()
            return tuple(row)
    parts = urlsplit(database_url)
    schema = parse_qs(parts.query)["schema"][0]
    with psycopg.connect(parts._replace(query="").geturl()) as connection:
        table = sql.Identifier(schema, "subledger_customer_keys").as_string(connection)
        found = connection.execute(query.format(table)).fetchone()
        assert found is not None
        return tuple(found)


def test_the_plaintext_is_nowhere_in_the_database_before_or_after_erasure(
    app: TestClient, database_url: str
) -> None:
    assert post(app, *STORY, UPDATE).status_code == 201
    sync = deliver(app)
    sent = {(m.kind, m.status) for m in sync.delivery.messages(target="billy")}
    assert ("contact", "sent") in sent and ("invoice", "sent") in sent
    logged = read(app, "/v1/events")["events"]
    assert logged[0]["data"] == CUSTOMER["data"], "the log still reads as appended"
    assert read(app, "/v1/audit/customer/cus_pd")["events"][0]["data"]["name"] == PERSONAL["name"]
    ledger: Ledger = app.app.state.ledger  # type: ignore[attr-defined]
    key = ledger.sealing_keys(["cus_pd"])["cus_pd"]
    assert key is not None and len(key) == 32
    box = ledger.read_log(0, 1)[0].event.sealed  # type: ignore[attr-defined]
    assert open_box(box, "cus_pd", key)["name"] == PERSONAL["name"]

    stored = dump(database_url)
    assert b"Andet ApS" not in stored, "every customer's personal data is sealed"
    assert b"cus_pd" in stored and b"4711" in stored, "the dump reads what is stored"
    assert_nowhere(stored)

    assert post(app, ERASE).status_code == 201
    deliver(app)
    assert read(app, "/v1/events")["events"][0]["data"]["erased"] is True
    stored = dump(database_url)
    assert_nowhere(stored)
    assert key not in stored, "the destroyed key is gone from the database"
    row = key_row(database_url)
    assert row[0] is None and row[1] == len(STORY) + 2 and row[2] is not None
    with pytest.raises(SealingError):
        open_box(box, "cus_pd", secrets.token_bytes(32))


def test_after_erasure_every_read_shows_the_customer_erased_and_the_numbers_stay(
    app: TestClient, billy: str
) -> None:
    assert post(app, *STORY).status_code == 201
    before = numbers(app)
    assert before[-1]["months"][0]["mrr"] == 40000
    assert post(app, ERASE).status_code == 201
    assert numbers(app) == before, "MRR, revenue, the journal and the trial balance stay"

    events = read(app, "/v1/events")["events"]
    assert events[0]["data"] == {
        "customer_id": "cus_pd",
        "country": "DK",
        "kind": "public",
        "customer_number": "4711",
        "erased": True,
    }
    assert events[1]["data"]["name"] == "Andet ApS", "other customers are untouched"
    assert events[-1]["type"] == "customer.erased"
    audit = read(app, "/v1/audit/customer/cus_pd")["events"]
    assert [e["id"] for e in audit] == [
        "evt_customer",
        "evt_start",
        "evt_invoice",
        "evt_paid",
        "evt_erase",
    ]
    assert audit[0]["data"]["erased"] is True and "name" not in audit[0]["data"]
    assert read(app, "/v1/customers/cus_pd/mrr")["erased"] is True
    past = read(app, "/v1/customers/cus_pd/mrr", position=len(STORY))
    assert past["erased"] is False, "not yet erased at that point of the log"
    assert read(app, "/v1/events", limit=1)["events"][0]["data"]["erased"] is True, (
        "erased data is not read back as of a past point either: it no longer exists"
    )

    sync = deliver(app)
    contact = next(m for m in sync.delivery.messages(target="billy") if m.kind == "contact")
    assert contact.status == "sent"
    assert "name" not in contact.payload and "email" not in contact.payload
    shown = billy_contact(billy)
    assert shown["name"] == ERASED_NAME and shown["persons"] == []
    assert not shown.get("registrationNo") and not shown.get("ean")
    invoices = read(app, "/v1/sync/messages")["messages"]
    assert {m["status"] for m in invoices if m["customer_id"] == "cus_pd"} == {"sent"}

    runner = app.app.state.reader.runner  # type: ignore[attr-defined]
    runner.rebuild(list(runner.projections))
    assert numbers(app) == before, "a rebuild after the erasure gives the same numbers"

    later = post(app, UPDATE)
    assert later.status_code == 422 and later.json()["error"]["code"] == "RULE_VIOLATED"
    invoice = {**STORY[3], "id": "evt_late", "data": {**STORY[3]["data"], "invoice_id": "inv_x"}}
    assert post(app, invoice).status_code == 422, "no new facts about an erased customer"
    assert (
        app.post(
            "/v1/sync/replay", json={"target": "billy", "all": True}, headers=ADMIN
        ).status_code
        == 202
    )
    deliver(app)
    assert billy_contact(billy)["name"] == ERASED_NAME, "a replay sends no personal data"


def test_a_retry_after_erasure_is_a_duplicate_and_a_changed_body_is_still_refused(
    app: TestClient,
) -> None:
    assert post(app, CUSTOMER).status_code == 201
    renamed = {**CUSTOMER, "data": {**CUSTOMER["data"], "name": "Et andet navn"}}
    assert post(app, renamed).json()["error"]["code"] == "EVENT_ID_REUSED"
    assert post(app, ERASE).status_code == 201

    again = post(app, CUSTOMER)
    assert again.status_code == 200
    assert again.json()["results"] == [{"id": "evt_customer", "status": "duplicate", "position": 1}]
    assert post(app, renamed).status_code == 200, "personal fields can no longer be compared"
    moved = {**CUSTOMER, "data": {**CUSTOMER["data"], "country": "SE"}}
    refused = post(app, moved)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "EVENT_ID_REUSED"
    other_type = {
        "id": "evt_customer",
        "type": "customer.erased",
        "data": {"customer_id": "cus_pd"},
    }
    assert post(app, other_type).status_code == 409
    assert post(app, ERASE).status_code == 200, "the erasure's own retry is a duplicate"
    assert read(app, "/v1/events")["events"][-1]["id"] == "evt_erase"
    assert len(read(app, "/v1/events")["events"]) == 2, "nothing was appended twice"


def test_the_docs_show_an_erased_customers_event_as_the_log_does(client: TestClient) -> None:
    assert post(client, *EXAMPLE_EVENTS).status_code == 201
    text = (Path(__file__).parents[2] / "docs" / "personal-data.md").read_text()
    (shown,) = re.findall(r"```json\n\s*(.*?)\n\s*```", text, re.DOTALL)
    created = next(
        e
        for e in read(client, "/v1/events", limit=1000)["events"]
        if e["type"] == "customer.created" and e["data"]["customer_id"] == "cus_1002"
    )
    assert created["data"] == orjson.loads(shown)


def _legacy_state(event: Any) -> bytes:
    """An event's state as stored before personal data was sealed: every field plain."""
    skipped = ("originator_id", "originator_version")
    state = {k: v for k, v in vars(event).items() if k not in skipped}
    return orjson.dumps(state)


def write_before_sealing(ledger: Ledger, sent: dict[str, Any]) -> None:
    """Append a `customer.created` as the ledger wrote it before personal data was sealed."""
    created = parse_submissions(orjson.dumps(sent))[0]
    event = Customer.create(created.fact, Envelope(sent["id"], None, datetime.now(UTC)))
    (new,) = event.collect_events()
    stored = StoredEvent(new.originator_id, 1, get_topic(type(new)), _legacy_state(new))
    ledger.recorder.insert_events([stored], **{LOG_ENTRIES: [LogEntry(sent["id"], created.digest)]})


def test_events_written_before_sealing_read_as_they_are_until_the_customer_is_erased(
    ledger: Ledger,
) -> None:
    write_before_sealing(ledger, CUSTOMER)
    created = parse_submissions(orjson.dumps(CUSTOMER))[0]

    logged = ledger.read_log(0, 10)
    keys = sealing_keys(ledger, (e.event for e in logged))
    assert keys == {}, "no key row: written before sealing"
    assert logged_data(logged[0].event, keys) == CUSTOMER["data"]
    assert PersonalDetails(ledger).personal("cus_pd", 1)["email"] == PERSONAL["email"]
    assert ledger.append([created])[0].appended is False, "its plain digest still tells a retry"

    update = parse_submissions(orjson.dumps(UPDATE))
    assert ledger.append(update)[0].appended
    keys = ledger.sealing_keys(["cus_pd"])
    assert keys["cus_pd"] is not None, "its next event gave it a key"
    logged = ledger.read_log(0, 10)
    assert logged_data(logged[1].event, keys) == UPDATE["data"]
    assert PersonalDetails(ledger).personal("cus_pd", 2)["name"] == PERSONAL["name"]

    ledger.append(parse_submissions(orjson.dumps(ERASE)))
    keys = ledger.sealing_keys(["cus_pd"])
    assert keys == {"cus_pd": None}
    assert all(logged_data(e.event, keys).get("erased") for e in ledger.read_log(0, 2)), (
        "the old plain event is hidden from every read"
    )
    assert PersonalDetails(ledger).personal("cus_pd", 1) == {"name": ERASED_NAME, "erased": True}


def contact_message(target: str, payload: dict[str, Any]) -> NewMessage:
    """The customer's contact message `m1` for `target`, as the outbox would pair it."""
    return NewMessage(
        id="m1",
        target=target,
        lane="cus_pd",
        seq=1,
        kind="contact",
        source="evt_customer",
        dated="",
        payload=payload,
    )


def test_seal_seals_what_was_written_before_and_keeps_every_read(
    database_url: str, tmp_path: Path
) -> None:
    other = {**STORY[1], "data": {**STORY[1]["data"], "name": f"Gammel {MARK}"}}
    ledger = Ledger(env=store_env(database_url))
    try:
        write_before_sealing(ledger, CUSTOMER)
        write_before_sealing(ledger, other)
        ledger.append(parse_submissions(orjson.dumps(ERASE)))
        delivery = delivery_log_for(ledger)
        delivery.enqueue([contact_message("billy", CUSTOMER["data"])], datetime.now(UTC))
    finally:
        ledger.close()
    assert MARK.encode() in dump(database_url), "plain, as written before sealing"

    env = {"SUBLEDGER_DATABASE_URL": database_url, "SUBLEDGER_CONFIG": str(tmp_path / "none")}
    sealed = CliRunner().invoke(main, ["seal"], env=env)
    assert sealed.exit_code == 0, sealed.output
    assert "2 events sealed; 1 messages of the delivery log cleaned." in sealed.output
    assert_nowhere(dump(database_url))
    again = CliRunner().invoke(main, ["seal"], env=env)
    assert "0 events sealed; 0 messages" in again.output

    ledger = Ledger(env=store_env(database_url))
    try:
        logged = ledger.read_log(0, 10)
        keys = sealing_keys(ledger, (e.event for e in logged))
        assert logged_data(logged[0].event, keys)["erased"] is True
        assert logged_data(logged[1].event, keys) == other["data"], "read as it was sent"
        retried = ledger.append(parse_submissions(orjson.dumps({"events": [CUSTOMER, other]})))
        assert [outcome.appended for outcome in retried] == [False, False]
        message = delivery_log_for(ledger).message("m1")
        assert message is not None and "name" not in message.payload
    finally:
        ledger.close()


class _QuotingTarget:
    """A target that refuses every contact quoting its e-mail and name back, as some do."""

    name = "quoting"

    def send(self, message: Message, trace: Trace) -> dict[str, Any]:
        trace.requests.append(f"GET /contacts?email={message.payload.get('email')} → 422 (1 ms)")
        raise RejectedError(f"{message.payload['name']}: {message.payload.get('email')} is taken")


def test_a_target_quoting_personal_data_back_leaves_none_in_the_delivery_log(
    database_url: str,
) -> None:
    ledger = Ledger(env=store_env(database_url))
    try:
        ledger.append(parse_submissions(orjson.dumps(CUSTOMER)))
        delivery = delivery_log_for(ledger)
        payload = {"customer_id": "cus_pd", "country": "DK", "kind": "public"}
        delivery.enqueue([contact_message("quoting", payload)], datetime.now(UTC))
        details = PersonalDetails(ledger)
        dispatcher = Dispatcher(
            delivery,
            {"quoting": _QuotingTarget()},
            open_message=details.open,
            redact=PersonalDetails.redact,
        )
        assert dispatcher.deliver_one("quoting")
        (attempt,) = delivery.attempts("m1")
        assert attempt["error"] == f"{REDACTED}: {REDACTED} is taken"
        assert attempt["requests"] == [f"GET /contacts?email={REDACTED} → 422 (1 ms)"]
        failed = delivery.message("m1")
        assert failed is not None and failed.last_error == attempt["error"]
        assert_nowhere(dump(database_url))
    finally:
        ledger.close()


def test_the_rules_still_see_a_sealed_ean_when_the_customer_is_read_back(
    database_url: str,
) -> None:
    with_ean = {**CUSTOMER, "data": {**CUSTOMER["data"], "kind": "company"}}
    without = {**STORY[1]}
    first = Ledger(env=store_env(database_url))
    try:
        first.append(parse_submissions(orjson.dumps({"events": [with_ean, without]})))
    finally:
        first.close()
    ledger = Ledger(env=store_env(database_url))  # nothing cached: the customers are read back
    try:

        def to_public(event_id: str, customer_id: str) -> bytes:
            data = {"customer_id": customer_id, "kind": "public"}
            return orjson.dumps({"id": event_id, "type": "customer.updated", "data": data})

        assert ledger.append(parse_submissions(to_public("evt_p1", "cus_pd")))[0].appended
        with pytest.raises(BatchRefusedError) as refused:
            ledger.append(parse_submissions(to_public("evt_p2", "cus_other")))
        assert refused.value.problems[0].error.field == "ean"
    finally:
        ledger.close()
