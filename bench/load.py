"""A mixed load on the running service from separate processes, beside the same load on raw
PostgreSQL; afterwards the log and the projections are checked.

    python bench/load.py [--database-url postgresql://postgres@127.0.0.1:5432/test]
                         [--seconds 180] [--senders 4] [--analysts 2] [--batch 100]
                         [--customers 5000] [--rate 0] [--workers 2] [--sync-workers 2]
                         [--projector] [--settle]

1. Starts `subledger serve --workers 2` on a fresh PostgreSQL schema (with `--projector`:
   `serve --no-projections` beside `subledger project`), a Billy sandbox (`subledger sandbox
   billy`) and the dispatcher (`subledger sync run`), each a process.
2. For `--seconds`, at once: sender processes append generated businesses (one each, of
   `--customers` customers over three years) in batches, sending a batch again, unchanged,
   after a timeout, a lost connection or a 5xx, until it is answered 200 or 201 (as fast as
   they can, or `--rate` events a second in all); analyst
   processes ask for MRR, the revenue summary and the trial balance, one after another; the
   dispatcher syncs to the sandbox.
3. Reports events appended a second, queries a second, p50/p95/p99 latency per operation and
   the answers by status; how far the projections were behind when the load stopped, and
   how long they took to catch up.
4. The same load on raw PostgreSQL in the same run: as many processes inserting the same
   batches' JSON into a plain table (one transaction a batch) while as many others run plain
   SQL for the same three questions on the stored rows; the ratios.
5. Checks, and exits 1 if one fails: the log holds every acknowledged event exactly once and
   nothing that was not sent; the projections' rows equal those of `subledger projections
   rebuild`, and the API's answers are the same after it; `subledger projections check`
   passes; the sandbox holds no duplicate and the delivery log no failure (with `--settle`:
   once the dispatcher has caught up, the sandbox holds exactly what the log says).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from rich.console import Console
from rich.progress import Progress, TextColumn, TimeElapsedColumn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import machine, parser_for, scratch_schema, server, subledger  # noqa: E402
from bench.sandboxes import (  # noqa: E402
    TOKEN,
    Dispatcher,
    books,
    configure,
    enqueue,
    environment,
    expected_books,
    sandbox,
    wait_until_settled,
)
from bench.verify import (  # noqa: E402
    check_log,
    differences,
    projection_digests,
    rebuild_projections,
    split_store_url,
)
from subledger.adapters.store import store_env  # noqa: E402
from subledger.api.demo.generator import PRICES, Business  # noqa: E402
from subledger.api.demo.run import billy_products  # noqa: E402
from subledger.api.sync import delivery_log_for  # noqa: E402
from subledger.domain.ledger import Ledger  # noqa: E402

WRITER = "load-writer-secret-0001"
READER = "load-reader-secret-0001"
KEYS = f"billing:{WRITER}:events:write,analyst:{READER}:read"
CURRENCIES = ("DKK", "EUR")
QUERIES = {
    "MRR": ("/v1/metrics/mrr", {"from": "2023-01", "to": "2026-12"}),
    "revenue summary": ("/v1/revenue/summary", {"from": "2023-01", "to": "2026-12"}),
    "trial balance": ("/v1/ledger/trial-balance", {"as_of": "2026-06-30"}),
}
#: The same questions in plain SQL on the stored rows the answers are made from.
RAW_QUERIES = {
    "MRR": "SELECT month, sum(mrr_change) OVER (ORDER BY month) FROM {s}.subledger_mrr_months"
    " WHERE currency = %s AND month <= '2026-12' ORDER BY month",
    "revenue summary": "SELECT month, billed, credited, recognized,"
    " sum(billed - credited - recognized) OVER (ORDER BY month)"
    " FROM {s}.subledger_revenue_months WHERE currency = %s AND month <= '2026-12'"
    " ORDER BY month",
    "trial balance": "SELECT role, detail, sum(debit), sum(credit)"
    " FROM {s}.subledger_journal_totals WHERE currency = %s AND date <= '2026-06-30'"
    " GROUP BY role, detail ORDER BY role, detail",
}


# The workload.


def business_events(number: int, customers: int) -> list[dict[str, Any]]:
    """Sender `number`'s business: its own seed, so its ids are its own; customer numbers made
    unique across businesses (the sync finds contacts by them). Only sender 0's business
    closes the months."""
    seed = 1000 + number
    events = list(
        Business(customers=customers, months=36, seed=seed, close_periods=number == 0).events()
    )
    for event in events:
        if event["type"] == "customer.created":
            data = event["data"]
            data["customer_number"] = f"{seed}{int(data['customer_number']):07d}"
    return events


def batches(events: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [events[start : start + size] for start in range(0, len(events), size)]


@dataclass
class Record:
    """What one process did: latencies per operation, answers by status, and (senders) the
    event ids sent and acknowledged."""

    role: str
    number: int
    latencies: dict[str, list[float]] = field(default_factory=dict)
    answers: dict[str, Counter[str]] = field(default_factory=dict)
    sent: list[str] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)
    events: int = 0
    batches: int = 0
    seconds: float = 0.0
    """How long it sent, from the start to its last batch's answer."""
    ran_out: bool = False

    def note(self, operation: str, answer: str, seconds: float | None) -> None:
        self.answers.setdefault(operation, Counter())[answer] += 1
        if seconds is not None:
            self.latencies.setdefault(operation, []).append(seconds)


@dataclass(frozen=True)
class Shared:
    """What the processes of a phase share with the one watching them."""

    ready: Barrier
    stop: Event
    appended: Any
    asked: Any
    results: Any


def send(number: int, base: str, options: dict[str, Any], shared: Shared) -> None:
    """A sender: its business in batches, each until it is answered 200 or 201."""
    record = Record("sender", number)
    todo = batches(business_events(number, options["customers"]), options["batch"])
    operation = f"append, batches of {options['batch']}"
    headers = {"Authorization": f"Bearer {WRITER}", "Content-Type": "application/json"}
    with httpx.Client(base_url=base, headers=headers, timeout=options["timeout"]) as client:
        shared.ready.wait()
        started = time.monotonic()
        give_up = started + options["seconds"] + 120
        pace = options["rate"] / options["senders"]  # events a second, 0: as fast as it can
        # Paced senders send in turn, not all at the same instant.
        offset = number * options["batch"] / options["rate"] if pace else 0.0
        for batch in todo:
            if pace:
                due = started + offset + len(record.sent) / pace
                time.sleep(max(0.0, due - time.monotonic()))
            if shared.stop.is_set():
                break
            body = orjson.dumps({"events": batch})
            ids = [event["id"] for event in batch]
            record.sent += ids
            while time.monotonic() < give_up:
                began = time.perf_counter()
                try:
                    answer = client.post("/v1/events", content=body)
                except httpx.TimeoutException:
                    record.note(operation, "timeout", None)
                    continue
                except httpx.TransportError:
                    record.note(operation, "no answer", None)
                    time.sleep(0.5)
                    continue
                record.note(operation, str(answer.status_code), time.perf_counter() - began)
                if answer.status_code in (200, 201):
                    record.acknowledged += ids
                    record.events += len(ids)
                    record.batches += 1
                    record.seconds = time.monotonic() - started
                    with shared.appended.get_lock():
                        shared.appended.value += len(ids)
                    break
                if answer.status_code < 500 and answer.status_code != 429:
                    record.note(operation, f"refused: {answer.text[:300]}", None)
                    break
                time.sleep(min(float(answer.headers.get("Retry-After", "1")), 1.0))
        else:
            record.ran_out = True
    shared.results.put(record)


def analyse(number: int, base: str, options: dict[str, Any], shared: Shared) -> None:
    """An analyst: the three questions in turn, each in a random currency, until stopped."""
    record = Record("analyst", number)
    chance = random.Random(number)
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {READER}"}, timeout=120
    ) as client:
        shared.ready.wait()
        while not shared.stop.is_set():
            for name, (path, params) in QUERIES.items():
                began = time.perf_counter()
                try:
                    answer = client.get(
                        path, params={**params, "currency": chance.choice(CURRENCIES)}
                    )
                except httpx.TransportError:
                    record.note(name, "no answer", None)
                    continue
                code = "" if answer.status_code < 400 else answer.json()["error"]["code"]
                status = f"{answer.status_code} {code}".strip()
                record.note(name, status, time.perf_counter() - began)
                with shared.asked.get_lock():
                    shared.asked.value += 1
    shared.results.put(record)


def raw_send(number: int, target: tuple[str, str], options: dict[str, Any], shared: Shared) -> None:
    """The batches sender `number` had acknowledged, their events' JSON inserted into a plain
    table with plain INSERTs, one transaction a batch."""
    database_url, schema = target
    record = Record("sender", number)
    todo = batches(business_events(number, options["customers"]), options["batch"])
    todo = todo[: options["done"][number]]
    operation = f"append, batches of {options['batch']}"
    statement = f"INSERT INTO {schema}.raw_events (id, body) VALUES (%s, %s)"
    with psycopg.connect(database_url) as connection:
        shared.ready.wait()
        started = time.monotonic()
        for batch in todo:
            began = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.executemany(statement, [(e["id"], orjson.dumps(e).decode()) for e in batch])
            connection.commit()
            record.note(operation, "ok", time.perf_counter() - began)
            record.events += len(batch)
            record.batches += 1
            record.seconds = time.monotonic() - started
            with shared.appended.get_lock():
                shared.appended.value += len(batch)
    shared.results.put(record)


def raw_analyse(
    number: int, target: tuple[str, str], options: dict[str, Any], shared: Shared
) -> None:
    """The three questions in plain SQL on the same stored rows, until stopped."""
    database_url, schema = target
    record = Record("analyst", number)
    chance = random.Random(number)
    statements = {name: sql.format(s=schema) for name, sql in RAW_QUERIES.items()}
    with psycopg.connect(database_url, autocommit=True) as connection:
        shared.ready.wait()
        while not shared.stop.is_set():
            for name, statement in statements.items():
                began = time.perf_counter()
                connection.execute(statement, (chance.choice(CURRENCIES),)).fetchall()
                record.note(name, "ok", time.perf_counter() - began)
                with shared.asked.get_lock():
                    shared.asked.value += 1
    shared.results.put(record)


@dataclass
class Phase:
    """The records of one phase's processes and how long it ran."""

    senders: list[Record]
    analysts: list[Record]
    seconds: float

    @property
    def events(self) -> int:
        return sum(record.events for record in self.senders)

    @property
    def appending_seconds(self) -> float:
        """From the start to the last batch's answer."""
        return max((record.seconds for record in self.senders), default=0.0) or self.seconds

    @property
    def queries(self) -> int:
        return sum(sum(c.total() for c in record.answers.values()) for record in self.analysts)


def run_phase(
    title: str,
    sender: Any,
    analyst: Any,
    target: Any,
    options: dict[str, Any],
    until: Any,
    extra: Any = None,
    on_stop: Any = None,
) -> Phase:
    """`options["senders"]` processes running `sender` and `options["analysts"]` running
    `analyst` against `target`, from the moment all are ready until `until(elapsed,
    appended)` says so (then `on_stop()`); progress shown meanwhile, with `extra()`."""
    # Forked, not spawned: each child would otherwise import the service's modules again (some
    # seconds on a busy machine). This process holds no threads while it forks (the sync's
    # counts are read through a ledger opened only once the children run).
    context = multiprocessing.get_context("fork")
    count = options["senders"] + options["analysts"]
    shared = Shared(
        ready=context.Barrier(count + 1),
        stop=context.Event(),
        appended=context.Value("q", 0),
        asked=context.Value("q", 0),
        results=context.Queue(),
    )
    processes = [
        context.Process(target=sender, args=(n, target, options, shared))
        for n in range(options["senders"])
    ] + [
        context.Process(target=analyst, args=(n, target, options, shared))
        for n in range(options["analysts"])
    ]
    for process in processes:
        process.start()
    shared.ready.wait(timeout=900)  # each sender makes its business first
    started = time.monotonic()
    records: list[Record] = []
    columns = (
        TextColumn("[bold]{task.description}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(title, total=None, status="")
        while len(records) < count:
            elapsed = time.monotonic() - started
            appended, asked = shared.appended.value, shared.asked.value
            if not shared.stop.is_set() and until(elapsed, appended):
                shared.stop.set()
                if on_stop is not None:
                    on_stop()
            status = (
                f"{appended:,} events {appended / max(elapsed, 1e-3):,.0f}/s ·"
                f" {asked:,} queries {asked / max(elapsed, 1e-3):,.1f}/s"
                + (f" · {extra()}" if extra is not None else "")
            )
            bar.update(task, status=status)
            try:
                records.append(shared.results.get(timeout=0.5))
            except Exception:  # queue.Empty: nobody finished yet
                if any(p.exitcode not in (None, 0) for p in processes):
                    raise RuntimeError(f"a process of {title} failed") from None
    seconds = time.monotonic() - started
    for process in processes:
        process.join(60)
    return Phase(
        senders=sorted((r for r in records if r.role == "sender"), key=lambda r: r.number),
        analysts=sorted((r for r in records if r.role == "analyst"), key=lambda r: r.number),
        seconds=seconds,
    )


# Reporting.


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def quantile(ordered: Sequence[float], percent: int) -> float:
    """The nearest-rank percentile of sorted samples."""
    return ordered[max(0, -(-percent * len(ordered) // 100) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def rows_of(phase: Phase, label: str, workers: str) -> list[tuple[str, str, str, str, str]]:
    """One row per operation: what was done, per second, p50/p95/p99, answers."""
    rows = []
    for role, records in (("sender", phase.senders), ("analyst", phase.analysts)):
        operations = sorted({op for record in records for op in record.answers})
        for operation in operations:
            samples = sorted(s for r in records for s in r.latencies.get(operation, []))
            answers: Counter[str] = Counter()
            for record in records:
                answers.update(record.answers.get(operation, Counter()))
            if role == "sender":
                done = f"{phase.events:,} events ({sum(r.batches for r in records):,} batches)"
                rate = f"{phase.events / phase.appending_seconds:,.0f} events/s"
            else:
                done = f"{answers.total():,}"
                rate = f"{answers.total() / phase.seconds:,.1f}/s"
            spread = " / ".join(ms(quantile(samples, p)) for p in (50, 95, 99)) if samples else "-"
            shown = ", ".join(f"{k}: {v:,}" for k, v in sorted(answers.items()))
            who = plural(len(records), role)
            who += f", {workers}" if label == "HTTP" else ""
            rows.append((f"{label}: {operation} ({who})", done, rate, spread, shown))
    return rows


def report(service: Phase, raw: Phase, workers: int, paced: bool) -> None:
    print("\n| operation | done | per second | p50 / p95 / p99 | answers |")
    print("|---|---:|---:|---:|---|")
    for row in rows_of(service, "HTTP", f"{workers} server processes") + rows_of(
        raw, "raw PostgreSQL", ""
    ):
        print("| " + " | ".join(row) + " |")
    if service.events and raw.events:
        appends = (service.events / service.appending_seconds) / (
            raw.events / raw.appending_seconds
        )
        paced_note = " (paced: not a measure of capacity)" if paced else ""
        print(f"\nappends: {appends:.3f} × raw PostgreSQL{paced_note}")
    if service.queries and raw.queries:
        queries = (service.queries / service.seconds) / (raw.queries / raw.seconds)
        print(f"queries: {queries:.3f} × raw PostgreSQL")


# Checking.


def answers(base: str) -> dict[str, Any]:
    """Every question in both currencies, as the API answers it."""
    found = {}
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {READER}"}, timeout=300
    ) as client:
        for name, (path, params) in QUERIES.items():
            for currency in CURRENCIES:
                answer = client.get(path, params={**params, "currency": currency})
                answer.raise_for_status()
                found[f"{name} {currency}"] = answer.json()
    return found


def journal_check(url: str) -> bool:
    return subledger(url, "projections", "check").returncode == 0


def log_events(base: str) -> list[dict[str, Any]]:
    """The whole log through `GET /v1/events`, for what a target should hold."""
    events: list[dict[str, Any]] = []
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {READER}"}, timeout=120
    ) as client:
        while True:
            after = events[-1]["position"] if events else 0
            page = client.get("/v1/events", params={"after": after, "limit": 1000}).json()
            if not page["events"]:
                return events
            events += page["events"]


class SyncWatch:
    """The delivery log's counts for the target, read at most every two seconds (through a
    ledger opened at the first read)."""

    def __init__(self, url: str, target: str) -> None:
        self.url = url
        self.ledger: Ledger | None = None
        self.target = target
        self.read_at = 0.0
        self.counts: dict[str, int] = {}

    def now(self) -> dict[str, int]:
        if time.monotonic() - self.read_at > 2:
            if self.ledger is None:
                self.ledger = Ledger(store_env(self.url))
            found = delivery_log_for(self.ledger).counts().get(self.target, {})
            self.counts = dict(found)
            self.read_at = time.monotonic()
        return self.counts

    def line(self) -> str:
        counts = self.now()
        return f"{counts.get('sent', 0):,} synced, {counts.get('pending', 0):,} pending"

    def close(self) -> None:
        if self.ledger is not None:
            self.ledger.close()
            self.ledger = None


def check_sync(box: Any, env: dict[str, str], base: str, target: str, settle: bool) -> list[str]:
    """What the sandbox holds: no duplicate, no failed message; with `settle`, once everything
    the log holds is enqueued and nothing is pending, exactly what the log says."""
    problems = []
    url = env["SUBLEDGER_DATABASE_URL"]
    if settle:
        enqueue(env)
        counts = wait_until_settled(url, target, timeout=3600, interval=1)
        wanted = expected_books(log_events(base), url)
        held = books(box)
        if held != wanted:
            problems.append(f"the sandbox holds {held.sizes()}, the log says {wanted.sizes()}")
        print(
            f"sync to {target}, settled: {counts['sent']:,} messages, the sandbox holds"
            f" {held.sizes()}" + (", as the log says" if held == wanted else "")
        )
    else:
        held = books(box)
        print(f"sync to {target}: the sandbox holds {held.sizes()}")
    duplicates = held.duplicates()
    if duplicates:
        problems.append(f"the sandbox holds duplicates: {duplicates}")
    watch = SyncWatch(url, target)
    failed = watch.now().get("failed", 0)
    watch.close()
    if failed:
        problems.append(f"{failed} messages failed")
    return problems


@contextmanager
def projector(url: str) -> Iterator[None]:
    """`subledger project` in a process of its own."""
    process = subprocess.Popen(
        [sys.executable, "-m", "subledger", "project"],
        cwd=ROOT,
        env={**os.environ, "SUBLEDGER_DATABASE_URL": url, "SUBLEDGER_LOG_LEVEL": "warning"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.terminate()
        process.wait(60)


def behind(url: str) -> tuple[int, int]:
    """The log's last position, and how many positions the furthest-behind projection lags."""
    server_url, schema = split_store_url(url)
    with psycopg.connect(server_url) as connection:
        found = connection.execute(
            f"SELECT (SELECT coalesce(max(position), 0) FROM {schema}.subledger_log),"
            f" (SELECT coalesce(min(position), 0) FROM {schema}.subledger_projections)"
        ).fetchone()
    end, folded = found if found else (0, 0)
    return end, end - folded


@dataclass
class Lag:
    """How far the projections were behind the log when the senders were told to stop."""

    url: str
    at: float = 0.0
    end: int = 0
    behind: int = 0

    def measure(self) -> None:
        self.at = time.monotonic()
        self.end, self.behind = behind(self.url)

    def caught_up(self) -> str:
        """Once they have folded the whole log: how far behind they were, and for how long."""
        while behind(self.url)[1] > 0 and time.monotonic() - self.at < 1800:
            time.sleep(0.5)
        return (
            f"projections {self.behind:,} events behind the log's {self.end:,} when the"
            f" senders stopped, caught up {time.monotonic() - self.at:,.1f} s later"
        )


def main() -> None:
    parser = parser_for(__doc__)
    parser.add_argument("--seconds", type=float, default=180, help="How long the load lasts.")
    parser.add_argument("--senders", type=int, default=4, help="Sender processes.")
    parser.add_argument("--analysts", type=int, default=2, help="Analyst processes.")
    parser.add_argument("--batch", type=int, default=100, help="Events a batch.")
    parser.add_argument("--customers", type=int, default=5000, help="Customers per sender.")
    parser.add_argument(
        "--rate", type=float, default=0, help="Events a second for all senders (0: no limit)."
    )
    parser.add_argument("--timeout", type=float, default=10, help="A sender's timeout, in s.")
    parser.add_argument("--workers", type=int, default=2, help="Server processes.")
    parser.add_argument("--sync-workers", type=int, default=2, help="Dispatcher threads.")
    parser.add_argument(
        "--projector",
        action="store_true",
        help="Serve with --no-projections beside a `subledger project` process.",
    )
    parser.add_argument("--target", choices=("billy", "dinero"), default="billy")
    parser.add_argument(
        "--settle", action="store_true", help="Wait for the sync to finish, then compare it."
    )
    arguments = parser.parse_args()
    options = {
        "seconds": arguments.seconds,
        "senders": arguments.senders,
        "analysts": arguments.analysts,
        "batch": arguments.batch,
        "customers": arguments.customers,
        "timeout": arguments.timeout,
        "rate": arguments.rate,
    }
    print(machine(arguments.database_url))
    with (
        scratch_schema(arguments.database_url, "bench_load", quiet=True) as (schema, url),
        sandbox(arguments.target) as box,
        tempfile.TemporaryDirectory() as directory,
    ):
        print(
            f"schema {schema}; {arguments.senders} senders of {arguments.customers:,} customers"
            f" each, batches of {arguments.batch}"
            + (f" at {arguments.rate:,.0f} events/s in all" if arguments.rate else "")
            + f"; {plural(arguments.analysts, 'analyst')};"
            f" {arguments.workers} server processes"
            + (" with --no-projections beside `subledger project`" if arguments.projector else "")
            + "; the dispatcher syncing to"
            f" {arguments.target} with {arguments.sync_workers} threads"
        )
        if arguments.target == "billy":
            products = {f"plan_{tier}" for tiers in PRICES.values() for tier in tiers}
            billy_products(box.api_url, TOKEN, products)
        serving = ["--no-projections"] if arguments.projector else []
        config = configure(Path(directory) / "subledger.toml", box)
        env = environment(url, config, arguments.target)
        with (
            server(url, KEYS, arguments.workers, arguments=serving) as base,
            Dispatcher(env, workers=arguments.sync_workers),
            projector(url) if arguments.projector else nullcontext(),
        ):
            service, raw = load(arguments, options, base, url, schema)
            report(service, raw, arguments.workers, paced=bool(arguments.rate))
            failures = check_appends(service, url)
            live = answers(base)
            failures += check_sync(box, env, base, arguments.target, arguments.settle)
        failures += check_projections(url, live)
    if failures:
        print("\nFAILED:\n" + "\n".join(failures))
        sys.exit(1)
    print("\nevery check passed")


def load(
    arguments: Any, options: dict[str, Any], base: str, url: str, schema: str
) -> tuple[Phase, Phase]:
    """The load on the service, then the same on raw PostgreSQL."""
    before = SyncWatch(url, arguments.target)
    sent_before = before.now().get("sent", 0)
    before.close()
    watch = SyncWatch(url, arguments.target)
    lag = Lag(url)
    service = run_phase(
        "load",
        send,
        analyse,
        base,
        options,
        until=lambda elapsed, _: elapsed >= arguments.seconds,
        extra=watch.line,
        on_stop=lag.measure,
    )
    watch.read_at = 0
    counts = watch.now()
    watch.close()
    print(lag.caught_up())
    synced = counts.get("sent", 0) - sent_before
    print(
        f"sync to {arguments.target}: {synced:,} messages sent during the load"
        f" ({synced / service.seconds:,.1f}/s); {counts.get('pending', 0):,} pending"
        f" and {counts.get('failed', 0):,} failed at its end"
    )
    for record in service.senders:
        if record.ran_out:
            print(f"sender {record.number} ran out of events before the end")
    with psycopg.connect(arguments.database_url, autocommit=True) as connection:
        connection.execute(
            f"CREATE TABLE {schema}.raw_events (id text PRIMARY KEY, body jsonb NOT NULL)"
        )
    total = service.events
    raw = run_phase(
        "raw PostgreSQL",
        raw_send,
        raw_analyse,
        (arguments.database_url, schema),
        {**options, "done": [record.batches for record in service.senders]},
        until=lambda _, appended: appended >= total,
    )
    return service, raw


def check_appends(service: Phase, url: str) -> list[str]:
    """Nothing refused; every acknowledged event in the log once, nothing unsent."""
    sent = [i for record in service.senders for i in record.sent]
    acknowledged = [i for record in service.senders for i in record.acknowledged]
    refused = sum(
        n
        for record in service.senders
        for answers in record.answers.values()
        for answer, n in answers.items()
        if answer.startswith("refused")
    )
    log = check_log(url, acknowledged, sent)
    print(
        f"\nlog: {log.events:,} events for {len(set(acknowledged)):,} acknowledged ids"
        f" ({len(sent) - len(acknowledged):,} sent without an answer); {log.doubled} held"
        f" twice; {log.skipped} positions skipped by rolled-back appends"
    )
    return log.problems + ([f"{refused} batches refused"] if refused else [])


def check_projections(url: str, live: dict[str, Any]) -> list[str]:
    """With everything stopped: the stored rows against `subledger projections rebuild`'s,
    the API's answers after it against `live`, and `subledger projections check`."""
    digests = projection_digests(url)
    rebuild_projections(url)
    changed = differences(digests, projection_digests(url))
    with server(url, KEYS) as base:
        same = answers(base) == live
    checked = journal_check(url)
    print(
        f"projections: {len(digests) - 1} tables"
        + (" equal to" if not changed else " DIFFERENT from")
        + f" `subledger projections rebuild`'s ({digests['positions']}); the API's answers"
        + (" unchanged" if same else " CHANGED")
        + "; `subledger projections check`: "
        + ("ok" if checked else "FAILED")
    )
    return (
        [f"a projection differs from its rebuild: {d}" for d in changed]
        + ([] if same else ["the API's answers differ after the rebuild"])
        + ([] if checked else ["subledger projections check failed"])
    )


if __name__ == "__main__":
    main()
