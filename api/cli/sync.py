"""`subledger sync`: run the dispatcher, see where delivery stands, check a target's mapping."""

from __future__ import annotations

import signal
import threading
import time
from datetime import UTC, datetime
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from subledger.adapters.sync.log_records import STATUSES
from subledger.api.cli.common import database_settings, log_at
from subledger.api.composition import Composition
from subledger.api.settings import ConfigurationError, Settings
from subledger.api.sync import Sync
from subledger.projections.outbox import MESSAGES


def _sync() -> tuple[Settings, Sync]:
    settings = database_settings()
    composition = Composition(settings)
    ledger = composition.open_ledger()
    try:
        return settings, composition.sync(ledger, composition.runner(ledger))
    except ConfigurationError as error:
        ledger.close()
        raise click.ClickException(str(error)) from None


@click.group()
def sync() -> None:
    """Deliver the outbox to the accounting targets of subledger.toml."""


@sync.command()
@click.option("--workers", type=click.IntRange(1, 32), default=None, help="Delivering threads.")
@click.option(
    "--once",
    is_flag=True,
    help="Send everything pending now (manual and scheduled targets too), take in the payments"
    ' registered at two-way targets (direction = "both"), then stop: exit 0'
    " when all of it was delivered, 1 with a summary when something failed or is left.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(1),
    default=600,
    show_default=True,
    help="With --once: the seconds to keep retrying what the target asks to be retried.",
)
def run(workers: int | None, once: bool, timeout: float) -> None:
    """Enqueue and deliver until stopped (Ctrl-C or SIGTERM), each target as its `mode`
    says; safe beside other workers. With --once, send what is pending now and exit."""
    settings, service = _sync()
    log_at(settings.log_level)
    if not service.targets:
        raise click.ClickException(f"no targets in {settings.config}: add a [targets.<name>]")
    click.echo(f"subledger sync: delivering to {', '.join(service.targets)}", err=True)
    if once:
        deadline = time.monotonic() + timeout
        service.release()
        service.dispatcher.run_once(list(service.targets), deadline)
        # Then the payments registered at the two-way targets; those taken in are sent on to
        # the other targets in the same run (the target they came from is not sent them).
        if service.poll(deadline):
            service.release()
            service.dispatcher.run_once(list(service.targets), deadline)
        _counts_table(service)
        problems = _undelivered(service)
        service.close()
        if problems:
            for line in problems:
                click.echo(line, err=True)
            raise SystemExit(1)
        return
    stop = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stop.set())
    service.run(stop, workers or settings.sync_workers)
    _counts_table(service)
    service.close()


def _undelivered(service: Sync) -> list[str]:
    """What a run left undelivered, in lines: per target the messages failed, held behind a
    failed one or still pending, then each failed message with its error (the first 20)."""
    lines = []
    for target, summary in service.delivery.summary().items():
        if target not in service.targets:
            continue
        failed = summary.counts.get("failed", 0)
        unsent = summary.counts.get("pending", 0) + summary.counts.get("sending", 0)
        if failed or unsent:
            lines.append(
                f"{target}: {failed:,} failed, {summary.held_messages:,} held behind a failure,"
                f" {unsent - summary.held_messages:,} not sent in time"
            )
    if lines:
        for message in service.delivery.messages(status="failed", limit=20):
            lines.append(
                f"failed {message.id} {message.target} {message.kind} {message.lane}: "
                f"{message.last_error}"
            )
    return lines


@sync.command()
@click.option("--json", "as_json", is_flag=True, help="Print the counts and failures as JSON.")
def status(as_json: bool) -> None:
    """The messages of each target by status, how long the oldest unsent one has waited,
    the customers held behind a failure, and the failed messages with their errors (after
    enqueueing what the log holds that the delivery log does not yet)."""
    _, service = _sync()
    service.enqueue()
    failed = service.delivery.messages(status="failed", limit=20)
    if as_json:
        now = datetime.now(UTC)
        document = {
            "counts": service.delivery.counts(),
            "targets": {
                name: summary.describe(now) for name, summary in service.delivery.summary().items()
            },
            "failed": [message.describe() for message in failed],
        }
        click.echo(orjson.dumps(document, default=str).decode())
    else:
        _status_table(service)
        for message in failed:
            click.echo(
                f"failed {message.id} {message.target} {message.kind} {message.lane}: "
                f"{message.last_error}"
            )
    service.close()


def _counts_table(service: Sync) -> None:
    table = Table("target", "pending", "sending", "sent", "failed")
    for target, counts in sorted(service.delivery.counts().items()):
        table.add_row(target, *(f"{counts[s]:,}" for s in ("pending", "sending", "sent", "failed")))
    Console().print(table)


def _status_table(service: Sync) -> None:
    """Per target: its messages by status (`waiting`: for payment in full, or for a draft to
    be booked), the age of the oldest unsent one, the lanes (customers, or the books) a failed
    message holds, and the messages waiting behind one."""
    now = datetime.now(UTC)
    # Short headings, and no padding at the table's edges, so that the table fits 80 columns:
    # `oldest` is the age of the oldest unsent message, `held` the lanes a failed message
    # holds, `behind` what waits in them.
    table = Table("target", *STATUSES, "oldest", "held", "behind", pad_edge=False)
    for target, summary in service.delivery.summary().items():
        counts = summary.counts
        table.add_row(
            target,
            *(f"{counts.get(s, 0):,}" for s in STATUSES),
            age(summary.oldest_pending_seconds(now)),
            f"{summary.held_lanes:,}",
            f"{summary.held_messages:,}",
        )
    Console().print(table)


def age(seconds: int | None) -> str:
    """A wait as a person reads it: `45 s`, `12 min`, `3 h 05 min`, `2 d 4 h`; `–` for none."""
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 3600:
        return f"{minutes} min"
    if seconds < 86400:
        return f"{hours} h {minutes % 60:02d} min"
    return f"{days:,} d {hours % 24} h"


@sync.command()
def check() -> None:
    """Check each target's mapping against the target (accounts and products exist) before
    anything is sent; exits 1 if anything is missing."""
    _, service = _sync()
    with service.snapshots() as (_, rows):
        products = {
            line["product_id"]
            for _, row in rows["outbox"].scan(MESSAGES)
            if row["kind"] == "invoice"
            for line in row["payload"]["lines"]
        }
    problems = []
    for name, target in service.targets.items():
        found = target.check(products)
        problems += found
        click.echo(f"{name}: {'ok' if not found else f'{len(found)} problem(s)'}")
    for problem in problems:
        click.echo(f"  {problem}")
    service.close()
    if problems:
        raise SystemExit(1)


@sync.command()
@click.option("--target", required=True, help="The target whose messages to send again.")
@click.option("--all", "everything", is_flag=True, help="Every message of the target.")
@click.option("--from-position", type=click.IntRange(0), help="From this log position.")
@click.option("--to-position", type=click.IntRange(0), help="To this log position.")
@click.option("--from-date", type=click.DateTime(["%Y-%m-%d"]), help="From this document date.")
@click.option("--to-date", type=click.DateTime(["%Y-%m-%d"]), help="To this document date.")
def replay(
    target: str,
    everything: bool,
    from_position: int | None,
    to_position: int | None,
    from_date: Any,
    to_date: Any,
) -> None:
    """Send a range of messages again: each is looked for at the target first, so nothing
    that is already there is created twice."""
    _, service = _sync()
    if target not in service.targets:
        raise click.ClickException(f"no target {target!r} in the configuration")
    now = datetime.now(UTC)
    if everything:
        count = service.delivery.replay(target, now, dates=("", "9999-12-31"))
    elif from_date is not None or to_date is not None:
        low = from_date.date().isoformat() if from_date else ""
        high = to_date.date().isoformat() if to_date else "9999-12-31"
        count = service.delivery.replay(target, now, dates=(low, high))
    elif from_position is not None or to_position is not None:
        count = service.delivery.replay(
            target, now, positions=(from_position or 0, to_position or 2**62)
        )
    else:
        raise click.UsageError("say what to replay: --all, --from/--to-position or -date")
    click.echo(f"{count:,} message(s) of {target} to be sent again")
    service.close()
