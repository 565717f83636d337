"""`subledger serve` and `subledger version`: the HTTP service, and which one it is."""

from __future__ import annotations

import os

import click
import uvicorn
from eventsourcing.persistence import PersistenceError

from subledger.adapters.store import StoreURLError
from subledger.api.api_keys import KeyConfigurationError
from subledger.api.cli.common import announce, log_at, read_settings, redact
from subledger.api.composition import Composition
from subledger.api.http.app import NO_PROJECTIONS, VERSION, create_app
from subledger.api.http.metrics import metrics_directory
from subledger.api.logs import uvicorn_logging
from subledger.api.settings import ConfigurationError

#: How long `serve --workers N` gives a worker process to answer uvicorn's health pings.
WORKER_START_SECONDS = 60


@click.command()
def version() -> None:
    """Print the version."""
    click.echo(f"subledger {VERSION}")


@click.command()
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
    settings = read_settings()
    try:
        composition = Composition(settings)
        kind = composition.backend.kind
        keys = composition.keys
        composition.chart  # noqa: B018 (read now: a configuration that cannot be used stops here)
        stored = [key for key in composition.stored_api_keys() if key.revoked_at is None]
        differs = composition.partitions_differ()
    except (KeyConfigurationError, StoreURLError, ConfigurationError) as error:
        raise click.ClickException(str(error)) from None
    except PersistenceError as error:
        raise click.ClickException(f"the database did not answer: {error}") from None
    if differs:
        raise click.ClickException(differs)
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
    log_at(settings.log_level)
    started = (
        f"subledger {VERSION}: {kind} store at {redact(settings.database_url)}, "
        f"{len(keys) + len(stored)} API key(s), {workers} worker(s), on http://{host}:{port}"
        " (docs at /docs)"
    )
    announce(started)
    logging_options = uvicorn_logging(settings.log_level)
    if not projections:
        if not composition.backend.shared:
            raise click.ClickException("a memory:// store cannot be folded by another process")
        os.environ[NO_PROJECTIONS] = "1"
    if workers == 1:
        uvicorn.run(
            create_app(
                composition=composition,
                run_projections=projections,
                server_process=True,
                # One process serving: the folds take the other core, not turns with the
                # requests for one interpreter. With several, each folds its share itself:
                # a folding process beside each would ask for more cores than there are.
                fold_beside=True,
            ),
            host=host,
            port=port,
            log_level=settings.log_level,
            **logging_options,
        )
    else:
        # The workers count into one directory, made for this start, so that GET /metrics,
        # answered by any of them, adds up the counts of all (api.http.metrics).
        with metrics_directory():
            uvicorn.run(
                "subledger.api.http.app:server_app",
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_level=settings.log_level,
                **logging_options,
                # uvicorn kills a worker that does not answer its ping in time (5 s by
                # default), and one still starting (imports, the store, the projections'
                # catch-up) on a busy machine may not: its replacement would start over, and
                # never serve.
                timeout_worker_healthcheck=WORKER_START_SECONDS,
            )
