"""The `subledger` command line."""

from __future__ import annotations

import csv
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit, urlunsplit

import click
import uvicorn
from eventsourcing.persistence import PersistenceError
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from subledger.adapters.follow import Follower
from subledger.adapters.store import StoreURLError, store_kind
from subledger.api.api_keys import KeyConfigurationError
from subledger.api.cli.checks import check_journal
from subledger.api.cli.export import COLUMNS, journal_lines
from subledger.api.composition import (
    ConfigurationError,
    build_chart,
    build_keys,
    build_ledger,
    build_runner,
    caught_up_snapshots,
    read_stored_keys,
    tune_garbage_collector,
)
from subledger.api.http.app import NO_PROJECTIONS, VERSION, create_app
from subledger.api.settings import Settings
from subledger.domain.money import is_currency

#: How long `serve --workers N` gives a worker process to answer uvicorn's health pings.
WORKER_START_SECONDS = 60


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise click.ClickException(f"invalid settings:\n{error}") from None


def redact(url: str) -> str:
    """A database URL without its password, fit for a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """subledger: an event-sourced revenue ledger for subscription businesses."""


@main.command()
def version() -> None:
    """Print the version."""
    click.echo(f"subledger {VERSION}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Server processes (one per core suits a busy service).",
)
@click.option(
    "--projections/--no-projections",
    default=True,
    show_default=True,
    help="Fold the projections in this process (else run `subledger project` beside it).",
)
def serve(host: str, port: int, workers: int, projections: bool) -> None:
    """Serve the HTTP API on the store named by SUBLEDGER_DATABASE_URL (SQLite by default)."""
    settings = _settings()
    try:
        kind = store_kind(settings.database_url)
        keys = build_keys(settings)
        build_chart(settings)
        stored = [key for key in read_stored_keys(settings) if key.revoked_at is None]
    except (KeyConfigurationError, StoreURLError, ConfigurationError) as error:
        raise click.ClickException(str(error)) from None
    except PersistenceError as error:
        raise click.ClickException(f"the database did not answer: {error}") from None
    both = sorted(keys.names & {key.name for key in stored})
    if both:
        raise click.ClickException(
            f"API key name(s) {', '.join(both)} are both in SUBLEDGER_API_KEYS and made with"
            " `subledger keys create`: revoke one (`subledger keys revoke NAME`) or rename it"
        )
    if not len(keys) and not stored:
        raise click.ClickException(
            "no API keys: set SUBLEDGER_API_KEYS to name:secret:scope+scope[,...], e.g.\n"
            "  SUBLEDGER_API_KEYS='local:<at least 16 characters>:events:write+read+admin'\n"
            "or make one: subledger keys create NAME --scope read"
        )
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(message)s")
    click.echo(
        f"subledger {VERSION}: {kind} store at {redact(settings.database_url)}, "
        f"{len(keys) + len(stored)} API key(s), {workers} worker(s), on http://{host}:{port}"
        " (docs at /docs)",
        err=True,
    )
    if not projections:
        if kind == "memory":
            raise click.ClickException("a memory:// store cannot be folded by another process")
        os.environ[NO_PROJECTIONS] = "1"
    if workers == 1:
        uvicorn.run(
            create_app(settings, keys=keys, run_projections=projections, server_process=True),
            host=host,
            port=port,
            log_level=settings.log_level,
        )
    else:
        uvicorn.run(
            "subledger.api.http.app:server_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level,
            # uvicorn kills a worker that does not answer its ping in time (5 s by default),
            # and one still starting (imports, the store, the projections' catch-up) on a busy
            # machine may not: its replacement would start over, and never serve.
            timeout_worker_healthcheck=WORKER_START_SECONDS,
        )


def _database_settings() -> Settings:
    settings = _settings()
    try:
        kind = store_kind(settings.database_url)
    except StoreURLError as error:
        raise click.ClickException(str(error)) from None
    if kind == "memory":
        raise click.ClickException("memory:// lives inside one process; use sqlite or postgresql")
    return settings


@main.command()
def project() -> None:
    """Fold the projections as events are appended, until stopped (Ctrl-C or SIGTERM).

    For deployments that run `subledger serve --no-projections`, or several servers: on
    PostgreSQL one worker folds at a time and the others stand by.
    """
    settings = _database_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(message)s")
    ledger = build_ledger(settings)
    runner = build_runner(settings, ledger)
    rebuilt = runner.prepare()
    tune_garbage_collector()
    follower = Follower(ledger, runner)
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: follower.stopped.set())
    click.echo(
        f"subledger project: folding {', '.join(runner.projections)} at "
        f"{redact(settings.database_url)}"
        + (f" (from the start: {', '.join(rebuilt)})" if rebuilt else ""),
        err=True,
    )
    follower.run_here()
    ledger.close()
    click.echo("subledger project: stopped", err=True)


@main.group()
def projections() -> None:
    """The projections: where they stand, and rebuilding them."""


@projections.command()
def status() -> None:
    """Each projection's position, the log's end, and how far behind it is."""
    settings = _database_settings()
    ledger = build_ledger(settings)
    runner = build_runner(settings, ledger)
    runner.store.create_tables(
        table for projection in runner.projections.values() for table in projection.tables
    )
    stored = runner.store.stored()
    end = ledger.last_position()
    table = Table("projection", "position", "log", "behind", "state", box=None)
    for name, projection in runner.projections.items():
        found = stored.get(name)
        if found is None:
            table.add_row(name, "-", str(end), str(end), "never folded")
            continue
        current = found.fingerprint == projection.fingerprint()
        state = "current" if current else f"to rebuild (folded as {found.fingerprint})"
        table.add_row(name, str(found.position), str(end), str(end - found.position), state)
    Console().print(table)
    ledger.close()


@projections.command()
@click.argument("names", nargs=-1)
def rebuild(names: tuple[str, ...]) -> None:
    """Drop the named projections (all by default) and fold them again from position 0."""
    settings = _database_settings()
    ledger = build_ledger(settings)
    runner = build_runner(settings, ledger)
    unknown = set(names) - set(runner.projections)
    if unknown:
        raise click.ClickException(
            f"no projection {', '.join(sorted(unknown))}; there are {', '.join(runner.projections)}"
        )
    chosen = list(names or runner.projections)
    runner.prepare()
    tune_garbage_collector()
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} events/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
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
    settings = _database_settings()
    try:
        chart = build_chart(settings)
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from None
    ledger = build_ledger(settings)
    runner = build_runner(settings, ledger)
    columns = (TextColumn("[bold]{task.description}"), MofNCompleteColumn())
    with (
        caught_up_snapshots(runner, "journal", "revenue") as (position, rows),
        Progress(*columns, console=Console(stderr=True)) as bar,
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


@main.group()
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
    settings = _database_settings()
    if first > last:
        raise click.ClickException(f"--from {first:%Y-%m-%d} is after --to {last:%Y-%m-%d}")
    if currency is not None and not is_currency(currency):
        raise click.ClickException(f"--currency {currency} is not an ISO 4217 currency code")
    try:
        chart = build_chart(settings)
    except ConfigurationError as error:
        raise click.ClickException(str(error)) from None
    ledger = build_ledger(settings)
    runner = build_runner(settings, ledger)
    columns = (TextColumn("[bold]{task.description}"), MofNCompleteColumn())
    with (
        Progress(*columns, console=Console(stderr=True)) as bar,
        caught_up_snapshots(runner, "journal") as (position, rows),
        output.open("w", newline="", encoding="utf-8") if output else _stdout() as file,
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


@contextmanager
def _stdout() -> Iterator[TextIO]:
    yield sys.stdout


from subledger.api.cli.sync import sync  # noqa: E402  (it imports this module's helpers)

main.add_command(sync)


from subledger.api.cli.sandbox import sandbox  # noqa: E402

main.add_command(sandbox)


from subledger.api.cli.demo import demo  # noqa: E402

main.add_command(demo)


from subledger.api.cli.keys import keys as keys_group  # noqa: E402

main.add_command(keys_group)


from subledger.api.cli.seal import seal  # noqa: E402

main.add_command(seal)

if __name__ == "__main__":
    sys.exit(main())
