"""`subledger project` and `subledger projections ...`: folding the log into the projections,
where each stands, rebuilding them, and checking the journal they hold."""

from __future__ import annotations

import signal
import sys
import time

import click
from eventsourcing.persistence import PersistenceError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from subledger.api.cli.checks import check_journal
from subledger.api.cli.common import (
    announce,
    counter,
    database_settings,
    log_at,
    progress_bar,
    redact,
    refused,
)
from subledger.api.composition import Composition, tune_garbage_collector
from subledger.api.folding import stop_with
from subledger.api.settings import ConfigurationError
from subledger.projections.runner import PartitionsDifferError


@click.command()
@click.option(
    "--beside",
    type=int,
    hidden=True,
    help="Fold for the server process of this id, and stop when it is gone (`serve` on"
    " PostgreSQL starts one so).",
)
def project(beside: int | None) -> None:
    """Fold the projections as events are appended, until stopped (Ctrl-C or SIGTERM).

    For deployments that run `subledger serve --no-projections`, or several servers: on
    PostgreSQL the workers share the projections out, one worker to a projection, and take
    over the share of one that stops.
    """
    settings = database_settings()
    log_at(settings.log_level)
    composition = Composition(settings)
    try:
        ledger = composition.open_ledger()
        runner = composition.runner(ledger)
        rebuilt = runner.prepare()
    except PersistenceError as error:
        raise click.ClickException(f"the database did not answer: {error}") from None
    except PartitionsDifferError as error:
        raise click.ClickException(str(error)) from None
    tune_garbage_collector()
    follower = composition.follower(ledger, runner)
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: follower.stopped.set())
    if beside is not None:
        stop_with(beside, follower.stopped)
    announce(
        f"subledger project: folding {', '.join(runner.projections)}"
        + (f" in {runner.partitions} partitions each" if runner.partitions > 1 else "")
        + f" at {redact(settings.database_url)}"
        + (f" (from the start: {', '.join(rebuilt)})" if rebuilt else "")
    )
    follower.run_here()
    ledger.close()
    announce("subledger project: stopped")


@click.group()
def projections() -> None:
    """The projections: where they stand, and rebuilding them."""


@projections.command()
def status() -> None:
    """Each projection's position, the log's end, how far behind it is, and (on PostgreSQL)
    which process folds it; folded in partitions, each partition's."""
    composition = Composition(database_settings())
    ledger = composition.open_ledger()
    runner = composition.runner(ledger)
    runner.store.create_tables(
        table for projection in runner.units.values() for table in projection.tables
    )
    stored = runner.store.stored()
    end = ledger.last_position()
    owners = composition.fold_owners(ledger, runner.units)
    headers = ("projection", "position", "log", "behind", "state")
    table = Table(*headers, *(("folded by",) if owners is not None else ()), box=None)
    for name, projection in runner.units.items():
        found = stored.get(name)
        folder = () if owners is None else (owners.get(name, "-"),)
        if found is None:
            table.add_row(name, "-", str(end), str(end), "never folded", *folder)
            continue
        current = found.fingerprint == projection.fingerprint()
        state = "current" if current else f"to rebuild (folded as {found.fingerprint})"
        position = found.position
        table.add_row(name, str(position), str(end), str(end - position), state, *folder)
    Console(width=max(Console().width, 120)).print(table)  # a row unwrapped in a pipe
    ledger.close()


@projections.command()
@click.argument("names", nargs=-1)
def rebuild(names: tuple[str, ...]) -> None:
    """Drop the named projections (all by default) and fold them again from position 0."""
    composition = Composition(database_settings())
    ledger = composition.open_ledger()
    runner = composition.runner(ledger)
    unknown = set(names) - set(runner.projections)
    if unknown:
        raise click.ClickException(
            f"no projection {', '.join(sorted(unknown))}; there are {', '.join(runner.projections)}"
        )
    chosen = list(names or runner.projections)
    runner.prepare(repartition=True)
    tune_garbage_collector()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} events/s"),
        TimeRemainingColumn(),
    )
    with progress_bar(*columns) as bar:
        task = bar.add_task(f"rebuilding {', '.join(chosen)}", total=None, rate="-")
        started = time.monotonic()

        def advance(position: int, end: int) -> None:
            rate = position / max(time.monotonic() - started, 1e-6)
            bar.update(task, completed=position, total=end, rate=f"{rate:,.0f}")

        end = runner.rebuild(chosen, progress=advance)
        bar.update(task, completed=end, total=end)
    elapsed = time.monotonic() - started
    click.echo(f"rebuilt {', '.join(chosen)} to position {end} in {elapsed:.1f} s", err=True)
    ledger.close()


@projections.command()
def check() -> None:
    """Check the journal: every entry balances, the trial balance balances on every day,
    deferred revenue matches recognition, receivables match the log. Exits 1 on a failure."""
    composition = Composition(database_settings())
    with refused(ConfigurationError):
        chart = composition.chart
    ledger = composition.open_ledger()
    runner = composition.runner(ledger)
    with (
        composition.caught_up_snapshots(runner, "journal", "revenue") as (position, rows),
        counter() as bar,
    ):
        task = bar.add_task("checking entries", total=None)

        def advance(count: int) -> None:
            bar.update(task, completed=count)

        findings = check_journal(ledger, position, rows["journal"], rows["revenue"], chart, advance)
    table = Table("check", "result", "detail", box=None)
    for finding in findings:
        table.add_row(finding.check, "ok" if finding.ok else "FAILED", finding.detail)
    Console().print(table)
    click.echo(f"checked the journal as of position {position}", err=True)
    ledger.close()
    if not all(finding.ok for finding in findings):
        sys.exit(1)
