"""`subledger export ...`: what the ledger holds, for people and other systems; the journal
for an accountant is one CSV row per line of each entry, amounts in major units."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import click

from subledger.api.cli.common import counter, database_settings, refused, stdout
from subledger.api.composition import Composition
from subledger.api.settings import ConfigurationError
from subledger.domain.chart import Chart
from subledger.domain.money import is_currency, to_major
from subledger.projections.engine import RowSource
from subledger.projections.journal import entries_page, entry_id_of

COLUMNS = (
    "entry_id",
    "date",
    "original_date",
    "kind",
    "account",
    "role",
    "detail",
    "debit",
    "credit",
    "currency",
    "customer_id",
    "source_event_ids",
)


def journal_lines(
    rows: RowSource,
    chart: Chart,
    first: str,
    last: str,
    currency: str | None = None,
    page_size: int = 2000,
) -> Iterator[list[list[str]]]:
    """Each entry booked from `first` to `last` (of `currency`, or all), in booking order, as
    the CSV rows of its lines."""
    after = None
    while True:
        page, after = entries_page(rows, first, last, after, page_size)
        for (booked, _, _), row in page:
            if currency is not None and row["currency"] != currency:
                continue
            yield [
                [
                    entry_id_of(row),
                    booked,
                    row["original_date"],
                    row["kind"],
                    chart.account(role, detail),
                    role,
                    detail,
                    str(to_major(debit, row["currency"])) if debit else "",
                    str(to_major(credit, row["currency"])) if credit else "",
                    row["currency"],
                    row["customer_id"],
                    row["source_event_id"],
                ]
                for role, detail, debit, credit in row["lines"]
            ]
        if after is None:
            return


@click.group()
def export() -> None:
    """Export what the ledger holds, for people and other systems."""


@export.command("journal")
@click.option(
    "--from", "first", required=True, type=click.DateTime(["%Y-%m-%d"]), help="The first day."
)
@click.option(
    "--to", "last", required=True, type=click.DateTime(["%Y-%m-%d"]), help="The last day."
)
@click.option("--currency", default=None, help="Only entries in this currency (ISO 4217).")
@click.option("--format", "form", type=click.Choice(["csv"]), default="csv", show_default=True)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="The file to write (standard output by default).",
)
def export_journal(
    first: datetime, last: datetime, currency: str | None, form: str, output: Path | None
) -> None:
    """The journal's entries booked from one day to another, one CSV row per line, amounts in
    major units (1250.00), accounts from the chart of accounts."""
    composition = Composition(database_settings())
    if first > last:
        raise click.ClickException(f"--from {first:%Y-%m-%d} is after --to {last:%Y-%m-%d}")
    if currency is not None and not is_currency(currency):
        raise click.ClickException(f"--currency {currency} is not an ISO 4217 currency code")
    with refused(ConfigurationError):
        chart = composition.chart
    ledger = composition.open_ledger()
    runner = composition.runner(ledger)
    with (
        counter() as bar,
        composition.caught_up_snapshots(runner, "journal") as (position, rows),
        output.open("w", newline="", encoding="utf-8") if output else stdout() as file,
    ):
        task = bar.add_task("exporting entries", total=None)
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        count = 0
        span = (f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}")
        for entry_lines in journal_lines(rows["journal"], chart, *span, currency):
            writer.writerows(entry_lines)
            count += 1
            if count % 500 == 0:
                bar.update(task, completed=count)
        bar.update(task, completed=count, total=count)
    click.echo(f"exported {count} entries (the log to position {position})", err=True)
    ledger.close()
