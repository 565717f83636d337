"""`subledger demo`: a realistic business in the ledger, its projections built, and its books
synced to both local sandboxes, with a summary of what came out.

The business is `api.generator.Business` (customers on monthly, quarterly and yearly plans,
trials, discounts, changes, pauses, churn and returns, credit notes, refunds, late payments,
kroner and euros), ending at the start of the current month. It is appended through the same
path as `POST /v1/events` (parsed as a request body, 1,000 events a batch), so the demo's log
is one a billing system could have written. The sandboxes run inside the command (their rate
limits off: this is a demonstration, not Dinero's 100 requests a minute), each in a process of
its own, and stop with it; the delivery log keeps what was sent.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson

from subledger.api.composition import Composition
from subledger.api.demo.generator import Business
from subledger.api.http.ingest import parse_submissions
from subledger.domain.dates import Month, add_months
from subledger.domain.ledger import Ledger
from subledger.projections import mrr, revenue
from subledger.projections.runner import ProjectionRunner

BATCH = 1000
#: The sandboxes' credentials: local, and known to anyone reading this.
BILLY_TOKEN = "demo-billy-token"  # noqa: S105
DINERO_CLIENT = ("demo-client", "demo-secret")
DINERO_API_KEY = "demo-api-key"
DINERO_ORGANIZATION = 123456
#: Seconds without a message delivered after which the demo stops waiting for the rest.
STALLED_SECONDS = 60.0
#: Called with (what is being done, done so far, out of).
Progress = Callable[[str, int, int], None]


class DemoError(Exception):
    """The demo cannot run here, and why."""


@dataclass(frozen=True)
class DemoOptions:
    customers: int = 500
    months: int = 36
    seed: int = 1
    sync: bool = True
    workers: int = 4
    #: The month the business ends at the start of (default: the current month), and the
    #: summary's "now".
    until: Month | None = None


@dataclass(frozen=True)
class Summary:
    events: int
    position: int
    currencies: list[str]
    mrr: dict[str, dict[str, Any]]
    """Per currency: this month's MRR, ARR and customers."""
    movements: dict[str, list[dict[str, Any]]]
    """Per currency: the last 12 ended months' MRR and movements."""
    deferred: dict[str, int]
    """Per currency: deferred revenue at the end of the last ended month."""
    sync: dict[str, dict[str, int]]
    """Per target: messages by status."""


def demo_business(options: DemoOptions, today: date) -> Business:
    """The demo's business: `options.months` months, ending where the current month begins."""
    start = add_months(today.replace(day=1), -options.months)
    return Business(
        customers=options.customers, start=start, months=options.months, seed=options.seed
    )


def run_demo(
    composition: Composition,
    options: DemoOptions,
    progress: Progress,
    today: date | None = None,
) -> Summary:
    """Append the business, build the projections, sync (unless told not to); the summary."""
    today = options.until.first_day if options.until else (today or date.today())
    ledger = composition.open_ledger()
    try:
        held = ledger.last_position()
        if held:
            raise DemoError(
                f"the store already holds {held:,} events; the demo needs an empty one"
                " (run `subledger demo --fresh` to start a new ./subledger.db, or point"
                " SUBLEDGER_DATABASE_URL at an empty database)"
            )
        events = list(demo_business(options, today).events())
        append_all(ledger, events, progress)
        runner = composition.runner(ledger)
        runner.prepare(repartition=True)  # folded again from the start just below
        runner.rebuild(
            list(runner.projections), progress=lambda at, end: progress("projections", at, end)
        )
        if options.sync:
            sync_to_sandboxes(composition, ledger, runner, events, options.workers, progress)
        return summarize(composition, ledger, runner, len(events), today)
    finally:
        ledger.close()


def append_all(ledger: Ledger, events: list[dict[str, Any]], progress: Progress) -> None:
    """Append `events` as request bodies of `BATCH` events, as `POST /v1/events` would."""
    for start in range(0, len(events), BATCH):
        body = orjson.dumps({"events": events[start : start + BATCH]})
        ledger.append(parse_submissions(body))
        progress("events", min(start + BATCH, len(events)), len(events))


# Syncing.


@contextmanager
def sandbox_process(kind: str, *options: str) -> Iterator[str]:
    """`subledger sandbox <kind>` in a process of its own on a free port (so that it has a
    core of its own, not a share of this process's), once it answers: its base URL. Stopped
    on leaving."""
    port = free_port()
    command = [sys.executable, "-m", "subledger", "sandbox", kind, "--port", str(port), *options]
    process = subprocess.Popen(  # noqa: S603 (our own command line, no user input)
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/_sandbox/summary", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise DemoError(f"the {kind} sandbox did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def sandboxes() -> Iterator[tuple[str, str]]:
    """Both sandboxes, their rate limits off: their base URLs."""
    client_id, secret = DINERO_CLIENT
    with (
        sandbox_process("billy", "--token", BILLY_TOKEN, "--rate-limit", "0") as billy,
        sandbox_process(
            "dinero",
            *("--client-id", client_id, "--client-secret", secret, "--api-key", DINERO_API_KEY),
            *("--organization-id", str(DINERO_ORGANIZATION), "--rate-limit", "0"),
        ) as dinero,
    ):
        yield billy, dinero


def billy_products(
    api_url: str,
    token: str,
    products: set[str],
    account_no: str = "7400",
    rounding_account_no: str = "3670",
) -> None:
    """Make Billy ready as docs/sync.md asks of a new company: a product for each of ours,
    numbered with our product id and booking to deferred revenue, and the VAT-free `rounding`
    product on øreafrunding for credit notes' rounding lines."""
    with httpx.Client(base_url=api_url, headers={"X-Access-Token": token}, timeout=30) as client:
        accounts = _billy_list(client, "accounts")
        by_number = {str(account["accountNo"]): account["id"] for account in accounts}
        rates = {rate["id"]: Decimal(str(rate["rate"])) for rate in _billy_list(client, "taxRates")}
        vat_free = next(
            ruleset["id"]
            for ruleset in _billy_list(client, "salesTaxRulesets")
            if rates.get(ruleset.get("taxRateId")) == 0
        )
        for product in sorted(products):
            body = {
                "product": {
                    "name": product,
                    "productNo": product,
                    "accountId": by_number[account_no],
                }
            }
            client.post("/products", json=body).raise_for_status()
        rounding = {
            "name": "Øreafrunding",
            "productNo": "rounding",
            "accountId": by_number[rounding_account_no],
            "salesTaxRulesetId": vat_free,
        }
        client.post("/products", json={"product": rounding}).raise_for_status()


def _billy_list(client: httpx.Client, plural: str) -> list[dict[str, Any]]:
    """The first page of a Billy list (a thousand records: the sandbox's charts are small)."""
    answer = client.get(f"/{plural}", params={"pageSize": 1000})
    answer.raise_for_status()
    return list(answer.json()[plural])


def products_of(events: list[dict[str, Any]]) -> set[str]:
    return {
        line["product_id"]
        for event in events
        if event["type"] == "invoice.issued"
        for line in event["data"]["lines"]
    }


def sandbox_targets(billy_url: str, dinero_url: str) -> str:
    """subledger.toml's `[targets]` for the two sandboxes, with budgets far above what they
    will see."""
    return (
        f'[targets.billy]\nurl = "{billy_url}/v2"\ntoken = "{BILLY_TOKEN}"\n'
        "requests_per_minute = 1000000\n\n"
        f'[targets.dinero]\nurl = "{dinero_url}"\norganization_id = "{DINERO_ORGANIZATION}"\n'
        f'client_id = "{DINERO_CLIENT[0]}"\nclient_secret = "{DINERO_CLIENT[1]}"\n'
        f'token = "{DINERO_API_KEY}"\nrequests_per_minute = 1000000\n'
    )


def sync_to_sandboxes(
    composition: Composition,
    ledger: Ledger,
    runner: ProjectionRunner,
    events: list[dict[str, Any]],
    workers: int,
    progress: Progress,
) -> None:
    """Start both sandboxes, enqueue every message for both, and deliver until none is left
    pending (failures stay failed, for the dashboard to show), or until nothing moved for
    `STALLED_SECONDS` seconds (what is still pending then shows in the summary). The targets are the
    sandboxes', in a configuration file of their own."""
    with ExitStack() as stack:
        billy_url, dinero_url = stack.enter_context(sandboxes())
        billy_products(f"{billy_url}/v2", BILLY_TOKEN, products_of(events))
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        config = directory / "subledger.toml"
        config.write_text(sandbox_targets(billy_url, dinero_url))
        sync = composition.with_configuration(config).sync(ledger, runner)
        stack.callback(sync.close)
        total = sync.enqueue()
        stop = threading.Event()
        thread = threading.Thread(target=sync.run, args=(stop, workers), name="demo-sync")
        thread.start()
        try:
            moved, last = time.monotonic(), -1
            while time.monotonic() - moved < STALLED_SECONDS:
                counts = sync.delivery.counts()
                done = sum(c.get("sent", 0) + c.get("failed", 0) for c in counts.values())
                progress("sync", done, total)
                if done >= total:
                    break
                if done != last:
                    moved, last = time.monotonic(), done
                time.sleep(0.2)
        finally:
            stop.set()
            thread.join()


# The summary.


def summarize(
    composition: Composition, ledger: Ledger, runner: ProjectionRunner, events: int, today: date
) -> Summary:
    this_month = Month.of(today)
    last_twelve = [str(this_month.previous())]
    while len(last_twelve) < 12:
        last_twelve.insert(0, str(Month.parse(last_twelve[0]).previous()))
    with composition.caught_up_snapshots(runner, "mrr", "revenue") as (position, rows):
        currencies = sorted(
            set(mrr.currencies(rows["mrr"])) | set(revenue.currencies(rows["revenue"]))
        )
        now = {c: mrr.monthly(rows["mrr"], c, [str(this_month)])[0] for c in currencies}
        movements = {c: mrr.monthly(rows["mrr"], c, last_twelve) for c in currencies}
        deferred = {
            c: revenue.summary(rows["revenue"], c, last_twelve[-1:])[0]["deferred_end"]
            for c in currencies
        }
    return Summary(
        events=events,
        position=position,
        currencies=currencies,
        mrr={c: {k: now[c][k] for k in ("mrr", "arr", "customers")} for c in currencies},
        movements=movements,
        deferred=deferred,
        sync=composition.delivery_log(ledger).counts(),
    )
