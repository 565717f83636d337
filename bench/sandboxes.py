"""Syncing a generated business to a sandbox, shared by `bench/sync.py` and the end-to-end
tests: the sandbox in a process of its own, the target prepared the way docs/sync.md says, the
configuration, `subledger sync run` started, killed and waited for, and what the sandbox holds
beside what the log says it should hold.

What a target holds is compared as multisets of our own references (customer numbers,
invoice numbers, payments by invoice, date, amount and direction, voucher references), so a
duplicate anywhere shows as a count of two.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.harness import free_port
from subledger.adapters.store import store_env
from subledger.api.demo.run import billy_products, products_of
from subledger.api.http.ingest import parse_submissions
from subledger.api.sync import delivery_log_for
from subledger.domain.chart import DEFAULT_CHART
from subledger.domain.dates import Month
from subledger.domain.ledger import Ledger
from subledger.domain.money import CURRENCY_EXPONENTS
from subledger.projections.engine import Rows
from subledger.projections.journal import TOTALS, JournalProjection

ROOT = Path(__file__).resolve().parent.parent
REVENUE_ACCOUNTS = DEFAULT_CHART.accounts_of("revenue")
KINDS = ("billy", "dinero")
#: Billy's access token; Dinero's API key.
TOKEN = "sandbox-token-for-tests"
#: The Dinero sandbox's organization and integration client.
DINERO_ORGANIZATION = 123456
DINERO_CLIENT = ("sandbox-client", "sandbox-secret-for-tests")
#: Each kind of fault at 5%, 20% of requests in all; slow answers outlast the client's timeout.
TWENTY_PERCENT_FAULTS = {
    "fail_rate": 0.05,
    "throttle_rate": 0.05,
    "drop_rate": 0.05,
    "slow_rate": 0.05,
    "slow_ms": 2500,
}
#: The same for Dinero, with its brownouts (480) as a fifth kind: 4% each.
DINERO_TWENTY_PERCENT_FAULTS = {
    **TWENTY_PERCENT_FAULTS,
    **dict.fromkeys(("fail_rate", "throttle_rate", "drop_rate", "slow_rate"), 0.04),
}
DINERO_TWENTY_PERCENT_BROWNOUTS = 0.04


@dataclass(frozen=True)
class Sandbox:
    kind: str
    url: str
    process: subprocess.Popen[bytes]

    @property
    def api_url(self) -> str:
        """What the target's `url` is configured to: Billy's API root, Dinero's host."""
        return f"{self.url}/v2" if self.kind == "billy" else self.url

    def client(self) -> httpx.Client:
        """A client of the sandbox's API as a user of it would make: Billy's `/v2` with the
        access token; Dinero's organization (`/v1/{organizationId}`) with a fresh token."""
        if self.kind == "billy":
            headers = {"X-Access-Token": TOKEN}
            return httpx.Client(base_url=self.api_url, headers=headers, timeout=60)
        form = {"grant_type": "password", "username": TOKEN, "password": TOKEN}
        answer = httpx.post(f"{self.url}/dineroapi/oauth/token", data=form, auth=DINERO_CLIENT)
        answer.raise_for_status()
        headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        base = f"{self.url}/v1/{DINERO_ORGANIZATION}"
        return httpx.Client(base_url=base, headers=headers, timeout=60)

    def twenty_percent_faults(self) -> None:
        """A fifth of the API's answers faulted: Billy's four kinds at 5% each; Dinero's at 4%
        with brownouts as the fifth."""
        if self.kind == "billy":
            self.faults(**TWENTY_PERCENT_FAULTS)
            return
        self.faults(**DINERO_TWENTY_PERCENT_FAULTS)
        self.brownouts(DINERO_TWENTY_PERCENT_BROWNOUTS)

    def no_faults(self) -> None:
        self.faults(fail_rate=0, throttle_rate=0, drop_rate=0, slow_rate=0)
        if self.kind == "dinero":
            self.brownouts(0)

    def brownouts(self, rate: float) -> None:
        answer = httpx.put(f"{self.url}/_sandbox/brownout", json={"rate": rate}, timeout=10)
        answer.raise_for_status()

    def faults(self, **settings: Any) -> dict[str, Any]:
        """Change the sandbox's fault settings (the others stay); the settings in force."""
        answer = httpx.put(f"{self.url}/_sandbox/faults", json=settings, timeout=10)
        answer.raise_for_status()
        return dict(answer.json())

    def stats(self) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}/_sandbox/stats", timeout=10)
        answer.raise_for_status()
        return dict(answer.json())


@contextmanager
def sandbox(kind: str = "billy", seed: int = 1, rate_limit: int = 0) -> Iterator[Sandbox]:
    """`subledger sandbox <kind>` on a free port, once it answers; stopped afterwards. Its rate
    limit is off unless `rate_limit` (requests a minute) is given."""
    port = free_port()
    command = [sys.executable, "-m", "subledger", "sandbox", kind, "--port", str(port)]
    if kind == "billy":
        command += ["--token", TOKEN]
    else:
        client_id, secret = DINERO_CLIENT
        command += ["--api-key", TOKEN, "--client-id", client_id, "--client-secret", secret]
        command += ["--organization-id", str(DINERO_ORGANIZATION)]
    process = subprocess.Popen(
        [*command, "--rate-limit", str(rate_limit), "--seed", str(seed)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/_sandbox/summary", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"the {kind} sandbox did not start") from None
            time.sleep(0.1)
    try:
        yield Sandbox(kind, url, process)
    finally:
        process.terminate()
        process.wait(10)


# Preparing.


def append(url: str, events: list[dict[str, Any]]) -> None:
    """Append the events through the same path as `POST /v1/events`, 1,000 at a time."""
    ledger = Ledger(store_env(url))
    try:
        for start in range(0, len(events), 1000):
            batch = orjson.dumps({"events": events[start : start + 1000]})
            ledger.append(parse_submissions(batch))
    finally:
        ledger.close()


def prepare(box: Sandbox, events: Iterable[dict[str, Any]]) -> None:
    """Make the target ready as docs/sync.md asks of a new company: at Billy, products for ours,
    numbered with our product ids and booking to deferred revenue (7400). (At Dinero, lines
    name accounts, and the seeded 7400 carries the sales VAT code the lines need.)"""
    if box.kind == "billy":
        billy_products(box.api_url, TOKEN, products_of(list(events)))


def configure(path: Path, box: Sandbox, extra: str = "", **options: Any) -> Path:
    """A subledger.toml with one target, `box.kind`, on the sandbox (and `extra` appended)."""
    dinero = {"organization_id": str(DINERO_ORGANIZATION), "client_id": DINERO_CLIENT[0]}
    settings = {
        "url": box.api_url,
        "book": True,
        "requests_per_minute": 100_000,
        "timeout_seconds": 2,
        **(dinero if box.kind == "dinero" else {}),
        **options,
    }
    lines = [f"[targets.{box.kind}]"]
    lines += [f"{name} = {_toml(value)}" for name, value in settings.items() if value is not None]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = {_toml(v)}' for k, v in value.items()) + " }"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def environment(database_url: str, config: Path, kind: str = "billy") -> dict[str, str]:
    """The environment of a `subledger` process that syncs from `database_url`, retrying
    quickly (backoff from 50 ms, capped at 1 s; leases of 3 s)."""
    return {
        **os.environ,
        "SUBLEDGER_DATABASE_URL": database_url,
        "SUBLEDGER_CONFIG": str(config),
        f"SUBLEDGER_TARGET_{kind.upper()}_TOKEN": TOKEN,
        f"SUBLEDGER_TARGET_{kind.upper()}_CLIENT_SECRET": DINERO_CLIENT[1],
        "SUBLEDGER_SYNC_BACKOFF_SECONDS": "0.05",
        "SUBLEDGER_SYNC_BACKOFF_CAP_SECONDS": "1",
        "SUBLEDGER_SYNC_LEASE_SECONDS": "3",
        "SUBLEDGER_LOG_LEVEL": "error",
    }


# Running.


def subledger(env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    """A `subledger` command, to its end."""
    return subprocess.run(
        [sys.executable, "-m", "subledger", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def enqueue(env: dict[str, str]) -> dict[str, dict[str, int]]:
    """Bring the outbox and the delivery log up to the log's end (`subledger sync status
    --json`, which enqueues before it counts): the messages per target and status."""
    done = subledger(env, "sync", "status", "--json")
    if done.returncode != 0:
        raise RuntimeError(f"subledger sync status failed: {done.stderr[-2000:]}")
    return dict(orjson.loads(done.stdout)["counts"])


@dataclass
class Dispatcher:
    """`subledger sync run` in a process of its own."""

    env: dict[str, str]
    workers: int = 2
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        command = [sys.executable, "-m", "subledger", "sync", "run", "--workers", str(self.workers)]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def kill(self) -> None:
        """SIGKILL: no chance to finish anything."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)
            self.process = None

    def __enter__(self) -> Dispatcher:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def counts(database_url: str, target: str) -> dict[str, int]:
    """The target's messages by status, read from the delivery log."""
    ledger = Ledger(store_env(database_url))
    try:
        found = delivery_log_for(ledger).counts().get(target, {})
    finally:
        ledger.close()
    return {status: found.get(status, 0) for status in ("pending", "sending", "sent", "failed")}


def wait_until_settled(
    database_url: str, target: str, timeout: float = 600, interval: float = 0.5
) -> dict[str, int]:
    """Poll the delivery log until no message of `target` is pending or sending (messages
    must have been enqueued before); the counts."""
    deadline = time.monotonic() + timeout
    while True:
        found = counts(database_url, target)
        if found["pending"] == found["sending"] == 0:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"the sync to {target} did not settle: {found}")
        time.sleep(interval)


# Comparing.


@dataclass(frozen=True)
class Books:
    """What a target holds, or should hold, by our references; a count above 1 is a duplicate."""

    contacts: Counter[str]
    invoices: Counter[str]
    credit_notes: Counter[str]
    payments: Counter[tuple[str, str, int, str]]
    vouchers: Counter[tuple[str, tuple[tuple[str, int], ...]]]
    """By reference, with the revenue they book per currency (credits less debits)."""

    def duplicates(self) -> dict[str, list[Any]]:
        return {
            name: sorted(key for key, n in getattr(self, name).items() if n > 1)
            for name in ("contacts", "invoices", "credit_notes", "payments", "vouchers")
            if any(n > 1 for n in getattr(self, name).values())
        }

    def sizes(self) -> dict[str, int]:
        return {
            name: sum(getattr(self, name).values())
            for name in ("contacts", "invoices", "credit_notes", "payments", "vouchers")
        }


def expected_books(events: list[dict[str, Any]], database_url: str) -> Books:
    """What the log says a target should hold: one contact per customer, one invoice per
    invoice, one credit note per credit note, each payment and refund once, and one voucher
    per ended month in which the journal books revenue."""
    numbers: dict[str, str] = {}
    paid: dict[str, str] = {}
    books = Books(Counter(), Counter(), Counter(), Counter(), Counter())
    for event in events:
        data = event["data"]
        kind = event["type"]
        if kind == "customer.created":
            books.contacts[data.get("customer_number") or data["customer_id"]] += 1
        elif kind == "invoice.issued":
            numbers[data["invoice_id"]] = data.get("number") or data["invoice_id"]
            books.invoices[numbers[data["invoice_id"]]] += 1
        elif kind == "credit_note.issued":
            books.credit_notes[data.get("number") or data["credit_note_id"]] += 1
        elif kind == "payment.received":
            paid[data["payment_id"]] = numbers[data["invoice_id"]]
            number = numbers[data["invoice_id"]]
            books.payments[(number, data["received_on"], data["amount"], "debit")] += 1
        elif kind == "payment.refunded":
            number = paid[data["payment_id"]]
            books.payments[(number, data["refunded_on"], data["amount"], "credit")] += 1
    for month, revenue in revenue_of_ended_months(database_url).items():
        books.vouchers[(f"subledger:recognition:{month}", revenue)] += 1
    return books


def revenue_of_ended_months(database_url: str) -> dict[str, tuple[tuple[str, int], ...]]:
    """The revenue the journal (folded here, in memory, from the log) books in each month
    ended by today, per currency, for the months that book any."""
    ledger = Ledger(store_env(database_url))
    projection, rows = JournalProjection(), Rows()
    try:
        for entry in ledger.iter_entries(ledger.last_position(), projection.event_types):
            projection.fold(rows, entry)
    finally:
        ledger.close()
    today, revenue = date.today(), Counter[tuple[str, str]]()
    for (currency, day, role, _), row in rows.scan(TOTALS):
        if role == "revenue" and Month.parse(day[:7]).last_day < today:
            revenue[(day[:7], currency)] += row["credit"] - row["debit"]
    return _by_month(revenue)


def _by_month(amounts: Counter[tuple[str, str]]) -> dict[str, tuple[tuple[str, int], ...]]:
    months: dict[str, list[tuple[str, int]]] = {}
    for (month, currency), amount in sorted(amounts.items()):
        if amount:
            months.setdefault(month, []).append((currency, amount))
    return {month: tuple(found) for month, found in months.items()}


def books(box: Sandbox) -> Books:
    """What the sandbox holds, read through its API like any client would."""
    return billy_books(box) if box.kind == "billy" else dinero_books(box)


def unbooked(box: Sandbox) -> int:
    """Invoices and credit notes the sandbox holds as drafts."""
    return billy_unapproved(box) if box.kind == "billy" else dinero_drafts(box)


def billy_books(box: Sandbox) -> Books:
    """What the Billy sandbox holds, read through its API like any client would: a payment's
    amount is what it settled of its invoice, in the invoice's currency (its balance modifier),
    since its cash amount is in the bank account's currency."""
    with box.client() as client:
        contacts = _everything(client, "contacts")
        invoices = _everything(client, "invoices")
        payments = {p["id"]: p for p in _everything(client, "bankPayments")}
        modifiers = _everything(client, "balanceModifiers")
        vouchers = _everything(client, "daybookTransactions")
    by_id = {invoice["id"]: invoice for invoice in invoices}
    settled = Counter[tuple[str, str, int, str]]()
    for modifier in modifiers:
        payment = payments.get(str(modifier["modifierReference"]).removeprefix("bankPayment:"))
        if payment is None or payment.get("isVoided") or modifier.get("isVoided"):
            continue
        invoice = by_id[str(modifier["subjectReference"]).removeprefix("invoice:")]
        amount = abs(in_minor(modifier["amount"], invoice["currencyId"]))
        settled[(str(invoice["invoiceNo"]), payment["entryDate"], amount, payment["cashSide"])] += 1
    return Books(
        contacts=Counter(str(c["contactNo"]) for c in contacts),
        invoices=Counter(str(i["invoiceNo"]) for i in invoices if i["type"] == "invoice"),
        credit_notes=Counter(str(i["invoiceNo"]) for i in invoices if i["type"] == "creditNote"),
        payments=settled,
        vouchers=Counter(
            (str(v["apiType"]), _revenue_booked(v["lines"]))
            for v in vouchers
            if not v.get("isVoided")
        ),
    )


def in_minor(major: Any, currency: str) -> int:
    """An amount a sandbox answered (major units) in minor units of `currency`: its decimal
    digits shifted by the currency's ISO 4217 decimals, which must leave a whole number."""
    shifted = Decimal(str(major)).scaleb(CURRENCY_EXPONENTS[currency])
    assert shifted == shifted.to_integral_value(), (major, currency)
    return int(shifted)


def _revenue_booked(lines: list[dict[str, Any]]) -> tuple[tuple[str, int], ...]:
    """A voucher's credits less debits to the revenue accounts, per currency."""
    revenue = Counter[tuple[str, str]]()
    for line in lines:
        if str(line["accountNo"]) in REVENUE_ACCOUNTS:
            amount = in_minor(line["amount"], line["currencyId"])
            revenue[("", line["currencyId"])] += amount if line["side"] == "credit" else -amount
    return _by_month(revenue).get("", ())


def billy_unapproved(box: Sandbox) -> int:
    """Invoices and credit notes the Billy sandbox holds as drafts."""
    with box.client() as client:
        return sum(1 for i in _everything(client, "invoices") if i["state"] != "approved")


def _everything(client: httpx.Client, plural: str) -> list[dict[str, Any]]:
    found, page = [], 1
    while True:
        answer = client.get(f"/{plural}", params={"page": page, "pageSize": 1000})
        answer.raise_for_status()
        body = answer.json()
        found += body[plural]
        if page >= body["meta"]["paging"]["pageCount"]:
            return found
        page += 1


def dinero_books(box: Sandbox) -> Books:
    """What the Dinero sandbox holds: contacts, invoices and credit notes by their
    `ExternalReference` (our number), payments off each invoice's payments (in its own
    currency) and booked ledger items off the entries."""
    with box.client() as client:
        contacts = _collection(client, "contacts")
        invoices = _collection(client, "invoices")
        notes = _collection(client, "sales/creditnotes")
        years = {int(str(d["Date"])[:4]) for d in invoices + notes} | {date.today().year}
        entries = [
            entry
            for year in range(min(years), max(years) + 1)
            for entry in _answer(
                client.get(
                    "/entries",
                    params={
                        "fromDate": f"{year}-01-01",
                        "toDate": f"{year}-12-31",
                        "includePrimo": "false",
                    },
                )
            )
        ]
        paid = {
            str(i["ExternalReference"]): (i["Currency"], _dinero_payments(client, i["Guid"]))
            for i in invoices
            if i["Status"] == "Booked"
        }
    payments = Counter[tuple[str, str, int, str]]()
    for number, (currency, held) in paid.items():
        for payment in held:
            figure = payment["Amount"] if currency == "DKK" else payment["AmountInForeignCurrency"]
            amount = in_minor(figure, currency)
            side = "debit" if amount > 0 else "credit"
            payments[(number, payment["PaymentDate"], abs(amount), side)] += 1
    items: dict[Any, list[dict[str, Any]]] = {}
    for entry in entries:
        if entry["VoucherType"] == "LedgerItem":
            items.setdefault(entry["VoucherNumber"], []).append(entry)
    return Books(
        contacts=Counter(str(c["ExternalReference"]) for c in contacts),
        invoices=Counter(str(i["ExternalReference"]) for i in invoices),
        credit_notes=Counter(str(n["ExternalReference"]) for n in notes),
        payments=payments,
        vouchers=Counter(_ledger_item_revenue(lines) for lines in items.values()),
    )


def _dinero_payments(client: httpx.Client, guid: str) -> list[dict[str, Any]]:
    """An invoice's payments, from the v2 endpoint under the organization."""
    base = str(client.base_url).replace("/v1/", "/v2/")
    return list(_answer(client.get(f"{base}/invoices/{guid}/payments"))["Payments"])


LEDGER_LINE = re.compile(
    r"Recognized revenue [0-9-]+, (?P<currency>[A-Z]{3})"
    r"(?: (?P<figure>-?[0-9.]+) at (?P<rate>[0-9.]+))? \((?P<ref>[^)]+)\)"
)


def _ledger_item_revenue(
    lines: list[dict[str, Any]],
) -> tuple[str, tuple[tuple[str, int], ...]]:
    """A booked ledger item's reference and the revenue it books per currency (credits less
    debits), read off the descriptions the adapter gives its lines: a kroner line's amount, or
    a foreign-currency line's own figure (whose kroner must be that figure at the rate it
    names, to the øre)."""
    revenue, references = Counter[tuple[str, str]](), set()
    for line in lines:
        found = LEDGER_LINE.fullmatch(str(line["Description"]))
        assert found, line["Description"]
        references.add(found["ref"])
        if str(line["AccountNumber"]) not in REVENUE_ACCOUNTS:
            continue
        kroner = in_minor(line["Amount"], "DKK")
        if found["figure"] is None:
            revenue[("", found["currency"])] -= kroner
            continue
        figure = Decimal(found["figure"])
        worth = figure * Decimal(found["rate"]) * 100
        assert abs(worth - kroner) <= Decimal("0.5"), (line, "kroner at the rate named")
        revenue[("", found["currency"])] -= in_minor(figure, found["currency"])
    (reference,) = references
    return reference, _by_month(revenue).get("", ())


def dinero_drafts(box: Sandbox) -> int:
    with box.client() as client:
        documents = _collection(client, "invoices") + _collection(client, "sales/creditnotes")
    return sum(1 for d in documents if d["Status"] != "Booked")


def _collection(client: httpx.Client, path: str) -> list[dict[str, Any]]:
    """Every record of a Dinero list, pages counted from 0."""
    found: list[dict[str, Any]] = []
    page = 0
    while True:
        records = _answer(client.get(f"/{path}", params={"page": page, "pageSize": 1000}))
        found += records["Collection"]
        if len(records["Collection"]) < 1000:
            return found
        page += 1


def _answer(response: httpx.Response) -> Any:
    response.raise_for_status()
    return response.json()
