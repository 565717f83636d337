"""`subledger demo`: a realistic business to explore, built and synced with progress bars, and
a summary of its numbers."""

from __future__ import annotations

import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from subledger.api.cli.common import database_settings, log_at
from subledger.api.composition import Composition
from subledger.api.demo.run import DemoError, DemoOptions, Summary, run_demo
from subledger.domain.dates import Month
from subledger.domain.money import CURRENCY_EXPONENTS, to_major
from subledger.projections.mrr import MOVEMENTS

STATUSES = ("pending", "sending", "sent", "failed")
STEPS = {
    "events": "appending events",
    "projections": "building projections",
    "sync": "syncing to Billy and Dinero",
}


@click.command()
@click.option("--seed", type=click.IntRange(0), default=1, show_default=True)
@click.option("--customers", type=click.IntRange(1, 100_000), default=500, show_default=True)
@click.option("--years", type=click.IntRange(1, 10), default=3, show_default=True)
@click.option(
    "--until",
    metavar="YYYY-MM",
    default=None,
    help="The month the business ends at the start of, and the summary's now [this month].",
)
@click.option("--sync/--no-sync", default=True, show_default=True, help="Sync to the sandboxes.")
@click.option(
    "--fresh", is_flag=True, help="Delete the SQLite database first (never a PostgreSQL one)."
)
def demo(seed: int, customers: int, years: int, until: str | None, sync: bool, fresh: bool) -> None:
    """Create a realistic business on the embedded database, build its projections, sync it to
    local Billy and Dinero sandboxes, and print a summary; then explore it with `serve`.

    Deterministic for a --seed and --until: the same business, the same numbers."""
    composition = Composition(database_settings())
    log_at("warning")
    if fresh:
        _remove_sqlite(composition)
    try:
        month = Month.parse(until) if until else None
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--until") from None
    options = DemoOptions(customers=customers, months=12 * years, seed=seed, sync=sync, until=month)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
    )
    started = time.monotonic()
    with Progress(*columns, console=Console(stderr=True)) as bar:
        tasks: dict[str, TaskID] = {}
        begun: dict[str, float] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(STEPS[step], total=total, rate="")
                begun[step] = time.monotonic()
            per_second = done / max(time.monotonic() - begun[step], 1e-6)
            bar.update(tasks[step], completed=done, total=total, rate=f"{per_second:,.0f}/s")

        try:
            summary = run_demo(composition, options, progress)
        except DemoError as error:
            raise click.ClickException(str(error)) from None
    print_summary(summary, time.monotonic() - started, options.until)


def _remove_sqlite(composition: Composition) -> None:
    if composition.backend.kind != "sqlite":
        raise click.ClickException("--fresh deletes a SQLite database only; this one is not")
    url = composition.settings.database_url
    path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)


def money(minor: int, currency: str) -> str:
    """An amount with its currency's own decimals: `1,234.50 DKK`, `1,500 JPY`, `12.345 KWD`."""
    return f"{figure(minor, currency)} {currency}"


def figure(minor: int, currency: str) -> str:
    """An amount in major units with thousands marked and the currency's own decimals."""
    return f"{to_major(minor, currency):,.{CURRENCY_EXPONENTS[currency]}f}"


def print_summary(summary: Summary, seconds: float, until: Month | None = None) -> None:
    # Wide enough for the movements' names even when the output is not a terminal's.
    console = Console(width=max(Console().width, 110))
    console.print(
        f"\n[bold]The demo business[/bold]: {summary.events:,} events, log position"
        f" {summary.position:,}, built in {seconds:.0f} s."
    )
    now = Table("currency", "MRR now", "ARR now", "customers", "deferred revenue", box=None)
    for currency in summary.currencies:
        figures = summary.mrr[currency]
        now.add_row(
            currency,
            money(figures["mrr"], currency),
            money(figures["arr"], currency),
            f"{figures['customers']:,}",
            money(summary.deferred[currency], currency),
        )
    console.print(now)
    for currency in summary.currencies:
        months = Table(
            "month", "MRR", *MOVEMENTS, box=None, title=f"The last 12 months, {currency}"
        )
        for row in summary.movements[currency]:
            months.add_row(
                row["month"],
                figure(row["mrr"], currency),
                *(figure(row["movements"][kind], currency) for kind in MOVEMENTS),
            )
        console.print(months)
    if summary.sync:
        synced = Table("target", "pending", "sending", "sent", "failed", box=None, title="Synced")
        for target, counts in sorted(summary.sync.items()):
            synced.add_row(target, *(f"{counts.get(s, 0):,}" for s in STATUSES))
        console.print(synced)
    console.print(
        "\nExplore it: [bold]subledger serve[/bold], then http://127.0.0.1:8000/docs"
        + (f" (the business ends at {until})." if until else ".")
    )
